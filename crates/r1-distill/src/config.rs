//! `SftConfig`: TRL 1.16's `SFTConfig` field names and defaults (transformers'
//! `TrainingArguments` underneath), read from one flat TOML table plus `--set key=value`
//! overrides. Unknown keys are errors naming the key (and its line in the file).
//!
//! ```toml
//! learning_rate = 1e-5
//! per_device_train_batch_size = 8
//! gradient_accumulation_steps = 4
//! num_train_epochs = 2
//! lr_scheduler_type = "cosine"
//! warmup_ratio = 0.03
//! packing = true
//! ```

use std::path::{Path, PathBuf};

use r1_grpo::{LrSchedule, OptimSettings};
use serde::{Deserialize, Serialize};

use crate::error::{DistillError, Result};

/// Knowledge-distillation divergence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KdDivergence {
    /// `KL(teacher || student)`: the student covers the teacher's modes (Hinton et al. 2015).
    Forward,
    /// `KL(student || teacher)`: mode-seeking (MiniLLM, Gu et al. 2024).
    Reverse,
}

/// Supervised fine-tuning settings. Every field is a TRL `SFTConfig` / transformers
/// `TrainingArguments` key with its default, except the few marked *r1*.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SftConfig {
    /// Peak learning rate of AdamW (TRL default 2e-5).
    pub learning_rate: f64,
    /// Sequences (or packed rows) per micro-batch (default 8).
    pub per_device_train_batch_size: usize,
    /// Sequences per evaluation batch (default 8).
    pub per_device_eval_batch_size: usize,
    /// Micro-batches whose gradients make one optimiser step (default 1). The loss of each
    /// micro-batch is divided by the label tokens of the whole step (transformers'
    /// `num_items_in_batch`), so accumulation gives the step one big batch would.
    pub gradient_accumulation_steps: usize,
    /// Epochs over the data when `max_steps` is not set (default 3).
    pub num_train_epochs: f64,
    /// Optimiser steps to run; overrides `num_train_epochs` when > 0 (default -1: unset).
    pub max_steps: i64,
    /// Tokens per sequence; longer ones are truncated (`truncation_mode`), packed rows hold at
    /// most this many (default 1024).
    pub max_length: Option<usize>,
    /// `keep_start` (default) or `keep_end`.
    pub truncation_mode: String,
    /// Warm-up as a fraction of the optimiser steps, rounded up (default 0).
    pub warmup_ratio: f64,
    /// Warm-up steps; a value below 1 is a ratio, as transformers 5 reads it (default 0).
    pub warmup_steps: f64,
    /// `linear` (default), `cosine`, `cosine_with_min_lr`, `constant`, `constant_with_warmup`.
    pub lr_scheduler_type: String,
    /// Extra schedule arguments: `min_lr_rate` for `cosine_with_min_lr` (DeepSeek-R1 decays to
    /// a tenth: `{ min_lr_rate = 0.1 }`).
    pub lr_scheduler_kwargs: toml::Table,
    /// AdamW's decoupled weight decay (default 0).
    pub weight_decay: f32,
    /// AdamW beta1 (default 0.9).
    pub adam_beta1: f32,
    /// AdamW beta2 (default 0.999).
    pub adam_beta2: f32,
    /// AdamW epsilon (default 1e-8).
    pub adam_epsilon: f32,
    /// Global gradient-norm clipping (default 1.0; 0 turns it off).
    pub max_grad_norm: f64,
    /// Pack sequences into rows of `max_length` tokens by best-fit decreasing (TRL's `bfd`;
    /// positions restart per sequence and attention never crosses them). Default false.
    pub packing: bool,
    /// `bfd` (default; overflow truncated) or `bfd_split` (overflow split into pieces).
    pub packing_strategy: String,
    /// Loss only on completion tokens of prompt-completion data (TRL default `None`: on for
    /// prompt-completion data, off for plain text). Conversations always train on their
    /// assistant turns only.
    pub completion_only_loss: Option<bool>,
    /// Seed of the data order and of anything random (default 42).
    pub seed: u64,
    /// Checkpoint every this many optimiser steps (default 500; 0 turns it off).
    pub save_steps: u64,
    /// Keep at most this many checkpoints (default unset: all).
    pub save_total_limit: Option<usize>,
    /// Log metrics every this many optimiser steps (TRL default 10).
    pub logging_steps: u64,
    /// Held-out loss every this many optimiser steps (default unset: at the end only, when
    /// there is held-out data).
    pub eval_steps: Option<u64>,
    /// Held-out loss before the first step too (transformers' `eval_on_start`; default false).
    pub eval_on_start: bool,
    /// *r1*: shuffle the training data each epoch with `seed` (default true; false keeps the
    /// file's order, as TRL does with `train_sampling_strategy = "sequential"`).
    pub shuffle: bool,
    /// *r1*: held-out data file (same formats as `--data`).
    pub eval_data: Option<PathBuf>,
    /// *r1*: fraction of `--data` held out for the evaluation loss when there is no `eval_data`
    /// (default 0).
    pub eval_split: f64,
    /// *r1*: chat template used for text prompts: `none` (default; TRL's behaviour: text is
    /// tokenized as is), `r1_zero` (DeepSeek-R1-Zero's template) or `chat` (the tokenizer's chat
    /// template around a user turn).
    pub prompt_template: String,
    /// *r1*: system prompt prepended to conversations and `chat`-templated prompts.
    pub system_prompt: Option<String>,
    /// *r1*: skip malformed data records (and count them) instead of stopping.
    pub skip_malformed: bool,
    /// *r1*: logits elements projected at once by the fused cross-entropy (default 64 Mi).
    pub logprob_chunk_elements: usize,
    /// *r1*: `fused` (default: no `[tokens, vocab]` tensor kept for backward), `chunked` or
    /// `reference` (the plain full log-softmax).
    pub logprob_impl: r1_grpo::LogProbImpl,
    /// Distillation: softmax temperature of both models in the KD term (default 1.0).
    pub temperature: f32,
    /// Distillation: weight of the KD term; the loss is `(1 - kd_alpha) * sft + kd_alpha * kd`
    /// (default 0.5). Used only with a teacher.
    pub kd_alpha: f64,
    /// Distillation divergence (default forward).
    pub kd_divergence: KdDivergence,
}

