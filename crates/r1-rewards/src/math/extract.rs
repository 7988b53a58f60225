//! Finding the final answer in a completion (or in a gold solution).
//!
//! Each extractor yields candidates, rightmost first; the grader takes the first candidate,
//! in priority order, that parses as an answer (as Math-Verify tries its matches).

use super::latex::{find_cmd, group_end, strip_delimiters};

/// The places an answer can be taken from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExtractionKind {
    /// The last `\boxed{...}` or `\fbox{...}` (with the boxes right before it, when several
    /// boxes give several answers).
    Boxed,
    /// The last `<answer>...</answer>`.
    AnswerTag,
    /// The text after the last "final answer is", "the answer is", "Answer:".
    AnswerIs,
    /// The last inline or display maths: `$...$`, `$$...$$`, `\(...\)`, `\[...\]`.
    LastMath,
    /// The end of the closing sentence, else the last number in the text.
    LastNumber,
}

impl ExtractionKind {
    /// Parses `boxed`, `answer_tag`, `answer_is`, `last_math`, `last_number`.
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "boxed" => Self::Boxed,
            "answer_tag" | "tags" => Self::AnswerTag,
            "answer_is" => Self::AnswerIs,
            "last_math" | "latex" => Self::LastMath,
            "last_number" | "number" => Self::LastNumber,
            _ => return None,
        })
    }
}

/// Which extractors run, in priority order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extraction {
    /// Extractors in priority order.
    pub priority: Vec<ExtractionKind>,
}

impl Default for Extraction {
    /// Boxed, then answer tags, then "the answer is", then the last maths, then the closing
    /// sentence or last number.
    fn default() -> Self {
        Self {
            priority: vec![
                ExtractionKind::Boxed,
                ExtractionKind::AnswerTag,
                ExtractionKind::AnswerIs,
                ExtractionKind::LastMath,
                ExtractionKind::LastNumber,
            ],
        }
    }
}

/// A candidate answer and the extractor that found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// Which extractor found it.
    pub kind: ExtractionKind,
    /// The answer text.
    pub text: String,
}

/// Texts longer than this are only searched in their last part.
const MAX_SCAN: usize = 200_000;
/// At most this many candidates are returned.
const MAX_CANDIDATES: usize = 12;

/// The last `MAX_SCAN` bytes of `text`, on a character boundary.
pub fn tail(text: &str) -> &str {
    if text.len() <= MAX_SCAN {
        return text;
    }
    let mut start = text.len() - MAX_SCAN;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}

/// Every `\boxed` / `\fbox` in `text`: (start, end, content).
fn boxes(text: &str) -> Vec<(usize, usize, String)> {
    let mut out = Vec::new();
    for cmd in ["\\boxed", "\\fbox"] {
        let mut from = 0;
        while let Some(at) = find_cmd(text, cmd, from) {
            let after = at + cmd.len();
            let mut open = after;
            while text.as_bytes().get(open) == Some(&b' ') {
                open += 1;
            }
            if text.as_bytes().get(open) == Some(&b'{') {
                if let Some(end) = group_end(text, open) {
                    out.push((at, end, text[open + 1..end - 1].trim().to_string()));
                    from = end;
                    continue;
                }
                // unclosed: take the rest
                out.push((at, text.len(), text[open + 1..].trim().to_string()));
                break;
            } else if open > after {
                // `\boxed 5`
                let word: String = text[open..]
                    .chars()
                    .take_while(|c| !c.is_whitespace() && *c != '$')
                    .collect();
                if !word.is_empty() {
                    out.push((at, open + word.len(), word));
                }
            }
            from = after;
        }
    }
    out.sort_by_key(|b| b.0);
    out
}

