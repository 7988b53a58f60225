//! Countdown: reach a target from a few numbers with `+ - * /`, each number used at most once
//! (or exactly once with `use_all`, TinyZero's rule), dividing only when the division is exact.
//!
//! Targets are made reachable by construction (a random expression over the numbers, with
//! positive whole intermediates); the worked solution is then found by a seeded
//! iterative-deepening search, so it uses as few operations as possible:
//! `<think>75-25=50;50*2=100</think><answer>(75-25)*2</answer>`.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use crate::rng::Rng;

/// Difficulty knobs of Countdown. TOML: `task = "countdown"`, `numbers = 4`, `min = 1`,
/// `max = 99`, `target_min = 1`, `target_max = 100`, `use_all = false`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CountdownConfig {
    /// How many numbers are given, 2 to 6. Default 4.
    pub numbers: usize,
    /// Smallest given number, at least 1. Default 1.
    pub min: i64,
    /// Largest given number. Default 99.
    pub max: i64,
    /// Smallest target. Default 1.
    pub target_min: i64,
    /// Largest target. Default 100.
    pub target_max: i64,
    /// Every number must be used exactly once (TinyZero's rule and the `countdown` plugin's);
    /// otherwise each at most once. Default false.
    pub use_all: bool,
}

impl Default for CountdownConfig {
    fn default() -> Self {
        Self {
            numbers: 4,
            min: 1,
            max: 99,
            target_min: 1,
            target_max: 100,
            use_all: false,
        }
    }
}

impl CountdownConfig {
    /// Checks the knobs, saying which is out of range.
    pub fn validate(&self) -> Result<(), String> {
        if !(2..=6).contains(&self.numbers) {
            return Err(format!(
                "countdown: `numbers` must be in 2..=6, got {}",
                self.numbers
            ));
        }
        if self.min < 1 || self.min > self.max || self.max > 10_000 {
            return Err(format!(
                "countdown: need 1 <= `min` <= `max` <= 10000, got min {} max {}",
                self.min, self.max
            ));
        }
        if self.target_min < 1 || self.target_min > self.target_max || self.target_max > 1_000_000 {
            return Err(format!(
                "countdown: need 1 <= `target_min` <= `target_max` <= 1e6, got {} and {}",
                self.target_min, self.target_max
            ));
        }
        // A target range that random expressions cannot reach would make generation spin.
        if self.target_min > self.max.saturating_pow(self.numbers as u32) {
            return Err(format!(
                "countdown: `target_min` {} is out of reach of {} numbers up to {}",
                self.target_min, self.numbers, self.max
            ));
        }
        Ok(())
    }
}

/// An operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Add,
    Sub,
    Mul,
    Div,
}

const OPS: [Op; 4] = [Op::Add, Op::Sub, Op::Mul, Op::Div];

impl Op {
    fn symbol(self) -> char {
        match self {
            Self::Add => '+',
            Self::Sub => '-',
            Self::Mul => '*',
            Self::Div => '/',
        }
    }

    fn precedence(self) -> u8 {
        match self {
            Self::Add | Self::Sub => 1,
            Self::Mul | Self::Div => 2,
        }
    }

    /// Countdown's rule for the worked solutions: positive whole results only.
    fn apply(self, a: i64, b: i64) -> Option<i64> {
        let v = match self {
            Self::Add => a.checked_add(b)?,
            Self::Sub => a.checked_sub(b)?,
            Self::Mul => a.checked_mul(b)?,
            Self::Div => {
                if b == 0 || a % b != 0 {
                    return None;
                }
                a / b
            }
        };
        (v > 0).then_some(v)
    }
}

/// A value with the expression that makes it.
#[derive(Debug, Clone)]
struct Term {
    value: i64,
    text: String,
    /// 3 for a number, else the top operator's precedence.
    precedence: u8,
}

impl Term {
    fn number(n: i64) -> Self {
        Self {
            value: n,
            text: n.to_string(),
            precedence: 3,
        }
    }

    fn combine(&self, op: Op, right: &Self, value: i64) -> Self {
        let p = op.precedence();
        let left = if self.precedence < p {
            format!("({})", self.text)
        } else {
            self.text.clone()
        };
        let right_parens =
            right.precedence < p || (right.precedence == p && matches!(op, Op::Sub | Op::Div));
        let right = if right_parens {
            format!("({})", right.text)
        } else {
            right.text.clone()
        };
        Self {
            value,
            text: format!("{left}{}{right}", op.symbol()),
            precedence: p,
        }
    }
}

