//! # r1-model
//!
//! Hugging Face dense decoders in Burn 0.22 with transformers' numbers: Qwen2 / Qwen2.5,
//! Qwen3 and Llama-3.x, loaded from and saved to local checkpoint folders, with a caller-owned
//! KV cache, batched generation (greedy or sampled, seeded) and chunked per-token log-probs.
//!
//! ```no_run
//! use burn::tensor::Device;
//! use r1_model::{GenerationConfig, Pretrained, SamplingParams, generate};
//!
//! # fn main() -> r1_model::Result<()> {
//! let device = Device::default();
//! let pretrained = Pretrained::load("Qwen2.5-0.5B-Instruct", None, &device)?;
//! let tok = pretrained.tokenizer.as_ref().expect("tokenizer.json");
//! let prompt = tok.encode("2 + 2 =", true)?;
//! let config = GenerationConfig {
//!     max_new_tokens: 16,
//!     sampling: SamplingParams::greedy(),
//!     eos_token_ids: pretrained.eos_token_ids(),
//!     pad_token_id: pretrained.pad_token_id(),
//!     ..GenerationConfig::default()
//! };
//! let out = generate(&pretrained.model, &[prompt], &config, Some(tok))?;
//! println!("{}", tok.decode(&out[0].completion_ids, true)?);
//! # Ok(())
//! # }
//! ```

pub mod batching;
pub mod cache;
pub mod config;
pub mod error;
pub mod generate;
pub mod io;
pub mod logprobs;
pub mod model;
pub mod pretrained;
pub mod rng;
pub mod rope;
pub mod sampling;
pub mod tokenizer;
pub mod weights;

pub use batching::{ContinuousBatch, SeqId, SeqParams, TokenEvent};
pub use cache::KvCache;
pub use config::{Architecture, ModelConfig, RopeConfig, RopeScaling};
pub use error::{ModelError, Result};
pub use generate::{FinishReason, Generation, GenerationConfig, generate, row_seed};
pub use logprobs::{continuation_logprobs, selective_log_softmax};
pub use model::{Batch, CausalLm};
pub use pretrained::{GenerationDefaults, Pretrained, save_pretrained};
pub use rng::Rng;
pub use sampling::SamplingParams;
pub use tokenizer::Tokenizer;
pub use weights::{RandomWeights, SafetensorsWeights, WeightSource, parse_dtype};
