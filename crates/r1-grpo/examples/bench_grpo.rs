//! `cargo xtask bench grpo`: seconds per GRPO step on the CPU for a tiny configuration (the
//! `qwen2-tied` test model, 8 prompts x 8 completions of 32 tokens, `dapo` loss), phase by
//! phase, beside TRL's `GRPOTrainer` on the same model, batch and thread count when TRL is
//! installed. Writes a table into `docs/benchmarks.md`.

use std::path::{Path, PathBuf};
use std::process::Command;

use burn::tensor::{DType, Device};
use r1_grpo::{GrpoTrainer, LossConfig, LossType, Prompt, TrainerConfig};
use r1_model::Pretrained;
use r1_rewards::{RewardSet, per_item};
use serde_json::{Value, json};

const STEPS: usize = 5;
const PROMPTS: usize = 8;
const G: usize = 8;
const TOKENS: usize = 32;

fn main() {
    let model_dir =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../r1-model/tests/fixtures/models/qwen2-tied");
    // transformers takes a path with `..` in it for a hub repo id
    let model_dir = std::fs::canonicalize(&model_dir).unwrap_or(model_dir);
    let device = Device::default().autodiff();
    let p = Pretrained::load(&model_dir, Some(DType::F32), &device).expect("model");
    let vocab = p.model.config().vocab_size as u64;
    let mut rewards = RewardSet::new();
    rewards.push(
        "low_half",
        1.0,
        per_item(move |i| {
            let ids = i.metadata.get("completion_ids")?.as_array()?;
            let low = ids
                .iter()
                .filter(|t| t.as_u64().is_some_and(|t| t < vocab / 2))
                .count();
            Some(low as f32 / ids.len().max(1) as f32)
        }),
    );
    let config = TrainerConfig {
        loss: LossConfig {
            loss_type: LossType::Dapo,
            num_generations: G,
            max_completion_length: TOKENS,
            ..LossConfig::default()
        },
        learning_rate: 1e-5,
        ..TrainerConfig::default()
    };
    let pad = p.pad_token_id();
    let mut trainer =
        GrpoTrainer::new(p.model, config, rewards, None, Vec::new(), pad).expect("trainer");
    let prompts: Vec<Prompt> = (0..PROMPTS as u32)
        .map(|i| Prompt {
            ids: vec![1 + i, 40 + 3 * i, 200 + i, 7],
            ..Prompt::default()
        })
        .collect();
    trainer.step(&prompts).expect("warm-up");
    let mut totals = (0.0, 0.0, 0.0);
    for _ in 0..STEPS {
        let m = trainer.step(&prompts).expect("step");
        totals.0 += m.seconds.0;
        totals.1 += m.seconds.1;
        totals.2 += m.seconds.2;
    }
    let n = STEPS as f64;
    let ours = (totals.0 / n, totals.1 / n, totals.2 / n);
    eprintln!(
        "r1: generate {:.3} s, reward {:.4} s, log-probs + update {:.3} s per step",
        ours.0, ours.1, ours.2
    );
    let threads = std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let trl = run_trl(&model_dir, threads);
    let mut section = format!(
        "## GRPO step (`cargo xtask bench grpo`)\n\nCPU, {threads} threads, f32. The `qwen2-tied` test model (3 layers, \
         hidden 64, vocab 384), {PROMPTS} prompts x G = {G} completions of {TOKENS} tokens (eos ignored), `dapo` loss, \
         beta 0, one optimiser step per generation batch; mean of {STEPS} steps after a warm-up.\n\n\
         | | generate (s) | reward (s) | log-probs + update (s) | step (s) |\n|---|---:|---:|---:|---:|\n\
         | r1 | {:.3} | {:.4} | {:.3} | {:.3} |\n",
        ours.0,
        ours.1,
        ours.2,
        ours.0 + ours.1 + ours.2
    );
    match trl {
        Some(v) => section.push_str(&format!(
            "| TRL {} (`GRPOTrainer`, transformers generate; it stops at eos, ~31 of 32 tokens) | | | | {:.3} |\n",
            v["trl"].as_str().unwrap_or("?"),
            v["seconds_per_step"].as_f64().unwrap_or(f64::NAN)
        )),
        None => section.push_str("| TRL | not installed | | | |\n"),
    }
    section.push('\n');
    let doc = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/benchmarks.md");
    let (start, end) = ("<!-- bench grpo: start -->", "<!-- bench grpo: end -->");
    let old = std::fs::read_to_string(&doc).unwrap_or_else(|_| "# Benchmarks\n".into());
    let block = format!("{start}\n{section}{end}");
    let new = match (old.find(start), old.find(end)) {
        (Some(a), Some(b)) if b > a => format!("{}{}{}", &old[..a], block, &old[b + end.len()..]),
        _ => format!("{}\n\n{}\n", old.trim_end(), block),
    };
    std::fs::write(&doc, new).expect("write docs/benchmarks.md");
    println!("{section}");
}

fn run_trl(model: &Path, threads: usize) -> Option<Value> {
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/bench_grpo_trl.py");
    let spec = json!({"model": model, "prompts": PROMPTS, "g": G, "tokens": TOKENS, "steps": STEPS, "threads": threads});
    let out = Command::new(python)
        .arg(script)
        .arg(spec.to_string())
        .output()
        .ok()?;
    if !out.status.success() {
        eprintln!(
            "TRL skipped: {}",
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .last()
                .unwrap_or("")
        );
        return None;
    }
    // transformers' Trainer prints its own log lines to stdout: the answer is the last line.
    let stdout = String::from_utf8_lossy(&out.stdout);
    let v: Value = serde_json::from_str(stdout.lines().last()?).ok()?;
    eprintln!("TRL: {v}");
    Some(v)
}