/// The content of the last `\boxed{...}` (or `\fbox{...}`); boxes just before it that give
/// further answers (`\boxed{4}, \boxed{5}`, `\boxed{1} and \boxed{2}`) are joined with
/// commas.
pub fn extract_boxed(text: &str) -> Option<String> {
    let text = tail(text);
    let all = boxes(text);
    let (mut start, _, last) = all.last()?.clone();
    let mut parts = vec![last];
    for (s, e, content) in all.iter().rev().skip(1) {
        if *e > start {
            continue; // nested
        }
        let between = &text[*e..start];
        let close = between.trim().chars().count() < 10
            || (between.len() < 70 && parts.last() != Some(content) && has_separator(between));
        if !close {
            break;
        }
        if parts.last() != Some(content) {
            parts.push(content.clone());
        }
        start = *s;
    }
    parts.reverse();
    parts.retain(|p| !p.is_empty());
    if parts.is_empty() {
        return None;
    }
    Some(parts.join(", "))
}

fn has_separator(s: &str) -> bool {
    let lower = s.to_ascii_lowercase();
    lower.contains(',')
        || lower.contains(';')
        || lower
            .split(|c: char| !c.is_ascii_alphabetic())
            .any(|w| w == "and" || w == "or")
}

fn answer_tag(text: &str, out: &mut Vec<String>) {
    let Some(p) = text.rfind("<answer>") else {
        return;
    };
    let start = p + "<answer>".len();
    let end = text[start..]
        .find("</answer>")
        .map_or(text.len(), |e| start + e);
    let inner = text[start..end].trim();
    if inner.is_empty() {
        return;
    }
    if let Some(b) = extract_boxed(inner) {
        out.push(b);
    }
    if is_prose(inner) {
        // A sentence inside the tags: look for the answer in it.
        let mut sub = Vec::new();
        answer_is(inner, &mut sub);
        last_math(inner, &mut sub);
        closing(inner, &mut sub);
        out.extend(sub);
    }
    out.push(strip_delimiters(inner.trim_end_matches('.')).to_string());
}

/// Whether `s` reads as prose (several words outside maths) rather than an answer.
pub fn is_prose(s: &str) -> bool {
    let mut words = 0;
    let mut in_math = false;
    let mut prev_backslash = false;
    let mut word_len = 0;
    for c in s.chars() {
        if c == '$' {
            in_math = !in_math;
        }
        if c.is_ascii_alphabetic() && !in_math {
            if word_len == 0 && prev_backslash {
                word_len = -100; // a command
            }
            word_len += 1;
        } else {
            if word_len >= 3 {
                words += 1;
            }
            word_len = 0;
        }
        prev_backslash = c == '\\';
    }
    if word_len >= 3 {
        words += 1;
    }
    words >= 4
}

/// Words of three or more letters outside maths.
fn words_in(s: &str) -> usize {
    let mut n = 0;
    let mut in_math = false;
    for w in s.split(|c: char| c.is_whitespace()) {
        if w.matches('$').count() % 2 == 1 {
            in_math = !in_math;
        }
        if !in_math && !w.contains('\\') && w.chars().filter(|c| c.is_alphabetic()).count() >= 3 {
            n += 1;
        }
    }
    n
}

const ANSWER_MARKERS: &[&str] = &[
    "final answer is",
    "final answer:",
    "final answer",
    "the answer is",
    "answer is",
    "answers are",
    "answer:",
    "answer =",
    "solutions are",
    "solution is",
    "result is",
];

