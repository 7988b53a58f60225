//! A whole GRPO run, as `r1 grpo` and a pipeline's `grpo` stage drive it: read the prompts,
//! step the landed [`GrpoTrainer`] through `max_steps` optimiser steps, checkpoint every
//! `save_steps` (atomically, with the data cursor), resume exactly, and write the final policy
//! as a Hugging Face folder beside `checkpoints/` and `metrics.jsonl` (the layout of `r1 sft`).
//!
//! Settings are one flat table: every `GRPOConfig` key the trainer reads
//! ([`TrainerConfig::from_table`]) plus the run's own, with TRL's names where TRL has them:
//! `per_device_train_batch_size` (completions per micro-batch, default 8),
//! `generation_batch_size` (completions generated per trainer step; default
//! `per_device_train_batch_size * steps_per_generation`, TRL's rule), `shuffle_dataset`
//! (default true), `save_steps` (default 500), `prompt_template` (`none`, `r1_zero`, `chat`)
//! and `system_prompt`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::tensor::{DType, Device};
use r1_data::Sample;
use r1_distill::SftConfig;
use r1_distill::tokenize::SftTokenizer;
use r1_distill::train::latest_checkpoint;
use r1_grpo::optim::{MetricsLog, Progress};
use r1_grpo::{GrpoTrainer, Prompt, TrainerConfig};
use r1_model::{Pretrained, save_pretrained};
use r1_rewards::RewardSet;
use serde_json::Value;

use crate::error::{PipelineError, Result};

/// The run's own keys (beside [`TrainerConfig`]'s).
pub const RUN_KEYS: &[&str] = &[
    "per_device_train_batch_size",
    "generation_batch_size",
    "shuffle_dataset",
    "save_steps",
    "prompt_template",
    "system_prompt",
];

/// Settings of a GRPO run.
#[derive(Debug, Clone)]
pub struct GrpoSettings {
    /// The trainer's settings (`GRPOConfig` names).
    pub trainer: TrainerConfig,
    /// Completions per micro-batch (TRL's `per_device_train_batch_size`, default 8).
    pub per_device_train_batch_size: usize,
    /// Completions generated per trainer step (TRL's `generation_batch_size`).
    pub generation_batch_size: Option<usize>,
    /// Shuffle the prompts each epoch (TRL's `shuffle_dataset`, default true).
    pub shuffle_dataset: bool,
    /// Checkpoint every this many optimiser steps (default 500).
    pub save_steps: u64,
    /// How prompts are wrapped: `none`, `r1_zero` or `chat`.
    pub prompt_template: String,
    /// A system prompt for chat templates.
    pub system_prompt: Option<String>,
}

impl Default for GrpoSettings {
    fn default() -> Self {
        Self {
            trainer: TrainerConfig::default(),
            per_device_train_batch_size: 8,
            generation_batch_size: None,
            shuffle_dataset: true,
            save_steps: 500,
            prompt_template: "none".into(),
            system_prompt: None,
        }
    }
}

fn take<T: serde::de::DeserializeOwned>(
    table: &mut toml::Table,
    key: &str,
    locate: &dyn Fn(&str) -> String,
) -> Result<Option<T>> {
    match table.remove(key) {
        None => Ok(None),
        Some(v) => v.try_into().map(Some).map_err(|e: toml::de::Error| {
            PipelineError::config(key, format!("{}: {}", locate(key), e.message()))
        }),
    }
}

impl GrpoSettings {
    /// Reads a flat table of GRPO keys; `locate(key)` says where a key is for errors.
    pub fn from_table(mut table: toml::Table, locate: &dyn Fn(&str) -> String) -> Result<Self> {
        let d = Self::default();
        let per_device_train_batch_size = take(&mut table, "per_device_train_batch_size", locate)?
            .unwrap_or(d.per_device_train_batch_size);
        let generation_batch_size = take(&mut table, "generation_batch_size", locate)?;
        let shuffle_dataset =
            take(&mut table, "shuffle_dataset", locate)?.unwrap_or(d.shuffle_dataset);
        let save_steps = take(&mut table, "save_steps", locate)?.unwrap_or(d.save_steps);
        let prompt_template =
            take(&mut table, "prompt_template", locate)?.unwrap_or(d.prompt_template);
        let system_prompt = take(&mut table, "system_prompt", locate)?;
        let trainer = TrainerConfig::from_table(table, locate).map_err(|e| match e {
            r1_grpo::GrpoError::Config { field, message } => PipelineError::config(
                field,
                format!("{message} (the run's own keys: {})", RUN_KEYS.join(", ")),
            ),
            other => other.into(),
        })?;
        let settings = Self {
            trainer,
            per_device_train_batch_size,
            generation_batch_size,
            shuffle_dataset,
            save_steps,
            prompt_template,
            system_prompt,
        };
        settings.validate().map_err(|e| match e {
            PipelineError::Config { key, message } => {
                PipelineError::config(key.clone(), format!("{}: {message}", locate(&key)))
            }
            other => other,
        })?;
        Ok(settings)
    }

