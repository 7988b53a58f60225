//! The fused head + selective log-softmax against the plain tensor-op reference
//! (`r1_model::selective_log_softmax`, which is `log_softmax(logits / T).gather(targets)`):
//! values, entropies and gradients with respect to hidden states and the head weight.
//!
//! Runs on Burn's flex CPU backend always, and with `--features wgpu` also on the wgpu backend,
//! where the CubeCL kernels run (CI uses Mesa's lavapipe software Vulkan).

use std::path::PathBuf;

use burn::tensor::{DType, Device, Distribution, Int, Tensor, TensorData};
use r1_grpo::logprobs::{LogProbImpl, fused_selective_log_softmax, token_logprobs};
use r1_model::Pretrained;
use r1_model::model::Batch;

/// Value tolerance (absolute, f32 logits of magnitude ~10).
const TOL: f32 = 2e-5;
/// Gradient tolerance relative to the largest gradient entry.
const GRAD_TOL: f32 = 2e-5;

fn devices() -> Vec<(&'static str, Device)> {
    #[allow(unused_mut)]
    let mut out = vec![("flex", Device::flex())];
    #[cfg(feature = "wgpu")]
    out.push((
        "wgpu",
        Device::wgpu(burn::tensor::DeviceKind::DefaultDevice),
    ));
    out
}

fn read<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.cast(DType::F32)
        .into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .expect("f32 data")
}

fn assert_close(what: &str, got: &[f32], want: &[f32], tol: f32) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    let scale = want.iter().fold(0f32, |m, x| m.max(x.abs())).max(1.0);
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            g.is_finite() && (g - w).abs() <= tol * scale,
            "{what}[{i}]: {g} vs {w} (tolerance {} x {scale})",
            tol
        );
    }
}

struct Case {
    hidden: Vec<f32>,
    weight: Vec<f32>,
    targets: Vec<i64>,
    upstream: Vec<f32>,
    dims: [usize; 4], // batch, seq, hidden, vocab
}

fn case(dims: [usize; 4], seed: u64) -> Case {
    let [b, t, h, v] = dims;
    let dev = Device::flex();
    dev.seed(seed);
    let hidden = read(Tensor::<3>::random(
        [b, t, h],
        Distribution::Normal(0.0, 1.0),
        &dev,
    ));
    let weight = read(Tensor::<2>::random(
        [h, v],
        Distribution::Normal(0.0, 1.5),
        &dev,
    ));
    let upstream = read(Tensor::<2>::random(
        [b, t],
        Distribution::Uniform(-1.0, 1.0),
        &dev,
    ));
    // Targets cover the first, last and middle columns.
    let targets = (0..b * t)
        .map(|i| match i % 4 {
            0 => 0,
            1 => (v - 1) as i64,
            _ => ((i * 7919 + seed as usize) % v) as i64,
        })
        .collect();
    Case {
        hidden,
        weight,
        targets,
        upstream,
        dims,
    }
}

impl Case {
    /// Hidden states, head and targets on `device` (leaves that require a gradient if `grad`).
    fn tensors(&self, device: &Device, grad: bool) -> (Tensor<3>, Tensor<2>, Tensor<2, Int>) {
        let [b, t, h, v] = self.dims;
        let hidden =
            Tensor::<3>::from_data(TensorData::new(self.hidden.clone(), [b, t, h]), device);
        let weight = Tensor::<2>::from_data(TensorData::new(self.weight.clone(), [h, v]), device);
        let targets =
            Tensor::<2, Int>::from_data(TensorData::new(self.targets.clone(), [b, t]), device);
        if grad {
            (hidden.require_grad(), weight.require_grad(), targets)
        } else {
            (hidden, weight, targets)
        }
    }
}

/// The reference: full logits, `log_softmax`, gather; entropy from the same log-softmax.
fn reference(
    c: &Case,
    device: &Device,
    temperature: f32,
) -> (Vec<f32>, Vec<f32>, Vec<f32>, Vec<f32>) {
    let [b, t, h, _] = c.dims;
    let (hidden, weight, targets) = c.tensors(device, true);
    let logits = hidden.clone().reshape([b * t, h]).matmul(weight.clone()) / temperature as f64;
    let lsm = burn::tensor::activation::log_softmax(logits, 1);
    let logp = lsm.clone().gather(1, targets.reshape([b * t, 1]));
    let entropy = (lsm.clone().exp() * lsm).sum_dim(1).neg();
    let up = Tensor::<2>::from_data(TensorData::new(c.upstream.clone(), [b * t, 1]), device);
    let grads = (logp.clone() * up).sum().backward();
    (
        read(logp),
        read(entropy),
        read(hidden.grad(&grads).expect("hidden grad")),
        read(weight.grad(&grads).expect("weight grad")),
    )
}

fn fused(
    c: &Case,
    device: &Device,
    temperature: f32,
    chunk: usize,
) -> (Vec<f32>, Vec<f32>, Vec<f32>, Vec<f32>) {
    let [b, t, _, _] = c.dims;
    let (hidden, weight, targets) = c.tensors(device, true);
    let (logp, entropy) = fused_selective_log_softmax(
        hidden.clone(),
        weight.clone(),
        targets,
        temperature,
        chunk,
        true,
    );
    let up = Tensor::<2>::from_data(TensorData::new(c.upstream.clone(), [b, t]), device);
    let grads = (logp.clone() * up).sum().backward();
    (
        read(logp),
        read(entropy.expect("entropy")),
        read(hidden.grad(&grads).expect("hidden grad")),
        read(weight.grad(&grads).expect("weight grad")),
    )
}

