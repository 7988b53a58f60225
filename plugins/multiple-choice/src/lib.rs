//! A multiple-choice reward as an r1 reward plugin: 1 when the completion's chosen letter is
//! the reference letter, 0 otherwise (no letter found included). The reference is the input's
//! answer (`"C"`, `"(C)"`), or its metadata `answer_key`. The chosen letter is read from the
//! last `\boxed{X}`, `<answer>X</answer>`, "answer is (X)" or, failing those, the last
//! standalone `(X)`.

use r1_rewards::plugin::sdk::Plugin;
use r1_rewards::{Reward, RewardInput, export_reward};

/// The reward; `letters` are the valid choices.
#[derive(Debug, Clone)]
pub struct MultipleChoice {
    letters: Vec<char>,
}

fn letter_of(s: &str, letters: &[char]) -> Option<char> {
    let t = s
        .trim()
        .trim_start_matches('(')
        .trim_end_matches([')', '.'])
        .trim();
    let t = t
        .strip_prefix("\\text{")
        .and_then(|r| r.strip_suffix('}'))
        .unwrap_or(t);
    let t = t.trim().trim_start_matches('(').trim_end_matches(')');
    let mut it = t.chars();
    let c = it.next()?.to_ascii_uppercase();
    (it.next().is_none() && letters.contains(&c)).then_some(c)
}

impl MultipleChoice {
    /// The letter a completion chose.
    pub fn chosen(&self, text: &str) -> Option<char> {
        if let Some(b) = r1_rewards::math::extract_boxed(text)
            && let Some(c) = letter_of(&b, &self.letters)
        {
            return Some(c);
        }
        if let Some(start) = text.rfind("<answer>") {
            let rest = &text[start + 8..];
            let end = rest.find("</answer>").unwrap_or(rest.len());
            if let Some(c) = letter_of(&rest[..end], &self.letters) {
                return Some(c);
            }
        }
        let lower = text.to_lowercase();
        if let Some(p) = lower.rfind("answer is")
            && lower.len() == text.len()
        {
            let word: String = text[p + 9..]
                .trim_start()
                .chars()
                .take_while(|c| !c.is_whitespace())
                .collect();
            if let Some(c) = letter_of(&word, &self.letters) {
                return Some(c);
            }
        }
        let b = text.as_bytes();
        (1..b.len().saturating_sub(1)).rev().find_map(|i| {
            (b[i - 1] == b'(' && b[i + 1] == b')')
                .then(|| (b[i] as char).to_ascii_uppercase())
                .filter(|c| self.letters.contains(c))
        })
    }
}

impl Reward for MultipleChoice {
    fn score(&self, inputs: &[RewardInput]) -> r1_rewards::Result<Vec<Option<f32>>> {
        Ok(inputs
            .iter()
            .map(|i| {
                let gold = i
                    .answers
                    .first()
                    .map(String::as_str)
                    .or_else(|| i.metadata.get("answer_key").and_then(|v| v.as_str()))?;
                let gold = letter_of(gold, &self.letters)?;
                Some(if self.chosen(&i.completion) == Some(gold) {
                    1.0
                } else {
                    0.0
                })
            })
            .collect())
    }
}

impl Plugin for MultipleChoice {
    fn create(config: serde_json::Value) -> Result<Self, String> {
        let letters = match config.get("letters") {
            None => "ABCDE".to_string(),
            Some(v) => v
                .as_str()
                .ok_or("`letters` must be a string such as \"ABCD\"")?
                .to_uppercase(),
        };
        if letters.is_empty() {
            return Err("`letters` must not be empty".into());
        }
        Ok(Self {
            letters: letters.chars().collect(),
        })
    }
}

export_reward!(MultipleChoice, "multiple_choice");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_chosen_letter() {
        let m = MultipleChoice::create(serde_json::json!({})).expect("create");
        assert_eq!(m.chosen("so \\boxed{C}"), Some('C'));
        assert_eq!(m.chosen("<answer>(b)</answer>"), Some('B'));
        assert_eq!(m.chosen("The answer is (D)."), Some('D'));
        assert_eq!(m.chosen("between (A) and (E) I pick (E)"), Some('E'));
        assert_eq!(m.chosen("no idea"), None);
        assert_eq!(m.chosen("\\boxed{\\text{(A)}}"), Some('A'));
    }
}
