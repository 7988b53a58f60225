//! One GRPO step with the in-process engine: G completions per prompt from the policy itself
//! (weights shared, no autodiff during generation), rewards from a [`RewardSet`], group
//! advantages, the policy loss, global-norm gradient clipping and AdamW.
//!
//! One call of [`GrpoTrainer::step`] is one generation batch. It is split into
//! `steps_per_generation` micro-batches; every `gradient_accumulation_steps` of them make one
//! optimiser step, and the whole batch is replayed `num_iterations` times (TRL's
//! `_buffered_inputs`). When that makes updates off-policy (TRL's test:
//! `gradient_accumulation_steps % (steps_per_generation * num_iterations) != 0`) the generating
//! policy's log-probs are kept as `old_per_token_logps`; with `beta > 0` a frozen reference model
//! (optionally synced every `ref_model_sync_steps`) supplies the KL term.

use std::collections::HashMap;
use std::time::Instant;

use burn::module::Module;
use burn::optim::{GradientsAccumulator, GradientsParams};
use burn::tensor::{DType, Int, Tensor, TensorData};
use r1_model::logprobs::{DEFAULT_CHUNK_ELEMENTS, chunk_rows_for};
use r1_model::model::read_f32;
use r1_model::weights::Init;
use r1_model::{
    Batch, CausalLm, GenerationConfig, SamplingParams, Tokenizer, WeightSource, generate,
};
use r1_rewards::{RewardInput, RewardSet};
use serde_json::Value;

use crate::advantages::compute_advantages;
use crate::config::LossConfig;
use crate::error::{GrpoError, Result};
use crate::logprobs::{LogProbImpl, token_logprobs};
use crate::loss::{LossInputs, policy_loss};
use crate::optim::{MetricsLog, OptimSettings, Optimizer, load_checkpoint, load_model_folder};

/// Optimiser and sampling settings (TRL's names and defaults where TRL has them).
#[derive(Debug, Clone)]
pub struct TrainerConfig {
    /// Advantage and loss settings.
    pub loss: LossConfig,
    /// `learning_rate` (TRL default 1e-6).
    pub learning_rate: f64,
    /// `max_grad_norm`: global-norm clipping (TRL default 1.0; 0 turns it off).
    pub max_grad_norm: f64,
    /// `weight_decay` (TRL/transformers default 0.0).
    pub weight_decay: f32,
    /// `adam_beta1`, `adam_beta2`, `adam_epsilon` (PyTorch's 0.9, 0.999, 1e-8).
    pub adam_betas: (f32, f32),
    /// `adam_epsilon`.
    pub adam_epsilon: f32,
    /// Sampling `temperature` (TRL default 1.0); log-probs use the same temperature.
    pub temperature: f32,
    /// Sampler seed.
    pub seed: u64,
    /// `num_iterations`: μ policy updates per generation batch (TRL default 1). With μ > 1 the
    /// log-probs of the generating policy are kept as `old_per_token_logps`.
    pub num_iterations: usize,
    /// `sync_ref_model`: move the reference model towards the policy every
    /// `ref_model_sync_steps` steps (TRL default false; R1 resets it every 400 steps).
    pub sync_ref_model: bool,
    /// `ref_model_mixup_alpha`: `ref = alpha * policy + (1 - alpha) * ref` (TRL default 0.6;
    /// 1.0 is a reset).
    pub ref_model_mixup_alpha: f64,
    /// `ref_model_sync_steps` (TRL default 512).
    pub ref_model_sync_steps: u64,
    /// Append one JSON line of metrics per step to this file.
    pub metrics_path: Option<std::path::PathBuf>,
    /// `gradient_accumulation_steps`: the generation batch is split into this many micro-batches
    /// whose gradients are summed before one optimiser step (default 1).
    pub gradient_accumulation_steps: usize,
    /// `lr_scheduler_type` (default constant; transformers' default is linear).
    pub lr_scheduler_type: crate::schedule::LrSchedule,
    /// `warmup_steps` (default 0).
    pub warmup_steps: u64,
    /// `max_steps`: the optimiser steps the linear and cosine schedules decay over.
    pub max_steps: u64,
    /// DAPO's dynamic sampling: drop groups whose rewards are all equal (they carry no
    /// advantage) and sample their prompts again, up to `max_sampling_rounds` extra rounds.
    pub dynamic_sampling: bool,
    /// Bound on dynamic sampling's extra rounds (default 3).
    pub max_sampling_rounds: u64,
    /// `steps_per_generation`: micro-batches each generation batch is split into (TRL default:
    /// `gradient_accumulation_steps`, i.e. `None` here). Must be a multiple of
    /// `gradient_accumulation_steps`: each generation batch then makes
    /// `steps_per_generation / gradient_accumulation_steps` optimiser steps per iteration.
    pub steps_per_generation: Option<usize>,
    /// How per-token log-probs are computed (default `fused`: no `[rows, vocab]` tensor is kept
    /// for backward; `chunked` and `reference` are the plain tensor-op paths).
    pub logprob_impl: LogProbImpl,
    /// Logits elements projected at once by the log-prob chunks (default 64 Mi, 256 MiB of f32).
    pub logprob_chunk_elements: usize,
}

