//! # r1-data
//!
//! Samples and datasets for the stages of training a reasoning model the DeepSeek-R1 way:
//! supervised fine-tuning on reasoning traces, RL on prompts with reference answers, and
//! evaluation. No Burn dependency.
//!
//! - [`Sample`]: a prompt ([`Content`]: text or chat [`Message`]s), an optional target
//!   completion split into `reasoning` and `final_answer`, reference `answers` for grading, a
//!   stable `id`, and the source record untouched. [`Sample::to_reward_input`] turns a
//!   generated completion into an [`r1_rewards::RewardInput`].
//! - Reading ([`read`], [`read_jsonl`], [`read_parquet`]): JSON lines (or a JSON array) and
//!   Parquet files as written by Hugging Face `datasets`, in TRL's dataset formats
//!   (prompt-completion, prompt-only, conversational `messages`, conversational
//!   prompt-completion) and the layouts of GSM8K, MATH/MATH-500, AIME and DeepSeek-R1 traces
//!   ([`Format`], detected from the keys by default; [`ColumnMap`] renames columns). A
//!   malformed record is an error naming the file and line, or row group and row; with
//!   [`ReadOptions::skip_malformed`] it is skipped and counted.
//! - [`template`]: DeepSeek-R1-Zero's prompt template and [`PromptTemplate`] (raw, R1-Zero, or
//!   chat turns with a system prompt for a tokenizer's chat template).
//! - [`synthetic`]: seeded reasoning tasks with difficulty knobs, multi-step arithmetic (the
//!   tiny R1 recipe's task) and Countdown, with worked `<think>…</think>` solutions, held-out
//!   splits disjoint from training data, and a [`synthetic::Checker`] reward.
//! - [`sampler`]: seeded shuffles, train/eval [`split`](sampler::split)s, and a
//!   [`Loader`](sampler::Loader) of index batches over epochs whose [`Cursor`](sampler::Cursor)
//!   resumes a run on exactly the batches it would have seen.
//!
//! ```no_run
//! use r1_data::{ReadOptions, read};
//! use r1_data::sampler::Loader;
//!
//! let data = read("data/gsm8k_test.jsonl".as_ref(), &ReadOptions::default())?;
//! let mut loader = Loader::new(data.len(), 16, true, 0)?;
//! for index in loader.next_batch() {
//!     let sample = &data.samples[index];
//!     println!("{}: {:?} -> {:?}", sample.id, sample.prompt_text(), sample.answers);
//! }
//! # Ok::<(), r1_data::DataError>(())
//! ```

pub mod error;
pub mod format;
pub mod read;
pub mod rng;
pub mod sample;
pub mod sampler;
pub mod synthetic;
pub mod template;

pub use error::{DataError, Location, Result};
pub use format::{ColumnMap, Format};
pub use read::{Dataset, ReadOptions, read, read_jsonl, read_parquet};
pub use sample::{Content, Message, Sample, split_think};
pub use sampler::{Cursor, Loader};
pub use synthetic::{TaskConfig, generate, generate_split};
pub use template::{PromptTemplate, R1_ZERO_TEMPLATE, r1_zero};
