//! `r1-plugin-host PLUGIN`: runs a reward plugin in its own process for the out-of-process
//! mode, speaking JSON lines on stdin/stdout. The first line is the plugin's config; each
//! following line is a batch of inputs. Each answer is one line: `{"ok": ..}` or
//! `{"error": ".."}`. A crash of the plugin ends only this process.

use std::io::{BufRead, Write};
use std::path::PathBuf;

use r1_rewards::plugin::PluginReward;
use r1_rewards::{Reward, RewardInput};
use serde_json::{Value, json};

fn reply(out: &mut impl Write, v: Value) -> std::io::Result<()> {
    writeln!(out, "{v}")?;
    out.flush()
}

fn main() -> std::io::Result<()> {
    let Some(path) = std::env::args().nth(1).map(PathBuf::from) else {
        eprintln!("usage: r1-plugin-host PLUGIN < json-lines");
        std::process::exit(2);
    };
    let stdin = std::io::stdin();
    let mut lines = stdin.lock().lines();
    let mut out = std::io::stdout().lock();
    let Some(config) = lines.next().transpose()? else {
        return Ok(());
    };
    let config: Value = match serde_json::from_str(&config) {
        Ok(v) => v,
        Err(e) => {
            return reply(
                &mut out,
                json!({"error": format!("config line is not JSON: {e}")}),
            );
        }
    };
    let plugin = match PluginReward::load(&path, &config) {
        Ok(p) => p,
        Err(e) => return reply(&mut out, json!({"error": e.to_string()})),
    };
    reply(&mut out, json!({"ok": plugin.label()}))?;
    for line in lines {
        let line = line?;
        let answer = match serde_json::from_str::<Vec<RewardInput>>(&line) {
            Err(e) => json!({"error": format!("batch line is not a JSON array of inputs: {e}")}),
            Ok(batch) => match plugin.score(&batch) {
                Ok(scores) => json!({"ok": scores}),
                Err(e) => json!({"error": e.to_string()}),
            },
        };
        reply(&mut out, answer)?;
    }
    Ok(())
}