impl TrainerConfig {
    /// Checks every field and combination; the error names the field (TRL's name) and says why.
    pub fn validate(&self) -> Result<()> {
        self.loss.validate()?;
        let bad = |field: &str, message: &str| Err(GrpoError::config(field, message));
        self.optim_settings().validate()?;
        if !(self.temperature > 0.0 && self.temperature.is_finite()) {
            return bad("temperature", "must be a positive number");
        }
        if self.num_iterations == 0 {
            return bad("num_iterations", "must be at least 1");
        }
        let ga = self.gradient_accumulation_steps;
        if ga == 0 {
            return bad("gradient_accumulation_steps", "must be at least 1");
        }
        if let Some(spg) = self.steps_per_generation
            && (spg == 0 || !spg.is_multiple_of(ga))
        {
            return Err(GrpoError::config(
                "steps_per_generation",
                format!(
                    "must be a positive multiple of gradient_accumulation_steps ({ga}): a \
                     generation batch is consumed by whole optimiser steps, got {spg}"
                ),
            ));
        }
        if self.logprob_chunk_elements == 0 {
            return bad("logprob_chunk_elements", "must be at least 1");
        }
        if !(0.0..=1.0).contains(&self.ref_model_mixup_alpha) {
            return bad("ref_model_mixup_alpha", "must be in [0, 1]");
        }
        if self.sync_ref_model && self.loss.beta == 0.0 {
            return bad(
                "sync_ref_model",
                "there is no reference model to sync with beta = 0",
            );
        }
        Ok(())
    }
}

impl Default for TrainerConfig {
    fn default() -> Self {
        Self {
            loss: LossConfig::default(),
            learning_rate: 1e-6,
            max_grad_norm: 1.0,
            weight_decay: 0.0,
            adam_betas: (0.9, 0.999),
            adam_epsilon: 1e-8,
            temperature: 1.0,
            seed: 0,
            num_iterations: 1,
            sync_ref_model: false,
            ref_model_mixup_alpha: 0.6,
            ref_model_sync_steps: 512,
            metrics_path: None,
            gradient_accumulation_steps: 1,
            lr_scheduler_type: crate::schedule::LrSchedule::Constant,
            warmup_steps: 0,
            max_steps: 0,
            dynamic_sampling: false,
            max_sampling_rounds: 3,
            steps_per_generation: None,
            logprob_impl: LogProbImpl::Fused,
            logprob_chunk_elements: DEFAULT_CHUNK_ELEMENTS,
        }
    }
}

/// A prompt with what its rewards need.
#[derive(Debug, Clone, Default)]
pub struct Prompt {
    /// Token ids.
    pub ids: Vec<u32>,
    /// Text (for rewards).
    pub text: String,
    /// Reference answers.
    pub answers: Vec<String>,
    /// Task metadata.
    pub metadata: serde_json::Map<String, Value>,
}

/// What one step measured (TRL's metric names where TRL has one).
#[derive(Debug, Clone, Default)]
pub struct StepMetrics {
    /// `reward`: mean weighted total.
    pub reward: f64,
    /// `reward_std`.
    pub reward_std: f64,
    /// `frac_reward_zero_std`: groups whose rewards are all equal.
    pub frac_reward_zero_std: f64,
    /// `rewards/<name>/mean`.
    pub rewards: Vec<(String, f64)>,
    /// The loss.
    pub loss: f64,
    /// `grad_norm` before clipping.
    pub grad_norm: f64,
    /// `learning_rate` of the (last) optimiser step.
    pub learning_rate: f64,
    /// Loss metrics (kl, entropy, clip ratios).
    pub loss_metrics: Vec<(String, f64)>,
    /// `rewards/<name>/std` (unbiased, over scorable completions).
    pub reward_stds: Vec<(String, f64)>,
    /// `completions/mean_length`, min, max.
    pub completion_length: (f64, usize, usize),
    /// `completions/clipped_ratio`: completions that hit `max_completion_length` (truncated).
    pub clipped_ratio: f64,
    /// `completions/mean_terminated_length`, min, max: completions that ended with an eos token
    /// or a stop string (zeros when none did).
    pub terminated_length: (f64, usize, usize),
    /// `time/tokens_per_second`: completion tokens generated per second of generation.
    pub tokens_per_second: f64,
    /// Seconds in generation, scoring, log-probs + update.
    pub seconds: (f64, f64, f64),
    /// Dynamic sampling: extra rounds sampled, and groups kept in the update.
    pub sampling_rounds: u64,
    /// Groups that went into the update.
    pub groups: usize,
}

