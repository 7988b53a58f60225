//! `r1 serve` driven by the official `openai` Python client (`pip install openai`; CI installs
//! it): greedy chat equals `r1 generate --chat --greedy`, streaming, `n`, logprobs, stop strings,
//! text completions, 16 concurrent requests, every bad request with its status and OpenAI-shaped
//! error body, `load_weights`, and a server that keeps answering afterwards.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("crates/r1-model/tests/fixtures/models")
        .join(name)
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `r1 serve` on a free loopback port and returns it with its base URL.
fn serve(model: &str, extra: &[&str]) -> (Server, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_r1"))
        .args([
            "serve",
            "--model",
            model,
            "--port",
            "0",
            "--served-model-name",
            "tiny",
        ])
        .args(extra)
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("start r1 serve");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    let server = Server(child);
    for line in lines.by_ref() {
        let line = line.expect("read stderr");
        if let Some(rest) = line.split(" on http://").nth(1) {
            let addr = rest.split_whitespace().next().expect("address");
            let addr = addr.trim_end_matches("/v1");
            // Keep draining stderr so the server never blocks on a full pipe.
            std::thread::spawn(move || for _ in lines {});
            return (server, format!("http://{addr}"));
        }
    }
    panic!("r1 serve exited before listening");
}

#[test]
fn the_openai_client_gets_what_it_expects() {
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let has_openai = Command::new(&python)
        .args(["-c", "import openai"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        has_openai,
        "this test drives r1 serve with the `openai` Python package: `pip install openai` \
         (.ci/run installs it)"
    );
    let model = fixture("qwen2-tied");
    let model = model.to_str().expect("path");
    let out = Command::new(env!("CARGO_BIN_EXE_r1"))
        .args([
            "generate",
            "--model",
            model,
            "--chat",
            "What is 2 + 3?",
            "--greedy",
        ])
        .args(["--max-new-tokens", "24", "--json"])
        .output()
        .expect("r1 generate");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let text = v["samples"][0]["text"].as_str().expect("text");
    let dir = std::env::temp_dir().join(format!("r1-serve-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let greedy_file = dir.join("greedy.txt");
    std::fs::write(&greedy_file, text).expect("write");

    let (_server, base) = serve(
        model,
        &[
            "--api-key",
            "sk-test",
            "--max-body-bytes",
            "1048576",
            "--max-batch",
            "8",
        ],
    );
    let other = fixture("llama3-rope-scaling");
    let status = Command::new(&python)
        .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/serve/openai_client.py"))
        .args([
            &format!("{base}/v1"),
            "tiny",
            greedy_file.to_str().expect("p"),
            "sk-test",
        ])
        .args([model, other.to_str().expect("p")])
        .status()
        .expect("run python");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        status.success(),
        "the openai client's checks failed (see its output)"
    );
}

#[test]
fn a_full_queue_answers_429_and_a_disconnect_leaves_the_server_serving() {
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let model = fixture("qwen2-tied");
    let (_server, base) = serve(
        model.to_str().expect("path"),
        &["--max-batch", "1", "--max-queue", "1"],
    );
    let status = Command::new(&python)
        .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/serve/queue_client.py"))
        .args([&format!("{base}/v1"), "tiny"])
        .status()
        .expect("run python");
    assert!(
        status.success(),
        "the queue checks failed (see their output)"
    );
}

#[test]
fn a_bad_model_folder_is_a_clear_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_r1"))
        .args(["serve", "--model", "/nonexistent/model", "--port", "0"])
        .output()
        .expect("r1 serve");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("/nonexistent/model") && err.contains("not a folder"),
        "{err}"
    );
}
