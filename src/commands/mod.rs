//! One module per subcommand, plus the argument helpers they share.

pub mod eval;
pub mod generate;
pub mod grpo;
pub mod logprobs;
pub mod reward;
pub mod sample;
pub mod serve;
pub mod sft;
pub mod train;

use anyhow::{Context, Result, bail};
use burn::tensor::{DType, Device};
use r1::model::{Pretrained, parse_dtype};

/// `--device` and `--dtype`, shared by the commands that run a model.
#[derive(clap::Args, Debug)]
pub struct DeviceArgs {
    /// Device: cpu, cuda[:N], wgpu, tch (those compiled in).
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Weights dtype on the device: f32, bf16 or f16 (default f32).
    #[arg(long)]
    pub dtype: Option<String>,
}

/// Parses `1,2,3` (spaces allowed) into token ids; `flag` names the option in errors.
pub fn parse_ids(text: &str, flag: &str) -> Result<Vec<u32>> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Ok(Vec::new());
    }
    trimmed
        .split(',')
        .enumerate()
        .map(|(i, part)| {
            let part = part.trim();
            part.parse::<u32>()
                .with_context(|| format!("{flag}: item {} (`{part}`) is not a token id", i + 1))
        })
        .collect()
}

/// Loads a checkpoint folder on the device named by `--device`, in `--dtype`.
pub fn load(model: &std::path::Path, args: &DeviceArgs) -> Result<(Pretrained, Device)> {
    let device = r1::device::parse_device(&args.device).map_err(anyhow::Error::msg)?;
    // Sampling and scoring never need gradients.
    let device = device.without_autodiff();
    let dtype: Option<DType> = args.dtype.as_deref().map(parse_dtype).transpose()?;
    if !model.is_dir() {
        bail!("--model {}: not a folder", model.display());
    }
    let pretrained = Pretrained::load(model, dtype, &device)?;
    Ok((pretrained, device))
}

/// Logs to stderr (`RUST_LOG`, default `warn`) and, when `file` is given, at `info` (or
/// `RUST_LOG`) to that file as well, appending.
pub fn init_tracing(file: Option<&std::path::Path>) {
    use tracing_subscriber::prelude::*;
    use tracing_subscriber::{EnvFilter, fmt};
    let env = |default: &str| {
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default))
    };
    let stderr = fmt::layer()
        .with_writer(std::io::stderr)
        .with_filter(env("warn"));
    let file_layer = file.and_then(|path| {
        let f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .ok()?;
        Some(
            fmt::layer()
                .with_ansi(false)
                .with_writer(std::sync::Mutex::new(f))
                .with_filter(env("info")),
        )
    });
    let _ = tracing_subscriber::registry()
        .with(stderr)
        .with(file_layer)
        .try_init();
}
