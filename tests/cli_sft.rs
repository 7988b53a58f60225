//! End-to-end: the supervised half of the R1 pipeline through the `r1` command line on a tiny
//! checkpoint. `r1 sft` fine-tunes on synthetic arithmetic, `r1 sample` rejection-samples the
//! result, `r1 distill` trains a student on the kept traces with logit distillation; plus the
//! contracts: the output folder, `metrics.jsonl`, the sampled lines' fields, one-line errors.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn model() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("crates/r1-distill/tests/fixtures/sft/model")
}

fn r1(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_r1"))
        .env("R1_NO_PROGRESS", "1")
        .args(args)
        .output()
        .expect("run r1")
}

fn ok(out: &Output) {
    assert!(
        out.status.success(),
        "r1 failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .expect("jsonl")
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect()
}

/// Synthetic arithmetic (`7+2=` -> `<think>+07+2=+09</think><answer>9</answer>`), 100 rows.
fn arithmetic(path: &Path) {
    let mut f = std::fs::File::create(path).expect("data");
    for a in 0..10 {
        for b in 0..10 {
            let line = serde_json::json!({
                "prompt": format!("{a}+{b}="),
                "completion": format!("<think>+{a:02}+{b}=+{:02}</think><answer>{}</answer>", a + b, a + b),
                "answer": (a + b).to_string(),
            });
            writeln!(f, "{line}").expect("write");
        }
    }
}

#[test]
fn sft_then_sample_then_distill() {
    let dir = std::env::temp_dir().join(format!("r1-cli-sft-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let data = dir.join("train.jsonl");
    arithmetic(&data);
    let config = dir.join("sft.toml");
    std::fs::write(
        &config,
        "learning_rate = 3e-3\nper_device_train_batch_size = 16\nmax_steps = 120\n\
         lr_scheduler_type = \"cosine\"\nwarmup_steps = 10\nlogging_steps = 1\nsave_steps = 60\n",
    )
    .expect("config");
    let sft = dir.join("sft");
    let s = |p: &Path| p.display().to_string();
    let out = r1(&[
        "sft",
        "--model",
        &s(&model()),
        "--data",
        &s(&data),
        "--out",
        &s(&sft),
        "--config",
        &s(&config),
        "--set",
        "seed=3",
    ]);
    ok(&out);
    for f in [
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "generation_config.json",
    ] {
        assert!(sft.join(f).exists(), "sft output lacks {f}");
    }
    assert!(
        sft.join("checkpoints/checkpoint-60/trainer_state.json")
            .exists()
    );
    let metrics = lines(&sft.join("metrics.jsonl"));
    assert_eq!(
        metrics.len(),
        120,
        "one line per step with logging_steps = 1"
    );
    for key in [
        "loss",
        "grad_norm",
        "learning_rate",
        "num_tokens",
        "mean_token_accuracy",
    ] {
        assert!(metrics[0].get(key).is_some(), "metrics lack {key}");
    }
    let (first, last) = (metrics[0]["loss"].as_f64(), metrics[119]["loss"].as_f64());
    assert!(
        last.unwrap_or(f64::MAX) < first.unwrap_or(0.0) / 4.0,
        "{first:?} -> {last:?}"
    );

    // Rejection sampling of the fine-tuned model.
    let sampled = dir.join("sampled.jsonl");
    let out = r1(&[
        "sample",
        "--model",
        &s(&sft),
        "--data",
        &s(&data),
        "--out",
        &s(&sampled),
        "--num-samples",
        "4",
        "--keep",
        "2",
        "--filters",
        "--temperature",
        "0.7",
        "--max-new-tokens",
        "40",
        "--seed",
        "1",
    ]);
    ok(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("mixed_language") && stderr.contains("kept"),
        "{stderr}"
    );
    let kept = lines(&sampled);
    assert!(kept.len() >= 20, "only {} kept of 400", kept.len());
    let mut per_prompt = std::collections::HashMap::new();
    for line in &kept {
        for key in [
            "prompt",
            "answer",
            "completion",
            "completion_ids",
            "rewards",
            "total",
            "finish_reason",
            "sample_index",
        ] {
            assert!(line.get(key).is_some(), "sampled line lacks {key}: {line}");
        }
        assert_eq!(line["rewards"]["accuracy"].as_f64(), Some(1.0), "{line}");
        *per_prompt
            .entry(line["prompt"].as_str().unwrap_or("").to_string())
            .or_insert(0) += 1;
    }
    assert!(per_prompt.values().all(|&n| n <= 2), "--keep 2");

    // Distil the kept traces into the base model, with the fine-tuned one as teacher.
    let student = dir.join("student");
    let out = r1(&[
        "distill",
        "--student",
        &s(&model()),
        "--data",
        &s(&sampled),
        "--out",
        &s(&student),
        "--teacher",
        &s(&sft),
        "--kd",
        "reverse",
        "--set",
        "max_steps=3",
        "--set",
        "logging_steps=1",
        "--set",
        "per_device_train_batch_size=8",
    ]);
    ok(&out);
    let metrics = lines(&student.join("metrics.jsonl"));
    assert_eq!(metrics.len(), 3);
    assert!(
        metrics
            .iter()
            .all(|m| m["kd_loss"].as_f64().is_some_and(f64::is_finite))
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_settings_are_one_line_errors_naming_the_key() {
    let dir = std::env::temp_dir().join(format!("r1-cli-sft-bad-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let data = dir.join("train.jsonl");
    arithmetic(&data);
    let s = |p: &Path| p.display().to_string();
    let out = r1(&[
        "sft",
        "--model",
        &s(&model()),
        "--data",
        &s(&data),
        "--out",
        &s(&dir.join("o")),
        "--set",
        "learnin_rate=1e-4",
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("learnin_rate") && err.lines().count() == 1,
        "{err}"
    );
    // A malformed record names the file and the line.
    std::fs::write(
        &data,
        "{\"prompt\": \"a\", \"completion\": \"b\"}\n{\"prompt\": 3\n",
    )
    .expect("w");
    let out = r1(&[
        "sft",
        "--model",
        &s(&model()),
        "--data",
        &s(&data),
        "--out",
        &s(&dir.join("o")),
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("train.jsonl:2"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
