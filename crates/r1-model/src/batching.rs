//! Continuous batching: sequences that share decode steps, joining between steps and leaving as
//! they finish, the way vLLM and SGLang schedule a server's requests.
//!
//! A [`ContinuousBatch`] owns one [`KvCache`] whose rows are the running sequences. Joining
//! sequences are prefilled together in a batch of their own, lined up with the running cache
//! ([`KvCache::skip_slots`]) and appended to it ([`KvCache::append_rows`]); finished ones are
//! dropped from it ([`KvCache::retain_rows`]). When the shared slot axis runs out, the cache
//! grows, and once at its capacity it is compacted ([`KvCache::compact`]). A query attends to its
//! row's real slots and positions come from each row's own token count, so a sequence computes
//! the same numbers whatever runs beside it: greedy output does not depend on the company.

use crate::cache::KvCache;
use crate::error::{ModelError, Result};
use crate::generate::{FinishReason, hits_stop, last_logits, max_stop_chars};
use crate::model::{Batch, CausalLm};
use crate::rng::Rng;
use crate::sampling::{SamplingParams, sample, top_logprobs};
use crate::tokenizer::Tokenizer;

/// Caller-chosen handle of a sequence.
pub type SeqId = u64;

/// What one sequence generates.
#[derive(Debug, Clone)]
pub struct SeqParams {
    /// The prompt's token ids (at least one).
    pub prompt_ids: Vec<u32>,
    /// Token budget.
    pub max_new_tokens: usize,
    /// Next-token choice.
    pub sampling: SamplingParams,
    /// Seed of this sequence's sampler ([`crate::generate::row_seed`] gives the seeds that
    /// [`crate::generate()`] uses for its rows).
    pub seed: u64,
    /// Ids that end the sequence (kept as its last token).
    pub eos_token_ids: Vec<u32>,
    /// Texts that end the sequence once the decoded completion contains them.
    pub stop_strings: Vec<String>,
    /// Keep generating past eos ids.
    pub ignore_eos: bool,
    /// Alternatives reported with each token (OpenAI's `top_logprobs`); 0 for none.
    pub top_logprobs: usize,
}

/// One generated token of one sequence.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenEvent {
    /// The sequence.
    pub id: SeqId,
    /// The token.
    pub token: u32,
    /// Its log-prob under `softmax(logits / T)` (T = 1 when greedy), as [`sample`] reports.
    pub logprob: f32,
    /// The most likely tokens of the same distribution, when asked for.
    pub top_logprobs: Vec<(u32, f32)>,
    /// Set on the sequence's last token.
    pub finish: Option<FinishReason>,
}

#[derive(Debug)]
struct Row {
    id: SeqId,
    params: SeqParams,
    rng: Rng,
    /// Real tokens cached (the position of the next token fed).
    cached: usize,
    completion: Vec<u32>,
    max_stop_chars: usize,
}

/// The running sequences of a server, decoded together one token per step.
#[derive(Debug)]
pub struct ContinuousBatch {
    cache: Option<KvCache>,
    rows: Vec<Row>,
    capacity: usize,
    pad_token_id: u32,
}

/// Slots a cache grows by at least.
const GROW_SLOTS: usize = 256;

impl ContinuousBatch {
    /// An empty batch whose rows hold at most `capacity` tokens each (prompt plus completion).
    pub fn new(capacity: usize, pad_token_id: u32) -> Self {
        Self {
            cache: None,
            rows: Vec::new(),
            capacity: capacity.max(1),
            pad_token_id,
        }
    }

    /// Tokens a sequence may hold, prompt plus completion.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Running sequences.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether nothing runs.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Ids of the running sequences.
    pub fn ids(&self) -> Vec<SeqId> {
        self.rows.iter().map(|r| r.id).collect()
    }

    /// Slots of the shared cache in use (the longest row, plus slots skipped to line rows up).
    pub fn cache_len(&self) -> usize {
        self.cache.as_ref().map_or(0, KvCache::len)
    }

    /// Checks a sequence before it is admitted: a non-empty prompt, valid sampling settings and
    /// room for the prompt plus its budget.
    pub fn check(&self, params: &SeqParams) -> Result<()> {
        if params.prompt_ids.is_empty() {
            return Err(ModelError::invalid("the prompt needs at least one token"));
        }
        if params.max_new_tokens == 0 {
            return Err(ModelError::invalid("max_tokens must be at least 1"));
        }
        params
            .sampling
            .validate()
            .map_err(ModelError::InvalidArgument)?;
        let need = params.prompt_ids.len() + params.max_new_tokens;
        if need > self.capacity {
            return Err(ModelError::invalid(format!(
                "the prompt ({} tokens) plus max_tokens ({}) is {need} tokens, over the \
                 {}-token context",
                params.prompt_ids.len(),
                params.max_new_tokens,
                self.capacity
            )));
        }
        Ok(())
    }

