//! The Countdown reward (TinyZero's rules), as an r1 reward plugin.
//!
//! The task: reach `target` with the numbers `nums`, each used once, and `+ - * /`.
//! Scores: 0 without an `<answer>...</answer>`; `format_score` (0.1) for an answer that is not a
//! valid equation, does not use every number exactly once, or misses the target; `score` (1.0)
//! when it hits the target. Inputs without `target` and `nums` (or `numbers`) in their metadata
//! are not Countdown tasks: `None`.

use r1_rewards::plugin::sdk::Plugin;
use r1_rewards::{Reward, RewardInput, export_reward};

/// The reward and its two score levels.
#[derive(Debug, Clone, Copy)]
pub struct Countdown {
    format_score: f32,
    score: f32,
}

fn answer(text: &str) -> Option<&str> {
    let start = text.rfind("<answer>")? + "<answer>".len();
    let end = text[start..].find("</answer>")? + start;
    Some(text[start..end].trim())
}

/// A tiny evaluator for `+ - * / ( )` over numbers.
struct Eval<'a> {
    s: &'a [u8],
    i: usize,
}

impl Eval<'_> {
    fn skip(&mut self) {
        while self.i < self.s.len() && self.s[self.i] == b' ' {
            self.i += 1;
        }
    }
    fn expr(&mut self) -> Option<f64> {
        let mut v = self.term()?;
        loop {
            self.skip();
            match self.s.get(self.i) {
                Some(b'+') => {
                    self.i += 1;
                    v += self.term()?;
                }
                Some(b'-') => {
                    self.i += 1;
                    v -= self.term()?;
                }
                _ => return Some(v),
            }
        }
    }
    fn term(&mut self) -> Option<f64> {
        let mut v = self.factor()?;
        loop {
            self.skip();
            match self.s.get(self.i) {
                Some(b'*') => {
                    self.i += 1;
                    v *= self.factor()?;
                }
                Some(b'/') => {
                    self.i += 1;
                    let d = self.factor()?;
                    if d == 0.0 {
                        return None;
                    }
                    v /= d;
                }
                _ => return Some(v),
            }
        }
    }
    fn factor(&mut self) -> Option<f64> {
        self.skip();
        match self.s.get(self.i)? {
            b'(' => {
                self.i += 1;
                let v = self.expr()?;
                self.skip();
                (self.s.get(self.i) == Some(&b')')).then(|| {
                    self.i += 1;
                    v
                })
            }
            b'-' => {
                self.i += 1;
                Some(-self.factor()?)
            }
            c if c.is_ascii_digit() => {
                let start = self.i;
                while self.i < self.s.len()
                    && (self.s[self.i].is_ascii_digit() || self.s[self.i] == b'.')
                {
                    self.i += 1;
                }
                std::str::from_utf8(&self.s[start..self.i])
                    .ok()?
                    .parse()
                    .ok()
            }
            _ => None,
        }
    }
}

/// Evaluates an arithmetic expression; `None` when it is not one.
pub fn evaluate(equation: &str) -> Option<f64> {
    let mut e = Eval {
        s: equation.as_bytes(),
        i: 0,
    };
    let v = e.expr()?;
    e.skip();
    (e.i == e.s.len() && v.is_finite()).then_some(v)
}

fn numbers_in(equation: &str) -> Vec<i64> {
    equation
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .filter_map(|s| s.parse().ok())
        .collect()
}

impl Countdown {
    /// TinyZero's scoring of one completion.
    pub fn score_one(&self, completion: &str, target: f64, nums: &[i64]) -> f32 {
        let Some(eq) = answer(completion) else {
            return 0.0;
        };
        let allowed = eq
            .chars()
            .all(|c| c.is_ascii_digit() || "+-*/(). ".contains(c));
        if !allowed || eq.is_empty() {
            return self.format_score;
        }
        let mut used = numbers_in(eq);
        let mut avail = nums.to_vec();
        used.sort_unstable();
        avail.sort_unstable();
        if used != avail {
            return self.format_score;
        }
        match evaluate(eq) {
            Some(v) if (v - target).abs() < 1e-5 => self.score,
            _ => self.format_score,
        }
    }
}

impl Reward for Countdown {
    fn score(&self, inputs: &[RewardInput]) -> r1_rewards::Result<Vec<Option<f32>>> {
        Ok(inputs
            .iter()
            .map(|i| {
                let target = i.metadata.get("target")?.as_f64()?;
                let nums = i
                    .metadata
                    .get("nums")
                    .or_else(|| i.metadata.get("numbers"))?;
                let nums: Vec<i64> = nums
                    .as_array()?
                    .iter()
                    .map(|n| n.as_i64())
                    .collect::<Option<_>>()?;
                Some(self.score_one(&i.completion, target, &nums))
            })
            .collect())
    }
}

impl Plugin for Countdown {
    fn create(config: serde_json::Value) -> Result<Self, String> {
        let get = |k: &str, d: f32| -> Result<f32, String> {
            match config.get(k) {
                None => Ok(d),
                Some(v) => v
                    .as_f64()
                    .map(|x| x as f32)
                    .ok_or_else(|| format!("`{k}` must be a number")),
            }
        };
        Ok(Self {
            format_score: get("format_score", 0.1)?,
            score: get("score", 1.0)?,
        })
    }
}

export_reward!(Countdown, "countdown");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tinyzero_rules() {
        let c = Countdown {
            format_score: 0.1,
            score: 1.0,
        };
        let nums = [3, 5, 7];
        assert_eq!(c.score_one("no tags", 22.0, &nums), 0.0);
        assert_eq!(c.score_one("<answer>3 * 5 + 7</answer>", 22.0, &nums), 1.0);
        assert_eq!(
            c.score_one("<answer>(7 - 3) * 5</answer>", 20.0, &nums),
            1.0
        );
        assert_eq!(c.score_one("<answer>3 * 5 + 7</answer>", 23.0, &nums), 0.1);
        assert_eq!(
            c.score_one("<answer>3 * 5</answer>", 15.0, &nums),
            0.1,
            "every number once"
        );
        assert_eq!(
            c.score_one("<answer>3 * 5 + 7 + 7</answer>", 29.0, &nums),
            0.1
        );
        assert_eq!(c.score_one("<answer>import os</answer>", 22.0, &nums), 0.1);
        assert_eq!(
            c.score_one("<answer>3 * 5 + 7 = 22</answer>", 22.0, &nums),
            0.1
        );
        assert_eq!(
            c.score_one("<answer>3 / (5 - 5) + 7</answer>", 22.0, &[3, 5, 5, 7]),
            0.1
        );
        assert_eq!(evaluate("2 * (3 + 4) - 1"), Some(13.0));
    }
}
