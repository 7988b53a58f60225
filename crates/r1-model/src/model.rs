//! Dense decoder-only transformers as Hugging Face writes them: Qwen2 / Qwen2.5
//! (`Qwen2ForCausalLM`), Qwen3 (`Qwen3ForCausalLM`) and Llama-3.x (`LlamaForCausalLM`).
//!
//! Blocks bottom-up: RMSNorm, SwiGLU MLP, grouped-query attention with rotate-half RoPE, decoder
//! layer, the model, the causal-LM head. Field names are Hugging Face's parameter names, so the
//! checkpoint key of every parameter falls out of the module tree
//! (`model.layers.{i}.self_attn.q_proj.weight`).

use burn::module::{Module, Param};
use burn::nn::{Embedding, Linear};
use burn::tensor::activation::{silu, softmax};
use burn::tensor::{DType, Device, Int, Tensor, TensorData};

use crate::cache::KvCache;
use crate::config::ModelConfig;
use crate::error::{ModelError, Result};
use crate::rope::{Rope, apply_rotary};
use crate::weights::{Init, WeightSource, transpose};

/// Root-mean-square layer norm, computed in f32 as transformers does:
/// `weight * (x / sqrt(mean(x^2) + eps)).to(input_dtype)`.
#[derive(Module, Debug)]
pub struct RmsNorm {
    /// The scale, `[dim]`.
    pub weight: Param<Tensor<1>>,
    /// `rms_norm_eps`.
    #[module(skip)]
    pub eps: f64,
}

impl RmsNorm {
    /// Normalises the last dimension.
    ///
    /// # Shapes
    /// `[.., dim]` -> `[.., dim]`
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        let dtype = x.dtype();
        let h = x.cast(DType::F32);
        let variance = h.clone().square().mean_dim(D - 1);
        let h = h * (variance + self.eps).sqrt().recip();
        let weight = self.weight.val();
        let shape: [usize; D] =
            std::array::from_fn(|i| if i == D - 1 { weight.dims()[0] } else { 1 });
        h.cast(dtype) * weight.reshape(shape)
    }
}

/// SwiGLU feed-forward block: `down_proj(silu(gate_proj(x)) * up_proj(x))`.
#[derive(Module, Debug)]
pub struct Mlp {
    /// `[hidden, intermediate]`.
    pub gate_proj: Linear,
    /// `[hidden, intermediate]`.
    pub up_proj: Linear,
    /// `[intermediate, hidden]`.
    pub down_proj: Linear,
}

impl Mlp {
    /// # Shapes
    /// `[batch, seq, hidden]` -> `[batch, seq, hidden]`
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let gate = silu(self.gate_proj.forward(x.clone()));
        self.down_proj.forward(gate * self.up_proj.forward(x))
    }
}

/// Grouped-query self-attention with rotate-half RoPE, optional q/k/v biases (Qwen2) and
/// optional per-head q/k RMSNorm (Qwen3).
#[derive(Module, Debug)]
pub struct Attention {
    /// `[hidden, heads * head_dim]`.
    pub q_proj: Linear,
    /// `[hidden, kv_heads * head_dim]`.
    pub k_proj: Linear,
    /// `[hidden, kv_heads * head_dim]`.
    pub v_proj: Linear,
    /// `[heads * head_dim, hidden]`.
    pub o_proj: Linear,
    /// Qwen3's RMSNorm over each query head.
    pub q_norm: Option<RmsNorm>,
    /// Qwen3's RMSNorm over each key head.
    pub k_norm: Option<RmsNorm>,
    #[module(skip)]
    num_heads: usize,
    #[module(skip)]
    num_kv_heads: usize,
    #[module(skip)]
    head_dim: usize,
}

/// Per-call inputs shared by every layer: RoPE tables and the additive attention mask.
#[derive(Debug, Clone)]
pub struct AttentionInputs {
    /// `[batch, 1, seq, head_dim]`.
    pub cos: Tensor<4>,
    /// `[batch, 1, seq, head_dim]`.
    pub sin: Tensor<4>,
    /// Additive f32 mask `[batch or 1, 1, 1, seq_q, seq_k]` (0 or a large negative number);
    /// `None` when every key is visible to every query.
    pub mask: Option<Tensor<5>>,
}