/// One micro-batch's loss, its metrics and its gradients.
type MicroStep = (f64, Vec<(String, f64)>, GradientsParams);

/// Weights by Hugging Face name, as a [`WeightSource`] (to rebuild a reference model).
struct NamedSource(HashMap<String, Vec<f32>>);

impl WeightSource for NamedSource {
    fn take(&mut self, name: &str, _shape: &[usize], _init: Init) -> r1_model::Result<Vec<f32>> {
        self.0
            .remove(name)
            .ok_or_else(|| r1_model::ModelError::MissingTensor {
                folder: "<policy>".into(),
                name: name.to_string(),
            })
    }
}

/// One generation batch, scored, laid out for the loss (completions right-aligned).
struct Rollout {
    batch: Batch,
    cmax: usize,
    mask: Vec<f32>,
    advantages: Vec<f32>,
    prompts: Vec<Vec<u32>>,
    completions: Vec<Vec<u32>>,
}

impl Rollout {
    /// Rows `range` as their own rollout (a micro-batch).
    fn rows(&self, range: std::ops::Range<usize>, pad: u32) -> Rollout {
        let prompts = self.prompts[range.clone()].to_vec();
        let completions = self.completions[range.clone()].to_vec();
        let (batch, cmax, _) = right_aligned(&prompts, &completions, pad);
        // Keep the rollout's own mask (it may leave out truncated completions).
        let mask = realign(
            &self.mask,
            self.cmax,
            &self.completions,
            range.clone(),
            cmax,
        );
        Rollout {
            batch,
            cmax,
            mask,
            advantages: self.advantages[range].to_vec(),
            prompts,
            completions,
        }
    }
}

/// The GRPO learner: a policy on an autodiff device, its optimiser, the reference model and
/// the rewards.
pub struct GrpoTrainer {
    model: Option<CausalLm>,
    reference: Option<CausalLm>,
    optim: Optimizer,
    config: TrainerConfig,
    rewards: RewardSet,
    tokenizer: Option<Tokenizer>,
    eos_token_ids: Vec<u32>,
    pad_token_id: u32,
    metrics: Option<MetricsLog>,
}

impl std::fmt::Debug for GrpoTrainer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrpoTrainer")
            .field("step", &self.optim.global_step())
            .finish()
    }
}

fn backend(e: impl std::fmt::Display) -> GrpoError {
    GrpoError::Backend(e.to_string())
}

impl TrainerConfig {
    /// The optimiser part of the config, for [`Optimizer`].
    pub fn optim_settings(&self) -> OptimSettings {
        OptimSettings {
            learning_rate: self.learning_rate,
            weight_decay: self.weight_decay,
            adam_betas: self.adam_betas,
            adam_epsilon: self.adam_epsilon,
            max_grad_norm: self.max_grad_norm,
            lr_scheduler_type: self.lr_scheduler_type,
            warmup_steps: self.warmup_steps,
            max_steps: self.max_steps,
            min_lr_rate: 0.0,
        }
    }
}

impl GrpoTrainer {
    /// A trainer for `model` (on an autodiff device). With `beta > 0` the reference model is a
    /// frozen snapshot of `model` as given.
    pub fn new(
        model: CausalLm,
        config: TrainerConfig,
        rewards: RewardSet,
        tokenizer: Option<Tokenizer>,
        eos_token_ids: Vec<u32>,
        pad_token_id: u32,
    ) -> Result<Self> {
        config.validate()?;
        let optim = Optimizer::new(config.optim_settings())?;
        // `valid()` keeps the current tensors; the optimiser replaces the policy's, so the
        // snapshot stays as it was.
        let reference = (config.loss.beta != 0.0).then(|| model.valid());
        let metrics = config.metrics_path.clone().map(MetricsLog::new);
        Ok(Self {
            model: Some(model),
            reference,
            optim,
            config,
            rewards,
            tokenizer,
            eos_token_ids,
            pad_token_id,
            metrics,
        })
    }

    /// The current policy.
    pub fn model(&self) -> Result<&CausalLm> {
        self.model
            .as_ref()
            .ok_or_else(|| GrpoError::Backend("the model was lost in a failed step".into()))
    }

    /// Optimiser steps taken.
    pub fn global_step(&self) -> u64 {
        self.optim.global_step()
    }

    /// Writes a checkpoint folder with [`crate::optim::save_checkpoint`]: `policy/`,
    /// `reference/` (when `beta > 0`), the AdamW moments and `trainer_state.json` with the
    /// caller's `data_cursor`. Atomic: a crash leaves the previous checkpoint or the new one.
    pub fn save_checkpoint(&self, dir: &std::path::Path, data_cursor: u64) -> Result<()> {
        let model = self.model()?;
        let others: Vec<(&str, &CausalLm)> =
            self.reference.iter().map(|r| ("reference", r)).collect();
        let mut extra = serde_json::Map::new();
        extra.insert("data_cursor".into(), data_cursor.into());
        crate::optim::save_checkpoint(
            dir,
            model,
            self.tokenizer.as_ref(),
            &others,
            &self.optim,
            extra,
        )
    }

