//! DeepSeek-R1's readability filters for rejection sampling (paper §2.3.3: "we have filtered
//! out chain-of-thought with mixed languages, long paragraphs, and code blocks"), plus
//! repetition, applied to the reasoning part of a completion (inside `<think>…</think>`, or
//! before a lone `</think>` when the template opened the block in the prompt; the whole text
//! when there is no reasoning block).
//!
//! Rules, each with its threshold in [`FilterConfig`] (a value *at* a threshold passes):
//! - **mixed language**: letters are classified by script (Latin, Cyrillic, Greek, Arabic,
//!   Hebrew, Devanagari, Thai, CJK = Han + kana + Hangul). Maths (`$…$`, `\(…\)`, `\[…\]`) and
//!   code spans are skipped, and so are Greek letters (they are maths symbols in reasoning
//!   text). The completion is rejected when the letters outside the dominant script exceed
//!   `max_foreign_fraction` of all letters and number at least `min_foreign_letters`.
//! - **long paragraph**: a paragraph (text between blank lines) longer than
//!   `max_paragraph_chars` characters.
//! - **code block**: a fenced block (```` ``` ```` or `~~~`) inside the reasoning. Code after the
//!   reasoning (in the answer) is allowed.
//! - **repetition**: the share of word `repetition_ngram`-grams that repeat an earlier one
//!   exceeds `max_repeated_ngram_fraction`.

use serde::{Deserialize, Serialize};

/// Settings of the readability filters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FilterConfig {
    /// Reject mixed-language reasoning (default true).
    pub mixed_language: bool,
    /// Largest share of letters outside the dominant script (default 0.05).
    pub max_foreign_fraction: f64,
    /// Fewer foreign letters than this never count as mixing (a name, a unit; default 4).
    pub min_foreign_letters: usize,
    /// Reject paragraphs longer than this many characters (default 3000; 0 turns it off).
    pub max_paragraph_chars: usize,
    /// Reject fenced code blocks in the reasoning (default true).
    pub code_blocks: bool,
    /// Reject repetitive reasoning (default true).
    pub repetition: bool,
    /// Word n-gram size of the repetition rule (default 10).
    pub repetition_ngram: usize,
    /// Largest share of repeated n-grams (default 0.3).
    pub max_repeated_ngram_fraction: f64,
}

impl Default for FilterConfig {
    fn default() -> Self {
        Self {
            mixed_language: true,
            max_foreign_fraction: 0.05,
            min_foreign_letters: 4,
            max_paragraph_chars: 3000,
            code_blocks: true,
            repetition: true,
            repetition_ngram: 10,
            max_repeated_ngram_fraction: 0.3,
        }
    }
}

/// Why a completion was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rejection {
    /// Letters of more than one script.
    MixedLanguage,
    /// A paragraph over the length limit.
    LongParagraph,
    /// A fenced code block in the reasoning.
    CodeBlock,
    /// Repeated n-grams over the limit.
    Repetition,
}

impl Rejection {
    /// Every rule, in report order.
    pub const ALL: [Rejection; 4] = [
        Self::MixedLanguage,
        Self::LongParagraph,
        Self::CodeBlock,
        Self::Repetition,
    ];

    /// The rule's name in reports and JSON.
    pub fn name(&self) -> &'static str {
        match self {
            Self::MixedLanguage => "mixed_language",
            Self::LongParagraph => "long_paragraph",
            Self::CodeBlock => "code_block",
            Self::Repetition => "repetition",
        }
    }
}

/// Writing systems the language rule tells apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Script {
    /// Latin letters, accented ones included.
    Latin,
    /// Cyrillic.
    Cyrillic,
    /// Arabic.
    Arabic,
    /// Hebrew.
    Hebrew,
    /// Devanagari.
    Devanagari,
    /// Thai.
    Thai,
    /// Han ideographs, Hiragana, Katakana and Hangul.
    Cjk,
    /// Other letters.
    Other,
}

/// The script of a letter; `None` for non-letters and for Greek (maths symbols here).
pub fn script_of(c: char) -> Option<Script> {
    let u = c as u32;
    let s = match u {
        0x0370..=0x03FF | 0x1F00..=0x1FFF => return None, // Greek: maths symbols
        0x0400..=0x052F => Script::Cyrillic,
        0x0590..=0x05FF => Script::Hebrew,
        0x0600..=0x06FF | 0x0750..=0x077F => Script::Arabic,
        0x0900..=0x097F => Script::Devanagari,
        0x0E00..=0x0E7F => Script::Thai,
        0x3040..=0x30FF | 0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xAC00..=0xD7AF | 0xF900..=0xFAFF => {
            Script::Cjk
        }
        _ if c.is_ascii_alphabetic() => Script::Latin,
        0x00C0..=0x024F | 0x1E00..=0x1EFF => Script::Latin,
        _ if c.is_alphabetic() => Script::Other,
        _ => return None,
    };
    Some(s)
}