impl Default for SftConfig {
    fn default() -> Self {
        Self {
            learning_rate: 2e-5,
            per_device_train_batch_size: 8,
            per_device_eval_batch_size: 8,
            gradient_accumulation_steps: 1,
            num_train_epochs: 3.0,
            max_steps: -1,
            max_length: Some(1024),
            truncation_mode: "keep_start".into(),
            warmup_ratio: 0.0,
            warmup_steps: 0.0,
            lr_scheduler_type: "linear".into(),
            lr_scheduler_kwargs: toml::Table::new(),
            weight_decay: 0.0,
            adam_beta1: 0.9,
            adam_beta2: 0.999,
            adam_epsilon: 1e-8,
            max_grad_norm: 1.0,
            packing: false,
            packing_strategy: "bfd".into(),
            completion_only_loss: None,
            seed: 42,
            save_steps: 500,
            save_total_limit: None,
            logging_steps: 10,
            eval_steps: None,
            eval_on_start: false,
            shuffle: true,
            eval_data: None,
            eval_split: 0.0,
            prompt_template: "none".into(),
            system_prompt: None,
            skip_malformed: false,
            logprob_chunk_elements: r1_grpo::logprobs::DEFAULT_CHUNK_ELEMENTS,
            logprob_impl: r1_grpo::LogProbImpl::Fused,
            temperature: 1.0,
            kd_alpha: 0.5,
            kd_divergence: KdDivergence::Forward,
        }
    }
}

/// 1-based line of the first `key = ...` in `text`.
fn line_of(text: &str, key: &str) -> Option<usize> {
    text.lines()
        .position(|l| {
            let l = l.trim_start();
            let rest = l
                .strip_prefix(key)
                .or_else(|| l.strip_prefix(&format!("\"{key}\"")));
            rest.is_some_and(|r| r.trim_start().starts_with('='))
        })
        .map(|i| i + 1)
}

