//! A whole SFT (or distillation) run, as `r1 sft` and `r1 distill` drive it: read and tokenize
//! the data, order it, step through epochs or `max_steps`, log, evaluate, checkpoint, resume,
//! and write the final Hugging Face folder.
//!
//! Step counting follows transformers' `Trainer`: an epoch is `ceil(examples / batch)`
//! micro-batches, an optimiser step takes `gradient_accumulation_steps` of them (the last step
//! of an epoch takes what is left), and without `max_steps` the run is
//! `ceil(num_train_epochs * steps_per_epoch)` steps.

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::tensor::{DType, Device};
use r1_data::{ReadOptions, Sample};
use r1_grpo::optim::{MetricsLog, Progress, load_checkpoint, save_checkpoint};
use r1_model::Pretrained;
use serde_json::{Map, Value, json};

use crate::config::SftConfig;
use crate::error::{DistillError, Result};
use crate::sft::{MicroBatch, SftTrainer, StepOutput, Teacher};
use crate::tokenize::{Example, SftTokenizer, best_fit_decreasing, truncate};

/// What to run.
#[derive(Debug, Clone)]
pub struct SftRun {
    /// The model to fine-tune (a Hugging Face folder).
    pub model: PathBuf,
    /// Training data (JSONL or Parquet).
    pub data: PathBuf,
    /// Output folder: the final model, `checkpoints/`, `metrics.jsonl`.
    pub out: PathBuf,
    /// Settings.
    pub config: SftConfig,
    /// Continue from the newest checkpoint in `out/checkpoints`.
    pub resume: bool,
    /// Device (autodiff is switched on here).
    pub device: Device,
    /// Teacher for logit distillation (same tokenizer).
    pub teacher: Option<PathBuf>,
    /// How the data files are read.
    pub read: ReadOptions,
}

/// What a run did.
#[derive(Debug, Clone)]
pub struct SftSummary {
    /// Optimiser steps in the run (including those before a resume).
    pub steps: u64,
    /// Loss of the last step.
    pub final_loss: f64,
    /// Held-out loss after training, when there is held-out data.
    pub eval_loss: Option<f64>,
    /// Held-out top-1 accuracy after training.
    pub eval_accuracy: Option<f64>,
    /// Training sequences (or packed rows) per epoch.
    pub train_items: usize,
    /// Held-out sequences.
    pub eval_items: usize,
    /// Records skipped as malformed.
    pub skipped: usize,
    /// The output folder.
    pub out: PathBuf,
    /// Wall-clock seconds.
    pub seconds: f64,
}

/// The order of `n` items in `epoch`: file order without `shuffle`, else r1-data's seeded
/// permutation of `(seed, epoch)` (the order its [`r1_data::Loader`] gives).
pub fn epoch_order(n: usize, seed: u64, epoch: u64, shuffle: bool) -> Vec<usize> {
    match r1_data::Loader::new(n, 1, shuffle, seed) {
        Ok(loader) => loader.epoch_order(epoch),
        Err(_) => Vec::new(),
    }
}

/// Training items: one sequence per row, or `bfd`-packed rows of `max_length` tokens.
fn make_items(examples: Vec<Example>, config: &SftConfig) -> Vec<Vec<Example>> {
    let keep_end = config.truncation_mode == "keep_end";
    if !config.packing {
        return examples
            .into_iter()
            .filter_map(|mut e| {
                if let Some(max) = config.max_length {
                    truncate(&mut e, max, keep_end);
                }
                // TRL drops examples that truncation left without a label.
                e.labels.iter().any(|&l| l).then(|| vec![e])
            })
            .collect();
    }
    let max = config.max_length.unwrap_or(usize::MAX).max(1);
    let mut pieces = Vec::new();
    for e in examples {
        if config.packing_strategy == "bfd_split" && e.ids.len() > max {
            for start in (0..e.ids.len()).step_by(max) {
                let end = (start + max).min(e.ids.len());
                pieces.push(Example {
                    ids: e.ids[start..end].to_vec(),
                    labels: e.labels[start..end].to_vec(),
                });
            }
        } else {
            let mut e = e;
            truncate(&mut e, max, false);
            pieces.push(e);
        }
    }
    let lengths: Vec<usize> = pieces.iter().map(|e| e.ids.len()).collect();
    let bins = best_fit_decreasing(&lengths, max);
    bins.into_iter()
        .map(|bin| bin.into_iter().map(|i| pieces[i].clone()).collect())
        .collect()
}

