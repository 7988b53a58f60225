//! `r1 sft`'s engine against TRL 1.16's `SFTTrainer` on the same tiny Qwen2 checkpoint and data
//! in file order (`tests/fixtures/make_sft_fixtures.py`): the tokenized sequences and labels,
//! the logged metrics of every optimiser step, and every weight after the run, for padding,
//! gradient accumulation, packing and a conversational dataset.

use std::path::{Path, PathBuf};

use burn::tensor::Device;
use r1_data::ReadOptions;
use r1_distill::{SftConfig, SftRun, SftTokenizer, run_sft};
use r1_model::Tokenizer;
use serde_json::Value;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sft")
}

fn model_dir() -> PathBuf {
    fixtures().join("model")
}

fn load(name: &str) -> Value {
    let path = fixtures().join(format!("{name}.json"));
    let text = std::fs::read_to_string(&path).expect("fixture (run make_sft_fixtures.py)");
    serde_json::from_str(&text).expect("json")
}

fn config_of(fixture: &Value) -> SftConfig {
    let sets: Vec<String> = fixture["config"]
        .as_object()
        .expect("config")
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    SftConfig::load(None, &sets).expect("config")
}

/// Reads a safetensors file of f32 tensors.
fn tensors(path: &Path) -> Vec<(String, Vec<f32>)> {
    let bytes = std::fs::read(path).expect("safetensors");
    let st = safetensors::SafeTensors::deserialize(&bytes).expect("parse");
    let mut out: Vec<(String, Vec<f32>)> = st
        .tensors()
        .into_iter()
        .map(|(name, view)| {
            let data = view.data();
            let values = match view.dtype() {
                safetensors::Dtype::F32 => data
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect(),
                other => panic!("{name}: {other:?}"),
            };
            (name, values)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn check_tokenization(name: &str) {
    let fixture = load(name);
    let config = config_of(&fixture);
    let tokenizer = Tokenizer::from_folder(model_dir()).expect("tokenizer");
    let data = r1_data::read(
        &fixtures().join(fixture["data"].as_str().expect("data")),
        &ReadOptions::default(),
    )
    .expect("data");
    let tok = SftTokenizer::new(&tokenizer, &config);
    for (i, (sample, want)) in data
        .samples
        .iter()
        .zip(fixture["tokenized"].as_array().expect("tokenized"))
        .enumerate()
    {
        let mut e = tok.example(sample).expect("example");
        r1_distill::tokenize::truncate(&mut e, config.max_length.expect("max_length"), false);
        let ids: Vec<u32> = want["input_ids"]
            .as_array()
            .expect("ids")
            .iter()
            .map(|v| v.as_u64().expect("id") as u32)
            .collect();
        let labels: Vec<bool> = want["labels"]
            .as_array()
            .expect("labels")
            .iter()
            .map(|v| v.as_i64() != Some(-100))
            .collect();
        assert_eq!(e.ids, ids, "{name}: row {i} input ids");
        assert_eq!(e.labels, labels, "{name}: row {i} labels");
    }
}

/// Runs `name`'s config through `run_sft` and compares every step's metrics and the weights.
fn check_run(name: &str) {
    let fixture = load(name);
    let config = config_of(&fixture);
    let out = std::env::temp_dir().join(format!("r1-sft-parity-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let run = SftRun {
        model: model_dir(),
        data: fixtures().join(fixture["data"].as_str().expect("data")),
        out: out.clone(),
        config,
        resume: false,
        device: Device::default(),
        teacher: None,
        read: ReadOptions::default(),
    };
    let summary = run_sft(&run).expect("sft");
    let want = fixture["steps"].as_array().expect("steps");
    assert_eq!(summary.steps as usize, want.len(), "{name}: steps");
    let text = std::fs::read_to_string(out.join("metrics.jsonl")).expect("metrics");
    let got: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("line"))
        .filter(|v: &Value| v.get("loss").is_some())
        .collect();
    assert_eq!(got.len(), want.len(), "{name}: one metrics line per step");
    for (g, w) in got.iter().zip(want) {
        let step = w["step"].as_u64().expect("step");
        assert_eq!(g["step"].as_u64(), Some(step));
        for (key, tol) in [
            ("loss", 5e-4),
            ("grad_norm", 1e-3),
            ("learning_rate", 1e-9),
            ("num_tokens", 0.0),
            ("mean_token_accuracy", 1e-6),
            ("entropy", 2e-3),
        ] {
            let (a, b) = (
                g[key].as_f64().expect("r1 metric"),
                w[key].as_f64().expect("TRL metric"),
            );
            let rel = (a - b).abs() / b.abs().max(1.0);
            assert!(
                rel <= tol,
                "{name} step {step} {key}: r1 {a} vs TRL {b} (rel {rel:.2e} > {tol:.0e})"
            );
        }
    }
    // Every weight after the run, measured against how far the run moved it: AdamW's first
    // steps move each weight by about the learning rate whatever the size of its gradient, so
    // weights whose gradients are near `adam_epsilon` amplify float rounding; the distance
    // between the two runs is compared with the distance travelled.
    let mine = tensors(&out.join("model.safetensors"));
    let theirs: std::collections::HashMap<_, _> =
        tensors(&fixtures().join(format!("{name}.safetensors")))
            .into_iter()
            .collect();
    let start: std::collections::HashMap<_, _> = tensors(&model_dir().join("model.safetensors"))
        .into_iter()
        .collect();
    let (mut diff2, mut moved2) = (0f64, 0f64);
    for (n, v) in &mine {
        let (Some(w), Some(s0)) = (theirs.get(n), start.get(n)) else {
            panic!("{name}: TRL has no {n}")
        };
        assert_eq!(v.len(), w.len(), "{n}");
        let d: f64 = v.iter().zip(w).map(|(a, b)| ((a - b) as f64).powi(2)).sum();
        let m: f64 = w
            .iter()
            .zip(s0)
            .map(|(a, b)| ((a - b) as f64).powi(2))
            .sum();
        let rel = (d / m.max(1e-30)).sqrt();
        assert!(
            rel < 0.02,
            "{name}: {n} differs from TRL by {rel:.2e} of its update"
        );
        diff2 += d;
        moved2 += m;
    }
    let rel = (diff2 / moved2).sqrt();
    eprintln!("{name}: weights differ from TRL's by {rel:.2e} of the update");
    assert!(
        rel < 5e-3,
        "{name}: weights differ by {rel:.2e} of the update"
    );
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn tokenization_matches_trl_for_text_and_chat() {
    check_tokenization("pad");
    check_tokenization("chat");
}

#[test]
fn padded_run_matches_trl_step_by_step() {
    check_run("pad");
}

#[test]
fn gradient_accumulation_matches_trl_and_one_big_batch() {
    check_run("ga2");
    check_run("big");
}

#[test]
fn packed_run_matches_trl() {
    check_run("pack");
}

#[test]
fn conversational_run_matches_trl() {
    check_run("chat");
}