/// The answer after the last "answer is" / "Answer:" marker.
fn answer_is(text: &str, out: &mut Vec<String>) {
    let lower = text.to_ascii_lowercase();
    // the marker ending last
    let mut best: Option<usize> = None;
    for m in ANSWER_MARKERS {
        if let Some(p) = lower.rfind(m) {
            let end = p + m.len();
            if best.is_none_or(|b| end > b) {
                best = Some(end);
            }
        }
    }
    let Some(start) = best else { return };
    let rest = text[start..].trim_start_matches([':', ' ', '*', '\n', '=']);
    let rest = rest.trim_start_matches(['*', ' ']);
    // maths right after the marker
    let head: String = rest.chars().take(80).collect();
    if let Some(b) = extract_boxed(&head) {
        out.push(b);
    }
    if rest.starts_with('$') || rest.starts_with("\\(") || rest.starts_with("\\[") {
        // the maths that opens the rest, with the spans joined to it by "and" / "or" / ","
        let spans = find_math(rest);
        if let Some(first) = spans.first() {
            let mut parts = vec![first.2.clone()];
            let mut last_end = first.1;
            for s in &spans[1..] {
                let between = rest[last_end..s.0].trim().to_ascii_lowercase();
                if !matches!(
                    between.trim_matches(','),
                    "and" | "or" | "" | ", and" | ", or"
                ) {
                    break;
                }
                parts.push(s.2.clone());
                last_end = s.1;
            }
            let percent = rest[last_end..].trim_start().starts_with('%');
            let mut joined = parts.join(", ");
            if percent {
                joined.push('%');
            }
            out.push(joined);
        }
    }
    // otherwise up to the end of the sentence
    let line = rest.split('\n').next().unwrap_or("");
    let line = line.split(" I hope").next().unwrap_or(line);
    let mut end = line.len();
    let bytes = line.as_bytes();
    for (i, &c) in bytes.iter().enumerate() {
        if c == b'.'
            && bytes.get(i + 1).is_none_or(|n| !n.is_ascii_digit())
            && (i == 0
                || !bytes[i - 1].is_ascii_digit()
                || bytes.get(i + 1).is_none_or(|n| *n == b' '))
        {
            end = i;
            break;
        }
    }
    let sentence = line[..end].trim().trim_end_matches([',', ';', '*']).trim();
    if sentence.is_empty() {
        return;
    }
    out.push(strip_delimiters(sentence).to_string());
    if words_in(sentence) >= 2 {
        // "Final Answer: The largest $n$ is 34.": the answer is in the sentence (the whole
        // sentence, tried first, does not parse).
        closing(sentence, out);
        last_number(sentence, out);
    }
}

/// (start, end, content) of each maths span, in order.
fn find_math(text: &str) -> Vec<(usize, usize, String)> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' if b.get(i + 1) == Some(&b'(') || b.get(i + 1) == Some(&b'[') => {
                let close = if b[i + 1] == b'(' { "\\)" } else { "\\]" };
                if let Some(e) = text[i + 2..].find(close) {
                    let inner = &text[i + 2..i + 2 + e];
                    let inline = b[i + 1] == b'(';
                    if !(inline && inner.contains('\n')) {
                        out.push((i, i + 2 + e + 2, inner.trim().to_string()));
                    }
                    i += 2 + e + 2;
                    continue;
                }
                i += 2;
            }
            b'\\' => i += 2,
            b'$' if b.get(i + 1) == Some(&b'$') => {
                if let Some(e) = text[i + 2..].find("$$") {
                    out.push((i, i + 2 + e + 2, text[i + 2..i + 2 + e].trim().to_string()));
                    i += 2 + e + 2;
                    continue;
                }
                i += 2;
            }
            b'$' => {
                // inline: to the next unescaped $ on the same line
                let mut j = i + 1;
                let mut found = None;
                while j < b.len() {
                    match b[j] {
                        b'\\' => j += 2,
                        b'\n' => break,
                        b'$' => {
                            found = Some(j);
                            break;
                        }
                        _ => j += 1,
                    }
                }
                match found {
                    Some(j) => {
                        out.push((i, j + 1, text[i + 1..j].trim().to_string()));
                        i = j + 1;
                    }
                    None => i += 1,
                }
            }
            _ => i += 1,
        }
    }
    out.retain(|(_, _, s)| !s.is_empty());
    out
}

/// The last maths span, joined with the spans right before it when they are separated by
/// "and", "or" or commas only (`$x = 1$ and $x = 2$`); then earlier spans, last first.
fn last_math(text: &str, out: &mut Vec<String>) {
    let spans = find_math(text);
    let Some(last) = spans.len().checked_sub(1) else {
        return;
    };
    let mut first = last;
    while first > 0 {
        let between = text[spans[first - 1].1..spans[first].0]
            .trim()
            .to_ascii_lowercase();
        let joins = matches!(
            between.trim_matches(','),
            "and" | "or" | "" | ", and" | ", or"
        ) || between == ",";
        if !joins || last - first >= 5 {
            break;
        }
        first -= 1;
    }
    let percent_after = text[spans[last].1..].trim_start().starts_with(['%']);
    let mut joined: Vec<String> = spans[first..=last].iter().map(|s| s.2.clone()).collect();
    if percent_after && let Some(l) = joined.last_mut() {
        l.push('%');
    }
    let mut last_alone = spans[last].2.clone();
    if percent_after {
        last_alone.push('%');
    }
    if first < last {
        out.push(joined.join(", "));
    }
    out.push(last_alone);
    for s in spans[..last].iter().rev().take(3) {
        out.push(s.2.clone());
    }
}

