//! # r1
//!
//! Train reasoning language models the way DeepSeek-R1 was trained. This package is the `r1`
//! command line and, for users who want a single dependency, re-exports the workspace crates.
//!
//! Today it holds [`r1_model`] (Hugging Face dense decoders with transformers' numbers,
//! KV-cache generation and chunked log-probs) and [`r1_rewards`] (rule-based rewards, the maths
//! grader and reward plugins).

pub use r1_model as model;
pub use r1_rewards as rewards;

pub mod device;
