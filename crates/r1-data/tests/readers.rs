//! The readers on real files: the three evaluation sets in `../shared/data/` load with the
//! right counts, corrupted copies fail naming the line, Parquet written by Hugging Face
//! `datasets` (`fixtures/make_parquet.py`) reads back identical to the same rows as JSONL, and
//! the synthetic tasks and the loader keep their promises.

use std::path::{Path, PathBuf};

use r1_data::synthetic::{ArithmeticConfig, Checker, CountdownConfig, TaskConfig, generate_split};
use r1_data::{Content, Cursor, Loader, ReadOptions, read};
use r1_rewards::Reward;

fn shared() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data");
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!("skipped: ../shared/data not found next to the repository");
        None
    }
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("r1-data-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp");
    dir
}

#[test]
fn the_shared_evaluation_sets_load_with_their_counts() {
    let Some(dir) = shared() else { return };
    let o = ReadOptions::default();
    let gsm = read(&dir.join("gsm8k_test.jsonl"), &o).expect("gsm8k");
    assert_eq!(gsm.len(), 1319);
    assert_eq!(gsm.samples[0].answers, vec!["18".to_string()]);
    assert!(
        gsm.samples[0]
            .reasoning
            .as_deref()
            .is_some_and(|r| r.contains("16 - 3 - 4"))
    );
    let math = read(&dir.join("math500_test.jsonl"), &o).expect("math500");
    assert_eq!(math.len(), 500);
    assert!(math.samples.iter().all(|s| s.answers.len() == 1));
    assert_eq!(math.samples[0].id, "test/precalculus/807.json");
    let aime = read(&dir.join("aime24_test.jsonl"), &o).expect("aime");
    assert_eq!(aime.len(), 30);
    assert!(
        aime.samples
            .iter()
            .all(|s| s.answers.len() == 1 && !s.answers[0].is_empty())
    );
    assert!(
        matches!(&aime.samples[0].prompt, Content::Text(t) if t.starts_with("Every morning Aya"))
    );
}

