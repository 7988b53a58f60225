//! The one error type of `r1-pipeline`.

use std::path::Path;

/// Everything that can go wrong in a pipeline run.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// A config key is unknown, has the wrong type, a bad value, or names something that does
    /// not exist; the message says where (file and line, or `--set`) and why.
    #[error("config: `{key}`: {message}")]
    Config {
        /// The key, dotted from the root (`stage.grpo.learning_rate`).
        key: String,
        /// Where and what is wrong.
        message: String,
    },
    /// Data that a stage cannot use.
    #[error("data: {0}")]
    Data(String),
    /// A file could not be read or written.
    #[error("{path}: {message}")]
    Io {
        /// The file.
        path: String,
        /// The OS error.
        message: String,
    },
    /// A stage failed; the message is its error.
    #[error("stage `{stage}`: {message}")]
    Stage {
        /// The stage's name.
        stage: String,
        /// What failed.
        message: String,
    },
    /// Reading a dataset failed.
    #[error(transparent)]
    Read(#[from] r1_data::DataError),
    /// SFT, sampling or distillation failed.
    #[error(transparent)]
    Distill(#[from] r1_distill::DistillError),
    /// GRPO or the shared training machinery failed.
    #[error(transparent)]
    Grpo(#[from] r1_grpo::GrpoError),
    /// The model, tokenizer or backend failed.
    #[error("model: {0}")]
    Model(#[from] r1_model::ModelError),
    /// A reward failed.
    #[error("reward: {0}")]
    Reward(#[from] r1_rewards::RewardError),
}

impl PipelineError {
    /// A [`PipelineError::Config`].
    pub fn config(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Config {
            key: key.into(),
            message: message.into(),
        }
    }

    /// A [`PipelineError::Io`] for `path`.
    pub fn io(path: &Path, e: impl std::fmt::Display) -> Self {
        Self::Io {
            path: path.display().to_string(),
            message: e.to_string(),
        }
    }
}

/// `Result` with [`PipelineError`].
pub type Result<T, E = PipelineError> = std::result::Result<T, E>;
