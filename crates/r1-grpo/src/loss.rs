//! Policy losses of TRL 1.16's `GRPOTrainer._compute_loss`, as a pure function of tensors.

use std::collections::BTreeMap;

use burn::tensor::activation::sigmoid;
use burn::tensor::{Bool, DType, Tensor, TensorData};

use crate::config::{ImportanceSamplingLevel, LossConfig, LossType};
use crate::error::{GrpoError, Result};

/// What one loss call needs. Every tensor is `[batch, completion_len]` unless noted.
#[derive(Debug, Clone)]
pub struct LossInputs {
    /// Log-probs of the completion tokens under the policy being trained (tracked).
    pub per_token_logps: Tensor<2>,
    /// Log-probs under the policy that generated the completions; `None` on-policy (then the
    /// detached `per_token_logps` stand in, as in TRL).
    pub old_per_token_logps: Option<Tensor<2>>,
    /// Log-probs under the reference model; needed when `beta > 0`.
    pub ref_per_token_logps: Option<Tensor<2>>,
    /// Advantages, `[batch]`.
    pub advantages: Tensor<1>,
    /// 1 for completion tokens, 0 for padding.
    pub completion_mask: Tensor<2>,
    /// Per-token entropies (for `top_entropy_quantile` and the `entropy` metric).
    pub entropies: Option<Tensor<2>>,
    /// Completion tokens in the whole generation batch (DAPO-style normalisers).
    pub num_items_in_batch: f32,
    /// Micro-batches accumulated into one optimiser step.
    pub gradient_accumulation_steps: usize,
    /// Optimiser steps per generation batch (`steps_per_generation`).
    pub steps_per_generation: usize,
}

/// The loss and TRL's logged metrics.
#[derive(Debug, Clone)]
pub struct LossOutput {
    /// Scalar loss, `[1]`, ready for `backward`.
    pub loss: Tensor<1>,
    /// `kl`, `entropy`, `clip_ratio/low_mean`, `clip_ratio/high_mean`, `clip_ratio/region_mean`,
    /// `clip_ratio/low_min`, `clip_ratio/high_max`, `cispo_clip_ratio`, `vespo/phi_seq_mean`, as
    /// applicable.
    pub metrics: BTreeMap<String, f64>,
}

fn host(t: Tensor<2>) -> Result<Vec<f32>> {
    t.detach()
        .cast(DType::F32)
        .try_into_data()
        .map_err(|e| GrpoError::Backend(format!("{e:?}")))?
        .try_to_vec::<f32>()
        .map_err(|e| GrpoError::Backend(format!("{e:?}")))
}

