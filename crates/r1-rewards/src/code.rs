//! The code-execution reward: model-written Python run against the task's tests in a sandbox.
//!
//! Each test runs in a fresh process with:
//! - its own temporary directory as working directory, `HOME` and `TMPDIR`, removed afterwards;
//! - a clean environment and Python's isolated mode (`-I`);
//! - limits on CPU time, address space, file size, open files and process count (`setrlimit`),
//!   and a wall-clock timeout after which the whole process group is killed;
//! - no network: a new network namespace (only a down loopback) where the kernel allows it;
//! - when r1 runs as root, the unprivileged `nobody` user, so that nothing outside the sandbox
//!   directory (owned by root) can be written and the process limit applies.
//!
//! [`Sandbox::isolation`] says which of these could be set up on this machine; a missing one is
//! logged once as a warning.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rayon::prelude::*;
use serde_json::Value;

use crate::error::{Result, RewardError};
use crate::{Reward, RewardInput};

const NOBODY: u32 = 65534;
const MAX_OUTPUT: usize = 1 << 20;

/// Resource limits of one sandboxed run.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// CPU seconds per process (`RLIMIT_CPU`).
    pub cpu_seconds: u64,
    /// Wall-clock limit of the run.
    pub wall: Duration,
    /// Address space in bytes (`RLIMIT_AS`).
    pub memory_bytes: u64,
    /// Processes of the sandbox user (`RLIMIT_NPROC`).
    pub max_processes: u64,
    /// Largest file the code may write (`RLIMIT_FSIZE`).
    pub max_file_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            cpu_seconds: 5,
            wall: Duration::from_secs(10),
            memory_bytes: 1 << 30,
            max_processes: 64,
            max_file_bytes: 16 << 20,
        }
    }
}

/// Which protections this machine allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Isolation {
    /// A new network namespace could be created.
    pub network: bool,
    /// Runs as the `nobody` user (r1 runs as root).
    pub unprivileged_user: bool,
}

/// What one run did.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// Exit code, when the process exited.
    pub code: Option<i32>,
    /// Killed for passing the wall-clock limit.
    pub timed_out: bool,
    /// Standard output (at most 1 MiB).
    pub stdout: String,
    /// Standard error (at most 1 MiB).
    pub stderr: String,
}

impl Outcome {
    /// Exited with code 0 in time.
    pub fn success(&self) -> bool {
        self.code == Some(0) && !self.timed_out
    }
}

