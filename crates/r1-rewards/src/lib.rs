//! # r1-rewards
//!
//! Rule-based rewards for reasoning RL, the kind DeepSeek-R1 learned from: maths accuracy with an
//! answer grader, R1's format and language-consistency rewards, length and repetition shaping,
//! reasoning-step counts, and code run against tests in a sandbox. Rewards are combined into a
//! weighted [`RewardSet`] described in TOML; users add their own as Rust closures or as plugins
//! loaded at run time ([`plugin`]). No Burn dependency: plugins against this crate compile in
//! seconds.

pub mod builtin;
pub mod code;
pub mod error;
pub mod input;
pub mod math;
pub mod plugin;
pub mod set;

pub use error::{Result, RewardError};
pub use input::RewardInput;
pub use set::{RewardSet, Scored};

/// Scores a batch of completions.
///
/// Returns one value per input, in order: `None` means the reward does not apply to that input
/// (a code reward on a maths task, say); a trainer leaves it out of the statistics, as TRL does
/// with `None`.
pub trait Reward: Send + Sync {
    /// Scores `inputs`; the result must have `inputs.len()` entries.
    fn score(&self, inputs: &[RewardInput]) -> Result<Vec<Option<f32>>>;
}

/// Any `Fn(&[RewardInput]) -> Vec<Option<f32>>` is a reward.
impl<F> Reward for F
where
    F: Fn(&[RewardInput]) -> Vec<Option<f32>> + Send + Sync,
{
    fn score(&self, inputs: &[RewardInput]) -> Result<Vec<Option<f32>>> {
        Ok(self(inputs))
    }
}

/// A reward from a function of one input, scored in parallel with rayon.
pub fn per_item<F>(f: F) -> impl Reward
where
    F: Fn(&RewardInput) -> Option<f32> + Send + Sync,
{
    PerItem(f)
}

struct PerItem<F>(F);

impl<F> Reward for PerItem<F>
where
    F: Fn(&RewardInput) -> Option<f32> + Send + Sync,
{
    fn score(&self, inputs: &[RewardInput]) -> Result<Vec<Option<f32>>> {
        use rayon::prelude::*;
        Ok(inputs.par_iter().map(&self.0).collect())
    }
}
