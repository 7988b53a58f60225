//! Evaluation as DeepSeek-R1 reports it: `k` samples per problem at temperature 0.6 and top-p
//! 0.95; **pass@1** is the mean correctness over all `n * k` samples, **cons@k** the share of
//! problems whose majority answer (over the `k` extracted answers) is correct, **pass@k** the
//! unbiased estimator of Chen et al. (2021), `1 - C(k_total - c, k) / C(k_total, k)` averaged
//! over problems, plus the share of well-formatted completions and the mean completion length.
//!
//! A completion is correct when the reward set's `accuracy` reward scores at least 1 (or, in a
//! set without one, every reward that applies does: [`r1_distill::rejection::is_correct`]);
//! well formatted when its `format` reward scores at least 1 (R1's strict
//! `<think>…</think><answer>…</answer>` check when the set has no `format` reward).

use std::collections::HashMap;

use r1_data::Sample;
use r1_distill::rejection::is_correct;
use r1_distill::tokenize::SftTokenizer;
use r1_model::{GenerationConfig, Pretrained, SamplingParams, generate};
use r1_rewards::RewardSet;
use r1_rewards::builtin::{AnswerStyle, format_reward};
use serde_json::{Value, json};

use crate::error::{PipelineError, Result};

/// How to sample for an evaluation.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalSettings {
    /// Samples per problem (`k`; R1 uses 4 to 64). Default 8.
    pub num_samples: usize,
    /// `k` of pass@k (at most `num_samples`; default `num_samples`).
    pub pass_k: Option<usize>,
    /// Sampling temperature (R1: 0.6; 0 is greedy).
    pub temperature: f32,
    /// Nucleus mass (R1: 0.95).
    pub top_p: f32,
    /// Token budget per completion.
    pub max_new_tokens: usize,
    /// Sampler seed.
    pub seed: u64,
    /// Problems generated together (`num_samples` rows each).
    pub prompts_per_batch: usize,
    /// Evaluate only the first `limit` problems.
    pub limit: Option<usize>,
}

impl Default for EvalSettings {
    fn default() -> Self {
        Self {
            num_samples: 8,
            pass_k: None,
            temperature: 0.6,
            top_p: 0.95,
            max_new_tokens: 512,
            seed: 0,
            prompts_per_batch: 16,
            limit: None,
        }
    }
}

impl EvalSettings {
    /// Checks the settings; the error names the setting.
    pub fn validate(&self) -> Result<()> {
        let bad = |key: &str, message: String| Err(PipelineError::config(key, message));
        if self.num_samples == 0 {
            return bad("num_samples", "must be at least 1".into());
        }
        if let Some(k) = self.pass_k
            && (k == 0 || k > self.num_samples)
        {
            return bad(
                "pass_k",
                format!("must be in 1..={} (num_samples), got {k}", self.num_samples),
            );
        }
        if !(self.temperature >= 0.0 && self.temperature.is_finite()) {
            return bad(
                "temperature",
                format!("must be >= 0, got {}", self.temperature),
            );
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return bad("top_p", format!("must be in (0, 1], got {}", self.top_p));
        }
        if self.max_new_tokens == 0 {
            return bad("max_new_tokens", "must be at least 1".into());
        }
        Ok(())
    }

    fn k(&self) -> usize {
        self.pass_k.unwrap_or(self.num_samples)
    }
}

/// What an evaluation measured; [`EvalResult::to_json`] is `r1 eval --json`'s line.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalResult {
    /// The benchmark's name (a file name or a dataset name).
    pub benchmark: String,
    /// Problems.
    pub n: usize,
    /// Samples per problem.
    pub k: usize,
    /// `k` of pass@k.
    pub pass_k: usize,
    /// Mean correctness over every sample.
    pub pass_at_1: f64,
    /// Majority-vote accuracy.
    pub cons_at_k: f64,
    /// Unbiased pass@k.
    pub pass_at_k: f64,
    /// Share of well-formatted completions.
    pub format: f64,
    /// Mean completion length in tokens.
    pub mean_tokens: f64,
    /// Accuracy of each problem (`correct / k`), in benchmark order.
    pub per_problem: Vec<f64>,
}

