//! The one error type of `r1-data`.

use std::fmt;
use std::path::PathBuf;

/// Everything that can go wrong while reading datasets or configuring tasks and loaders.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// A data file could not be opened or read (a missing file names its path here).
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The file's extension names no format this crate reads.
    #[error(
        "{path}: unknown data file extension; expected `.jsonl`, `.json`, `.ndjson` or `.parquet`"
    )]
    UnsupportedExtension {
        /// The file.
        path: PathBuf,
    },
    /// One record is malformed: bad JSON, a missing or ill-typed field, or no known format.
    ///
    /// Shown as `data/x.jsonl:17: field `answer` must be a string or number, found array`, or
    /// `data/x.parquet: row group 1, row 2 (dataset index 12): ...` for Parquet. Set
    /// `skip_malformed` in [`ReadOptions`](crate::ReadOptions) to skip such records instead.
    #[error("{path}{location}: {message}")]
    Record {
        /// The data file.
        path: PathBuf,
        /// Where the record is in the file.
        location: Location,
        /// What is wrong, naming the field.
        message: String,
    },
    /// The file holds no records (or every record was malformed and skipped).
    #[error("{path}: no records{}", skipped_note(*.skipped))]
    Empty {
        /// The data file.
        path: PathBuf,
        /// How many malformed records were skipped.
        skipped: usize,
    },
    /// A Parquet file could not be decoded: not Parquet, a corrupt footer or page, or a
    /// compression codec this build does not read (brotli).
    #[error("{path}: cannot read Parquet: {message}")]
    Parquet {
        /// The data file.
        path: PathBuf,
        /// The decoder's message.
        message: String,
    },
    /// A config (TOML) is malformed or has an invalid value.
    #[error("invalid config: {0}")]
    Config(String),
    /// An argument is out of range: an eval fraction above 1, a batch size of 0, a cursor past
    /// the end of the data.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
}

fn skipped_note(skipped: usize) -> String {
    if skipped == 0 {
        String::new()
    } else {
        format!(" ({skipped} malformed records skipped)")
    }
}

/// Where a record sits in its file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location {
    /// A line of a JSON-lines file, 1-based.
    Line(usize),
    /// An element of a top-level JSON array, 0-based.
    Item(usize),
    /// A Parquet row: row group and row within it, and the row's index in the whole file
    /// (`dataset[index]` in Hugging Face `datasets`), all 0-based.
    Row {
        /// Row group, 0-based.
        group: usize,
        /// Row within the group, 0-based.
        row: usize,
        /// Row within the file, 0-based.
        index: usize,
    },
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Line(line) => write!(f, ":{line}"),
            Self::Item(item) => write!(f, ": item {item}"),
            Self::Row { group, row, index } => {
                write!(f, ": row group {group}, row {row} (dataset index {index})")
            }
        }
    }
}

/// `Result` with [`DataError`].
pub type Result<T, E = DataError> = std::result::Result<T, E>;
