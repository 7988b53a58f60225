//! The out-of-process mode: a plugin loaded by `r1-plugin-host` in a child process, spoken to
//! in JSON lines, so that even a segfault in the plugin cannot take the trainer down. A dead
//! child is reported as an error and restarted on the next call.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Mutex;

use serde_json::Value;

use crate::error::{Result, RewardError};
use crate::{Reward, RewardInput};

struct Running {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

/// A plugin reward served by a child process.
pub struct ProcessPluginReward {
    host: PathBuf,
    plugin: PathBuf,
    config: Value,
    running: Mutex<Option<Running>>,
}

impl std::fmt::Debug for ProcessPluginReward {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcessPluginReward")
            .field("plugin", &self.plugin)
            .finish()
    }
}

/// Where `r1-plugin-host` is: `$R1_PLUGIN_HOST`, else beside the running executable (or one
/// folder up, for test binaries in `target/<profile>/deps`), else on `PATH`.
pub fn find_host() -> PathBuf {
    if let Some(p) = std::env::var_os("R1_PLUGIN_HOST") {
        return PathBuf::from(p);
    }
    let name = format!("r1-plugin-host{}", std::env::consts::EXE_SUFFIX);
    if let Ok(exe) = std::env::current_exe() {
        for dir in exe.ancestors().skip(1).take(2) {
            let candidate = dir.join(&name);
            if candidate.exists() {
                return candidate;
            }
        }
    }
    PathBuf::from(name)
}

fn err(plugin: &Path, message: impl Into<String>) -> RewardError {
    RewardError::Plugin {
        plugin: format!("{} (out of process)", plugin.display()),
        message: message.into(),
    }
}

impl ProcessPluginReward {
    /// Starts `host` serving `plugin` with `config`; fails if the plugin cannot be created.
    pub fn start(host: &Path, plugin: &Path, config: Value) -> Result<Self> {
        let r = Self {
            host: host.to_path_buf(),
            plugin: plugin.to_path_buf(),
            config,
            running: Mutex::new(None),
        };
        let mut guard = r.running.lock().map_err(|_| err(plugin, "lock poisoned"))?;
        *guard = Some(r.spawn()?);
        drop(guard);
        Ok(r)
    }

    fn spawn(&self) -> Result<Running> {
        let mut child = Command::new(&self.host)
            .arg(&self.plugin)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| {
                err(
                    &self.plugin,
                    format!("cannot start {}: {e} (set R1_PLUGIN_HOST or build r1-rewards' r1-plugin-host)", self.host.display()),
                )
            })?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(err(&self.plugin, "no pipes to the plugin host"));
        };
        let mut running = Running {
            child,
            stdin,
            stdout: BufReader::new(stdout),
        };
        let answer = self.exchange(&mut running, &self.config.to_string())?;
        if let Some(e) = answer.get("error") {
            return Err(err(
                &self.plugin,
                e.as_str().unwrap_or("create failed").to_string(),
            ));
        }
        Ok(running)
    }

    fn exchange(&self, running: &mut Running, line: &str) -> Result<Value> {
        let dead = |running: &mut Running| {
            let status = running
                .child
                .wait()
                .map(|s| s.to_string())
                .unwrap_or_else(|e| e.to_string());
            err(&self.plugin, format!("the plugin process died ({status})"))
        };
        if writeln!(running.stdin, "{line}")
            .and_then(|_| running.stdin.flush())
            .is_err()
        {
            return Err(dead(running));
        }
        let mut answer = String::new();
        match running.stdout.read_line(&mut answer) {
            Ok(0) | Err(_) => Err(dead(running)),
            Ok(_) => serde_json::from_str(&answer).map_err(|e| {
                err(
                    &self.plugin,
                    format!("bad answer from the plugin host: {e}"),
                )
            }),
        }
    }
}

impl Reward for ProcessPluginReward {
    fn score(&self, inputs: &[RewardInput]) -> Result<Vec<Option<f32>>> {
        let batch = serde_json::to_string(inputs).map_err(|e| err(&self.plugin, e.to_string()))?;
        let mut guard = self
            .running
            .lock()
            .map_err(|_| err(&self.plugin, "lock poisoned"))?;
        if guard.is_none() {
            *guard = Some(self.spawn()?);
        }
        let Some(running) = guard.as_mut() else {
            return Err(err(&self.plugin, "not running"));
        };
        let answer = match self.exchange(running, &batch) {
            Ok(a) => a,
            Err(e) => {
                *guard = None; // restarted on the next call
                return Err(e);
            }
        };
        if let Some(e) = answer.get("error") {
            return Err(err(&self.plugin, e.as_str().unwrap_or("error").to_string()));
        }
        let scores: Vec<Option<f32>> = serde_json::from_value(
            answer.get("ok").cloned().unwrap_or(Value::Null),
        )
        .map_err(|e| {
            err(
                &self.plugin,
                format!("scores are not a list of numbers or null: {e}"),
            )
        })?;
        if scores.len() != inputs.len() {
            return Err(err(
                &self.plugin,
                format!(
                    "returned {} scores for {} inputs",
                    scores.len(),
                    inputs.len()
                ),
            ));
        }
        Ok(scores)
    }
}

impl Drop for ProcessPluginReward {
    fn drop(&mut self) {
        if let Ok(mut g) = self.running.lock()
            && let Some(mut r) = g.take()
        {
            let _ = r.child.kill();
            let _ = r.child.wait();
        }
    }
}