impl EvalResult {
    /// `{"benchmark", "n", "k", "pass@1", "cons@k", "pass@k", "format", "mean_tokens"}`.
    pub fn to_json(&self) -> Value {
        json!({
            "benchmark": self.benchmark,
            "n": self.n,
            "k": self.k,
            "pass@1": self.pass_at_1,
            "cons@k": self.cons_at_k,
            "pass@k": self.pass_at_k,
            "format": self.format,
            "mean_tokens": self.mean_tokens,
        })
    }

    /// `(metric, value)` pairs with the names of `run.json`'s evals.
    pub fn metrics(&self) -> [(&'static str, f64); 4] {
        [
            ("pass@1", self.pass_at_1),
            ("cons@k", self.cons_at_k),
            ("pass@k", self.pass_at_k),
            ("format", self.format),
        ]
    }
}

/// Unbiased pass@k of one problem with `n` samples of which `c` are correct (Chen et al. 2021):
/// `1 - C(n - c, k) / C(n, k)`, computed as a product so that it never overflows.
pub fn pass_at_k(n: usize, c: usize, k: usize) -> f64 {
    if k == 0 || n == 0 {
        return 0.0;
    }
    let k = k.min(n);
    if n - c < k {
        return 1.0;
    }
    // C(n-c, k) / C(n, k) = prod_{i=n-c+1}^{n} (1 - k / i)
    let mut miss = 1.0f64;
    for i in (n - c + 1)..=n {
        miss *= 1.0 - k as f64 / i as f64;
    }
    1.0 - miss
}

/// The majority answer of a problem: the most frequent extracted answer (ties go to the one
/// seen first), with whether a sample giving it was correct. Samples without an answer do not
/// vote; with no votes at all the problem counts as wrong.
pub fn majority(answers: &[Option<String>], correct: &[bool]) -> bool {
    let mut counts: HashMap<&str, (usize, usize, bool)> = HashMap::new();
    for (i, (a, &ok)) in answers.iter().zip(correct).enumerate() {
        if let Some(a) = a {
            let e = counts.entry(a.as_str()).or_insert((0, i, false));
            e.0 += 1;
            e.2 |= ok;
        }
    }
    counts
        .values()
        .max_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)))
        .is_some_and(|e| e.2)
}

/// The answer a completion commits to, for voting: `<answer>…</answer>`, else the last
/// `\boxed{…}`, else the text after `</think>`; whitespace-normalised.
pub fn vote_key(completion: &str) -> Option<String> {
    let answer = r1_data::synthetic::extract_answer(completion)
        .map(str::to_owned)
        .or_else(|| r1_rewards::math::extract_boxed(completion))?;
    let key = answer.split_whitespace().collect::<Vec<_>>().join(" ");
    (!key.is_empty()).then_some(key)
}

