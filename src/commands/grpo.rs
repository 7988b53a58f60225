//! `r1 grpo`: the GRPO trainer from the command line.

use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::Args;
use r1::data::ReadOptions;
use r1::pipeline::{GrpoRun, GrpoSettings, run_grpo};
use r1::rewards::RewardSet;

/// Arguments of `r1 grpo`.
#[derive(Args, Debug)]
pub struct GrpoArgs {
    /// The policy to train: a Hugging Face folder with tokenizer.json.
    #[arg(long)]
    model: PathBuf,
    /// Prompts with reference answers: JSONL or Parquet (prompt/answer, GSM8K, MATH, AIME, ...).
    #[arg(long)]
    data: PathBuf,
    /// Reward set: TOML `[[reward]]` tables.
    #[arg(long)]
    rewards: PathBuf,
    /// Output folder: the trained policy, checkpoints/ and metrics.jsonl.
    #[arg(long)]
    out: PathBuf,
    /// GRPO settings: a TOML file of TRL `GRPOConfig` keys.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Override one setting: `--set learning_rate=1e-6` (TOML value; a bare word is a string).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// Continue from the newest checkpoint in OUT/checkpoints.
    #[arg(long)]
    resume: bool,
    /// Device: cpu, cuda[:N], wgpu, tch (those compiled in).
    #[arg(long, default_value = "cpu")]
    device: String,
}

/// Runs `r1 grpo`.
pub fn run(args: GrpoArgs) -> Result<()> {
    if !args.model.is_dir() {
        bail!("--model {}: not a folder", args.model.display());
    }
    if !args.data.is_file() {
        bail!("--data {}: no such file", args.data.display());
    }
    let settings = GrpoSettings::load(args.config.as_deref(), &args.set)?;
    let rewards = RewardSet::from_file(&args.rewards)?;
    let data = r1::data::read(&args.data, &ReadOptions::default())?;
    let device = r1::device::parse_device(&args.device).map_err(anyhow::Error::msg)?;
    let summary = run_grpo(&GrpoRun {
        model: args.model,
        samples: data.samples,
        data_name: args.data.display().to_string(),
        rewards,
        out: args.out,
        settings,
        resume: args.resume,
        device,
    })?;
    println!(
        "{} steps, final reward {:.4} ({:.1}s) -> {}",
        summary.steps,
        summary.final_reward,
        summary.seconds,
        summary.out.display()
    );
    Ok(())
}