/// Parses one `--set key=value`: the value is TOML (`1e-5`, `"cosine"`, `true`, `[1, 2]`); a
/// bare word that is not TOML is taken as a string (`--set lr_scheduler_type=cosine`).
pub fn parse_set(assignment: &str) -> Result<(String, toml::Value)> {
    let (key, value) = assignment
        .split_once('=')
        .ok_or_else(|| DistillError::Config {
            key: assignment.to_string(),
            message: "--set takes key=value".into(),
        })?;
    let key = key.trim().to_string();
    if key.is_empty() {
        return Err(DistillError::Config {
            key: assignment.to_string(),
            message: "--set takes key=value with a non-empty key".into(),
        });
    }
    let value = value.trim();
    let parsed = toml::from_str::<toml::Table>(&format!("v = {value}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(value.to_string()));
    Ok((key, parsed))
}

impl SftConfig {
    /// Reads `file` (when given) over the defaults, then the `--set` overrides, and validates.
    pub fn load(file: Option<&Path>, sets: &[String]) -> Result<Self> {
        let (text, origin) = match file {
            Some(path) => (
                std::fs::read_to_string(path).map_err(|e| DistillError::io(path, e))?,
                path.display().to_string(),
            ),
            None => (String::new(), "(defaults)".to_string()),
        };
        let mut table: toml::Table = toml::from_str(&text).map_err(|e| DistillError::Config {
            key: "(syntax)".into(),
            message: format!("{origin}: {e}"),
        })?;
        for s in sets {
            let (k, v) = parse_set(s)?;
            table.insert(k, v);
        }
        let locate = |key: &str| {
            line_of(&text, key)
                .map(|l| format!("{origin}:{l}"))
                .unwrap_or_else(|| {
                    if sets.iter().any(|s| s.split('=').next() == Some(key)) {
                        "--set".into()
                    } else {
                        origin.clone()
                    }
                })
        };
        Self::from_table(table, &locate)
    }

    /// Reads a parsed table of `SFTConfig` keys (a stage of a pipeline file, say) over the
    /// defaults and validates it; `locate(key)` says where a key is (`file:line`) for errors.
    pub fn from_table(table: toml::Table, locate: &dyn Fn(&str) -> String) -> Result<Self> {
        let known: Vec<String> = match toml::Value::try_from(SftConfig::default()) {
            Ok(toml::Value::Table(t)) => t.keys().cloned().collect(),
            _ => Vec::new(),
        };
        // Optional keys serialise to nothing, so list them by hand.
        let optional = [
            "max_length",
            "completion_only_loss",
            "save_total_limit",
            "eval_steps",
            "eval_data",
            "system_prompt",
        ];
        for key in table.keys() {
            if !known.iter().any(|k| k == key) && !optional.contains(&key.as_str()) {
                let at = locate(key);
                return Err(DistillError::Config {
                    key: key.clone(),
                    message: format!("{at}: unknown key (SFTConfig keys: {})", known.join(", ")),
                });
            }
        }
        let config: SftConfig = match toml::Value::Table(table.clone()).try_into() {
            Ok(c) => c,
            Err(e) => {
                let e: toml::de::Error = e;
                // Name the key: the first one that fails on its own.
                let key = table
                    .iter()
                    .find(|(k, v)| {
                        let mut one = toml::Table::new();
                        one.insert((*k).clone(), (*v).clone());
                        toml::Value::Table(one).try_into::<SftConfig>().is_err()
                    })
                    .map(|(k, _)| k.clone())
                    .unwrap_or_else(|| "(value)".into());
                let at = locate(&key);
                return Err(DistillError::Config {
                    key,
                    message: format!("{at}: {}", e.message()),
                });
            }
        };
        config.validate().map_err(|e| match e {
            DistillError::Config { key, message } => DistillError::Config {
                message: format!("{}: {message}", locate(&key)),
                key,
            },
            other => other,
        })?;
        Ok(config)
    }

    /// Checks values and combinations; the error names the key.
    pub fn validate(&self) -> Result<()> {
        let bad = |key: &str, message: &str| {
            Err(DistillError::Config {
                key: key.into(),
                message: message.into(),
            })
        };
        if self.per_device_train_batch_size == 0 {
            return bad("per_device_train_batch_size", "must be at least 1");
        }
        if self.per_device_eval_batch_size == 0 {
            return bad("per_device_eval_batch_size", "must be at least 1");
        }
        if self.gradient_accumulation_steps == 0 {
            return bad("gradient_accumulation_steps", "must be at least 1");
        }
        if self.max_steps <= 0
            && !(self.num_train_epochs > 0.0 && self.num_train_epochs.is_finite())
        {
            return bad(
                "num_train_epochs",
                "must be a positive number when max_steps is not set",
            );
        }
        if self.max_length == Some(0) {
            return bad("max_length", "must be at least 1");
        }
        if !matches!(self.truncation_mode.as_str(), "keep_start" | "keep_end") {
            return bad("truncation_mode", "must be \"keep_start\" or \"keep_end\"");
        }
        if !(0.0..1.0).contains(&self.warmup_ratio) {
            return bad("warmup_ratio", "must be in [0, 1)");
        }
        if !(self.warmup_steps >= 0.0 && self.warmup_steps.is_finite()) {
            return bad("warmup_steps", "must be >= 0");
        }
        self.schedule()?;
        if self.packing {
            if self.max_length.is_none() {
                return bad("max_length", "packing needs max_length");
            }
            if !matches!(self.packing_strategy.as_str(), "bfd" | "bfd_split") {
                return bad(
                    "packing_strategy",
                    "must be \"bfd\" or \"bfd_split\" (\"wrapped\" cuts sequences and is not \
                     supported)",
                );
            }
        }
        if self.logging_steps == 0 {
            return bad("logging_steps", "must be at least 1");
        }
        if self.eval_steps == Some(0) {
            return bad("eval_steps", "must be at least 1");
        }
        if !(0.0..1.0).contains(&self.eval_split) {
            return bad("eval_split", "must be in [0, 1)");
        }
        if !matches!(self.prompt_template.as_str(), "none" | "r1_zero" | "chat") {
            return bad(
                "prompt_template",
                "must be \"none\", \"r1_zero\" or \"chat\"",
            );
        }
        if self.logprob_chunk_elements == 0 {
            return bad("logprob_chunk_elements", "must be at least 1");
        }
        if !(self.temperature > 0.0 && self.temperature.is_finite()) {
            return bad("temperature", "must be a positive number");
        }
        if !(0.0..=1.0).contains(&self.kd_alpha) {
            return bad("kd_alpha", "must be in [0, 1]");
        }
        let optim = self.optim_settings(1)?;
        optim.validate().map_err(|e| DistillError::Config {
            key: "(optimizer)".into(),
            message: e.to_string(),
        })
    }

    /// The schedule and its floor (`min_lr_rate`).
    fn schedule(&self) -> Result<(LrSchedule, f64)> {
        let bad = |message: String| DistillError::Config {
            key: "lr_scheduler_type".into(),
            message,
        };
        let min_lr_rate = match self.lr_scheduler_kwargs.get("min_lr_rate") {
            None => None,
            Some(v) => Some(
                v.as_float()
                    .or_else(|| v.as_integer().map(|i| i as f64))
                    .filter(|r| (0.0..=1.0).contains(r))
                    .ok_or_else(|| DistillError::Config {
                        key: "lr_scheduler_kwargs.min_lr_rate".into(),
                        message: "must be a number in [0, 1]".into(),
                    })?,
            ),
        };
        if let Some(k) = self
            .lr_scheduler_kwargs
            .keys()
            .find(|k| k.as_str() != "min_lr_rate")
        {
            return Err(DistillError::Config {
                key: format!("lr_scheduler_kwargs.{k}"),
                message: "unknown key (only min_lr_rate is read)".into(),
            });
        }
        Ok(match self.lr_scheduler_type.as_str() {
            "linear" => (LrSchedule::Linear, 0.0),
            "cosine" => (LrSchedule::Cosine, 0.0),
            "cosine_with_min_lr" => (
                LrSchedule::Cosine,
                min_lr_rate.ok_or_else(|| {
                    bad(
                        "cosine_with_min_lr needs lr_scheduler_kwargs = { min_lr_rate = .. }"
                            .into(),
                    )
                })?,
            ),
            "constant" | "constant_with_warmup" => (LrSchedule::Constant, 0.0),
            other => {
                return Err(bad(format!(
                    "`{other}` is not one of linear, cosine, cosine_with_min_lr, constant, \
                     constant_with_warmup"
                )));
            }
        })
    }

    /// Warm-up steps for a run of `total` optimiser steps (transformers' `get_warmup_steps`,
    /// with `warmup_ratio` when `warmup_steps` is 0).
    pub fn warmup_for(&self, total: u64) -> u64 {
        let ratio = if self.warmup_steps > 0.0 && self.warmup_steps < 1.0 {
            self.warmup_steps
        } else if self.warmup_steps >= 1.0 {
            return self.warmup_steps as u64;
        } else {
            self.warmup_ratio
        };
        (total as f64 * ratio).ceil() as u64
    }

    /// The optimiser settings for a run of `total` optimiser steps.
    pub fn optim_settings(&self, total: u64) -> Result<OptimSettings> {
        let (schedule, min_lr_rate) = self.schedule()?;
        let schedule = if self.lr_scheduler_type == "constant" {
            // transformers' plain `constant` has no warm-up.
            LrSchedule::Constant
        } else {
            schedule
        };
        let warmup = if self.lr_scheduler_type == "constant" {
            0
        } else {
            self.warmup_for(total)
        };
        Ok(OptimSettings {
            learning_rate: self.learning_rate,
            weight_decay: self.weight_decay,
            adam_betas: (self.adam_beta1, self.adam_beta2),
            adam_epsilon: self.adam_epsilon,
            max_grad_norm: self.max_grad_norm,
            lr_scheduler_type: schedule,
            warmup_steps: warmup,
            max_steps: total.max(1),
            min_lr_rate,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_values_are_toml_or_bare_strings() {
        let (k, v) = parse_set("learning_rate=1e-5").expect("set");
        assert_eq!((k.as_str(), v.as_float()), ("learning_rate", Some(1e-5)));
        let (_, v) = parse_set("lr_scheduler_type=\"cosine\"").expect("set");
        assert_eq!(v.as_str(), Some("cosine"));
        let (_, v) = parse_set("lr_scheduler_type=cosine").expect("set");
        assert_eq!(v.as_str(), Some("cosine"));
        let (_, v) = parse_set("packing=true").expect("set");
        assert_eq!(v.as_bool(), Some(true));
        assert!(parse_set("novalue").is_err());
    }

    #[test]
    fn unknown_keys_name_the_key_and_line() {
        let dir = std::env::temp_dir().join(format!("r1-sftcfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("sft.toml");
        std::fs::write(&path, "learning_rate = 1e-4\n\nlearnig_rate = 2\n").expect("write");
        let e = SftConfig::load(Some(&path), &[])
            .expect_err("unknown key")
            .to_string();
        assert!(
            e.contains("learnig_rate") && e.contains("sft.toml:3"),
            "{e}"
        );
        let e = SftConfig::load(None, &["bogus=1".into()])
            .expect_err("unknown")
            .to_string();
        assert!(e.contains("bogus") && e.contains("--set"), "{e}");
        let e = SftConfig::load(None, &["learning_rate=\"x\"".into()])
            .expect_err("type")
            .to_string();
        assert!(e.contains("learning_rate"), "{e}");
        let c = SftConfig::load(Some(&path), &[]).err();
        assert!(c.is_some());
        let ok = SftConfig::load(
            None,
            &["max_steps=3".into(), "lr_scheduler_type=cosine".into()],
        )
        .expect("ok");
        assert_eq!((ok.max_steps, ok.lr_scheduler_type.as_str()), (3, "cosine"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn warmup_follows_transformers() {
        let mut c = SftConfig {
            warmup_ratio: 0.1,
            ..SftConfig::default()
        };
        assert_eq!(c.warmup_for(25), 3);
        c.warmup_steps = 0.2;
        assert_eq!(c.warmup_for(25), 5);
        c.warmup_steps = 4.0;
        assert_eq!(c.warmup_for(25), 4);
    }
}
