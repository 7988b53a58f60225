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
//! The trainer around them (rollouts, optimiser, checkpoints) is not written yet.

pub mod advantages;
pub mod config;
pub mod error;
pub mod loss;

pub use advantages::compute_advantages;
pub use config::{Aggregation, ImportanceSamplingLevel, LossConfig, LossType, ScaleRewards};
pub use error::{GrpoError, Result};
pub use loss::{LossInputs, LossOutput, policy_loss};
