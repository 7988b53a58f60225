//! Seeded synthetic reasoning tasks with difficulty knobs, worked `<think>…</think>` solutions
//! and exact checkers: multi-step [`arithmetic`] chains (the tiny R1 recipe's task) and
//! [`countdown`].
//!
//! ```toml
//! [task]
//! task = "arithmetic"   # or "countdown"
//! operands = 4
//! ops = ["+", "-"]
//! ```
//!
//! Each sample's completion is `<think>steps</think><answer>answer</answer>`, its `answers`
//! hold the reference answer, and its record (which becomes a reward's metadata through
//! [`Sample::to_reward_input`]) names the task (`task`) and, for Countdown, `nums`, `target`
//! and `use_all`, the keys the `countdown` reward plugin reads. Writing a sample's record as a
//! JSON line and reading it back gives the same sample. [`Checker`] scores completions of
//! either task 1.0 or 0.0.

pub mod arithmetic;
pub mod corpus;
pub mod countdown;

use std::collections::HashSet;

use r1_rewards::{Reward, RewardInput};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub use arithmetic::{ArithOp, ArithmeticConfig};
pub use corpus::{CorpusConfig, arithmetic_corpus};
pub use countdown::CountdownConfig;

use crate::error::{DataError, Result};
use crate::rng::{Rng, mix};
use crate::sample::{Content, Sample};

/// A synthetic task and its knobs, selected in TOML by `task = "..."`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "task", rename_all = "snake_case")]
pub enum TaskConfig {
    /// Multi-step arithmetic chains (`6-0-4+5=`).
    Arithmetic(ArithmeticConfig),
    /// Countdown: reach a target with `+ - * /`.
    Countdown(CountdownConfig),
}

impl TaskConfig {
    /// The task's name, as in TOML and in each sample's `task` field.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Arithmetic(_) => "arithmetic",
            Self::Countdown(_) => "countdown",
        }
    }

    /// Checks the knobs.
    pub fn validate(&self) -> Result<()> {
        match self {
            Self::Arithmetic(c) => c.validate(),
            Self::Countdown(c) => c.validate(),
        }
        .map_err(DataError::Config)
    }

    /// Parses and validates a task from TOML text (`task = "countdown"`, then its knobs).
    pub fn from_toml(text: &str) -> Result<Self> {
        let task: Self = toml::from_str(text).map_err(|e| DataError::Config(e.to_string()))?;
        task.validate()?;
        Ok(task)
    }

    /// The checker for this task's completions.
    pub fn checker(&self) -> Checker {
        Checker
    }

    /// One sample from `rng`.
    fn sample(&self, rng: &mut Rng, id: String) -> Sample {
        let mut record = Map::new();
        record.insert("id".into(), Value::String(id.clone()));
        record.insert("task".into(), Value::String(self.name().into()));
        let (prompt, steps, answer) = match self {
            Self::Arithmetic(config) => {
                let p = arithmetic::draw(config, rng);
                (p.prompt, p.steps, p.answer.to_string())
            }
            Self::Countdown(config) => {
                let p = countdown::draw(config, rng);
                let nums = p
                    .nums
                    .iter()
                    .map(i64::to_string)
                    .collect::<Vec<_>>()
                    .join(", ");
                let rule = if config.use_all {
                    "exactly once"
                } else {
                    "at most once"
                };
                let prompt = format!(
                    "Using the numbers [{nums}], make {} with + - * / (each number {rule}).",
                    p.target
                );
                record.insert("target".into(), Value::from(p.target));
                record.insert(
                    "nums".into(),
                    Value::Array(p.nums.iter().map(|&n| Value::from(n)).collect()),
                );
                record.insert("use_all".into(), Value::Bool(config.use_all));
                (prompt, p.steps, p.expression)
            }
        };
        let final_answer = format!("<answer>{answer}</answer>");
        let completion = format!("<think>{steps}</think>{final_answer}");
        // Field order as in a prompt-completion record: id, task, prompt, completion, answer.
        let mut ordered = Map::new();
        for key in ["id", "task"] {
            if let Some(v) = record.remove(key) {
                ordered.insert(key.into(), v);
            }
        }
        ordered.insert("prompt".into(), Value::String(prompt.clone()));
        ordered.insert("completion".into(), Value::String(completion.clone()));
        ordered.insert("answer".into(), Value::String(answer.clone()));
        ordered.extend(record);
        Sample {
            id,
            prompt: Content::Text(prompt),
            completion: Some(Content::Text(completion)),
            reasoning: Some(steps),
            final_answer: Some(final_answer),
            answers: vec![answer],
            record: ordered,
        }
    }
}