fn micro_batches(items: &[Vec<Example>], order: &[usize], size: usize) -> Vec<MicroBatch> {
    order
        .chunks(size.max(1))
        .map(|idx| MicroBatch {
            rows: idx.iter().map(|&i| items[i].clone()).collect(),
        })
        .collect()
}

/// Newest `checkpoint-N` folder with a `trainer_state.json` under `dir`.
pub fn latest_checkpoint(dir: &Path) -> Option<(u64, PathBuf)> {
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let n: u64 = name.strip_prefix("checkpoint-")?.parse().ok()?;
            e.path()
                .join("trainer_state.json")
                .exists()
                .then(|| (n, e.path()))
        })
        .max_by_key(|(n, _)| *n)
}

fn tokenize_all(
    samples: &[Sample],
    tokenizer: &SftTokenizer<'_>,
    source: &Path,
) -> Result<Vec<Example>> {
    samples
        .iter()
        .map(|s| {
            tokenizer.example(s).map_err(|e| match e {
                DistillError::Data(m) => DistillError::Data(format!("{}: {m}", source.display())),
                other => other,
            })
        })
        .collect()
}

/// Window of steps between two metrics lines.
#[derive(Default)]
struct Window {
    steps: u64,
    loss: f64,
    accuracy: f64,
    entropy: f64,
    ce: f64,
    kd: f64,
}