/// One problem with its worked solution.
pub(crate) struct Problem {
    pub nums: Vec<i64>,
    pub target: i64,
    /// `a op b = c` steps, `;`-separated.
    pub steps: String,
    /// The solution as one expression.
    pub expression: String,
}

/// Draws a problem whose target is reachable, and solves it.
pub(crate) fn draw(config: &CountdownConfig, rng: &mut Rng) -> Problem {
    loop {
        let nums: Vec<i64> = (0..config.numbers)
            .map(|_| rng.range(config.min, config.max))
            .collect();
        // A few random expressions per draw of numbers before drawing new numbers.
        for _ in 0..16 {
            let Some(target) = random_target(&nums, config.use_all, rng) else {
                continue;
            };
            if target < config.target_min
                || target > config.target_max
                || (!config.use_all && nums.contains(&target))
            {
                continue;
            }
            if let Some((steps, expression)) = solve(&nums, target, config.use_all, rng) {
                return Problem {
                    nums,
                    target,
                    steps,
                    expression,
                };
            }
        }
    }
}

/// The value of a random expression over some (or, with `use_all`, all) of `nums`.
fn random_target(nums: &[i64], use_all: bool, rng: &mut Rng) -> Option<i64> {
    let mut pool = nums.to_vec();
    rng.shuffle(&mut pool);
    let used = if use_all {
        pool.len()
    } else {
        2 + rng.index(pool.len() - 1)
    };
    pool.truncate(used);
    while pool.len() > 1 {
        let b = pool.swap_remove(rng.index(pool.len()));
        let a = pool.swap_remove(rng.index(pool.len()));
        pool.push(OPS[rng.index(OPS.len())].apply(a, b)?);
    }
    pool.first().copied()
}

/// Seeded iterative deepening: the fewest operations that reach `target` (combining pairs of
/// the pool), with `use_all` requiring the pool to shrink to the target alone.
fn solve(nums: &[i64], target: i64, use_all: bool, rng: &mut Rng) -> Option<(String, String)> {
    let mut pool: Vec<Term> = nums.iter().map(|&n| Term::number(n)).collect();
    rng.shuffle(&mut pool);
    let mut steps = Vec::new();
    let min_depth = if use_all { nums.len() - 1 } else { 1 };
    for depth in min_depth..nums.len() {
        let mut seen = HashSet::new();
        if let Some(found) = search(&pool, target, depth, use_all, &mut steps, &mut seen) {
            return Some((steps.join(";"), found.text));
        }
    }
    None
}

fn search(
    pool: &[Term],
    target: i64,
    depth: usize,
    use_all: bool,
    steps: &mut Vec<String>,
    seen: &mut HashSet<(usize, Vec<i64>)>,
) -> Option<Term> {
    if depth == 0 {
        return pool
            .iter()
            .find(|t| t.value == target && (!use_all || pool.len() == 1))
            .cloned();
    }
    let mut key: Vec<i64> = pool.iter().map(|t| t.value).collect();
    key.sort_unstable();
    if !seen.insert((depth, key)) {
        return None;
    }
    for i in 0..pool.len() {
        for j in 0..pool.len() {
            if i == j {
                continue;
            }
            for op in OPS {
                // `a+b` and `a*b` once per pair.
                if matches!(op, Op::Add | Op::Mul) && i > j {
                    continue;
                }
                let (a, b) = (&pool[i], &pool[j]);
                let Some(value) = op.apply(a.value, b.value) else {
                    continue;
                };
                let term = a.combine(op, b, value);
                let mut next: Vec<Term> = pool
                    .iter()
                    .enumerate()
                    .filter(|&(k, _)| k != i && k != j)
                    .map(|(_, t)| t.clone())
                    .collect();
                next.push(term);
                steps.push(format!("{}{}{}={value}", a.value, op.symbol(), b.value));
                if let Some(found) = search(&next, target, depth - 1, use_all, steps, seen) {
                    return Some(found);
                }
                steps.pop();
            }
        }
    }
    None
}

/// Exact integer evaluation of `+ - * / ( )` over non-negative whole numbers: a division must
/// be exact, and unary minus is not allowed (the numbers are the given ones).
struct Eval<'a> {
    s: &'a [u8],
    i: usize,
    numbers: Vec<i64>,
}

