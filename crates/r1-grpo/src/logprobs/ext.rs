//! The fused head + selective log-softmax as a Burn backend extension.
//!
//! One operation, [`LogProbBackend::linear_log_softmax_stats`], maps a chunk of hidden states
//! and the output projection to three numbers per row: the log-prob of the target token, the
//! log-sum-exp and the entropy of `softmax(h @ W / T)`. Under autodiff it keeps only its inputs
//! (`hidden`, `W`, the targets and the log-sum-exp) for backward and recomputes the chunk's logits
//! there, so no `[rows, vocab]` tensor outlives the call: the memory of the chunked log-softmax
//! without its retained logits (Liger's fused linear cross-entropy, for log-probs).
//!
//! The two inner steps have default bodies written with Burn's backend primitives (the plain-op
//! implementation every backend gets) and CubeCL kernels on the CubeCL backends
//! ([`super::cube`]). The high-level tensor-op reference they are tested against is
//! [`r1_model::selective_log_softmax`].

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::tensor::{FloatTensor, IndexingUpdateOp, IntTensor};
use burn::backend::{Autodiff, Backend, Scalar, Shape, Slice, TensorMetadata, backend_extension};
use burn::tensor::{DType, FloatDType};

/// Column of each output row holding the target's log-prob.
pub const LOGP: usize = 0;
/// Column holding the log-sum-exp of the temperature-scaled logits.
pub const LSE: usize = 1;
/// Column holding the entropy of the temperature-scaled distribution.
pub const ENTROPY: usize = 2;

/// Backends that compute per-token log-probs from hidden states without keeping logits.
#[backend_extension(
    Flex: cfg(feature = "flex"),
    Cube: cfg(feature = "cube"),
    LibTorch: cfg(feature = "tch"),
    Autodiff
)]
pub trait LogProbBackend: Backend {
    /// Per-row statistics of `softmax(hidden @ weight * inv_temperature)`.
    ///
    /// # Shapes
    /// `hidden`: `[rows, hidden]`, `weight`: `[hidden, vocab]` (any float dtype),
    /// `targets`: `[rows]` -> `[rows, 3]` in f32: columns [`LOGP`], [`LSE`], [`ENTROPY`].
    ///
    /// Under autodiff only the [`LOGP`] column carries a gradient (to `hidden` and `weight`);
    /// the others are statistics.
    fn linear_log_softmax_stats(
        hidden: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        targets: IntTensor<Self>,
        inv_temperature: f32,
    ) -> FloatTensor<Self> {
        let logits = f32_of::<Self>(Self::float_matmul(hidden, weight));
        Self::log_softmax_stats(logits, targets, inv_temperature)
    }

    /// Per-row statistics of `softmax(logits * inv_temperature)`.
    ///
    /// # Shapes
    /// `logits`: `[rows, vocab]` f32, `targets`: `[rows]` -> `[rows, 3]` f32.
    fn log_softmax_stats(
        logits: FloatTensor<Self>,
        targets: IntTensor<Self>,
        inv_temperature: f32,
    ) -> FloatTensor<Self> {
        let [n, _] = dims2(&logits.shape());
        let s = Self::float_mul_scalar(logits, Scalar::from(inv_temperature));
        let m = Self::float_max_dim(s.clone(), 1); // [n, 1]
        let e = Self::float_exp(Self::float_sub(s.clone(), m.clone()));
        let sum = Self::float_sum_dim(e.clone(), 1);
        let lse = Self::float_add(Self::float_log(sum.clone()), m);
        let tgt = Self::int_reshape(targets, Shape::new([n, 1]));
        let logp = Self::float_sub(Self::float_gather(1, s.clone(), tgt), lse.clone());
        // H = lse - E_p[s]
        let mean_s = Self::float_div(Self::float_sum_dim(Self::float_mul(e, s), 1), sum);
        let entropy = Self::float_sub(lse.clone(), mean_s);
        Self::float_cat(vec![logp, lse, entropy], 1)
    }

