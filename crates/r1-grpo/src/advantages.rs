//! Group-relative advantages, as TRL 1.16's `_generate_and_score_completions` computes them.
//!
//! Rewards are tiny (`rows x funcs` numbers) and carry "does not apply" (`None`) values that
//! must stay out of every statistic, so this runs on the host in f32 like TRL's tensors.

use crate::config::{Aggregation, ScaleRewards};
use crate::error::{GrpoError, Result};

fn nanmean(v: &[f32]) -> f32 {
    let vals: Vec<f32> = v.iter().copied().filter(|x| !x.is_nan()).collect();
    if vals.is_empty() {
        return f32::NAN;
    }
    vals.iter().sum::<f32>() / vals.len() as f32
}

/// TRL's `nanstd`: the unbiased (n - 1) standard deviation of the non-NaN values.
fn nanstd(v: &[f32]) -> f32 {
    let mean = nanmean(v);
    let vals: Vec<f32> = v.iter().copied().filter(|x| !x.is_nan()).collect();
    let n = vals.len() as f32;
    let var = vals.iter().map(|x| (x - mean) * (x - mean)).sum::<f32>() / n;
    (var * n / (n - 1.0)).sqrt()
}

/// Advantages of `rewards[row][func]` (`None` = the function does not apply), rows grouped by
/// `num_generations` consecutive completions of one prompt.
///
/// - `sum_then_normalize`: `r = sum_f w_f r_f` (over the functions that apply), then
///   `(r - mean_group) / (std + 1e-4)` with the group's (`group`) or the batch's (`batch`)
///   unbiased std, or no division (`none`, Dr. GRPO).
/// - `normalize_then_sum`: each function normalised within its group, summed with weights, then
///   normalised over the batch.
///
/// A row where no function applies is unscorable: it is left out of the statistics and gets
/// advantage 0. Groups whose rewards are all equal get 0.
///
/// # Shapes
/// `rewards`: `[rows][funcs]`, `weights`: `[funcs]` -> `[rows]`
pub fn compute_advantages(
    rewards: &[Vec<Option<f32>>],
    weights: &[f32],
    num_generations: usize,
    scale: ScaleRewards,
    aggregation: Aggregation,
) -> Result<Vec<f32>> {
    let rows = rewards.len();
    let funcs = weights.len();
    if num_generations == 0 || !rows.is_multiple_of(num_generations) {
        return Err(GrpoError::Shape(format!(
            "{rows} rows are not whole groups of num_generations = {num_generations}"
        )));
    }
    if let Some((i, r)) = rewards.iter().enumerate().find(|(_, r)| r.len() != funcs) {
        return Err(GrpoError::Shape(format!(
            "row {i} has {} rewards for {funcs} weights",
            r.len()
        )));
    }
    let nan = |x: Option<f32>| x.unwrap_or(f32::NAN);
    let unscorable: Vec<bool> = rewards
        .iter()
        .map(|r| r.iter().all(Option::is_none))
        .collect();
    let weighted_sum = |vals: &[f32]| -> f32 {
        // nansum: NaN terms count as 0
        vals.iter()
            .zip(weights)
            .map(|(v, w)| if v.is_nan() { 0.0 } else { v * w })
            .sum()
    };
    let groups = rows / num_generations;
    let advantages: Vec<f32> = match aggregation {
        Aggregation::SumThenNormalize => {
            let total: Vec<f32> = (0..rows)
                .map(|i| {
                    if unscorable[i] {
                        f32::NAN
                    } else {
                        let vals: Vec<f32> = rewards[i].iter().map(|x| nan(*x)).collect();
                        weighted_sum(&vals)
                    }
                })
                .collect();
            let batch_std = nanstd(&total);
            (0..rows)
                .map(|i| {
                    let g = &total[(i / num_generations) * num_generations
                        ..(i / num_generations + 1) * num_generations];
                    let centred = total[i] - nanmean(g);
                    match scale {
                        ScaleRewards::None => centred,
                        ScaleRewards::Group => centred / (nanstd(g) + 1e-4),
                        ScaleRewards::Batch => centred / (batch_std + 1e-4),
                    }
                })
                .collect()
        }
        Aggregation::NormalizeThenSum => {
            let mut normed = vec![vec![f32::NAN; funcs]; rows];
            for g in 0..groups {
                for f in 0..funcs {
                    let col: Vec<f32> = (0..num_generations)
                        .map(|k| nan(rewards[g * num_generations + k][f]))
                        .collect();
                    let (m, s) = (nanmean(&col), nanstd(&col));
                    for (k, v) in col.iter().enumerate() {
                        normed[g * num_generations + k][f] = (v - m) / (s + 1e-4);
                    }
                }
            }
            let total: Vec<f32> = (0..rows)
                .map(|i| {
                    if unscorable[i] {
                        f32::NAN
                    } else {
                        weighted_sum(&normed[i])
                    }
                })
                .collect();
            let (m, s) = (nanmean(&total), nanstd(&total));
            total.iter().map(|t| (t - m) / (s + 1e-4)).collect()
        }
    };
    Ok(advantages
        .into_iter()
        .map(|a| if a.is_nan() { 0.0 } else { a })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_groups_and_unscorable_rows_get_zero() {
        let r = |v: &[Option<f32>]| v.to_vec();
        let rewards = vec![
            r(&[Some(1.0)]),
            r(&[Some(1.0)]),
            r(&[Some(0.0)]),
            r(&[None]), // unscorable: out of the group statistics
        ];
        let a = compute_advantages(
            &rewards,
            &[1.0],
            2,
            ScaleRewards::Group,
            Aggregation::SumThenNormalize,
        )
        .expect("advantages");
        assert_eq!(&a[..2], &[0.0, 0.0], "all-equal group");
        assert_eq!(a[3], 0.0, "unscorable row");
        // the last group has one scorable value: its std is NaN, so its advantage is 0 too
        assert_eq!(a[2], 0.0);
        let err = compute_advantages(
            &rewards[..3],
            &[1.0],
            2,
            ScaleRewards::Group,
            Aggregation::SumThenNormalize,
        );
        assert!(err.is_err(), "3 rows are not whole groups of 2");
    }

    #[test]
    fn dr_grpo_does_not_scale() {
        let rewards = vec![vec![Some(1.0)], vec![Some(0.0)]];
        let a = compute_advantages(
            &rewards,
            &[2.0],
            2,
            ScaleRewards::None,
            Aggregation::SumThenNormalize,
        )
        .expect("advantages");
        assert_eq!(a, vec![1.0, -1.0]);
    }
}
