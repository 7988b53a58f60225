//! The code-execution reward: model-written Python run against the task's tests in a sandbox.
//!
//! Each test runs in a fresh [`Sandbox`] process: its own PID, mount and network namespaces
//! where the machine allows (see [`sandbox`] for what each protection does and the fallback
//! when one is missing), limits on CPU time, memory, file size, open files, processes and
//! output, and a wall-clock deadline.

use std::sync::Arc;

use rayon::prelude::*;
use serde_json::Value;

use crate::error::Result;
use crate::{Reward, RewardInput};

pub mod sandbox;

pub use sandbox::{Isolation, Limits, Outcome, Sandbox};

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
