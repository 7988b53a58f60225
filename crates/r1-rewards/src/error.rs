//! The one error type of `r1-rewards`.

use std::path::PathBuf;

/// Everything that can go wrong while building or scoring rewards.
#[derive(Debug, thiserror::Error)]
pub enum RewardError {
    /// A reward config (TOML) is malformed or names an unknown kind or key.
    #[error("{path}: {message}")]
    Config {
        /// The config file (`<memory>` for a string).
        path: PathBuf,
        /// What is wrong, naming the table and key.
        message: String,
    },
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A reward returned the wrong number of scores or failed on its inputs.
    #[error("reward `{name}`: {message}")]
    Scoring {
        /// The reward's name in the set.
        name: String,
        /// What went wrong.
        message: String,
    },
    /// A plugin could not be loaded or misbehaved.
    #[error("plugin `{plugin}`: {message}")]
    Plugin {
        /// The plugin's path or name.
        plugin: String,
        /// What went wrong.
        message: String,
    },
    /// The code sandbox could not be set up.
    #[error("sandbox: {0}")]
    Sandbox(String),
    /// An input line is not what the command expects.
    #[error("{path}:{line}: {message}")]
    Input {
        /// The input file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
}

/// `Result` with [`RewardError`].
pub type Result<T, E = RewardError> = std::result::Result<T, E>;
