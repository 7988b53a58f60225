//! `r1 logprobs`: score a continuation.

use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::Args;
use r1::model::continuation_logprobs;
use serde_json::json;

use super::{load, parse_ids};

/// Arguments of `r1 logprobs`.
#[derive(Args, Debug)]
pub struct LogprobsArgs {
    /// Hugging Face checkpoint folder.
    #[arg(long)]
    model: PathBuf,
    /// Prompt token ids, comma-separated.
    #[arg(long)]
    prompt_ids: String,
    /// Continuation token ids, comma-separated.
    #[arg(long)]
    continuation_ids: String,
    /// Divide the logits by this before the log-softmax (as TRL does).
    #[arg(long, default_value_t = 1.0)]
    temperature: f32,
    #[command(flatten)]
    device: super::DeviceArgs,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
}

/// Runs `r1 logprobs`.
pub fn run(args: LogprobsArgs) -> Result<()> {
    let prompt = parse_ids(&args.prompt_ids, "--prompt-ids")?;
    let continuation = parse_ids(&args.continuation_ids, "--continuation-ids")?;
    if prompt.is_empty() {
        bail!("--prompt-ids: give at least one token to predict the continuation from");
    }
    let (p, _device) = load(&args.model, &args.device)?;
    let out = continuation_logprobs(
        &p.model,
        &[(prompt, continuation.clone())],
        args.temperature,
        p.pad_token_id(),
    )?;
    let logprobs = &out[0];
    if args.json {
        println!("{}", json!({ "logprobs": logprobs }));
    } else {
        let tok = p.tokenizer.as_ref();
        println!("{:>6} {:>8} {:>12}  token", "pos", "id", "log-prob");
        for (j, (id, lp)) in continuation.iter().zip(logprobs).enumerate() {
            let text = match tok {
                Some(t) => format!("{:?}", t.decode(&[*id], false)?),
                None => String::new(),
            };
            println!("{j:>6} {id:>8} {lp:>12.6}  {text}");
        }
        println!("total {:.6}", logprobs.iter().sum::<f32>());
    }
    Ok(())
}