/// Runs SFT (or distillation, with a teacher) end to end.
pub fn run_sft(run: &SftRun) -> Result<SftSummary> {
    let started = Instant::now();
    let config = &run.config;
    config.validate()?;
    let _span = tracing::info_span!("sft", out = %run.out.display()).entered();
    let device = run.device.clone().autodiff();
    let base = Pretrained::load(&run.model, Some(DType::F32), &device)?;
    let tokenizer = base.tokenizer.as_ref().ok_or_else(|| {
        DistillError::Data(format!(
            "{}: the model folder has no tokenizer.json, which SFT needs",
            run.model.display()
        ))
    })?;
    let pad = base.pad_token_id();
    let eos_ids = base.eos_token_ids();
    let mut generation = base.generation.clone();
    if generation.eos_token_ids.is_empty() {
        generation.eos_token_ids = eos_ids;
    }

    // Data.
    let mut read = run.read.clone();
    read.skip_malformed |= config.skip_malformed;
    let data = r1_data::read(&run.data, &read)?;
    let mut skipped = data.skipped;
    let sft_tok = SftTokenizer::new(tokenizer, config);
    let mut train_samples = data.samples;
    let mut eval_samples = Vec::new();
    if let Some(path) = &config.eval_data {
        let eval = r1_data::read(path, &read)?;
        skipped += eval.skipped;
        eval_samples = eval.samples;
    } else if config.eval_split > 0.0 {
        (train_samples, eval_samples) =
            r1_data::sampler::split(train_samples, config.eval_split, config.seed)?;
    }
    let train_examples = tokenize_all(&train_samples, &sft_tok, &run.data)?;
    let items = make_items(train_examples, config);
    if items.is_empty() {
        return Err(DistillError::Data(format!(
            "{}: no training sequence has a label token left (after truncation to max_length)",
            run.data.display()
        )));
    }
    let eval_items = {
        let mut examples = tokenize_all(&eval_samples, &sft_tok, &run.data)?;
        if let Some(max) = config.max_length {
            for e in &mut examples {
                truncate(e, max, config.truncation_mode == "keep_end");
            }
        }
        let rows: Vec<Vec<Example>> = examples.into_iter().map(|e| vec![e]).collect();
        let order: Vec<usize> = (0..rows.len()).collect();
        micro_batches(&rows, &order, config.per_device_eval_batch_size)
    };

    // Step counts, as transformers counts them.
    let bs = config.per_device_train_batch_size;
    let ga = config.gradient_accumulation_steps;
    let per_epoch = items.len().div_ceil(bs); // micro-batches
    let updates_per_epoch = per_epoch.div_ceil(ga).max(1) as u64;
    let total = if config.max_steps > 0 {
        config.max_steps as u64
    } else {
        (config.num_train_epochs * updates_per_epoch as f64).ceil() as u64
    };
    let settings = config.optim_settings(total)?;

    // Model, optimiser, resume.
    let ckpt_root = run.out.join("checkpoints");
    let metrics = MetricsLog::new(run.out.join("metrics.jsonl"));
    let (mut trainer, mut epoch, mut micro_index, mut num_tokens) =
        match run.resume.then(|| latest_checkpoint(&ckpt_root)).flatten() {
            Some((_, dir)) => {
                tracing::info!(checkpoint = %dir.display(), "resuming");
                let ckpt = load_checkpoint(&dir, settings, &device)?;
                let cursor: r1_data::Cursor = ckpt
                    .extra
                    .get("data_cursor")
                    .cloned()
                    .and_then(|v| serde_json::from_value(v).ok())
                    .ok_or_else(|| {
                        DistillError::Data(format!(
                            "{}: trainer_state.json has no data_cursor",
                            dir.display()
                        ))
                    })?;
                if cursor.seed != config.seed || !cursor.index.is_multiple_of(bs as u64) {
                    return Err(DistillError::Data(format!(
                        "{}: the checkpoint was written with another seed or batch size \
                         ({cursor:?}); resume with the run's settings",
                        dir.display()
                    )));
                }
                let t = ckpt
                    .extra
                    .get("num_tokens")
                    .and_then(Value::as_u64)
                    .unwrap_or(0);
                let (e, m) = (cursor.epoch, cursor.index / bs as u64);
                metrics.truncate_after(ckpt.optimizer.global_step())?;
                let trainer = SftTrainer::from_parts(
                    ckpt.policy,
                    ckpt.optimizer,
                    pad,
                    config.logprob_chunk_elements,
                )
                .with_logprob_impl(config.logprob_impl);
                (trainer, e, m as usize, t)
            }
            None => {
                if !run.resume && run.out.join("metrics.jsonl").exists() {
                    std::fs::remove_file(run.out.join("metrics.jsonl"))
                        .map_err(|e| DistillError::io(&run.out, e))?;
                }
                let trainer =
                    SftTrainer::new(base.model, settings, pad, config.logprob_chunk_elements)?
                        .with_logprob_impl(config.logprob_impl);
                (trainer, 0, 0, 0)
            }
        };
    if let Some(teacher_dir) = &run.teacher {
        let tdevice = run.device.clone().without_autodiff();
        let teacher = Pretrained::load(teacher_dir, Some(DType::F32), &tdevice)?;
        trainer = trainer.with_teacher(Teacher {
            model: teacher.model,
            divergence: config.kd_divergence,
            temperature: config.temperature,
            alpha: config.kd_alpha,
        })?;
    }
    std::fs::create_dir_all(&run.out).map_err(|e| DistillError::io(&run.out, e))?;

    let label = if run.teacher.is_some() {
        "distill"
    } else {
        "sft"
    };
    let mut progress = Progress::new(label, total, trainer.global_step());
    let mut window = Window::default();
    let mut last = StepOutput::default();
    let mut evaluated_at = None;
    if config.eval_on_start && trainer.global_step() == 0 && !eval_items.is_empty() {
        let (loss, acc) = trainer.evaluate(&eval_items)?;
        metrics.write(&json!({
            "step": 0, "epoch": 0.0, "eval_loss": loss, "eval_mean_token_accuracy": acc,
        }))?;
    }
    while trainer.global_step() < total {
        let order = epoch_order(items.len(), config.seed, epoch, config.shuffle);
        let batches = micro_batches(&items, &order, bs);
        while micro_index < batches.len() && trainer.global_step() < total {
            let end = (micro_index + ga).min(batches.len());
            let out = trainer.step(&batches[micro_index..end])?;
            micro_index = end;
            num_tokens += out.tokens;
            last = out;
            let step = trainer.global_step();
            window.steps += 1;
            window.loss += out.loss;
            window.accuracy += out.mean_token_accuracy;
            window.entropy += out.entropy;
            window.ce += out.ce_loss;
            window.kd += out.kd_loss;
            let epoch_f = epoch as f64 + micro_index as f64 / batches.len() as f64;
            if step.is_multiple_of(config.logging_steps) || step == total {
                let w = window.steps.max(1) as f64;
                let mut m = Map::new();
                m.insert("step".into(), step.into());
                m.insert("epoch".into(), epoch_f.into());
                m.insert("loss".into(), (window.loss / w).into());
                m.insert("grad_norm".into(), out.grad_norm.into());
                m.insert("learning_rate".into(), out.learning_rate.into());
                m.insert("num_tokens".into(), num_tokens.into());
                m.insert("mean_token_accuracy".into(), (window.accuracy / w).into());
                m.insert("entropy".into(), (window.entropy / w).into());
                if run.teacher.is_some() {
                    m.insert("sft_loss".into(), (window.ce / w).into());
                    m.insert("kd_loss".into(), (window.kd / w).into());
                }
                metrics.write(&Value::Object(m))?;
                window = Window::default();
            }
            if let Some(every) = config.eval_steps
                && step.is_multiple_of(every)
                && !eval_items.is_empty()
            {
                let (loss, acc) = trainer.evaluate(&eval_items)?;
                metrics.write(&json!({
                    "step": step, "epoch": epoch_f,
                    "eval_loss": loss, "eval_mean_token_accuracy": acc,
                }))?;
                evaluated_at = Some((step, loss, acc));
            }
            if config.save_steps > 0 && step.is_multiple_of(config.save_steps) && step < total {
                let (e, m) = if micro_index >= batches.len() {
                    (epoch + 1, 0)
                } else {
                    (epoch, micro_index)
                };
                let cursor = r1_data::Cursor {
                    epoch: e,
                    index: (m * bs) as u64,
                    seed: config.seed,
                };
                save(
                    &trainer,
                    Some(tokenizer),
                    &ckpt_root,
                    step,
                    cursor,
                    num_tokens,
                )?;
                prune(&ckpt_root, config.save_total_limit);
            }
            progress.update(
                step,
                out.tokens,
                &format!("loss {:.4} acc {:.3}", out.loss, out.mean_token_accuracy),
            );
        }
        if micro_index >= batches.len() {
            epoch += 1;
            micro_index = 0;
        }
    }
    let step = trainer.global_step();
    let (eval_loss, eval_accuracy) = if eval_items.is_empty() {
        (None, None)
    } else if let Some((s, l, a)) = evaluated_at.filter(|(s, _, _)| *s == step) {
        let _ = s;
        (Some(l), Some(a))
    } else {
        let (loss, acc) = trainer.evaluate(&eval_items)?;
        metrics.write(&json!({
            "step": step, "eval_loss": loss, "eval_mean_token_accuracy": acc,
        }))?;
        (Some(loss), Some(acc))
    };
    // The final model: a Hugging Face folder at `out`.
    r1_model::save_pretrained(
        trainer.model()?,
        Some(tokenizer),
        &generation,
        &run.out,
        None,
    )?;
    let summary = SftSummary {
        steps: step,
        final_loss: last.loss,
        eval_loss,
        eval_accuracy,
        train_items: items.len(),
        eval_items: eval_items.iter().map(|m| m.rows.len()).sum(),
        skipped,
        out: run.out.clone(),
        seconds: started.elapsed().as_secs_f64(),
    };
    tracing::info!(steps = summary.steps, loss = summary.final_loss, "sft done");
    Ok(summary)
}