impl Attention {
    /// # Shapes
    /// `x`: `[batch, seq, hidden]` -> `[batch, seq, hidden]`. With a cache, keys and values of
    /// this call are written at the cache's current length and attention covers every cached
    /// slot.
    pub fn forward(
        &self,
        x: Tensor<3>,
        inputs: &AttentionInputs,
        cache: Option<(&mut KvCache, usize)>,
    ) -> Tensor<3> {
        let [b, t, _] = x.dims();
        let (h, kvh, hd) = (self.num_heads, self.num_kv_heads, self.head_dim);
        let q = self.q_proj.forward(x.clone()).reshape([b, t, h, hd]);
        let k = self.k_proj.forward(x.clone()).reshape([b, t, kvh, hd]);
        let v = self.v_proj.forward(x).reshape([b, t, kvh, hd]);
        let q = match &self.q_norm {
            Some(norm) => norm.forward(q),
            None => q,
        };
        let k = match &self.k_norm {
            Some(norm) => norm.forward(k),
            None => k,
        };
        // [batch, heads, seq, head_dim]
        let q = apply_rotary(q.swap_dims(1, 2), &inputs.cos, &inputs.sin);
        let k = apply_rotary(k.swap_dims(1, 2), &inputs.cos, &inputs.sin);
        let v = v.swap_dims(1, 2);
        let (k, v) = match cache {
            Some((cache, layer)) => cache.append(layer, k, v),
            None => (k, v),
        };
        let tk = k.dims()[2];
        let groups = h / kvh;
        // Query heads that share a key/value head are stacked along the sequence axis, so the
        // keys need no repeat: [batch, kv_heads, groups * seq, head_dim].
        let q = q.reshape([b, kvh, groups * t, hd]);
        let scale = (hd as f64).powf(-0.5);
        let scores = q.matmul(k.swap_dims(2, 3)) * scale; // [b, kvh, groups * t, tk]
        let dtype = scores.dtype();
        let mut scores = scores.cast(DType::F32).reshape([b, kvh, groups, t, tk]);
        if let Some(mask) = &inputs.mask {
            scores = scores + mask.clone();
        }
        let probs = softmax(scores, 4)
            .cast(dtype)
            .reshape([b, kvh, groups * t, tk]);
        let out = probs.matmul(v); // [b, kvh, groups * t, hd]
        let out = out
            .reshape([b, h, t, hd])
            .swap_dims(1, 2)
            .reshape([b, t, h * hd]);
        self.o_proj.forward(out)
    }
}

/// One pre-norm decoder layer.
#[derive(Module, Debug)]
pub struct DecoderLayer {
    /// Attention block.
    pub self_attn: Attention,
    /// Feed-forward block.
    pub mlp: Mlp,
    /// Norm before attention.
    pub input_layernorm: RmsNorm,
    /// Norm before the MLP.
    pub post_attention_layernorm: RmsNorm,
}

impl DecoderLayer {
    /// # Shapes
    /// `[batch, seq, hidden]` -> `[batch, seq, hidden]`
    pub fn forward(
        &self,
        x: Tensor<3>,
        inputs: &AttentionInputs,
        cache: Option<(&mut KvCache, usize)>,
    ) -> Tensor<3> {
        let h = x.clone()
            + self
                .self_attn
                .forward(self.input_layernorm.forward(x), inputs, cache);
        h.clone() + self.mlp.forward(self.post_attention_layernorm.forward(h))
    }
}

/// The decoder stack (`model.*` in Hugging Face checkpoints).
#[derive(Module, Debug)]
pub struct DecoderModel {
    /// `[vocab, hidden]`.
    pub embed_tokens: Embedding,
    /// The layers.
    pub layers: Vec<DecoderLayer>,
    /// Final norm.
    pub norm: RmsNorm,
}

/// A causal language model: the decoder plus the output head.
#[derive(Module, Debug)]
pub struct CausalLm {
    /// The decoder stack.
    pub model: DecoderModel,
    /// Output head `[hidden, vocab]`; `None` when tied to `model.embed_tokens`.
    pub lm_head: Option<Linear>,
    #[module(skip)]
    config: ModelConfig,
    #[module(skip)]
    rope: Rope,
}

