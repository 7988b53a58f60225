//! R1's rule-based rewards and the shaping terms open-r1 and DAPO add: format, tag count,
//! language consistency, cosine-scaled length, soft overlong punishment, n-gram repetition and
//! reasoning steps. Each is a plain function of one input; [`crate::set`] builds them from TOML.

use crate::RewardInput;
use crate::math::{self, Extraction};

/// The chain of thought: the text inside the first `<think>...</think>`, or the whole
/// completion when there is none.
pub fn reasoning(completion: &str) -> &str {
    match (completion.find("<think>"), completion.find("</think>")) {
        (Some(a), Some(b)) if b > a => &completion[a + "<think>".len()..b],
        (None, Some(b)) => &completion[..b], // templates that open <think> in the prompt
        _ => completion,
    }
}

/// What follows the reasoning: the text after `</think>`, or the whole completion.
pub fn after_reasoning(completion: &str) -> &str {
    match completion.rfind("</think>") {
        Some(b) => &completion[b + "</think>".len()..],
        None => completion,
    }
}

/// Where R1's format reward expects the final answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnswerStyle {
    /// `<answer>...</answer>` after the reasoning (R1-Zero's template).
    Tags,
    /// `\boxed{...}` after the reasoning (DeepSeek-R1's maths prompt).
    Boxed,
    /// Either of the two.
    Either,
}

/// R1's format reward: 1 when the completion is `<think>` reasoning `</think>` followed by a
/// non-empty answer in the configured style, else 0. The opening tag may be missing when
/// `allow_open_in_prompt` (chat templates that end the prompt with `<think>`).
pub fn format_reward(completion: &str, style: AnswerStyle, allow_open_in_prompt: bool) -> f32 {
    let text = completion.trim();
    let body = match text.strip_prefix("<think>") {
        Some(rest) => rest,
        None if allow_open_in_prompt => text,
        None => return 0.0,
    };
    let Some(end) = body.find("</think>") else {
        return 0.0;
    };
    let (thought, rest) = (&body[..end], &body[end + "</think>".len()..]);
    if thought.trim().is_empty()
        || thought.contains("<think>")
        || rest.contains("<think>")
        || rest.contains("</think>")
    {
        return 0.0;
    }
    let rest = rest.trim();
    let tags_ok = || {
        rest.starts_with("<answer>")
            && rest.ends_with("</answer>")
            && rest.matches("<answer>").count() == 1
            && rest.matches("</answer>").count() == 1
            && !rest["<answer>".len()..rest.len() - "</answer>".len()]
                .trim()
                .is_empty()
    };
    let boxed_ok = || math::extract_boxed(rest).is_some_and(|b| !b.trim().is_empty());
    let ok = match style {
        AnswerStyle::Tags => tags_ok(),
        AnswerStyle::Boxed => boxed_ok(),
        AnswerStyle::Either => tags_ok() || boxed_ok(),
    };
    if ok { 1.0 } else { 0.0 }
}

/// open-r1's tag-count reward: 0.25 for each of `<think>\n`, `\n</think>\n`, `\n<answer>\n`
/// and `\n</answer>` appearing exactly once.
pub fn tag_count_reward(completion: &str) -> f32 {
    let once = |tag: &str| completion.matches(tag).count() == 1;
    ["<think>\n", "\n</think>\n", "\n<answer>\n", "\n</answer>"]
        .iter()
        .map(|t| if once(t) { 0.25 } else { 0.0 })
        .sum()
}

/// Writing systems the language reward can target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Script {
    /// Latin letters (English and other Western languages).
    Latin,
    /// Han characters (Chinese).
    Han,
    /// Cyrillic letters.
    Cyrillic,
    /// Hiragana, katakana (and Han) for Japanese.
    Japanese,
    /// Hangul.
    Hangul,
    /// Arabic letters.
    Arabic,
}

