//! Pretraining documents for a tiny base model that has to learn a synthetic task's notation
//! before any fine-tuning: the mix of the tiny R1 recipe (`shared/notes/tiny-r1-recipe.md`).
//!
//! - **Fact documents**: independent single steps in the worked-solution notation
//!   (`+06-4=+02;+11+3=+14;…`), which teach the arithmetic of one step.
//! - **Noisy chains**: a problem and its `<think>` chain in which each intermediate result is off
//!   by ±1 or ±2 with probability `noise` (the error carried forward, the answer being the last
//!   total shown), which teach the format without making the chains right. A share `tagged`
//!   of them (default all) wear R1's tags; the others are written plainly
//!   (`6-0-4+5=+06-0=+06;…;+02+5=+07 answer 7`), so that a base trained with a small `tagged`
//!   seldom emits the format and GRPO has to find it (R1-Zero in miniature).
//! - **Direct answers** (`6-0-4+5=7`), off by default: the recipe measured that a base trained on
//!   them answers by shortcut and that GRPO then rewards wrong chains, so they exist only to
//!   reproduce that failure.
//!
//! ```toml
//! facts = 0.5
//! facts_per_doc = 4
//! noise = 0.2
//! direct = 0.0
//! tagged = 1.0
//! ```

use serde::{Deserialize, Serialize};

use super::arithmetic::{self, ArithmeticConfig};
use crate::rng::{Rng, mix};

/// The mix of a pretraining corpus. TOML keys as the fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CorpusConfig {
    /// Share of fact documents. Default 0.5.
    pub facts: f64,
    /// Steps in each fact document. Default 4.
    pub facts_per_doc: usize,
    /// Probability that an intermediate of a noisy chain is off by ±1/±2. Default 0.2.
    pub noise: f64,
    /// Share of direct-answer documents (the shortcut). Default 0.
    pub direct: f64,
    /// Share of chain documents written with `<think>`/`<answer>` tags; the rest are plain.
    /// Default 1.
    pub tagged: f64,
}

impl Default for CorpusConfig {
    fn default() -> Self {
        Self {
            facts: 0.5,
            facts_per_doc: 4,
            noise: 0.2,
            direct: 0.0,
            tagged: 1.0,
        }
    }
}

impl CorpusConfig {
    /// Checks the shares and the noise.
    pub fn validate(&self) -> Result<(), String> {
        for (key, v) in [
            ("facts", self.facts),
            ("noise", self.noise),
            ("direct", self.direct),
            ("tagged", self.tagged),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return Err(format!("corpus: `{key}` must be in [0, 1], got {v}"));
            }
        }
        if self.facts + self.direct > 1.0 {
            return Err(format!(
                "corpus: `facts` + `direct` must be at most 1, got {}",
                self.facts + self.direct
            ));
        }
        if !(1..=64).contains(&self.facts_per_doc) {
            return Err(format!(
                "corpus: `facts_per_doc` must be in 1..=64, got {}",
                self.facts_per_doc
            ));
        }
        Ok(())
    }
}

fn signed(x: i64, width: usize) -> String {
    let w = width + 1;
    format!("{x:+0w$}")
}

