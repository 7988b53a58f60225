//! Rotary position embeddings in Hugging Face's rotate-half form, with the `linear`, `dynamic`,
//! `llama3` and `yarn` frequency rules of `transformers.modeling_rope_utils`.
//!
//! Frequencies and the cos/sin tables are computed on the host in f64 and rounded to f32, which
//! is where transformers keeps them, then cast to the activations' dtype on the device.

use burn::tensor::{DType, Device, Tensor, TensorData};

use crate::config::{ModelConfig, RopeScaling};

/// Inverse frequencies and the cos/sin multiplier of one RoPE configuration.
#[derive(Debug, Clone)]
pub struct Rope {
    theta: f64,
    dim: usize,
    scaling: RopeScaling,
    inv_freq: Vec<f32>,
    attention_scaling: f32,
}

impl Rope {
    /// Builds the frequency table a config asks for.
    pub fn new(config: &ModelConfig) -> Self {
        let dim = config.rotary_dim();
        let theta = config.rope.theta;
        let scaling = config.rope.scaling.clone();
        let (inv_freq, attention_scaling) = compute_inv_freq(theta, dim, &scaling, None);
        Self {
            theta,
            dim,
            scaling,
            inv_freq,
            attention_scaling,
        }
    }

    /// The inverse frequencies, `head_dim / 2` of them.
    pub fn inv_freq(&self) -> &[f32] {
        &self.inv_freq
    }

    /// The multiplier applied to cos and sin (YaRN's attention factor; 1 otherwise).
    pub fn attention_scaling(&self) -> f32 {
        self.attention_scaling
    }

    /// cos and sin tables for a batch of position ids, each `[batch, 1, seq, head_dim]`.
    ///
    /// `positions` holds `batch * seq` ids, row-major. For dynamic NTK scaling the base is
    /// recomputed from the largest position, as transformers does on each forward call.
    pub fn cos_sin(
        &self,
        positions: &[usize],
        batch: usize,
        seq: usize,
        dtype: DType,
        device: &Device,
    ) -> (Tensor<4>, Tensor<4>) {
        debug_assert_eq!(positions.len(), batch * seq);
        let dynamic;
        let (inv_freq, scale) = match self.scaling {
            RopeScaling::Dynamic {
                max_position_embeddings,
                ..
            } => {
                let seq_len = positions.iter().copied().max().unwrap_or(0) + 1;
                if seq_len > max_position_embeddings {
                    dynamic = compute_inv_freq(self.theta, self.dim, &self.scaling, Some(seq_len));
                    (dynamic.0.as_slice(), dynamic.1)
                } else {
                    (self.inv_freq.as_slice(), self.attention_scaling)
                }
            }
            _ => (self.inv_freq.as_slice(), self.attention_scaling),
        };
        let half = inv_freq.len();
        let mut cos = Vec::with_capacity(positions.len() * half * 2);
        let mut sin = Vec::with_capacity(positions.len() * half * 2);
        let mut row_cos = vec![0f32; half];
        let mut row_sin = vec![0f32; half];
        for &p in positions {
            for (j, f) in inv_freq.iter().enumerate() {
                // transformers multiplies in f32, then takes cos/sin of that f32 angle.
                let angle = (p as f32 * f) as f64;
                row_cos[j] = (angle.cos() as f32) * scale;
                row_sin[j] = (angle.sin() as f32) * scale;
            }
            cos.extend_from_slice(&row_cos);
            cos.extend_from_slice(&row_cos);
            sin.extend_from_slice(&row_sin);
            sin.extend_from_slice(&row_sin);
        }
        let shape = [batch, 1, seq, half * 2];
        let cos = Tensor::<4>::from_data(TensorData::new(cos, shape), (device, dtype));
        let sin = Tensor::<4>::from_data(TensorData::new(sin, shape), (device, dtype));
        (cos, sin)
    }
}

