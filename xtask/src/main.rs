//! `cargo xtask <command>`: the project's automation, in Rust so that it runs wherever cargo does.
//!
//! - `train`: builds `r1` in release and runs `r1 train` with the same arguments (the built-in
//!   tiny pipeline without `--config`); `--dev` builds the dev profile, `--smoke` runs a
//!   seconds-long cut of `configs/tiny.toml`.
//! - `ci`: what CI runs, cheapest first: `cargo fmt --check`, `cargo clippy -D warnings`, every
//!   test, with `r1-grpo/wgpu` so that the CubeCL kernel tests run (on Mesa's software Vulkan
//!   where there is no GPU), then `train --smoke` so that the README's first command is run.
//! - `fixtures`: rewrites the transformers parity fixtures (needs Python with torch and
//!   transformers).
//! - `plugins`: builds the reward plugins under `plugins/`.
//! - `bench generate`: prefill and decode throughput, r1 beside transformers; `bench rewards`:
//!   completions scored per second; `bench grpo`: seconds per GRPO step beside TRL;
//!   `bench logprobs`: time and peak memory of the three log-prob implementations. All write
//!   `docs/benchmarks.md`.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

const USAGE: &str = "usage: cargo xtask <command>

commands:
  train [r1 train args]      build r1 in release and run `r1 train` (default: configs/tiny.toml);
                             --dev uses the dev profile, --smoke a seconds-long cut of tiny.toml
  ci                         fmt --check, clippy -D warnings, every test (kernel tests on wgpu
                             included), then `train --smoke`: the README's first command, quick
  fixtures                   regenerate the parity fixtures (python + torch + transformers + math-verify)
  plugins [--release]        build the reward plugins under plugins/ (shared libraries in target/)
  bench generate [--quick]   prefill/decode tokens/s, r1 vs transformers -> docs/benchmarks.md
  bench rewards              completions scored per second (maths, format, code) -> docs/benchmarks.md
  bench grpo                 seconds per GRPO step, r1 vs TRL, tiny config -> docs/benchmarks.md
  bench sft                  SFT tokens/s, r1 vs transformers' Trainer, and the fused cross-entropy's
                             peak memory against the plain one at vocab 151936 -> docs/benchmarks.md
  bench logprobs [--quick]   log-probs forward+backward, reference vs chunked vs fused: time and
                             peak memory at vocab 151936, seq 2048, batch up to 8 -> docs/benchmarks.md";

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
    // clippy and the tests share the dev profile and one feature set, so dependencies are built
    // once for both. `r1-grpo/wgpu` compiles Burn's wgpu backend in beside flex, so clippy sees
    // the CubeCL kernels and the kernel tests (`fused_logprobs`) run them on wgpu: over Mesa's
    // software Vulkan (lavapipe) where there is no GPU. `BURN_DEVICE=flex` keeps every other
    // test on the CPU backend (`Device::default()` would prefer wgpu).
    let skip = std::env::var("R1_KERNEL_TESTS").as_deref() == Ok("skip");
    let features: &[&str] = if skip {
        eprintln!("\n==> kernel tests: SKIPPED (R1_KERNEL_TESTS=skip): no wgpu in this build");
        &[]
    } else {
        &["--features", "r1-grpo/wgpu"]
    };
    let mut clippy = cargo();
    clippy
        .args(["clippy", "--workspace", "--all-targets"])
        .args(features)
        .args(["--", "-D", "warnings"]);
    run("clippy", &mut clippy)?;
    let mut test = cargo();
    test.args(["test", "--workspace", "--no-fail-fast"])
        .args(features)
        .env("BURN_DEVICE", "flex");
    if !skip {
        wgpu_env(&mut test)?;
    }
    run_summarised("test", &mut test)?;
    // The README's first command, cut to seconds, on the dev build the tests just made (same
    // features, so nothing is rebuilt).
    let out = root().join("target/ci-train");
    let _ = std::fs::remove_dir_all(&out);
    let mut args = vec![
        "--smoke".to_string(),
        "--out".to_string(),
        out.display().to_string(),
    ];
    if !skip {
        args.insert(0, "--cargo-features=r1-grpo/wgpu".to_string());
    }
    train(&args)
}

