//! A maths answer grader: find the final answer in a completion, then decide whether it is
//! equivalent to the reference, as Math-Verify does, in Rust and within a fixed budget.
//!
//! - [`candidates`] / [`extract_answer`]: the last `\boxed{}` (several adjacent boxes give
//!   several answers), `<answer>` tags, "the final answer is ...", the last `$...$`, the end
//!   of the closing sentence or the last number; the part after `</think>` first.
//! - [`gold_answer`]: a reference as datasets store it: a bare answer, `$...$`, a worked
//!   solution (its last box) or GSM8K's `#### n`.
//! - [`equivalent`]: normalise (delimiters, `\text{}`, `\left(`, `\dfrac`, spacing, thousands
//!   separators, units, degrees, percent words), parse into an [`Expr`] and compare: exact
//!   rationals, decimals at the precision they show, expressions at seeded random points
//!   (complex arithmetic), equations up to rearrangement and scaling, inequalities and
//!   intervals as sets of reals, unordered solution lists, ordered tuples, matrices, labelled
//!   answers (`(a, b) = (4, 1)`), percentages, multiple-choice letters, text.
//! - [`grade`]: all of it for one completion, with a [`Grade`] that says why.
//!
//! Every comparison runs under a [`Budget`] of steps and 50 ms, so no input can make the
//! grader hang; over budget, the verdict is "not equivalent".

mod equiv;
mod expr;
mod extract;
mod latex;
mod parse;
mod value;

use std::time::Duration;

pub use equiv::scalar_equal;
pub use expr::{Budget, Expr, Num, RelOp};
pub use extract::{
    Candidate, Extraction, ExtractionKind, candidates, extract_answer, extract_boxed,
    gold_candidates,
};
pub use latex::clean as normalize;
pub use parse::parse_answer;
pub use value::{Complex, Func, Rational, Value};

/// Steps one comparison may take (parsing, evaluating and comparing).
pub const STEP_BUDGET: u64 = 400_000;
/// Wall-clock time one comparison may take.
pub const TIME_BUDGET: Duration = Duration::from_millis(50);

/// The verdict on one completion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grade {
    /// The extracted answer is equivalent to the reference.
    Correct {
        /// The answer that was compared.
        answer: String,
    },
    /// An answer was found and is not equivalent.
    Incorrect {
        /// The answer that was compared.
        answer: String,
    },
    /// No answer could be found in the completion.
    NoAnswer,
    /// The reference itself has no answer in it (empty, or prose without one).
    BadGold,
}

impl Grade {
    /// Whether the completion is correct.
    pub fn is_correct(&self) -> bool {
        matches!(self, Grade::Correct { .. })
    }
}

fn budget() -> Budget {
    Budget::with_deadline(STEP_BUDGET, TIME_BUDGET)
}

/// A parsed answer, or its text key when it does not parse.
enum Parsed {
    Expr(Expr),
    Text(String),
}

impl From<Expr> for Parsed {
    fn from(e: Expr) -> Self {
        match e {
            Expr::Text(t) => Parsed::Text(t.replace(' ', "")),
            e => Parsed::Expr(e),
        }
    }
}

/// The key under which texts compare: lower case, no spaces, braces or `\text`.
fn text_key(s: &str) -> String {
    // Over-long texts are compared as they are written (cleaning is not linear).
    let cleaned = if s.len() > 4 * latex::MAX_ANSWER {
        s.to_string()
    } else {
        latex::clean(s)
    };
    cleaned
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '{' && *c != '}')
        .flat_map(char::to_lowercase)
        .collect()
}

fn parse(s: &str, b: &mut Budget) -> Parsed {
    match parse::parse_answer(s, b) {
        Some(e) => Parsed::from(e),
        None => Parsed::Text(text_key(s)),
    }
}

/// A plain decimal number (`42`, `-3.5`): parses, and equals only itself written alike.
fn plain_number(s: &str) -> bool {
    let t = s.trim();
    let t = t.strip_prefix('-').unwrap_or(t);
    !t.is_empty()
        && t.len() <= 30
        && t.bytes().all(|c| c.is_ascii_digit() || c == b'.')
        && t.bytes().filter(|&c| c == b'.').count() <= 1
        && t.as_bytes()[0].is_ascii_digit()
        && t.as_bytes()[t.len() - 1].is_ascii_digit()
}

