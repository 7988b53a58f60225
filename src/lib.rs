//! # r1
//!
//! Train reasoning language models the way DeepSeek-R1 was trained. This package is the `r1`
//! command line and, for users who want a single dependency, re-exports the workspace crates.
//!
//! It holds [`r1_model`] (Hugging Face dense decoders with transformers' numbers, KV-cache
//! generation and chunked log-probs), [`r1_rewards`] (rule-based rewards, the maths grader and
//! reward plugins), [`r1_data`] (datasets, templates, synthetic tasks), [`r1_grpo`] (GRPO and the
//! shared training machinery), [`r1_distill`] (SFT, rejection sampling, distillation) and
//! [`r1_pipeline`] (the multi-stage pipeline, `r1 grpo`, evaluation).

pub use r1_data as data;
pub use r1_distill as distill;
pub use r1_grpo as grpo;
pub use r1_model as model;
pub use r1_pipeline as pipeline;
pub use r1_rewards as rewards;

pub mod device;