impl Script {
    /// Parses a language code or script name: `en`, `latin`, `zh`, `han`, `ru`, `ja`, `ko`, `ar`, ...
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name.to_ascii_lowercase().as_str() {
            "en" | "english" | "latin" | "fr" | "de" | "es" | "it" | "pt" | "nl" => Self::Latin,
            "zh" | "chinese" | "han" | "cn" => Self::Han,
            "ru" | "russian" | "cyrillic" | "uk" | "bg" => Self::Cyrillic,
            "ja" | "japanese" => Self::Japanese,
            "ko" | "korean" | "hangul" => Self::Hangul,
            "ar" | "arabic" => Self::Arabic,
            _ => return None,
        })
    }
}

fn char_script(c: char) -> Option<Script> {
    let u = c as u32;
    if c.is_ascii_alphabetic() || (0x00C0..=0x024F).contains(&u) {
        Some(Script::Latin)
    } else if (0x4E00..=0x9FFF).contains(&u)
        || (0x3400..=0x4DBF).contains(&u)
        || (0x20000..=0x2A6DF).contains(&u)
    {
        Some(Script::Han)
    } else if (0x0400..=0x04FF).contains(&u) {
        Some(Script::Cyrillic)
    } else if (0x3040..=0x30FF).contains(&u) {
        Some(Script::Japanese)
    } else if (0xAC00..=0xD7AF).contains(&u) || (0x1100..=0x11FF).contains(&u) {
        Some(Script::Hangul)
    } else if (0x0600..=0x06FF).contains(&u) {
        Some(Script::Arabic)
    } else {
        None
    }
}

/// DeepSeek-R1's language-consistency reward: the proportion of the chain of thought's words
/// written in the target script. Words are whitespace-separated runs, except that each Han, kana
/// or Hangul character counts as a word of its own; words without letters (numbers, maths,
/// punctuation) are not counted. `None` when the reasoning has no words at all.
pub fn language_consistency(completion: &str, target: Script) -> Option<f32> {
    let mut total = 0usize;
    let mut hits = 0usize;
    let matches = |s: Script| s == target || (target == Script::Japanese && s == Script::Han);
    for word in reasoning(completion).split_whitespace() {
        let mut latin_like: Option<Script> = None;
        for c in word.chars() {
            match char_script(c) {
                Some(s @ (Script::Han | Script::Japanese | Script::Hangul)) => {
                    total += 1;
                    hits += usize::from(matches(s));
                }
                Some(s) => latin_like = latin_like.or(Some(s)),
                None => {}
            }
        }
        if let Some(s) = latin_like {
            total += 1;
            hits += usize::from(matches(s));
        }
    }
    (total > 0).then(|| hits as f32 / total as f32)
}

/// Parameters of the cosine-scaled length reward (open-r1's defaults, after Kimi 1.5 / Yeo et
/// al. 2025): short correct answers earn most, long wrong ones are punished least.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CosineLength {
    /// Reward of a wrong answer of length 0.
    pub min_value_wrong: f32,
    /// Reward of a wrong answer of length `max_len`.
    pub max_value_wrong: f32,
    /// Reward of a correct answer of length `max_len`.
    pub min_value_correct: f32,
    /// Reward of a correct answer of length 0.
    pub max_value_correct: f32,
    /// Length at which the cosine reaches its end.
    pub max_len: usize,
}

impl Default for CosineLength {
    fn default() -> Self {
        Self {
            min_value_wrong: -1.0,
            max_value_wrong: -0.5,
            min_value_correct: 0.5,
            max_value_correct: 1.0,
            max_len: 1000,
        }
    }
}

impl CosineLength {
    /// The reward of a completion of `len` units that is `correct` or not.
    pub fn reward(&self, len: usize, correct: bool) -> f32 {
        let progress = len as f64 / self.max_len.max(1) as f64;
        let cosine = (progress * std::f64::consts::PI).cos();
        let (lo, hi) = if correct {
            (self.min_value_correct, self.max_value_correct)
        } else {
            // swapped for wrong answers, as open-r1 does
            (self.max_value_wrong, self.min_value_wrong)
        };
        (lo as f64 + 0.5 * (hi - lo) as f64 * (1.0 + cosine)) as f32
    }
}