/// `n` pretraining documents for the arithmetic task `task`, the same for the same `seed`.
/// Fact and chain documents use the task's operators, operand range and width, so their
/// notation is exactly the worked solutions'.
pub fn arithmetic_corpus(
    task: &ArithmeticConfig,
    corpus: &CorpusConfig,
    n: usize,
    seed: u64,
) -> Vec<String> {
    let mut rng = Rng::new(mix(&[seed, 0xC0_4905]));
    let symbol = arithmetic::ArithOp::symbol;
    // Left operands of fact steps span the totals after the first step (-9..18 for digits).
    let (lo, hi) = (task.min - task.max, 2 * task.max);
    (0..n)
        .map(|_| {
            let u = rng.unit();
            if u < corpus.facts {
                (0..corpus.facts_per_doc)
                    .map(|_| {
                        let left = rng.range(lo, hi);
                        let op = task.ops[rng.index(task.ops.len())];
                        let x = rng.range(task.min, task.max);
                        let out = op.apply(left, x).unwrap_or(left);
                        format!(
                            "{}{}{x}={}",
                            signed(left, task.width),
                            symbol(op),
                            signed(out, task.width)
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(";")
            } else if u < corpus.facts + corpus.direct {
                let p = arithmetic::draw(task, &mut rng);
                format!("{}{}", p.prompt, p.answer)
            } else {
                let first = rng.range(task.min, task.max);
                let mut prompt = first.to_string();
                let mut steps = Vec::with_capacity(task.operands.saturating_sub(1));
                let mut total = first;
                for _ in 1..task.operands {
                    let op = task.ops[rng.index(task.ops.len())];
                    let x = rng.range(task.min, task.max);
                    let mut next = op.apply(total, x).unwrap_or(total);
                    if rng.unit() < corpus.noise {
                        let off = [-2, -1, 1, 2][rng.index(4)];
                        next += off;
                    }
                    prompt.push(symbol(op));
                    prompt.push_str(&x.to_string());
                    steps.push(format!(
                        "{}{}{x}={}",
                        signed(total, task.width),
                        symbol(op),
                        signed(next, task.width)
                    ));
                    total = next;
                }
                // Drawn only when some chains are plain, so that the default corpus stays
                // the same document for document.
                if corpus.tagged < 1.0 && rng.unit() >= corpus.tagged {
                    format!("{prompt}={} answer {total}", steps.join(";"))
                } else {
                    format!(
                        "{prompt}=<think>{}</think><answer>{total}</answer>",
                        steps.join(";")
                    )
                }
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mix_follows_the_shares_and_the_seed() {
        let task = ArithmeticConfig::default();
        let corpus = CorpusConfig::default();
        let a = arithmetic_corpus(&task, &corpus, 2000, 7);
        assert_eq!(a, arithmetic_corpus(&task, &corpus, 2000, 7));
        assert_ne!(a, arithmetic_corpus(&task, &corpus, 2000, 8));
        let chains = a.iter().filter(|d| d.contains("<think>")).count();
        assert!((850..1150).contains(&chains), "{chains} chains of 2000");
        assert!(a.iter().all(|d| !d.contains("=<answer>")));
        // Facts are right; about 1 - 0.8^3 of the chains have an error somewhere.
        let mut wrong = 0;
        for d in &a {
            let body = match d.split_once("<think>") {
                Some((_, rest)) => rest.split("</think>").next().unwrap_or_default(),
                None => d.as_str(),
            };
            let mut bad = false;
            for step in body.split(';') {
                let (lhs, rhs) = step.split_once('=').expect("a step");
                let k = lhs[1..].find(['+', '-']).expect("operator") + 1;
                let (a, b): (i64, i64) = (
                    lhs[..k].parse().expect("left"),
                    lhs[k + 1..].parse().expect("x"),
                );
                let want = if &lhs[k..=k] == "+" { a + b } else { a - b };
                bad |= rhs.parse::<i64>().expect("right") != want;
            }
            if d.contains("<think>") {
                wrong += usize::from(bad);
            } else {
                assert!(!bad, "fact document with an error: {d}");
            }
        }
        let share = wrong as f64 / chains as f64;
        assert!((0.40..0.58).contains(&share), "noisy share {share}");
    }

    #[test]
    fn direct_answers_only_when_asked() {
        let task = ArithmeticConfig::default();
        let corpus = CorpusConfig {
            facts: 0.0,
            direct: 1.0,
            ..CorpusConfig::default()
        };
        let docs = arithmetic_corpus(&task, &corpus, 50, 1);
        assert!(docs.iter().all(|d| !d.contains('<') && d.contains('=')));
        assert!(
            CorpusConfig {
                facts: 0.7,
                direct: 0.5,
                ..CorpusConfig::default()
            }
            .validate()
            .is_err()
        );
    }

    #[test]
    fn untagged_chains_are_plain_and_as_many_as_asked() {
        let task = ArithmeticConfig::default();
        let corpus = CorpusConfig {
            facts: 0.0,
            tagged: 0.1,
            ..CorpusConfig::default()
        };
        let docs = arithmetic_corpus(&task, &corpus, 2000, 3);
        let tagged = docs.iter().filter(|d| d.contains("<think>")).count();
        assert!((150..250).contains(&tagged), "{tagged} tagged of 2000");
        for d in docs.iter().filter(|d| !d.contains("<think>")) {
            assert!(!d.contains('<'), "{d}");
            let (chain, answer) = d.split_once(" answer ").expect("a plain chain");
            let last = chain.rsplit('=').next().expect("a step");
            assert_eq!(last.parse::<i64>().ok(), answer.parse::<i64>().ok(), "{d}");
        }
        // The default corpus is unchanged by the knob: every chain tagged.
        let all = arithmetic_corpus(&task, &CorpusConfig::default(), 500, 3);
        assert!(
            all.iter()
                .all(|d| d.contains("<think>") || !d.contains(" answer "))
        );
    }
}
