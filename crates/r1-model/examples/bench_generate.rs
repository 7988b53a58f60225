//! `cargo xtask bench generate`: prefill and decode throughput of r1's batched generation on
//! random-weight models (a tiny one and the Qwen2.5-0.5B shape), beside transformers' `generate`
//! on the same shapes and thread count when torch is installed. Writes a table into
//! `docs/benchmarks.md`.
//!
//! Method, the same on both sides: greedy, eos ignored, `t1` = a generate call with one new token
//! (prefill + one step), `tN` = with N new tokens; prefill tokens/s = batch * prompt / t1,
//! decode tokens/s = batch * (N - 1) / (tN - t1). Best of `--repeats` runs after a warm-up.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use burn::tensor::{DType, Device};
use r1_model::{
    CausalLm, GenerationConfig, ModelConfig, RandomWeights, Rng, SamplingParams, generate,
};
use serde_json::{Value, json};

struct Shape {
    name: &'static str,
    config: Value,
    prompt: usize,
    new_tokens: usize,
}

fn shapes(quick: bool) -> Vec<Shape> {
    let tiny = Shape {
        name: "tiny (4 layers, hidden 128, vocab 1024)",
        config: json!({"model_type": "qwen2", "vocab_size": 1024, "hidden_size": 128,
            "intermediate_size": 352, "num_hidden_layers": 4, "num_attention_heads": 4,
            "num_key_value_heads": 2, "max_position_embeddings": 4096, "rms_norm_eps": 1e-6,
            "tie_word_embeddings": true, "rope_theta": 10000.0}),
        prompt: 64,
        new_tokens: 64,
    };
    let qwen = Shape {
        name: "Qwen2.5-0.5B shape (24 layers, hidden 896, vocab 151936)",
        config: json!({"model_type": "qwen2", "vocab_size": 151936, "hidden_size": 896,
            "intermediate_size": 4864, "num_hidden_layers": 24, "num_attention_heads": 14,
            "num_key_value_heads": 2, "max_position_embeddings": 32768, "rms_norm_eps": 1e-6,
            "tie_word_embeddings": true, "rope_theta": 1000000.0}),
        prompt: 64,
        new_tokens: 16,
    };
    if quick { vec![tiny] } else { vec![tiny, qwen] }
}

#[derive(Debug, Clone, Copy)]
struct Row {
    prefill: f64,
    decode: f64,
}

fn time_generate(model: &CausalLm, prompts: &[Vec<u32>], n: usize) -> f64 {
    let config = GenerationConfig {
        max_new_tokens: n,
        sampling: SamplingParams::greedy(),
        ignore_eos: true,
        ..GenerationConfig::default()
    };
    let t = Instant::now();
    let out = generate(model, prompts, &config, None).expect("generate");
    assert!(out.iter().all(|g| g.completion_ids.len() == n));
    t.elapsed().as_secs_f64()
}

