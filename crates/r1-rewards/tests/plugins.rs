//! Reward plugins end to end: the plugins under `plugins/` are built first, then loaded through
//! the host and through TOML reward sets; every failure mode must be a clear error naming the
//! plugin, never a crash.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use r1_rewards::plugin::PluginReward;
use r1_rewards::{Reward, RewardInput, RewardSet};
use serde_json::json;

/// Builds the plugin crates once (same profile and target folder as this test) and returns the
/// folder holding the shared libraries.
fn plugin_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .current_dir(&root)
            .args(["build", "--quiet"])
            .args([
                "-p",
                "r1-plugin-countdown",
                "-p",
                "r1-plugin-multiple-choice",
            ])
            .args(["-p", "r1-plugin-misbehave", "-p", "r1-plugin-bad-abi"])
            .status()
            .expect("run cargo build for the plugins");
        assert!(status.success(), "building the plugins failed");
        // target/<profile>/deps/<this test> -> target/<profile>
        let exe = std::env::current_exe().expect("test binary path");
        exe.parent()
            .and_then(Path::parent)
            .expect("target profile folder")
            .to_path_buf()
    })
}

fn lib(name: &str) -> PathBuf {
    plugin_dir().join(format!(
        "{}{}{}",
        std::env::consts::DLL_PREFIX,
        name,
        std::env::consts::DLL_SUFFIX
    ))
}

fn input(completion: &str, metadata: serde_json::Value) -> RewardInput {
    RewardInput {
        completion: completion.into(),
        metadata: metadata.as_object().cloned().unwrap_or_default(),
        ..RewardInput::default()
    }
}

#[test]
fn countdown_plugin_scores_through_a_reward_set() {
    let dir = plugin_dir();
    let toml = format!(
        r#"
[[reward]]
name = "countdown"
kind = "plugin"
path = "{}"
weight = 1.0
format_score = 0.1
"#,
        lib("r1_plugin_countdown").display()
    );
    let set = RewardSet::from_toml_str(&toml, &dir.join("rewards.toml")).expect("set");
    let meta = json!({"target": 22, "nums": [3, 5, 7]});
    let inputs = vec![
        input("<think>try</think><answer>3 * 5 + 7</answer>", meta.clone()),
        input("<answer>3 + 5 + 7</answer>", meta.clone()),
        input("no answer", meta),
        input("<answer>1</answer>", json!({})),
    ];
    let s = set.score(&inputs).expect("score");
    assert_eq!(s.values[0], vec![Some(1.0), Some(0.1), Some(0.0), None]);
}

#[test]
fn multiple_choice_plugin_reads_its_config() {
    let r = PluginReward::load(
        &lib("r1_plugin_multiple_choice"),
        &json!({"letters": "ABCD"}),
    )
    .expect("load");
    let mut a = input("The answer is (C).", json!({}));
    a.answers = vec!["C".into()];
    let mut b = input("\\boxed{E}", json!({}));
    b.answers = vec!["(E)".into()]; // E is not a valid letter with "ABCD": not applicable
    assert_eq!(r.score(&[a, b]).expect("score"), vec![Some(1.0), None]);
    let err = PluginReward::load(&lib("r1_plugin_multiple_choice"), &json!({"letters": 3}))
        .expect_err("bad config");
    assert!(err.to_string().contains("letters"), "{err}");
}

fn misbehave(mode: &str) -> Result<PluginReward, String> {
    PluginReward::load(&lib("r1_plugin_misbehave"), &json!({ "mode": mode }))
        .map_err(|e| e.to_string())
}

#[test]
fn misbehaving_plugins_are_errors_not_crashes() {
    let inputs = vec![RewardInput::new("x", "1"), RewardInput::new("y", "2")];
    assert_eq!(
        misbehave("ok").expect("ok").score(&inputs).expect("score"),
        vec![Some(0.5); 2]
    );

    let e = misbehave("error")
        .expect("load")
        .score(&inputs)
        .expect_err("error")
        .to_string();
    assert!(
        e.contains("misbehave") && e.contains("refusing on purpose"),
        "{e}"
    );

    let p = misbehave("panic").expect("load");
    let e = p.score(&inputs).expect_err("panic").to_string();
    assert!(
        e.contains("panicked") && e.contains("panicking on purpose"),
        "{e}"
    );
    // The instance survives its panic and reports it again.
    assert!(p.score(&inputs).is_err());

    let e = misbehave("wrong_count")
        .expect("load")
        .score(&inputs)
        .expect_err("count")
        .to_string();
    assert!(e.contains("3 scores for 2 inputs"), "{e}");

    let e = misbehave("fail_create").expect_err("create").to_string();
    assert!(
        e.contains("create failed") && e.contains("failing create on purpose"),
        "{e}"
    );
    let e = misbehave("panic_create")
        .expect_err("create panic")
        .to_string();
    assert!(e.contains("panicked in create"), "{e}");

    // Non-finite scores are errors, not silently "does not apply".
    let mut set = RewardSet::new();
    set.push("nan", 1.0, misbehave("nan").expect("load"));
    let e = set.score(&inputs).expect_err("nan").to_string();
    assert!(e.contains("non-finite"), "{e}");
}

