//! `GrpoConfig`: the whole GRPO configuration as one flat TOML table with TRL's `GRPOConfig`
//! field names (r1's own fields where TRL has none), read strictly: an unknown key, a value of
//! the wrong type or a bad combination is an error naming the file, the line and the key.
//!
//! ```toml
//! loss_type = "grpo"          # LossConfig fields (TRL names, TRL defaults)
//! beta = 0.001
//! num_generations = 16
//! learning_rate = 1e-6        # TrainerConfig fields
//! adam_beta2 = 0.99
//! gradient_accumulation_steps = 4
//! steps_per_generation = 8
//! lr_scheduler_type = "cosine"
//! logprob_impl = "fused"
//! ```

use std::path::Path;

use serde::Deserialize;

use crate::config::LossConfig;
use crate::error::{GrpoError, Result};
use crate::logprobs::LogProbImpl;
use crate::schedule::LrSchedule;
use crate::trainer::TrainerConfig;

/// The trainer's fields as TOML keys; `None` keeps [`TrainerConfig::default`].
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct TrainerKeys {
    learning_rate: Option<f64>,
    max_grad_norm: Option<f64>,
    weight_decay: Option<f32>,
    adam_beta1: Option<f32>,
    adam_beta2: Option<f32>,
    adam_epsilon: Option<f32>,
    temperature: Option<f32>,
    seed: Option<u64>,
    num_iterations: Option<usize>,
    sync_ref_model: Option<bool>,
    ref_model_mixup_alpha: Option<f64>,
    ref_model_sync_steps: Option<u64>,
    metrics_path: Option<std::path::PathBuf>,
    gradient_accumulation_steps: Option<usize>,
    lr_scheduler_type: Option<LrSchedule>,
    warmup_steps: Option<u64>,
    max_steps: Option<u64>,
    dynamic_sampling: Option<bool>,
    max_sampling_rounds: Option<u64>,
    steps_per_generation: Option<usize>,
    logprob_impl: Option<LogProbImpl>,
    logprob_chunk_elements: Option<usize>,
}

/// The keys [`TrainerKeys`] accepts (for the unknown-key message).
const TRAINER_KEYS: &[&str] = &[
    "learning_rate",
    "max_grad_norm",
    "weight_decay",
    "adam_beta1",
    "adam_beta2",
    "adam_epsilon",
    "temperature",
    "seed",
    "num_iterations",
    "sync_ref_model",
    "ref_model_mixup_alpha",
    "ref_model_sync_steps",
    "metrics_path",
    "gradient_accumulation_steps",
    "lr_scheduler_type",
    "warmup_steps",
    "max_steps",
    "dynamic_sampling",
    "max_sampling_rounds",
    "steps_per_generation",
    "logprob_impl",
    "logprob_chunk_elements",
];

fn loss_keys() -> Vec<String> {
    match serde_json::to_value(LossConfig::default()) {
        Ok(serde_json::Value::Object(m)) => m.keys().cloned().collect(),
        _ => Vec::new(),
    }
}

/// 1-based line of the first `key = ...` in `text`, if there is one.
fn line_of(text: &str, key: &str) -> Option<usize> {
    text.lines()
        .position(|l| {
            let l = l.trim_start();
            let l = l
                .strip_prefix(key)
                .or_else(|| l.strip_prefix(&format!("\"{key}\"")));
            l.is_some_and(|rest| rest.trim_start().starts_with('='))
        })
        .map(|i| i + 1)
}

impl TrainerConfig {
    /// Reads a flat TOML table of `GRPOConfig` keys (see the module docs) over the defaults and
    /// validates the result. `origin` (a file name) prefixes every error with its line.
    pub fn from_toml_str(text: &str, origin: &str) -> Result<Self> {
        let table: toml::Table = toml::from_str(text)
            .map_err(|e| GrpoError::config("(syntax)", format!("{origin}: {e}")))?;
        let locate = |key: &str| match line_of(text, key) {
            Some(line) => format!("{origin}:{line}"),
            None => origin.to_string(),
        };
        Self::from_table(table, &locate)
    }