/// Splits a completion into (reasoning, answer): the text inside the first `<think>…</think>`;
/// everything before a lone `</think>` (the template opened the block in the prompt); or no
/// reasoning and the whole text as the answer.
pub fn split_reasoning(completion: &str) -> (Option<&str>, &str) {
    let Some(close) = completion.find("</think>") else {
        return (None, completion);
    };
    let answer = &completion[close + "</think>".len()..];
    let reasoning = match completion[..close].find("<think>") {
        Some(open) => &completion[open + "<think>".len()..close],
        None => &completion[..close],
    };
    (Some(reasoning), answer)
}

/// `text` without maths (`$…$`, `$$…$$`, `\(…\)`, `\[…\]`) and inline code (`` `…` ``).
fn strip_maths_and_code(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let pairs: [(&str, &str); 5] = [
        ("$$", "$$"),
        ("$", "$"),
        ("\\(", "\\)"),
        ("\\[", "\\]"),
        ("`", "`"),
    ];
    'outer: while !rest.is_empty() {
        let next = pairs
            .iter()
            .filter_map(|(open, close)| rest.find(open).map(|i| (i, *open, *close)))
            .min_by_key(|(i, open, _)| (*i, std::cmp::Reverse(open.len())));
        match next {
            Some((i, open, close)) => {
                out.push_str(&rest[..i]);
                let after = &rest[i + open.len()..];
                match after.find(close) {
                    Some(j) => rest = &after[j + close.len()..],
                    None => {
                        rest = after;
                        continue 'outer;
                    }
                }
            }
            None => {
                out.push_str(rest);
                break;
            }
        }
    }
    out
}

/// The dominant script of `text` (maths and code left out) and the share of letters outside it;
/// `None` when there are no letters.
pub fn dominant_script(text: &str) -> Option<(Script, f64, usize)> {
    let clean = strip_maths_and_code(text);
    let mut counts: Vec<(Script, usize)> = Vec::new();
    let mut total = 0usize;
    for c in clean.chars() {
        if let Some(s) = script_of(c) {
            total += 1;
            match counts.iter_mut().find(|(k, _)| *k == s) {
                Some((_, n)) => *n += 1,
                None => counts.push((s, 1)),
            }
        }
    }
    let (script, n) = counts.into_iter().max_by_key(|&(_, n)| n)?;
    let foreign = total - n;
    Some((script, foreign as f64 / total as f64, foreign))
}

fn has_code_block(text: &str) -> bool {
    text.lines().any(|l| {
        let t = l.trim_start();
        t.starts_with("```") || t.starts_with("~~~")
    })
}

fn longest_paragraph(text: &str) -> usize {
    let mut longest = 0;
    let mut current = 0;
    for line in text.lines() {
        if line.trim().is_empty() {
            current = 0;
        } else {
            current += line.chars().count() + usize::from(current > 0);
            longest = longest.max(current);
        }
    }
    longest
}

/// Share of word `n`-grams that repeat an earlier n-gram (0 when there are fewer than `n` words).
pub fn repeated_ngram_fraction(text: &str, n: usize) -> f64 {
    let words: Vec<&str> = text.split_whitespace().collect();
    let n = n.max(1);
    if words.len() < n {
        return 0.0;
    }
    let mut seen = std::collections::HashSet::new();
    let mut repeated = 0usize;
    let grams = words.len() - n + 1;
    for w in words.windows(n) {
        if !seen.insert(w) {
            repeated += 1;
        }
    }
    repeated as f64 / grams as f64
}

/// All the rules `completion` breaks (empty: readable).
pub fn check(completion: &str, config: &FilterConfig) -> Vec<Rejection> {
    let (reasoning, _) = split_reasoning(completion);
    let text = reasoning.unwrap_or(completion);
    let mut out = Vec::new();
    if config.mixed_language
        && let Some((_, fraction, foreign)) = dominant_script(text)
        && fraction > config.max_foreign_fraction
        && foreign >= config.min_foreign_letters
    {
        out.push(Rejection::MixedLanguage);
    }
    if config.max_paragraph_chars > 0 && longest_paragraph(text) > config.max_paragraph_chars {
        out.push(Rejection::LongParagraph);
    }
    if config.code_blocks && has_code_block(text) {
        out.push(Rejection::CodeBlock);
    }
    if config.repetition
        && repeated_ngram_fraction(text, config.repetition_ngram)
            > config.max_repeated_ngram_fraction
    {
        out.push(Rejection::Repetition);
    }
    out
}

