//! The one error type of `r1-grpo`.

/// Everything that can go wrong in the GRPO algorithms.
#[derive(Debug, thiserror::Error)]
pub enum GrpoError {
    /// A config field has a bad value or combination; the message names the field and says why.
    #[error("GRPO config: `{field}`: {message}")]
    Config {
        /// TRL's name of the field.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// Inputs of the wrong shape.
    #[error("GRPO inputs: {0}")]
    Shape(String),
    /// The backend failed.
    #[error("backend: {0}")]
    Backend(String),
}

impl GrpoError {
    /// A [`GrpoError::Config`] on `field`.
    pub fn config(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Config {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// `Result` with [`GrpoError`].
pub type Result<T, E = GrpoError> = std::result::Result<T, E>;
