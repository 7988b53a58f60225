//! # r1-grpo
//!
//! Group relative policy optimisation (DeepSeekMath, DeepSeek-R1) and its successors, computed
//! exactly as TRL 1.16's `GRPOTrainer` computes them, as pure functions:
//!
//! - [`advantages`]: group-relative advantages from per-function rewards, with TRL's
//!   `scale_rewards` and `multi_objective_aggregation` and unscorable (`None`) rewards;
//! - [`loss`]: the policy losses `grpo`, `bnpo`, `dr_grpo`, `dapo`, `cispo`, `sapo`, `luspo`,
//!   `vespo`, with token- or sequence-level importance ratios (GSPO), clip-higher, two-sided
//!   `delta`, k3 KL to a reference model, high-entropy token masking and TRL's metrics.
//!
//! - [`logprobs`]: per-token log-probs and entropies from hidden states, chunked, with a fused
//!   head + log-softmax operation (CubeCL kernels on GPU backends) that keeps no logits for
//!   backward.
//!
//! [`optim`] is the training machinery every r1 trainer shares (AdamW, global-norm clipping,
//! schedules, atomic checkpoints, JSONL metrics); `r1-distill`'s SFT trainer uses it too.
//!
//! [`trainer`] runs GRPO steps: rollouts from the in-process engine, rewards, advantages,
//! old and reference log-probs, gradient accumulation, `steps_per_generation` and
//! `num_iterations`, global-norm clipping, AdamW with schedules, reference resets, dynamic
//! sampling, NaN guards, metrics, and atomic checkpoints that resume exactly.

pub mod advantages;
pub mod config;
pub mod error;
pub mod logprobs;
pub mod loss;
pub mod optim;
pub mod schedule;
pub mod toml_config;
pub mod trainer;

pub use advantages::compute_advantages;
pub use config::{Aggregation, ImportanceSamplingLevel, LossConfig, LossType, ScaleRewards};
pub use error::{GrpoError, Result};
pub use logprobs::{LogProbImpl, fused_selective_log_softmax, token_logprobs};
pub use loss::{LossInputs, LossOutput, policy_loss};
pub use optim::{
    Checkpoint, MetricsLog, OptimSettings, Optimizer, Progress, StepInfo, clip_global_norm,
    load_checkpoint, load_model_folder, progress_println, save_checkpoint, set_progress_scope,
};
pub use schedule::{LrSchedule, learning_rate, learning_rate_with_floor};
/// The whole GRPO configuration, TRL's `GRPOConfig`: [`TrainerConfig`] (with its
/// [`LossConfig`]), read from one flat TOML table by [`TrainerConfig::from_toml_file`].
pub type GrpoConfig = TrainerConfig;
pub use trainer::{
    GrpoTrainer, Prompt, StepMetrics, TrainerConfig, completion_logprobs, right_aligned,
};