/// Lines of a test run worth repeating at its end: which tests failed and how (a panic message,
/// a crashed test binary, a stack overflow), so that the tail of a long CI log names them.
fn is_failure_line(line: &str) -> bool {
    let l = line.trim_start();
    (l.starts_with("test ") && l.ends_with("FAILED"))
        || l.starts_with("---- ")
        || line.contains("panicked at")
        || l.starts_with("error: test failed")
        || l.starts_with("error:")
        || l.starts_with("Caused by")
        || line.contains("process didn't exit successfully")
        || line.contains("has overflowed its stack")
        || line.contains("(signal:")
        || l.starts_with("assertion")
        || l.starts_with("left:")
        || l.starts_with("right:")
        || l.starts_with("failures:")
}

/// Like [`run`], but the output is forwarded line by line and, when the step fails, the lines
/// that name failures are printed again at the end (at most 80 of them).
fn run_summarised(step: &str, cmd: &mut Command) -> Result<()> {
    use std::io::{BufRead, BufReader, Write};
    use std::process::Stdio;
    use std::sync::{Arc, Mutex};
    eprintln!("\n==> {step}: {cmd:?}");
    let started = std::time::Instant::now();
    let mut child = cmd
        .current_dir(root())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("{step}: could not start {cmd:?}"))?;
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let mut pumps = Vec::new();
    let stdout = child
        .stdout
        .take()
        .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>);
    let stderr = child
        .stderr
        .take()
        .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>);
    for (stream, to_stderr) in [(stdout, false), (stderr, true)] {
        let Some(stream) = stream else { continue };
        let seen = Arc::clone(&seen);
        pumps.push(std::thread::spawn(move || {
            // A panic's message is on the lines after `panicked at`.
            let mut message_lines: usize = 0;
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                if to_stderr {
                    let _ = writeln!(std::io::stderr(), "{line}");
                } else {
                    let _ = writeln!(std::io::stdout(), "{line}");
                }
                // The misbehaving test plugin panics on purpose (its test expects it).
                let expected = line.contains("plugins/misbehave/");
                let keep = !expected && (is_failure_line(&line) || message_lines > 0);
                message_lines = if !expected && line.contains("panicked at") {
                    2
                } else {
                    message_lines.saturating_sub(1)
                };
                if keep && let Ok(mut s) = seen.lock() {
                    s.push(line);
                }
            }
        }));
    }
    let status = child
        .wait()
        .with_context(|| format!("{step}: waiting for {cmd:?}"))?;
    for p in pumps {
        let _ = p.join();
    }
    eprintln!("<== {step}: {:.1} s", started.elapsed().as_secs_f64());
    if !status.success() {
        let seen = seen.lock().map(|s| s.clone()).unwrap_or_default();
        eprintln!("\n==> {step} FAILED ({status}); the lines that name failures:");
        for line in seen.iter().take(80) {
            eprintln!("  {line}");
        }
        if seen.len() > 80 {
            eprintln!("  … and {} more", seen.len() - 80);
        }
        bail!("{step} failed ({status})");
    }
    Ok(())
}

/// `--set` overrides that cut `configs/tiny.toml` to a run of seconds (every stage, every
/// artifact, small numbers).
const SMOKE: &[&str] = &[
    "datasets.arith.train=64",
    "datasets.arith.eval=8",
    "datasets.cold.train=16",
    "datasets.corpus.documents=128",
    "datasets.facts.documents=16",
    "eval.num_samples=2",
    "pretrain.max_steps=4",
    "pretrain.per_device_train_batch_size=16",
    "pretrain.save_steps=2",
    "pretrain.warmup_steps=1",
    "cold_start.max_steps=3",
    "cold_start.warmup_steps=1",
    "grpo.max_steps=2",
    "grpo.per_device_train_batch_size=16",
    "grpo.warmup_steps=1",
    "grpo.save_steps=1",
    "rejection.num_samples=2",
    "rejection.keep=1",
    "sft.max_steps=3",
    "sft.warmup_steps=1",
    "grpo_all.max_steps=2",
    "grpo_all.per_device_train_batch_size=16",
    "grpo_all.warmup_steps=1",
    "grpo_all.save_steps=1",
    "student_base.max_steps=3",
    "student_base.per_device_train_batch_size=16",
    "student_base.warmup_steps=1",
    "student_cold_start.max_steps=2",
    "student_cold_start.warmup_steps=1",
    "distill.max_steps=2",
    "distill.warmup_steps=1",
    "distill.data=[\"rejection\", \"facts\"]",
];

