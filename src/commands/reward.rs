//! `r1 reward`: score completions with a reward set.

use std::io::{BufRead, BufWriter, Write};
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;
use r1::rewards::{RewardError, RewardInput, RewardSet};
use serde_json::{Map, Value};

/// Arguments of `r1 reward`.
#[derive(Args, Debug)]
pub struct RewardArgs {
    /// Reward set: a TOML file of `[[reward]]` tables.
    #[arg(long)]
    config: PathBuf,
    /// Completions, one JSON object per line:
    /// {"prompt": .., "completion": .., "answer": .., ...metadata}.
    #[arg(long)]
    input: PathBuf,
    /// Where to write the scored lines (stdout when absent); written atomically.
    #[arg(long)]
    output: Option<PathBuf>,
}

const CHUNK: usize = 512;

/// Runs `r1 reward`.
pub fn run(args: RewardArgs) -> Result<()> {
    let set = RewardSet::from_file(&args.config)?;
    let file = std::fs::File::open(&args.input)
        .with_context(|| format!("--input {}", args.input.display()))?;
    let mut rows: Vec<(Map<String, Value>, RewardInput)> = Vec::new();
    for (n, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line_no = n + 1;
        let line =
            line.with_context(|| format!("{}:{line_no}: cannot read", args.input.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        let bad = |message: String| RewardError::Input {
            path: args.input.clone(),
            line: line_no,
            message,
        };
        let value: Value =
            serde_json::from_str(&line).map_err(|e| bad(format!("not valid JSON: {e}")))?;
        let Value::Object(map) = value else {
            return Err(bad("expected a JSON object".into()).into());
        };
        let input = RewardInput::from_json(Value::Object(map.clone())).map_err(bad)?;
        rows.push((map, input));
    }
    if rows.is_empty() {
        bail!("{}: no completions to score", args.input.display());
    }
    let started = std::time::Instant::now();
    let mut out: Vec<u8> = Vec::new();
    {
        let mut w = BufWriter::new(&mut out);
        let mut sums = vec![(0f64, 0usize); set.entries().len()];
        for (c, chunk) in rows.chunks(CHUNK).enumerate() {
            let inputs: Vec<RewardInput> = chunk.iter().map(|(_, i)| i.clone()).collect();
            let scored = set.score(&inputs)?;
            for (i, (map, _)) in chunk.iter().enumerate() {
                let mut line = map.clone();
                let mut rewards = Map::new();
                for (r, name) in scored.names.iter().enumerate() {
                    let v = scored.values[r][i];
                    if let Some(v) = v {
                        sums[r].0 += v as f64;
                        sums[r].1 += 1;
                    }
                    rewards.insert(
                        name.clone(),
                        v.map_or(Value::Null, |v| Value::from(v as f64)),
                    );
                }
                line.insert("rewards".into(), Value::Object(rewards));
                line.insert(
                    "total".into(),
                    scored.totals[i].map_or(Value::Null, |v| Value::from(v as f64)),
                );
                serde_json::to_writer(&mut w, &Value::Object(line))?;
                w.write_all(b"\n")?;
            }
            let done = ((c + 1) * CHUNK).min(rows.len());
            if rows.len() > CHUNK {
                eprint!("\rscored {done}/{} completions", rows.len());
            }
        }
        if rows.len() > CHUNK {
            eprintln!();
        }
        w.flush()?;
        let means: Vec<String> = set
            .entries()
            .iter()
            .zip(&sums)
            .map(|(e, (s, n))| {
                if *n == 0 {
                    format!("{}: n/a", e.name)
                } else {
                    format!("{}: {:.4}", e.name, s / *n as f64)
                }
            })
            .collect();
        eprintln!(
            "scored {} completions in {:.2} s; means: {}",
            rows.len(),
            started.elapsed().as_secs_f64(),
            means.join(", ")
        );
    }
    match &args.output {
        Some(path) => {
            let tmp = path.with_extension("jsonl.tmp");
            std::fs::write(&tmp, &out).with_context(|| format!("--output {}", tmp.display()))?;
            std::fs::rename(&tmp, path).with_context(|| format!("--output {}", path.display()))?;
        }
        None => std::io::stdout().write_all(&out)?,
    }
    Ok(())
}
