//! `r1 generate`: sample completions from a checkpoint.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;
use r1::model::{GenerationConfig, SamplingParams, generate};
use serde_json::json;

use super::{load, parse_ids};

/// Arguments of `r1 generate`.
#[derive(Args, Debug)]
#[command(group = clap::ArgGroup::new("input").required(true).args(["prompt", "chat", "prompt_ids"]))]
pub struct GenerateArgs {
    /// Hugging Face checkpoint folder (config.json, model.safetensors, tokenizer.json).
    #[arg(long)]
    model: PathBuf,
    /// Prompt text, tokenized with the tokenizer's special tokens (a BOS for Llama-3).
    #[arg(long)]
    prompt: Option<String>,
    /// A user message, rendered with the model's chat template and a generation prompt.
    #[arg(long)]
    chat: Option<String>,
    /// Prompt token ids, comma-separated.
    #[arg(long)]
    prompt_ids: Option<String>,
    /// Token budget per sample.
    #[arg(long, default_value_t = 128)]
    max_new_tokens: usize,
    /// Greedy decoding (the most likely token at each step).
    #[arg(long)]
    greedy: bool,
    /// Sampling temperature; 0 means greedy.
    #[arg(long, default_value_t = 1.0)]
    temperature: f32,
    /// Nucleus sampling mass (1 = off).
    #[arg(long, default_value_t = 1.0)]
    top_p: f32,
    /// Keep only the K most likely tokens (0 = off).
    #[arg(long, default_value_t = 0)]
    top_k: usize,
    /// Drop tokens below M times the top token's probability (0 = off).
    #[arg(long, default_value_t = 0.0)]
    min_p: f32,
    /// Number of samples for the prompt.
    #[arg(long, default_value_t = 1)]
    num_samples: usize,
    /// Sampler seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Keep generating past eos tokens, up to the budget.
    #[arg(long)]
    ignore_eos: bool,
    /// Stop once the completion contains this text (repeatable).
    #[arg(long = "stop")]
    stop: Vec<String>,
    #[command(flatten)]
    device: super::DeviceArgs,
    /// Print one JSON object instead of text for people.
    #[arg(long)]
    json: bool,
}

/// Runs `r1 generate`.
pub fn run(args: GenerateArgs) -> Result<()> {
    if args.num_samples == 0 {
        bail!("--num-samples must be at least 1");
    }
    let (p, _device) = load(&args.model, &args.device)?;
    let tok = p.tokenizer.as_ref();
    let need_tok = |flag: &str| {
        tok.with_context(|| format!("{flag} needs {}/tokenizer.json", args.model.display()))
    };
    let prompt_ids = if let Some(text) = &args.prompt {
        need_tok("--prompt")?.encode(text, true)?
    } else if let Some(text) = &args.chat {
        let t = need_tok("--chat")?;
        let messages = json!([{"role": "user", "content": text}]);
        let rendered = t.apply_chat_template(&messages, true)?;
        t.encode(&rendered, false)?
    } else {
        parse_ids(
            args.prompt_ids.as_deref().unwrap_or_default(),
            "--prompt-ids",
        )?
    };
    if prompt_ids.is_empty() {
        bail!("the prompt is empty: give at least one token");
    }
    if !args.stop.is_empty() {
        need_tok("--stop")?;
    }
    let greedy = args.greedy || args.temperature == 0.0;
    let sampling = SamplingParams {
        greedy,
        temperature: if greedy { 1.0 } else { args.temperature },
        top_k: args.top_k,
        top_p: args.top_p,
        min_p: args.min_p,
    };
    sampling.validate().map_err(anyhow::Error::msg)?;
    let config = GenerationConfig {
        max_new_tokens: args.max_new_tokens,
        sampling,
        eos_token_ids: p.eos_token_ids(),
        stop_strings: args.stop.clone(),
        ignore_eos: args.ignore_eos,
        seed: args.seed,
        pad_token_id: p.pad_token_id(),
    };
    let prompts = vec![prompt_ids; args.num_samples];
    let started = std::time::Instant::now();
    let samples = generate(&p.model, &prompts, &config, tok)?;
    let elapsed = started.elapsed().as_secs_f64();
    let mut rows = Vec::with_capacity(samples.len());
    for s in &samples {
        let text = match tok {
            Some(t) => t.decode(&s.completion_ids, true)?,
            None => String::new(),
        };
        rows.push((s, text));
    }
    if args.json {
        let samples: Vec<_> = rows
            .iter()
            .map(|(s, text)| {
                json!({
                    "prompt_ids": s.prompt_ids,
                    "completion_ids": s.completion_ids,
                    "completion_logprobs": s.completion_logprobs,
                    "text": text,
                    "finish_reason": s.finish_reason.as_str(),
                })
            })
            .collect();
        println!("{}", json!({ "samples": samples }));
    } else {
        let tokens: usize = samples.iter().map(|s| s.completion_ids.len()).sum();
        for (i, (s, text)) in rows.iter().enumerate() {
            let sum: f32 = s.completion_logprobs.iter().sum();
            println!(
                "--- sample {} of {} ({}, {} tokens, log-prob {sum:.3})",
                i + 1,
                rows.len(),
                s.finish_reason.as_str(),
                s.completion_ids.len()
            );
            if tok.is_some() {
                println!("{text}");
            } else {
                println!("{:?}", s.completion_ids);
            }
        }
        eprintln!(
            "{tokens} tokens in {elapsed:.2} s ({:.1} tokens/s)",
            tokens as f64 / elapsed.max(1e-9)
        );
    }
    Ok(())
}
