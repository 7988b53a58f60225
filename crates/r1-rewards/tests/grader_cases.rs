//! The maths grader against the hand-labelled set of `tests/fixtures/grader_cases.jsonl`
//! (written by `make_grader_cases.py`: cases per rule family, labels by hand with their
//! reason), beside Math-Verify 0.9's verdicts on the same cases
//! (`grader_cases.math_verify.jsonl`, from `label_math_verify.py`).
//!
//! `cargo test -p r1-rewards --test grader_cases -- --nocapture` prints the per-family table
//! and every disagreement.

use std::collections::{BTreeMap, HashMap};

use r1_rewards::RewardInput;
use r1_rewards::builtin::accuracy;
use r1_rewards::math::Extraction;

mod common;
use common::read;

#[derive(Default)]
struct Tally {
    n: usize,
    ours: usize,
    math_verify: usize,
}

#[test]
fn hand_labelled_families() {
    let cases = read("grader_cases.jsonl");
    assert!(cases.len() >= 600, "{} cases", cases.len());
    let mv: HashMap<String, bool> = read("grader_cases.math_verify.jsonl")
        .into_iter()
        .map(|c| {
            (
                c["id"].as_str().expect("id").to_string(),
                c["math_verify_wrapped"].as_bool().expect("verdict"),
            )
        })
        .collect();
    let ex = Extraction::default();
    let mut families: BTreeMap<String, Tally> = BTreeMap::new();
    let mut misses = Vec::new();
    for c in &cases {
        let id = c["id"].as_str().expect("id");
        let family = c["family"].as_str().expect("family").to_string();
        let gold = c["gold"].as_str().expect("gold");
        let completion = c["completion"].as_str().expect("completion");
        let label = c["label"].as_bool().expect("label");
        let ours = accuracy(&RewardInput::new(completion, gold), &ex) == Some(1.0);
        let t = families.entry(family).or_default();
        t.n += 1;
        t.ours += usize::from(ours == label);
        t.math_verify += usize::from(mv.get(id) == Some(&label));
        if ours != label {
            misses.push(format!(
                "{id}: label={label} ours={ours} gold={gold:?}\n    {completion:?}\n    ({})",
                c["source"].as_str().unwrap_or("")
            ));
        }
    }
    let (mut n, mut ours, mut mvs) = (0, 0, 0);
    eprintln!("| family | cases | r1 | Math-Verify 0.9 |");
    eprintln!("|---|---:|---:|---:|");
    for (f, t) in &families {
        eprintln!(
            "| {f} | {} | {:.1}% | {:.1}% |",
            t.n,
            100.0 * t.ours as f64 / t.n as f64,
            100.0 * t.math_verify as f64 / t.n as f64
        );
        n += t.n;
        ours += t.ours;
        mvs += t.math_verify;
    }
    eprintln!(
        "| all | {n} | {:.1}% | {:.1}% |",
        100.0 * ours as f64 / n as f64,
        100.0 * mvs as f64 / n as f64
    );
    for m in &misses {
        eprintln!("{m}");
    }
    let rate = ours as f64 / n as f64;
    assert!(rate >= 0.98, "agreement {:.2}% is below 98%", 100.0 * rate);
}