/// A batch of token sequences, left-padded to one length.
#[derive(Debug, Clone)]
pub struct Batch {
    /// `batch * seq` token ids, row-major.
    pub ids: Vec<u32>,
    /// `batch * seq` flags: `true` for real tokens, `false` for padding.
    pub attention_mask: Vec<bool>,
    /// Number of sequences.
    pub batch: usize,
    /// Padded length.
    pub seq: usize,
    /// Packed sequences: `batch * seq` segment ids. When set, position ids restart at 0 where
    /// the id changes along a row and a token attends only to earlier tokens of its own segment
    /// (transformers' packed / padding-free layout). Not supported with a KV cache.
    pub segments: Option<Vec<u32>>,
}

impl Batch {
    /// Left-pads `sequences` with `pad_id`.
    pub fn left_padded(sequences: &[Vec<u32>], pad_id: u32) -> Self {
        let seq = sequences.iter().map(Vec::len).max().unwrap_or(0);
        let mut ids = Vec::with_capacity(sequences.len() * seq);
        let mut attention_mask = Vec::with_capacity(sequences.len() * seq);
        for s in sequences {
            let pad = seq - s.len();
            ids.extend(std::iter::repeat_n(pad_id, pad));
            ids.extend_from_slice(s);
            attention_mask.extend(std::iter::repeat_n(false, pad));
            attention_mask.extend(std::iter::repeat_n(true, s.len()));
        }
        Self {
            ids,
            attention_mask,
            batch: sequences.len(),
            seq,
            segments: None,
        }
    }

    /// Right-pads `sequences` with `pad_id` (transformers' training layout).
    pub fn right_padded(sequences: &[Vec<u32>], pad_id: u32) -> Self {
        let seq = sequences.iter().map(Vec::len).max().unwrap_or(0);
        let mut ids = Vec::with_capacity(sequences.len() * seq);
        let mut attention_mask = Vec::with_capacity(sequences.len() * seq);
        for s in sequences {
            let pad = seq - s.len();
            ids.extend_from_slice(s);
            ids.extend(std::iter::repeat_n(pad_id, pad));
            attention_mask.extend(std::iter::repeat_n(true, s.len()));
            attention_mask.extend(std::iter::repeat_n(false, pad));
        }
        Self {
            ids,
            attention_mask,
            batch: sequences.len(),
            seq,
            segments: None,
        }
    }

    /// Packs each row's sequences one after another (segment ids 0, 1, ..), right-padding the
    /// rows to one length: positions restart per sequence and attention never crosses them.
    pub fn packed(rows: &[Vec<Vec<u32>>], pad_id: u32) -> Self {
        let seq = rows
            .iter()
            .map(|r| r.iter().map(Vec::len).sum::<usize>())
            .max()
            .unwrap_or(0);
        let mut ids = Vec::with_capacity(rows.len() * seq);
        let mut attention_mask = Vec::with_capacity(rows.len() * seq);
        let mut segments = Vec::with_capacity(rows.len() * seq);
        for row in rows {
            let mut used = 0;
            for (k, s) in row.iter().enumerate() {
                ids.extend_from_slice(s);
                attention_mask.extend(std::iter::repeat_n(true, s.len()));
                segments.extend(std::iter::repeat_n(k as u32, s.len()));
                used += s.len();
            }
            ids.extend(std::iter::repeat_n(pad_id, seq - used));
            attention_mask.extend(std::iter::repeat_n(false, seq - used));
            segments.extend(std::iter::repeat_n(u32::MAX, seq - used));
        }
        Self {
            ids,
            attention_mask,
            batch: rows.len(),
            seq,
            segments: Some(segments),
        }
    }

    /// transformers' position ids for a padded batch: `cumsum(mask) - 1`, with 1 at padding.
    pub fn position_ids(&self, offsets: &[usize]) -> Vec<usize> {
        let mut out = Vec::with_capacity(self.ids.len());
        for b in 0..self.batch {
            let mut next = offsets.get(b).copied().unwrap_or(0);
            for t in 0..self.seq {
                let i = b * self.seq + t;
                if let Some(seg) = &self.segments
                    && t > 0
                    && seg[i] != seg[i - 1]
                {
                    next = 0;
                }
                if self.attention_mask[i] {
                    out.push(next);
                    next += 1;
                } else {
                    out.push(1);
                }
            }
        }
        out
    }
}

