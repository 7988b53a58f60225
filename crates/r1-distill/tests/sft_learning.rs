//! SFT learns: on the synthetic arithmetic task, training and held-out loss fall and greedy
//! exact-match accuracy rises from the untrained model's. Fails if the loss, the masking, the
//! optimiser or the saved model is wrong.

use std::io::Write;
use std::path::{Path, PathBuf};

use burn::tensor::Device;
use r1_data::synthetic::{ArithmeticConfig, TaskConfig, generate_split};
use r1_data::{Content, ReadOptions, Sample};
use r1_distill::{SftConfig, SftRun, SftTokenizer, run_sft};
use r1_model::{GenerationConfig, Pretrained, SamplingParams, generate};
use r1_rewards::Reward;
use serde_json::{Value, json};

fn model_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sft/model")
}

fn write_jsonl(path: &Path, samples: &[Sample]) {
    let mut f = std::fs::File::create(path).expect("create");
    for s in samples {
        let (Content::Text(p), Some(Content::Text(c))) = (&s.prompt, &s.completion) else {
            panic!("text sample")
        };
        let line =
            json!({"prompt": p, "completion": c, "answer": s.answers[0], "task": "arithmetic"});
        writeln!(f, "{line}").expect("write");
    }
}

/// Greedy exact-match accuracy of `model` on `samples` with the task's checker.
fn exact_match(model: &Path, samples: &[Sample]) -> f64 {
    let device = Device::default();
    let p = Pretrained::load(model, None, &device).expect("model");
    let tok = p.tokenizer.as_ref().expect("tokenizer");
    let config = SftConfig::default();
    let st = SftTokenizer::new(tok, &config);
    let prompts: Vec<Vec<u32>> = samples
        .iter()
        .map(|s| st.prompt_ids(s).expect("ids"))
        .collect();
    let generation = GenerationConfig {
        max_new_tokens: 40,
        sampling: SamplingParams::greedy(),
        eos_token_ids: p.eos_token_ids(),
        pad_token_id: p.pad_token_id(),
        ..GenerationConfig::default()
    };
    let out = generate(&p.model, &prompts, &generation, Some(tok)).expect("generate");
    let inputs: Vec<_> = samples
        .iter()
        .zip(&out)
        .map(|(s, g)| s.to_reward_input(&tok.decode(&g.completion_ids, true).expect("decode")))
        .collect();
    let scores = r1_data::synthetic::Checker.score(&inputs).expect("score");
    scores.iter().map(|s| s.unwrap_or(0.0) as f64).sum::<f64>() / samples.len() as f64
}

#[test]
fn sft_on_arithmetic_lowers_losses_and_raises_exact_match() {
    let dir = std::env::temp_dir().join(format!("r1-sft-learning-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let task = TaskConfig::Arithmetic(ArithmeticConfig {
        operands: 2,
        ..ArithmeticConfig::default()
    });
    let (train, eval) = generate_split(&task, 160, 20, 7);
    write_jsonl(&dir.join("train.jsonl"), &train);
    write_jsonl(&dir.join("eval.jsonl"), &eval);
    let sets: Vec<String> = [
        "max_steps=120",
        "per_device_train_batch_size=16",
        "learning_rate=3e-3",
        "lr_scheduler_type=\"cosine\"",
        "warmup_steps=10",
        "logging_steps=10",
        "eval_steps=60",
        "eval_on_start=true",
        "save_steps=0",
        "max_length=64",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([format!(
        "eval_data=\"{}\"",
        dir.join("eval.jsonl").display()
    )])
    .collect();
    let config = SftConfig::load(None, &sets).expect("config");
    let out = dir.join("out");
    let summary = run_sft(&SftRun {
        model: model_dir(),
        data: dir.join("train.jsonl"),
        out: out.clone(),
        config,
        resume: false,
        device: Device::default(),
        teacher: None,
        read: ReadOptions::default(),
    })
    .expect("sft");
    assert_eq!(summary.steps, 120);
    let lines: Vec<Value> = std::fs::read_to_string(out.join("metrics.jsonl"))
        .expect("metrics")
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    let losses: Vec<f64> = lines.iter().filter_map(|v| v["loss"].as_f64()).collect();
    let evals: Vec<f64> = lines
        .iter()
        .filter_map(|v| v["eval_loss"].as_f64())
        .collect();
    eprintln!("train loss {losses:?}\nheld-out loss {evals:?}");
    assert!(evals.len() >= 3, "eval at start, at 60 and at the end");
    let (l0, l1) = (losses[0], losses[losses.len() - 1]);
    let (e0, e1) = (evals[0], evals[evals.len() - 1]);
    assert!(l1 < l0 / 4.0, "training loss {l0} -> {l1}");
    assert!(e1 < e0 / 4.0, "held-out loss {e0} -> {e1}");
    let probe = &train[..32];
    let before = exact_match(&model_dir(), probe);
    let after = exact_match(&out, probe);
    let held_out = exact_match(&out, &eval);
    eprintln!("exact match on training prompts {before} -> {after}; held-out {held_out}");
    assert!(
        before < 0.1 && after >= 0.5,
        "exact match {before} -> {after}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
