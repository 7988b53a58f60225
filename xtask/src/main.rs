//! `cargo xtask <command>`: the project's automation, in Rust so that it runs wherever cargo does.
//!
//! - `ci`: what CI runs, cheapest first: `cargo fmt --check`, `cargo clippy -D warnings`, tests.
//! - `fixtures`: rewrites the transformers parity fixtures (needs Python with torch and
//!   transformers).
//! - `plugins`: builds the reward plugins under `plugins/`.
//! - `bench generate`: prefill and decode throughput, r1 beside transformers; `bench rewards`:
//!   completions scored per second. Both write `docs/benchmarks.md`.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

const USAGE: &str = "usage: cargo xtask <command>

commands:
  ci                         fmt --check, clippy -D warnings, then every test
  fixtures                   regenerate the parity fixtures (python + torch + transformers + math-verify)
  plugins [--release]        build the reward plugins under plugins/ (shared libraries in target/)
  bench generate [--quick]   prefill/decode tokens/s, r1 vs transformers -> docs/benchmarks.md
  bench rewards              completions scored per second (maths, format, code) -> docs/benchmarks.md
  bench grpo                 seconds per GRPO step, r1 vs TRL, tiny config -> docs/benchmarks.md";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

fn run(step: &str, cmd: &mut Command) -> Result<()> {
    eprintln!("\n==> {step}: {cmd:?}");
    let started = std::time::Instant::now();
    let status = cmd
        .current_dir(root())
        .status()
        .with_context(|| format!("{step}: could not start {cmd:?}"))?;
    eprintln!("<== {step}: {:.1} s", started.elapsed().as_secs_f64());
    if !status.success() {
        bail!("{step} failed ({status})");
    }
    Ok(())
}

fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

fn python() -> String {
    std::env::var("PYTHON").unwrap_or_else(|_| "python3".into())
}

fn ci() -> Result<()> {
    run("fmt", cargo().args(["fmt", "--all", "--", "--check"]))?;
    // clippy and the tests share the dev profile, so dependencies are built once for both.
    run(
        "clippy",
        cargo().args([
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ]),
    )?;
    run(
        "test",
        cargo().args(["test", "--workspace", "--no-fail-fast"]),
    )?;
    Ok(())
}

fn fixtures() -> Result<()> {
    run(
        "model fixtures",
        Command::new(python()).arg("crates/r1-model/tests/fixtures/make_fixtures.py"),
    )?;
    run(
        "maths grading cases",
        Command::new(python()).arg("crates/r1-rewards/tests/fixtures/make_math_cases.py"),
    )
}

/// The plugin crates: every folder under `plugins/` with a Cargo.toml.
fn plugin_packages() -> Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(root().join("plugins")).context("plugins/")? {
        let manifest = entry?.path().join("Cargo.toml");
        if let Ok(text) = std::fs::read_to_string(&manifest)
            && let Some(name) = text
                .lines()
                .find_map(|l| l.strip_prefix("name = "))
                .map(|n| n.trim_matches('"').to_string())
        {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

fn plugins(args: &[String]) -> Result<()> {
    let release = args.iter().any(|a| a == "--release");
    let mut cmd = cargo();
    cmd.arg("build");
    if release {
        cmd.arg("--release");
    }
    for p in plugin_packages()? {
        cmd.args(["-p", &p]);
    }
    run("plugins", &mut cmd)?;
    let dir = root()
        .join("target")
        .join(if release { "release" } else { "debug" });
    eprintln!("plugins are in {}", dir.display());
    Ok(())
}

fn bench(args: &[String]) -> Result<()> {
    match args.first().map(String::as_str) {
        Some("generate") => {
            let mut cmd = cargo();
            cmd.args([
                "run",
                "--release",
                "--quiet",
                "-p",
                "r1-model",
                "--example",
                "bench_generate",
                "--",
            ]);
            cmd.args(&args[1..]);
            run("bench generate", &mut cmd)
        }
        Some("rewards") => run(
            "bench rewards",
            cargo().args([
                "run",
                "--release",
                "--quiet",
                "-p",
                "r1-rewards",
                "--example",
                "bench_rewards",
            ]),
        ),
        Some("grpo") => run(
            "bench grpo",
            cargo().args([
                "run",
                "--release",
                "--quiet",
                "-p",
                "r1-grpo",
                "--example",
                "bench_grpo",
            ]),
        ),
        Some(other) => bail!("unknown benchmark `{other}`\n\n{USAGE}"),
        None => bail!("which benchmark?\n\n{USAGE}"),
    }
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("ci") => ci(),
        Some("fixtures") => fixtures(),
        Some("plugins") => plugins(&args[1..]),
        Some("bench") => bench(&args[1..]),
        Some("-h" | "--help" | "help") | None => {
            println!("{USAGE}");
            Ok(())
        }
        Some(other) => bail!("unknown command `{other}`\n\n{USAGE}"),
    }
}