    /// Resumes from [`GrpoTrainer::save_checkpoint`]'s folder on `device` (autodiff); returns
    /// the trainer and the data cursor that was saved. The run continues exactly as the
    /// uninterrupted one: same weights, optimiser moments, step and sampler streams.
    pub fn resume(
        dir: &std::path::Path,
        config: TrainerConfig,
        rewards: RewardSet,
        tokenizer: Option<Tokenizer>,
        eos_token_ids: Vec<u32>,
        pad_token_id: u32,
        device: &burn::tensor::Device,
    ) -> Result<(Self, u64)> {
        config.validate()?;
        let ckpt = load_checkpoint(dir, config.optim_settings(), device)?;
        let state_path = dir.join("trainer_state.json");
        let cursor = ckpt
            .extra
            .get("data_cursor")
            .and_then(Value::as_u64)
            .ok_or_else(|| backend(format!("{}: missing `data_cursor`", state_path.display())))?;
        let mut trainer = Self::new(
            ckpt.policy,
            config,
            rewards,
            tokenizer,
            eos_token_ids,
            pad_token_id,
        )?;
        let ref_dir = dir.join("reference");
        if trainer.reference.is_some() {
            if !ref_dir.exists() {
                return Err(backend(format!(
                    "{}: the checkpoint has no reference model but beta > 0",
                    ref_dir.display()
                )));
            }
            trainer.reference = Some(load_model_folder(
                &ref_dir,
                &device.clone().without_autodiff(),
            )?);
        }
        trainer.optim = ckpt.optimizer;
        Ok((trainer, cursor))
    }

    /// Generates, scores and updates (`num_iterations` times) on `prompts`.
    pub fn step(&mut self, prompts: &[Prompt]) -> Result<StepMetrics> {
        let _span = tracing::info_span!("grpo_step", step = self.global_step()).entered();
        let mut model = self
            .model
            .take()
            .ok_or_else(|| GrpoError::Backend("no model".into()))?;
        let result = self.sample(&model, prompts);
        let (mut metrics, rollout) = match result {
            Ok(x) => x,
            Err(e) => {
                self.model = Some(model);
                return Err(e);
            }
        };
        let t2 = Instant::now();
        let ga = self.config.gradient_accumulation_steps.max(1);
        let spg = self.config.steps_per_generation.unwrap_or(ga).max(ga);
        let off_policy = !ga.is_multiple_of(spg * self.config.num_iterations);
        let old = if off_policy {
            let _s = tracing::debug_span!("old_logprob").entered();
            Some(self.host_logps(&model.valid(), &rollout)?)
        } else {
            None
        };
        let reference = match &self.reference {
            Some(r) => {
                let _s = tracing::debug_span!("ref_logprob").entered();
                Some(self.host_logps(r, &rollout)?)
            }
            None => None,
        };
        let rows = rollout.advantages.len();
        let micro = rows.div_ceil(spg);
        let total_tokens: f32 = rollout.mask.iter().sum();
        let windows = spg / ga;
        for window in (0..self.config.num_iterations).flat_map(|_| 0..windows) {
            let _s = tracing::debug_span!("update").entered();
            let mut accumulated = GradientsAccumulator::<CausalLm>::new();
            let mut loss_sum = 0.0;
            let mut loss_metrics = Vec::new();
            for k in window * ga..(window + 1) * ga {
                let range = (k * micro).min(rows)..((k + 1) * micro).min(rows);
                if range.is_empty() {
                    continue;
                }
                let part = rollout.rows(range.clone(), self.pad_token_id);
                let cut = |v: &Option<Vec<f32>>| {
                    v.as_ref().map(|full| {
                        realign(
                            full,
                            rollout.cmax,
                            &rollout.completions,
                            range.clone(),
                            part.cmax,
                        )
                    })
                };
                match self.loss_and_grads(
                    &model,
                    &part,
                    cut(&old).as_deref(),
                    cut(&reference).as_deref(),
                    (ga, spg),
                    total_tokens,
                ) {
                    Ok((loss, m, grads)) => {
                        loss_sum += loss;
                        loss_metrics = m;
                        accumulated.accumulate(&model, grads);
                    }
                    Err(e) => {
                        self.model = Some(model);
                        return Err(e);
                    }
                }
            }
            let grads = accumulated.grads();
            metrics.loss = loss_sum;
            metrics.loss_metrics = loss_metrics;
            let (m, info) = self.optim.step(model, grads);
            model = m;
            match info {
                Ok(info) => {
                    metrics.grad_norm = info.grad_norm;
                    metrics.learning_rate = info.learning_rate;
                }
                Err(e) => {
                    self.model = Some(model);
                    return Err(e);
                }
            }
        }
        metrics.seconds.2 = t2.elapsed().as_secs_f64();
        if self.config.sync_ref_model
            && self
                .global_step()
                .is_multiple_of(self.config.ref_model_sync_steps.max(1))
        {
            self.sync_reference(&model)?;
        }
        self.model = Some(model);
        if let Some(log) = &self.metrics {
            log.write(&metrics.to_json(self.global_step()))?;
        }
        Ok(metrics)
    }

