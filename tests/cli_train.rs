//! End-to-end: `r1 train` on a cut-down pipeline with every stage kind (a tiny base built and
//! pretrained here, cold-start SFT, GRPO, rejection sampling, SFT on the sampled data mixed
//! with facts, distillation into a smaller student with a teacher, and evaluation), checked
//! artifact by artifact; a run killed with SIGKILL mid-stage resumes to the same final numbers
//! as an uninterrupted one; `r1 grpo` and `r1 eval --json` keep their contracts.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::Value;

fn r1(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_r1"))
        .env("R1_NO_PROGRESS", "1")
        .env("RAYON_NUM_THREADS", "1")
        .args(args)
        .output()
        .expect("run r1")
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "r1 failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("r1-cli-train-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    dir
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

/// Every stage kind in seconds: 1-layer width-32 models, a few steps each.
const PIPELINE: &str = r#"
name = "mini"
seed = 1

[base]
hidden_size = 32
intermediate_size = 64
num_hidden_layers = 1
num_attention_heads = 2
num_key_value_heads = 1

[datasets.arith]
task = "arithmetic"
operands = 3
train = 48
eval = 6
seed = 5

[datasets.corpus]
corpus = "arith"
documents = 96

[datasets.facts]
corpus = "arith"
documents = 8
facts = 1.0

[rewards.r]
[[rewards.r.reward]]
name = "format"
kind = "format"
answer = "tags"
[[rewards.r.reward]]
name = "accuracy"
kind = "accuracy"
gate = "format"

[eval]
benchmarks = ["arith"]
rewards = "r"
num_samples = 2
max_new_tokens = 24

[[stage]]
name = "pretrain"
kind = "pretrain"
data = "corpus"
per_device_train_batch_size = 16
max_steps = 4
learning_rate = 3e-3
save_steps = 2

[[stage]]
name = "cold_start"
kind = "sft"
data = "arith"
per_device_train_batch_size = 16
max_steps = 3
learning_rate = 3e-3
save_steps = 2

[[stage]]
name = "grpo"
kind = "grpo"
data = "arith"
rewards = "r"
num_generations = 4
per_device_train_batch_size = 8
max_completion_length = 24
loss_type = "dapo"
beta = 0.04
learning_rate = 1e-4
max_steps = 6
save_steps = 2

[[stage]]
name = "rejection"
kind = "sample"
model = "grpo"
data = "arith"
rewards = "r"
num_samples = 2
max_new_tokens = 24

[[stage]]
name = "sft"
kind = "sft"
model = "pretrain"
data = ["rejection", "facts", "arith"]
per_device_train_batch_size = 16
max_steps = 2

[[stage]]
name = "student_base"
kind = "pretrain"
data = "corpus"
architecture = { hidden_size = 16, intermediate_size = 32, num_attention_heads = 2, num_key_value_heads = 1 }
per_device_train_batch_size = 16
max_steps = 2
eval = false

[[stage]]
name = "distill"
kind = "distill"
model = "student_base"
teacher = "sft"
data = ["rejection", "arith"]
kd_alpha = 0.5
per_device_train_batch_size = 16
max_steps = 2

[[stage]]
name = "final_eval"
kind = "eval"
model = "grpo"
num_samples = 3
"#;

fn write_config(dir: &Path) -> PathBuf {
    let path = dir.join("mini.toml");
    std::fs::write(&path, PIPELINE).expect("config");
    path
}

fn run_json(run: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(run.join("run.json")).expect("run.json"))
        .expect("json")
}

fn last_line(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).expect("metrics");
    serde_json::from_str(text.lines().last().expect("a line")).expect("json")
}

