//! The one error type of `r1-distill`.

use std::path::Path;

/// Everything that can go wrong in supervised training, sampling and distillation.
#[derive(Debug, thiserror::Error)]
pub enum DistillError {
    /// A config key has a bad value, is unknown, or conflicts with another; the message says
    /// where (file and line, or `--set`) and why.
    #[error("config: `{key}`: {message}")]
    Config {
        /// The key (TRL's name).
        key: String,
        /// What is wrong.
        message: String,
    },
    /// A data record cannot be used for this stage (for example a sample with no target
    /// completion given to SFT); the message names the record.
    #[error("data: {0}")]
    Data(String),
    /// Reading the data failed.
    #[error(transparent)]
    Read(#[from] r1_data::DataError),
    /// A file could not be read or written.
    #[error("{path}: {message}")]
    Io {
        /// The file.
        path: String,
        /// The OS error.
        message: String,
    },
    /// The model, tokenizer or backend failed.
    #[error("model: {0}")]
    Model(#[from] r1_model::ModelError),
    /// The shared training machinery (optimizer, checkpoints, metrics) failed.
    #[error(transparent)]
    Train(#[from] r1_grpo::GrpoError),
    /// A reward failed.
    #[error("reward: {0}")]
    Reward(#[from] r1_rewards::RewardError),
    /// Training diverged (non-finite loss or gradient norm); the weights were not updated.
    #[error("training diverged at step {step}: {message}")]
    Diverged {
        /// Optimiser step.
        step: u64,
        /// What was not finite.
        message: String,
    },
}

impl DistillError {
    /// An [`DistillError::Io`] for `path`.
    pub fn io(path: &Path, e: impl std::fmt::Display) -> Self {
        Self::Io {
            path: path.display().to_string(),
            message: e.to_string(),
        }
    }
}

/// `Result` with [`DistillError`].
pub type Result<T, E = DistillError> = std::result::Result<T, E>;