/// Runs Python code under [`Limits`].
#[derive(Debug, Clone)]
pub struct Sandbox {
    python: PathBuf,
    limits: Limits,
    isolation: Isolation,
    root: PathBuf,
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

fn setrlimit(resource: libc::__rlimit_resource_t, value: u64) -> std::io::Result<()> {
    let lim = libc::rlimit {
        rlim_cur: value as libc::rlim_t,
        rlim_max: value as libc::rlim_t,
    };
    // SAFETY: plain system call on a valid struct.
    if unsafe { libc::setrlimit(resource, &lim) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Whether a child can enter a new network namespace here.
fn probe_network_namespace() -> bool {
    let mut cmd = Command::new("/bin/true");
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        use std::os::unix::process::CommandExt;
        cmd.pre_exec(|| {
            if libc::unshare(libc::CLONE_NEWNET) == 0
                || libc::unshare(libc::CLONE_NEWUSER | libc::CLONE_NEWNET) == 0
            {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    }
    cmd.stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

impl Sandbox {
    /// A sandbox running `python` (e.g. `python3`) under `limits`.
    pub fn new(python: impl Into<PathBuf>, limits: Limits) -> Result<Self> {
        let python = python.into();
        let probe = Command::new(&python).arg("-c").arg("pass").output();
        if !probe.as_ref().is_ok_and(|o| o.status.success()) {
            return Err(RewardError::Sandbox(format!(
                "cannot run `{}`: is Python installed?",
                python.display()
            )));
        }
        // SAFETY: geteuid has no preconditions.
        let root = unsafe { libc::geteuid() } == 0;
        let isolation = Isolation {
            network: probe_network_namespace(),
            unprivileged_user: root,
        };
        if !isolation.network {
            tracing::warn!(
                "code sandbox: cannot create a network namespace here; sandboxed code can reach the network"
            );
        }
        if !isolation.unprivileged_user {
            tracing::warn!(
                "code sandbox: r1 is not root, so sandboxed code runs as the current user and can write wherever it can"
            );
        }
        let dir = std::env::temp_dir().join("r1-sandbox");
        std::fs::create_dir_all(&dir).map_err(|e| RewardError::Io {
            path: dir.clone(),
            source: e,
        })?;
        Ok(Self {
            python,
            limits,
            isolation,
            root: dir,
        })
    }

    /// The protections in force.
    pub fn isolation(&self) -> &Isolation {
        &self.isolation
    }

    /// Runs `code` with `stdin`, returning what happened; the sandbox directory is removed.
    pub fn run(&self, code: &str, stdin: &str) -> Result<Outcome> {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir = self.root.join(format!("run-{}-{n}", std::process::id()));
        let io = |path: &Path, e: std::io::Error| RewardError::Io {
            path: path.to_path_buf(),
            source: e,
        };
        std::fs::create_dir_all(&dir).map_err(|e| io(&dir, e))?;
        let script = dir.join("main.py");
        std::fs::write(&script, code).map_err(|e| io(&script, e))?;
        let result = self.run_in(&dir, stdin);
        let _ = std::fs::remove_dir_all(&dir);
        result
    }

    fn run_in(&self, dir: &Path, stdin: &str) -> Result<Outcome> {
        use std::os::unix::ffi::OsStrExt;
        use std::os::unix::process::CommandExt;
        let unprivileged = self.isolation.unprivileged_user;
        if unprivileged {
            // The sandbox user may write its own directory and nothing else of ours.
            let c = std::ffi::CString::new(dir.as_os_str().as_bytes())
                .map_err(|e| RewardError::Sandbox(e.to_string()))?;
            // SAFETY: valid C string.
            unsafe {
                libc::chown(c.as_ptr(), NOBODY, NOBODY);
            }
        }
        let mut cmd = Command::new(&self.python);
        cmd.arg("-I")
            .arg("main.py")
            .current_dir(dir)
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("HOME", dir)
            .env("TMPDIR", dir)
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let limits = self.limits.clone();
        let network = self.isolation.network;
        // SAFETY: only async-signal-safe calls (setsid, unshare, setrlimit, setgid, setuid)
        // run between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                if libc::setsid() < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                if network
                    && libc::unshare(libc::CLONE_NEWNET) != 0
                    && libc::unshare(libc::CLONE_NEWUSER | libc::CLONE_NEWNET) != 0
                {
                    return Err(std::io::Error::last_os_error());
                }
                setrlimit(libc::RLIMIT_CPU, limits.cpu_seconds)?;
                setrlimit(libc::RLIMIT_AS, limits.memory_bytes)?;
                setrlimit(libc::RLIMIT_FSIZE, limits.max_file_bytes)?;
                setrlimit(libc::RLIMIT_NOFILE, 64)?;
                setrlimit(libc::RLIMIT_CORE, 0)?;
                if unprivileged
                    && (libc::setgroups(0, std::ptr::null()) != 0
                        || libc::setgid(NOBODY) != 0
                        || libc::setuid(NOBODY) != 0)
                {
                    return Err(std::io::Error::last_os_error());
                }
                setrlimit(libc::RLIMIT_NPROC, limits.max_processes)?;
                Ok(())
            });
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| RewardError::Sandbox(format!("cannot start the sandbox: {e}")))?;
        let pid = child.id() as i32;
        let mut input = child.stdin.take();
        let data = stdin.as_bytes().to_vec();
        let writer = std::thread::spawn(move || {
            if let Some(w) = input.as_mut() {
                let _ = w.write_all(&data);
            }
        });
        let read = |r: Option<Box<dyn Read + Send>>| {
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                if let Some(r) = r {
                    let _ = r.take(MAX_OUTPUT as u64).read_to_end(&mut buf);
                }
                String::from_utf8_lossy(&buf).into_owned()
            })
        };
        let out = read(
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
        );
        let err = read(
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
        );
        let started = Instant::now();
        let mut timed_out = false;
        let status = loop {
            match child.try_wait() {
                Ok(Some(s)) => break Some(s),
                Ok(None) if started.elapsed() >= self.limits.wall => {
                    timed_out = true;
                    break None;
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(5)),
                Err(_) => break None,
            }
        };
        // Kill the whole group: children the code forked, too.
        // SAFETY: signalling a process group we created.
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
        }
        let status = match status {
            Some(s) => Some(s),
            None => child.wait().ok(),
        };
        let _ = writer.join();
        let stdout = out.join().unwrap_or_default();
        let stderr = err.join().unwrap_or_default();
        Ok(Outcome {
            code: if timed_out {
                None
            } else {
                status.and_then(|s| s.code())
            },
            timed_out,
            stdout,
            stderr,
        })
    }
}

