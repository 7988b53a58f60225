//! Rejection sampling (DeepSeek-R1 §2.3.3): sample `k` completions per prompt, score them with a
//! [`RewardSet`], keep the correct ones, drop those that fail the readability filters
//! ([`crate::filters`]: mixed languages, long paragraphs, code blocks in the reasoning,
//! repetition), drop duplicates, and keep up to `n` per prompt (shortest correct first by
//! default). Every kept line carries its provenance: model, seed, sampling settings, scores.
//!
//! A completion is *correct* when the set's `accuracy` reward scores at least 1; a set without
//! an `accuracy` reward counts a completion correct when every reward that applies to it scores
//! at least 1 (rule-based rewards are 0/1).

use std::io::Write;
use std::path::{Path, PathBuf};

use r1_data::Sample;
use r1_model::{GenerationConfig, Pretrained, SamplingParams, generate};
use r1_rewards::RewardSet;
use serde_json::{Map, Value, json};

use crate::error::{DistillError, Result};
use crate::filters::{Candidate, FilterConfig, FilterStats, KeepOrder, check, dedup_key, select};
use crate::tokenize::SftTokenizer;

/// Settings of one rejection-sampling run.
#[derive(Debug, Clone)]
pub struct SampleSettings {
    /// Completions per prompt (`--num-samples`).
    pub num_samples: usize,
    /// Completions kept per prompt at most (`--keep`).
    pub keep: usize,
    /// Apply the readability filters (`--filters`).
    pub filters: bool,
    /// Filter thresholds.
    pub filter_config: FilterConfig,
    /// Which correct completions are kept first.
    pub order: KeepOrder,
    /// Sampling temperature (0: greedy).
    pub temperature: f32,
    /// Nucleus mass.
    pub top_p: f32,
    /// Token budget per completion.
    pub max_new_tokens: usize,
    /// Sampler seed; prompt `i` draws from its own stream.
    pub seed: u64,
    /// Prompts generated together in one batch (`k` rows each).
    pub prompts_per_batch: usize,
}

impl Default for SampleSettings {
    fn default() -> Self {
        Self {
            num_samples: 4,
            keep: 1,
            filters: false,
            filter_config: FilterConfig::default(),
            order: KeepOrder::Shortest,
            temperature: 0.6,
            top_p: 0.95,
            max_new_tokens: 512,
            seed: 0,
            prompts_per_batch: 4,
        }
    }
}

/// Whether a scored completion is correct (see the module docs).
pub fn is_correct(names: &[String], values: &[Option<f32>]) -> bool {
    if let Some(i) = names.iter().position(|n| n == "accuracy") {
        return values.get(i).copied().flatten().is_some_and(|v| v >= 1.0);
    }
    let applied: Vec<f32> = values.iter().flatten().copied().collect();
    !applied.is_empty() && applied.iter().all(|&v| v >= 1.0)
}