    fn sync_reference(&mut self, policy: &CausalLm) -> Result<()> {
        let _s = tracing::info_span!("sync_ref_model", step = self.global_step()).entered();
        let alpha = self.config.ref_model_mixup_alpha;
        let Some(reference) = &self.reference else {
            return Ok(());
        };
        let mut mixed: HashMap<String, Vec<f32>> = HashMap::new();
        let ref_weights: HashMap<String, Vec<f32>> = reference
            .named_weights()
            .map_err(backend)?
            .into_iter()
            .map(|w| (w.name, w.values))
            .collect();
        for w in policy.named_weights().map_err(backend)? {
            let old = ref_weights
                .get(&w.name)
                .ok_or_else(|| backend(format!("reference lacks {}", w.name)))?;
            let values = w
                .values
                .iter()
                .zip(old)
                .map(|(p, r)| (alpha * *p as f64 + (1.0 - alpha) * *r as f64) as f32)
                .collect();
            mixed.insert(w.name, values);
        }
        let device = reference.device();
        self.reference = Some(
            CausalLm::from_source(
                policy.config(),
                &mut NamedSource(mixed),
                policy.dtype(),
                &device,
            )
            .map_err(backend)?,
        );
        Ok(())
    }

    fn rollout(
        &self,
        model: &CausalLm,
        prompts: &[Prompt],
        round: u64,
    ) -> Result<(StepMetrics, Rollout, Vec<bool>)> {
        let g = self.config.loss.num_generations;
        let mut metrics = StepMetrics::default();
        // 1. rollouts, without autodiff, on the same weights
        let t0 = Instant::now();
        let engine = model.valid();
        let rows: Vec<&Prompt> = prompts
            .iter()
            .flat_map(|p| std::iter::repeat_n(p, g))
            .collect();
        let prompt_ids: Vec<Vec<u32>> = rows.iter().map(|p| p.ids.clone()).collect();
        let rollout = GenerationConfig {
            max_new_tokens: self.config.loss.max_completion_length,
            sampling: SamplingParams {
                temperature: self.config.temperature,
                ..SamplingParams::default()
            },
            eos_token_ids: self.eos_token_ids.clone(),
            seed: self
                .config
                .seed
                .wrapping_add(self.global_step().wrapping_mul(0x9E37_79B9))
                .wrapping_add(round.wrapping_mul(0x85EB_CA6B)),
            pad_token_id: self.pad_token_id,
            ..GenerationConfig::default()
        };
        let samples = {
            let _s = tracing::debug_span!("generate").entered();
            generate(&engine, &prompt_ids, &rollout, self.tokenizer.as_ref()).map_err(backend)?
        };
        metrics.seconds.0 = t0.elapsed().as_secs_f64();

        // 2. rewards
        let t1 = Instant::now();
        let _s = tracing::debug_span!("reward").entered();
        let inputs: Vec<RewardInput> = rows
            .iter()
            .zip(&samples)
            .map(|(p, s)| {
                let completion = self
                    .tokenizer
                    .as_ref()
                    .and_then(|t| t.decode(&s.completion_ids, true).ok())
                    .unwrap_or_default();
                let mut metadata = p.metadata.clone();
                metadata.insert(
                    "completion_ids".into(),
                    Value::from(s.completion_ids.clone()),
                );
                RewardInput {
                    prompt: p.text.clone(),
                    completion,
                    completion_tokens: s.completion_ids.len(),
                    truncated: s.finish_reason == r1_model::FinishReason::Length,
                    answers: p.answers.clone(),
                    metadata,
                    ..RewardInput::default()
                }
            })
            .collect();
        let scored = self
            .rewards
            .score(&inputs)
            .map_err(|e| GrpoError::Backend(e.to_string()))?;
        let per_row: Vec<Vec<Option<f32>>> = (0..rows.len())
            .map(|i| scored.values.iter().map(|v| v[i]).collect())
            .collect();
        let weights: Vec<f32> = self.rewards.entries().iter().map(|e| e.weight).collect();
        let advantages = compute_advantages(
            &per_row,
            &weights,
            g,
            self.config.loss.scale_rewards,
            self.config.loss.multi_objective_aggregation,
        )?;
        let totals: Vec<f64> = scored
            .totals
            .iter()
            .map(|t| t.unwrap_or(0.0) as f64)
            .collect();
        let n = totals.len() as f64;
        metrics.reward = totals.iter().sum::<f64>() / n;
        metrics.reward_std = (totals
            .iter()
            .map(|t| (t - metrics.reward).powi(2))
            .sum::<f64>()
            / (n - 1.0).max(1.0))
        .sqrt();
        // Groups whose rewards are all equal: no advantage (and dynamic sampling's filter).
        let zero_std: Vec<bool> = totals
            .chunks(g)
            .map(|grp| grp.iter().all(|x| (x - grp[0]).abs() < 1e-9))
            .collect();
        metrics.frac_reward_zero_std =
            zero_std.iter().filter(|z| **z).count() as f64 / zero_std.len().max(1) as f64;
        for (name, vals) in scored.names.iter().zip(&scored.values) {
            let v: Vec<f64> = vals.iter().flatten().map(|x| *x as f64).collect();
            let mean = v.iter().sum::<f64>() / v.len().max(1) as f64;
            let var =
                v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (v.len() as f64 - 1.0).max(1.0);
            metrics.rewards.push((name.clone(), mean));
            metrics.reward_stds.push((name.clone(), var.sqrt()));
        }
        let lens: Vec<usize> = samples.iter().map(|s| s.completion_ids.len()).collect();
        metrics.completion_length = mean_min_max(&lens);
        let terminated: Vec<usize> = samples
            .iter()
            .filter(|s| s.finish_reason != r1_model::FinishReason::Length)
            .map(|s| s.completion_ids.len())
            .collect();
        metrics.clipped_ratio = 1.0 - terminated.len() as f64 / lens.len().max(1) as f64;
        metrics.terminated_length = mean_min_max(&terminated);
        metrics.tokens_per_second =
            lens.iter().sum::<usize>() as f64 / metrics.seconds.0.max(f64::MIN_POSITIVE);
        metrics.seconds.1 = t1.elapsed().as_secs_f64();

        // 3. the batch the loss sees: completions right-aligned under a mask
        let cmax = lens.iter().copied().max().unwrap_or(0);
        if cmax == 0 {
            return Err(GrpoError::Shape("every completion is empty".into()));
        }
        let prompts: Vec<Vec<u32>> = samples.iter().map(|s| s.prompt_ids.clone()).collect();
        let completions: Vec<Vec<u32>> = samples.iter().map(|s| s.completion_ids.clone()).collect();
        let (batch, cmax, mut mask) = right_aligned(&prompts, &completions, self.pad_token_id);
        if self.config.loss.mask_truncated_completions {
            // DAPO / TRL: a completion cut by the budget teaches nothing about how to finish.
            for (row, sample) in samples.iter().enumerate() {
                if sample.finish_reason == r1_model::FinishReason::Length {
                    mask[row * cmax..(row + 1) * cmax].fill(0.0);
                }
            }
        }
        let rollout = Rollout {
            batch,
            cmax,
            mask,
            advantages,
            prompts,
            completions,
        };
        Ok((metrics, rollout, zero_std))
    }

