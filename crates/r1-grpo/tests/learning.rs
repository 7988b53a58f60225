//! A learning test that can fail: seeded GRPO on a tiny random model with a toy reward (the
//! share of completion tokens from the lower half of the vocabulary) must raise the mean reward
//! clearly within a few seconds of CPU.

use std::path::Path;

use burn::tensor::{DType, Device};
use r1_grpo::{GrpoTrainer, LossConfig, LossType, Prompt, TrainerConfig};
use r1_model::Pretrained;
use r1_rewards::{RewardSet, per_item};

fn toy_reward(vocab: u64) -> RewardSet {
    let mut rewards = RewardSet::new();
    rewards.push(
        "low_half",
        1.0,
        per_item(move |i| {
            let ids = i.metadata.get("completion_ids")?.as_array()?;
            if ids.is_empty() {
                return Some(0.0);
            }
            let low = ids
                .iter()
                .filter(|t| t.as_u64().is_some_and(|t| t < vocab / 2))
                .count();
            Some(low as f32 / ids.len() as f32)
        }),
    );
    rewards
}

fn tiny() -> r1_model::Pretrained {
    let dir =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../r1-model/tests/fixtures/models/qwen2-tied");
    Pretrained::load(&dir, Some(DType::F32), &Device::default().autodiff()).expect("tiny model")
}

fn prompts() -> Vec<Prompt> {
    (0..8u32)
        .map(|i| Prompt {
            ids: vec![1 + i, 40 + 3 * i, 200 + i, 7],
            ..Prompt::default()
        })
        .collect()
}