/// Applies rotate-half RoPE to `x` of shape `[batch, heads, seq, head_dim]` with tables from
/// [`Rope::cos_sin`]: `x * cos + rotate_half(x) * sin`.
pub fn apply_rotary(x: Tensor<4>, cos: &Tensor<4>, sin: &Tensor<4>) -> Tensor<4> {
    let [b, h, t, d] = x.dims();
    let half = d / 2;
    let x1 = x.clone().slice([0..b, 0..h, 0..t, 0..half]);
    let x2 = x.clone().slice([0..b, 0..h, 0..t, half..d]);
    let rotated = Tensor::cat(vec![x2.neg(), x1], 3);
    x * cos.clone() + rotated * sin.clone()
}

/// transformers' `ROPE_INIT_FUNCTIONS`: inverse frequencies and attention scaling. `seq_len` is
/// only used by dynamic NTK scaling.
pub fn compute_inv_freq(
    theta: f64,
    dim: usize,
    scaling: &RopeScaling,
    seq_len: Option<usize>,
) -> (Vec<f32>, f32) {
    let exponent = |i: usize| (2 * i) as f32 / dim as f32; // arange(0, dim, 2) / dim, in f32
    let plain = |base: f64| -> Vec<f64> {
        (0..dim / 2)
            .map(|i| 1.0 / base.powf(exponent(i) as f64))
            .map(|f| f as f32 as f64)
            .collect()
    };
    let to_f32 = |v: Vec<f64>| v.into_iter().map(|f| f as f32).collect::<Vec<f32>>();
    match *scaling {
        RopeScaling::Default => (to_f32(plain(theta)), 1.0),
        RopeScaling::Linear { factor } => (
            to_f32(plain(theta).into_iter().map(|f| f / factor).collect()),
            1.0,
        ),
        RopeScaling::Dynamic {
            factor,
            max_position_embeddings,
        } => {
            let max = max_position_embeddings as f64;
            let seq_len = seq_len.map_or(max, |s| (s as f64).max(max));
            let base = theta
                * ((factor * seq_len / max) - (factor - 1.0)).powf(dim as f64 / (dim as f64 - 2.0));
            (to_f32(plain(base)), 1.0)
        }
        RopeScaling::Llama3 {
            factor,
            low_freq_factor,
            high_freq_factor,
            original_max_position_embeddings,
        } => {
            let old = original_max_position_embeddings as f64;
            let low_freq_wavelen = old / low_freq_factor;
            let high_freq_wavelen = old / high_freq_factor;
            let freqs = plain(theta)
                .into_iter()
                .map(|f| {
                    let wavelen = 2.0 * std::f64::consts::PI / f;
                    if wavelen < high_freq_wavelen {
                        f
                    } else if wavelen > low_freq_wavelen {
                        f / factor
                    } else {
                        let smooth = (old / wavelen - low_freq_factor)
                            / (high_freq_factor - low_freq_factor);
                        (1.0 - smooth) * f / factor + smooth * f
                    }
                })
                .collect();
            (to_f32(freqs), 1.0)
        }
        RopeScaling::Yarn {
            factor,
            original_max_position_embeddings,
            beta_fast,
            beta_slow,
            attention_factor,
            truncate,
        } => {
            let d = dim as f64;
            let max = original_max_position_embeddings as f64;
            let correction_dim = |rotations: f64| {
                (d * (max / (rotations * 2.0 * std::f64::consts::PI)).ln()) / (2.0 * theta.ln())
            };
            let (mut low, mut high) = (correction_dim(beta_fast), correction_dim(beta_slow));
            if truncate {
                low = low.floor();
                high = high.ceil();
            }
            let low = low.max(0.0);
            let mut high = high.min(d - 1.0);
            if low == high {
                high += 0.001;
            }
            let freqs = (0..dim / 2)
                .map(|i| {
                    let pos_freq = theta.powf(exponent(i) as f64) as f32 as f64;
                    let extrapolation = 1.0 / pos_freq;
                    let interpolation = 1.0 / (factor * pos_freq);
                    let ramp = ((i as f64 - low) / (high - low)).clamp(0.0, 1.0);
                    let extrapolation_factor = 1.0 - ramp;
                    interpolation * (1.0 - extrapolation_factor)
                        + extrapolation * extrapolation_factor
                })
                .collect();
            (to_f32(freqs), attention_factor as f32)
        }
    }
}
