//! Per-token log-probabilities of given continuations, computed over chunks of positions so
//! that the extra memory is `O(chunk x vocab)` instead of `O(batch x seq x vocab)`.
//!
//! This is what policy-gradient training calls for the policy, old-policy and reference
//! log-probs: `log softmax(logits / T)[target]`, TRL's `selective_log_softmax` of
//! `logits / temperature`.

use burn::tensor::activation::log_softmax;
use burn::tensor::{DType, Int, Tensor, TensorData};

use crate::error::{ModelError, Result};
use crate::model::{Batch, CausalLm, read_f32};

/// Default number of logits elements materialised at once (64 Mi floats, 256 MiB in f32).
pub const DEFAULT_CHUNK_ELEMENTS: usize = 64 << 20;

/// Log-probs (and optionally entropies) of `targets` under the head applied to `hidden`.
///
/// # Shapes
/// `hidden`: `[batch, seq, hidden]`, `targets`: `[batch, seq]` ->
/// (`[batch, seq]`, `Option<[batch, seq]>`)
///
/// Rows of `chunk_rows` positions are projected to the vocabulary one chunk at a time; the
/// logits are cast to f32 before the log-softmax, whatever the model's dtype.
pub fn selective_log_softmax(
    model: &CausalLm,
    hidden: Tensor<3>,
    targets: Tensor<2, Int>,
    temperature: f32,
    chunk_rows: usize,
    with_entropy: bool,
) -> (Tensor<2>, Option<Tensor<2>>) {
    let [b, t, h] = hidden.dims();
    let n = b * t;
    let rows = hidden.reshape([n, h]);
    let targets = targets.reshape([n, 1]);
    let chunk = chunk_rows.max(1);
    let mut logps = Vec::new();
    let mut entropies = Vec::new();
    let mut start = 0;
    while start < n {
        let end = (start + chunk).min(n);
        let logits = model
            .logits(rows.clone().slice([start..end, 0..h]))
            .cast(DType::F32); // [chunk, vocab]
        let logits = if temperature != 1.0 {
            logits / temperature as f64
        } else {
            logits
        };
        let lsm = log_softmax(logits, 1);
        let tgt = targets.clone().slice([start..end, 0..1]);
        logps.push(lsm.clone().gather(1, tgt));
        if with_entropy {
            entropies.push((lsm.clone().exp() * lsm).sum_dim(1).neg());
        }
        start = end;
    }
    let logps = Tensor::cat(logps, 0).reshape([b, t]);
    let entropies = with_entropy.then(|| Tensor::cat(entropies, 0).reshape([b, t]));
    (logps, entropies)
}

/// Rows per chunk that keep a chunk's logits within `elements` values.
pub fn chunk_rows_for(vocab: usize, elements: usize) -> usize {
    (elements / vocab.max(1)).max(1)
}

/// `log p(continuation[j] | prompt + continuation[..j])` for each pair, in one left-padded batch.
///
/// Every prompt needs at least one token (the first continuation token is predicted from the
/// prompt's last position).
pub fn continuation_logprobs(
    model: &CausalLm,
    pairs: &[(Vec<u32>, Vec<u32>)],
    temperature: f32,
    pad_token_id: u32,
) -> Result<Vec<Vec<f32>>> {
    let _span = tracing::info_span!("logprobs", batch = pairs.len()).entered();
    if !(temperature > 0.0 && temperature.is_finite()) {
        return Err(ModelError::invalid(format!(
            "temperature must be positive, got {temperature}"
        )));
    }
    if pairs.iter().any(|(p, _)| p.is_empty()) {
        return Err(ModelError::invalid(
            "every prompt needs at least one token to predict the continuation from",
        ));
    }
    let cmax = pairs.iter().map(|(_, c)| c.len()).max().unwrap_or(0);
    if cmax == 0 {
        return Ok(vec![Vec::new(); pairs.len()]);
    }
    let sequences: Vec<Vec<u32>> = pairs
        .iter()
        .map(|(p, c)| p.iter().chain(c).copied().collect())
        .collect();
    let batch = Batch::left_padded(&sequences, pad_token_id);
    let (b, t) = (batch.batch, batch.seq);
    let hidden = model.forward_hidden(&batch, &vec![0; b], None)?;
    let hs = hidden.dims()[2];
    // Sequences end at the right edge: position t-1-cmax+j predicts token t-cmax+j.
    let hidden = hidden.slice([0..b, t - 1 - cmax..t - 1, 0..hs]);
    let targets: Vec<i64> = (0..b)
        .flat_map(|r| {
            batch.ids[r * t + t - cmax..(r + 1) * t]
                .iter()
                .map(|&i| i as i64)
        })
        .collect();
    let device = model.device();
    let targets = Tensor::<2, Int>::from_data(TensorData::new(targets, [b, cmax]), &device);
    let chunk = chunk_rows_for(model.config().vocab_size, DEFAULT_CHUNK_ELEMENTS);
    let (logps, _) = selective_log_softmax(model, hidden, targets, temperature, chunk, false);
    let flat = read_f32(logps)?;
    Ok(pairs
        .iter()
        .enumerate()
        .map(|(r, (_, c))| flat[r * cmax + cmax - c.len()..(r + 1) * cmax].to_vec())
        .collect())
}
