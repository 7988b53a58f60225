//! One GRPO step with the in-process engine: G completions per prompt from the policy itself
//! (weights shared, no autodiff during generation), rewards from a [`RewardSet`], group
//! advantages, the policy loss, global-norm gradient clipping and AdamW.
//!
//! This first trainer is on-policy (`num_iterations = 1`, one optimiser step per generation
//! batch); old-policy log-probs, gradient accumulation, schedules, dynamic sampling and
//! checkpoints come next.

use std::time::Instant;

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::{AdamWConfig, GradientsParams, ModuleOptimizer};
use burn::tensor::{DType, Int, Tensor, TensorData};
use r1_model::logprobs::{DEFAULT_CHUNK_ELEMENTS, chunk_rows_for, selective_log_softmax};
use r1_model::model::read_f32;
use r1_model::{Batch, CausalLm, GenerationConfig, SamplingParams, Tokenizer, generate};
use r1_rewards::{RewardInput, RewardSet};
use serde_json::Value;

use crate::advantages::compute_advantages;
use crate::config::LossConfig;
use crate::error::{GrpoError, Result};
use crate::loss::{LossInputs, policy_loss};

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
    /// Loss metrics (kl, entropy, clip ratios).
    pub loss_metrics: Vec<(String, f64)>,
    /// `completions/mean_length`, min, max.
    pub completion_length: (f64, usize, usize),
    /// Seconds in generation, scoring, log-probs + update.
    pub seconds: (f64, f64, f64),
}

struct SquaredNorm<'a> {
    grads: &'a GradientsParams,
    total: f64,
}

impl ModuleVisitor for SquaredNorm<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(g) = self.grads.get::<D>(param.id) {
            let s: f32 = g.square().sum().into_scalar();
            self.total += s as f64;
        }
    }
}

struct Scale<'a> {
    grads: &'a mut GradientsParams,
    factor: f64,
}

impl ModuleVisitor for Scale<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(g) = self.grads.remove::<D>(param.id) {
            self.grads.register::<D>(param.id, g * self.factor);
        }
    }
}

/// Clips gradients to a global L2 norm of `max_norm` (PyTorch's `clip_grad_norm_`, which Burn's
/// per-tensor clipping is not) and returns the norm before clipping.
pub fn clip_global_norm<M: Module>(model: &M, grads: &mut GradientsParams, max_norm: f64) -> f64 {
    let mut norm = SquaredNorm { grads, total: 0.0 };
    model.visit(&mut norm);
    let total = norm.total.sqrt();
    if max_norm > 0.0 && total > max_norm {
        let mut scale = Scale {
            grads,
            factor: max_norm / (total + 1e-6),
        };
        model.visit(&mut scale);
    }
    total
}

/// The GRPO learner: a policy on an autodiff device, its optimiser and the rewards.
pub struct GrpoTrainer {
    model: Option<CausalLm>,
    optim: ModuleOptimizer,
    config: TrainerConfig,
    rewards: RewardSet,
    tokenizer: Option<Tokenizer>,
    eos_token_ids: Vec<u32>,
    pad_token_id: u32,
    step: u64,
}

impl std::fmt::Debug for GrpoTrainer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrpoTrainer")
            .field("step", &self.step)
            .finish()
    }
}

impl GrpoTrainer {
    /// A trainer for `model` (on an autodiff device).
    pub fn new(
        model: CausalLm,
        config: TrainerConfig,
        rewards: RewardSet,
        tokenizer: Option<Tokenizer>,
        eos_token_ids: Vec<u32>,
        pad_token_id: u32,
    ) -> Result<Self> {
        config.loss.validate()?;
        if config.loss.beta != 0.0 {
            return Err(GrpoError::Config {
                field: "beta".into(),
                message: "this first trainer has no reference model yet: use beta = 0".into(),
            });
        }
        let optim = AdamWConfig::new()
            .with_beta_1(config.adam_betas.0)
            .with_beta_2(config.adam_betas.1)
            .with_epsilon(config.adam_epsilon)
            .with_weight_decay(config.weight_decay)
            .init();
        Ok(Self {
            model: Some(model),
            optim,
            config,
            rewards,
            tokenizer,
            eos_token_ids,
            pad_token_id,
            step: 0,
        })
    }

    /// The current policy.
    pub fn model(&self) -> Result<&CausalLm> {
        self.model
            .as_ref()
            .ok_or_else(|| GrpoError::Backend("the model was lost in a failed step".into()))
    }

    /// Generates, scores and updates once on `prompts`.
    pub fn step(&mut self, prompts: &[Prompt]) -> Result<StepMetrics> {
        let _span = tracing::info_span!("grpo_step", step = self.step).entered();
        let g = self.config.loss.num_generations;
        let model = self
            .model
            .take()
            .ok_or_else(|| GrpoError::Backend("no model".into()))?;
        let result = self.step_inner(&model, prompts, g);
        let (metrics, grads) = match result {
            Ok(x) => x,
            Err(e) => {
                self.model = Some(model);
                return Err(e);
            }
        };
        let started = Instant::now();
        let model = self.optim.step(self.config.learning_rate, model, grads);
        self.model = Some(model);
        self.step += 1;
        let mut metrics = metrics;
        metrics.seconds.2 += started.elapsed().as_secs_f64();
        Ok(metrics)
    }

