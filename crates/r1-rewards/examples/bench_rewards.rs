//! `cargo xtask bench rewards`: completions scored per second by the accuracy, format and code
//! rewards, on the committed maths grading cases and on generated Python tasks. Writes a
//! table into `docs/benchmarks.md`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use r1_rewards::{RewardInput, RewardSet};
use serde_json::{Value, json};

fn cases() -> Vec<RewardInput> {
    read_cases("math_cases.jsonl", None)
}

/// The cases of one fixture file, only those of `family` when given.
fn read_cases(file: &str, family: Option<&str>) -> Vec<RewardInput> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(file);
    std::fs::read_to_string(&path)
        .expect("fixture cases")
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).expect("json"))
        .filter(|v| family.is_none_or(|f| v["family"].as_str() == Some(f)))
        .map(|v| {
            RewardInput::new(
                v["completion"].as_str().unwrap_or_default(),
                v["gold"].as_str().unwrap_or_default(),
            )
        })
        .collect()
}

fn code_inputs(n: usize) -> Vec<RewardInput> {
    (0..n)
        .map(|i| RewardInput {
            completion: format!(
                "<think>sum</think>\n```python\ndef f(x):\n    return x + {}\n```",
                i % 3
            ),
            metadata:
                json!({"tests": ["assert f(1) == 1", "assert f(2) == 2", "assert f(0) == 0"]})
                    .as_object()
                    .cloned()
                    .unwrap_or_default(),
            ..RewardInput::default()
        })
        .collect()
}

fn measure(name: &str, toml: &str, inputs: &[RewardInput], repeats: usize) -> (String, f64) {
    let set = RewardSet::from_toml_str(toml, Path::new("<bench>")).expect("config");
    set.score(&inputs[..inputs.len().min(64)]).expect("warm-up");
    let t = Instant::now();
    for _ in 0..repeats {
        set.score(inputs).expect("score");
    }
    let rate = (inputs.len() * repeats) as f64 / t.elapsed().as_secs_f64();
    eprintln!("{name}: {rate:.0} completions/s");
    (name.to_string(), rate)
}

fn main() {
    let threads = rayon::current_num_threads();
    let math = cases();
    let code = code_inputs(24);
    let symbolic = read_cases("grader_cases.jsonl", Some("symbolic"));
    let rows = vec![
        (
            measure(
                "accuracy (maths grader)",
                "[[reward]]\nname = \"a\"\nkind = \"accuracy\"\n",
                &math,
                3,
            ),
            math.len(),
        ),
        (
            measure(
                "accuracy, symbolic family (grader_cases.jsonl)",
                "[[reward]]\nname = \"a\"\nkind = \"accuracy\"\n",
                &symbolic,
                20,
            ),
            symbolic.len(),
        ),
        (
            measure(
                "format",
                "[[reward]]\nname = \"f\"\nkind = \"format\"\n",
                &math,
                10,
            ),
            math.len(),
        ),
        (
            measure(
                "accuracy + format + language + repetition",
                "[[reward]]\nname = \"a\"\nkind = \"accuracy\"\n[[reward]]\nname = \"f\"\nkind = \"format\"\n[[reward]]\nname = \"l\"\nkind = \"language\"\n[[reward]]\nname = \"r\"\nkind = \"repetition\"\n",
                &math,
                3,
            ),
            math.len(),
        ),
        (
            measure(
                "code (3 sandboxed tests each)",
                "[[reward]]\nname = \"c\"\nkind = \"code\"\n",
                &code,
                1,
            ),
            code.len(),
        ),
    ];
    let mut section = format!(
        "## Rewards (`cargo xtask bench rewards`)\n\n{threads} rayon threads, release build. Maths and format: the {} \
         completions of `crates/r1-rewards/tests/fixtures/math_cases.jsonl`; code: generated one-function \
         Python tasks, three assert tests each, one sandboxed `python3` process per test.\n\n\
         | reward | completions | completions/s |\n|---|---:|---:|\n",
        math.len()
    );
    for ((name, rate), n) in rows {
        section.push_str(&format!("| {name} | {n} | {rate:.0} |\n"));
    }
    section.push('\n');
    let doc = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/benchmarks.md");
    let (start, end) = (
        "<!-- bench rewards: start -->",
        "<!-- bench rewards: end -->",
    );
    let old = std::fs::read_to_string(&doc).unwrap_or_else(|_| "# Benchmarks\n".into());
    let block = format!("{start}\n{section}{end}");
    let new = match (old.find(start), old.find(end)) {
        (Some(a), Some(b)) if b > a => format!("{}{}{}", &old[..a], block, &old[b + end.len()..]),
        _ => format!("{}\n\n{}\n", old.trim_end(), block),
    };
    std::fs::write(&doc, new).expect("write docs/benchmarks.md");
    println!("{section}");
}