/// The end of the closing sentence: a relation ending it (`so n ≥ 7.`), what follows its
/// last "is", "are", "=", ":" (`so the smallest k is 12.`, `The solutions are 4 and 5.`),
/// the number that opens that, or the bare LaTeX ending it (`... is \frac{3}{2}.`).
fn closing(text: &str, out: &mut Vec<String>) {
    let t = text.trim_end().trim_end_matches(['.', '!', '*', ' ']);
    let start = t.rfind(['\n']).map_or(0, |p| p + 1).max(sentence_start(t));
    let sentence = &t[start..];
    let lower = sentence.to_ascii_lowercase();
    if [
        "all real numbers",
        "all reals",
        "all real x",
        "every real number",
        "any real number",
    ]
    .iter()
    .any(|p| lower.contains(p))
    {
        out.push("ℝ".to_string());
    }
    // the mathematical tail of the sentence
    let words: Vec<&str> = sentence.split_whitespace().collect();
    let relation = |w: &str| w.chars().any(|c| "<>≤≥≠=".contains(c));
    let mathy = |w: &str| {
        w.contains('\\')
            || w.contains('_')
            || w.contains('^')
            || w.chars().any(|c| c.is_ascii_digit())
            || relation(w)
            || matches!(w, "+" | "-" | "*" | "/" | "±")
            || (w.chars().count() == 1 && w.chars().all(|c| c.is_alphabetic()))
    };
    let mut k = words.len();
    while k > 0 && mathy(words[k - 1]) {
        k -= 1;
    }
    let tail_words = words[k..].join(" ").replace('$', "");
    let tail_relation = words[k..].iter().any(|w| relation(w)) && words.len() - k >= 3;
    if tail_relation {
        out.push(tail_words.clone());
    }
    let mut cut = None;
    for m in [" is ", " are ", " equals ", " be ", " was ", "=", ":"] {
        if let Some(p) = lower.rfind(m) {
            let e = p + m.len();
            if cut.is_none_or(|c| e > c) {
                cut = Some(e);
            }
        }
    }
    // "an angle of 45 degrees": only when nothing better marks the answer
    if cut.is_none() {
        cut = lower.rfind(" of ").map(|p| p + 4);
    }
    if let Some(c) = cut {
        let mut rest = strip_delimiters(sentence[c..].trim().trim_end_matches(['.', ',']));
        for article in [
            "a ",
            "an ",
            "the ",
            "about ",
            "approximately ",
            "exactly ",
            "only ",
            "just ",
            "roughly ",
        ] {
            if rest.len() > article.len()
                && rest
                    .get(..article.len())
                    .is_some_and(|h| h.eq_ignore_ascii_case(article))
            {
                rest = rest[article.len()..].trim_start();
            }
        }
        // `2,74 $ a`, `60 distinct arrangements`: the number first (not for `4 and 5`)
        let list = rest
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|w| !w.is_empty())
            .all(|w| {
                matches!(w, "and" | "or")
                    || w.chars()
                        .all(|c| c.is_ascii_digit() || c == '.' || c == '-')
            });
        let number_then_words = !list
            && rest.starts_with(|c: char| c.is_ascii_digit())
            && rest.split_once(' ').is_some_and(|(_, after)| {
                after
                    .trim_start_matches(['$', ' '])
                    .starts_with(|c: char| c.is_alphabetic())
            });
        if number_then_words && let Some(n) = first_number(rest) {
            out.push(n);
        }
        if !rest.is_empty() && rest.len() <= 120 {
            out.push(rest.replace('$', ""));
        }
        if let Some(n) = first_number(&sentence[c..]) {
            out.push(n);
        }
    }
    if !tail_relation
        && (tail_words.contains('\\') || tail_words.contains('^') || tail_words.contains('_'))
    {
        out.push(tail_words);
    }
}

