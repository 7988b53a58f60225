//! `r1 sft` and `r1 distill`: supervised fine-tuning and distillation into a student.

use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::Args;
use r1::data::ReadOptions;
use r1::distill::{KdDivergence, SftConfig, SftRun, SftSummary, run_sft};

/// Arguments of `r1 sft`.
#[derive(Args, Debug)]
pub struct SftArgs {
    /// The model to fine-tune: a Hugging Face folder (config.json, model.safetensors,
    /// tokenizer.json).
    #[arg(long)]
    model: PathBuf,
    /// Training data: JSONL or Parquet (prompt/completion, messages, GSM8K, MATH, R1 traces).
    #[arg(long)]
    data: PathBuf,
    /// Output folder: the fine-tuned model, checkpoints/ and metrics.jsonl.
    #[arg(long)]
    out: PathBuf,
    /// SFT settings: a TOML file of TRL `SFTConfig` keys.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Override one setting: `--set learning_rate=1e-5` (TOML value; a bare word is a string).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// Continue from the newest checkpoint in OUT/checkpoints.
    #[arg(long)]
    resume: bool,
    /// Device: cpu, cuda[:N], wgpu, tch (those compiled in).
    #[arg(long, default_value = "cpu")]
    device: String,
}

/// Arguments of `r1 distill`.
#[derive(Args, Debug)]
pub struct DistillArgs {
    /// The student: a Hugging Face folder.
    #[arg(long)]
    student: PathBuf,
    /// The teacher's curated traces (JSONL or Parquet), e.g. from `r1 sample`.
    #[arg(long)]
    data: PathBuf,
    /// Output folder: the distilled student, checkpoints/ and metrics.jsonl.
    #[arg(long)]
    out: PathBuf,
    /// A teacher sharing the student's tokenizer: adds logit distillation to the SFT loss.
    #[arg(long)]
    teacher: Option<PathBuf>,
    /// Divergence of the logit distillation (with --teacher): forward or reverse KL.
    #[arg(long, value_parser = ["forward", "reverse"])]
    kd: Option<String>,
    /// Settings: a TOML file of TRL `SFTConfig` keys plus kd_alpha, temperature.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Override one setting (TOML value).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// Continue from the newest checkpoint in OUT/checkpoints.
    #[arg(long)]
    resume: bool,
    /// Device: cpu, cuda[:N], wgpu, tch (those compiled in).
    #[arg(long, default_value = "cpu")]
    device: String,
}

fn report(summary: &SftSummary) {
    let mut line = format!(
        "{} steps, final loss {:.4}",
        summary.steps, summary.final_loss
    );
    if let Some(l) = summary.eval_loss {
        line.push_str(&format!(", held-out loss {l:.4}"));
    }
    if let Some(a) = summary.eval_accuracy {
        line.push_str(&format!(", held-out token accuracy {a:.3}"));
    }
    if summary.skipped > 0 {
        line.push_str(&format!(", {} malformed records skipped", summary.skipped));
    }
    println!(
        "{line} ({:.1}s) -> {}",
        summary.seconds,
        summary.out.display()
    );
}

fn check_inputs(model: &std::path::Path, flag: &str, data: &std::path::Path) -> Result<()> {
    if !model.is_dir() {
        bail!("{flag} {}: not a folder", model.display());
    }
    if !data.is_file() {
        bail!("--data {}: no such file", data.display());
    }
    Ok(())
}

/// Runs `r1 sft`.
pub fn run(args: SftArgs) -> Result<()> {
    check_inputs(&args.model, "--model", &args.data)?;
    let config = SftConfig::load(args.config.as_deref(), &args.set)?;
    let device = r1::device::parse_device(&args.device).map_err(anyhow::Error::msg)?;
    let summary = run_sft(&SftRun {
        model: args.model,
        data: args.data,
        out: args.out,
        config,
        resume: args.resume,
        device,
        teacher: None,
        read: ReadOptions::default(),
    })?;
    report(&summary);
    Ok(())
}

/// Runs `r1 distill`.
pub fn run_distill(args: DistillArgs) -> Result<()> {
    check_inputs(&args.student, "--student", &args.data)?;
    let mut config = SftConfig::load(args.config.as_deref(), &args.set)?;
    match (&args.teacher, &args.kd) {
        (None, Some(_)) => bail!("--kd needs --teacher"),
        (Some(t), _) if !t.is_dir() => bail!("--teacher {}: not a folder", t.display()),
        _ => {}
    }
    if let Some(kd) = &args.kd {
        config.kd_divergence = if kd == "reverse" {
            KdDivergence::Reverse
        } else {
            KdDivergence::Forward
        };
    }
    let device = r1::device::parse_device(&args.device).map_err(anyhow::Error::msg)?;
    let summary = run_sft(&SftRun {
        model: args.student,
        data: args.data,
        out: args.out,
        config,
        resume: args.resume,
        device,
        teacher: args.teacher,
        read: ReadOptions::default(),
    })?;
    report(&summary);
    Ok(())
}
