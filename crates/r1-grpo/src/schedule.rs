//! Learning-rate schedules with warm-up, as transformers' `get_scheduler` computes them.

use serde::{Deserialize, Serialize};

/// `lr_scheduler_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LrSchedule {
    /// Constant after warm-up (`constant_with_warmup`; `constant` when there is no warm-up).
    #[default]
    Constant,
    /// Linear decay to 0 at `max_steps` after warm-up (transformers' default).
    Linear,
    /// Half-cosine decay to 0 at `max_steps` after warm-up.
    Cosine,
}

/// The learning rate of optimiser step `step` (0-based, as transformers counts):
/// `base * step / warmup` during warm-up, then the schedule's factor.
pub fn learning_rate(
    base: f64,
    step: u64,
    warmup_steps: u64,
    max_steps: u64,
    schedule: LrSchedule,
) -> f64 {
    learning_rate_with_floor(base, step, warmup_steps, max_steps, schedule, 0.0)
}

/// [`learning_rate`] whose cosine decays to `min_lr_rate * base` instead of 0 (transformers'
/// `cosine_with_min_lr`; DeepSeek-R1's SFT decays to a tenth). Other schedules ignore the floor.
pub fn learning_rate_with_floor(
    base: f64,
    step: u64,
    warmup_steps: u64,
    max_steps: u64,
    schedule: LrSchedule,
    min_lr_rate: f64,
) -> f64 {
    if step < warmup_steps {
        return base * step as f64 / warmup_steps.max(1) as f64;
    }
    let decay_steps = max_steps.saturating_sub(warmup_steps).max(1) as f64;
    let progress = ((step - warmup_steps) as f64 / decay_steps).min(1.0);
    match schedule {
        LrSchedule::Constant => base,
        LrSchedule::Linear => base * (1.0 - progress).max(0.0),
        LrSchedule::Cosine => {
            let f = 0.5 * (1.0 + (std::f64::consts::PI * progress).cos());
            base * (f * (1.0 - min_lr_rate) + min_lr_rate)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_transformers_lambdas() {
        // get_linear_schedule_with_warmup(warmup=2, total=10) at steps 0..: 0, .5, 1, .875, ...
        let lr = |s| learning_rate(1.0, s, 2, 10, LrSchedule::Linear);
        assert_eq!((lr(0), lr(1), lr(2)), (0.0, 0.5, 1.0));
        assert!((lr(3) - 0.875).abs() < 1e-12);
        assert_eq!(lr(10), 0.0);
        assert_eq!(lr(20), 0.0);
        let cos = |s| learning_rate(2.0, s, 0, 4, LrSchedule::Cosine);
        assert!(
            (cos(0) - 2.0).abs() < 1e-12 && (cos(2) - 1.0).abs() < 1e-12 && cos(4).abs() < 1e-12
        );
        assert_eq!(learning_rate(3.0, 0, 0, 0, LrSchedule::Constant), 3.0);
        // get_cosine_with_min_lr_schedule_with_warmup(warmup=0, total=4, min_lr_rate=0.1)
        let floor = |s| learning_rate_with_floor(1.0, s, 0, 4, LrSchedule::Cosine, 0.1);
        assert!((floor(2) - 0.55).abs() < 1e-12 && (floor(4) - 0.1).abs() < 1e-12);
        assert_eq!(learning_rate(3.0, 1, 4, 0, LrSchedule::Constant), 0.75);
    }
}