impl Eval<'_> {
    fn skip(&mut self) {
        while self.s.get(self.i).is_some_and(|c| c.is_ascii_whitespace()) {
            self.i += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.skip();
        self.s.get(self.i).copied()
    }

    fn expr(&mut self) -> Option<i64> {
        let mut v = self.term()?;
        loop {
            match self.peek() {
                Some(b'+') => {
                    self.i += 1;
                    v = v.checked_add(self.term()?)?;
                }
                Some(b'-') => {
                    self.i += 1;
                    v = v.checked_sub(self.term()?)?;
                }
                _ => return Some(v),
            }
        }
    }

    fn term(&mut self) -> Option<i64> {
        let mut v = self.factor()?;
        loop {
            match self.peek() {
                Some(b'*') => {
                    self.i += 1;
                    v = v.checked_mul(self.factor()?)?;
                }
                Some(b'/') => {
                    self.i += 1;
                    let d = self.factor()?;
                    if d == 0 || v % d != 0 {
                        return None;
                    }
                    v /= d;
                }
                _ => return Some(v),
            }
        }
    }

    fn factor(&mut self) -> Option<i64> {
        match self.peek()? {
            b'(' => {
                self.i += 1;
                let v = self.expr()?;
                (self.peek() == Some(b')')).then(|| {
                    self.i += 1;
                    v
                })
            }
            c if c.is_ascii_digit() => {
                let start = self.i;
                while self.s.get(self.i).is_some_and(u8::is_ascii_digit) {
                    self.i += 1;
                }
                let n: i64 = std::str::from_utf8(&self.s[start..self.i])
                    .ok()?
                    .parse()
                    .ok()?;
                self.numbers.push(n);
                Some(n)
            }
            _ => None,
        }
    }
}

/// Whether `answer` is an expression that equals `target` and uses only `nums` (each at most
/// once, or exactly once with `use_all`). An `= target` suffix is allowed.
pub fn check(answer: &str, nums: &[i64], target: i64, use_all: bool) -> bool {
    let expression = match answer.rsplit_once('=') {
        Some((lhs, rhs)) => {
            if rhs.trim().parse::<i64>().ok() != Some(target) {
                return false;
            }
            lhs
        }
        None => answer,
    };
    let mut e = Eval {
        s: expression.as_bytes(),
        i: 0,
        numbers: Vec::new(),
    };
    let Some(value) = e.expr() else {
        return false;
    };
    if e.peek().is_some() || value != target {
        return false;
    }
    let mut available = nums.to_vec();
    for n in &e.numbers {
        match available.iter().position(|a| a == n) {
            Some(k) => {
                available.swap_remove(k);
            }
            None => return false,
        }
    }
    !use_all || available.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checker_rules() {
        let nums = [75, 25, 2, 7];
        assert!(check("(75-25)*2", &nums, 100, false));
        assert!(check(" (75 - 25) * 2 = 100 ", &nums, 100, false));
        assert!(!check("(75-25)*2 = 99", &nums, 100, false));
        assert!(!check("(75-25)*2", &nums, 100, true));
        assert!(check("(75-25)*2+7-7", &[75, 25, 2, 7, 7], 100, true));
        assert!(!check("(75-25)*2+7-7", &nums, 100, false), "7 used twice");
        assert!(!check("50*2", &nums, 100, false), "50 not given");
        assert!(!check("7/2*2", &[7, 2, 2], 7, false), "inexact division");
        assert!(!check("-25+125", &[25, 125], 100, false), "unary minus");
        assert!(!check("", &nums, 100, false));
        assert!(!check("(75-25*2", &nums, 100, false));
    }

    #[test]
    fn worked_solutions_check_out() {
        for use_all in [false, true] {
            let config = CountdownConfig {
                use_all,
                ..CountdownConfig::default()
            };
            let mut rng = Rng::new(11);
            for _ in 0..100 {
                let p = draw(&config, &mut rng);
                assert!(
                    check(&p.expression, &p.nums, p.target, use_all),
                    "{} from {:?} for {}",
                    p.expression,
                    p.nums,
                    p.target
                );
                let last = p.steps.rsplit('=').next().unwrap_or_default();
                assert_eq!(last.parse::<i64>().ok(), Some(p.target), "{}", p.steps);
            }
        }
    }

    #[test]
    fn expression_parentheses_keep_the_value() {
        let a = Term::number(10);
        let b = Term::number(4);
        let c = Term::number(2);
        let bc = b.combine(Op::Sub, &c, 2);
        let t = a.combine(Op::Sub, &bc, 8);
        assert_eq!(t.text, "10-(4-2)");
        let t = a.combine(Op::Div, &c.combine(Op::Mul, &Term::number(5), 10), 1);
        assert_eq!(t.text, "10/(2*5)");
        let t = a.combine(Op::Add, &b, 14).combine(Op::Mul, &c, 28);
        assert_eq!(t.text, "(10+4)*2");
    }
}