/// Runs rejection sampling over `samples` and writes the kept completions to `out` (JSONL,
/// written atomically). Returns the statistics per filter.
pub fn rejection_sample(
    model: &Pretrained,
    tokenizer: &SftTokenizer<'_>,
    samples: &[Sample],
    rewards: &RewardSet,
    settings: &SampleSettings,
    out: &Path,
    model_name: &str,
) -> Result<FilterStats> {
    let _span = tracing::info_span!("rejection_sampling", prompts = samples.len()).entered();
    let tok = model.tokenizer.as_ref().ok_or_else(|| {
        DistillError::Data(format!(
            "{}: no tokenizer.json: sampling needs one",
            model.folder.display()
        ))
    })?;
    let names: Vec<String> = rewards.entries().iter().map(|e| e.name.clone()).collect();
    let mut stats = FilterStats::default();
    let mut lines: Vec<u8> = Vec::new();
    let k = settings.num_samples.max(1);
    let sampling = if settings.temperature <= 0.0 {
        SamplingParams::greedy()
    } else {
        SamplingParams {
            temperature: settings.temperature,
            top_p: settings.top_p,
            ..SamplingParams::default()
        }
    };
    let provenance = json!({
        "model": model_name,
        "seed": settings.seed,
        "temperature": settings.temperature,
        "top_p": settings.top_p,
        "max_new_tokens": settings.max_new_tokens,
        "num_samples": k,
        "filters": settings.filters,
    });
    let mut progress = r1_grpo::Progress::new("sample", samples.len() as u64, 0);
    let per_batch = settings.prompts_per_batch.max(1);
    let mut done = 0u64;
    for (chunk_index, chunk) in samples.chunks(per_batch).enumerate() {
        let mut prompts = Vec::with_capacity(chunk.len() * k);
        for s in chunk {
            let ids = tokenizer.prompt_ids(s)?;
            prompts.extend(std::iter::repeat_n(ids, k));
        }
        let config = GenerationConfig {
            max_new_tokens: settings.max_new_tokens,
            sampling: sampling.clone(),
            eos_token_ids: model.eos_token_ids(),
            stop_strings: Vec::new(),
            ignore_eos: false,
            seed: settings
                .seed
                .wrapping_add((chunk_index as u64).wrapping_mul(0x2545_F491_4F6C_DD1D)),
            pad_token_id: model.pad_token_id(),
        };
        let generations = generate(&model.model, &prompts, &config, Some(tok))?;
        let mut tokens = 0u64;
        for (p, sample) in chunk.iter().enumerate() {
            let rows = &generations[p * k..(p + 1) * k];
            let texts: Vec<String> = rows
                .iter()
                .map(|g| tok.decode(&g.completion_ids, true))
                .collect::<r1_model::Result<_>>()?;
            let inputs: Vec<_> = rows
                .iter()
                .zip(&texts)
                .map(|(g, t)| {
                    let mut input = sample.to_reward_input(t);
                    input.completion_tokens = g.completion_ids.len();
                    input.truncated = g.finish_reason == r1_model::FinishReason::Length;
                    input
                })
                .collect();
            let scored = rewards.score(&inputs)?;
            let mut candidates = Vec::with_capacity(k);
            let mut seen = std::collections::HashSet::new();
            for (j, text) in texts.iter().enumerate() {
                tokens += rows[j].completion_ids.len() as u64;
                let values: Vec<Option<f32>> = scored.values.iter().map(|v| v[j]).collect();
                let correct = is_correct(&names, &values);
                let rejections = if settings.filters && correct {
                    check(text, &settings.filter_config)
                } else {
                    Vec::new()
                };
                let duplicate = correct && rejections.is_empty() && !seen.insert(dedup_key(text));
                stats.record(correct, &rejections, duplicate);
                candidates.push(Candidate {
                    completion: text,
                    tokens: rows[j].completion_ids.len(),
                    total: scored.totals[j].unwrap_or(f32::NEG_INFINITY),
                    correct: correct && rejections.is_empty() && !duplicate,
                    index: j,
                });
            }
            let kept = select(&candidates, settings.keep, settings.order);
            stats.kept += kept.len();
            for j in kept {
                let g = &rows[j];
                let mut line: Map<String, Value> = sample.record.clone();
                let mut rewards_map = Map::new();
                for (r, name) in names.iter().enumerate() {
                    rewards_map.insert(name.clone(), json!(scored.values[r][j]));
                }
                line.insert("completion".into(), Value::String(texts[j].clone()));
                line.insert("completion_ids".into(), json!(g.completion_ids));
                line.insert("rewards".into(), Value::Object(rewards_map));
                line.insert("total".into(), json!(scored.totals[j]));
                line.insert("finish_reason".into(), json!(g.finish_reason.as_str()));
                line.insert("sample_index".into(), json!(j));
                line.insert("provenance".into(), provenance.clone());
                serde_json::to_writer(&mut lines, &Value::Object(line))
                    .map_err(|e| DistillError::io(out, e))?;
                lines.push(b'\n');
            }
        }
        done += chunk.len() as u64;
        progress.update(done, tokens, &format!("kept {}/{}", stats.kept, stats.seen));
    }
    write_atomic(out, &lines)?;
    Ok(stats)
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    if let Some(parent) = path.parent()
        && !parent.as_os_str().is_empty()
    {
        std::fs::create_dir_all(parent).map_err(|e| DistillError::io(parent, e))?;
    }
    let tmp = PathBuf::from(format!("{}.tmp-{}", path.display(), std::process::id()));
    let mut f = std::fs::File::create(&tmp).map_err(|e| DistillError::io(&tmp, e))?;
    f.write_all(bytes).map_err(|e| DistillError::io(&tmp, e))?;
    f.sync_all().map_err(|e| DistillError::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| DistillError::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn correctness_reads_accuracy_or_all_rewards() {
        let names = vec!["format".to_string(), "accuracy".to_string()];
        assert!(is_correct(&names, &[Some(0.0), Some(1.0)]));
        assert!(!is_correct(&names, &[Some(1.0), Some(0.0)]));
        assert!(!is_correct(&names, &[Some(1.0), None]));
        let names = vec!["format".to_string(), "code".to_string()];
        assert!(is_correct(&names, &[Some(1.0), None]));
        assert!(!is_correct(&names, &[Some(1.0), Some(0.5)]));
        assert!(!is_correct(&names, &[None, None]));
    }
}