/// The first `n` bytes of `s` at most, cut on a character boundary.
fn prefix(s: &str, n: usize) -> &str {
    let mut end = n.min(s.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// A multiple-choice letter in any dress: `B`, `(B)`, `\text{(B)}`, `\textbf{B}`,
/// `Option B`, `B)`, `[B]`; with `loose`, also a letter that opens a longer answer
/// (`(B) 12`, `B: 12`).
pub fn choice_letter(s: &str, loose: bool) -> Option<char> {
    if s.len() > 200 && !loose {
        return None;
    }
    let t = latex::clean(prefix(s.trim(), 200));
    let mut t = t.trim();
    for prefix in [
        "option", "Option", "OPTION", "choice", "Choice", "answer", "Answer",
    ] {
        if let Some(r) = t.strip_prefix(prefix) {
            t = r.trim_start_matches([' ', ':']);
        }
    }
    let t = t.trim_matches(|c: char| c == ' ' || c == '*' || c == '.');
    let inner = t.trim_start_matches(['(', '[', '{']).trim_start();
    let mut chars = inner.chars();
    let c = chars.next()?;
    if !c.is_ascii_uppercase() || c > 'J' {
        return None;
    }
    let after = chars.as_str();
    let rest = after.trim_start_matches([')', ']', '}']).trim();
    if rest.is_empty() || rest == "." {
        return Some(c);
    }
    // `(B) 12`, `B) 12`, `B: 12`, `B. 12`: a letter that opens a longer answer.
    let opened = inner.len() < t.len() || after.starts_with([')', ']', ':', '.']);
    (loose && opened).then_some(c)
}

/// The letter of a multiple-choice gold: a letter alone in any dress, or one that opens the
/// option's text (`C. x = 42`, `(B) 12`).
fn gold_choice(g: &str) -> Option<char> {
    if let Some(c) = choice_letter(g, false) {
        return Some(c);
    }
    let t = g.trim();
    let b = t.as_bytes();
    let letter = |c: u8| (b'A'..=b'J').contains(&c);
    if b.len() >= 3 && letter(b[0]) && (b[1] == b'.' || b[1] == b')') && b[2] == b' ' {
        return Some(b[0] as char);
    }
    if b.len() >= 4 && b[0] == b'(' && letter(b[1]) && b[2] == b')' && b[3] == b' ' {
        return Some(b[1] as char);
    }
    None
}

/// Whether the predicted answer `pred` is equivalent to the gold answer `gold` (both as
/// answers, not whole completions; a gold solution gives its last box).
pub fn equivalent(gold: &str, pred: &str) -> bool {
    let mut b = budget();
    let Some(g) = gold_candidates(gold).into_iter().next() else {
        return false;
    };
    equivalent_answers(&g, pred, &mut b)
}

fn equivalent_answers(gold: &str, pred: &str, b: &mut Budget) -> bool {
    if let Some(letter) = gold_choice(gold) {
        return choice_letter(pred, true) == Some(letter);
    }
    if same_text(gold, pred) {
        return true;
    }
    let (g, p) = (parse(gold, b), parse(pred, b));
    parsed_equal(gold, &g, pred, &p, b)
}

/// Whether both answers read the same as text (the cheapest test, before parsing).
fn same_text(gold: &str, pred: &str) -> bool {
    let (gk, pk) = (text_key(gold), text_key(pred));
    !gk.is_empty() && gk == pk
}

/// [`equivalent_answers`] past the letter and text tests, on answers already parsed.
fn parsed_equal(gold: &str, g: &Parsed, pred: &str, p: &Parsed, b: &mut Budget) -> bool {
    let same = match (g, p) {
        (Parsed::Expr(x), Parsed::Expr(y)) => equiv::equal(x, y, b),
        (Parsed::Text(x), Parsed::Text(y)) => !x.is_empty() && x == y,
        _ => false,
    };
    if same {
        return true;
    }
    // A decimal comma (`3,75`) reads as a list of two numbers; try it as a decimal where the
    // other side is a single value.
    let scalar = |x: &Parsed| matches!(x, Parsed::Expr(e) if e.is_scalar());
    for (side, other, gold_side) in [(gold, p, true), (pred, g, false)] {
        if scalar(other)
            && let Some(dec) = decimal_comma(side)
        {
            let reparsed = parse(&dec, b);
            if let (Parsed::Expr(x), Parsed::Expr(y)) = (&reparsed, other) {
                let ok = if gold_side {
                    equiv::equal(x, y, b)
                } else {
                    equiv::equal(y, x, b)
                };
                if ok {
                    return true;
                }
            }
        }
    }
    false
}

/// `3,75` → `3.75` when the answer is a single number with a decimal comma (not a
/// thousands separator: `1,000` is a thousand).
fn decimal_comma(s: &str) -> Option<String> {
    if s.len() > 64 {
        return None;
    }
    let t = latex::clean(s);
    let t = t.trim();
    let (int, rest) = t.split_once(',')?;
    let (frac, suffix) = match rest.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let int_digits = int.trim_start_matches('-');
    let ok = !int_digits.is_empty()
        && int_digits.chars().all(|c| c.is_ascii_digit())
        && !frac.is_empty()
        && (frac.len() != 3 || int_digits == "0")
        && !suffix.contains(',')
        && suffix
            .chars()
            .all(|c| c == '%' || c == ' ' || c.is_alphabetic());
    ok.then(|| format!("{int}.{frac}{suffix}"))
}

/// The gold answer of a reference: the first of [`gold_candidates`] that parses.
pub fn gold_answer(gold: &str) -> Option<String> {
    gold_answer_within(gold, &mut budget())
}

fn gold_answer_within(gold: &str, b: &mut Budget) -> Option<String> {
    let cands = gold_candidates(gold);
    cands
        .iter()
        .find(|c| {
            plain_number(c) || gold_choice(c).is_some() || parse::parse_answer(c, b).is_some()
        })
        .or(cands.last())
        .filter(|c| !c.trim().is_empty())
        .cloned()
}

/// The letter a completion picks, read from its text: "the answer is (B)", "Option B",
/// "Answer: (d)", "答案是 B", "故选 D", else the last "(E)" or "**C**" standing alone.
pub fn choice_in_text(text: &str) -> Option<char> {
    choice_in_text_or_hedge(text).flatten()
}

/// The letter a candidate answer names: `Some(Some(c))`, `Some(None)` when it hedges between
/// letters (`(A) and (C)`), `None` when it names none.
fn candidate_letter(text: &str) -> Option<Option<char>> {
    if let Some(c) = choice_letter(text, false) {
        return Some(Some(c));
    }
    let cleaned = latex::clean(prefix(text, 4 * latex::MAX_ANSWER));
    let opened = cleaned.trim_start().starts_with(['(', '[']) || {
        let b = cleaned.trim_start().as_bytes();
        b.len() >= 2 && b[0].is_ascii_uppercase() && matches!(b[1], b')' | b':' | b'.')
    };
    if !opened {
        return choice_letter(text, true).map(Some);
    }
    letter_after(&cleaned)
}

fn choice_in_text_or_hedge(text: &str) -> Option<Option<char>> {
    let text = extract::tail(text);
    let region = match text.rfind("</think>") {
        Some(p) if !text[p + 8..].trim().is_empty() => &text[p + 8..],
        _ => text,
    };
    let lower = region.to_lowercase();
    // Anchors that state the answer outrank ones that only name an option.
    const STRONG: &[&str] = &[
        "answer is",
        "answer:",
        "answer",
        "choice is",
        "option is",
        "correct option",
        "correct choice",
        "答案是",
        "答案为",
        "答案：",
        "答案",
        "故选",
    ];
    const WEAK: &[&str] = &["option", "choice", "choose", "select", "pick", "选"];
    for anchors in [STRONG, WEAK] {
        let mut best: Option<(usize, Option<char>)> = None;
        for anchor in anchors {
            let mut from = 0;
            while let Some(p) = lower.get(from..).and_then(|l| l.find(anchor)) {
                let at = from + p + anchor.len();
                from = at;
                if !region.is_char_boundary(at) {
                    continue;
                }
                if let Some(found) = letter_after(&region[at..])
                    && best.is_none_or(|(b, _)| at > b)
                {
                    best = Some((at, found));
                }
            }
        }
        if let Some((_, found)) = best {
            // a hedge between two letters is no answer
            return Some(found);
        }
    }
    // Unanchored: the last parenthesised or bold letter.
    let b = region.as_bytes();
    for i in (0..b.len()).rev() {
        let c = b[i];
        if !(b'A'..=b'J').contains(&c) {
            continue;
        }
        let before = if i > 0 { b[i - 1] } else { b' ' };
        let after = b.get(i + 1).copied().unwrap_or(b' ');
        let paren = before == b'(' && after == b')';
        let bold = before == b'*' && after == b'*';
        if paren || bold {
            return Some(Some(c as char));
        }
    }
    None
}

/// A letter right after an anchor (skipping `is`, `:`, spaces, `*`, `$`, brackets,
/// `\\textbf{`): `Some(Some(letter))`, `Some(None)` for a hedge between two letters
/// (`(A) and (C)`), `None` when no letter follows.
fn letter_after(s: &str) -> Option<Option<char>> {
    let first = letter_at(s)?;
    let (c, rest) = first;
    let r = rest.trim_start_matches([')', ']', '}', '*', ' ']);
    for joint in ["and ", "or ", "/", ", "] {
        if let Some(after) = r.strip_prefix(joint)
            && letter_at(after).is_some()
        {
            return Some(None);
        }
    }
    Some(Some(c))
}

fn letter_at(s: &str) -> Option<(char, &str)> {
    let mut t = s;
    loop {
        let before = t;
        t = t.trim_start_matches([' ', ':', '*', '$', '{', '：', '\n']);
        for skip in [
            "is", "\\textbf", "\\text", "\\mathrm", "\\boxed", "\\(", "\\[",
        ] {
            if let Some(r) = t.strip_prefix(skip) {
                t = r;
            }
        }
        if t == before {
            break;
        }
    }
    let paren = t.starts_with(['(', '[']);
    let t = t.trim_start_matches(['(', '[']);
    let mut chars = t.chars();
    let c = chars.next()?;
    let rest = chars.as_str();
    let next = rest.chars().next();
    if next.is_some_and(char::is_alphanumeric) {
        return None;
    }
    if ('A'..='J').contains(&c) {
        return Some((c, rest));
    }
    if paren && ('a'..='j').contains(&c) && next == Some(')') {
        return Some((c.to_ascii_uppercase(), rest));
    }
    None
}

/// Grades one completion against one reference.
pub fn grade(gold: &str, completion: &str, extraction: &Extraction) -> Grade {
    // One budget for the whole verdict: reading the gold, the candidates and comparing.
    let mut b = budget();
    let Some(g) = gold_answer_within(gold, &mut b) else {
        return Grade::BadGold;
    };
    let cands = candidates(completion, extraction);
    if let Some(letter) = gold_choice(&g) {
        // The first candidate that names a letter, else the letter the text picks.
        let picked = cands
            .iter()
            .find_map(|c| candidate_letter(&c.text))
            .unwrap_or_else(|| choice_in_text(completion));
        return match picked {
            Some(c) if c == letter => Grade::Correct {
                answer: c.to_string(),
            },
            Some(c) => Grade::Incorrect {
                answer: c.to_string(),
            },
            None => match cands.first() {
                Some(c) => Grade::Incorrect {
                    answer: c.text.clone(),
                },
                None => Grade::NoAnswer,
            },
        };
    }
    // The common case first: the answer is written exactly as the gold.
    if let Some(first) = cands.first()
        && first.text.trim() == g.trim()
        && plain_number(&g)
    {
        return Grade::Correct {
            answer: first.text.clone(),
        };
    }
    let gp = parse(&g, &mut b);
    let gold_is_text = matches!(gp, Parsed::Text(_));
    // The first candidate that parses; words count only where the answer is explicit (a box,
    // tags, "the answer is") or the gold is words too.
    let explicit = |k: ExtractionKind| k != ExtractionKind::LastNumber;
    let found = cands.iter().find_map(|c| {
        let e = parse::parse_answer(&c.text, &mut b)?;
        let usable = !matches!(e, Expr::Text(_)) || gold_is_text || explicit(c.kind);
        usable.then(|| (c, Parsed::from(e)))
    });
    let (a, ap) = match found {
        Some(f) => f,
        None => match cands.first() {
            Some(c) => (c, parse(&c.text, &mut b)),
            None => return Grade::NoAnswer,
        },
    };
    let answer = a.text.clone();
    if same_text(&g, &a.text) || parsed_equal(&g, &gp, &a.text, &ap, &mut b) {
        Grade::Correct { answer }
    } else {
        Grade::Incorrect { answer }
    }
}