fn linear(
    src: &mut dyn WeightSource,
    name: &str,
    d_in: usize,
    d_out: usize,
    bias: bool,
    std: f64,
    dtype: DType,
    device: &Device,
) -> Result<Linear> {
    let w = src.take(&format!("{name}.weight"), &[d_out, d_in], Init::Normal(std))?;
    let w = transpose(&w, d_out, d_in); // PyTorch [out, in] -> Burn [in, out]
    let weight = Param::from_tensor(Tensor::<2>::from_data(
        TensorData::new(w, [d_in, d_out]),
        (device, dtype),
    ));
    let bias = if bias {
        let b = src.take(&format!("{name}.bias"), &[d_out], Init::Zeros)?;
        Some(Param::from_tensor(Tensor::<1>::from_data(
            TensorData::new(b, [d_out]),
            (device, dtype),
        )))
    } else {
        None
    };
    Ok(Linear { weight, bias })
}

fn rms_norm(
    src: &mut dyn WeightSource,
    name: &str,
    dim: usize,
    eps: f64,
    dtype: DType,
    device: &Device,
) -> Result<RmsNorm> {
    let w = src.take(&format!("{name}.weight"), &[dim], Init::Ones)?;
    Ok(RmsNorm {
        weight: Param::from_tensor(Tensor::<1>::from_data(
            TensorData::new(w, [dim]),
            (device, dtype),
        )),
        eps,
    })
}

/// A weight of the module tree with its Hugging Face name, as host data in PyTorch layout.
#[derive(Debug, Clone)]
pub struct NamedWeight {
    /// Hugging Face name.
    pub name: String,
    /// PyTorch shape.
    pub shape: Vec<usize>,
    /// Values, row-major in PyTorch layout.
    pub values: Vec<f32>,
}

/// Reads a tensor back to the host as f32 values, row-major.
pub fn read_f32<const D: usize>(t: Tensor<D>) -> Result<Vec<f32>> {
    t.cast(DType::F32)
        .try_into_data()
        .map_err(|e| ModelError::Backend(format!("{e:?}")))?
        .try_to_vec::<f32>()
        .map_err(|e| ModelError::Backend(format!("{e:?}")))
}

impl CausalLm {
    /// Builds the model of `config`, taking every parameter from `src` in `dtype` on `device`.
    pub fn from_source(
        config: &ModelConfig,
        src: &mut dyn WeightSource,
        dtype: DType,
        device: &Device,
    ) -> Result<Self> {
        let c = config;
        let std = c.initializer_range;
        let (hidden, hd) = (c.hidden_size, c.head_dim);
        let emb = src.take(
            "model.embed_tokens.weight",
            &[c.vocab_size, hidden],
            Init::Normal(std),
        )?;
        let embed_tokens = Embedding {
            weight: Param::from_tensor(Tensor::<2>::from_data(
                TensorData::new(emb, [c.vocab_size, hidden]),
                (device, dtype),
            )),
        };
        let mut layers = Vec::with_capacity(c.num_hidden_layers);
        for i in 0..c.num_hidden_layers {
            let p = format!("model.layers.{i}");
            let a = format!("{p}.self_attn");
            let (q_norm, k_norm) = if c.qk_norm {
                (
                    Some(rms_norm(
                        src,
                        &format!("{a}.q_norm"),
                        hd,
                        c.rms_norm_eps,
                        dtype,
                        device,
                    )?),
                    Some(rms_norm(
                        src,
                        &format!("{a}.k_norm"),
                        hd,
                        c.rms_norm_eps,
                        dtype,
                        device,
                    )?),
                )
            } else {
                (None, None)
            };
            let q_dim = c.num_attention_heads * hd;
            let kv_dim = c.num_key_value_heads * hd;
            let self_attn = Attention {
                q_proj: linear(
                    src,
                    &format!("{a}.q_proj"),
                    hidden,
                    q_dim,
                    c.qkv_bias,
                    std,
                    dtype,
                    device,
                )?,
                k_proj: linear(
                    src,
                    &format!("{a}.k_proj"),
                    hidden,
                    kv_dim,
                    c.qkv_bias,
                    std,
                    dtype,
                    device,
                )?,
                v_proj: linear(
                    src,
                    &format!("{a}.v_proj"),
                    hidden,
                    kv_dim,
                    c.qkv_bias,
                    std,
                    dtype,
                    device,
                )?,
                o_proj: linear(
                    src,
                    &format!("{a}.o_proj"),
                    q_dim,
                    hidden,
                    c.o_bias,
                    std,
                    dtype,
                    device,
                )?,
                q_norm,
                k_norm,
                num_heads: c.num_attention_heads,
                num_kv_heads: c.num_key_value_heads,
                head_dim: hd,
            };
            let m = format!("{p}.mlp");
            let inter = c.intermediate_size;
            let mlp = Mlp {
                gate_proj: linear(
                    src,
                    &format!("{m}.gate_proj"),
                    hidden,
                    inter,
                    c.mlp_bias,
                    std,
                    dtype,
                    device,
                )?,
                up_proj: linear(
                    src,
                    &format!("{m}.up_proj"),
                    hidden,
                    inter,
                    c.mlp_bias,
                    std,
                    dtype,
                    device,
                )?,
                down_proj: linear(
                    src,
                    &format!("{m}.down_proj"),
                    inter,
                    hidden,
                    c.mlp_bias,
                    std,
                    dtype,
                    device,
                )?,
            };
            layers.push(DecoderLayer {
                self_attn,
                mlp,
                input_layernorm: rms_norm(
                    src,
                    &format!("{p}.input_layernorm"),
                    hidden,
                    c.rms_norm_eps,
                    dtype,
                    device,
                )?,
                post_attention_layernorm: rms_norm(
                    src,
                    &format!("{p}.post_attention_layernorm"),
                    hidden,
                    c.rms_norm_eps,
                    dtype,
                    device,
                )?,
            });
        }
        let norm = rms_norm(src, "model.norm", hidden, c.rms_norm_eps, dtype, device)?;
        let lm_head = if c.tie_word_embeddings {
            // Some tied checkpoints still carry a copy of the head; transformers ignores it.
            src.skip("lm_head.weight");
            None
        } else {
            Some(linear(
                src,
                "lm_head",
                hidden,
                c.vocab_size,
                false,
                std,
                dtype,
                device,
            )?)
        };
        src.finish()?;
        Ok(Self {
            model: DecoderModel {
                embed_tokens,
                layers,
                norm,
            },
            lm_head,
            config: config.clone(),
            rope: Rope::new(config),
        })
    }

