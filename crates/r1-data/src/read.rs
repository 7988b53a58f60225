//! Reading datasets from JSON-lines and Parquet files.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::record::{Field, Row};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{DataError, Location, Result};
use crate::format::{ColumnMap, Format, kind};
use crate::sample::Sample;

/// How many skipped records are logged one by one before the rest are only counted.
const LOGGED_SKIPS: usize = 5;

/// How to read a data file. From TOML:
///
/// ```toml
/// format = "gsm8k"          # default "auto"
/// skip_malformed = true     # default false: a malformed record is an error
/// limit = 100               # default: all records
/// [columns]
/// prompt = "question"
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReadOptions {
    /// The record layout (default: detected from the first record).
    pub format: Format,
    /// Source column renames.
    pub columns: ColumnMap,
    /// Skip malformed records (counting them in [`Dataset::skipped`] and logging the first few)
    /// instead of failing.
    pub skip_malformed: bool,
    /// Read at most this many samples.
    pub limit: Option<usize>,
}

impl ReadOptions {
    /// Parses options from TOML text.
    pub fn from_toml(text: &str) -> Result<Self> {
        toml::from_str(text).map_err(|e| DataError::Config(e.to_string()))
    }
}

/// The samples of one file.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    /// The samples, in file order.
    pub samples: Vec<Sample>,
    /// Malformed records skipped (with `skip_malformed`).
    pub skipped: usize,
    /// The file they came from.
    pub source: PathBuf,
}

impl Dataset {
    /// Number of samples.
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    /// Whether there are no samples.
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }
}

/// Reads a data file, choosing the reader by extension: `.jsonl`, `.ndjson` and `.json` (JSON
/// lines, or one top-level array of records) or `.parquet`.
pub fn read(path: &Path, options: &ReadOptions) -> Result<Dataset> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match ext.as_deref() {
        Some("jsonl" | "ndjson" | "json") => read_jsonl(path, options),
        Some("parquet") => read_parquet(path, options),
        _ => Err(DataError::UnsupportedExtension {
            path: path.to_owned(),
        }),
    }
}

/// Turns records into samples: detects the format once per file, applies the limit, and skips
/// or reports malformed records.
struct Collector<'a> {
    path: &'a Path,
    stem: String,
    options: &'a ReadOptions,
    format: Format,
    samples: Vec<Sample>,
    skipped: usize,
    records: usize,
}

impl<'a> Collector<'a> {
    fn new(path: &'a Path, options: &'a ReadOptions) -> Self {
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        Self {
            path,
            stem,
            options,
            format: options.format,
            samples: Vec::new(),
            skipped: 0,
            records: 0,
        }
    }

    fn full(&self) -> bool {
        self.options.limit.is_some_and(|n| self.samples.len() >= n)
    }

    /// Handles one record, or the message of a record that could not be decoded.
    fn push(
        &mut self,
        record: std::result::Result<Value, String>,
        location: Location,
        id_number: usize,
    ) -> Result<()> {
        self.records += 1;
        let result = record.and_then(|value| match value {
            Value::Object(map) => self.convert(map, id_number),
            other => Err(format!("expected a JSON object, found {}", kind(&other))),
        });
        match result {
            Ok(sample) => {
                self.samples.push(sample);
                Ok(())
            }
            Err(message) => self.malformed(location, message),
        }
    }

    fn convert(&mut self, record: Map<String, Value>, id_number: usize) -> Result<Sample, String> {
        if self.format == Format::Auto {
            // Detected once, from the first record that matches: later records then get the
            // format's own errors ("missing field `answer`") instead of "no format matches".
            match Format::detect(&record, &self.options.columns) {
                Some(format) => self.format = format,
                None => return Err(Format::no_match(&record)),
            }
        }
        let stem = &self.stem;
        Sample::from_record(record, self.format, &self.options.columns, || {
            format!("{stem}:{id_number}")
        })
    }

    fn malformed(&mut self, location: Location, message: String) -> Result<()> {
        let error = DataError::Record {
            path: self.path.to_owned(),
            location,
            message,
        };
        if !self.options.skip_malformed {
            return Err(error);
        }
        self.skipped += 1;
        if self.skipped <= LOGGED_SKIPS {
            tracing::warn!("skipping malformed record: {error}");
        }
        if self.skipped == LOGGED_SKIPS + 1 {
            tracing::warn!(
                "{}: more malformed records are skipped without logging",
                self.path.display()
            );
        }
        Ok(())
    }

    fn finish(self) -> Result<Dataset> {
        if self.samples.is_empty() && self.options.limit != Some(0) {
            return Err(DataError::Empty {
                path: self.path.to_owned(),
                skipped: self.skipped,
            });
        }
        if self.skipped > 0 {
            tracing::warn!(
                "{}: skipped {} malformed of {} records",
                self.path.display(),
                self.skipped,
                self.records
            );
        }
        Ok(Dataset {
            samples: self.samples,
            skipped: self.skipped,
            source: self.path.to_owned(),
        })
    }
}