fn bench_r1(shape: &Shape, batches: &[usize], repeats: usize) -> Vec<Row> {
    let device = Device::default().without_autodiff();
    let config = ModelConfig::from_map(
        shape.config.as_object().expect("object").clone(),
        Path::new("<bench>"),
    )
    .expect("config");
    let t = Instant::now();
    let model = CausalLm::from_source(&config, &mut RandomWeights::new(0), DType::F32, &device)
        .expect("model");
    eprintln!(
        "  r1: built random weights in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let mut rng = Rng::new(1);
    batches
        .iter()
        .map(|&b| {
            let prompts: Vec<Vec<u32>> = (0..b)
                .map(|_| {
                    (0..shape.prompt)
                        .map(|_| (rng.next_u64() % config.vocab_size as u64) as u32)
                        .collect()
                })
                .collect();
            time_generate(&model, &prompts, 2); // warm-up
            let mut best = (f64::MAX, f64::MAX);
            for _ in 0..repeats {
                let t1 = time_generate(&model, &prompts, 1);
                let tn = time_generate(&model, &prompts, shape.new_tokens);
                best = (best.0.min(t1), best.1.min(tn));
            }
            let row = Row {
                prefill: (b * shape.prompt) as f64 / best.0,
                decode: (b * (shape.new_tokens - 1)) as f64 / (best.1 - best.0).max(1e-9),
            };
            eprintln!(
                "  r1 batch {b}: prefill {:.1} tok/s, decode {:.1} tok/s",
                row.prefill, row.decode
            );
            row
        })
        .collect()
}

fn bench_hf(shape: &Shape, batches: &[usize], repeats: usize, threads: usize) -> Option<Vec<Row>> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/bench_generate_hf.py");
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let probe = Command::new(&python)
        .args(["-c", "import torch, transformers"])
        .output()
        .ok()?;
    if !probe.status.success() {
        eprintln!("  transformers: not installed, skipped");
        return None;
    }
    let spec = json!({"config": shape.config, "prompt": shape.prompt, "new_tokens": shape.new_tokens,
        "batches": batches, "repeats": repeats, "threads": threads});
    let out = Command::new(&python)
        .arg(&script)
        .arg(spec.to_string())
        .output()
        .ok()?;
    if !out.status.success() {
        eprintln!(
            "  transformers failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        return None;
    }
    let v: Value = serde_json::from_slice(&out.stdout).ok()?;
    let rows = v["rows"]
        .as_array()?
        .iter()
        .map(|r| Row {
            prefill: r["prefill"].as_f64().unwrap_or(f64::NAN),
            decode: r["decode"].as_f64().unwrap_or(f64::NAN),
        })
        .collect::<Vec<_>>();
    for (b, r) in batches.iter().zip(&rows) {
        eprintln!(
            "  transformers batch {b}: prefill {:.1} tok/s, decode {:.1} tok/s",
            r.prefill, r.decode
        );
    }
    eprintln!(
        "  transformers {} / torch {}",
        v["transformers"], v["torch"]
    );
    Some(rows)
}

fn update_doc(path: &Path, section: &str) -> std::io::Result<()> {
    let (start, end) = (
        "<!-- bench generate: start -->",
        "<!-- bench generate: end -->",
    );
    let old = std::fs::read_to_string(path).unwrap_or_else(|_| "# Benchmarks\n".into());
    let block = format!("{start}\n{section}{end}");
    let new = match (old.find(start), old.find(end)) {
        (Some(a), Some(b)) if b > a => format!("{}{}{}", &old[..a], block, &old[b + end.len()..]),
        _ => format!("{}\n{}\n", old.trim_end(), block),
    };
    std::fs::write(path, new)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quick = args.iter().any(|a| a == "--quick");
    let no_hf = args.iter().any(|a| a == "--no-hf");
    let threads = std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let repeats = 2;
    let batches = [1usize, 8, 32];
    let mut section = String::new();
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    section.push_str(&format!(
        "## Generation (`cargo xtask bench generate{}`)\n\nCPU: {cpu}, {threads} threads; r1 on \
         Burn's flex backend, f32, greedy, eos ignored. Prefill = batch x prompt / t(1 new token); \
         decode = batch x (N-1) / (t(N) - t(1)); best of {repeats} after a warm-up. Tokens/s, \
         higher is better.\n\n",
        if quick { " --quick" } else { "" }
    ));
    for shape in shapes(quick) {
        eprintln!(
            "{}: prompt {}, {} new tokens",
            shape.name, shape.prompt, shape.new_tokens
        );
        let ours = bench_r1(&shape, &batches, repeats);
        let theirs = if no_hf {
            None
        } else {
            bench_hf(&shape, &batches, repeats, threads)
        };
        section.push_str(&format!(
            "### {}: prompt {}, {} new tokens\n\n| batch | r1 prefill | transformers prefill | r1 decode | transformers decode | decode r1 / transformers |\n|---:|---:|---:|---:|---:|---:|\n",
            shape.name, shape.prompt, shape.new_tokens
        ));
        for (i, b) in batches.iter().enumerate() {
            let r = ours[i];
            let (hp, hd, ratio) = match &theirs {
                Some(t) => (
                    format!("{:.1}", t[i].prefill),
                    format!("{:.1}", t[i].decode),
                    format!("{:.2}x", r.decode / t[i].decode),
                ),
                None => ("n/a".into(), "n/a".into(), "n/a".into()),
            };
            section.push_str(&format!(
                "| {b} | {:.1} | {hp} | {:.1} | {hd} | {ratio} |\n",
                r.prefill, r.decode
            ));
        }
        section.push('\n');
    }
    let doc = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/benchmarks.md");
    update_doc(&doc, &section).expect("write docs/benchmarks.md");
    println!("{section}");
    eprintln!("wrote {}", doc.display());
}