    /// The config this model was built from.
    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    /// The dtype of the parameters.
    pub fn dtype(&self) -> DType {
        self.model.embed_tokens.weight.val().dtype()
    }

    /// The device holding the parameters.
    pub fn device(&self) -> Device {
        self.model.embed_tokens.weight.val().device()
    }

    /// Every parameter with its Hugging Face name, in PyTorch layout, as host f32 data.
    /// A tied head is not listed (transformers does not save it either).
    pub fn named_weights(&self) -> Result<Vec<NamedWeight>> {
        let mut out = Vec::new();
        let push1 = |name: String, t: Tensor<1>, out: &mut Vec<NamedWeight>| -> Result<()> {
            let shape = t.dims().to_vec();
            out.push(NamedWeight {
                name,
                shape,
                values: read_f32(t)?,
            });
            Ok(())
        };
        let push_linear = |name: &str, l: &Linear, out: &mut Vec<NamedWeight>| -> Result<()> {
            let w = l.weight.val();
            let [d_in, d_out] = w.dims();
            out.push(NamedWeight {
                name: format!("{name}.weight"),
                shape: vec![d_out, d_in],
                values: transpose(&read_f32(w)?, d_in, d_out),
            });
            if let Some(b) = &l.bias {
                out.push(NamedWeight {
                    name: format!("{name}.bias"),
                    shape: vec![d_out],
                    values: read_f32(b.val())?,
                });
            }
            Ok(())
        };
        let emb = self.model.embed_tokens.weight.val();
        out.push(NamedWeight {
            name: "model.embed_tokens.weight".into(),
            shape: emb.dims().to_vec(),
            values: read_f32(emb)?,
        });
        for (i, layer) in self.model.layers.iter().enumerate() {
            let p = format!("model.layers.{i}");
            let a = &layer.self_attn;
            for (n, l) in [
                ("q_proj", &a.q_proj),
                ("k_proj", &a.k_proj),
                ("v_proj", &a.v_proj),
                ("o_proj", &a.o_proj),
            ] {
                push_linear(&format!("{p}.self_attn.{n}"), l, &mut out)?;
            }
            if let Some(n) = &a.q_norm {
                push1(
                    format!("{p}.self_attn.q_norm.weight"),
                    n.weight.val(),
                    &mut out,
                )?;
            }
            if let Some(n) = &a.k_norm {
                push1(
                    format!("{p}.self_attn.k_norm.weight"),
                    n.weight.val(),
                    &mut out,
                )?;
            }
            let m = &layer.mlp;
            for (n, l) in [
                ("gate_proj", &m.gate_proj),
                ("up_proj", &m.up_proj),
                ("down_proj", &m.down_proj),
            ] {
                push_linear(&format!("{p}.mlp.{n}"), l, &mut out)?;
            }
            push1(
                format!("{p}.input_layernorm.weight"),
                layer.input_layernorm.weight.val(),
                &mut out,
            )?;
            push1(
                format!("{p}.post_attention_layernorm.weight"),
                layer.post_attention_layernorm.weight.val(),
                &mut out,
            )?;
        }
        push1(
            "model.norm.weight".into(),
            self.model.norm.weight.val(),
            &mut out,
        )?;
        if let Some(head) = &self.lm_head {
            push_linear("lm_head", head, &mut out)?;
        }
        Ok(out)
    }