#[test]
fn loading_failures_name_the_plugin() {
    let e = PluginReward::load(Path::new("/no/such/libplugin.so"), &json!({}))
        .expect_err("missing")
        .to_string();
    assert!(
        e.contains("/no/such/libplugin.so") && e.contains("no such file"),
        "{e}"
    );

    let bogus = std::env::temp_dir().join(format!("r1-not-a-library-{}.so", std::process::id()));
    std::fs::write(&bogus, b"not an ELF file").expect("write");
    let e = PluginReward::load(&bogus, &json!({}))
        .expect_err("not a library")
        .to_string();
    assert!(e.contains("cannot load"), "{e}");
    let _ = std::fs::remove_file(&bogus);

    let e = PluginReward::load(&lib("r1_plugin_bad_abi"), &json!({}))
        .expect_err("abi")
        .to_string();
    assert!(e.contains("ABI version 999"), "{e}");

    // A real shared library without the entry point: the C library this test links.
    #[cfg(target_os = "linux")]
    {
        let maps = std::fs::read_to_string("/proc/self/maps").expect("maps");
        if let Some(libc) = maps
            .split_whitespace()
            .find(|w| w.contains("/libc.so") || w.contains("/libc-"))
        {
            let e = PluginReward::load(Path::new(libc), &json!({}))
                .expect_err("no symbol")
                .to_string();
            assert!(e.contains("r1_reward_plugin_v1"), "{e}");
        }
    }

    let toml = "[[reward]]\nname = \"p\"\nkind = \"plugin\"\n";
    let e = RewardSet::from_toml_str(toml, Path::new("r.toml"))
        .expect_err("no path")
        .to_string();
    assert!(e.contains("path"), "{e}");
}

#[test]
fn out_of_process_plugins_survive_crashes() {
    let host = PathBuf::from(env!("CARGO_BIN_EXE_r1-plugin-host"));
    let inputs = vec![RewardInput::new("x", "1"), RewardInput::new("y", "2")];
    let ok = r1_rewards::plugin::ProcessPluginReward::start(
        &host,
        &lib("r1_plugin_misbehave"),
        json!({"mode": "ok"}),
    )
    .expect("start");
    assert_eq!(ok.score(&inputs).expect("score"), vec![Some(0.5); 2]);

    // The plugin aborts its process: the trainer gets an error and keeps running.
    let crash = r1_rewards::plugin::ProcessPluginReward::start(
        &host,
        &lib("r1_plugin_misbehave"),
        json!({"mode": "crash"}),
    )
    .expect("start");
    let e = crash.score(&inputs).expect_err("crash").to_string();
    assert!(e.contains("died"), "{e}");
    // ... and the next call restarts it (and it crashes again, still only an error).
    assert!(crash.score(&inputs).is_err());
    assert_eq!(ok.score(&inputs).expect("still fine"), vec![Some(0.5); 2]);

    let e = r1_rewards::plugin::ProcessPluginReward::start(
        &host,
        &lib("r1_plugin_misbehave"),
        json!({"mode": "fail_create"}),
    )
    .expect_err("create")
    .to_string();
    assert!(e.contains("failing create on purpose"), "{e}");

    // Through TOML, with the host found beside the test binary.
    let toml = format!(
        "[[reward]]\nname = \"cd\"\nkind = \"plugin\"\nmode = \"process\"\npath = \"{}\"\n",
        lib("r1_plugin_countdown").display()
    );
    let set = RewardSet::from_toml_str(&toml, Path::new("r.toml")).expect("set");
    let s = set
        .score(&[input(
            "<answer>2 * 3</answer>",
            json!({"target": 6, "nums": [2, 3]}),
        )])
        .expect("score");
    assert_eq!(s.values[0], vec![Some(1.0)]);
}
