//! Continuous batching: a sequence generates the same tokens whether it runs alone (through
//! `generate`) or among others that join and leave at other steps, through cache growth,
//! compaction and cancellation.

use std::collections::HashMap;
use std::path::Path;

use burn::tensor::{DType, Device};
use r1_model::{
    ContinuousBatch, FinishReason, GenerationConfig, Pretrained, SamplingParams, SeqParams,
    generate, row_seed,
};

fn load(name: &str) -> Pretrained {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/models")
        .join(name);
    Pretrained::load(&dir, Some(DType::F32), &Device::default()).expect("load fixture")
}

/// Each sequence's tokens, log-probs and finish reason.
type Outcomes = HashMap<u64, (Vec<u32>, Vec<f32>, Option<FinishReason>)>;

/// Set when a step found the cache shorter than before it: a compaction happened.
static COMPACTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn prompts() -> Vec<Vec<u32>> {
    vec![
        vec![17, 250, 3, 99, 120, 45, 7],
        vec![5, 8],
        vec![
            100, 101, 102, 103, 104, 105, 106, 107, 108, 109, 110, 111, 112,
        ],
        vec![42],
        vec![9, 19, 29, 39, 49],
    ]
}

fn params(prompt: &[u32], max_new: usize, sampling: &SamplingParams, seed: u64) -> SeqParams {
    SeqParams {
        prompt_ids: prompt.to_vec(),
        max_new_tokens: max_new,
        sampling: sampling.clone(),
        seed,
        eos_token_ids: Vec::new(),
        stop_strings: Vec::new(),
        ignore_eos: true,
        top_logprobs: 3,
    }
}

/// Runs `plan` (sequence index, step at which it joins) and returns each sequence's tokens and
/// log-probs.
fn run(
    p: &Pretrained,
    capacity: usize,
    plan: &[(usize, usize)],
    budgets: &[usize],
    sampling: &SamplingParams,
    cancel: Option<(u64, usize)>,
) -> Outcomes {
    let prompts = prompts();
    let mut batch = ContinuousBatch::new(capacity, p.pad_token_id());
    let mut out = Outcomes::new();
    let mut step = 0;
    loop {
        let joining: Vec<_> = plan
            .iter()
            .filter(|(_, at)| *at == step)
            .map(|&(i, _)| {
                (
                    i as u64,
                    params(&prompts[i], budgets[i], sampling, row_seed(7, i)),
                )
            })
            .collect();
        let mut events = batch.admit(&p.model, joining, None).expect("admit");
        if let Some((id, at)) = cancel
            && at == step
        {
            assert!(batch.cancel(id).expect("cancel"));
            assert!(!batch.ids().contains(&id));
        }
        let before = batch.cache_len();
        events.extend(batch.step(&p.model, None).expect("step"));
        if batch.cache_len() > 0 && batch.cache_len() < before {
            COMPACTED.store(true, std::sync::atomic::Ordering::SeqCst);
        }
        for e in events {
            assert_eq!(e.top_logprobs.len(), 3);
            let entry = out.entry(e.id).or_default();
            entry.0.push(e.token);
            entry.1.push(e.logprob);
            assert!(entry.2.is_none(), "a token after the last one");
            entry.2 = e.finish;
        }
        step += 1;
        let pending = plan.iter().any(|(_, at)| *at >= step);
        if batch.is_empty() && !pending {
            return out;
        }
        assert!(step < 200, "the batch never drained");
    }
}

fn solo(
    p: &Pretrained,
    i: usize,
    max_new: usize,
    sampling: &SamplingParams,
) -> (Vec<u32>, Vec<f32>) {
    let config = GenerationConfig {
        max_new_tokens: max_new,
        sampling: sampling.clone(),
        ignore_eos: true,
        seed: 7,
        pad_token_id: p.pad_token_id(),
        ..GenerationConfig::default()
    };
    // Row i of a call seeded with 7 draws with row_seed(7, i): pad the call with copies of the
    // prompt so that the row index matches.
    let rows = vec![prompts()[i].clone(); i + 1];
    let g = generate(&p.model, &rows, &config, None).expect("generate");
    (
        g[i].completion_ids.clone(),
        g[i].completion_logprobs.clone(),
    )
}

fn check_against_solo(name: &str, capacity: usize, sampling: &SamplingParams) {
    let p = load(name);
    let budgets = [20, 9, 14, 30, 3];
    // Joins at steps 0, 0, 3, 5 and 11: some while others run, one after an earlier one left.
    let plan = [(0, 0), (1, 0), (2, 3), (3, 5), (4, 11)];
    let got = run(&p, capacity, &plan, &budgets, sampling, None);
    for (i, &n) in budgets.iter().enumerate() {
        let (ids, lps, finish) = &got[&(i as u64)];
        let (want_ids, want_lps) = solo(&p, i, n, sampling);
        assert_eq!(ids, &want_ids, "{name}, capacity {capacity}: sequence {i}");
        assert_eq!(*finish, Some(FinishReason::Length));
        for (a, b) in lps.iter().zip(&want_lps) {
            assert!((a - b).abs() < 1e-4, "{name}: log-prob {a} vs {b}");
        }
    }
}

#[test]
fn greedy_tokens_do_not_depend_on_the_company() {
    for name in ["qwen2-tied", "llama3-rope-scaling"] {
        // A roomy cache, and one so tight that it grows and compacts on the way.
        check_against_solo(name, 256, &SamplingParams::greedy());
        check_against_solo(name, 32, &SamplingParams::greedy());
    }
    assert!(
        COMPACTED.load(std::sync::atomic::Ordering::SeqCst),
        "no compaction was exercised"
    );
}

#[test]
fn seeded_sampling_matches_generate_rows() {
    let sampling = SamplingParams {
        temperature: 0.8,
        top_p: 0.9,
        ..SamplingParams::default()
    };
    check_against_solo("qwen2-tied", 64, &sampling);
}

#[test]
fn a_cancelled_sequence_leaves_and_the_others_go_on() {
    let p = load("qwen2-tied");
    let greedy = SamplingParams::greedy();
    let budgets = [20, 9, 14, 30, 3];
    let plan = [(0, 0), (1, 0), (2, 3), (3, 5), (4, 11)];
    let got = run(&p, 256, &plan, &budgets, &greedy, Some((2, 6)));
    let (ids, _, finish) = &got[&2];
    assert_eq!(*finish, None, "a cancelled sequence gets no last token");
    assert!(ids.len() < 14);
    for i in [0usize, 1, 3, 4] {
        assert_eq!(
            got[&(i as u64)].0,
            solo(&p, i, budgets[i], &greedy).0,
            "sequence {i}"
        );
    }
}

#[test]
fn bad_sequences_are_refused_with_reasons() {
    let p = load("qwen2-tied");
    let batch = ContinuousBatch::new(16, 0);
    let greedy = SamplingParams::greedy();
    let too_long = params(&[1; 10], 7, &greedy, 0);
    let err = batch.check(&too_long).expect_err("over the context");
    assert!(
        err.to_string()
            .contains("17 tokens, over the 16-token context"),
        "{err}"
    );
    assert!(batch.check(&params(&[], 4, &greedy, 0)).is_err());
    assert!(batch.check(&params(&[1], 0, &greedy, 0)).is_err());
    let mut batch = ContinuousBatch::new(16, 0);
    assert!(batch.admit(&p.model, vec![(0, too_long)], None).is_err());
    assert!(batch.is_empty());
}