    /// Generates and scores; with dynamic sampling, replaces groups with equal rewards by new
    /// samples of their prompts, for at most `max_sampling_rounds` extra rounds.
    fn sample(&self, model: &CausalLm, prompts: &[Prompt]) -> Result<(StepMetrics, Rollout)> {
        let g = self.config.loss.num_generations;
        let (mut metrics, first, zero) = self.rollout(model, prompts, 0)?;
        metrics.groups = prompts.len();
        if !self.config.dynamic_sampling || !zero.iter().any(|z| *z) {
            return Ok((metrics, first));
        }
        let _s = tracing::debug_span!("dynamic_sampling").entered();
        // prompts, completions, advantages, rows left out of the loss
        type Group = (Vec<Vec<u32>>, Vec<Vec<u32>>, Vec<f32>, Vec<bool>);
        let take = |ro: &Rollout, zero: &[bool], kept: &mut Vec<Group>| -> Vec<usize> {
            let mut dropped = Vec::new();
            for (grp, z) in zero.iter().enumerate() {
                let rows = grp * g..(grp + 1) * g;
                if *z {
                    dropped.push(grp);
                } else {
                    let masked = rows
                        .clone()
                        .map(|r| {
                            ro.mask[r * ro.cmax..(r + 1) * ro.cmax]
                                .iter()
                                .all(|m| *m == 0.0)
                        })
                        .collect();
                    kept.push((
                        ro.prompts[rows.clone()].to_vec(),
                        ro.completions[rows.clone()].to_vec(),
                        ro.advantages[rows].to_vec(),
                        masked,
                    ));
                }
            }
            dropped
        };
        let mut kept: Vec<Group> = Vec::new();
        let mut pending: Vec<&Prompt> = take(&first, &zero, &mut kept)
            .into_iter()
            .map(|i| &prompts[i])
            .collect();
        let mut round = 0;
        while !pending.is_empty() && round < self.config.max_sampling_rounds {
            round += 1;
            let again: Vec<Prompt> = pending.iter().map(|p| (*p).clone()).collect();
            let (_, ro, zero) = self.rollout(model, &again, round)?;
            let dropped = take(&ro, &zero, &mut kept);
            pending = dropped.into_iter().map(|i| pending[i]).collect();
        }
        metrics.sampling_rounds = round;
        if kept.is_empty() {
            // Nothing to learn from: keep the first batch (its advantages are all 0).
            return Ok((metrics, first));
        }
        metrics.groups = kept.len();
        let prompts: Vec<Vec<u32>> = kept.iter().flat_map(|k| k.0.clone()).collect();
        let completions: Vec<Vec<u32>> = kept.iter().flat_map(|k| k.1.clone()).collect();
        let advantages: Vec<f32> = kept.iter().flat_map(|k| k.2.clone()).collect();
        let masked: Vec<bool> = kept.iter().flat_map(|k| k.3.clone()).collect();
        let (batch, cmax, mut mask) = right_aligned(&prompts, &completions, self.pad_token_id);
        for (row, m) in masked.iter().enumerate() {
            if *m {
                mask[row * cmax..(row + 1) * cmax].fill(0.0);
            }
        }
        Ok((
            metrics,
            Rollout {
                batch,
                cmax,
                mask,
                advantages,
                prompts,
                completions,
            },
        ))
    }