    /// Runs the decoder stack and the final norm.
    ///
    /// `offsets[b]` is the position id of row `b`'s first real token in this call (0 without a
    /// cache; the number of real tokens already cached otherwise). With a cache, the call's keys
    /// and values are appended to it and `batch.attention_mask` covers only this call's tokens.
    ///
    /// # Shapes
    /// returns `[batch, seq, hidden]`
    pub fn forward_hidden(
        &self,
        batch: &Batch,
        offsets: &[usize],
        cache: Option<&mut KvCache>,
    ) -> Result<Tensor<3>> {
        let mut h = self.run_stack(batch, offsets, cache, None)?;
        h.pop().ok_or_else(|| ModelError::invalid("empty stack"))
    }

    /// The decoder stack: validates the batch, builds RoPE tables and the mask, runs every
    /// layer (recording each layer's output into `trace` when given) and the final norm.
    /// Returns the normed output as the last element.
    fn run_stack(
        &self,
        batch: &Batch,
        offsets: &[usize],
        mut cache: Option<&mut KvCache>,
        mut trace: Option<&mut Vec<Tensor<3>>>,
    ) -> Result<Vec<Tensor<3>>> {
        let device = self.device();
        let dtype = self.dtype();
        let (b, t) = (batch.batch, batch.seq);
        if batch.ids.len() != b * t || batch.attention_mask.len() != b * t {
            return Err(ModelError::invalid(
                "batch ids and mask must hold batch * seq entries",
            ));
        }
        if let Some(&bad) = batch
            .ids
            .iter()
            .find(|&&id| id as usize >= self.config.vocab_size)
        {
            return Err(ModelError::invalid(format!(
                "token id {bad} is out of range for vocab_size {}",
                self.config.vocab_size
            )));
        }
        let positions = batch.position_ids(offsets);
        let (cos, sin) = self.rope.cos_sin(&positions, b, t, dtype, &device);
        let past = match cache.as_deref() {
            Some(c) => {
                c.check_fits(b, t)?;
                c.len()
            }
            None => 0,
        };
        let key_valid: Vec<bool> = match cache.as_deref_mut() {
            Some(c) => c.extend_mask(&batch.attention_mask, b, t),
            None => batch.attention_mask.clone(),
        };
        let mask = match &batch.segments {
            Some(segments) => {
                if past > 0 || segments.len() != b * t {
                    return Err(ModelError::invalid(
                        "packed batches need batch * seq segment ids and no KV cache",
                    ));
                }
                Some(segment_mask(segments, &key_valid, b, t, &device))
            }
            None => attention_mask(&key_valid, b, t, past, &device),
        };
        let inputs = AttentionInputs { cos, sin, mask };
        let ids: Vec<i64> = batch.ids.iter().map(|&i| i as i64).collect();
        let ids = Tensor::<2, Int>::from_data(TensorData::new(ids, [b, t]), &device);
        let mut h = self.model.embed_tokens.forward(ids);
        if let Some(tr) = trace.as_deref_mut() {
            tr.push(h.clone());
        }
        for (i, layer) in self.model.layers.iter().enumerate() {
            h = layer.forward(h, &inputs, cache.as_deref_mut().map(|c| (c, i)));
            if let Some(tr) = trace.as_deref_mut() {
                tr.push(h.clone());
            }
        }
        if let Some(c) = cache {
            c.advance(t);
        }
        Ok(vec![self.model.norm.forward(h)])
    }