    /// [`TrainerConfig::from_toml_str`] on a parsed table (a stage of a pipeline file, say):
    /// `locate(key)` says where a key is (`file:line`) for the error messages.
    pub fn from_table(table: toml::Table, locate: &dyn Fn(&str) -> String) -> Result<Self> {
        let config_error = |key: &str, message: String| {
            GrpoError::config(key, format!("{}: {message}", locate(key)))
        };
        let loss_names = loss_keys();
        let mut loss = toml::Table::new();
        let mut trainer = toml::Table::new();
        for (key, value) in table {
            if loss_names.contains(&key) {
                loss.insert(key, value);
            } else if TRAINER_KEYS.contains(&key.as_str()) {
                trainer.insert(key, value);
            } else {
                return Err(config_error(
                    &key,
                    format!(
                        "unknown key (the GRPO keys are {} and {})",
                        loss_names.join(", "),
                        TRAINER_KEYS.join(", ")
                    ),
                ));
            }
        }
        // One key at a time, so that a bad value is reported with its own key and line.
        for (key, value) in &loss {
            let mut one = toml::Table::new();
            one.insert(key.clone(), value.clone());
            if let Err(e) = LossConfig::deserialize(toml::Value::Table(one)) {
                return Err(config_error(key, e.to_string()));
            }
        }
        for (key, value) in &trainer {
            let mut one = toml::Table::new();
            one.insert(key.clone(), value.clone());
            if let Err(e) = TrainerKeys::deserialize(toml::Value::Table(one)) {
                return Err(config_error(key, e.to_string()));
            }
        }
        let loss = LossConfig::deserialize(toml::Value::Table(loss))
            .map_err(|e| config_error("(loss)", e.to_string()))?;
        let t = TrainerKeys::deserialize(toml::Value::Table(trainer))
            .map_err(|e| config_error("(trainer)", e.to_string()))?;
        let d = TrainerConfig::default();
        let config = TrainerConfig {
            loss,
            learning_rate: t.learning_rate.unwrap_or(d.learning_rate),
            max_grad_norm: t.max_grad_norm.unwrap_or(d.max_grad_norm),
            weight_decay: t.weight_decay.unwrap_or(d.weight_decay),
            adam_betas: (
                t.adam_beta1.unwrap_or(d.adam_betas.0),
                t.adam_beta2.unwrap_or(d.adam_betas.1),
            ),
            adam_epsilon: t.adam_epsilon.unwrap_or(d.adam_epsilon),
            temperature: t.temperature.unwrap_or(d.temperature),
            seed: t.seed.unwrap_or(d.seed),
            num_iterations: t.num_iterations.unwrap_or(d.num_iterations),
            sync_ref_model: t.sync_ref_model.unwrap_or(d.sync_ref_model),
            ref_model_mixup_alpha: t.ref_model_mixup_alpha.unwrap_or(d.ref_model_mixup_alpha),
            ref_model_sync_steps: t.ref_model_sync_steps.unwrap_or(d.ref_model_sync_steps),
            metrics_path: t.metrics_path.or(d.metrics_path),
            gradient_accumulation_steps: t
                .gradient_accumulation_steps
                .unwrap_or(d.gradient_accumulation_steps),
            lr_scheduler_type: t.lr_scheduler_type.unwrap_or(d.lr_scheduler_type),
            warmup_steps: t.warmup_steps.unwrap_or(d.warmup_steps),
            max_steps: t.max_steps.unwrap_or(d.max_steps),
            dynamic_sampling: t.dynamic_sampling.unwrap_or(d.dynamic_sampling),
            max_sampling_rounds: t.max_sampling_rounds.unwrap_or(d.max_sampling_rounds),
            steps_per_generation: t.steps_per_generation.or(d.steps_per_generation),
            logprob_impl: t.logprob_impl.unwrap_or(d.logprob_impl),
            logprob_chunk_elements: t.logprob_chunk_elements.unwrap_or(d.logprob_chunk_elements),
        };
        config.validate().map_err(|e| match e {
            GrpoError::Config { field, message } => config_error(&field, message),
            other => other,
        })?;
        Ok(config)
    }

    /// [`TrainerConfig::from_toml_str`] on a file.
    pub fn from_toml_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| GrpoError::config("(file)", format!("{}: {e}", path.display())))?;
        Self::from_toml_str(&text, &path.display().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::LossType;

    #[test]
    fn a_flat_table_of_trl_names_sets_both_halves() {
        let c = TrainerConfig::from_toml_str(
            "loss_type = \"grpo\"\nbeta = 0.001\nnum_generations = 16\n\
             learning_rate = 3e-6\nadam_beta2 = 0.99\ngradient_accumulation_steps = 2\n\
             steps_per_generation = 4\nlr_scheduler_type = \"cosine\"\nmax_steps = 100\nlogprob_impl = \"chunked\"\n\
             scale_rewards = false\n",
            "grpo.toml",
        )
        .expect("config");
        assert_eq!(c.loss.loss_type, LossType::Grpo);
        assert_eq!((c.loss.beta, c.loss.num_generations), (0.001, 16));
        assert_eq!(c.loss.scale_rewards, crate::config::ScaleRewards::None);
        assert_eq!((c.learning_rate, c.adam_betas), (3e-6, (0.9, 0.99)));
        assert_eq!(
            (c.gradient_accumulation_steps, c.steps_per_generation),
            (2, Some(4))
        );
        assert_eq!(c.lr_scheduler_type, LrSchedule::Cosine);
        assert_eq!(c.logprob_impl, LogProbImpl::Chunked);
        let d = TrainerConfig::from_toml_str("", "empty.toml").expect("defaults");
        assert_eq!(d.loss, LossConfig::default());
        assert_eq!(d.logprob_impl, LogProbImpl::Fused);
    }

    #[test]
    fn errors_name_the_file_line_and_key() {
        let err = |text: &str| {
            TrainerConfig::from_toml_str(text, "grpo.toml")
                .expect_err("rejected")
                .to_string()
        };
        let e = err("beta = 0.04\nlearning_rat = 1e-6\n");
        assert!(
            e.contains("grpo.toml:2") && e.contains("learning_rat"),
            "{e}"
        );
        let e = err("loss_type = \"ppo\"\n");
        assert!(e.contains("grpo.toml:1") && e.contains("loss_type"), "{e}");
        let e = err("seed = 1\nlearning_rate = \"fast\"\n");
        assert!(
            e.contains("grpo.toml:2") && e.contains("learning_rate"),
            "{e}"
        );
        let e = err("gradient_accumulation_steps = 2\nsteps_per_generation = 3\n");
        assert!(
            e.contains("grpo.toml:2") && e.contains("steps_per_generation"),
            "{e}"
        );
        let e = err("beta = -1\n");
        assert!(e.contains("grpo.toml:1") && e.contains("beta"), "{e}");
        let e = err("beta = \n");
        assert!(e.contains("grpo.toml"), "{e}");
    }
}
