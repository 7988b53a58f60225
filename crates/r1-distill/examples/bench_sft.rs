//! `cargo xtask bench sft`: SFT throughput on the CPU beside transformers' `Trainer` (same
//! random Qwen2 checkpoint, token sequences, batch, thread count), and the peak memory of one
//! SFT step with the fused cross-entropy against the plain one at a 151,936-token vocabulary
//! (each in a fresh process). Writes a section of `docs/benchmarks.md`.
//!
//! `bench_sft memory fused|reference` is the per-process memory probe.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use burn::tensor::{DType, Device};
use r1_distill::{Example, MicroBatch, SftTrainer};
use r1_grpo::{LogProbImpl, LrSchedule, OptimSettings};
use r1_model::Pretrained;
use serde_json::{Value, json};

const SEQ: usize = 256;
const BATCH: usize = 4;
const STEPS: usize = 10;
const WARMUP: usize = 2;
const MEM_SEQ: usize = 2048;
const BIG_VOCAB: usize = 151_936;

fn python() -> String {
    std::env::var("PYTHON").unwrap_or_else(|_| "python3".into())
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/bench_sft_hf.py")
}

fn work() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/bench-sft")
}

/// A random Qwen2 checkpoint made by transformers (cached under target/bench-sft).
fn checkpoint(name: &str, vocab: usize, hidden: usize, layers: usize) -> PathBuf {
    let dir = work().join(name);
    if !dir.join("model.safetensors").exists() {
        let status = Command::new(python())
            .arg(script())
            .args(["make", &dir.display().to_string()])
            .args([vocab.to_string(), hidden.to_string(), layers.to_string()])
            .status()
            .expect("python");
        assert!(
            status.success(),
            "making {name} needs python with torch and transformers"
        );
    }
    std::fs::canonicalize(&dir).unwrap_or(dir)
}

fn settings() -> OptimSettings {
    OptimSettings {
        learning_rate: 1e-4,
        weight_decay: 0.0,
        adam_betas: (0.9, 0.999),
        adam_epsilon: 1e-8,
        max_grad_norm: 1.0,
        lr_scheduler_type: LrSchedule::Linear,
        warmup_steps: 0,
        max_steps: 1000,
        min_lr_rate: 0.0,
    }
}

/// Seeded random sequences of `len` tokens below `vocab`.
fn sequences(n: usize, len: usize, vocab: usize) -> Vec<Vec<u32>> {
    let mut state = 0x5EED_u64;
    (0..n)
        .map(|_| {
            (0..len)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    (state % vocab as u64) as u32
                })
                .collect()
        })
        .collect()
}

fn micro(seqs: &[Vec<u32>]) -> MicroBatch {
    MicroBatch {
        rows: seqs
            .iter()
            .map(|s| {
                vec![Example {
                    ids: s.clone(),
                    labels: (0..s.len()).map(|i| i >= s.len() / 2).collect(),
                }]
            })
            .collect(),
    }
}

fn status_kib(key: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(f64::NAN)
}