fn expect_valid(task: &TaskConfig) {
    if let Err(e) = task.validate() {
        panic!("{e}");
    }
}

/// `n` samples of `task`, the same for the same `seed`; ids are `<task>:<seed>:<i>`. Prompts
/// are drawn independently, so they may repeat; use [`generate_split`] for a held-out set.
///
/// # Panics
/// When the config is invalid ([`TaskConfig::validate`]; [`TaskConfig::from_toml`] only
/// returns valid ones).
pub fn generate(task: &TaskConfig, n: usize, seed: u64) -> Vec<Sample> {
    expect_valid(task);
    let mut rng = Rng::new(seed);
    (0..n)
        .map(|i| task.sample(&mut rng, format!("{}:{seed}:{i}", task.name())))
        .collect()
}

/// A training set and a held-out set whose prompts are all distinct and never appear in the
/// training set (training prompts may repeat among themselves, like [`generate`]'s). Each set
/// has its own stream derived from `seed`, so the held-out set depends only on `seed` and
/// `n_eval`; ids are `<task>:<seed>:train:<i>` and `<task>:<seed>:eval:<i>`. When the task
/// has too few distinct prompts, the sets come out short, with a warning.
///
/// # Panics
/// When the config is invalid, as for [`generate`].
pub fn generate_split(
    task: &TaskConfig,
    n_train: usize,
    n_eval: usize,
    seed: u64,
) -> (Vec<Sample>, Vec<Sample>) {
    expect_valid(task);
    let name = task.name();
    let prompt_of = |s: &Sample| s.prompt_text().unwrap_or_default().to_owned();

    let mut rng = Rng::new(mix(&[seed, 0xE7A1]));
    let mut held_out: HashSet<String> = HashSet::new();
    let mut eval = Vec::with_capacity(n_eval);
    let mut misses = 0usize;
    let patience = 1000 + 20 * n_eval;
    while eval.len() < n_eval && misses < patience {
        let s = task.sample(&mut rng, format!("{name}:{seed}:eval:{}", eval.len()));
        if held_out.insert(prompt_of(&s)) {
            eval.push(s);
        } else {
            misses += 1;
        }
    }
    if eval.len() < n_eval {
        tracing::warn!(
            "{name}: only {} distinct held-out prompts found of {n_eval} asked",
            eval.len()
        );
    }

    let mut rng = Rng::new(mix(&[seed, 0x7FA1]));
    let mut train = Vec::with_capacity(n_train);
    let mut misses = 0usize;
    let patience = 1000 + 20 * n_train;
    while train.len() < n_train && misses < patience {
        let s = task.sample(&mut rng, format!("{name}:{seed}:train:{}", train.len()));
        if held_out.contains(&prompt_of(&s)) {
            misses += 1;
        } else {
            train.push(s);
        }
    }
    if train.len() < n_train {
        tracing::warn!(
            "{name}: only {} training prompts outside the held-out set of {n_train} asked",
            train.len()
        );
    }
    (train, eval)
}

/// The answer of a completion: the last `<answer>…</answer>`, else the text after the last
/// `</think>`; trimmed, `None` when empty or absent.
pub fn extract_answer(completion: &str) -> Option<&str> {
    let text = match completion.rfind("<answer>") {
        Some(open) => {
            let rest = &completion[open + "<answer>".len()..];
            &rest[..rest.find("</answer>")?]
        }
        None => {
            let close = completion.rfind("</think>")?;
            &completion[close + "</think>".len()..]
        }
    };
    let text = text.trim();
    (!text.is_empty()).then_some(text)
}

/// Scores completions of the synthetic tasks: 1.0 when the answer (see [`extract_answer`]) is
/// right, 0.0 otherwise, `None` for inputs that are not synthetic tasks. The task comes from
/// the `task` metadata field (which [`Sample::to_reward_input`] fills from the record):
/// arithmetic compares the integer with the reference answer; Countdown checks that the
/// expression reaches `target` using only `nums` ([`countdown::check`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct Checker;