/// `cargo xtask train [--dev] [--smoke] [r1 train arguments]`.
fn train(args: &[String]) -> Result<()> {
    let smoke = args.iter().any(|a| a == "--smoke");
    let dev = smoke || args.iter().any(|a| a == "--dev");
    let features: Vec<&str> = args
        .iter()
        .filter_map(|a| a.strip_prefix("--cargo-features="))
        .collect();
    let rest: Vec<&String> = args
        .iter()
        .filter(|a| *a != "--dev" && *a != "--smoke" && !a.starts_with("--cargo-features="))
        .collect();
    let mut cmd = cargo();
    cmd.args(["run", "--quiet", "-p", "r1", "--bin", "r1"]);
    for f in features {
        cmd.args(["--features", f]);
    }
    if !dev {
        cmd.arg("--release");
    }
    cmd.args(["--", "train"]).args(&rest);
    if smoke {
        if !rest.iter().any(|a| *a == "--config") {
            cmd.arg("--config").arg(root().join("configs/tiny.toml"));
        }
        for s in SMOKE {
            cmd.arg("--set").arg(s);
        }
    }
    eprintln!("\n==> train: {cmd:?}");
    let started = std::time::Instant::now();
    // The user's working folder, so that relative --config and --out paths mean what they say.
    let status = cmd.status().context("train: could not start cargo")?;
    eprintln!("<== train: {:.1} s", started.elapsed().as_secs_f64());
    if !status.success() {
        bail!("train failed ({status})");
    }
    Ok(())
}

/// Mesa's lavapipe (software Vulkan) driver manifest, installed by `mesa-vulkan-drivers`.
const LAVAPIPE_ICD: &str = "/usr/share/vulkan/icd.d/lvp_icd.x86_64.json";

/// Environment for wgpu on a machine without a GPU: lavapipe's manifest (when installed and no
/// other is chosen) and a private runtime directory.
fn wgpu_env(cmd: &mut Command) -> Result<()> {
    if Path::new(LAVAPIPE_ICD).exists() && std::env::var_os("VK_ICD_FILENAMES").is_none() {
        cmd.env("VK_ICD_FILENAMES", LAVAPIPE_ICD);
    }
    if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
        let dir = root().join("target/xdg-runtime");
        std::fs::create_dir_all(&dir)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
        }
        cmd.env("XDG_RUNTIME_DIR", dir);
    }
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
        Some("sft") => run(
            "bench sft",
            cargo().args([
                "run",
                "--release",
                "--quiet",
                "-p",
                "r1-distill",
                "--example",
                "bench_sft",
            ]),
        ),
        Some("logprobs") => bench_logprobs(args.iter().any(|a| a == "--quick")),
        Some(other) => bail!("unknown benchmark `{other}`\n\n{USAGE}"),
        None => bail!("which benchmark?\n\n{USAGE}"),
    }
}

/// `MemAvailable` from `/proc/meminfo`, in bytes.
fn mem_available() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kb: u64 = info
        .lines()
        .find_map(|l| l.strip_prefix("MemAvailable:"))?
        .trim()
        .trim_end_matches(" kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb * 1024)
}

/// Replaces the text between `<!-- bench NAME: start -->` and `<!-- bench NAME: end -->` in
/// `docs/benchmarks.md` (appending the markers if they are missing).
fn write_bench_section(name: &str, body: &str) -> Result<()> {
    let path = root().join("docs/benchmarks.md");
    let doc = std::fs::read_to_string(&path).with_context(|| format!("{}", path.display()))?;
    let (start, end) = (
        format!("<!-- bench {name}: start -->"),
        format!("<!-- bench {name}: end -->"),
    );
    let section = format!("{start}\n{body}{end}");
    let new = match (doc.find(&start), doc.find(&end)) {
        (Some(a), Some(b)) if a < b => format!("{}{section}{}", &doc[..a], &doc[b + end.len()..]),
        _ => format!("{}\n{section}\n", doc.trim_end()),
    };
    std::fs::write(&path, new).with_context(|| format!("{}", path.display()))?;
    eprintln!("wrote the `{name}` section of {}", path.display());
    Ok(())
}

