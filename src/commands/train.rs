//! `r1 train`: DeepSeek-R1's multi-stage pipeline from one TOML file.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Args;
use r1::pipeline::{TrainOptions, run_pipeline};

/// The built-in tiny configuration, used when `configs/tiny.toml` is not in the working folder.
pub const TINY: &str = include_str!("../../configs/tiny.toml");

/// Arguments of `r1 train`.
#[derive(Args, Debug)]
pub struct TrainArgs {
    /// The pipeline file (default: configs/tiny.toml, built in when the file is not there).
    #[arg(long)]
    config: Option<PathBuf>,
    /// The run directory (default: runs/NAME-YYYYMMDD-HHMMSS).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Override a key: `--set grpo.learning_rate=1e-5` (a stage by name) or
    /// `--set datasets.arith.train=500` (a dotted path).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// Continue the run in this directory: finished stages are skipped, the interrupted one
    /// resumes from its newest checkpoint.
    #[arg(long, value_name = "RUN")]
    resume: Option<PathBuf>,
    /// Device: cpu, cuda[:N], wgpu, tch (those compiled in).
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Only read and check the pipeline file: print the stages and the files it needs, run
    /// nothing (exit status 0 when it is valid).
    #[arg(long)]
    check: bool,
}

/// The files a pipeline reads (the base folder, dataset files), each with whether it exists.
fn inputs(config: &r1::pipeline::config::PipelineConfig) -> Vec<(String, PathBuf)> {
    use r1::pipeline::config::{Base, DatasetKind};
    let mut out = Vec::new();
    if let Base::Folder(dir) = &config.base {
        out.push(("base".to_string(), dir.clone()));
    }
    for d in &config.datasets {
        if let DatasetKind::File {
            path, eval_file, ..
        } = &d.kind
        {
            out.push((format!("datasets.{}", d.name), path.clone()));
            if let Some(e) = eval_file {
                out.push((format!("datasets.{}.eval_file", d.name), e.clone()));
            }
        }
    }
    out
}

/// `r1 train --check`: what the file would run, and what it reads.
fn check(config: &r1::pipeline::config::PipelineConfig, origin: &Path) {
    println!(
        "{}: valid: `{}`, {} stages",
        origin.display(),
        config.name,
        config.stages.len()
    );
    for s in &config.stages {
        let mut line = format!("  {:<20} {:<9} model {}", s.name, s.kind.name(), s.model);
        if !s.data.is_empty() {
            line.push_str(&format!(", data {}", s.data.join(" + ")));
        }
        if let Some(r) = &s.rewards {
            line.push_str(&format!(", rewards {r}"));
        }
        println!("{line}");
    }
    for (key, path) in inputs(config) {
        let state = if path.exists() {
            "found"
        } else {
            "NOT FOUND (needed when the run starts)"
        };
        println!("  {key}: {} {state}", path.display());
    }
}

fn stamp() -> String {
    // 2026-12-06T03:04:05.678Z -> 20261206-030405
    let t = r1::pipeline::run::now_utc();
    format!(
        "{}-{}",
        t[..10].replace('-', ""),
        t[11..19].replace(':', "")
    )
}

/// Runs `r1 train`.
pub fn run(args: TrainArgs) -> Result<()> {
    let (text, origin) = match (&args.config, &args.resume) {
        (Some(path), _) => (
            std::fs::read_to_string(path)
                .with_context(|| format!("--config {}", path.display()))?,
            path.clone(),
        ),
        (None, Some(run)) => {
            let path = run.join("config.toml");
            (
                std::fs::read_to_string(&path).with_context(|| {
                    format!(
                        "--resume {}: no config.toml (is it a run directory?)",
                        run.display()
                    )
                })?,
                path,
            )
        }
        (None, None) => {
            let path = PathBuf::from("configs/tiny.toml");
            match std::fs::read_to_string(&path) {
                Ok(t) => (t, path),
                Err(_) => (
                    TINY.to_string(),
                    PathBuf::from("configs/tiny.toml (built in)"),
                ),
            }
        }
    };
    let config = r1::pipeline::config::from_str(&text, &origin, &args.set)?;
    if args.check {
        check(&config, &origin);
        return Ok(());
    }
    let (out, resume) = match (&args.resume, &args.out) {
        (Some(run), Some(out)) if run != out => {
            bail!(
                "--resume {} and --out {} name different runs",
                run.display(),
                out.display()
            )
        }
        (Some(run), _) => (run.clone(), true),
        (None, Some(out)) => (out.clone(), false),
        (None, None) => (
            Path::new("runs").join(format!("{}-{}", config.name, stamp())),
            false,
        ),
    };
    if resume && !out.join("run.json").exists() {
        bail!("--resume {}: no run.json there", out.display());
    }
    std::fs::create_dir_all(&out).with_context(|| format!("--out {}", out.display()))?;
    super::init_tracing(Some(&out.join("r1.log")));
    let device = r1::device::parse_device(&args.device).map_err(anyhow::Error::msg)?;
    eprintln!(
        "r1 train: {} ({} stages) -> {}{}",
        origin.display(),
        config.stages.len(),
        out.display(),
        if resume { " (resuming)" } else { "" }
    );
    let summary = run_pipeline(&TrainOptions {
        config,
        out,
        resume,
        device,
    })?;
    let evals: Vec<String> = summary
        .state
        .evals
        .iter()
        .filter(|e| e.metric == "pass@1")
        .map(|e| format!("{} {:.1}%", e.stage, 100.0 * e.value))
        .collect();
    if !evals.is_empty() {
        println!("pass@1 after each stage: {}", evals.join(", "));
    }
    println!(
        "done in {:.1}s -> {} (run.json, report.md)",
        summary.seconds,
        summary.out.display()
    );
    Ok(())
}