fn io_error(path: &Path, source: std::io::Error) -> DataError {
    DataError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Reads JSON lines: one object per line, blank lines skipped, errors located by 1-based line.
/// A file whose first non-blank character is `[` is read as one JSON array of records instead
/// (errors located by 0-based item).
pub fn read_jsonl(path: &Path, options: &ReadOptions) -> Result<Dataset> {
    let file = File::open(path).map_err(|e| io_error(path, e))?;
    let mut reader = BufReader::new(file);
    let mut collector = Collector::new(path, options);
    let mut line = String::new();
    let mut number = 0usize;
    loop {
        if collector.full() {
            break;
        }
        line.clear();
        number += 1;
        let read = match reader.read_line(&mut line) {
            Ok(read) => read,
            Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                // Not UTF-8: `read_line` has consumed the line, so reading goes on at the next.
                collector.push(
                    Err("line is not valid UTF-8".into()),
                    Location::Line(number),
                    number,
                )?;
                continue;
            }
            Err(e) => return Err(io_error(path, e)),
        };
        if read == 0 {
            break;
        }
        let text = line.strip_prefix('\u{feff}').unwrap_or(&line).trim();
        if text.is_empty() {
            continue;
        }
        if collector.records == 0 && text.starts_with('[') {
            let mut rest = String::new();
            std::io::Read::read_to_string(&mut reader, &mut rest).map_err(|e| io_error(path, e))?;
            let whole = format!("{text}\n{rest}");
            return read_array(&whole, number, collector);
        }
        let record = serde_json::from_str::<Value>(text).map_err(|e| e.to_string());
        collector.push(record, Location::Line(number), number)?;
    }
    collector.finish()
}

/// A JSON file holding one array of records.
fn read_array(text: &str, first_line: usize, mut collector: Collector<'_>) -> Result<Dataset> {
    let items = match serde_json::from_str::<Value>(text) {
        Ok(Value::Array(items)) => items,
        Ok(other) => {
            return Err(DataError::Record {
                path: collector.path.to_owned(),
                location: Location::Line(first_line),
                message: format!("expected a JSON array of records, found {}", kind(&other)),
            });
        }
        Err(e) => {
            return Err(DataError::Record {
                path: collector.path.to_owned(),
                location: Location::Line(first_line + e.line().saturating_sub(1)),
                message: e.to_string(),
            });
        }
    };
    for (i, item) in items.into_iter().enumerate() {
        if collector.full() {
            break;
        }
        collector.push(Ok(item), Location::Item(i), i)?;
    }
    collector.finish()
}

/// Reads a Parquet file (as written by Hugging Face `datasets` and pyarrow) row by row; each
/// row becomes a JSON record (structs as objects, lists as arrays), and errors are located by
/// row group and row.
pub fn read_parquet(path: &Path, options: &ReadOptions) -> Result<Dataset> {
    let file = File::open(path).map_err(|e| io_error(path, e))?;
    let parquet_error = |e: parquet::errors::ParquetError| DataError::Parquet {
        path: path.to_owned(),
        message: e.to_string(),
    };
    let reader = SerializedFileReader::new(file).map_err(parquet_error)?;
    let mut collector = Collector::new(path, options);
    let mut index = 0usize;
    'groups: for group in 0..reader.num_row_groups() {
        let group_reader = reader.get_row_group(group).map_err(parquet_error)?;
        let rows = group_reader.get_row_iter(None).map_err(parquet_error)?;
        for (row, result) in rows.enumerate() {
            if collector.full() {
                break 'groups;
            }
            let location = Location::Row { group, row, index };
            let record = match result {
                Ok(r) => Ok(row_to_json(&r)),
                // A page that fails to decode spoils the rest of its column chunk.
                Err(e) => {
                    return Err(DataError::Record {
                        path: path.to_owned(),
                        location,
                        message: format!("cannot decode row: {e}"),
                    });
                }
            };
            collector.push(record, location, index)?;
            index += 1;
        }
    }
    collector.finish()
}

fn row_to_json(row: &Row) -> Value {
    Value::Object(
        row.get_column_iter()
            .map(|(name, field)| (name.clone(), field_to_json(field)))
            .collect(),
    )
}

/// Parquet values as the JSON that `datasets`' `to_json` would write for them.
fn field_to_json(field: &Field) -> Value {
    match field {
        Field::Null => Value::Null,
        Field::Bool(b) => Value::Bool(*b),
        Field::Byte(n) => Value::from(*n),
        Field::Short(n) => Value::from(*n),
        Field::Int(n) => Value::from(*n),
        Field::Long(n) => Value::from(*n),
        Field::UByte(n) => Value::from(*n),
        Field::UShort(n) => Value::from(*n),
        Field::UInt(n) => Value::from(*n),
        Field::ULong(n) => Value::from(*n),
        Field::Float16(n) => float(f64::from(*n)),
        Field::Float(n) => float(f64::from(*n)),
        Field::Double(n) => float(*n),
        Field::Str(s) => Value::String(s.clone()),
        Field::Bytes(b) => match std::str::from_utf8(b.data()) {
            Ok(s) => Value::String(s.to_owned()),
            Err(_) => Value::Array(b.data().iter().map(|&x| Value::from(x)).collect()),
        },
        Field::Group(row) => row_to_json(row),
        Field::ListInternal(list) => {
            Value::Array(list.elements().iter().map(field_to_json).collect())
        }
        Field::MapInternal(map) => Value::Object(
            map.entries()
                .iter()
                .map(|(k, v)| {
                    let key = match field_to_json(k) {
                        Value::String(s) => s,
                        other => other.to_string(),
                    };
                    (key, field_to_json(v))
                })
                .collect(),
        ),
        // Decimals, dates, times and timestamps: their display text.
        other => Value::String(other.to_string()),
    }
}

fn float(x: f64) -> Value {
    serde_json::Number::from_f64(x).map_or(Value::Null, Value::Number)
}