/// Deduplication key: the completion with runs of whitespace collapsed and ends trimmed.
pub fn dedup_key(completion: &str) -> String {
    completion.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Acceptance statistics of a rejection-sampling run.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct FilterStats {
    /// Completions sampled.
    pub seen: usize,
    /// Correct ones.
    pub correct: usize,
    /// Correct ones rejected by each rule (a completion can break several).
    pub rejected: Vec<(String, usize)>,
    /// Correct, readable completions that repeated an earlier one of the same prompt.
    pub duplicates: usize,
    /// Correct, readable and unique.
    pub accepted: usize,
    /// Written out (at most `keep` per prompt).
    pub kept: usize,
}

impl FilterStats {
    /// Counts one completion.
    pub fn record(&mut self, correct: bool, rejections: &[Rejection], duplicate: bool) {
        self.seen += 1;
        if !correct {
            return;
        }
        self.correct += 1;
        for r in rejections {
            match self.rejected.iter_mut().find(|(n, _)| n == r.name()) {
                Some((_, c)) => *c += 1,
                None => self.rejected.push((r.name().to_string(), 1)),
            }
        }
        if rejections.is_empty() {
            if duplicate {
                self.duplicates += 1;
            } else {
                self.accepted += 1;
            }
        }
    }

    /// Completions a rule rejected.
    pub fn rejected_by(&self, rule: Rejection) -> usize {
        self.rejected
            .iter()
            .find(|(n, _)| n == rule.name())
            .map_or(0, |(_, c)| *c)
    }

    /// An aligned table for people.
    pub fn table(&self) -> String {
        let pct = |n: usize, of: usize| 100.0 * n as f64 / of.max(1) as f64;
        let mut rows = vec![
            ("sampled".to_string(), self.seen, pct(self.seen, self.seen)),
            (
                "correct".to_string(),
                self.correct,
                pct(self.correct, self.seen),
            ),
        ];
        for rule in Rejection::ALL {
            let n = self.rejected_by(rule);
            rows.push((
                format!("  rejected: {}", rule.name()),
                n,
                pct(n, self.correct),
            ));
        }
        rows.push((
            "  duplicates".into(),
            self.duplicates,
            pct(self.duplicates, self.correct),
        ));
        rows.push((
            "accepted".into(),
            self.accepted,
            pct(self.accepted, self.seen),
        ));
        rows.push(("kept".into(), self.kept, pct(self.kept, self.seen)));
        let width = rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
        rows.iter()
            .map(|(name, n, p)| format!("{name:<width$}  {n:>8}  {p:>6.1}%"))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Which correct completions are kept first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeepOrder {
    /// Fewest tokens first (default).
    #[default]
    Shortest,
    /// In sampling order.
    First,
    /// Highest total reward first.
    HighestReward,
}

/// A scored completion of one prompt.
#[derive(Debug, Clone, Copy)]
pub struct Candidate<'a> {
    /// The text.
    pub completion: &'a str,
    /// Its tokens.
    pub tokens: usize,
    /// Total reward.
    pub total: f32,
    /// Correct, readable and unique: eligible to keep.
    pub correct: bool,
    /// Sample index (ties keep the earlier sample).
    pub index: usize,
}

/// Indices (into `candidates`) of up to `keep` eligible candidates in `order`.
pub fn select(candidates: &[Candidate<'_>], keep: usize, order: KeepOrder) -> Vec<usize> {
    let mut eligible: Vec<usize> = (0..candidates.len())
        .filter(|&i| candidates[i].correct)
        .collect();
    eligible.sort_by(|&a, &b| {
        let (x, y) = (&candidates[a], &candidates[b]);
        let primary = match order {
            KeepOrder::Shortest => x.tokens.cmp(&y.tokens),
            KeepOrder::First => std::cmp::Ordering::Equal,
            KeepOrder::HighestReward => y.total.total_cmp(&x.total),
        };
        primary.then(x.index.cmp(&y.index))
    });
    eligible.truncate(keep);
    eligible
}

#[cfg(test)]
mod tests {
    use super::*;

    fn think(reasoning: &str) -> String {
        format!("<think>{reasoning}</think> The answer is 4.")
    }

    #[test]
    fn mixed_languages_are_rejected_single_scripts_pass() {
        let c = FilterConfig::default();
        let mixed = think("First add the numbers. 然后我们把结果乘以二。 So we get 4.");
        assert_eq!(check(&mixed, &c), vec![Rejection::MixedLanguage]);
        assert!(check(&think("首先把两个数相加，然后乘以二，得到四。"), &c).is_empty());
        let maths = think("Let $\\theta = π/2$, so sin θ = 1 and the area is 4 square units.");
        assert!(check(&maths, &c).is_empty(), "{:?}", check(&maths, &c));
        // A few foreign letters (a name) are not mixing.
        let name = think("We use the method named 李 here because it adds the two numbers well.");
        assert!(check(&name, &c).is_empty());
        // Letters inside maths and code spans are skipped; the five outside count.
        assert!(
            check(
                &think(
                    "The set is $\\{x \\mid x > 0\\}$ and 李李李李李 is inside `code 李李李李`."
                ),
                &c
            )
            .contains(&Rejection::MixedLanguage)
        );
    }

    #[test]
    fn long_paragraphs_are_rejected_split_ones_pass() {
        let c = FilterConfig::default();
        let sentence = "We add the two numbers and carry the one. ";
        let long = sentence.repeat(120); // ~5000 chars
        // distinct words so that repetition does not fire
        let long: String = long
            .split(' ')
            .enumerate()
            .map(|(i, w)| format!("{w}{i} "))
            .collect();
        assert!(check(&think(&long), &c).contains(&Rejection::LongParagraph));
        let split: String = long
            .split_whitespace()
            .collect::<Vec<_>>()
            .chunks(50)
            .map(|ws| ws.join(" "))
            .collect::<Vec<_>>()
            .join("\n\n");
        assert!(!check(&think(&split), &c).contains(&Rejection::LongParagraph));
        let exact = "a".repeat(3000);
        assert!(!check(&think(&exact), &c).contains(&Rejection::LongParagraph));
        let over = "a".repeat(3001);
        assert!(check(&think(&over), &c).contains(&Rejection::LongParagraph));
    }

    #[test]
    fn code_blocks_count_only_in_the_reasoning() {
        let c = FilterConfig::default();
        let in_reasoning = "<think>Try it:\n```python\nprint(2+2)\n```\nIt prints 4.</think> 4";
        assert_eq!(check(in_reasoning, &c), vec![Rejection::CodeBlock]);
        let in_answer = "<think>Two plus two is four.</think>\n```python\nprint(2+2)\n```";
        assert!(check(in_answer, &c).is_empty());
        let lone_close = "Try:\n~~~\nx\n~~~\n</think> 4";
        assert_eq!(check(lone_close, &c), vec![Rejection::CodeBlock]);
    }

    #[test]
    fn repetition_is_rejected_normal_text_passes() {
        let c = FilterConfig::default();
        let looped = "Let me check the sum of the two numbers again carefully. ".repeat(20);
        assert_eq!(check(&think(&looped), &c), vec![Rejection::Repetition]);
        let normal = "First we read the problem. The two numbers are 2 and 2. Adding them \
                      gives 4, which we verify by counting on our fingers: one, two, three, four.";
        assert!(check(&think(normal), &c).is_empty());
        assert_eq!(repeated_ngram_fraction("a b c", 10), 0.0);
    }

    #[test]
    fn selection_keeps_the_shortest_correct_deterministically() {
        let cands = [
            Candidate {
                completion: "long",
                tokens: 30,
                total: 1.0,
                correct: true,
                index: 0,
            },
            Candidate {
                completion: "wrong",
                tokens: 5,
                total: 0.0,
                correct: false,
                index: 1,
            },
            Candidate {
                completion: "short",
                tokens: 10,
                total: 1.0,
                correct: true,
                index: 2,
            },
            Candidate {
                completion: "tie",
                tokens: 10,
                total: 2.0,
                correct: true,
                index: 3,
            },
        ];
        assert_eq!(select(&cands, 2, KeepOrder::Shortest), vec![2, 3]);
        assert_eq!(select(&cands, 10, KeepOrder::Shortest), vec![2, 3, 0]);
        assert_eq!(select(&cands, 2, KeepOrder::First), vec![0, 2]);
        assert_eq!(select(&cands, 1, KeepOrder::HighestReward), vec![3]);
        assert!(select(&cands, 0, KeepOrder::Shortest).is_empty());
    }

    #[test]
    fn dedup_keys_ignore_whitespace_and_stats_count_each_rule() {
        assert_eq!(dedup_key(" a  b\n\tc "), dedup_key("a b c"));
        let mut s = FilterStats::default();
        s.record(false, &[], false);
        s.record(true, &[Rejection::CodeBlock, Rejection::Repetition], false);
        s.record(true, &[], true);
        s.record(true, &[], false);
        assert_eq!((s.seen, s.correct, s.duplicates, s.accepted), (4, 3, 1, 1));
        assert_eq!(s.rejected_by(Rejection::CodeBlock), 1);
        assert!(s.table().contains("code_block"));
        assert_eq!(split_reasoning("no tags"), (None, "no tags"));
        assert_eq!(split_reasoning("<think>r</think>a"), (Some("r"), "a"));
        assert_eq!(split_reasoning("r</think>a"), (Some("r"), "a"));
    }
}
