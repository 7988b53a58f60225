//! The SFT engine's invariants: packing gives the loss and gradients of padding on the same
//! data, a resumed run ends exactly where the uninterrupted one does, and the chunked logit-KD
//! gradient equals the one of the plain full-logits formula.

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::optim::GradientsParams;
use burn::tensor::{DType, Device, Int, Tensor, TensorData, activation};
use r1_data::ReadOptions;
use r1_distill::config::KdDivergence;
use r1_distill::{
    Example, MicroBatch, SftConfig, SftRun, SftTokenizer, SftTrainer, Teacher, run_sft,
};
use r1_grpo::{LrSchedule, OptimSettings, clip_global_norm};
use r1_model::{Batch, CausalLm, Pretrained};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sft")
}

fn settings() -> OptimSettings {
    OptimSettings {
        learning_rate: 1e-3,
        weight_decay: 0.0,
        adam_betas: (0.9, 0.999),
        adam_epsilon: 1e-8,
        max_grad_norm: 0.0,
        lr_scheduler_type: LrSchedule::Constant,
        warmup_steps: 0,
        max_steps: 10,
        min_lr_rate: 0.0,
    }
}

fn student(device: &Device) -> Pretrained {
    Pretrained::load(fixtures().join("model"), Some(DType::F32), device).expect("model")
}

fn examples(n: usize) -> Vec<Example> {
    let device = Device::default();
    let p = student(&device);
    let tok = p.tokenizer.as_ref().expect("tokenizer");
    let data =
        r1_data::read(&fixtures().join("text.jsonl"), &ReadOptions::default()).expect("data");
    let config = SftConfig::default();
    let st = SftTokenizer::new(tok, &config);
    data.samples[..n]
        .iter()
        .map(|s| st.example(s).expect("example"))
        .collect()
}

#[test]
fn packing_gives_the_loss_and_gradients_of_padding() {
    let device = Device::default().autodiff();
    let ex = examples(4);
    let padded = MicroBatch {
        rows: ex.iter().map(|e| vec![e.clone()]).collect(),
    };
    let packed = MicroBatch {
        rows: vec![
            vec![ex[0].clone(), ex[1].clone()],
            vec![ex[2].clone(), ex[3].clone()],
        ],
    };
    let run = |mb: MicroBatch| {
        let mut t =
            SftTrainer::new(student(&device).model, settings(), 0, 1 << 20).expect("trainer");
        t.step(&[mb]).expect("step")
    };
    let (a, b) = (run(padded), run(packed));
    assert_eq!(a.label_tokens, b.label_tokens);
    assert!(
        (a.loss - b.loss).abs() < 1e-5 * a.loss.abs(),
        "loss {} vs {}",
        a.loss,
        b.loss
    );
    assert!(
        (a.grad_norm - b.grad_norm).abs() < 1e-4 * a.grad_norm,
        "grad norm {} vs {}",
        a.grad_norm,
        b.grad_norm
    );
    assert!((a.mean_token_accuracy - b.mean_token_accuracy).abs() < 1e-9);
}