#[test]
fn every_stage_runs_and_every_artifact_loads() {
    let dir = tmp("e2e");
    let config = write_config(&dir);
    let run = dir.join("run");
    let out = ok(&r1(&["train", "--config", &s(&config), "--out", &s(&run)]));
    assert!(out.contains("pass@1 after each stage"), "{out}");

    // run.json: the contract.
    let state = run_json(&run);
    let keys: Vec<&str> = state
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, ["config", "stages", "evals"]);
    assert_eq!(state["config"]["name"], "mini");
    let stages = state["stages"].as_array().expect("stages");
    let names: Vec<&str> = stages
        .iter()
        .map(|s| s["name"].as_str().expect("name"))
        .collect();
    assert_eq!(
        names,
        [
            "pretrain",
            "cold_start",
            "grpo",
            "rejection",
            "sft",
            "student_base",
            "distill",
            "final_eval"
        ]
    );
    for st in stages {
        let k: Vec<&str> = st
            .as_object()
            .expect("stage")
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            k,
            ["name", "kind", "status", "started", "finished", "artifacts"]
        );
        assert_eq!(st["status"], "done", "{st}");
        assert!(
            st["started"].as_str().expect("started") <= st["finished"].as_str().expect("finished")
        );
    }
    let evals = state["evals"].as_array().expect("evals");
    for e in evals {
        let k: Vec<&str> = e
            .as_object()
            .expect("eval")
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(k, ["stage", "benchmark", "metric", "value", "k", "n"]);
        let v = e["value"].as_f64().expect("value");
        assert!((0.0..=1.0).contains(&v), "{e}");
        assert!(
            ["pass@1", "cons@k", "pass@k", "format"].contains(&e["metric"].as_str().expect("m"))
        );
        assert_eq!(e["n"], 6);
    }
    // Evaluated after each model-making stage except student_base (eval = false), and by the
    // eval stage with its own k.
    let evaluated: std::collections::BTreeSet<&str> = evals
        .iter()
        .map(|e| e["stage"].as_str().expect("stage"))
        .collect();
    assert_eq!(
        evaluated.into_iter().collect::<Vec<_>>(),
        [
            "cold_start",
            "distill",
            "final_eval",
            "grpo",
            "pretrain",
            "sft"
        ]
    );
    assert!(
        evals
            .iter()
            .any(|e| e["stage"] == "final_eval" && e["k"] == 3)
    );

    // Models load and generate; datasets and metrics are there.
    for stage in [
        "pretrain",
        "cold_start",
        "grpo",
        "sft",
        "student_base",
        "distill",
    ] {
        let model = run.join(stage);
        for f in ["config.json", "model.safetensors", "tokenizer.json"] {
            assert!(model.join(f).exists(), "{stage}/{f}");
        }
        assert!(
            model.join("metrics.jsonl").exists(),
            "{stage}/metrics.jsonl"
        );
        ok(&r1(&[
            "generate",
            "--model",
            &s(&model),
            "--prompt",
            "1+2=",
            "--max-new-tokens",
            "4",
            "--greedy",
        ]));
    }
    let student: Value = serde_json::from_str(
        &std::fs::read_to_string(run.join("distill/config.json")).expect("config"),
    )
    .expect("json");
    assert_eq!(
        student["hidden_size"], 16,
        "the student has its own architecture"
    );
    let teacher: Value = serde_json::from_str(
        &std::fs::read_to_string(run.join("sft/config.json")).expect("config"),
    )
    .expect("json");
    assert_eq!(
        student["vocab_size"], teacher["vocab_size"],
        "one tokenizer for the run"
    );
    assert!(run.join("data/arith/train.jsonl").exists());
    assert!(run.join("data/arith/eval.jsonl").exists());
    assert!(run.join("rejection/data.jsonl").exists());
    assert!(run.join("rejection/stats.txt").exists());
    assert!(run.join("grpo/eval-arith.json").exists());
    let grpo_last = last_line(&run.join("grpo/metrics.jsonl"));
    for k in [
        "reward",
        "kl",
        "learning_rate",
        "completions/mean_length",
        "rewards/accuracy/mean",
    ] {
        assert!(
            grpo_last.get(k).is_some(),
            "grpo metrics lack {k}: {grpo_last}"
        );
    }
    // Report and plots.
    let report = std::fs::read_to_string(run.join("report.md")).expect("report");
    assert!(report.contains("| grpo | grpo | Done |"), "{report}");
    assert!(report.contains("pass@1"));
    for plot in ["evals.svg", "grpo.svg", "pretrain.svg"] {
        let svg = std::fs::read_to_string(run.join("plots").join(plot)).expect("svg");
        assert!(svg.starts_with("<svg"), "{plot}");
    }
    assert!(std::fs::read_to_string(run.join("r1.log")).is_ok_and(|l| !l.is_empty()));
    // A second run into the same folder is refused rather than mixed in.
    let again = r1(&["train", "--config", &s(&config), "--out", &s(&run)]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("--resume"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_run_killed_mid_stage_resumes_to_the_same_numbers() {
    let dir = tmp("kill");
    let config = write_config(&dir);
    // Many GRPO steps (a few ms each) after the first checkpoint at step 2, so that the kill
    // lands inside that stage however fast or loaded the machine is.
    let sets = ["grpo.max_steps=80", "rejection.num_samples=1"];
    let mut args: Vec<String> = vec!["train".into(), "--config".into(), s(&config)];
    for set in sets {
        args.push("--set".into());
        args.push(set.into());
    }
    let whole = dir.join("whole");
    let mut a = args.clone();
    a.extend(["--out".into(), s(&whole)]);
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    ok(&r1(&a));

    // The killed run has two stages at once (the student's pretraining beside the teacher's
    // stages): killing and resuming it must still give the one-at-a-time run's numbers.
    let killed = dir.join("killed");
    let mut child = Command::new(env!("CARGO_BIN_EXE_r1"))
        .env("R1_NO_PROGRESS", "1")
        .env("RAYON_NUM_THREADS", "1")
        .args(&args)
        .args(["--set", "parallel_stages=2"])
        .args(["--out", &s(&killed)])
        .stderr(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    let started = Instant::now();
    let ckpt = killed.join("grpo/checkpoints");
    loop {
        // A finished checkpoint (`checkpoint-N`; one being written is a hidden temporary).
        let has_ckpt = std::fs::read_dir(&ckpt).is_ok_and(|d| {
            d.flatten()
                .any(|e| e.file_name().to_string_lossy().starts_with("checkpoint-"))
        });
        if has_ckpt || started.elapsed() > Duration::from_secs(300) {
            break;
        }
        if child.try_wait().expect("wait").is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().expect("SIGKILL"); // SIGKILL on Unix
    let _ = child.wait();
    let state = run_json(&killed);
    let grpo = &state["stages"][2];
    assert_eq!(grpo["name"], "grpo");
    assert_eq!(
        grpo["status"], "running",
        "killed inside the GRPO stage: {state}"
    );
    assert_eq!(state["stages"][1]["status"], "done");

    let out = ok(&r1(&["train", "--resume", &s(&killed)]));
    assert!(out.contains("done"), "{out}");
    let (a, b) = (run_json(&whole), run_json(&killed));
    assert_eq!(a["evals"], b["evals"], "the same evaluations");
    for stage in ["grpo", "sft", "distill"] {
        let (x, y) = (
            last_line(&whole.join(stage).join("metrics.jsonl")),
            last_line(&killed.join(stage).join("metrics.jsonl")),
        );
        for key in ["loss", "reward", "grad_norm"] {
            assert_eq!(x.get(key), y.get(key), "{stage} {key}");
        }
    }
    let metrics = std::fs::read_to_string(killed.join("grpo/metrics.jsonl")).expect("metrics");
    assert_eq!(
        metrics.lines().count(),
        80,
        "one line per GRPO step, none twice"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn independent_stages_run_side_by_side() {
    let dir = tmp("parallel");
    let config = write_config(&dir);
    let run = dir.join("run");
    ok(&r1(&[
        "train",
        "--config",
        &s(&config),
        "--set",
        "parallel_stages=3",
        "--out",
        &s(&run),
    ]));
    let state = run_json(&run);
    let stage = |name: &str| {
        state["stages"]
            .as_array()
            .and_then(|a| a.iter().find(|s| s["name"] == name))
            .cloned()
            .unwrap_or_else(|| panic!("no stage {name}: {state}"))
    };
    let time = |name: &str, key: &str| stage(name)[key].as_str().expect(key).to_string();
    assert!(
        state["stages"]
            .as_array()
            .expect("stages")
            .iter()
            .all(|s| s["status"] == "done"),
        "{state}"
    );
    // The student's pretraining builds a new model (its `model` defaults to the newest, unread)
    // and reads nothing the teacher makes: it starts with the first stage.
    assert!(
        time("student_base", "started") <= time("pretrain", "finished"),
        "{state}"
    );
    // A stage starts only after every stage it reads is done.
    for (stage, reads) in [
        ("cold_start", vec!["pretrain"]),
        ("sft", vec!["pretrain", "rejection"]),
        ("distill", vec!["student_base", "sft", "rejection"]),
        ("final_eval", vec!["grpo"]),
    ] {
        for r in reads {
            assert!(
                time(r, "finished") <= time(stage, "started"),
                "{stage} started before {r} finished: {state}"
            );
        }
    }
    // Evaluations are listed in config order, whichever stage finished first.
    let order: Vec<&str> = [
        "pretrain",
        "cold_start",
        "grpo",
        "sft",
        "distill",
        "final_eval",
    ]
    .into();
    let seen: Vec<String> = state["evals"]
        .as_array()
        .expect("evals")
        .iter()
        .map(|e| e["stage"].as_str().expect("stage").to_string())
        .fold(Vec::new(), |mut v, s| {
            if v.last() != Some(&s) {
                v.push(s);
            }
            v
        });
    assert_eq!(seen, order, "{state}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_pipeline_files_name_the_line_and_key() {
    let dir = tmp("bad");
    let bad = PIPELINE.replacen("learning_rate = 1e-4", "learning_rat = 1e-4", 1);
    let line = bad
        .lines()
        .position(|l| l.contains("learning_rat ="))
        .expect("line")
        + 1;
    let path = dir.join("bad.toml");
    std::fs::write(&path, &bad).expect("write");
    let out = r1(&[
        "train",
        "--config",
        &s(&path),
        "--out",
        &s(&dir.join("run")),
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("bad.toml:{line}")) && err.contains("learning_rat"),
        "{err}"
    );
    assert!(
        !dir.join("run/run.json").exists(),
        "nothing is started on a bad config"
    );
    let out = r1(&[
        "train",
        "--config",
        &s(&write_config(&dir)),
        "--set",
        "grpo.model=nowhere",
        "--out",
        &s(&dir.join("run2")),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("--set") && err.contains("nowhere"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Every pipeline file shipped under `configs/` (the tiny runs and the recipes for real models)
/// passes the validator; the recipes' model folders and data files are not here, and `--check`
/// says so without failing.
#[test]
fn every_shipped_config_is_valid() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs");
    let mut files = Vec::new();
    for dir in [root.clone(), root.join("recipes")] {
        for e in std::fs::read_dir(&dir).expect("configs/") {
            let p = e.expect("entry").path();
            if p.extension().is_some_and(|x| x == "toml") {
                files.push(p);
            }
        }
    }
    files.sort();
    assert!(files.len() >= 8, "{files:?}");
    for f in &files {
        let out = r1(&["train", "--check", "--config", &s(f)]);
        let text = ok(&out);
        assert!(text.contains(": valid:"), "{}: {text}", f.display());
        if f.starts_with(root.join("recipes")) {
            assert!(
                text.contains("base: ") && text.contains("NOT FOUND"),
                "{text}"
            );
        }
    }
    // A recipe with a misspelt key fails the check, naming the file, line and key.
    let dir = tmp("check");
    let recipe = root.join("recipes/dapo-qwen2.5-math-7b.toml");
    let text = std::fs::read_to_string(&recipe)
        .expect("recipe")
        .replace("epsilon_high = 0.28", "epsilon_hihg = 0.28");
    let line = text
        .lines()
        .position(|l| l.starts_with("epsilon_hihg"))
        .expect("line")
        + 1;
    let bad = dir.join("dapo.toml");
    std::fs::write(&bad, &text).expect("write");
    let out = r1(&["train", "--check", "--config", &s(&bad)]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success()
            && err.contains(&format!("dapo.toml:{line}"))
            && err.contains("epsilon_hihg"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn grpo_and_eval_commands() {
    let dir = tmp("grpo");
    // A model and data from a tiny pipeline run's pretrain stage.
    let config = write_config(&dir);
    let run = dir.join("run");
    let only_pretrain = PIPELINE
        .split("[[stage]]\nname = \"cold_start\"")
        .next()
        .expect("prefix")
        .to_string();
    std::fs::write(&config, only_pretrain).expect("write");
    ok(&r1(&[
        "train",
        "--config",
        &s(&config),
        "--out",
        &s(&run),
        "--set",
        "eval.after_every_stage=false",
    ]));
    let model = run.join("pretrain");
    let data = run.join("data/arith/train.jsonl");
    let rewards = dir.join("rewards.toml");
    std::fs::write(
        &rewards,
        "[[reward]]\nname = \"format\"\nkind = \"format\"\nanswer = \"tags\"\n\
         [[reward]]\nname = \"accuracy\"\nkind = \"accuracy\"\n",
    )
    .expect("rewards");
    let out_dir = dir.join("grpo");
    let out = ok(&r1(&[
        "grpo",
        "--model",
        &s(&model),
        "--data",
        &s(&data),
        "--rewards",
        &s(&rewards),
        "--out",
        &s(&out_dir),
        "--set",
        "num_generations=4",
        "--set",
        "per_device_train_batch_size=8",
        "--set",
        "max_steps=3",
        "--set",
        "max_completion_length=16",
        "--set",
        "save_steps=2",
        "--set",
        "learning_rate=1e-4",
    ]));
    assert!(out.contains("3 steps"), "{out}");
    for f in [
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "metrics.jsonl",
    ] {
        assert!(out_dir.join(f).exists(), "{f}");
    }
    assert!(
        out_dir
            .join("checkpoints/checkpoint-3/trainer_state.json")
            .exists()
    );
    let metrics = std::fs::read_to_string(out_dir.join("metrics.jsonl")).expect("metrics");
    assert_eq!(metrics.lines().count(), 3);
    // Resume at the end: nothing more to do, same folder.
    ok(&r1(&[
        "grpo",
        "--model",
        &s(&model),
        "--data",
        &s(&data),
        "--rewards",
        &s(&rewards),
        "--out",
        &s(&out_dir),
        "--set",
        "num_generations=4",
        "--set",
        "per_device_train_batch_size=8",
        "--set",
        "max_steps=3",
        "--set",
        "max_completion_length=16",
        "--set",
        "save_steps=2",
        "--set",
        "learning_rate=1e-4",
        "--resume",
    ]));
    let bad = r1(&[
        "grpo",
        "--model",
        &s(&model),
        "--data",
        &s(&data),
        "--rewards",
        &s(&rewards),
        "--out",
        &s(&out_dir),
        "--set",
        "num_generation=4",
    ]);
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        !bad.status.success() && err.contains("num_generation") && err.contains("--set"),
        "{err}"
    );

    let bench = run.join("data/arith/eval.jsonl");
    let out = ok(&r1(&[
        "eval",
        "--model",
        &s(&out_dir),
        "--benchmark",
        &s(&bench),
        "--num-samples",
        "4",
        "--max-new-tokens",
        "16",
        "--rewards",
        &s(&rewards),
        "--json",
    ]));
    let v: Value = serde_json::from_str(out.trim()).expect("one JSON object");
    let keys: Vec<&str> = v
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "benchmark",
            "n",
            "k",
            "pass@1",
            "cons@k",
            "pass@k",
            "format",
            "mean_tokens"
        ]
    );
    assert_eq!((v["n"].as_u64(), v["k"].as_u64()), (Some(6), Some(4)));
    assert_eq!(v["benchmark"], "eval");
    for k in ["pass@1", "cons@k", "pass@k", "format"] {
        let x = v[k].as_f64().expect("number");
        assert!((0.0..=1.0).contains(&x), "{k} {x}");
    }
    assert!(v["pass@k"].as_f64() >= v["pass@1"].as_f64());
    let bad = r1(&[
        "eval",
        "--model",
        &s(&out_dir),
        "--benchmark",
        &s(&bench),
        "--top-p",
        "0",
    ]);
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--top-p"));
    let _ = std::fs::remove_dir_all(&dir);
}
