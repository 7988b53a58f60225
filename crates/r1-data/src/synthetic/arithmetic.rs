//! Multi-step arithmetic chains, the task of the tiny R1 recipe (`shared/notes/tiny-r1-recipe.md`).
//!
//! Prompt `6-0-4+5=`; completion
//! `<think>+06-0=+06;+06-4=+02;+02+5=+07</think><answer>7</answer>`: one step per operator,
//! each `running total, operator, operand = new total`, with the totals written fixed-width and
//! signed so that every step has the same shape. The chain is evaluated left to right, which is
//! what the worked steps spell out (so `2+3*4=` is 20 when `*` is enabled).

use serde::{Deserialize, Serialize};

use crate::rng::Rng;

/// An operator of the chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ArithOp {
    /// `+`
    #[serde(rename = "+")]
    Add,
    /// `-`
    #[serde(rename = "-")]
    Sub,
    /// `*`, applied to the running total (left to right, no precedence).
    #[serde(rename = "*")]
    Mul,
}

impl ArithOp {
    pub(crate) fn symbol(self) -> char {
        match self {
            Self::Add => '+',
            Self::Sub => '-',
            Self::Mul => '*',
        }
    }

    pub(crate) fn apply(self, a: i64, b: i64) -> Option<i64> {
        match self {
            Self::Add => a.checked_add(b),
            Self::Sub => a.checked_sub(b),
            Self::Mul => a.checked_mul(b),
        }
    }
}

/// Difficulty knobs of the arithmetic task. TOML:
/// `task = "arithmetic"`, `operands = 4`, `min = 0`, `max = 9`, `ops = ["+", "-"]`, `width = 2`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ArithmeticConfig {
    /// Numbers in the chain (steps = operands - 1); at least 2. Default 4 (the recipe's).
    pub operands: usize,
    /// Smallest operand, at least 0. Default 0.
    pub min: i64,
    /// Largest operand. Default 9 (single digits, as in the recipe).
    pub max: i64,
    /// Operators drawn uniformly for each step. Default `["+", "-"]`.
    pub ops: Vec<ArithOp>,
    /// Digits of the signed running totals in the worked steps (`+06` is width 2); larger
    /// totals are written in full. Default 2.
    pub width: usize,
}

impl Default for ArithmeticConfig {
    fn default() -> Self {
        Self {
            operands: 4,
            min: 0,
            max: 9,
            ops: vec![ArithOp::Add, ArithOp::Sub],
            width: 2,
        }
    }
}

impl ArithmeticConfig {
    /// Checks the knobs, saying which is out of range.
    pub fn validate(&self) -> Result<(), String> {
        if !(2..=64).contains(&self.operands) {
            return Err(format!(
                "arithmetic: `operands` must be in 2..=64, got {}",
                self.operands
            ));
        }
        if self.min < 0 || self.min > self.max || self.max > 1_000_000_000 {
            return Err(format!(
                "arithmetic: need 0 <= `min` <= `max` <= 1e9, got min {} max {}",
                self.min, self.max
            ));
        }
        if self.ops.is_empty() {
            return Err("arithmetic: `ops` must name at least one of \"+\", \"-\", \"*\"".into());
        }
        if !(1..=18).contains(&self.width) {
            return Err(format!(
                "arithmetic: `width` must be in 1..=18, got {}",
                self.width
            ));
        }
        Ok(())
    }
}

/// One problem: prompt, worked steps and the result.
pub(crate) struct Problem {
    pub prompt: String,
    pub steps: String,
    pub answer: i64,
}

/// Draws one problem (redrawing on the rare `i64` overflow of long `*` chains).
pub(crate) fn draw(config: &ArithmeticConfig, rng: &mut Rng) -> Problem {
    'draw: loop {
        let first = rng.range(config.min, config.max);
        let mut prompt = first.to_string();
        let mut steps = Vec::with_capacity(config.operands - 1);
        let mut total = first;
        let w = config.width + 1; // the sign counts in the width
        for _ in 1..config.operands {
            let op = config.ops[rng.index(config.ops.len())];
            let x = rng.range(config.min, config.max);
            let Some(next) = op.apply(total, x) else {
                continue 'draw;
            };
            prompt.push(op.symbol());
            prompt.push_str(&x.to_string());
            steps.push(format!("{total:+0w$}{}{x}={next:+0w$}", op.symbol()));
            total = next;
        }
        prompt.push('=');
        return Problem {
            prompt,
            steps: steps.join(";"),
            answer: total,
        };
    }
}

/// Whether `answer` (the text of `<answer>`) is the integer `expected`.
pub fn check(answer: &str, expected: i64) -> bool {
    answer.trim().parse::<i64>().is_ok_and(|x| x == expected)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_follow_the_recipe_format() {
        let config = ArithmeticConfig::default();
        let mut rng = Rng::new(3);
        for _ in 0..200 {
            let p = draw(&config, &mut rng);
            assert_eq!(p.prompt.len(), 8, "{}", p.prompt);
            assert!(p.prompt.ends_with('='));
            assert_eq!(p.steps.split(';').count(), 3);
            // first digit plus or minus three more: -27 ..= 36
            assert!((-27..=36).contains(&p.answer), "{}", p.answer);
            let last = p.steps.rsplit('=').next().unwrap_or_default();
            assert_eq!(last.parse::<i64>().ok(), Some(p.answer));
        }
    }
}
