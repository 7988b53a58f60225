//! `r1 serve`: an OpenAI-compatible HTTP server (`/v1/models`, `/v1/chat/completions`,
//! `/v1/completions`, streaming as server-sent events) over a continuous-batching engine, with
//! SGLang's `/v1/load_weights` to swap checkpoints of the same architecture.

mod api;
mod engine;
mod text;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, RwLock};

use anyhow::{Context, Result, bail};
use clap::Args;

use engine::{EngineSettings, spawn};

/// Arguments of `r1 serve`.
#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Hugging Face checkpoint folder (config.json, model.safetensors, tokenizer.json).
    #[arg(long)]
    model: PathBuf,
    /// Address to bind; loopback unless told otherwise.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Port (0 picks a free one; the address is printed once bound).
    #[arg(long, default_value_t = 8000)]
    port: u16,
    /// The model name clients ask for (default: the --model argument as given, as vLLM does).
    #[arg(long)]
    served_model_name: Option<String>,
    /// Sequences decoded together at most (continuous batching).
    #[arg(long, default_value_t = 16)]
    max_batch: usize,
    /// Sequences waiting for a batch slot at most; more are answered 429.
    #[arg(long, default_value_t = 256)]
    max_queue: usize,
    /// Tokens per sequence, prompt plus completion (default: the model's
    /// max_position_embeddings, at most 4096).
    #[arg(long)]
    max_model_len: Option<usize>,
    /// Largest request body in bytes; larger ones are answered 413.
    #[arg(long, default_value_t = 4 * 1024 * 1024)]
    max_body_bytes: usize,
    /// Require `Authorization: Bearer KEY` (default: the R1_API_KEY environment variable, if set).
    #[arg(long)]
    api_key: Option<String>,
    /// Split `<think>…</think>` off chat answers as `reasoning_content` (vLLM's
    /// `--reasoning-parser deepseek_r1`); the only parser is `deepseek_r1`.
    #[arg(long, value_parser = ["deepseek_r1"])]
    reasoning_parser: Option<String>,
    #[command(flatten)]
    device: super::DeviceArgs,
}

/// Runs `r1 serve` until interrupted.
pub fn run(args: ServeArgs) -> Result<()> {
    if !args.model.is_dir() {
        bail!("--model {}: not a folder", args.model.display());
    }
    if args.max_batch == 0 {
        bail!("--max-batch must be at least 1");
    }
    let device = r1::device::parse_device(&args.device.device)
        .map_err(anyhow::Error::msg)?
        .without_autodiff();
    let dtype = args
        .device
        .dtype
        .as_deref()
        .map(r1::model::parse_dtype)
        .transpose()?;
    if args.max_model_len.is_some_and(|n| n < 2) {
        bail!("--max-model-len must be at least 2");
    }
    let queued = Arc::new(AtomicUsize::new(0));
    let settings = EngineSettings {
        max_batch: args.max_batch,
        max_model_len: args.max_model_len,
        dtype,
    };
    let (commands, info) = spawn(args.model.clone(), device, settings, queued.clone())?;
    let name = args
        .served_model_name
        .clone()
        .unwrap_or_else(|| args.model.display().to_string());
    let api_key = args
        .api_key
        .clone()
        .or_else(|| std::env::var("R1_API_KEY").ok().filter(|k| !k.is_empty()));
    let state = api::State {
        name,
        tokenizer: RwLock::new(info.tokenizer),
        folder: RwLock::new(args.model.clone()),
        commands: std::sync::Mutex::new(commands),
        queued,
        max_queue: args.max_queue,
        max_model_len: info.max_model_len,
        max_body_bytes: args.max_body_bytes,
        api_key,
        reasoning: args.reasoning_parser.is_some(),
        eos_token_ids: info.eos_token_ids,
        next_id: AtomicUsize::new(1),
        created: api::now(),
    };
    let addr: SocketAddr = format!("{}:{}", args.host, args.port)
        .parse()
        .or_else(|_| {
            use std::net::ToSocketAddrs;
            (args.host.as_str(), args.port)
                .to_socket_addrs()
                .ok()
                .and_then(|mut a| a.next())
                .ok_or(())
        })
        .map_err(|_| anyhow::anyhow!("--host {}: not an address", args.host))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("could not start the async runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("could not bind {addr}"))?;
        let bound = listener.local_addr()?;
        eprintln!(
            "r1 serve: {} on http://{bound}/v1 (max batch {}, context {})",
            state.name, args.max_batch, state.max_model_len
        );
        let app = api::router(Arc::new(state));
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await
            .context("the server stopped")
    })
}