/// Where the last sentence of `t` starts (after a `. ` that is not a decimal point).
fn sentence_start(t: &str) -> usize {
    let b = t.as_bytes();
    let mut i = b.len();
    while i > 1 {
        i -= 1;
        if (b[i - 1] == b'.' || b[i - 1] == b'!' || b[i - 1] == b'?') && b[i] == b' ' {
            let before_digit = i >= 2 && b[i - 2].is_ascii_digit();
            let after_digit = b.get(i + 1).is_some_and(u8::is_ascii_digit);
            if !(before_digit && after_digit) {
                return i + 1;
            }
        }
    }
    0
}

/// The last number in `text`, with its formats: thousands separators (`1,000`, `1 000`),
/// decimal points and commas, a leading dot, a sign, a fraction `a/b`, a percent after it.
fn last_number(text: &str, out: &mut Vec<String>) {
    let b = text.as_bytes();
    let mut end = b.len();
    while end > 0 && !b[end - 1].is_ascii_digit() {
        end -= 1;
    }
    if end == 0 {
        return;
    }
    let mut start = end;
    loop {
        while start > 0 && b[start - 1].is_ascii_digit() {
            start -= 1;
        }
        // a separator with digits before it continues the number
        if start >= 2
            && matches!(b[start - 1], b'.' | b',' | b'/' | b' ')
            && b[start - 2].is_ascii_digit()
        {
            let group = end_of_digits(b, start) - start;
            let ok = match b[start - 1] {
                b' ' => group == 3, // 1 000
                _ => true,
            };
            if ok {
                start -= 1;
                continue;
            }
        }
        break;
    }
    if start > 0 && b[start - 1] == b'.' {
        start -= 1; // .25
    }
    // a digit glued to a word (`AZYUK2A`) is not a number
    if start > 0 && b[start - 1].is_ascii_alphabetic() {
        return;
    }
    // `4 4/9`: a whole number before a proper fraction
    if let Some(slash) = text[start..end].find('/')
        && start >= 2
        && b[start - 1] == b' '
        && b[start - 2].is_ascii_digit()
    {
        let (num, den) = (&text[start..start + slash], &text[start + slash + 1..end]);
        // (improper ones too: `11 6/6` is no number, and must not read as 6/6)
        if num.parse::<u64>().is_ok() && den.parse::<u64>().is_ok() {
            let mut w = start - 1;
            while w > 0 && b[w - 1].is_ascii_digit() {
                w -= 1;
            }
            if w == 0 || !b[w - 1].is_ascii_alphanumeric() {
                start = w;
            }
        }
    }
    if start > 0 && b[start - 1] == b'-' && (start == 1 || !b[start - 2].is_ascii_alphanumeric()) {
        start -= 1;
    }
    let mut number = text[start..end].trim().to_string();
    if percent_follows(&text[end..]) {
        number.push('%');
    }
    out.push(number);
}

/// The first number in `text` (with a percent after it).
fn first_number(text: &str) -> Option<String> {
    let b = text.as_bytes();
    let start = b.iter().position(u8::is_ascii_digit)?;
    let mut end = start;
    loop {
        end = end_of_digits(b, end);
        if end + 1 < b.len() && matches!(b[end], b'.' | b',') && b[end + 1].is_ascii_digit() {
            end += 1;
            continue;
        }
        break;
    }
    let mut s = start;
    if s > 0 && b[s - 1] == b'-' {
        s -= 1;
    }
    let mut n = text[s..end].to_string();
    if percent_follows(&text[end..]) {
        n.push('%');
    }
    Some(n)
}

fn percent_follows(after: &str) -> bool {
    let a = after.trim_start().to_ascii_lowercase();
    a.starts_with('%')
        || a.starts_with("\\%")
        || a.starts_with("percent")
        || a.starts_with("per cent")
        || a.starts_with("pct")
}

fn end_of_digits(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    i
}