    fn step_inner(
        &self,
        model: &CausalLm,
        prompts: &[Prompt],
        g: usize,
    ) -> Result<(StepMetrics, GradientsParams)> {
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
                .wrapping_add(self.step.wrapping_mul(0x9E37_79B9)),
            pad_token_id: self.pad_token_id,
            ..GenerationConfig::default()
        };
        let samples = generate(&engine, &prompt_ids, &rollout, self.tokenizer.as_ref())
            .map_err(|e| GrpoError::Backend(e.to_string()))?;
        metrics.seconds.0 = t0.elapsed().as_secs_f64();

        // 2. rewards
        let t1 = Instant::now();
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
        metrics.frac_reward_zero_std = totals
            .chunks(g)
            .filter(|grp| grp.iter().all(|x| (x - grp[0]).abs() < 1e-9))
            .count() as f64
            / (totals.len() / g).max(1) as f64;
        for (name, vals) in scored.names.iter().zip(&scored.values) {
            let v: Vec<f64> = vals.iter().flatten().map(|x| *x as f64).collect();
            metrics
                .rewards
                .push((name.clone(), v.iter().sum::<f64>() / v.len().max(1) as f64));
        }
        let lens: Vec<usize> = samples.iter().map(|s| s.completion_ids.len()).collect();
        metrics.completion_length = (
            lens.iter().sum::<usize>() as f64 / lens.len().max(1) as f64,
            lens.iter().copied().min().unwrap_or(0),
            lens.iter().copied().max().unwrap_or(0),
        );
        metrics.seconds.1 = t1.elapsed().as_secs_f64();

        // 3. policy log-probs under autodiff, the loss and its gradients
        let t2 = Instant::now();
        let cmax = lens.iter().copied().max().unwrap_or(0);
        if cmax == 0 {
            return Err(GrpoError::Shape("every completion is empty".into()));
        }
        let sequences: Vec<Vec<u32>> = samples
            .iter()
            .map(|s| {
                s.prompt_ids
                    .iter()
                    .chain(&s.completion_ids)
                    .copied()
                    .collect()
            })
            .collect();
        let batch = Batch::left_padded(&sequences, self.pad_token_id);
        let (b, t) = (batch.batch, batch.seq);
        let device = model.device();
        let hidden = model
            .forward_hidden(&batch, &vec![0; b], None)
            .map_err(|e| GrpoError::Backend(e.to_string()))?;
        let hs = hidden.dims()[2];
        // Completions end at the right edge: position t-1-cmax+j predicts token t-cmax+j.
        let hidden = hidden.slice([0..b, t - 1 - cmax..t - 1, 0..hs]);
        let targets: Vec<i64> = (0..b)
            .flat_map(|r| {
                batch.ids[r * t + t - cmax..(r + 1) * t]
                    .iter()
                    .map(|&i| i as i64)
            })
            .collect();
        let targets = Tensor::<2, Int>::from_data(TensorData::new(targets, [b, cmax]), &device);
        let chunk = chunk_rows_for(model.config().vocab_size, DEFAULT_CHUNK_ELEMENTS);
        let (logps, entropies) =
            selective_log_softmax(model, hidden, targets, self.config.temperature, chunk, true);
        let mask: Vec<f32> = lens
            .iter()
            .flat_map(|&l| (0..cmax).map(move |j| if j >= cmax - l { 1.0 } else { 0.0 }))
            .collect();
        let num_items: f32 = mask.iter().sum();
        let mask = Tensor::<2>::from_data(TensorData::new(mask, [b, cmax]), (&device, DType::F32));
        let out = policy_loss(
            &self.config.loss,
            LossInputs {
                per_token_logps: logps,
                old_per_token_logps: None,
                ref_per_token_logps: None,
                advantages: Tensor::from_data(TensorData::new(advantages, [b]), &device),
                completion_mask: mask,
                entropies: entropies.map(|e| e.detach()),
                num_items_in_batch: num_items,
                gradient_accumulation_steps: 1,
                steps_per_generation: 1,
            },
        )?;
        let loss_value =
            read_f32(out.loss.clone()).map_err(|e| GrpoError::Backend(e.to_string()))?;
        let loss_value = loss_value.first().copied().unwrap_or(f32::NAN);
        if !loss_value.is_finite() {
            // Stop before the weights are touched.
            return Err(GrpoError::Backend(format!(
                "the loss is {loss_value}: not updating the weights"
            )));
        }
        metrics.loss = loss_value as f64;
        metrics.loss_metrics = out.metrics.into_iter().collect();
        let grads = out.loss.backward();
        let mut grads = GradientsParams::from_grads(grads, model);
        metrics.grad_norm = clip_global_norm(model, &mut grads, self.config.max_grad_norm);
        if !metrics.grad_norm.is_finite() {
            return Err(GrpoError::Backend(
                "the gradient norm is not finite: not updating the weights".into(),
            ));
        }
        metrics.seconds.2 = t2.elapsed().as_secs_f64();
        Ok((metrics, grads))
    }
}