    /// Projects hidden states to vocabulary logits.
    ///
    /// # Shapes
    /// `[.., hidden]` -> `[.., vocab]`
    pub fn logits<const D: usize>(&self, hidden: Tensor<D>) -> Tensor<D> {
        match &self.lm_head {
            Some(head) => head.forward(hidden),
            None => {
                // Tied head: hidden @ embed^T. The transpose is a strided view that the
                // matmul reads in place, and under autodiff the gradient reaches the embedding.
                let w = self.model.embed_tokens.weight.val(); // [vocab, hidden]
                let [v, hsz] = w.dims();
                let lead: usize = hidden.dims()[..D - 1].iter().product();
                let mut out_shape = hidden.dims();
                out_shape[D - 1] = v;
                hidden
                    .reshape([lead, hsz])
                    .matmul(w.transpose())
                    .reshape(out_shape)
            }
        }
    }

    /// The output projection as `[hidden, vocab]`: `lm_head`'s weight, or the token embedding
    /// transposed (a strided view) when the head is tied. `logits(h) == h @ head_weight()`.
    pub fn head_weight(&self) -> Tensor<2> {
        match &self.lm_head {
            Some(head) => head.weight.val(),
            None => self.model.embed_tokens.weight.val().transpose(),
        }
    }

    /// Logits at every position of a padded batch.
    ///
    /// # Shapes
    /// returns `[batch, seq, vocab]`
    pub fn forward(&self, batch: &Batch) -> Result<Tensor<3>> {
        let offsets = vec![0; batch.batch];
        let h = self.forward_hidden(batch, &offsets, None)?;
        Ok(self.logits(h))
    }

    /// Hidden states after each layer, transformers' `output_hidden_states` without the final
    /// norm on the last entry: `[embeddings, layer 0, .., layer n-1]`, then the normed output.
    pub fn hidden_states(&self, batch: &Batch) -> Result<Vec<Tensor<3>>> {
        let mut out = Vec::with_capacity(self.model.layers.len() + 2);
        let normed = self.run_stack(batch, &vec![0; batch.batch], None, Some(&mut out))?;
        out.extend(normed);
        Ok(out)
    }
}

/// The additive mask of packed rows: causal, within one segment, over valid keys.
fn segment_mask(
    segments: &[u32],
    key_valid: &[bool],
    batch: usize,
    seq: usize,
    device: &Device,
) -> Tensor<5> {
    let mut m = vec![0f32; batch * seq * seq];
    for r in 0..batch {
        for i in 0..seq {
            for j in 0..seq {
                let visible = j <= i
                    && key_valid[r * seq + j]
                    && segments[r * seq + j] == segments[r * seq + i];
                // A padding query sees its own slot so that its softmax row stays finite.
                if !visible && i != j {
                    m[(r * seq + i) * seq + j] = f32::MIN;
                }
            }
        }
    }
    Tensor::<5>::from_data(
        TensorData::new(m, [batch, 1, 1, seq, seq]),
        (device, DType::F32),
    )
}

/// The additive causal + padding mask for `seq` queries written after `past` cached slots.
/// `key_valid` holds `batch * (past + seq)` flags. Returns `None` when nothing is masked.
fn attention_mask(
    key_valid: &[bool],
    batch: usize,
    seq: usize,
    past: usize,
    device: &Device,
) -> Option<Tensor<5>> {
    let tk = past + seq;
    let padded = key_valid.iter().any(|v| !v);
    if !padded && seq == 1 {
        return None;
    }
    let rows = if padded { batch } else { 1 };
    let mut m = vec![0f32; rows * seq * tk];
    for r in 0..rows {
        for i in 0..seq {
            for j in 0..tk {
                let visible = j <= past + i && key_valid[r * tk + j];
                if !visible {
                    m[(r * seq + i) * tk + j] = f32::MIN;
                }
            }
        }
    }
    Some(Tensor::<5>::from_data(
        TensorData::new(m, [rows, 1, 1, seq, tk]),
        (device, DType::F32),
    ))
}