/// `torch.quantile` with linear interpolation.
fn quantile(mut v: Vec<f32>, q: f64) -> f32 {
    v.sort_by(f32::total_cmp);
    if v.is_empty() {
        return f32::INFINITY;
    }
    let pos = q * (v.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    let frac = (pos - lo as f64) as f32;
    v[lo] + (v[hi] - v[lo]) * frac
}

/// Masked mean over the batch (TRL's `global_masked_mean` on one process): `[batch, 1]`
/// tensors are one value per sequence.
fn global_masked_mean(x: &Tensor<2>, mask: &Tensor<2>) -> Result<f64> {
    let vals = host(x.clone())?;
    let [b, t] = x.dims();
    if t == 1 {
        return Ok(vals.iter().map(|v| *v as f64).sum::<f64>() / b as f64);
    }
    let m = host(mask.clone())?;
    let num: f64 = vals.iter().zip(&m).map(|(v, m)| (*v * *m) as f64).sum();
    let den: f64 = m.iter().map(|m| *m as f64).sum();
    Ok(num / den.max(1.0))
}

/// Per-sequence masked means (TRL's `masked_seq_mean`).
fn masked_seq_means(x: &Tensor<2>, mask: &Tensor<2>) -> Result<Vec<f64>> {
    let vals = host(x.clone())?;
    let [b, t] = x.dims();
    if t == 1 {
        return Ok(vals.iter().map(|v| *v as f64).collect());
    }
    let m = host(mask.clone())?;
    Ok((0..b)
        .map(|r| {
            let num: f64 = (0..t)
                .map(|j| (vals[r * t + j] * m[r * t + j]) as f64)
                .sum();
            let den: f64 = (0..t).map(|j| m[r * t + j] as f64).sum();
            num / den
        })
        .collect())
}

fn float(b: Tensor<2, Bool>) -> Tensor<2> {
    b.float()
}

/// The policy loss of `config.loss_type`, exactly as TRL computes it, with its metrics.
///
/// # Shapes
/// see [`LossInputs`]; returns a `[1]` loss.
pub fn policy_loss(config: &LossConfig, inputs: LossInputs) -> Result<LossOutput> {
    let LossInputs {
        per_token_logps: logps,
        old_per_token_logps,
        ref_per_token_logps,
        advantages,
        completion_mask: mask,
        entropies,
        num_items_in_batch,
        gradient_accumulation_steps,
        steps_per_generation,
    } = inputs;
    let [b, t] = logps.dims();
    if mask.dims() != [b, t] || advantages.dims() != [b] {
        return Err(GrpoError::Shape(format!(
            "per_token_logps {:?}, completion_mask {:?}, advantages {:?}: expected [B, T], [B, T], [B]",
            logps.dims(),
            mask.dims(),
            advantages.dims()
        )));
    }
    let device = logps.device();
    let ga = gradient_accumulation_steps.max(1) as f64;
    let adv = advantages.reshape([b, 1]); // [B, 1]
    let mut metrics = BTreeMap::new();

    let entropy_mask = match (&entropies, config.top_entropy_quantile < 1.0) {
        (Some(e), true) => {
            let ev = host(e.clone())?;
            let mv = host(mask.clone())?;
            let active: Vec<f32> = ev
                .iter()
                .zip(&mv)
                .filter(|(_, m)| **m > 0.0)
                .map(|(e, _)| *e)
                .collect();
            let threshold = quantile(active, 1.0 - config.top_entropy_quantile);
            let keep: Vec<f32> = ev
                .iter()
                .zip(&mv)
                .map(|(e, m)| {
                    if e * m >= threshold && *m > 0.0 {
                        1.0
                    } else {
                        0.0
                    }
                })
                .collect();
            Some(Tensor::<2>::from_data(
                TensorData::new(keep, [b, t]),
                &device,
            ))
        }
        (None, true) => {
            return Err(GrpoError::Shape(
                "top_entropy_quantile < 1 needs entropies".into(),
            ));
        }
        _ => None,
    };

    let old = old_per_token_logps.unwrap_or_else(|| logps.clone().detach());
    let log_ratio = logps.clone() - old;
    let log_weights = match config.importance_sampling_level {
        ImportanceSamplingLevel::Token => log_ratio.clone(),
        ImportanceSamplingLevel::Sequence => {
            let len = mask.clone().sum_dim(1).clamp_min(1.0);
            (log_ratio.clone() * mask.clone()).sum_dim(1) / len // [B, 1]
        }
    };
    let mut coef_1 = log_weights.exp();

    let per_token_kl = if config.beta != 0.0 {
        let reference = ref_per_token_logps
            .ok_or_else(|| GrpoError::Shape("beta > 0 needs ref_per_token_logps".into()))?;
        let d = reference - logps.clone();
        let kl = d.clone().exp() - d - 1.0;
        Some(if config.use_bias_correction_kl {
            kl * coef_1.clone()
        } else {
            kl
        })
    } else {
        None
    };

    let (eps_low, eps_high) = (config.epsilon_low(), config.epsilon_high());
    let mut phi_seq = None;
    let per_token_loss = match config.loss_type {
        LossType::Cispo => {
            let clamped = coef_1.clone().clamp_max(eps_high).detach();
            (clamped * adv.clone() * logps.clone()).neg()
        }
        LossType::Grpo | LossType::Bnpo | LossType::DrGrpo | LossType::Dapo | LossType::Luspo => {
            let coef_2 = coef_1.clone().clamp(1.0 - eps_low, 1.0 + eps_high);
            if let Some(delta) = config.delta {
                coef_1 = coef_1.clamp_max(delta);
            }
            let l1 = coef_1.clone() * adv.clone();
            let l2 = coef_2 * adv.clone();
            l1.min_pair(l2).neg()
        }
        LossType::Sapo => {
            let positive = float(adv.clone().greater_elem(0.0));
            let temps = positive.clone() * config.sapo_temperature_pos
                + (positive.neg() + 1.0) * config.sapo_temperature_neg; // [B, 1]
            let soft = sigmoid(temps.clone() * (coef_1.clone() - 1.0)) * 4.0 / temps;
            (soft * adv.clone()).neg()
        }
        LossType::Vespo => {
            let lower = (1e-8f64).ln();
            let seq = (log_ratio.clone().detach().clamp(-20.0, 20.0) * mask.clone()).sum_dim(1); // [B, 1]
            let log_w = seq.clamp(lower, 20.0);
            let w = log_w.clone().exp();
            let nonneg = float(adv.clone().greater_equal_elem(0.0));
            let k = nonneg.clone() * config.vespo_k_pos
                + (nonneg.clone().neg() + 1.0) * config.vespo_k_neg;
            let lam = (nonneg.clone() * config.vespo_lambda_pos
                + (nonneg.neg() + 1.0) * config.vespo_lambda_neg)
                .clamp_min(1e-4);
            let log_phi = lam.clone() + k * log_w - lam * w;
            let phi = log_phi.exp();
            // nan_to_num(nan=0, posinf=0, neginf=0)
            let phi = phi
                .clone()
                .mask_fill(phi.clone().is_nan().bool_or(phi.is_inf()), 0.0)
                .detach();
            phi_seq = Some(phi.clone());
            (phi * adv.clone() * logps.clone()).neg()
        }
    };
    let mut per_token_loss = per_token_loss;
    if let Some(em) = &entropy_mask {
        per_token_loss = per_token_loss * em.clone();
    }
    if let Some(kl) = &per_token_kl {
        per_token_loss = per_token_loss + kl.clone() * config.beta;
    }

    let masked = per_token_loss.clone() * mask.clone(); // [B, T]
    let loss: Tensor<1> = match config.loss_type {
        LossType::Grpo | LossType::Sapo => {
            let len = mask.clone().sum_dim(1).clamp_min(1.0);
            (masked.sum_dim(1) / len).mean() / ga
        }
        LossType::Bnpo => masked.sum() / mask.clone().sum().clamp_min(1.0) / ga,
        LossType::DrGrpo => masked.sum() / (b as f64 * config.max_completion_length as f64) / ga,
        LossType::Dapo | LossType::Cispo | LossType::Vespo => {
            let normalizer =
                (num_items_in_batch as f64).max(1.0) * ga / steps_per_generation.max(1) as f64;
            masked.sum() / normalizer
        }
        LossType::Luspo => masked.sum_dim(1).mean() / ga,
    };

    if let Some(kl) = &per_token_kl {
        metrics.insert("kl".into(), global_masked_mean(kl, &mask)?);
    }
    if let Some(e) = &entropies {
        metrics.insert("entropy".into(), global_masked_mean(e, &mask)?);
    }
    match config.loss_type {
        LossType::Grpo | LossType::Bnpo | LossType::DrGrpo | LossType::Dapo | LossType::Luspo => {
            let low = coef_1
                .clone()
                .lower_elem(1.0 - eps_low)
                .bool_and(adv.clone().lower_elem(0.0));
            let high = coef_1
                .clone()
                .greater_elem(1.0 + eps_high)
                .bool_and(adv.clone().greater_elem(0.0));
            let region = low.clone().bool_or(high.clone());
            let (low, high, region) = (float(low), float(high), float(region));
            metrics.insert(
                "clip_ratio/low_mean".into(),
                global_masked_mean(&low, &mask)?,
            );
            metrics.insert(
                "clip_ratio/high_mean".into(),
                global_masked_mean(&high, &mask)?,
            );
            metrics.insert(
                "clip_ratio/region_mean".into(),
                global_masked_mean(&region, &mask)?,
            );
            let lows = masked_seq_means(&low, &mask)?;
            let highs = masked_seq_means(&high, &mask)?;
            metrics.insert(
                "clip_ratio/low_min".into(),
                lows.iter()
                    .copied()
                    .filter(|x| !x.is_nan())
                    .fold(f64::INFINITY, f64::min),
            );
            metrics.insert(
                "clip_ratio/high_max".into(),
                highs
                    .iter()
                    .copied()
                    .filter(|x| !x.is_nan())
                    .fold(f64::NEG_INFINITY, f64::max),
            );
        }
        LossType::Cispo => {
            let clipped = float(
                coef_1
                    .clone()
                    .greater_elem(eps_high)
                    .bool_and(adv.clone().greater_elem(0.0)),
            );
            metrics.insert(
                "cispo_clip_ratio".into(),
                global_masked_mean(&clipped, &mask)?,
            );
        }
        LossType::Vespo => {
            if let Some(phi) = &phi_seq {
                metrics.insert("vespo/phi_seq_mean".into(), global_masked_mean(phi, &mask)?);
            }
        }
        LossType::Sapo => {}
    }
    Ok(LossOutput { loss, metrics })
}
