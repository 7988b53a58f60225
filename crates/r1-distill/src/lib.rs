//! # r1-distill
//!
//! The supervised stages of DeepSeek-R1: the cold-start SFT, the SFT on rejection-sampled
//! data, and the distillation of students.
//!
//! - [`config`]: `SftConfig`, TRL 1.16's `SFTConfig` names and defaults, read from TOML with
//!   `--set` overrides;
//! - [`tokenize`]: samples to training sequences as TRL tokenizes them (eos appended,
//!   completion-only labels, assistant turns of conversations, truncation, `bfd` packing);
//! - [`sft`]: the step: causal-LM cross-entropy divided by the label tokens of the whole
//!   optimiser step (transformers' `num_items_in_batch`), through r1-grpo's fused
//!   head + log-softmax; logit distillation (forward or reverse KL) mixed in by weight;
//! - [`train`]: the run: epochs or `max_steps`, data order, held-out loss, atomic checkpoints
//!   with exact resume, metrics (`loss`, `grad_norm`, `learning_rate`, `num_tokens`,
//!   `mean_token_accuracy`) to tracing and `metrics.jsonl`, a progress bar;
//! - [`rejection`] and [`filters`]: rejection sampling with R1's readability filters (mixed
//!   languages, long paragraphs, code blocks in the reasoning, repetition), deduplication and
//!   keep-n-per-prompt, with provenance and acceptance statistics.
//!
//! The optimiser, schedules, clipping, checkpoints and metrics file are r1-grpo's
//! ([`r1_grpo::optim`]), shared with the GRPO trainer.

pub mod config;
pub mod error;
pub mod filters;
pub mod rejection;
pub mod sft;
pub mod tokenize;
pub mod train;

pub use config::{KdDivergence, SftConfig};
pub use error::{DistillError, Result};
pub use sft::{MicroBatch, SftTrainer, StepOutput, Teacher};
pub use tokenize::{Example, SftTokenizer};
pub use train::{SftRun, SftSummary, run_sft};
