//! Batched autoregressive generation with a KV cache: left-padded prefill, then one token per
//! row per step until every row meets an eos id, a stop string or its token budget.
//!
//! Run it on a device without autodiff (`device.without_autodiff()`, a `valid()` model): the
//! rollout phase of RL never needs gradients and tracked forward ops would never be freed.

use burn::tensor::Tensor;

use crate::cache::KvCache;
use crate::error::{ModelError, Result};
use crate::model::{Batch, CausalLm, read_f32};
use crate::rng::Rng;
use crate::sampling::{SamplingParams, sample};
use crate::tokenizer::Tokenizer;

/// Why a sequence stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinishReason {
    /// An eos id or a stop string ended it.
    Stop,
    /// The token budget ran out.
    Length,
}

impl FinishReason {
    /// `"stop"` or `"length"`, as OpenAI-style servers write it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stop => "stop",
            Self::Length => "length",
        }
    }
}

/// What to generate.
#[derive(Debug, Clone)]
pub struct GenerationConfig {
    /// Token budget per sequence.
    pub max_new_tokens: usize,
    /// Next-token choice.
    pub sampling: SamplingParams,
    /// Ids that end a sequence (kept as its last token).
    pub eos_token_ids: Vec<u32>,
    /// Texts that end a sequence once the decoded completion contains them (needs a tokenizer).
    pub stop_strings: Vec<String>,
    /// Keep generating past eos ids.
    pub ignore_eos: bool,
    /// Seed of the sampler; row `i` of a call draws from its own stream derived from it.
    pub seed: u64,
    /// Id written into padding slots (never attended to).
    pub pad_token_id: u32,
}

impl Default for GenerationConfig {
    fn default() -> Self {
        Self {
            max_new_tokens: 64,
            sampling: SamplingParams::default(),
            eos_token_ids: Vec::new(),
            stop_strings: Vec::new(),
            ignore_eos: false,
            seed: 0,
            pad_token_id: 0,
        }
    }
}

/// One generated sequence.
#[derive(Debug, Clone, PartialEq)]
pub struct Generation {
    /// The prompt's token ids.
    pub prompt_ids: Vec<u32>,
    /// The generated ids (an ending eos id included).
    pub completion_ids: Vec<u32>,
    /// `log softmax(logits / T)` of each generated id (T = 1 when greedy).
    pub completion_logprobs: Vec<f32>,
    /// Why it stopped.
    pub finish_reason: FinishReason,
}

/// The seed of row `row`'s sampler in a call seeded with `seed`: sampling `n` completions of one
/// prompt elsewhere (a server's `n` choices) with these seeds draws what [`generate`] draws.
pub fn row_seed(seed: u64, row: usize) -> u64 {
    seed ^ (row as u64)
        .wrapping_add(1)
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// The logits at the last position of `hidden` `[batch, seq, hidden]`, one host vector per row.
pub(crate) fn last_logits(model: &CausalLm, hidden: Tensor<3>) -> Result<Vec<Vec<f32>>> {
    let [b, t, h] = hidden.dims();
    let logits = model.logits(hidden.slice([0..b, t - 1..t, 0..h]));
    let v = logits.dims()[2];
    let flat = read_f32(logits)?;
    Ok((0..b).map(|r| flat[r * v..(r + 1) * v].to_vec()).collect())
}

/// Characters of the longest stop string (0 without any).
pub(crate) fn max_stop_chars(stop_strings: &[String]) -> usize {
    stop_strings
        .iter()
        .map(|s| s.chars().count())
        .max()
        .unwrap_or(0)
}

/// Whether the decoded tail of `completion` contains one of `stop_strings`; `max_stop` is
/// [`max_stop_chars`] of them. Only the last few tokens are decoded: a stop string that has just
/// appeared lies within them.
pub(crate) fn hits_stop(
    tokenizer: &Tokenizer,
    completion: &[u32],
    stop_strings: &[String],
    max_stop: usize,
) -> Result<bool> {
    if max_stop == 0 {
        return Ok(false);
    }
    let tail_start = completion.len().saturating_sub(max_stop + 8);
    let tail = tokenizer.decode(&completion[tail_start..], false)?;
    Ok(stop_strings.iter().any(|s| tail.contains(s.as_str())))
}

/// Generates a completion for each prompt, all in one batch.
pub fn generate(
    model: &CausalLm,
    prompts: &[Vec<u32>],
    config: &GenerationConfig,
    tokenizer: Option<&Tokenizer>,
) -> Result<Vec<Generation>> {
    let _span = tracing::info_span!("generate", batch = prompts.len()).entered();
    config
        .sampling
        .validate()
        .map_err(ModelError::InvalidArgument)?;
    if prompts.iter().any(Vec::is_empty) {
        return Err(ModelError::invalid("every prompt needs at least one token"));
    }
    if !config.stop_strings.is_empty() && tokenizer.is_none() {
        return Err(ModelError::invalid("stop strings need a tokenizer"));
    }
    if prompts.is_empty() {
        return Ok(Vec::new());
    }
    let b = prompts.len();
    let prompt_batch = Batch::left_padded(prompts, config.pad_token_id);
    let mut cache = KvCache::new(
        model.config(),
        b,
        prompt_batch.seq + config.max_new_tokens,
        model.dtype(),
        &model.device(),
    );
    let mut rngs: Vec<Rng> = (0..b).map(|r| Rng::new(row_seed(config.seed, r))).collect();
    let mut out: Vec<Generation> = prompts
        .iter()
        .map(|p| Generation {
            prompt_ids: p.clone(),
            completion_ids: Vec::new(),
            completion_logprobs: Vec::new(),
            finish_reason: FinishReason::Length,
        })
        .collect();
    let mut done = vec![config.max_new_tokens == 0; b];
    let max_stop = max_stop_chars(&config.stop_strings);

    let mut offsets = vec![0usize; b];
    let mut step_batch = prompt_batch;
    let mut step = 0;
    while !done.iter().all(|d| *d) {
        let span = if step == 0 { "prefill" } else { "decode" };
        let _s = tracing::debug_span!("step", phase = span, step).entered();
        let hidden = model.forward_hidden(&step_batch, &offsets, Some(&mut cache))?;
        let rows = last_logits(model, hidden)?;
        for (offset, row) in offsets
            .iter_mut()
            .zip(step_batch.attention_mask.chunks(step_batch.seq))
        {
            *offset += row.iter().filter(|m| **m).count();
        }
        let mut next_ids = vec![config.pad_token_id; b];
        let mut next_mask = vec![false; b];
        for r in 0..b {
            if done[r] {
                continue;
            }
            let (id, lp) = sample(&rows[r], &config.sampling, &mut rngs[r]);
            let g = &mut out[r];
            g.completion_ids.push(id);
            g.completion_logprobs.push(lp);
            let mut stop = !config.ignore_eos && config.eos_token_ids.contains(&id);
            if !stop && let Some(tok) = tokenizer {
                stop = hits_stop(tok, &g.completion_ids, &config.stop_strings, max_stop)?;
            }
            if stop {
                g.finish_reason = FinishReason::Stop;
                done[r] = true;
            } else if g.completion_ids.len() >= config.max_new_tokens {
                done[r] = true;
            } else {
                next_ids[r] = id;
                next_mask[r] = true;
            }
        }
        step_batch = Batch {
            ids: next_ids,
            attention_mask: next_mask,
            batch: b,
            seq: 1,
            segments: None,
        };
        step += 1;
    }
    Ok(out)
}