    /// Reads a TOML file (or the defaults) and `--set key=value` overrides.
    pub fn load(file: Option<&Path>, sets: &[String]) -> Result<Self> {
        let (text, origin) = match file {
            Some(path) => (
                std::fs::read_to_string(path).map_err(|e| PipelineError::io(path, e))?,
                path.display().to_string(),
            ),
            None => (String::new(), "(defaults)".to_string()),
        };
        let mut table: toml::Table = toml::from_str(&text)
            .map_err(|e| PipelineError::config("(syntax)", format!("{origin}: {e}")))?;
        for s in sets {
            let (k, v) = r1_distill::config::parse_set(s)?;
            table.insert(k, v);
        }
        let index = crate::lines::LineIndex::new(&text, &origin);
        let locate = |key: &str| {
            if index.line(key).is_none() && sets.iter().any(|s| s.split('=').next() == Some(key)) {
                "--set".to_string()
            } else {
                index.locate(key)
            }
        };
        Self::from_table(table, &locate)
    }

    /// Checks the run's keys against the trainer's.
    pub fn validate(&self) -> Result<()> {
        let g = self.trainer.loss.num_generations;
        if self.per_device_train_batch_size == 0 {
            return Err(PipelineError::config(
                "per_device_train_batch_size",
                "must be at least 1",
            ));
        }
        let total = self.generation_batch();
        if total == 0 || !total.is_multiple_of(g) {
            return Err(PipelineError::config(
                "generation_batch_size",
                format!(
                    "the generation batch ({total} completions) must be a positive multiple of \
                     num_generations ({g})"
                ),
            ));
        }
        if self.trainer.max_steps == 0 {
            return Err(PipelineError::config(
                "max_steps",
                "a GRPO run needs max_steps (optimiser steps) > 0",
            ));
        }
        if self.save_steps == 0 {
            return Err(PipelineError::config("save_steps", "must be at least 1"));
        }
        if !["none", "r1_zero", "chat"].contains(&self.prompt_template.as_str()) {
            return Err(PipelineError::config(
                "prompt_template",
                format!("`{}`: use none, r1_zero or chat", self.prompt_template),
            ));
        }
        Ok(())
    }

    /// Completions generated per trainer step.
    pub fn generation_batch(&self) -> usize {
        let ga = self.trainer.gradient_accumulation_steps.max(1);
        let spg = self.trainer.steps_per_generation.unwrap_or(ga).max(1);
        self.generation_batch_size
            .unwrap_or(self.per_device_train_batch_size * spg)
    }

    /// Prompts per trainer step.
    pub fn prompts_per_step(&self) -> usize {
        self.generation_batch() / self.trainer.loss.num_generations.max(1)
    }
}

/// What to run.
#[derive(Debug)]
pub struct GrpoRun {
    /// The policy to start from (a Hugging Face folder with a tokenizer).
    pub model: PathBuf,
    /// The prompts with their reference answers.
    pub samples: Vec<Sample>,
    /// A name for the data in messages.
    pub data_name: String,
    /// The rewards.
    pub rewards: RewardSet,
    /// Output folder: the final policy, `checkpoints/`, `metrics.jsonl`.
    pub out: PathBuf,
    /// Settings.
    pub settings: GrpoSettings,
    /// Continue from the newest checkpoint in `out/checkpoints`.
    pub resume: bool,
    /// Device (autodiff is switched on here).
    pub device: Device,
}