/// Samples `settings.num_samples` completions for each problem of `samples` with `model`,
/// scores them with `rewards` and aggregates R1's metrics.
pub fn evaluate(
    model: &Pretrained,
    tokenizer: &SftTokenizer<'_>,
    samples: &[Sample],
    rewards: &RewardSet,
    settings: &EvalSettings,
    benchmark: &str,
) -> Result<EvalResult> {
    settings.validate()?;
    let _span = tracing::info_span!("eval", benchmark, problems = samples.len()).entered();
    let tok = model.tokenizer.as_ref().ok_or_else(|| {
        PipelineError::Data(format!(
            "{}: no tokenizer.json: evaluation needs one",
            model.folder.display()
        ))
    })?;
    let samples = match settings.limit {
        Some(l) => &samples[..l.min(samples.len())],
        None => samples,
    };
    if samples.is_empty() {
        return Err(PipelineError::Data(format!(
            "benchmark `{benchmark}` has no problems"
        )));
    }
    let names: Vec<String> = rewards.entries().iter().map(|e| e.name.clone()).collect();
    let format_index = names.iter().position(|n| n == "format");
    let k = settings.num_samples;
    let sampling = if settings.temperature <= 0.0 {
        SamplingParams::greedy()
    } else {
        SamplingParams {
            temperature: settings.temperature,
            top_p: settings.top_p,
            ..SamplingParams::default()
        }
    };
    let mut progress =
        r1_grpo::Progress::new(&format!("eval {benchmark}"), samples.len() as u64, 0);
    let (mut correct_total, mut format_total, mut tokens_total) = (0usize, 0usize, 0usize);
    let (mut cons, mut pass_k) = (0usize, 0.0f64);
    let mut per_problem = Vec::with_capacity(samples.len());
    let per_batch = settings.prompts_per_batch.max(1);
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
                .wrapping_add((chunk_index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)),
            pad_token_id: model.pad_token_id(),
        };
        let generations = generate(&model.model, &prompts, &config, Some(tok))?;
        let mut chunk_tokens = 0u64;
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
            let mut correct = Vec::with_capacity(k);
            for (j, text) in texts.iter().enumerate() {
                let values: Vec<Option<f32>> = scored.values.iter().map(|v| v[j]).collect();
                correct.push(is_correct(&names, &values));
                let formatted = match format_index {
                    Some(f) => values[f].is_some_and(|v| v >= 1.0),
                    None => format_reward(text, AnswerStyle::Tags, false) >= 1.0,
                };
                format_total += usize::from(formatted);
                tokens_total += rows[j].completion_ids.len();
                chunk_tokens += rows[j].completion_ids.len() as u64;
            }
            let c = correct.iter().filter(|&&x| x).count();
            correct_total += c;
            per_problem.push(c as f64 / k as f64);
            pass_k += pass_at_k(k, c, settings.k());
            let answers: Vec<Option<String>> = texts.iter().map(|t| vote_key(t)).collect();
            cons += usize::from(majority(&answers, &correct));
        }
        let done = ((chunk_index + 1) * per_batch).min(samples.len()) as u64;
        let mean = correct_total as f64 / (done as usize * k) as f64;
        progress.update(done, chunk_tokens, &format!("pass@1 {mean:.3}"));
    }
    let n = samples.len();
    let all = (n * k) as f64;
    Ok(EvalResult {
        benchmark: benchmark.to_string(),
        n,
        k,
        pass_k: settings.k(),
        pass_at_1: correct_total as f64 / all,
        cons_at_k: cons as f64 / n as f64,
        pass_at_k: pass_k / n as f64,
        format: format_total as f64 / all,
        mean_tokens: tokens_total as f64 / all,
        per_problem,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binom(n: u64, k: u64) -> f64 {
        (0..k).fold(1.0, |acc, i| acc * (n - i) as f64 / (i + 1) as f64)
    }

    #[test]
    fn pass_at_k_is_chens_estimator() {
        for n in 1..=12u64 {
            for c in 0..=n {
                for k in 1..=n {
                    let want = if n - c < k {
                        1.0
                    } else {
                        1.0 - binom(n - c, k) / binom(n, k)
                    };
                    let got = pass_at_k(n as usize, c as usize, k as usize);
                    assert!(
                        (got - want).abs() < 1e-12,
                        "n {n} c {c} k {k}: {got} vs {want}"
                    );
                }
            }
        }
        assert_eq!(pass_at_k(8, 2, 1), 0.25);
        assert_eq!(pass_at_k(8, 0, 8), 0.0);
        assert_eq!(pass_at_k(8, 1, 8), 1.0);
    }

    #[test]
    fn the_majority_answer_decides_cons_at_k() {
        let a = |xs: &[Option<&str>]| xs.iter().map(|x| x.map(str::to_owned)).collect::<Vec<_>>();
        assert!(majority(
            &a(&[Some("7"), Some("7"), Some("5")]),
            &[true, true, false]
        ));
        assert!(!majority(
            &a(&[Some("5"), Some("7"), Some("5")]),
            &[false, true, false]
        ));
        // A tie goes to the answer seen first.
        assert!(majority(&a(&[Some("7"), Some("5")]), &[true, false]));
        assert!(!majority(&a(&[Some("5"), Some("7")]), &[false, true]));
        // No answer, no vote.
        assert!(majority(
            &a(&[None, None, Some("7")]),
            &[false, false, true]
        ));
        assert!(!majority(&a(&[None, None]), &[false, false]));
        assert_eq!(
            vote_key("<think>x</think><answer> -3 </answer>").as_deref(),
            Some("-3")
        );
        assert_eq!(vote_key("so \\boxed{1 / 2}").as_deref(), Some("1 / 2"));
        assert_eq!(vote_key("no answer"), None);
    }
}