#[test]
fn a_resumed_run_ends_where_the_uninterrupted_one_does() {
    let out = std::env::temp_dir().join(format!("r1-sft-resume-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let config = SftConfig::load(
        None,
        &[
            "max_steps=6".into(),
            "save_steps=3".into(),
            "per_device_train_batch_size=3".into(),
            "learning_rate=1e-3".into(),
            "logging_steps=1".into(),
            "warmup_steps=2".into(),
        ],
    )
    .expect("config");
    let run = SftRun {
        model: fixtures().join("model"),
        data: fixtures().join("text.jsonl"),
        out: out.clone(),
        config,
        resume: false,
        device: Device::default(),
        teacher: None,
        read: ReadOptions::default(),
    };
    run_sft(&run).expect("first run");
    let weights = std::fs::read(out.join("model.safetensors")).expect("weights");
    let metrics = std::fs::read_to_string(out.join("metrics.jsonl")).expect("metrics");
    assert!(
        out.join("checkpoints/checkpoint-3/trainer_state.json")
            .exists()
    );
    // A crash after step 3: the final model is gone and the log holds lines past the checkpoint.
    std::fs::remove_file(out.join("model.safetensors")).expect("rm");
    let resumed = run_sft(&SftRun {
        resume: true,
        ..run.clone()
    })
    .expect("resumed run");
    assert_eq!(resumed.steps, 6);
    let again = std::fs::read(out.join("model.safetensors")).expect("weights");
    assert!(weights == again, "the resumed run's weights differ");
    let metrics_again = std::fs::read_to_string(out.join("metrics.jsonl")).expect("metrics");
    assert_eq!(
        metrics, metrics_again,
        "metrics.jsonl differs after resuming"
    );
    let _ = std::fs::remove_dir_all(&out);
}

/// The KD mixture written plainly: full logits of both models, log-softmax, KL, backward.
fn reference_kd(
    model: &CausalLm,
    teacher: &CausalLm,
    e: &Example,
    alpha: f64,
    temp: f64,
    divergence: KdDivergence,
) -> (f64, f64) {
    let device = model.device();
    let batch = Batch::right_padded(std::slice::from_ref(&e.ids), 0);
    let t = batch.seq;
    let positions: Vec<i64> = (1..t)
        .filter(|&i| e.labels[i])
        .map(|i| (i - 1) as i64)
        .collect();
    let targets: Vec<i64> = (1..t)
        .filter(|&i| e.labels[i])
        .map(|i| e.ids[i] as i64)
        .collect();
    let n = positions.len();
    let idx = Tensor::<1, Int>::from_data(TensorData::new(positions.clone(), [n]), &device);
    let logits = model
        .forward(&batch)
        .expect("forward")
        .reshape([t, 384])
        .select(0, idx);
    let tdev = teacher.device();
    let tidx = Tensor::<1, Int>::from_data(TensorData::new(positions, [n]), &tdev);
    let tlogits = teacher
        .forward(&batch)
        .expect("teacher")
        .reshape([t, 384])
        .select(0, tidx);
    let tlogits = Tensor::<2>::from_data(tlogits.into_data(), (&device, DType::F32));
    let logp = activation::log_softmax(logits.clone(), 1);
    let tgt = Tensor::<2, Int>::from_data(TensorData::new(targets, [n, 1]), &device);
    let ce = logp.gather(1, tgt).sum().neg() / n as f64;
    let s = activation::log_softmax(logits / temp, 1);
    let q = activation::log_softmax(tlogits / temp, 1);
    let kl = match divergence {
        KdDivergence::Forward => (q.clone().exp() * (q - s)).sum(),
        KdDivergence::Reverse => (s.clone().exp() * (s - q)).sum(),
    } * (temp * temp / n as f64);
    let loss = ce * (1.0 - alpha) + kl * alpha;
    let value: f32 = loss.clone().into_scalar();
    let mut grads = GradientsParams::from_grads(loss.backward(), model);
    (value as f64, clip_global_norm(model, &mut grads, 0.0))
}

#[test]
fn chunked_kd_gradient_matches_the_full_logits_formula() {
    let device = Device::default().autodiff();
    let plain = Device::default();
    let teacher_dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../r1-model/tests/fixtures/models/qwen2-bias-untied");
    let e = examples(1).remove(0);
    for divergence in [KdDivergence::Forward, KdDivergence::Reverse] {
        let teacher = Pretrained::load(&teacher_dir, Some(DType::F32), &plain).expect("teacher");
        let model = student(&device).model;
        let (want_loss, want_norm) = reference_kd(&model, &teacher.model, &e, 0.3, 2.0, divergence);
        // Chunks of 5 rows: the gradient is assembled from several pieces.
        let mut t = SftTrainer::new(model.fork(&device), settings(), 0, 5 * 384)
            .expect("trainer")
            .with_teacher(Teacher {
                model: teacher.model,
                divergence,
                temperature: 2.0,
                alpha: 0.3,
            })
            .expect("teacher");
        let got = t
            .step(&[MicroBatch {
                rows: vec![vec![e.clone()]],
            }])
            .expect("step");
        eprintln!(
            "{divergence:?}: loss {} vs {want_loss}, grad norm {} vs {want_norm}",
            got.loss, got.grad_norm
        );
        assert!(
            (got.loss - want_loss).abs() < 1e-4 * want_loss.abs(),
            "{divergence:?} loss"
        );
        assert!(
            (got.grad_norm - want_norm).abs() < 1e-3 * want_norm,
            "{divergence:?} grad norm {} vs {want_norm}",
            got.grad_norm
        );
    }
}