fn memory(method: &str) {
    let model = checkpoint("vocab152k", BIG_VOCAB, 256, 2);
    let device = Device::default().autodiff();
    let p = Pretrained::load(&model, Some(DType::F32), &device).expect("model");
    let seqs = sequences(1, MEM_SEQ, BIG_VOCAB);
    let setup = status_kib("VmRSS:");
    let method = LogProbImpl::parse(method).expect("fused, chunked or reference");
    let mut t = SftTrainer::new(p.model, settings(), 0, 64 << 20)
        .expect("trainer")
        .with_logprob_impl(method);
    let start = Instant::now();
    t.step(&[micro(&seqs)]).expect("step");
    let secs = start.elapsed().as_secs_f64();
    let peak = status_kib("VmHWM:");
    println!(
        "{}",
        json!({"seconds": secs, "peak_gib": peak / 1048576.0, "above_setup_gib": (peak - setup) / 1048576.0})
    );
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("memory") {
        memory(args.get(1).map_or("fused", String::as_str));
        return;
    }
    let threads = std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    // Throughput: a 4-layer, 256-wide Qwen2 with a 4,096-token vocabulary.
    let vocab = 4096;
    let model = checkpoint("tiny", vocab, 256, 4);
    let seqs = sequences((STEPS + WARMUP) * BATCH, SEQ, vocab);
    let device = Device::default().autodiff();
    let p = Pretrained::load(&model, Some(DType::F32), &device).expect("model");
    let mut t = SftTrainer::new(p.model, settings(), 0, 64 << 20).expect("trainer");
    let mut secs = 0.0;
    for (i, chunk) in seqs.chunks(BATCH).enumerate() {
        let start = Instant::now();
        t.step(&[micro(chunk)]).expect("step");
        if i >= WARMUP {
            secs += start.elapsed().as_secs_f64();
        }
    }
    let ours = secs / STEPS as f64;
    let tokens = (BATCH * SEQ) as f64;
    eprintln!("r1: {ours:.3} s/step, {:.0} tokens/s", tokens / ours);
    let spec = json!({"model": model, "sequences": seqs, "batch": BATCH, "steps": STEPS, "warmup": WARMUP, "threads": threads});
    let hf = Command::new(python())
        .arg(script())
        .args(["time", &spec.to_string()])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| {
            let text = String::from_utf8_lossy(&o.stdout).into_owned();
            serde_json::from_str::<Value>(text.lines().last()?).ok()
        });
    let mut section = format!(
        "## SFT (`cargo xtask bench sft`)\n\nCPU, {threads} threads, f32. A random Qwen2 (4 layers, hidden 256, \
         vocab {vocab}, tied), batch {BATCH} x {SEQ} tokens, loss on the second half of each sequence, AdamW with \
         clipping; mean of {STEPS} optimiser steps after {WARMUP} warm-up steps. Tokens/s counts every token of the \
         batch.\n\n| | s/step | tokens/s |\n|---|---:|---:|\n| r1 (fused cross-entropy) | {ours:.3} | {:.0} |\n",
        tokens / ours
    );
    match &hf {
        Some(v) => {
            let s = v["seconds_per_step"].as_f64().unwrap_or(f64::NAN);
            section.push_str(&format!(
                "| transformers {} `Trainer` (torch {}, sdpa) | {s:.3} | {:.0} |\n",
                v["transformers"].as_str().unwrap_or("?"),
                v["torch"].as_str().unwrap_or("?"),
                tokens / s
            ));
        }
        None => section.push_str("| transformers | not installed | |\n"),
    }
    // Memory: fresh processes, one step each.
    section.push_str(&format!(
        "\nPeak memory of one SFT step of a 2-layer, 256-wide Qwen2 with a {BIG_VOCAB}-token vocabulary on \
         {MEM_SEQ} tokens (half of them labels), each in a fresh process (`VmHWM`; above setup subtracts the \
         resident memory once the model is loaded).\n\n| cross-entropy | step s | peak GiB | above setup GiB |\n\
         |---|---:|---:|---:|\n"
    ));
    let exe = std::env::current_exe().expect("exe");
    for method in ["reference", "fused"] {
        let out = Command::new(&exe).args(["memory", method]).output();
        let row = out.ok().filter(|o| o.status.success()).and_then(|o| {
            serde_json::from_str::<Value>(String::from_utf8_lossy(&o.stdout).lines().last()?).ok()
        });
        match row {
            Some(v) => section.push_str(&format!(
                "| {method} | {:.2} | {:.2} | {:.2} |\n",
                v["seconds"].as_f64().unwrap_or(f64::NAN),
                v["peak_gib"].as_f64().unwrap_or(f64::NAN),
                v["above_setup_gib"].as_f64().unwrap_or(f64::NAN)
            )),
            None => section.push_str(&format!("| {method} | failed | | |\n")),
        }
    }
    section.push_str("\nCommand: `cargo xtask bench sft`\n\n");
    let doc = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/benchmarks.md");
    let (start, end) = ("<!-- bench sft: start -->", "<!-- bench sft: end -->");
    let old = std::fs::read_to_string(&doc).unwrap_or_else(|_| "# Benchmarks\n".into());
    let block = format!("{start}\n{section}{end}");
    let new = match (old.find(start), old.find(end)) {
        (Some(a), Some(b)) if b > a => format!("{}{}{}", &old[..a], block, &old[b + end.len()..]),
        _ => format!("{}\n\n{}\n", old.trim_end(), block),
    };
    std::fs::write(&doc, new).expect("write docs/benchmarks.md");
    println!("{section}");
}