/// DAPO's soft overlong punishment: 0 up to `max_len - cache`, then a linear ramp to -1 at
/// `max_len`, and -1 beyond.
pub fn soft_overlong(len: usize, max_len: usize, cache: usize) -> f32 {
    let expected = max_len.saturating_sub(cache);
    if len <= expected {
        0.0
    } else if len <= max_len {
        (expected as f32 - len as f32) / cache.max(1) as f32
    } else {
        -1.0
    }
}

/// open-r1's n-gram repetition penalty: `max_penalty * (1 - unique / total)` over the
/// lower-cased whitespace words' n-grams; 0 for texts shorter than one n-gram.
pub fn repetition_penalty(completion: &str, ngram: usize, max_penalty: f32) -> f32 {
    let lower = completion.to_lowercase();
    let words: Vec<&str> = lower.split_whitespace().collect();
    if ngram == 0 || words.len() < ngram {
        return 0.0;
    }
    let grams: Vec<&[&str]> = words.windows(ngram).collect();
    let unique: std::collections::HashSet<&[&str]> = grams.iter().copied().collect();
    (1.0 - unique.len() as f32 / grams.len() as f32) * max_penalty
}

/// open-r1's reasoning-steps reward: `min(1, steps / 3)` where steps are "Step N:", numbered
/// lines, bullets, and First/Second/Next/Finally.
pub fn reasoning_steps(completion: &str) -> f32 {
    let mut count = 0usize;
    for (i, line) in completion.split('\n').enumerate() {
        let starts_numbered = {
            let digits = line.chars().take_while(char::is_ascii_digit).count();
            digits > 0 && line[digits..].starts_with('.')
        };
        if starts_numbered {
            count += 1;
        }
        if i > 0 && (line.starts_with('-') || line.starts_with('*')) {
            count += 1;
        }
    }
    for marker in ["First,", "Second,", "Next,", "Finally,"] {
        count += completion.matches(marker).count();
    }
    let mut rest = completion;
    while let Some(pos) = rest.find("Step ") {
        let after = &rest[pos + 5..];
        let digits = after.chars().take_while(char::is_ascii_digit).count();
        if digits > 0 && after[digits..].starts_with(':') {
            count += 1;
        }
        rest = &rest[pos + 5..];
    }
    (count as f32 / 3.0).min(1.0)
}