#[test]
fn off_policy_updates_with_a_reference_model_and_metrics_file() {
    let p = tiny();
    let vocab = p.model.config().vocab_size as u64;
    let path = std::env::temp_dir().join(format!("r1-grpo-metrics-{}.jsonl", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let config = TrainerConfig {
        loss: LossConfig {
            loss_type: LossType::Dapo,
            beta: 0.04,
            num_generations: 4,
            max_completion_length: 6,
            epsilon_high: Some(0.28),
            ..LossConfig::default()
        },
        learning_rate: 3e-3,
        num_iterations: 2,
        sync_ref_model: true,
        ref_model_mixup_alpha: 0.5,
        ref_model_sync_steps: 2,
        metrics_path: Some(path.clone()),
        seed: 3,
        ..TrainerConfig::default()
    };
    let pad = p.pad_token_id();
    let mut trainer = GrpoTrainer::new(p.model, config, toy_reward(vocab), None, Vec::new(), pad)
        .expect("trainer");
    for _ in 0..3 {
        let m = trainer.step(&prompts()).expect("step");
        let get = |k: &str| m.loss_metrics.iter().find(|(n, _)| n == k).map(|(_, v)| *v);
        let kl = get("kl").expect("kl is logged with beta > 0");
        assert!(kl.is_finite() && kl >= 0.0);
        assert!(get("clip_ratio/region_mean").is_some());
    }
    assert_eq!(trainer.global_step(), 6, "two updates per generation batch");
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&path)
        .expect("metrics file")
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(lines.len(), 3);
    for key in [
        "reward",
        "reward_std",
        "frac_reward_zero_std",
        "rewards/low_half/mean",
        "kl",
        "grad_norm",
        "completions/mean_length",
        "rewards/low_half/std",
        "completions/clipped_ratio",
        "completions/mean_terminated_length",
        "time/tokens_per_second",
    ] {
        assert!(
            lines[2].get(key).is_some(),
            "{key} missing from {}",
            lines[2]
        );
    }
    // No eos ids: every completion runs to the budget.
    assert_eq!(lines[2]["completions/clipped_ratio"], 1.0);
    assert!(
        lines[2]["time/tokens_per_second"]
            .as_f64()
            .is_some_and(|t| t > 0.0)
    );
    let _ = std::fs::remove_file(&path);
    // Bad combinations are refused with the field's name.
    let bad = TrainerConfig {
        sync_ref_model: true,
        ..TrainerConfig::default()
    };
    let e = GrpoTrainer::new(tiny().model, bad, toy_reward(vocab), None, Vec::new(), 0)
        .expect_err("no reference");
    assert!(e.to_string().contains("sync_ref_model"), "{e}");
}

fn run(learning_rate: f64, steps: usize) -> Vec<f64> {
    let p = tiny();
    let vocab = p.model.config().vocab_size as u64;
    let rewards = toy_reward(vocab);
    let config = TrainerConfig {
        loss: LossConfig {
            loss_type: LossType::Grpo,
            num_generations: 8,
            max_completion_length: 8,
            ..LossConfig::default()
        },
        learning_rate,
        max_grad_norm: 1.0,
        seed: 7,
        ..TrainerConfig::default()
    };
    // No eos: every completion runs to the budget, so the reward is about tokens, not length.
    let pad = p.pad_token_id();
    let mut trainer =
        GrpoTrainer::new(p.model, config, rewards, None, Vec::new(), pad).expect("trainer");
    let prompts: Vec<Prompt> = (0..8u32)
        .map(|i| Prompt {
            ids: vec![1 + i, 40 + 3 * i, 200 + i, 7],
            ..Prompt::default()
        })
        .collect();
    let mut history = Vec::new();
    for _ in 0..steps {
        let m = trainer.step(&prompts).expect("step");
        assert!(m.loss.is_finite() && m.grad_norm.is_finite());
        history.push(m.reward);
    }
    eprintln!("lr {learning_rate}: mean reward by step: {history:.3?}");
    history
}

#[test]
fn grpo_raises_a_toy_reward() {
    let learned = run(3e-3, 12);
    let (first, last) = (learned[0], (learned[10] + learned[11]) / 2.0);
    assert!(
        last > first + 0.2,
        "reward went from {first:.3} to {last:.3}"
    );
    // The control: the same seeded run without updates stays where it started.
    let frozen = run(0.0, 6);
    let drift = frozen
        .iter()
        .map(|r| (r - frozen[0]).abs())
        .fold(0.0, f64::max);
    assert!(
        drift < 0.15,
        "without learning the reward moved by {drift:.3}: {frozen:.3?}"
    );
    assert!(last > frozen.iter().cloned().fold(0.0, f64::max) + 0.1);
}

fn resume_config() -> TrainerConfig {
    TrainerConfig {
        loss: LossConfig {
            loss_type: LossType::Grpo,
            beta: 0.04,
            num_generations: 4,
            max_completion_length: 6,
            ..LossConfig::default()
        },
        learning_rate: 2e-3,
        sync_ref_model: true,
        ref_model_mixup_alpha: 0.5,
        ref_model_sync_steps: 1,
        seed: 11,
        ..TrainerConfig::default()
    }
}

fn weights(t: &GrpoTrainer) -> Vec<Vec<f32>> {
    t.model()
        .expect("model")
        .named_weights()
        .expect("weights")
        .into_iter()
        .map(|w| w.values)
        .collect()
}

#[test]
fn a_resumed_run_continues_exactly_as_the_uninterrupted_one() {
    let vocab = tiny().model.config().vocab_size as u64;
    let pad = tiny().pad_token_id();
    let device = Device::default().autodiff();
    let new = || {
        GrpoTrainer::new(
            tiny().model,
            resume_config(),
            toy_reward(vocab),
            None,
            Vec::new(),
            pad,
        )
        .expect("trainer")
    };

    let mut straight = new();
    let mut rewards_straight = Vec::new();
    for _ in 0..4 {
        rewards_straight.push(straight.step(&prompts()).expect("step").reward);
    }

    let dir = std::env::temp_dir().join(format!("r1-grpo-ckpt-{}", std::process::id()));
    let mut first = new();
    let mut rewards_resumed = Vec::new();
    for _ in 0..2 {
        rewards_resumed.push(first.step(&prompts()).expect("step").reward);
    }
    first.save_checkpoint(&dir, 42).expect("save");
    first
        .save_checkpoint(&dir, 42)
        .expect("overwrite an existing checkpoint");
    drop(first);
    for f in [
        "policy/model.safetensors",
        "policy/config.json",
        "reference/model.safetensors",
        "optimizer.bpk",
        "trainer_state.json",
    ] {
        assert!(dir.join(f).exists(), "{f} missing");
    }
    let (mut resumed, cursor) = GrpoTrainer::resume(
        &dir,
        resume_config(),
        toy_reward(vocab),
        None,
        Vec::new(),
        pad,
        &device,
    )
    .expect("resume");
    assert_eq!((cursor, resumed.global_step()), (42, 2));
    for _ in 0..2 {
        rewards_resumed.push(resumed.step(&prompts()).expect("step").reward);
    }
    assert_eq!(rewards_resumed, rewards_straight);
    assert_eq!(
        weights(&resumed),
        weights(&straight),
        "weights after 4 steps differ"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn gradient_accumulation_matches_one_big_batch_and_warmup_starts_at_zero() {
    let vocab = tiny().model.config().vocab_size as u64;
    let pad = tiny().pad_token_id();
    for loss_type in [LossType::Grpo, LossType::Dapo] {
        let run = |ga: usize| {
            let config = TrainerConfig {
                loss: LossConfig {
                    loss_type,
                    num_generations: 4,
                    max_completion_length: 6,
                    ..LossConfig::default()
                },
                learning_rate: 1e-3,
                gradient_accumulation_steps: ga,
                seed: 5,
                ..TrainerConfig::default()
            };
            let mut t = GrpoTrainer::new(
                tiny().model,
                config,
                toy_reward(vocab),
                None,
                Vec::new(),
                pad,
            )
            .expect("trainer");
            let m = t.step(&prompts()).expect("step");
            (weights(&t), m.grad_norm)
        };
        let (one, n1) = run(1);
        let (two, n2) = run(2);
        assert!(
            (n1 - n2).abs() <= 1e-4 * n1,
            "{loss_type:?}: grad norm {n1} vs {n2}"
        );
        let d = one
            .iter()
            .flatten()
            .zip(two.iter().flatten())
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        // AdamW's first step is about `lr * sign(g)` wherever |g| >> eps, so rounding in the
        // summed gradients (SIMD reductions, thread splits) moves weights whose gradients are
        // near eps by a fraction of `lr` (1e-3): 5e-5 is 5% of one step. A wrongly scaled
        // accumulation shows in the gradient norm above.
        assert!(
            d < 5e-5,
            "{loss_type:?}: weights differ by {d} between 1 and 2 micro-batches"
        );
    }
    // Warm-up: transformers' first step has learning rate 0, so the weights do not move.
    let config = TrainerConfig {
        loss: LossConfig {
            loss_type: LossType::Grpo,
            num_generations: 4,
            max_completion_length: 6,
            ..LossConfig::default()
        },
        learning_rate: 1e-2,
        warmup_steps: 2,
        max_steps: 10,
        lr_scheduler_type: r1_grpo::LrSchedule::Cosine,
        ..TrainerConfig::default()
    };
    let mut t = GrpoTrainer::new(
        tiny().model,
        config,
        toy_reward(vocab),
        None,
        Vec::new(),
        pad,
    )
    .expect("trainer");
    let before = weights(&t);
    let m = t.step(&prompts()).expect("step");
    assert_eq!(m.learning_rate, 0.0);
    assert_eq!(weights(&t), before);
    let m = t.step(&prompts()).expect("step");
    assert_eq!(m.learning_rate, 5e-3);
    assert_ne!(weights(&t), before);
}

/// 1 for every completion of prompts marked `flat`, the first token's parity otherwise.
fn flat_or_not() -> RewardSet {
    let mut rewards = RewardSet::new();
    rewards.push(
        "flat_or_not",
        1.0,
        per_item(|i| {
            let flat = i.metadata.get("flat")?.as_bool()?;
            let ids = i.metadata.get("completion_ids")?.as_array()?;
            Some(if flat {
                1.0
            } else {
                (ids.first()?.as_u64()? % 2) as f32
            })
        }),
    );
    rewards
}

#[test]
fn dynamic_sampling_replaces_groups_without_signal() {
    let p = tiny();
    let pad = p.pad_token_id();
    // A reward that is 1 for every completion of the first four prompts: those groups carry no
    // advantage and must be sampled again (and dropped when they stay flat).
    let rewards = flat_or_not();
    let mut prompts = prompts();
    for (k, pr) in prompts.iter_mut().enumerate() {
        pr.metadata
            .insert("flat".into(), serde_json::Value::Bool(k < 4));
    }
    let config = TrainerConfig {
        loss: LossConfig {
            loss_type: LossType::Dapo,
            num_generations: 4,
            max_completion_length: 4,
            ..LossConfig::default()
        },
        learning_rate: 1e-4,
        dynamic_sampling: true,
        max_sampling_rounds: 2,
        seed: 9,
        ..TrainerConfig::default()
    };
    let mut t =
        GrpoTrainer::new(p.model, config.clone(), rewards, None, Vec::new(), pad).expect("trainer");
    let m = t.step(&prompts).expect("step");
    assert_eq!(
        m.sampling_rounds, 2,
        "the flat groups never gain signal: both extra rounds run"
    );
    // Only groups of the four non-flat prompts can carry signal.
    assert!((1..=4).contains(&m.groups), "{} groups", m.groups);
    let off = TrainerConfig {
        dynamic_sampling: false,
        ..config
    };
    let mut t =
        GrpoTrainer::new(tiny().model, off, flat_or_not(), None, Vec::new(), pad).expect("trainer");
    let m = t.step(&prompts).expect("step");
    assert_eq!((m.sampling_rounds, m.groups), (0, 8));
}

#[test]
fn truncated_completions_can_be_left_out_of_the_loss() {
    let vocab = tiny().model.config().vocab_size as u64;
    let pad = tiny().pad_token_id();
    // No eos: every completion is truncated, so with the mask on nothing is left to learn from
    // and the gradient is exactly zero.
    let config = |mask| TrainerConfig {
        loss: LossConfig {
            loss_type: LossType::Grpo,
            num_generations: 4,
            max_completion_length: 4,
            mask_truncated_completions: mask,
            ..LossConfig::default()
        },
        learning_rate: 1e-3,
        ..TrainerConfig::default()
    };
    let mut on = GrpoTrainer::new(
        tiny().model,
        config(true),
        toy_reward(vocab),
        None,
        Vec::new(),
        pad,
    )
    .expect("trainer");
    let m = on.step(&prompts()).expect("step");
    assert_eq!(m.grad_norm, 0.0);
    let mut off = GrpoTrainer::new(
        tiny().model,
        config(false),
        toy_reward(vocab),
        None,
        Vec::new(),
        pad,
    )
    .expect("trainer");
    assert!(off.step(&prompts()).expect("step").grad_norm > 0.0);
}

#[test]
fn steps_per_generation_makes_several_optimiser_steps_per_generation_batch() {
    let vocab = tiny().model.config().vocab_size as u64;
    let pad = tiny().pad_token_id();
    let config = |ga: usize, spg: Option<usize>, iterations: usize| TrainerConfig {
        loss: LossConfig {
            loss_type: LossType::Dapo,
            num_generations: 4,
            max_completion_length: 6,
            ..LossConfig::default()
        },
        learning_rate: 1e-3,
        gradient_accumulation_steps: ga,
        steps_per_generation: spg,
        num_iterations: iterations,
        seed: 5,
        ..TrainerConfig::default()
    };
    let trainer = |c: TrainerConfig| {
        GrpoTrainer::new(tiny().model, c, toy_reward(vocab), None, Vec::new(), pad)
    };
    // A generation batch must be consumed by whole optimiser steps.
    for bad in [Some(0), Some(3)] {
        let Err(err) = trainer(config(2, bad, 1)) else {
            panic!("steps_per_generation {bad:?} with 2 accumulation steps was accepted");
        };
        assert!(
            err.to_string().contains("steps_per_generation"),
            "error names the field: {err}"
        );
    }
    // steps_per_generation = gradient_accumulation_steps is TRL's default: identical runs.
    let run = |c: TrainerConfig| {
        let mut t = trainer(c).expect("trainer");
        let m = t.step(&prompts()).expect("step");
        (weights(&t), m, t.global_step())
    };
    let (default, _, s1) = run(config(2, None, 1));
    let (explicit, _, s2) = run(config(2, Some(2), 1));
    assert_eq!((s1, s2), (1, 1));
    assert_eq!(default, explicit);
    // Four micro-batches, two per optimiser step, twice over: four optimiser steps, off-policy
    // after the first (the old log-probs come from the generating policy).
    let (split, m, steps) = run(config(2, Some(4), 2));
    assert_eq!(steps, 4, "optimiser steps per generation batch");
    assert!(m.loss.is_finite() && m.grad_norm.is_finite());
    let moved = split
        .iter()
        .flatten()
        .zip(default.iter().flatten())
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    assert!(moved > 0.0, "four updates ended where one did");
}
