//! `r1 sample`: rejection sampling (DeepSeek-R1 §2.3.3).

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;
use r1::data::ReadOptions;
use r1::distill::SftConfig;
use r1::distill::rejection::{SampleSettings, rejection_sample};
use r1::distill::tokenize::SftTokenizer;
use r1::model::Pretrained;
use r1::rewards::RewardSet;

/// Arguments of `r1 sample`.
#[derive(Args, Debug)]
pub struct SampleArgs {
    /// The model to sample: a Hugging Face folder.
    #[arg(long)]
    model: PathBuf,
    /// Prompts with reference answers (JSONL or Parquet: GSM8K, MATH, AIME, prompt/answer, ...).
    #[arg(long)]
    data: PathBuf,
    /// Where the kept completions go (JSONL, written atomically).
    #[arg(long)]
    out: PathBuf,
    /// Reward set (TOML `[[reward]]` tables); default: the maths `accuracy` reward.
    #[arg(long)]
    rewards: Option<PathBuf>,
    /// Completions sampled per prompt.
    #[arg(long, default_value_t = 4)]
    num_samples: usize,
    /// Correct completions kept per prompt at most (shortest first).
    #[arg(long, default_value_t = 1)]
    keep: usize,
    /// Apply R1's readability filters: mixed languages, long paragraphs and code blocks in the
    /// reasoning, repetition.
    #[arg(long)]
    filters: bool,
    /// Sampling temperature (0 = greedy).
    #[arg(long, default_value_t = 0.6)]
    temperature: f32,
    /// Nucleus sampling mass.
    #[arg(long, default_value_t = 0.95)]
    top_p: f32,
    /// Token budget per completion.
    #[arg(long, default_value_t = 512)]
    max_new_tokens: usize,
    /// Sampler seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// How prompts are wrapped: none (as is), r1_zero (R1-Zero's template) or chat (the
    /// tokenizer's chat template); conversations always use the chat template.
    #[arg(long, default_value = "none", value_parser = ["none", "r1_zero", "chat"])]
    prompt_template: String,
    /// Device: cpu, cuda[:N], wgpu, tch (those compiled in).
    #[arg(long, default_value = "cpu")]
    device: String,
}

const DEFAULT_REWARDS: &str = "[[reward]]\nname = \"accuracy\"\nkind = \"accuracy\"\n";

/// Runs `r1 sample`.
pub fn run(args: SampleArgs) -> Result<()> {
    if !args.model.is_dir() {
        bail!("--model {}: not a folder", args.model.display());
    }
    if args.num_samples == 0 {
        bail!("--num-samples must be at least 1");
    }
    if !(args.top_p > 0.0 && args.top_p <= 1.0) {
        bail!("--top-p must be in (0, 1]");
    }
    let rewards = match &args.rewards {
        Some(path) => RewardSet::from_file(path)?,
        None => RewardSet::from_toml_str(DEFAULT_REWARDS, std::path::Path::new("(default)"))?,
    };
    let data = r1::data::read(&args.data, &ReadOptions::default())?;
    let device = r1::device::parse_device(&args.device)
        .map_err(anyhow::Error::msg)?
        .without_autodiff();
    let model = Pretrained::load(&args.model, None, &device)?;
    let tokenizer = model
        .tokenizer
        .as_ref()
        .with_context(|| format!("--model {}: no tokenizer.json", args.model.display()))?;
    let config = SftConfig {
        prompt_template: args.prompt_template.clone(),
        ..SftConfig::default()
    };
    let sft_tok = SftTokenizer::new(tokenizer, &config);
    let settings = SampleSettings {
        num_samples: args.num_samples,
        keep: args.keep,
        filters: args.filters,
        temperature: args.temperature,
        top_p: args.top_p,
        max_new_tokens: args.max_new_tokens,
        seed: args.seed,
        ..SampleSettings::default()
    };
    let stats = rejection_sample(
        &model,
        &sft_tok,
        &data.samples,
        &rewards,
        &settings,
        &args.out,
        &args.model.display().to_string(),
    )?;
    eprintln!("{}", stats.table());
    println!(
        "kept {} of {} completions from {} prompts -> {}",
        stats.kept,
        stats.seen,
        data.samples.len(),
        args.out.display()
    );
    Ok(())
}