impl Checker {
    /// Scores one input.
    pub fn score_one(&self, input: &RewardInput) -> Option<f32> {
        let task = input.metadata.get("task").and_then(Value::as_str)?;
        let correct = match task {
            "arithmetic" => {
                let expected: i64 = input.answers.first()?.trim().parse().ok()?;
                extract_answer(&input.completion).is_some_and(|a| arithmetic::check(a, expected))
            }
            "countdown" => {
                let target = input.metadata.get("target").and_then(Value::as_i64)?;
                let nums = input
                    .metadata
                    .get("nums")
                    .or_else(|| input.metadata.get("numbers"))
                    .and_then(Value::as_array)?
                    .iter()
                    .map(Value::as_i64)
                    .collect::<Option<Vec<_>>>()?;
                let use_all = input
                    .metadata
                    .get("use_all")
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                extract_answer(&input.completion)
                    .is_some_and(|a| countdown::check(a, &nums, target, use_all))
            }
            _ => return None,
        };
        Some(if correct { 1.0 } else { 0.0 })
    }
}

impl Reward for Checker {
    fn score(&self, inputs: &[RewardInput]) -> r1_rewards::Result<Vec<Option<f32>>> {
        Ok(inputs.iter().map(|i| self.score_one(i)).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_smaller_split_is_a_prefix_of_the_larger() {
        // docs/configuration.md promises it: with the same knobs, seed and held-out size, a
        // smaller `train` holds the first prompts of a larger one.
        let task = TaskConfig::Arithmetic(ArithmeticConfig::default());
        let (big, big_eval) = generate_split(&task, 2000, 200, 12345);
        let (small, small_eval) = generate_split(&task, 500, 200, 12345);
        let prompts = |v: &[Sample]| -> Vec<String> {
            v.iter()
                .map(|s| s.prompt_text().unwrap_or_default().to_owned())
                .collect()
        };
        assert_eq!(prompts(&small), prompts(&big[..500]));
        assert_eq!(prompts(&small_eval), prompts(&big_eval));
    }

    #[test]
    fn configs_from_toml() {
        let t = TaskConfig::from_toml("task = \"arithmetic\"").expect("defaults");
        assert_eq!(t, TaskConfig::Arithmetic(ArithmeticConfig::default()));
        let t = TaskConfig::from_toml("task = \"arithmetic\"\nops = [\"+\", \"*\"]\noperands = 3")
            .expect("valid");
        let TaskConfig::Arithmetic(c) = t else {
            panic!("arithmetic")
        };
        assert_eq!((c.operands, c.ops), (3, vec![ArithOp::Add, ArithOp::Mul]));
        let t = TaskConfig::from_toml("task = \"countdown\"\nuse_all = true").expect("valid");
        assert_eq!(t.name(), "countdown");
        assert!(TaskConfig::from_toml("task = \"arithmetic\"\noperand = 3").is_err());
        assert!(TaskConfig::from_toml("task = \"sudoku\"").is_err());
        let e = TaskConfig::from_toml("task = \"arithmetic\"\noperands = 1").expect_err("invalid");
        assert!(e.to_string().contains("operands"), "{e}");
    }

    #[test]
    fn extracts_answers() {
        assert_eq!(
            extract_answer("<think>x</think><answer> 7 </answer>"),
            Some("7")
        );
        assert_eq!(extract_answer("<think>x</think> 7"), Some("7"));
        assert_eq!(extract_answer("<answer>7"), None);
        assert_eq!(extract_answer("7"), None);
    }

    #[test]
    fn the_recipe_example() {
        let input = RewardInput {
            completion: "<think>+06-0=+06;+06-4=+02;+02+5=+07</think><answer>7</answer>".into(),
            answers: vec!["7".into()],
            metadata: [("task".to_string(), Value::from("arithmetic"))]
                .into_iter()
                .collect(),
            ..RewardInput::default()
        };
        assert_eq!(Checker.score_one(&input), Some(1.0));
        let wrong = RewardInput {
            completion: "<answer>8</answer>".into(),
            ..input.clone()
        };
        assert_eq!(Checker.score_one(&wrong), Some(0.0));
        let other = RewardInput {
            metadata: Map::new(),
            ..input
        };
        assert_eq!(Checker.score_one(&other), None);
    }
}
