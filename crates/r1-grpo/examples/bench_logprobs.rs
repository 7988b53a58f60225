//! One measurement for `cargo xtask bench logprobs`: the per-token log-probs of a
//! `[batch, seq, hidden]` block of hidden states under a tied `[vocab, hidden]` head
//! (Qwen2.5-0.5B's shape by default), forward and backward under autodiff, by one
//! implementation. Prints one JSON line: seconds for forward and backward, the resident memory
//! after setup and the peak resident memory (`VmHWM`) of the whole run.
//!
//! The xtask runs each configuration in a fresh process so that peaks do not mix.
//!
//! ```text
//! bench_logprobs --impl fused|chunked|reference [--batch 8] [--seq 2048] [--vocab 151936]
//!                [--hidden 896] [--chunk-elements N]
//! ```

use std::path::Path;
use std::time::Instant;

use burn::tensor::{DType, Device, Distribution, Int, Tensor, TensorData};
use r1_grpo::logprobs::{DEFAULT_CHUNK_ELEMENTS, LogProbImpl, chunk_rows_for, token_logprobs};
use r1_model::{CausalLm, ModelConfig, RandomWeights};
use serde_json::json;

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn num(args: &[String], name: &str, default: usize) -> usize {
    arg(args, name).map_or(default, |v| {
        v.parse()
            .unwrap_or_else(|_| panic!("{name}: `{v}` is not a number"))
    })
}

/// `VmRSS` and `VmHWM` of this process, in bytes.
fn memory() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<u64>().ok())
            .map_or(0, |kb| kb * 1024)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let method = arg(&args, "--impl")
        .and_then(|s| LogProbImpl::parse(&s))
        .expect("--impl fused|chunked|reference");
    let batch = num(&args, "--batch", 8);
    let seq = num(&args, "--seq", 2048);
    let vocab = num(&args, "--vocab", 151_936);
    let hidden = num(&args, "--hidden", 896);
    let chunk_elements = num(&args, "--chunk-elements", DEFAULT_CHUNK_ELEMENTS);

    let device = Device::default().autodiff();
    // A one-layer tied model: only its head (the embedding, transposed) is used.
    let config = ModelConfig::from_map(
        json!({"model_type": "qwen2", "vocab_size": vocab, "hidden_size": hidden,
            "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 1,
            "num_key_value_heads": 1, "head_dim": 16, "max_position_embeddings": seq + 1,
            "rms_norm_eps": 1e-6, "tie_word_embeddings": true, "rope_theta": 10000.0})
        .as_object()
        .expect("object")
        .clone(),
        Path::new("<bench>"),
    )
    .expect("config");
    let model = CausalLm::from_source(&config, &mut RandomWeights::new(0), DType::F32, &device)
        .expect("model");
    device.seed(0);
    let h = Tensor::<3>::random(
        [batch, seq, hidden],
        Distribution::Normal(0.0, 1.0),
        &device,
    )
    .require_grad();
    let targets: Vec<i64> = (0..batch * seq)
        .map(|i| ((i as u64 * 2_654_435_761) % vocab as u64) as i64)
        .collect();
    let targets = Tensor::<2, Int>::from_data(TensorData::new(targets, [batch, seq]), &device);
    let (rss_setup, _) = memory();

    let t = Instant::now();
    let chunk = chunk_rows_for(vocab, chunk_elements);
    let (logps, _) = token_logprobs(&model, h.clone(), targets, 1.0, method, chunk, false);
    let loss = logps.sum();
    let value = loss
        .clone()
        .into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .expect("loss")[0];
    let forward = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let grads = loss.backward();
    let g = h.grad(&grads).expect("hidden gradient");
    let gsum = g
        .abs()
        .sum()
        .into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .expect("grad")[0];
    let backward = t.elapsed().as_secs_f64();
    let (_, peak) = memory();
    assert!(value.is_finite() && gsum.is_finite());
    println!(
        "{}",
        json!({"impl": method.name(), "batch": batch, "seq": seq, "vocab": vocab,
            "hidden": hidden, "chunk_rows": chunk, "forward_s": forward, "backward_s": backward,
            "rss_setup_bytes": rss_setup, "peak_rss_bytes": peak, "loss": value})
    );
}
