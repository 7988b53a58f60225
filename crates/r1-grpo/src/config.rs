//! The loss-side fields of TRL's `GRPOConfig`, with TRL's names, defaults (TRL 1.16) and checks.
//!
//! R1's paper and TRL's defaults differ on purpose: TRL 1.16 defaults to `loss_type = "dapo"`
//! and `beta = 0` (no reference model); DeepSeek-R1 / DeepSeekMath use the per-sequence `grpo`
//! loss with `beta = 0.001` and G = 16. [`LossConfig::r1_paper`] gives the latter.

use serde::{Deserialize, Serialize};

use crate::error::{GrpoError, Result};

/// `loss_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LossType {
    /// DeepSeekMath / R1: per-sequence mean of token losses, then the batch mean.
    Grpo,
    /// Mean over all tokens of the local batch.
    Bnpo,
    /// Dr. GRPO: sum over tokens divided by `batch * max_completion_length`.
    DrGrpo,
    /// DAPO: token-level sum divided by the tokens of the whole generation batch (TRL's default).
    Dapo,
    /// CISPO (MiniMax-M1): clipped, detached importance weights times the log-prob.
    Cispo,
    /// SAPO: a soft sigmoid gate instead of clipping.
    Sapo,
    /// LUSPO: sequence sums, meant with sequence-level ratios.
    Luspo,
    /// VESPO: gamma-shaped sequence weights times the log-prob.
    Vespo,
}

/// `importance_sampling_level`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImportanceSamplingLevel {
    /// One ratio per token (PPO, GRPO).
    Token,
    /// One ratio per sequence: the exponentiated mean token log-ratio (GSPO).
    Sequence,
}

/// `scale_rewards`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScaleRewards {
    /// Divide by the group's std (GRPO).
    Group,
    /// Divide by the batch's std.
    Batch,
    /// No scaling (Dr. GRPO).
    None,
}

/// `multi_objective_aggregation`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Aggregation {
    /// Weighted sum of the rewards, then group normalisation.
    SumThenNormalize,
    /// Normalise each reward within its group, sum with weights, then batch normalisation (GDPO).
    NormalizeThenSum,
}

fn default_loss_type() -> LossType {
    LossType::Dapo
}
fn default_epsilon() -> f64 {
    0.2
}
fn default_level() -> ImportanceSamplingLevel {
    ImportanceSamplingLevel::Token
}
fn default_true() -> bool {
    true
}
fn default_one() -> f64 {
    1.0
}
fn default_max_completion_length() -> usize {
    512
}
fn default_num_generations() -> usize {
    8
}
fn default_scale() -> ScaleRewards {
    ScaleRewards::Group
}
fn default_aggregation() -> Aggregation {
    Aggregation::SumThenNormalize
}
fn default_sapo_neg() -> f64 {
    1.05
}
fn default_k_pos() -> f64 {
    2.0
}
fn default_lambda_pos() -> f64 {
    3.0
}
fn default_k_neg() -> f64 {
    3.0
}
fn default_lambda_neg() -> f64 {
    2.0
}

/// The fields of `GRPOConfig` that shape advantages and the loss. Unknown fields are accepted
/// (a fixture or a TRL config may carry the rest of `GRPOConfig`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LossConfig {
    /// `loss_type` (TRL default `dapo`; R1 paper `grpo`).
    #[serde(default = "default_loss_type")]
    pub loss_type: LossType,
    /// `beta`: weight of the k3 KL to the reference model (TRL default 0: no reference model;
    /// R1 paper 0.001).
    #[serde(default)]
    pub beta: f64,
    /// `epsilon`: lower clip range, `1 - epsilon` (default 0.2).
    #[serde(default = "default_epsilon")]
    pub epsilon: f64,
    /// `epsilon_high`: upper clip range, `1 + epsilon_high` (DAPO's clip-higher; defaults to
    /// `epsilon`). For `cispo` it is the cap of the importance weight.
    #[serde(default)]
    pub epsilon_high: Option<f64>,
    /// `delta`: two-sided clipping cap on the unclipped ratio (default none).
    #[serde(default)]
    pub delta: Option<f64>,
    /// `importance_sampling_level` (default `token`; `sequence` is GSPO).
    #[serde(default = "default_level")]
    pub importance_sampling_level: ImportanceSamplingLevel,
    /// `use_bias_correction_kl`: multiply the KL by the importance ratio, the unbiased
    /// reverse-KL gradient of DeepSeek-V3.2 (TRL 1.16 default true).
    #[serde(default = "default_true")]
    pub use_bias_correction_kl: bool,
    /// `top_entropy_quantile`: keep the policy gradient on the top fraction of tokens by entropy
    /// (default 1.0: all tokens).
    #[serde(default = "default_one")]
    pub top_entropy_quantile: f64,
    /// `mask_truncated_completions`: completions that hit the token budget are left out of the
    /// loss (DAPO; TRL default false).
    #[serde(default)]
    pub mask_truncated_completions: bool,
    /// `max_completion_length` (default 512), used by `dr_grpo`.
    #[serde(default = "default_max_completion_length")]
    pub max_completion_length: usize,
    /// `num_generations`: G, completions per prompt (TRL default 8; R1 paper 16).
    #[serde(default = "default_num_generations")]
    pub num_generations: usize,
    /// `scale_rewards` (default `group`; `none` is Dr. GRPO). TRL's `true`/`false` spellings
    /// mean `group`/`none`.
    #[serde(default = "default_scale", deserialize_with = "scale_rewards")]
    pub scale_rewards: ScaleRewards,
    /// `multi_objective_aggregation` (default `sum_then_normalize`).
    #[serde(default = "default_aggregation")]
    pub multi_objective_aggregation: Aggregation,
    /// `reward_weights`: one per reward function (default all 1).
    #[serde(default)]
    pub reward_weights: Option<Vec<f64>>,
    /// `sapo_temperature_pos` (default 1.0).
    #[serde(default = "default_one")]
    pub sapo_temperature_pos: f64,
    /// `sapo_temperature_neg` (default 1.05).
    #[serde(default = "default_sapo_neg")]
    pub sapo_temperature_neg: f64,
    /// `vespo_k_pos` (default 2.0).
    #[serde(default = "default_k_pos")]
    pub vespo_k_pos: f64,
    /// `vespo_lambda_pos` (default 3.0).
    #[serde(default = "default_lambda_pos")]
    pub vespo_lambda_pos: f64,
    /// `vespo_k_neg` (default 3.0).
    #[serde(default = "default_k_neg")]
    pub vespo_k_neg: f64,
    /// `vespo_lambda_neg` (default 2.0).
    #[serde(default = "default_lambda_neg")]
    pub vespo_lambda_neg: f64,
}

