//! `r1 eval`: pass@1 over k samples (R1's metric), cons@k, unbiased pass@k, format rate.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;
use r1::data::ReadOptions;
use r1::distill::SftConfig;
use r1::distill::tokenize::SftTokenizer;
use r1::pipeline::{EvalSettings, evaluate};
use r1::rewards::RewardSet;

use super::DeviceArgs;

/// Arguments of `r1 eval`.
#[derive(Args, Debug)]
pub struct EvalArgs {
    /// The model: a Hugging Face folder with tokenizer.json.
    #[arg(long)]
    model: PathBuf,
    /// Problems with reference answers: JSONL or Parquet (GSM8K, MATH-500, AIME, prompt/answer).
    #[arg(long)]
    benchmark: PathBuf,
    /// Samples per problem (k).
    #[arg(long, default_value_t = 8)]
    num_samples: usize,
    /// k of pass@k (default: --num-samples).
    #[arg(long)]
    pass_k: Option<usize>,
    /// Sampling temperature (R1: 0.6; 0 = greedy).
    #[arg(long, default_value_t = 0.6)]
    temperature: f32,
    /// Nucleus mass (R1: 0.95).
    #[arg(long, default_value_t = 0.95)]
    top_p: f32,
    /// Token budget per completion.
    #[arg(long, default_value_t = 512)]
    max_new_tokens: usize,
    /// Reward set deciding correctness (`accuracy`) and format (`format`); default: the maths
    /// grader, and R1's `<think>…</think><answer>…</answer>` check for format.
    #[arg(long)]
    rewards: Option<PathBuf>,
    /// How prompts are wrapped: none, r1_zero or chat.
    #[arg(long, default_value = "none", value_parser = ["none", "r1_zero", "chat"])]
    prompt_template: String,
    /// Evaluate only the first N problems.
    #[arg(long)]
    limit: Option<usize>,
    /// Sampler seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Print one JSON object: {"benchmark", "n", "k", "pass@1", "cons@k", "pass@k", "format", "mean_tokens"}.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    device: DeviceArgs,
}

const DEFAULT_REWARDS: &str = "[[reward]]\nname = \"accuracy\"\nkind = \"accuracy\"\n";

/// Runs `r1 eval`.
pub fn run(args: EvalArgs) -> Result<()> {
    if !args.benchmark.is_file() {
        bail!("--benchmark {}: no such file", args.benchmark.display());
    }
    let settings = EvalSettings {
        num_samples: args.num_samples,
        pass_k: args.pass_k,
        temperature: args.temperature,
        top_p: args.top_p,
        max_new_tokens: args.max_new_tokens,
        seed: args.seed,
        limit: args.limit,
        ..EvalSettings::default()
    };
    settings.validate().map_err(|e| match e {
        r1::pipeline::PipelineError::Config { key, message } => {
            anyhow::anyhow!("--{}: {message}", key.replace('_', "-"))
        }
        other => other.into(),
    })?;
    let rewards = match &args.rewards {
        Some(path) => RewardSet::from_file(path)?,
        None => RewardSet::from_toml_str(DEFAULT_REWARDS, std::path::Path::new("(default)"))?,
    };
    let data = r1::data::read(&args.benchmark, &ReadOptions::default())?;
    let (model, _device) = super::load(&args.model, &args.device)?;
    let tokenizer = model
        .tokenizer
        .as_ref()
        .with_context(|| format!("--model {}: no tokenizer.json", args.model.display()))?;
    let config = SftConfig {
        prompt_template: args.prompt_template.clone(),
        ..SftConfig::default()
    };
    let name = args
        .benchmark
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| args.benchmark.display().to_string());
    let r = evaluate(
        &model,
        &SftTokenizer::new(tokenizer, &config),
        &data.samples,
        &rewards,
        &settings,
        &name,
    )?;
    if args.json {
        println!("{}", r.to_json());
    } else {
        println!(
            "{name}: {} problems x {} samples: pass@1 {:.4}, cons@{} {:.4}, pass@{} {:.4}, format {:.4}, mean {:.1} tokens",
            r.n, r.k, r.pass_at_1, r.k, r.cons_at_k, r.pass_k, r.pass_at_k, r.format, r.mean_tokens
        );
    }
    Ok(())
}