/// What a GRPO run did.
#[derive(Debug, Clone)]
pub struct GrpoSummary {
    /// Optimiser steps (including those before a resume).
    pub steps: u64,
    /// Mean total reward of the last step.
    pub final_reward: f64,
    /// Wall-clock seconds of this process.
    pub seconds: f64,
    /// The output folder.
    pub out: PathBuf,
}

/// The prompts of `samples` as the trainer takes them.
pub fn prompts(samples: &[Sample], tokenizer: &SftTokenizer<'_>) -> Result<Vec<Prompt>> {
    samples
        .iter()
        .map(|s| {
            Ok(Prompt {
                ids: tokenizer.prompt_ids(s)?,
                text: s.prompt.to_plain_text(),
                answers: s.answers.clone(),
                metadata: s.record.clone(),
            })
        })
        .collect()
}

/// Runs GRPO end to end.
pub fn run_grpo(run: &GrpoRun) -> Result<GrpoSummary> {
    let started = Instant::now();
    let s = &run.settings;
    s.validate()?;
    let _span = tracing::info_span!("grpo", out = %run.out.display()).entered();
    let device = run.device.clone().autodiff();
    let base = Pretrained::load(&run.model, Some(DType::F32), &device)?;
    let tokenizer = base.tokenizer.as_ref().ok_or_else(|| {
        PipelineError::Data(format!(
            "{}: the model folder has no tokenizer.json, which GRPO needs",
            run.model.display()
        ))
    })?;
    let sft_config = SftConfig {
        prompt_template: s.prompt_template.clone(),
        system_prompt: s.system_prompt.clone(),
        ..SftConfig::default()
    };
    let all = prompts(&run.samples, &SftTokenizer::new(tokenizer, &sft_config))?;
    if all.is_empty() {
        return Err(PipelineError::Data(format!(
            "{}: no prompts",
            run.data_name
        )));
    }
    let per_step = s.prompts_per_step().min(all.len());
    let seed = s.trainer.seed;
    let mut config = s.trainer.clone();
    config.metrics_path = Some(run.out.join("metrics.jsonl"));
    let eos = base.eos_token_ids();
    let pad = base.pad_token_id();
    let generation = base.generation.clone();
    let ckpt_root = run.out.join("checkpoints");
    std::fs::create_dir_all(&run.out).map_err(|e| PipelineError::io(&run.out, e))?;
    let metrics = MetricsLog::new(run.out.join("metrics.jsonl"));
    let (mut trainer, mut cursor) =
        match run.resume.then(|| latest_checkpoint(&ckpt_root)).flatten() {
            Some((_, dir)) => {
                tracing::info!(checkpoint = %dir.display(), "resuming");
                let tok = r1_model::Tokenizer::from_folder(dir.join("policy"))?;
                let (t, c) = GrpoTrainer::resume(
                    &dir,
                    config,
                    run.rewards.clone(),
                    Some(tok),
                    eos.clone(),
                    pad,
                    &device,
                )?;
                metrics.truncate_after(t.global_step())?;
                (t, c)
            }
            None => {
                if metrics.path().exists() {
                    std::fs::remove_file(metrics.path())
                        .map_err(|e| PipelineError::io(metrics.path(), e))?;
                }
                let tok = r1_model::Tokenizer::from_folder(&run.model)?;
                let t = GrpoTrainer::new(
                    base.model,
                    config,
                    run.rewards.clone(),
                    Some(tok),
                    eos.clone(),
                    pad,
                )?;
                (t, 0)
            }
        };
    let total = s.trainer.max_steps;
    let mut progress = Progress::new("grpo", total, trainer.global_step());
    let mut final_reward = f64::NAN;
    let mut last_saved = trainer.global_step();
    while trainer.global_step() < total {
        let batch = batch_at(all.len(), per_step, s.shuffle_dataset, seed, cursor)?;
        let chosen: Vec<Prompt> = batch.iter().map(|&i| all[i].clone()).collect();
        let m = trainer.step(&chosen)?;
        cursor += 1;
        final_reward = m.reward;
        let tokens =
            (m.completion_length.0 * (chosen.len() * s.trainer.loss.num_generations) as f64) as u64;
        let accuracy = m
            .rewards
            .iter()
            .find(|(n, _)| n == "accuracy")
            .map(|(_, v)| format!(" acc {v:.2}"))
            .unwrap_or_default();
        progress.update(
            trainer.global_step(),
            tokens,
            &format!(
                "reward {:.3}{accuracy} len {:.1}",
                m.reward, m.completion_length.0
            ),
        );
        let step = trainer.global_step();
        if step / s.save_steps > last_saved / s.save_steps || step >= total {
            trainer.save_checkpoint(&ckpt_root.join(format!("checkpoint-{step}")), cursor)?;
            last_saved = step;
            prune(&ckpt_root, step)?;
        }
    }
    let tok = r1_model::Tokenizer::from_folder(&run.model)?;
    save_pretrained(trainer.model()?, Some(&tok), &generation, &run.out, None)?;
    Ok(GrpoSummary {
        steps: trainer.global_step(),
        final_reward,
        seconds: started.elapsed().as_secs_f64(),
        out: run.out.clone(),
    })
}