    /// Gradient of `log_softmax(logits * inv_temperature)[target]` with respect to `logits`,
    /// scaled by `grad`: `grad * inv_temperature * (onehot(target) - softmax)`.
    ///
    /// # Shapes
    /// `logits`: `[rows, vocab]` f32, `targets`: `[rows]`, `lse`, `grad`: `[rows, 1]` f32 ->
    /// `[rows, vocab]` f32.
    fn log_softmax_stats_backward(
        logits: FloatTensor<Self>,
        targets: IntTensor<Self>,
        lse: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        inv_temperature: f32,
    ) -> FloatTensor<Self> {
        let [n, _] = dims2(&logits.shape());
        let g = Self::float_mul_scalar(grad, Scalar::from(inv_temperature)); // [n, 1]
        let s = Self::float_mul_scalar(logits, Scalar::from(inv_temperature));
        let p = Self::float_exp(Self::float_sub(s, lse));
        let out = Self::float_neg(Self::float_mul(p, g.clone()));
        let tgt = Self::int_reshape(targets, Shape::new([n, 1]));
        Self::float_scatter(1, out, tgt, g, IndexingUpdateOp::Add)
    }
}

fn dims2(shape: &Shape) -> [usize; 2] {
    [shape[0], shape[1]]
}

fn f32_of<B: Backend>(t: FloatTensor<B>) -> FloatTensor<B> {
    if t.dtype() == DType::F32 {
        t
    } else {
        B::float_cast(t, FloatDType::F32)
    }
}

#[cfg(feature = "flex")]
impl LogProbBackend for burn::backend::Flex {}

#[cfg(feature = "tch")]
impl LogProbBackend for burn::backend::LibTorch {}

/// Backward of [`LogProbBackend::linear_log_softmax_stats`]: recomputes the chunk's logits.
#[derive(Debug)]
struct LinearLogSoftmaxBackward;

/// What backward needs: hidden, weight, targets, log-sum-exp `[rows, 1]`, 1/T.
type LinearState<B> = (
    FloatTensor<B>,
    FloatTensor<B>,
    IntTensor<B>,
    FloatTensor<B>,
    f32,
);

impl<B: LogProbBackend> Backward<B, 2> for LinearLogSoftmaxBackward {
    type State = LinearState<B>;

    fn backward(
        self,
        ops: Ops<Self::State, 2>,
        grads: &mut Gradients,
        _checkpointer: &mut Checkpointer,
    ) {
        let (hidden, weight, targets, lse, inv_t) = ops.state;
        let grad = grads.consume::<B>(&ops.node); // [rows, 3]
        let [n, _] = dims2(&grad.shape());
        let g = B::float_slice(grad, &[Slice::from(0..n), Slice::from(LOGP..LOGP + 1)]);
        let g = f32_of::<B>(g);
        let dtype = hidden.dtype();
        let logits = f32_of::<B>(B::float_matmul(hidden.clone(), weight.clone()));
        let mut d_logits = B::log_softmax_stats_backward(logits, targets, lse, g, inv_t);
        if dtype != DType::F32 {
            d_logits = B::float_cast(d_logits, dtype.into());
        }
        let [hidden_parent, weight_parent] = ops.parents;
        if let Some(node) = weight_parent {
            let dw = B::float_matmul(B::float_transpose(hidden), d_logits.clone());
            grads.register::<B>(node.id, dw);
        }
        if let Some(node) = hidden_parent {
            let dh = B::float_matmul(d_logits, B::float_transpose(weight));
            grads.register::<B>(node.id, dh);
        }
    }
}

impl<B: LogProbBackend, C: CheckpointStrategy> LogProbBackend for Autodiff<B, C> {
    fn linear_log_softmax_stats(
        hidden: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        targets: IntTensor<Self>,
        inv_temperature: f32,
    ) -> FloatTensor<Self> {
        let prep = LinearLogSoftmaxBackward
            .prepare::<C>([hidden.node(), weight.node()])
            .compute_bound()
            .stateful();
        let hidden = hidden.into_primitive();
        let weight = weight.into_primitive();
        match prep {
            OpsKind::Tracked(prep) => {
                let stats = B::linear_log_softmax_stats(
                    hidden.clone(),
                    weight.clone(),
                    targets.clone(),
                    inv_temperature,
                );
                let [n, _] = dims2(&stats.shape());
                let lse = B::float_slice(
                    stats.clone(),
                    &[Slice::from(0..n), Slice::from(LSE..LSE + 1)],
                );
                prep.finish((hidden, weight, targets, lse, inv_temperature), stats)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::linear_log_softmax_stats(
                hidden,
                weight,
                targets,
                inv_temperature,
            )),
        }
    }
}