fn gib(bytes: f64) -> f64 {
    bytes / (1u64 << 30) as f64
}

/// Runs `bench_logprobs` once per implementation and batch, each in a fresh process so that
/// peak memory does not mix; skips a batch whose peak, extrapolated from batch 1, would not fit.
fn bench_logprobs(quick: bool) -> Result<()> {
    // The quick shape keeps several chunks per batch (4 Mi logits, 128 rows) so that chunked
    // and fused differ from the reference; the full shape uses the default 64 Mi (441 rows).
    let (seq, vocab, hidden, chunk, batches): (usize, usize, usize, usize, &[usize]) = if quick {
        (256, 32_768, 256, 1 << 22, &[1, 4])
    } else {
        (2048, 151_936, 896, 1 << 26, &[1, 2, 4, 8])
    };
    run(
        "build bench_logprobs",
        cargo().args([
            "build",
            "--release",
            "--quiet",
            "-p",
            "r1-grpo",
            "--example",
            "bench_logprobs",
        ]),
    )?;
    let exe = root().join("target/release/examples/bench_logprobs");
    let available = mem_available().unwrap_or(u64::MAX) as f64;
    let threads = std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| {
        std::thread::available_parallelism()
            .map(|n| n.get().to_string())
            .unwrap_or_else(|_| "?".into())
    });
    let mut rows = Vec::new();
    for method in ["reference", "chunked", "fused"] {
        let mut per_batch: Option<f64> = None; // peak above setup, per batch row
        for &b in batches {
            if let Some(slope) = per_batch {
                let need = slope * b as f64;
                if need > 0.8 * available {
                    rows.push(format!(
                        "| {method} | {b} | - | - | needs about {:.1} GiB more (extrapolated); {:.1} GiB available | |",
                        gib(need),
                        gib(available)
                    ));
                    continue;
                }
            }
            let mut cmd = Command::new(&exe);
            cmd.args(["--impl", method])
                .args(["--batch", &b.to_string(), "--seq", &seq.to_string()])
                .args([
                    "--vocab",
                    &vocab.to_string(),
                    "--hidden",
                    &hidden.to_string(),
                ])
                .args(["--chunk-elements", &chunk.to_string()]);
            eprintln!("\n==> {cmd:?}");
            let out = cmd
                .output()
                .with_context(|| format!("could not start {}", exe.display()))?;
            if !out.status.success() {
                rows.push(format!(
                    "| {method} | {b} | - | - | failed: {} | |",
                    out.status
                ));
                continue;
            }
            let line = String::from_utf8_lossy(&out.stdout);
            let v: serde_json::Value = serde_json::from_str(line.trim())
                .with_context(|| format!("bench_logprobs printed {line:?}"))?;
            let f = |k: &str| v[k].as_f64().unwrap_or(f64::NAN);
            let over = f("peak_rss_bytes") - f("rss_setup_bytes");
            if per_batch.is_none() {
                per_batch = Some(over / b as f64);
            }
            eprintln!("<== {v}");
            rows.push(format!(
                "| {method} | {b} | {:.2} | {:.2} | {:.2} | {:.2} |",
                f("forward_s"),
                f("backward_s"),
                gib(f("peak_rss_bytes")),
                gib(over)
            ));
        }
    }
    let body = format!(
        "Per-token log-probs of `[batch, {seq}, {hidden}]` hidden states under a tied \
         `[{vocab}, {hidden}]` head (f32), chunks of {chunk} logits, forward (`token_logprobs`, temperature 1) and backward \
         to the hidden states and the head, on Burn's flex CPU backend with {threads} threads. \
         Peak is the process's `VmHWM`; \"above setup\" subtracts the resident memory once the \
         head and hidden states exist. Each row is a fresh process.\n\n\
         Command: `cargo xtask bench logprobs{}`\n\n\
         | impl | batch | forward s | backward s | peak GiB | above setup GiB |\n\
         |---|---|---|---|---|---|\n{}\n",
        if quick { " --quick" } else { "" },
        rows.join("\n")
    );
    write_bench_section(if quick { "logprobs-quick" } else { "logprobs" }, &body)
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("ci") => ci(),
        Some("train") => train(&args[1..]),
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
