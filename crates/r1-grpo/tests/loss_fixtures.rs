//! Every fixture in `tests/fixtures/loss/` (written by `make_loss_fixtures.py` from TRL 1.16's own
//! `GRPOTrainer._compute_loss`) must be reproduced: advantages, loss (1e-5 relative), the
//! gradient with respect to the per-token log-probs (1e-6 absolute) and the logged metrics.
//! Files dropped into that folder are checked too.
//!
//! Schema: `{"name", "config": {GRPOConfig fields, TRL names}, "inputs": {"rewards_per_func":
//! [[..]] (null = unscorable), "completion_mask", "per_token_logps", "old_per_token_logps" or
//! null, "ref_per_token_logps" or null, "entropies" or null, "advantages" (optional)},
//! "expected": {"advantages" (optional), "loss", "grad_per_token_logps", "metrics" (optional)}}`.

use std::path::Path;

use burn::tensor::{Device, Tensor, TensorData};
use r1_grpo::{LossConfig, LossInputs, compute_advantages, policy_loss};
use serde_json::Value;

fn matrix(v: &Value) -> Option<(Vec<f32>, [usize; 2])> {
    let rows = v.as_array()?;
    let cols = rows.first()?.as_array()?.len();
    let flat: Vec<f32> = rows
        .iter()
        .flat_map(|r| {
            r.as_array()
                .into_iter()
                .flatten()
                .map(|x| x.as_f64().unwrap_or(f64::NAN) as f32)
        })
        .collect();
    Some((flat, [rows.len(), cols]))
}

fn tensor(v: &Value, device: &Device) -> Option<Tensor<2>> {
    let (data, shape) = matrix(v)?;
    Some(Tensor::from_data(TensorData::new(data, shape), device))
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .expect("list")
        .iter()
        .map(|x| x.as_f64().expect("number") as f32)
        .collect()
}

fn read(t: Tensor<2>) -> Vec<f32> {
    t.into_data().try_to_vec::<f32>().expect("read back")
}

#[test]
fn trl_loss_fixtures() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/loss");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("fixture folder")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 32,
        "expected the committed fixtures in {}",
        dir.display()
    );
    let device = Device::default().autodiff();
    let mut failures = Vec::new();
    for file in &files {
        let name = file
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let f: Value =
            serde_json::from_str(&std::fs::read_to_string(file).expect("read")).expect("json");
        let config: LossConfig = serde_json::from_value(f["config"].clone()).expect("config");
        config.validate().unwrap_or_else(|e| panic!("{name}: {e}"));
        let inputs = &f["inputs"];
        let expected = &f["expected"];

        let advantages: Vec<f32> = match inputs.get("advantages").filter(|a| !a.is_null()) {
            Some(a) => floats(a),
            None => {
                let rewards: Vec<Vec<Option<f32>>> = inputs["rewards_per_func"]
                    .as_array()
                    .expect("rewards")
                    .iter()
                    .map(|r| {
                        r.as_array()
                            .expect("row")
                            .iter()
                            .map(|x| x.as_f64().map(|v| v as f32))
                            .collect()
                    })
                    .collect();
                let funcs = rewards.first().map_or(0, Vec::len);
                let weights: Vec<f32> = config
                    .reward_weights
                    .clone()
                    .unwrap_or_else(|| vec![1.0; funcs])
                    .iter()
                    .map(|w| *w as f32)
                    .collect();
                compute_advantages(
                    &rewards,
                    &weights,
                    config.num_generations,
                    config.scale_rewards,
                    config.multi_objective_aggregation,
                )
                .expect("advantages")
            }
        };
        if let Some(want) = expected.get("advantages").filter(|a| !a.is_null()) {
            let want = floats(want);
            let d = advantages
                .iter()
                .zip(&want)
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max);
            if d > 1e-5 {
                failures.push(format!("{name}: advantages differ by {d:e}"));
                continue;
            }
        }

        let logps = tensor(&inputs["per_token_logps"], &device)
            .expect("per_token_logps")
            .require_grad();
        let mask = tensor(&inputs["completion_mask"], &device).expect("mask");
        let num_items: f32 = read(mask.clone()).iter().sum();
        let b = advantages.len();
        let out = policy_loss(
            &config,
            LossInputs {
                per_token_logps: logps.clone(),
                old_per_token_logps: tensor(&inputs["old_per_token_logps"], &device),
                ref_per_token_logps: tensor(&inputs["ref_per_token_logps"], &device),
                advantages: Tensor::from_data(TensorData::new(advantages.clone(), [b]), &device),
                completion_mask: mask,
                entropies: tensor(&inputs["entropies"], &device),
                num_items_in_batch: num_items,
                gradient_accumulation_steps: f["config"]["gradient_accumulation_steps"]
                    .as_u64()
                    .unwrap_or(1) as usize,
                steps_per_generation: f["config"]["steps_per_generation"].as_u64().unwrap_or(1)
                    as usize,
            },
        )
        .unwrap_or_else(|e| panic!("{name}: {e}"));
        let loss = out
            .loss
            .clone()
            .into_data()
            .try_to_vec::<f32>()
            .expect("loss")[0] as f64;
        let want_loss = expected["loss"].as_f64().expect("loss");
        // A loss near zero is a mean of order-1 terms that cancel: f32 sums carry ~1e-7 of
        // absolute error whatever the result, and the order of the sum moves with the SIMD
        // width (AVX2 against AVX-512), so the relative bound has a 1e-7 absolute floor.
        if (loss - want_loss).abs() > 1e-5 * want_loss.abs().max(1e-2) {
            failures.push(format!("{name}: loss {loss} vs TRL {want_loss}"));
            continue;
        }
        let grads = out.loss.backward();
        let grad = read(logps.grad(&grads).expect("gradient"));
        let (want_grad, _) = matrix(&expected["grad_per_token_logps"]).expect("grad");
        let d = grad
            .iter()
            .zip(&want_grad)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        if d > 1e-6 {
            failures.push(format!("{name}: gradient differs by {d:e}"));
            continue;
        }
        if let Some(metrics) = expected.get("metrics").and_then(Value::as_object) {
            for (k, v) in metrics {
                let Some(want) = v.as_f64() else { continue };
                match out.metrics.get(k) {
                    Some(got) if (got - want).abs() <= 1e-5 * want.abs().max(1.0) => {}
                    got => failures.push(format!("{name}: metric {k}: {got:?} vs TRL {want}")),
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} fixtures differ:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
}