    /// Per-token log-probs and entropies of the rollout's completions under `model`.
    fn logps(&self, model: &CausalLm, r: &Rollout) -> Result<(Tensor<2>, Option<Tensor<2>>)> {
        completion_logprobs(
            model,
            &r.batch,
            r.cmax,
            self.config.temperature,
            self.config.logprob_impl,
            self.config.logprob_chunk_elements,
        )
    }

    fn host_logps(&self, model: &CausalLm, r: &Rollout) -> Result<Vec<f32>> {
        let (lp, _) = self.logps(model, r)?;
        read_f32(lp).map_err(backend)
    }

    fn loss_and_grads(
        &self,
        model: &CausalLm,
        r: &Rollout,
        old: Option<&[f32]>,
        reference: Option<&[f32]>,
        (accumulation_steps, steps_per_generation): (usize, usize),
        generation_tokens: f32,
    ) -> Result<MicroStep> {
        let b = r.batch.batch;
        let device = model.device();
        let (logps, entropies) = self.logps(model, r)?;
        let on_device = |v: &[f32]| {
            Tensor::<2>::from_data(
                TensorData::new(v.to_vec(), [b, r.cmax]),
                (&device, DType::F32),
            )
        };
        let out = policy_loss(
            &self.config.loss,
            LossInputs {
                per_token_logps: logps,
                old_per_token_logps: old.map(on_device),
                ref_per_token_logps: reference.map(on_device),
                advantages: Tensor::from_data(TensorData::new(r.advantages.clone(), [b]), &device),
                completion_mask: on_device(&r.mask),
                entropies: entropies.map(|e| e.detach()),
                // TRL: tokens of the whole generation batch, rescaled by the loss to one
                // accumulation window.
                num_items_in_batch: generation_tokens,
                gradient_accumulation_steps: accumulation_steps,
                steps_per_generation,
            },
        )?;
        let loss = read_f32(out.loss.clone())
            .map_err(backend)?
            .first()
            .copied()
            .unwrap_or(f32::NAN);
        if !loss.is_finite() {
            // Stop before the weights are touched.
            return Err(GrpoError::Backend(format!(
                "the loss is {loss}: not updating the weights"
            )));
        }
        let grads = GradientsParams::from_grads(out.loss.backward(), model);
        Ok((loss as f64, out.metrics.into_iter().collect(), grads))
    }
}

/// Mean (0 for none), min and max (0 for none) of `values`.
fn mean_min_max(values: &[usize]) -> (f64, usize, usize) {
    (
        values.iter().sum::<usize>() as f64 / values.len().max(1) as f64,
        values.iter().copied().min().unwrap_or(0),
        values.iter().copied().max().unwrap_or(0),
    )
}

/// Cuts rows `range` out of a right-aligned `[rows, cmax]` array and re-aligns them to `to`
/// columns (the micro-batch's longest completion).
fn realign(
    full: &[f32],
    cmax: usize,
    completions: &[Vec<u32>],
    range: std::ops::Range<usize>,
    to: usize,
) -> Vec<f32> {
    let mut out = vec![0f32; range.len() * to];
    for (k, r) in range.enumerate() {
        let len = completions[r].len();
        out[k * to + to - len..(k + 1) * to]
            .copy_from_slice(&full[r * cmax + cmax - len..(r + 1) * cmax]);
    }
    out
}