/// A process check for left-to-right arithmetic chains (the tiny recipe's task, the stand-in
/// for the judge R1 used on its reasoning data): 1 when the reasoning's worked steps
/// (`+06-0=+06;+06-4=+02;...`, separated by `;` or new lines, spaces allowed) start from the
/// prompt's first number and apply its operators and operands in order, each total computed
/// right; 0 when a step is missing, extra, misread or miscomputed. `None` when the prompt holds
/// no chain (`6-0-4+5=`, its last such expression counts) or it overflows.
pub fn arithmetic_steps(prompt: &str, completion: &str) -> Option<f32> {
    let (first, ops) = last_chain(prompt)?;
    let steps: Vec<&str> = reasoning(completion)
        .split([';', '\n'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    if steps.len() != ops.len() {
        return Some(0.0);
    }
    let mut total = first;
    for (step, &(op, operand)) in steps.iter().zip(&ops) {
        let expected = match op {
            '+' => total.checked_add(operand)?,
            '-' => total.checked_sub(operand)?,
            _ => total.checked_mul(operand)?,
        };
        if parse_step(step) != Some((total, op, operand, expected)) {
            return Some(0.0);
        }
        total = expected;
    }
    Some(1.0)
}

/// One worked step `A op B = C` with signed `A` and `C`.
fn parse_step(step: &str) -> Option<(i64, char, i64, i64)> {
    let s: String = step.chars().filter(|c| !c.is_whitespace()).collect();
    let (lhs, rhs) = s.split_once('=')?;
    // An optionally signed integer: `+07`, `-13`, `7` (not `+-7`).
    let signed = |t: &str| t.parse::<i64>().ok();
    // The operator is the first of + - * after the left operand's own sign.
    let start = usize::from(lhs.starts_with(['+', '-']));
    let at = lhs[start..].find(['+', '-', '*'])? + start;
    let op = lhs[at..].chars().next()?;
    let b = &lhs[at + 1..];
    if b.is_empty() || !b.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    Some((signed(&lhs[..at])?, op, b.parse().ok()?, signed(rhs)?))
}

/// The last `n (op n)+ =` expression of a prompt: its first number and its (operator, operand)s.
fn last_chain(prompt: &str) -> Option<(i64, Vec<(char, i64)>)> {
    let eq = prompt.rfind('=')?;
    let head: Vec<char> = prompt[..eq].trim_end().chars().collect();
    // Walk back over digits, operators and spaces.
    let mut i = head.len();
    while i > 0 && (head[i - 1].is_ascii_digit() || "+-* ".contains(head[i - 1])) {
        i -= 1;
    }
    let expr: String = head[i..].iter().filter(|c| !c.is_whitespace()).collect();
    let expr = expr.trim_start_matches(['+', '-', '*']);
    let mut ops = Vec::new();
    let mut rest = expr;
    let len = rest.bytes().take_while(u8::is_ascii_digit).count();
    if len == 0 {
        return None;
    }
    let first: i64 = rest[..len].parse().ok()?;
    rest = &rest[len..];
    while let Some(op) = rest.chars().next() {
        let len = rest[1..].bytes().take_while(u8::is_ascii_digit).count();
        if !"+-*".contains(op) || len == 0 {
            return None;
        }
        ops.push((op, rest[1..1 + len].parse().ok()?));
        rest = &rest[1 + len..];
    }
    (!ops.is_empty()).then_some((first, ops))
}

/// Maths accuracy against the input's reference answers: 1 when the completion's final answer
/// is equivalent to any of them ([`math::grade`]), 0 otherwise (no answer found included);
/// `None` without a reference, or when no reference has an answer in it (logged, naming the
/// record by its `id` metadata when it has one).
pub fn accuracy(input: &RewardInput, extraction: &Extraction) -> Option<f32> {
    if input.answers.is_empty() {
        return None;
    }
    let mut usable = false;
    for gold in &input.answers {
        match math::grade(gold, &input.completion, extraction) {
            math::Grade::Correct { .. } => return Some(1.0),
            math::Grade::BadGold => {}
            _ => usable = true,
        }
    }
    if !usable {
        let id = input
            .metadata
            .get("id")
            .map_or_else(|| "(no id)".to_string(), ToString::to_string);
        tracing::warn!(
            record = %id,
            gold = ?input.answers,
            "accuracy: the reference has no answer the grader can read; scored None"
        );
        return None;
    }
    Some(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_steps_checks_every_step_against_the_prompt() {
        let p = "6-0-4+5=";
        let good = "<think>+06-0=+06;+06-4=+02;+02+5=+07</think><answer>7</answer>";
        assert_eq!(arithmetic_steps(p, good), Some(1.0));
        // Spaces, new lines and unpadded totals are fine.
        let loose = "<think>6 - 0 = 6\n6 - 4 = 2\n2 + 5 = 7</think><answer>7</answer>";
        assert_eq!(arithmetic_steps(p, loose), Some(1.0));
        // A wrong intermediate total, even when the answer is right.
        let wrong = "<think>+06-0=+06;+06-4=+03;+02+5=+07</think><answer>7</answer>";
        assert_eq!(arithmetic_steps(p, wrong), Some(0.0));
        // A misread operand, a missing step, an extra step, no chain at all.
        for bad in [
            "<think>+06-0=+06;+06-3=+03;+03+5=+08</think>",
            "<think>+06-0=+06;+06-4=+02</think>",
            "<think>+06-0=+06;+06-4=+02;+02+5=+07;+07+0=+07</think>",
            "<think>the answer is 7</think>",
            "",
        ] {
            assert_eq!(arithmetic_steps(p, bad), Some(0.0), "{bad}");
        }
        // Negative totals; the last expression of a longer prompt; no chain in the prompt.
        let neg = "<think>+00-9=-09;-09-4=-13;-13-3=-16</think>";
        assert_eq!(arithmetic_steps("Compute: 0-9-4-3=", neg), Some(1.0));
        assert_eq!(
            arithmetic_steps("What is the capital of France?", neg),
            None
        );
        assert_eq!(
            arithmetic_steps("2*3+1=", "<think>+02*3=+06;+06+1=+07</think>"),
            Some(1.0)
        );
        // A doubled sign is not a number.
        let doubled = "<think>+00-9=+-09;-09-4=-13;-13-3=-16</think>";
        assert_eq!(arithmetic_steps("0-9-4-3=", doubled), Some(0.0));
    }

    #[test]
    fn format_follows_r1() {
        let good = "<think>\n2 + 3 = 5\n</think>\n<answer>5</answer>";
        assert_eq!(format_reward(good, AnswerStyle::Tags, false), 1.0);
        assert_eq!(format_reward(good, AnswerStyle::Boxed, false), 0.0);
        assert_eq!(
            format_reward("<think>x</think> so \\boxed{5}", AnswerStyle::Boxed, false),
            1.0
        );
        assert_eq!(
            format_reward(
                "<think></think><answer>5</answer>",
                AnswerStyle::Tags,
                false
            ),
            0.0
        );
        assert_eq!(
            format_reward("<answer>5</answer>", AnswerStyle::Either, false),
            0.0
        );
        assert_eq!(
            format_reward("x</think><answer>5</answer>", AnswerStyle::Tags, true),
            1.0
        );
        assert_eq!(
            format_reward(
                "<think>a</think><answer>5</answer><answer>6</answer>",
                AnswerStyle::Tags,
                false
            ),
            0.0
        );
    }

    #[test]
    fn tag_count_gives_partial_credit() {
        assert_eq!(
            tag_count_reward("<think>\nx\n</think>\n<answer>\n5\n</answer>"),
            1.0
        );
        assert_eq!(tag_count_reward("<think>\nx\n</think>\n5"), 0.5);
        assert_eq!(tag_count_reward("nothing"), 0.0);
    }

    #[test]
    fn language_counts_words_by_script() {
        let en = language_consistency("<think>add the two numbers 2 + 3</think>5", Script::Latin);
        assert_eq!(en, Some(1.0));
        let mixed = language_consistency("<think>we add 两个 numbers</think>", Script::Latin);
        assert_eq!(mixed, Some(0.6)); // we, add, numbers vs 两, 个
        assert_eq!(
            language_consistency("<think>两个数</think>", Script::Han),
            Some(1.0)
        );
        assert_eq!(
            language_consistency("<think>1 + 2 = 3</think>", Script::Latin),
            None
        );
    }

    #[test]
    fn length_shaping_matches_open_r1_and_dapo() {
        let c = CosineLength::default();
        assert!((c.reward(0, true) - 1.0).abs() < 1e-6);
        assert!((c.reward(1000, true) - 0.5).abs() < 1e-6);
        // wrong answers: short ones are punished most
        assert!((c.reward(0, false) + 1.0).abs() < 1e-6);
        assert!((c.reward(1000, false) + 0.5).abs() < 1e-6);
        assert!((c.reward(500, true) - 0.75).abs() < 1e-6);
        assert_eq!(soft_overlong(100, 200, 50), 0.0);
        assert_eq!(soft_overlong(175, 200, 50), -0.5);
        assert_eq!(soft_overlong(201, 200, 50), -1.0);
    }

    #[test]
    fn repetition_and_steps() {
        assert_eq!(repetition_penalty("a b c d", 2, -1.0), 0.0);
        let r = repetition_penalty("a b a b a b", 2, -1.0); // 5 bigrams, 2 unique
        assert!((r + 0.6).abs() < 1e-6);
        assert_eq!(repetition_penalty("short", 3, -1.0), 0.0);
        assert_eq!(reasoning_steps("Step 1: a\nStep 2: b\nStep 3: c"), 1.0);
        assert!((reasoning_steps("First, a. Finally, b.") - 2.0 / 3.0).abs() < 1e-6);
        assert_eq!(reasoning_steps("no steps"), 0.0);
    }
}
