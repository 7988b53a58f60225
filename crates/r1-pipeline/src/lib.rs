//! # r1-pipeline
//!
//! DeepSeek-R1's training pipeline from one TOML file ([`config`]): a base model (a Hugging Face
//! folder, or a tiny decoder with a character tokenizer built and pretrained here), datasets,
//! reward sets and an ordered list of stages (`pretrain`, `sft`, `grpo`, `sample`, `distill`,
//! `eval`), each with the settings of the matching `r1` command. [`run::run_pipeline`] runs
//! them in a run directory with `run.json` (a contract for tools), evaluates after every stage
//! that makes a model ([`eval`]: pass@1, cons@k, unbiased pass@k, format), writes a report with
//! plots ([`report`]) and resumes a killed run.
//!
//! It also holds the GRPO run behind `r1 grpo` ([`grpo`]): the landed trainer of `r1-grpo`
//! with data, checkpoints, resume and the output layout of `r1 sft`.

pub mod base;
pub mod config;
pub mod error;
pub mod eval;
pub mod grpo;
pub mod lines;
pub mod report;
pub mod run;

pub use config::{PipelineConfig, Stage, StageKind};
pub use error::{PipelineError, Result};
pub use eval::{EvalResult, EvalSettings, evaluate};
pub use grpo::{GrpoRun, GrpoSettings, GrpoSummary, run_grpo};
pub use run::{RunState, RunSummary, TrainOptions, run_pipeline};