/// The text an answer is searched in: after the last `</think>` when there is one with
/// something after it.
fn answer_region(text: &str) -> (&str, Option<&str>) {
    let text = trim_trailer(text);
    if let Some(p) = text.rfind("</think>") {
        let after = &text[p + "</think>".len()..];
        if !after.trim().is_empty() {
            return (after, Some(text));
        }
    }
    (text, None)
}

/// Drops what models append after the answer: a chat template's next turn, end-of-text
/// markers, "I hope it is correct."
fn trim_trailer(text: &str) -> &str {
    let mut t = text;
    for marker in [
        "<|im_start|>",
        "<|im_end|>",
        "<|endoftext|>",
        "<|eot_id|>",
        "</s>",
        "<｜end▁of▁sentence｜>",
    ] {
        if let Some(p) = t.find(marker)
            && !t[..p].trim().is_empty()
        {
            t = &t[..p];
        }
    }
    let trimmed = t.trim_end();
    for tail in ["I hope it is correct.", "I hope it is correct"] {
        if let Some(r) = trimmed.strip_suffix(tail) {
            return r;
        }
    }
    t
}

/// Candidate answers of a completion, in priority order.
pub fn candidates(text: &str, extraction: &Extraction) -> Vec<Candidate> {
    let text = tail(text);
    let (region, whole) = answer_region(text);
    let mut out = candidates_in(region, extraction);
    if out.is_empty()
        && let Some(w) = whole
    {
        out = candidates_in(w, extraction);
    }
    out.truncate(MAX_CANDIDATES);
    out
}

fn candidates_in(text: &str, extraction: &Extraction) -> Vec<Candidate> {
    let mut out = Vec::new();
    let push = |out: &mut Vec<Candidate>, kind, found: Vec<String>| {
        out.extend(
            found
                .into_iter()
                .filter(|c| !c.trim().is_empty())
                .map(|text| Candidate { kind, text }),
        );
    };
    // A bare answer (no maths delimiters, no box, not prose) is its own candidate first.
    let t = text.trim();
    if !t.is_empty()
        && t.len() <= 300
        && !t.contains('$')
        && !t.contains("\\boxed")
        && !t.contains("\\fbox")
        && !t.contains("<answer>")
        && !t.contains("\\(")
        && !t.contains("\\[")
        && !t.contains('\n')
        && !t.to_ascii_lowercase().contains("answer")
        && !is_prose(t)
    {
        push(
            &mut out,
            ExtractionKind::AnswerIs,
            vec![t.trim_end_matches('.').to_string()],
        );
    }
    // "The final answer is ..." after the last box wins over the box (as Math-Verify ranks
    // it first).
    let lower_tail = text.to_ascii_lowercase();
    let final_at = lower_tail.rfind("final answer");
    let box_at = text.rfind("\\boxed").or_else(|| text.rfind("\\fbox"));
    if let (Some(f), true) = (
        final_at,
        extraction.priority.contains(&ExtractionKind::AnswerIs),
    ) && box_at.is_none_or(|b| f > b)
    {
        let mut found = Vec::new();
        answer_is(&text[f..], &mut found);
        push(&mut out, ExtractionKind::AnswerIs, found);
    }
    let kinds = &extraction.priority;
    let mut k = 0;
    while k < kinds.len() {
        let kind = kinds[k];
        let mut found = Vec::new();
        match kind {
            ExtractionKind::Boxed => {
                if let Some(b) = extract_boxed(text) {
                    found.push(b);
                }
            }
            ExtractionKind::AnswerTag => answer_tag(text, &mut found),
            ExtractionKind::AnswerIs => answer_is(text, &mut found),
            ExtractionKind::LastMath | ExtractionKind::LastNumber => {
                // The last maths and the last number compete by position, as Math-Verify's
                // lowest-priority patterns do: the one ending later goes first.
                let next = kinds.get(k + 1).copied();
                let pair = matches!(
                    (kind, next),
                    (ExtractionKind::LastMath, Some(ExtractionKind::LastNumber))
                        | (ExtractionKind::LastNumber, Some(ExtractionKind::LastMath))
                );
                if pair {
                    let math_end = find_math(text).last().map_or(0, |m| m.1);
                    let number_end = last_number_end(text).unwrap_or(0);
                    let mut m = Vec::new();
                    last_math(text, &mut m);
                    let mut n = Vec::new();
                    closing(text, &mut n);
                    last_number(text, &mut n);
                    if number_end > math_end {
                        push(&mut out, ExtractionKind::LastNumber, n);
                        push(&mut out, ExtractionKind::LastMath, m);
                    } else {
                        push(&mut out, ExtractionKind::LastMath, m);
                        push(&mut out, ExtractionKind::LastNumber, n);
                    }
                    k += 2;
                    continue;
                }
                if kind == ExtractionKind::LastMath {
                    last_math(text, &mut found);
                } else {
                    closing(text, &mut found);
                    last_number(text, &mut found);
                }
            }
        }
        push(&mut out, kind, found);
        k += 1;
    }
    out
}