/// Lays out prompt + completion pairs for the loss: whole sequences left-padded, so completions
/// end at the right edge; returns the batch, the longest completion `cmax` and the
/// `[batch, cmax]` completion mask (1 on each row's last `len` columns).
pub fn right_aligned(
    prompts: &[Vec<u32>],
    completions: &[Vec<u32>],
    pad_token_id: u32,
) -> (Batch, usize, Vec<f32>) {
    let cmax = completions.iter().map(Vec::len).max().unwrap_or(0);
    let sequences: Vec<Vec<u32>> = prompts
        .iter()
        .zip(completions)
        .map(|(p, c)| p.iter().chain(c).copied().collect())
        .collect();
    let batch = Batch::left_padded(&sequences, pad_token_id);
    let mask = completions
        .iter()
        .flat_map(|c| (0..cmax).map(move |j| if j >= cmax - c.len() { 1.0 } else { 0.0 }))
        .collect();
    (batch, cmax, mask)
}

/// Per-token log-probs (and entropies) of the last `cmax` tokens of each row of a
/// [`right_aligned`] batch, at `temperature`, by `method` with at most `chunk_elements` logits
/// at a time (tracked under autodiff; entropies carry no gradient with `fused`).
///
/// # Shapes
/// returns (`[batch, cmax]`, `Option<[batch, cmax]>`)
pub fn completion_logprobs(
    model: &CausalLm,
    batch: &Batch,
    cmax: usize,
    temperature: f32,
    method: LogProbImpl,
    chunk_elements: usize,
) -> Result<(Tensor<2>, Option<Tensor<2>>)> {
    let (b, t) = (batch.batch, batch.seq);
    if cmax == 0 || cmax >= t {
        return Err(GrpoError::Shape(format!(
            "{cmax} completion tokens in sequences of {t}"
        )));
    }
    let device = model.device();
    let hidden = model
        .forward_hidden(batch, &vec![0; b], None)
        .map_err(backend)?;
    let hs = hidden.dims()[2];
    // Completions end at the right edge: position t-1-cmax+j predicts token t-cmax+j.
    let hidden = hidden.slice([0..b, t - 1 - cmax..t - 1, 0..hs]);
    let targets: Vec<i64> = (0..b)
        .flat_map(|row| {
            batch.ids[row * t + t - cmax..(row + 1) * t]
                .iter()
                .map(|&i| i as i64)
        })
        .collect();
    let targets = Tensor::<2, Int>::from_data(TensorData::new(targets, [b, cmax]), &device);
    let chunk = chunk_rows_for(model.config().vocab_size, chunk_elements);
    Ok(token_logprobs(
        model,
        hidden,
        targets,
        temperature,
        method,
        chunk,
        true,
    ))
}

impl StepMetrics {
    /// One JSON object with TRL's metric names.
    pub fn to_json(&self, step: u64) -> Value {
        let mut m = serde_json::Map::new();
        m.insert("step".into(), step.into());
        m.insert("reward".into(), self.reward.into());
        m.insert("reward_std".into(), self.reward_std.into());
        m.insert(
            "frac_reward_zero_std".into(),
            self.frac_reward_zero_std.into(),
        );
        for (name, v) in &self.rewards {
            m.insert(format!("rewards/{name}/mean"), (*v).into());
        }
        for (name, v) in &self.reward_stds {
            m.insert(format!("rewards/{name}/std"), (*v).into());
        }
        m.insert("loss".into(), self.loss.into());
        m.insert("grad_norm".into(), self.grad_norm.into());
        m.insert("learning_rate".into(), self.learning_rate.into());
        for (name, v) in &self.loss_metrics {
            m.insert(name.clone(), (*v).into());
        }
        for (suffix, (mean, min, max)) in [
            ("length", self.completion_length),
            ("terminated_length", self.terminated_length),
        ] {
            m.insert(format!("completions/mean_{suffix}"), mean.into());
            m.insert(format!("completions/min_{suffix}"), min.into());
            m.insert(format!("completions/max_{suffix}"), max.into());
        }
        m.insert(
            "completions/clipped_ratio".into(),
            self.clipped_ratio.into(),
        );
        m.insert(
            "time/tokens_per_second".into(),
            self.tokens_per_second.into(),
        );
        m.insert("time/generate".into(), self.seconds.0.into());
        m.insert("time/reward".into(), self.seconds.1.into());
        m.insert("time/update".into(), self.seconds.2.into());
        m.insert(
            "dynamic_sampling/rounds".into(),
            self.sampling_rounds.into(),
        );
        m.insert("dynamic_sampling/groups".into(), self.groups.into());
        Value::Object(m)
    }
}