/// The last fenced code block (```python preferred), or `None`.
pub fn extract_code(completion: &str) -> Option<String> {
    let mut blocks: Vec<(bool, String)> = Vec::new();
    let mut rest = completion;
    while let Some(start) = rest.find("```") {
        let after = &rest[start + 3..];
        let header_end = after.find('\n').unwrap_or(after.len());
        let lang = after[..header_end].trim().to_lowercase();
        let body_start = (header_end + 1).min(after.len());
        let Some(end) = after[body_start..].find("```") else {
            break;
        };
        blocks.push((
            lang == "python" || lang == "py" || lang == "python3",
            after[body_start..body_start + end].to_string(),
        ));
        rest = &after[body_start + end + 3..];
    }
    blocks
        .iter()
        .rev()
        .find(|(py, _)| *py)
        .or(blocks.last())
        .map(|(_, code)| code.clone())
}

/// How test results become a reward.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scoring {
    /// Fraction of tests passed.
    Fraction,
    /// 1 when every test passes, else 0.
    AllOrNothing,
}

/// Runs the code of each completion against `metadata.tests` (Python statements, usually
/// asserts, each run after the code) or `metadata.test_cases` (`{"input", "output"}`: stdin and
/// the expected stdout). `None` for inputs without tests; 0 without a code block.
#[derive(Debug, Clone)]
pub struct CodeReward {
    sandbox: Arc<Sandbox>,
    scoring: Scoring,
}

fn normalize_output(s: &str) -> String {
    s.trim_end()
        .lines()
        .map(str::trim_end)
        .collect::<Vec<_>>()
        .join("\n")
}

impl CodeReward {
    /// A reward over `sandbox`.
    pub fn new(sandbox: Sandbox, scoring: Scoring) -> Self {
        Self {
            sandbox: Arc::new(sandbox),
            scoring,
        }
    }

    /// Scores one input.
    pub fn score_one(&self, input: &RewardInput) -> Result<Option<f32>> {
        let tests = input.metadata.get("tests").and_then(Value::as_array);
        let cases = input.metadata.get("test_cases").and_then(Value::as_array);
        let total = tests.map_or(0, Vec::len) + cases.map_or(0, Vec::len);
        if total == 0 {
            return Ok(None);
        }
        let Some(code) = extract_code(&input.completion) else {
            return Ok(Some(0.0));
        };
        let mut passed = 0usize;
        for t in tests.into_iter().flatten() {
            let Some(stmt) = t.as_str() else { continue };
            let program = format!("{code}\n\n{stmt}\n");
            if self.sandbox.run(&program, "")?.success() {
                passed += 1;
            }
        }
        for c in cases.into_iter().flatten() {
            let stdin = c.get("input").and_then(Value::as_str).unwrap_or("");
            let want = c.get("output").and_then(Value::as_str).unwrap_or("");
            let out = self.sandbox.run(&code, stdin)?;
            if out.success() && normalize_output(&out.stdout) == normalize_output(want) {
                passed += 1;
            }
        }
        Ok(Some(match self.scoring {
            Scoring::Fraction => passed as f32 / total as f32,
            Scoring::AllOrNothing => f32::from(u8::from(passed == total)),
        }))
    }
}

impl Reward for CodeReward {
    fn score(&self, inputs: &[RewardInput]) -> Result<Vec<Option<f32>>> {
        inputs.par_iter().map(|i| self.score_one(i)).collect()
    }
}