#[test]
fn corrupted_copies_name_the_file_and_line() {
    let Some(dir) = shared() else { return };
    let text = std::fs::read_to_string(dir.join("gsm8k_test.jsonl")).expect("gsm8k");
    let lines: Vec<&str> = text.lines().collect();
    let out = tmp("corrupt");
    let o = ReadOptions::default();
    // Broken JSON on line 7.
    let mut broken = lines.clone();
    let cut = &lines[6][..lines[6].len() / 2];
    broken[6] = cut;
    let path = out.join("gsm8k_cut.jsonl");
    std::fs::write(&path, broken.join("\n")).expect("write");
    let e = read(&path, &o).expect_err("cut line").to_string();
    assert!(e.contains("gsm8k_cut.jsonl:7"), "{e}");
    // A wrong type on line 100.
    let mut typed = lines.clone();
    let wrong = lines[99]
        .replacen("\"answer\": \"", "\"answer\": [\"", 1)
        .replacen("\"}", "\"]}", 1);
    typed[99] = &wrong;
    let path = out.join("gsm8k_type.jsonl");
    std::fs::write(&path, typed.join("\n")).expect("write");
    let e = read(&path, &o).expect_err("wrong type").to_string();
    assert!(
        e.contains("gsm8k_type.jsonl:100") && e.contains("answer"),
        "{e}"
    );
    // Skipping counts both.
    let mut both = lines.clone();
    both[6] = cut;
    both[99] = &wrong;
    let path = out.join("gsm8k_both.jsonl");
    std::fs::write(&path, both.join("\n")).expect("write");
    let skip = ReadOptions {
        skip_malformed: true,
        ..ReadOptions::default()
    };
    let d = read(&path, &skip).expect("skip");
    assert_eq!((d.len(), d.skipped), (1317, 2));
    // A missing file names its path.
    let e = read(&out.join("nope.jsonl"), &o)
        .expect_err("missing")
        .to_string();
    assert!(e.contains("nope.jsonl"), "{e}");
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn parquet_from_datasets_reads_back_identical_to_jsonl() {
    let o = ReadOptions::default();
    for name in ["prompt_completion", "gsm8k", "messages"] {
        let p = read(&fixtures().join(format!("{name}.parquet")), &o).expect("parquet");
        let j = read(&fixtures().join(format!("{name}.jsonl")), &o).expect("jsonl");
        assert_eq!(p.len(), j.len(), "{name}");
        for (a, b) in p.samples.iter().zip(&j.samples) {
            assert_eq!(a.prompt, b.prompt, "{name}");
            assert_eq!(a.completion, b.completion, "{name}");
            assert_eq!(a.answers, b.answers, "{name}");
            assert_eq!(a.reasoning, b.reasoning, "{name}");
            assert_eq!(a.final_answer, b.final_answer, "{name}");
            assert_eq!(a.record, b.record, "{name}: record fields");
        }
    }
    let g = read(&fixtures().join("gsm8k.parquet"), &o).expect("gsm8k");
    assert!(
        g.samples.iter().all(|s| !s.answers[0].contains(',')),
        "thousands separators"
    );
    let e = read(&fixtures().join("gsm8k_broken.parquet"), &o)
        .expect_err("null question")
        .to_string();
    assert!(
        e.contains("gsm8k_broken.parquet") && e.contains("row group") && e.contains("index 12"),
        "{e}"
    );
}

#[test]
fn synthetic_tasks_are_seeded_disjoint_and_checked() {
    for task in [
        TaskConfig::Arithmetic(ArithmeticConfig::default()),
        TaskConfig::Countdown(CountdownConfig::default()),
    ] {
        let (train, eval) = generate_split(&task, 200, 50, 11);
        let (train2, _) = generate_split(&task, 200, 50, 11);
        assert_eq!(train.len(), 200);
        assert!(
            train
                .iter()
                .zip(&train2)
                .all(|(a, b)| a.prompt == b.prompt && a.completion == b.completion)
        );
        let held: std::collections::HashSet<_> =
            eval.iter().map(|s| s.prompt_text().unwrap_or("")).collect();
        assert!(
            train
                .iter()
                .all(|s| !held.contains(s.prompt_text().unwrap_or(""))),
            "disjoint"
        );
        // The worked solution passes the checker, a wrong answer does not.
        let right: Vec<_> = train
            .iter()
            .map(|s| match &s.completion {
                Some(Content::Text(c)) => s.to_reward_input(c),
                _ => panic!("completion"),
            })
            .collect();
        let scores = Checker.score(&right).expect("score");
        assert!(scores.iter().all(|s| *s == Some(1.0)), "{}", task.name());
        let wrong: Vec<_> = train
            .iter()
            .map(|s| s.to_reward_input("<think>guess</think><answer>123456</answer>"))
            .collect();
        let scores = Checker.score(&wrong).expect("score");
        assert!(scores.iter().all(|s| *s == Some(0.0)), "{}", task.name());
    }
}

#[test]
fn a_loader_resumed_from_its_cursor_yields_the_same_batches() {
    let mut full = Loader::new(23, 4, true, 5).expect("loader");
    let all: Vec<Vec<usize>> = (0..20).map(|_| full.next_batch()).collect();
    let mut first = Loader::new(23, 4, true, 5).expect("loader");
    for _ in 0..9 {
        first.next_batch();
    }
    let cursor: Cursor = first.cursor();
    let json = serde_json::to_string(&cursor).expect("json");
    let mut resumed =
        Loader::from_cursor(23, 4, true, serde_json::from_str(&json).expect("cursor"))
            .expect("loader");
    let rest: Vec<Vec<usize>> = (0..11).map(|_| resumed.next_batch()).collect();
    assert_eq!(rest, all[9..].to_vec());
    let plain = Loader::new(5, 2, false, 0).expect("loader");
    assert_eq!(plain.epoch_order(3), vec![0, 1, 2, 3, 4]);
    assert_ne!(full.epoch_order(0), full.epoch_order(1));
}