fn scale_rewards<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<ScaleRewards, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        Bool(bool),
        Named(ScaleRewards),
    }
    Ok(match Either::deserialize(d)? {
        Either::Bool(true) => ScaleRewards::Group,
        Either::Bool(false) => ScaleRewards::None,
        Either::Named(s) => s,
    })
}

impl Default for LossConfig {
    /// TRL 1.16's defaults.
    fn default() -> Self {
        serde_json::from_str("{}").unwrap_or_else(|_| unreachable!("every field has a default"))
    }
}

impl LossConfig {
    /// DeepSeek-R1's settings: per-sequence `grpo`, `beta = 0.001`, G = 16, epsilon 0.2.
    pub fn r1_paper() -> Self {
        Self {
            loss_type: LossType::Grpo,
            beta: 0.001,
            num_generations: 16,
            ..Self::default()
        }
    }

    /// The lower clip range.
    pub fn epsilon_low(&self) -> f64 {
        self.epsilon
    }

    /// The upper clip range (`epsilon_high`, else `epsilon`).
    pub fn epsilon_high(&self) -> f64 {
        self.epsilon_high.unwrap_or(self.epsilon)
    }

    /// Rejects bad values and combinations, saying why (as TRL does, and a few more).
    pub fn validate(&self) -> Result<()> {
        let bad = |field: &str, message: &str| Err(GrpoError::config(field, message));
        if !(self.beta >= 0.0 && self.beta.is_finite()) {
            return bad("beta", "must be a finite number >= 0");
        }
        if !(self.epsilon >= 0.0 && self.epsilon < 1.0) {
            return bad(
                "epsilon",
                "must be in [0, 1): the lower clip bound is 1 - epsilon",
            );
        }
        if self.epsilon_high.is_some_and(|e| e < 0.0) {
            return bad("epsilon_high", "must be >= 0");
        }
        if self.delta.is_some_and(|d| !(d > 0.0 && d.is_finite())) {
            return bad(
                "delta",
                "must be a positive number (TRL recommends more than 1 + epsilon_high)",
            );
        }
        if !(self.top_entropy_quantile > 0.0 && self.top_entropy_quantile <= 1.0) {
            return bad("top_entropy_quantile", "must be in (0, 1]");
        }
        if self.num_generations < 2 {
            return bad(
                "num_generations",
                "group-relative advantages need at least 2 completions per prompt",
            );
        }
        if self.max_completion_length == 0 {
            return bad("max_completion_length", "must be positive");
        }
        if self
            .reward_weights
            .as_ref()
            .is_some_and(|w| w.iter().any(|x| !x.is_finite()))
        {
            return bad("reward_weights", "must be finite");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_trls_and_r1_differs_on_purpose() {
        let c = LossConfig::default();
        assert_eq!(
            (c.loss_type, c.beta, c.epsilon, c.epsilon_high()),
            (LossType::Dapo, 0.0, 0.2, 0.2)
        );
        assert_eq!(
            (
                c.num_generations,
                c.max_completion_length,
                c.top_entropy_quantile
            ),
            (8, 512, 1.0)
        );
        assert!(
            c.use_bias_correction_kl,
            "TRL 1.16 corrects the KL by default"
        );
        let r1 = LossConfig::r1_paper();
        assert_eq!(
            (r1.loss_type, r1.beta, r1.num_generations),
            (LossType::Grpo, 0.001, 16)
        );
        let legacy: LossConfig =
            serde_json::from_str(r#"{"scale_rewards": false}"#).expect("parse");
        assert_eq!(legacy.scale_rewards, ScaleRewards::None);
    }

    #[test]
    fn validate_says_what_is_wrong() {
        let bad = |json: &str, field: &str| {
            let c: LossConfig = serde_json::from_str(json).expect("parse");
            match c.validate() {
                Err(GrpoError::Config { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{json}: expected an error on {field}, got {other:?}"),
            }
        };
        bad(r#"{"beta": -1}"#, "beta");
        bad(r#"{"epsilon": 1.5}"#, "epsilon");
        bad(r#"{"num_generations": 1}"#, "num_generations");
        bad(r#"{"top_entropy_quantile": 0}"#, "top_entropy_quantile");
        assert!(serde_json::from_str::<LossConfig>(r#"{"loss_type": "ppo"}"#).is_err());
    }
}