#[test]
fn fused_matches_the_log_softmax_reference_in_values_and_gradients() {
    for (name, device) in devices() {
        let device = device.autodiff();
        // Vocabularies below, at and above the kernel's 256 units per row, odd sizes included.
        for (dims, seed) in [
            ([2, 3, 8, 5], 1),
            ([1, 7, 16, 256], 2),
            ([3, 5, 12, 1000], 3),
        ] {
            let c = case(dims, seed);
            for temperature in [1.0f32, 0.7] {
                let (lp, ent, gh, gw) = reference(&c, &device, temperature);
                for chunk in [1, 4, usize::MAX] {
                    let what = format!("{name} {dims:?} T={temperature} chunk={chunk}");
                    let (flp, fent, fgh, fgw) = fused(&c, &device, temperature, chunk);
                    assert_close(&format!("{what} logp"), &flp, &lp, TOL);
                    assert_close(&format!("{what} entropy"), &fent, &ent, TOL);
                    assert_close(&format!("{what} d hidden"), &fgh, &gh, GRAD_TOL);
                    assert_close(&format!("{what} d weight"), &fgw, &gw, GRAD_TOL);
                }
            }
        }
    }
}

#[test]
fn without_autodiff_the_fused_op_gives_the_same_values() {
    for (name, device) in devices() {
        let c = case([2, 4, 8, 300], 7);
        let (lp, ent, _, _) = reference(&c, &device.clone().autodiff(), 0.9);
        let (hidden, weight, targets) = c.tensors(&device, false);
        let (flp, fent) = fused_selective_log_softmax(hidden, weight, targets, 0.9, 3, true);
        assert_close(&format!("{name} logp"), &read(flp), &lp, TOL);
        assert_close(
            &format!("{name} entropy"),
            &read(fent.expect("entropy")),
            &ent,
            TOL,
        );
    }
}

#[test]
fn entropies_carry_no_gradient() {
    for (name, device) in devices() {
        let device = device.autodiff();
        let c = case([1, 3, 4, 10], 9);
        let (hidden, weight, targets) = c.tensors(&device, true);
        let (logp, entropy) =
            fused_selective_log_softmax(hidden.clone(), weight, targets, 1.0, 2, true);
        let grads = (logp.sum() * 0.0 + entropy.expect("entropy").sum()).backward();
        let g = read(hidden.grad(&grads).expect("hidden grad"));
        assert!(
            g.iter().all(|x| *x == 0.0),
            "{name}: entropy leaked a gradient"
        );
    }
}

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../r1-model/tests/fixtures/models")
        .join(name)
}

/// Through real models (tied and untied heads): the three implementations agree on log-probs,
/// entropies and every parameter's gradient.
#[test]
fn the_three_implementations_agree_through_a_model() {
    for (dev_name, device) in devices() {
        let device = device.autodiff();
        for model_name in ["qwen2-tied", "qwen2-bias-untied"] {
            let p = Pretrained::load(fixture(model_name), Some(DType::F32), &device)
                .expect("fixture model");
            let m = &p.model;
            let seqs = vec![vec![3u32, 9, 14, 2, 7], vec![5, 1, 8], vec![11, 4, 6, 10]];
            let batch = Batch::left_padded(&seqs, 0);
            let mut results = Vec::new();
            for method in [
                LogProbImpl::Reference,
                LogProbImpl::Chunked,
                LogProbImpl::Fused,
            ] {
                // Backward consumes the graph: one forward per implementation.
                let hidden = m
                    .forward_hidden(&batch, &vec![0; batch.batch], None)
                    .expect("forward");
                let [b, t, hs] = hidden.dims();
                let hidden = hidden.slice([0..b, 0..t - 1, 0..hs]);
                let targets: Vec<i64> = (0..b)
                    .flat_map(|r| batch.ids[r * t + 1..(r + 1) * t].iter().map(|&i| i as i64))
                    .collect();
                let targets =
                    Tensor::<2, Int>::from_data(TensorData::new(targets, [b, t - 1]), &device);
                let (lp, ent) =
                    token_logprobs(m, hidden.clone(), targets.clone(), 0.8, method, 3, true);
                let weights = Tensor::<2>::from_data(
                    TensorData::new(
                        (0..b * (t - 1)).map(|i| (i % 5) as f32 - 2.0).collect(),
                        [b, t - 1],
                    ),
                    &device,
                );
                let grads = (lp.clone() * weights).sum().backward();
                let layer = &m.model.layers[0];
                let mut params: Vec<Vec<f32>> = [
                    m.model.embed_tokens.weight.val().grad(&grads).map(read),
                    m.model.norm.weight.val().grad(&grads).map(read),
                    layer.self_attn.q_proj.weight.val().grad(&grads).map(read),
                    layer.mlp.down_proj.weight.val().grad(&grads).map(read),
                ]
                .into_iter()
                .map(|g| g.expect("gradient"))
                .collect();
                if let Some(head) = &m.lm_head {
                    params.push(read(head.weight.val().grad(&grads).expect("head gradient")));
                }
                results.push((read(lp), read(ent.expect("entropy")), params));
            }
            let (lp, ent, params) = &results[0];
            for (i, (flp, fent, fparams)) in results.iter().enumerate().skip(1) {
                let what = format!("{dev_name} {model_name} impl {i}");
                assert_close(&format!("{what} logp"), flp, lp, TOL);
                assert_close(&format!("{what} entropy"), fent, ent, TOL);
                assert_eq!(fparams.len(), params.len(), "{what}: gradients");
                for (j, (g, want)) in fparams.iter().zip(params).enumerate() {
                    assert_close(&format!("{what} param {j}"), g, want, GRAD_TOL);
                }
            }
        }
    }
}
