//! End-to-end tests of the `r1` command line against the r1-model parity fixtures: the JSON
//! contracts of `r1 generate` and `r1 logprobs`, and one-line errors with a non-zero exit.

use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::Value;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("crates/r1-model/tests/fixtures/models")
        .join(name)
}

fn reference(name: &str) -> Value {
    let text = std::fs::read_to_string(fixture(name).join("reference.json")).expect("reference");
    serde_json::from_str(&text).expect("json")
}

fn r1(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_r1"))
        .args(args)
        .output()
        .expect("run r1")
}

fn json_stdout(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "r1 failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("stdout is one JSON object")
}

fn join(v: &Value) -> String {
    v.as_array()
        .expect("list")
        .iter()
        .map(|x| x.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

#[test]
fn generate_json_greedy_matches_transformers() {
    for name in ["qwen2-bias-untied", "llama3-rope-scaling"] {
        let r = reference(name);
        let g = &r["greedy"];
        let model = fixture(name);
        let n = g["max_new_tokens"].to_string();
        let out = r1(&[
            "generate",
            "--model",
            model.to_str().expect("path"),
            "--prompt-ids",
            &join(&g["prompt_ids"]),
            "--max-new-tokens",
            &n,
            "--greedy",
            "--ignore-eos",
            "--json",
        ]);
        let v = json_stdout(&out);
        let samples = v["samples"].as_array().expect("samples");
        assert_eq!(samples.len(), 1);
        let s = &samples[0];
        assert_eq!(s["prompt_ids"], g["prompt_ids"]);
        assert_eq!(s["completion_ids"], g["completion_ids"]);
        assert_eq!(s["finish_reason"], "length");
        assert_eq!(
            s["completion_logprobs"].as_array().expect("list").len(),
            g["completion_ids"].as_array().expect("list").len()
        );
        assert!(s["text"].is_string());
    }
}

#[test]
fn generate_json_samples_are_seeded_and_stop_on_eos() {
    let model = fixture("qwen2-tied");
    let run = |seed: &str| {
        json_stdout(&r1(&[
            "generate",
            "--model",
            model.to_str().expect("path"),
            "--chat",
            "What is 2 + 3?",
            "--num-samples",
            "4",
            "--temperature",
            "0.8",
            "--top-p",
            "0.95",
            "--top-k",
            "50",
            "--max-new-tokens",
            "16",
            "--seed",
            seed,
            "--json",
        ]))
    };
    let a = run("7");
    assert_eq!(a, run("7"), "same seed, same samples");
    assert_ne!(
        a["samples"],
        run("8")["samples"],
        "another seed, other samples"
    );
    let eos: u64 = reference("qwen2-tied")["greedy_eos"]["eos_token_ids"][0]
        .as_u64()
        .expect("eos");
    for s in a["samples"].as_array().expect("samples") {
        let ids = s["completion_ids"].as_array().expect("ids");
        let stopped = ids.last().and_then(Value::as_u64) == Some(eos);
        let reason = if stopped { "stop" } else { "length" };
        assert_eq!(s["finish_reason"], reason);
        assert!(stopped || ids.len() == 16);
        assert!(
            ids[..ids.len().saturating_sub(1)]
                .iter()
                .all(|t| t.as_u64() != Some(eos))
        );
        for lp in s["completion_logprobs"].as_array().expect("logprobs") {
            assert!(lp.as_f64().expect("number") <= 0.0);
        }
    }
}

#[test]
fn logprobs_json_matches_transformers() {
    for name in ["qwen3-qknorm-sharded", "qwen2-tied"] {
        let r = reference(name);
        let l = &r["logprobs"];
        let model = fixture(name);
        for (t, want) in l["by_temperature"].as_object().expect("map") {
            let v = json_stdout(&r1(&[
                "logprobs",
                "--model",
                model.to_str().expect("path"),
                "--prompt-ids",
                &join(&l["prompt_ids"]),
                "--continuation-ids",
                &join(&l["continuation_ids"]),
                "--temperature",
                t,
                "--json",
            ]));
            let got = v["logprobs"].as_array().expect("logprobs");
            let want = want.as_array().expect("list");
            assert_eq!(got.len(), want.len());
            for (a, b) in got.iter().zip(want) {
                let (a, b) = (a.as_f64().expect("n"), b.as_f64().expect("n"));
                assert!((a - b).abs() <= 1e-4, "{name} T={t}: {a} vs {b}");
            }
        }
    }
}

fn assert_one_line_error(out: &Output, needle: &str) {
    assert!(!out.status.success(), "expected a failure");
    let err = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one line on stderr, got: {err}");
    assert!(lines[0].contains(needle), "{needle:?} not in {err:?}");
    assert!(out.stdout.is_empty());
}

#[test]
fn bad_input_is_one_clear_line() {
    let model = fixture("qwen2-tied");
    let m = model.to_str().expect("path");
    assert_one_line_error(
        &r1(&[
            "logprobs",
            "--model",
            m,
            "--prompt-ids",
            "1,x",
            "--continuation-ids",
            "2",
        ]),
        "--prompt-ids",
    );
    assert_one_line_error(
        &r1(&[
            "generate",
            "--model",
            "/no/such/folder",
            "--prompt-ids",
            "1",
        ]),
        "/no/such/folder",
    );
    assert_one_line_error(
        &r1(&["generate", "--model", m, "--prompt-ids", "1,100000"]),
        "out of range",
    );
    assert_one_line_error(
        &r1(&[
            "generate",
            "--model",
            m,
            "--prompt-ids",
            "1",
            "--device",
            "nope",
        ]),
        "unknown device",
    );
    assert_one_line_error(
        &r1(&[
            "generate",
            "--model",
            m,
            "--prompt-ids",
            "1",
            "--top-p",
            "1.5",
        ]),
        "top_p",
    );

    // A config that asks for something r1 does not implement names the key.
    let dir = std::env::temp_dir().join(format!("r1-cli-bad-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp");
    for f in ["model.safetensors", "tokenizer.json"] {
        std::fs::copy(model.join(f), dir.join(f)).expect("copy");
    }
    let mut config: Value =
        serde_json::from_str(&std::fs::read_to_string(model.join("config.json")).expect("read"))
            .expect("json");
    config["use_sliding_window"] = Value::Bool(true);
    std::fs::write(dir.join("config.json"), config.to_string()).expect("write");
    let d = dir.to_str().expect("path");
    assert_one_line_error(
        &r1(&["generate", "--model", d, "--prompt-ids", "1"]),
        "use_sliding_window",
    );
    config["use_sliding_window"] = Value::Bool(false);
    config["model_type"] = Value::String("mistral".into());
    std::fs::write(dir.join("config.json"), config.to_string()).expect("write");
    assert_one_line_error(
        &r1(&["generate", "--model", d, "--prompt-ids", "1"]),
        "model_type",
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn reward_scores_jsonl_with_a_toml_set() {
    let dir = std::env::temp_dir().join(format!("r1-cli-reward-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp");
    let config = dir.join("rewards.toml");
    std::fs::write(
        &config,
        r#"
[[reward]]
name = "format"
kind = "format"
weight = 0.5

[[reward]]
name = "accuracy"
kind = "accuracy"
weight = 1.0
gate = "format"

[[reward]]
name = "language"
kind = "language"
target = "en"
weight = 0.1
"#,
    )
    .expect("write config");
    let input = dir.join("in.jsonl");
    let lines = [
        r#"{"prompt": "What is 2+3?", "completion": "<think>add two and three</think> \\boxed{5}", "answer": "5", "id": 7}"#,
        r#"{"prompt": "What is 1/2?", "completion": "<think>half</think> \\boxed{0.5}", "answer": "\\frac{1}{2}"}"#,
        r#"{"prompt": "x", "completion": "\\boxed{5}", "answer": 5}"#,
        r#"{"prompt": "x", "completion": "<think>1 + 1</think> <answer>2</answer>"}"#,
    ];
    std::fs::write(&input, lines.join("\n") + "\n").expect("write input");
    let output = dir.join("out.jsonl");
    let out = r1(&[
        "reward",
        "--config",
        config.to_str().expect("path"),
        "--input",
        input.to_str().expect("path"),
        "--output",
        output.to_str().expect("path"),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let scored: Vec<Value> = std::fs::read_to_string(&output)
        .expect("output")
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(scored.len(), 4);
    assert_eq!(scored[0]["id"], 7, "input fields are kept");
    assert_eq!(scored[0]["rewards"]["format"], 1.0);
    assert_eq!(scored[0]["rewards"]["accuracy"], 1.0);
    assert_eq!(scored[0]["rewards"]["language"], 1.0);
    assert!((scored[0]["total"].as_f64().expect("total") - 1.6).abs() < 1e-6);
    assert_eq!(scored[1]["rewards"]["accuracy"], 1.0);
    assert_eq!(scored[2]["rewards"]["accuracy"], 0.0, "gated by the format");
    assert_eq!(
        scored[3]["rewards"]["accuracy"],
        Value::Null,
        "no reference answer"
    );
    assert_eq!(
        scored[3]["rewards"]["language"],
        Value::Null,
        "no words in the reasoning"
    );

    // A malformed line is an error naming its line number.
    std::fs::write(&input, format!("{}\n{{\"completion\": 3}}\n", lines[0])).expect("write");
    let out = r1(&[
        "reward",
        "--config",
        config.to_str().expect("path"),
        "--input",
        input.to_str().expect("path"),
    ]);
    assert_one_line_error(&out, "in.jsonl:2");
    std::fs::write(&input, "{not json\n").expect("write");
    let out = r1(&[
        "reward",
        "--config",
        config.to_str().expect("path"),
        "--input",
        input.to_str().expect("path"),
    ]);
    assert_one_line_error(&out, "in.jsonl:1");
    // So is a bad config, naming the file and key.
    std::fs::write(
        &config,
        "[[reward]]\nname = \"a\"\nkind = \"accuracy\"\nweight = \"heavy\"\n",
    )
    .expect("write");
    let out = r1(&[
        "reward",
        "--config",
        config.to_str().expect("path"),
        "--input",
        input.to_str().expect("path"),
    ]);
    assert_one_line_error(&out, "`weight`");
    let _ = std::fs::remove_dir_all(&dir);
}
