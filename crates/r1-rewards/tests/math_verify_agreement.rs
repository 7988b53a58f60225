//! Agreement of the maths grader with Math-Verify on the labelled set that
//! `tests/fixtures/make_math_cases.py` writes (gold answers of MATH-500, GSM8K and AIME 2024
//! against rewritten, perturbed and swapped predictions), with the hand labels of
//! `hand_labelled.jsonl` overriding the referee where it is wrong.

use std::collections::HashMap;

use r1_rewards::RewardInput;
use r1_rewards::builtin::accuracy;
use r1_rewards::math::Extraction;
use serde_json::Value;

mod common;
use common::read;

#[test]
fn agrees_with_math_verify() {
    let mut cases = read("math_cases.jsonl");
    assert!(cases.len() > 1000);
    // Hand-labelled cases are graded too, against their labels.
    cases.extend(read("hand_labelled.jsonl").into_iter().map(|mut c| {
        c["source"] = Value::from("hand_labelled");
        c["kind"] = c["reason"].clone();
        c["math_verify"] = c["label"].clone();
        c
    }));
    let hand: HashMap<(String, String), (bool, String)> = read("hand_labelled.jsonl")
        .into_iter()
        .map(|c| {
            (
                (
                    c["gold"].as_str().expect("gold").to_string(),
                    c["completion"].as_str().expect("completion").to_string(),
                ),
                (
                    c["label"].as_bool().expect("label"),
                    c["reason"].as_str().expect("reason").to_string(),
                ),
            )
        })
        .collect();
    let ex = Extraction::default();
    let mut agree = 0usize;
    let mut disagreements = Vec::new();
    for c in &cases {
        let gold = c["gold"].as_str().expect("gold");
        let text = c["completion"].as_str().expect("completion");
        let mut want = c["math_verify"].as_bool().expect("label");
        if let Some((label, _)) = hand.get(&(gold.to_string(), text.to_string())) {
            want = *label;
        }
        let got = accuracy(&RewardInput::new(text, gold), &ex) == Some(1.0);
        if got == want {
            agree += 1;
        } else {
            disagreements.push(format!(
                "{} [{}] gold={gold:?} ours={got} referee={want}: {text:?}",
                c["source"], c["kind"]
            ));
        }
    }
    let rate = agree as f64 / cases.len() as f64;
    eprintln!("agreement {agree}/{} = {:.2}%", cases.len(), 100.0 * rate);
    for d in &disagreements {
        eprintln!("  {d}");
    }
    assert!(rate >= 0.98, "agreement {:.2}% is below 98%", 100.0 * rate);
}
