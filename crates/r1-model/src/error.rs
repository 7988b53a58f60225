//! The one error type of `r1-model`.

use std::path::PathBuf;

/// Everything that can go wrong while loading, saving or running a model.
///
/// Each variant says what was wrong and where (file, key or tensor name), so that the message
/// alone tells a user what to fix.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A JSON file is not valid JSON, or does not have the expected shape.
    #[error("{path}: {message}")]
    Json {
        /// The file.
        path: PathBuf,
        /// What serde said, with line and column.
        message: String,
    },
    /// `config.json` asks for something r1 does not implement, or holds inconsistent values.
    #[error("{path}: key `{key}`: {message}")]
    Config {
        /// The `config.json` file (or `<memory>` for a config built in code).
        path: PathBuf,
        /// The offending key.
        key: String,
        /// What is wrong and what to do.
        message: String,
    },
    /// A safetensors file is malformed.
    #[error("{path}: not a valid safetensors file: {message}")]
    Safetensors {
        /// The file.
        path: PathBuf,
        /// What the parser said.
        message: String,
    },
    /// A tensor the model needs is not in the checkpoint.
    #[error("{folder}: tensor `{name}` is missing from the checkpoint")]
    MissingTensor {
        /// The checkpoint folder.
        folder: PathBuf,
        /// Hugging Face name of the tensor.
        name: String,
    },
    /// The checkpoint holds tensors the model does not use.
    #[error("{folder}: unexpected tensors in the checkpoint: {names}")]
    UnexpectedTensors {
        /// The checkpoint folder.
        folder: PathBuf,
        /// Comma-separated names (the first few).
        names: String,
    },
    /// A tensor has the wrong shape.
    #[error("{path}: tensor `{name}` has shape {found:?}, expected {expected:?}")]
    ShapeMismatch {
        /// The file holding the tensor.
        path: PathBuf,
        /// Hugging Face name of the tensor.
        name: String,
        /// The shape in the file.
        found: Vec<usize>,
        /// The shape the config implies.
        expected: Vec<usize>,
    },
    /// A tensor is stored in a dtype r1 cannot load.
    #[error("{path}: tensor `{name}` has dtype {dtype}; r1 loads F32, BF16 and F16")]
    UnsupportedDtype {
        /// The file holding the tensor.
        path: PathBuf,
        /// Hugging Face name of the tensor.
        name: String,
        /// The dtype in the file.
        dtype: String,
    },
    /// The tokenizer could not be loaded or failed on an input.
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    /// The chat template could not be found, parsed or rendered.
    #[error("chat template: {0}")]
    ChatTemplate(String),
    /// A caller passed arguments that cannot work together.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The backend failed (reading a tensor back, for instance).
    #[error("backend: {0}")]
    Backend(String),
}

/// `Result` with [`ModelError`].
pub type Result<T, E = ModelError> = std::result::Result<T, E>;

impl ModelError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Self::InvalidArgument(message.into())
    }
}