fn save(
    trainer: &SftTrainer,
    tokenizer: Option<&r1_model::Tokenizer>,
    root: &Path,
    step: u64,
    cursor: r1_data::Cursor,
    num_tokens: u64,
) -> Result<()> {
    let mut extra = Map::new();
    extra.insert(
        "data_cursor".into(),
        serde_json::to_value(cursor).map_err(|e| DistillError::io(root, e))?,
    );
    extra.insert("num_tokens".into(), num_tokens.into());
    save_checkpoint(
        &root.join(format!("checkpoint-{step}")),
        trainer.model()?,
        tokenizer,
        &[],
        trainer.optimizer(),
        extra,
    )?;
    Ok(())
}

/// Keeps the newest `limit` checkpoints.
fn prune(root: &Path, limit: Option<usize>) {
    let Some(limit) = limit else { return };
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    let mut found: Vec<(u64, PathBuf)> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            Some((name.strip_prefix("checkpoint-")?.parse().ok()?, e.path()))
        })
        .collect();
    found.sort();
    let excess = found.len().saturating_sub(limit.max(1));
    for (_, path) in found.into_iter().take(excess) {
        let _ = std::fs::remove_dir_all(path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_is_file_order_without_shuffle_and_seeded_with() {
        assert_eq!(epoch_order(5, 1, 0, false), vec![0, 1, 2, 3, 4]);
        let a = epoch_order(50, 7, 0, true);
        assert_eq!(a, epoch_order(50, 7, 0, true));
        assert_ne!(a, epoch_order(50, 7, 1, true));
        let mut sorted = a.clone();
        sorted.sort();
        assert_eq!(sorted, (0..50).collect::<Vec<_>>());
    }
}