/// Where the last number of `text` ends.
fn last_number_end(text: &str) -> Option<usize> {
    let b = text.as_bytes();
    (0..b.len())
        .rev()
        .find(|&i| b[i].is_ascii_digit())
        .map(|i| i + 1)
}

/// Candidate answers of a gold reference: the reference itself when it is an answer; its
/// last boxed answer when it is a worked solution (or GSM8K's `#### n`).
pub fn gold_candidates(gold: &str) -> Vec<String> {
    let gold = gold.trim();
    if let Some(p) = gold.rfind("####") {
        return vec![gold[p + 4..].trim().to_string()];
    }
    let mut out = Vec::new();
    if let Some(b) = extract_boxed(gold) {
        out.push(b);
    }
    let bare = strip_delimiters(gold);
    if is_prose(gold) {
        out.extend(
            candidates(gold, &Extraction::default())
                .into_iter()
                .map(|c| c.text),
        );
    }
    out.push(bare.to_string());
    out
}

/// The final answer of `text`: the first candidate (see [`candidates`]).
pub fn extract_answer(text: &str, extraction: &Extraction) -> Option<String> {
    candidates(text, extraction)
        .into_iter()
        .next()
        .map(|c| c.text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extracts_in_priority_order() {
        let e = Extraction::default();
        let first = |t: &str| extract_answer(t, &e);
        assert_eq!(
            first("so \\boxed{\\frac{1}{2}}. Checking this against the second equation gives \\boxed{3}")
                .as_deref(),
            Some("3")
        );
        assert_eq!(first("\\boxed{4}, \\boxed{5}").as_deref(), Some("4, 5"));
        assert_eq!(
            first("x \\boxed{a_{1}+\\{b\\}}").as_deref(),
            Some("a_{1}+\\{b\\}")
        );
        assert_eq!(first("<answer> $42$ </answer>").as_deref(), Some("42"));
        assert_eq!(
            first("Thus the answer is 3.5. Done").as_deref(),
            Some("3.5")
        );
        assert_eq!(
            first("we get $x = 2$ and then $y=7$.").as_deref(),
            Some("y=7")
        );
        assert_eq!(first("$x = 1$ or $x = 2$").as_deref(), Some("x = 1, x = 2"));
        assert_eq!(
            first("So in the end he pays 1,250 dollars").as_deref(),
            Some("1,250")
        );
        assert!(
            candidates("<think>7</think>total -3", &e)
                .iter()
                .any(|c| c.text == "-3")
        );
        assert_eq!(
            first("The model did not reach any conclusion about this problem."),
            None
        );
        assert_eq!(first("\\fbox{7}").as_deref(), Some("7"));
        let mut n = Vec::new();
        last_number("it costs 4,50 € today", &mut n);
        assert_eq!(n, ["4,50"]);
        n.clear();
        last_number("about 1 000 people, or .25", &mut n);
        assert_eq!(n, [".25"]);
    }

    #[test]
    fn gold_solutions_give_their_last_box() {
        assert_eq!(
            gold_candidates("We find $x=2$, so \\boxed{2}.")[0],
            "2".to_string()
        );
        assert_eq!(gold_candidates("#### 42")[0], "42");
        assert_eq!(gold_candidates("\\frac{1}{2}")[0], "\\frac{1}{2}");
    }
}
