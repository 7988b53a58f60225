//! A plugin that misbehaves on purpose, so that the host's error handling is tested:
//! `mode` = `ok` (0.5 for every input), `error`, `panic`, `wrong_count`, `nan`, `fail_create`,
//! `panic_create`, or `crash` (aborts the process: only for the out-of-process mode).

use r1_rewards::plugin::sdk::Plugin;
use r1_rewards::{Reward, RewardError, RewardInput, export_reward};

/// The reward and how it misbehaves.
#[derive(Debug, Clone)]
pub struct Misbehave {
    mode: String,
}

impl Reward for Misbehave {
    fn score(&self, inputs: &[RewardInput]) -> r1_rewards::Result<Vec<Option<f32>>> {
        match self.mode.as_str() {
            "ok" => Ok(vec![Some(0.5); inputs.len()]),
            "error" => Err(RewardError::Scoring {
                name: "misbehave".into(),
                message: "refusing on purpose".into(),
            }),
            "panic" => panic!("panicking on purpose"),
            "wrong_count" => Ok(vec![Some(0.5); inputs.len() + 1]),
            "nan" => Ok(vec![Some(f32::NAN); inputs.len()]),
            "crash" => std::process::abort(),
            other => Err(RewardError::Scoring {
                name: "misbehave".into(),
                message: format!("unknown mode {other}"),
            }),
        }
    }
}

impl Plugin for Misbehave {
    fn create(config: serde_json::Value) -> Result<Self, String> {
        let mode = config
            .get("mode")
            .and_then(|m| m.as_str())
            .unwrap_or("ok")
            .to_string();
        match mode.as_str() {
            "fail_create" => Err("failing create on purpose".into()),
            "panic_create" => panic!("panicking in create on purpose"),
            _ => Ok(Self { mode }),
        }
    }
}

export_reward!(Misbehave, "misbehave");
