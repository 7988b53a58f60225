//! Per-token log-probs and entropies of completions under autodiff, without the
//! `[batch, seq, vocab]` blow-up.
//!
//! Three implementations of TRL's `selective_log_softmax(logits / T, ids)`, chosen with
//! [`LogProbImpl`]:
//!
//! | impl        | what it keeps for backward                   | extra peak memory        |
//! |-------------|----------------------------------------------|--------------------------|
//! | `reference` | the whole `[rows, vocab]` log-softmax graph  | several `rows x vocab`   |
//! | `chunked`   | every chunk's logits and log-softmax graph   | several `rows x vocab`, built a chunk at a time |
//! | `fused`     | hidden states, the head and one f32 per row  | one `chunk x vocab`      |
//!
//! `fused` is the default: [`ext::LogProbBackend::linear_log_softmax_stats`] projects a chunk
//! to the vocabulary, reduces it to `(log p, log-sum-exp, entropy)` per row and drops the
//! logits; backward recomputes them a chunk at a time. On CubeCL backends the reduction and
//! its gradient are CubeCL kernels ([`cube`], feature `wgpu` or `cuda`); elsewhere they are
//! Burn primitive ops. Entropies never carry a gradient (TRL computes them under `no_grad`).

pub mod ext;

#[cfg(feature = "cube")]
pub mod cube;

use burn::backend::Dispatch;
use burn::tensor::{Int, Tensor};
use r1_model::CausalLm;
use serde::{Deserialize, Serialize};

use ext::{ENTROPY, LOGP, LogProbBackend};

pub use r1_model::logprobs::{DEFAULT_CHUNK_ELEMENTS, chunk_rows_for};

/// How per-token log-probs are computed from hidden states.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogProbImpl {
    /// The whole `[rows, vocab]` log-softmax at once (plain tensor ops; for tests and benchmarks).
    Reference,
    /// Plain tensor ops one chunk of rows at a time ([`r1_model::selective_log_softmax`]).
    Chunked,
    /// The fused head + log-softmax operation with a recomputing backward.
    #[default]
    Fused,
}

impl LogProbImpl {
    /// Parses `reference`, `chunked` or `fused`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "reference" => Some(Self::Reference),
            "chunked" => Some(Self::Chunked),
            "fused" => Some(Self::Fused),
            _ => None,
        }
    }

    /// The name [`LogProbImpl::parse`] reads.
    pub fn name(self) -> &'static str {
        match self {
            Self::Reference => "reference",
            Self::Chunked => "chunked",
            Self::Fused => "fused",
        }
    }
}

/// Log-probs (and entropies) of `targets` under `model`'s head applied to `hidden`, at
/// `temperature`, with `chunk_rows` positions projected to the vocabulary at a time.
///
/// # Shapes
/// `hidden`: `[batch, seq, hidden]`, `targets`: `[batch, seq]` ->
/// (`[batch, seq]`, `Option<[batch, seq]>`)
pub fn token_logprobs(
    model: &CausalLm,
    hidden: Tensor<3>,
    targets: Tensor<2, Int>,
    temperature: f32,
    method: LogProbImpl,
    chunk_rows: usize,
    with_entropy: bool,
) -> (Tensor<2>, Option<Tensor<2>>) {
    let [b, t, _] = hidden.dims();
    match method {
        LogProbImpl::Reference => r1_model::selective_log_softmax(
            model,
            hidden,
            targets,
            temperature,
            (b * t).max(1),
            with_entropy,
        ),
        LogProbImpl::Chunked => r1_model::selective_log_softmax(
            model,
            hidden,
            targets,
            temperature,
            chunk_rows,
            with_entropy,
        ),
        LogProbImpl::Fused => fused_selective_log_softmax(
            hidden,
            model.head_weight(),
            targets,
            temperature,
            chunk_rows,
            with_entropy,
        ),
    }
}

/// The fused path of [`token_logprobs`] for any head `weight` (`[hidden, vocab]`).
///
/// # Shapes
/// `hidden`: `[batch, seq, hidden]`, `weight`: `[hidden, vocab]`, `targets`: `[batch, seq]` ->
/// (`[batch, seq]`, `Option<[batch, seq]>`)
pub fn fused_selective_log_softmax(
    hidden: Tensor<3>,
    weight: Tensor<2>,
    targets: Tensor<2, Int>,
    temperature: f32,
    chunk_rows: usize,
    with_entropy: bool,
) -> (Tensor<2>, Option<Tensor<2>>) {
    let [b, t, h] = hidden.dims();
    let n = b * t;
    let rows = hidden.reshape([n, h]);
    let targets = targets.reshape([n]);
    let inv_t = 1.0 / temperature;
    let chunk = chunk_rows.max(1);
    let mut logps = Vec::new();
    let mut entropies = Vec::new();
    let mut start = 0;
    while start < n {
        let end = (start + chunk).min(n);
        let stats = <Dispatch as LogProbBackend>::linear_log_softmax_stats(
            rows.clone().slice([start..end, 0..h]).into_dispatch(),
            weight.clone().into_dispatch(),
            targets.clone().slice(start..end).into_dispatch(),
            inv_t,
        );
        let stats = Tensor::<2>::from_dispatch(stats); // [rows, 3]
        let m = end - start;
        logps.push(stats.clone().slice([0..m, LOGP..LOGP + 1]));
        if with_entropy {
            entropies.push(stats.slice([0..m, ENTROPY..ENTROPY + 1]).detach());
        }
        start = end;
    }
    let logps = Tensor::cat(logps, 0).reshape([b, t]);
    let entropies = with_entropy.then(|| Tensor::cat(entropies, 0).reshape([b, t]));
    (logps, entropies)
}