    /// Prefills `new` sequences together, samples their first tokens and adds those that go on
    /// to the running batch. Returns one event per sequence (finished ones included).
    pub fn admit(
        &mut self,
        model: &CausalLm,
        new: Vec<(SeqId, SeqParams)>,
        tokenizer: Option<&Tokenizer>,
    ) -> Result<Vec<TokenEvent>> {
        if new.is_empty() {
            return Ok(Vec::new());
        }
        for (_, p) in &new {
            self.check(p)?;
            if !p.stop_strings.is_empty() && tokenizer.is_none() {
                return Err(ModelError::invalid("stop strings need a tokenizer"));
            }
        }
        let _span = tracing::debug_span!("admit", n = new.len()).entered();
        let prompts: Vec<Vec<u32>> = new.iter().map(|(_, p)| p.prompt_ids.clone()).collect();
        let batch = Batch::left_padded(&prompts, self.pad_token_id);
        let running = self.cache_len();
        let aligned = running.max(batch.seq);
        let config = model.config();
        let current_cap = self.cache.as_ref().map_or(0, KvCache::max_len);
        let cap = current_cap
            .max((aligned + GROW_SLOTS).min(self.capacity))
            .max(aligned);
        let mut fresh = KvCache::new(config, new.len(), cap, model.dtype(), &model.device());
        fresh.skip_slots(aligned - batch.seq)?;
        let offsets = vec![0; new.len()];
        let hidden = model.forward_hidden(&batch, &offsets, Some(&mut fresh))?;
        let logits = last_logits(model, hidden)?;
        let mut events = Vec::with_capacity(new.len());
        let mut keep = Vec::with_capacity(new.len());
        let mut joined = Vec::with_capacity(new.len());
        for (i, ((id, params), row_logits)) in new.into_iter().zip(&logits).enumerate() {
            let max_stop_chars = max_stop_chars(&params.stop_strings);
            let mut row = Row {
                id,
                rng: Rng::new(params.seed),
                cached: params.prompt_ids.len(),
                params,
                completion: Vec::new(),
                max_stop_chars,
            };
            let event = row.next_token(row_logits, tokenizer)?;
            if event.finish.is_none() {
                keep.push(i);
                joined.push(row);
            }
            events.push(event);
        }
        if keep.is_empty() {
            return Ok(events);
        }
        fresh.retain_rows(&keep)?;
        match self.cache.as_mut() {
            None => self.cache = Some(fresh),
            Some(cache) => {
                cache.grow(fresh.max_len());
                fresh.grow(cache.max_len());
                cache.skip_slots(aligned - running)?;
                cache.append_rows(fresh)?;
            }
        }
        self.rows.extend(joined);
        Ok(events)
    }

    /// One decode step for every running sequence; finished ones leave the batch.
    pub fn step(
        &mut self,
        model: &CausalLm,
        tokenizer: Option<&Tokenizer>,
    ) -> Result<Vec<TokenEvent>> {
        let Some(cache) = self.cache.as_mut() else {
            return Ok(Vec::new());
        };
        let _span = tracing::debug_span!("decode", batch = self.rows.len()).entered();
        if cache.len() + 1 > cache.max_len() {
            if cache.max_len() < self.capacity {
                let target = (cache.max_len() * 2)
                    .max(cache.len() + GROW_SLOTS)
                    .min(self.capacity);
                cache.grow(target);
            } else {
                cache.compact();
            }
        }
        let b = self.rows.len();
        let ids: Vec<u32> = self
            .rows
            .iter()
            .map(|r| {
                *r.completion
                    .last()
                    .expect("a running row has a token to feed")
            })
            .collect();
        let offsets: Vec<usize> = self.rows.iter().map(|r| r.cached).collect();
        let batch = Batch {
            ids,
            attention_mask: vec![true; b],
            batch: b,
            seq: 1,
            segments: None,
        };
        let hidden = model.forward_hidden(&batch, &offsets, Some(cache))?;
        let logits = last_logits(model, hidden)?;
        let mut events = Vec::with_capacity(b);
        let mut keep = Vec::with_capacity(b);
        for (i, (row, row_logits)) in self.rows.iter_mut().zip(&logits).enumerate() {
            row.cached += 1;
            let event = row.next_token(row_logits, tokenizer)?;
            if event.finish.is_none() {
                keep.push(i);
            }
            events.push(event);
        }
        self.keep_rows(&keep)?;
        Ok(events)
    }

    /// Drops a running sequence (a client that went away); returns whether it was running.
    pub fn cancel(&mut self, id: SeqId) -> Result<bool> {
        let keep: Vec<usize> = (0..self.rows.len())
            .filter(|&i| self.rows[i].id != id)
            .collect();
        if keep.len() == self.rows.len() {
            return Ok(false);
        }
        self.keep_rows(&keep)?;
        Ok(true)
    }

    fn keep_rows(&mut self, keep: &[usize]) -> Result<()> {
        if keep.len() == self.rows.len() {
            return Ok(());
        }
        if keep.is_empty() {
            self.rows.clear();
            self.cache = None;
            return Ok(());
        }
        if let Some(cache) = self.cache.as_mut() {
            cache.retain_rows(keep)?;
        }
        let mut rows: Vec<Option<Row>> = self.rows.drain(..).map(Some).collect();
        self.rows = keep.iter().filter_map(|&i| rows[i].take()).collect();
        Ok(())
    }
}

impl Row {
    fn next_token(&mut self, logits: &[f32], tokenizer: Option<&Tokenizer>) -> Result<TokenEvent> {
        let (token, logprob) = sample(logits, &self.params.sampling, &mut self.rng);
        let top = top_logprobs(
            logits,
            self.params.sampling.logprob_temperature(),
            self.params.top_logprobs,
        );
        self.completion.push(token);
        let mut stop = !self.params.ignore_eos && self.params.eos_token_ids.contains(&token);
        if !stop && let Some(tok) = tokenizer {
            stop = hits_stop(
                tok,
                &self.completion,
                &self.params.stop_strings,
                self.max_stop_chars,
            )?;
        }
        let finish = if stop {
            Some(FinishReason::Stop)
        } else if self.completion.len() >= self.params.max_new_tokens {
            Some(FinishReason::Length)
        } else {
            None
        };
        Ok(TokenEvent {
            id: self.id,
            token,
            logprob,
            top_logprobs: top,
            finish,
        })
    }
}