/// Keeps the newest checkpoint only (older ones are a full model each).
fn prune(root: &Path, keep: u64) -> Result<()> {
    let Ok(entries) = std::fs::read_dir(root) else {
        return Ok(());
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some(n) = name
            .strip_prefix("checkpoint-")
            .and_then(|n| n.parse::<u64>().ok())
            && n < keep
        {
            std::fs::remove_dir_all(e.path()).map_err(|err| PipelineError::io(&e.path(), err))?;
        }
    }
    Ok(())
}

/// The prompt indices of trainer step `cursor` (0-based): consecutive slices of each epoch's
/// order (r1-data's seeded permutation of `(seed, epoch)`), an epoch's tail that is too short
/// for a whole step being skipped, as a drop-last sampler does.
pub fn batch_at(
    n: usize,
    per_step: usize,
    shuffle: bool,
    seed: u64,
    cursor: u64,
) -> Result<Vec<usize>> {
    let per_step = per_step.max(1).min(n.max(1));
    let per_epoch = (n / per_step).max(1) as u64;
    let (epoch, k) = (cursor / per_epoch, (cursor % per_epoch) as usize);
    let loader = r1_data::Loader::new(n, per_step, shuffle, seed)?;
    let order = loader.epoch_order(epoch);
    Ok(order[k * per_step..(k + 1) * per_step].to_vec())
}

/// `Value` of a summary, for `run.json` artifacts.
pub fn summary_json(s: &GrpoSummary) -> Value {
    serde_json::json!({"steps": s.steps, "final_reward": s.final_reward, "seconds": s.seconds})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_cover_each_epoch_once_and_resume_by_cursor() {
        let (n, per) = (10, 3);
        let mut seen = Vec::new();
        for c in 0..3 {
            seen.extend(batch_at(n, per, true, 5, c).expect("batch"));
        }
        let mut sorted = seen.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), 9, "three steps of an epoch are disjoint");
        assert_ne!(
            batch_at(n, per, true, 5, 3).expect("b"),
            batch_at(n, per, true, 5, 0).expect("b")
        );
        assert_eq!(batch_at(n, per, false, 5, 1).expect("b"), vec![3, 4, 5]);
        assert_eq!(
            batch_at(n, per, true, 5, 4).expect("b"),
            batch_at(n, per, true, 5, 4).expect("b")
        );
    }

    #[test]
    fn settings_read_trl_names_and_name_bad_keys() {
        let locate = |k: &str| format!("grpo.toml:{k}");
        let mut t = toml::Table::new();
        t.insert("num_generations".into(), toml::Value::Integer(4));
        t.insert(
            "per_device_train_batch_size".into(),
            toml::Value::Integer(16),
        );
        t.insert("max_steps".into(), toml::Value::Integer(10));
        let s = GrpoSettings::from_table(t.clone(), &locate).expect("settings");
        assert_eq!(s.prompts_per_step(), 4);
        t.insert("generation_batch_size".into(), toml::Value::Integer(6));
        let e = GrpoSettings::from_table(t.clone(), &locate)
            .expect_err("6 % 4")
            .to_string();
        assert!(e.contains("generation_batch_size"), "{e}");
        t.remove("generation_batch_size");
        t.insert("learning_rat".into(), toml::Value::Float(1e-6));
        let e = GrpoSettings::from_table(t, &locate)
            .expect_err("typo")
            .to_string();
        assert!(
            e.contains("learning_rat") && e.contains("grpo.toml:learning_rat"),
            "{e}"
        );
    }
}
