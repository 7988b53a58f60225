//! Finding the final answer in a completion.

/// The places an answer can be taken from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExtractionKind {
    /// The last `\boxed{...}` or `\fbox{...}`.
    Boxed,
    /// The last `<answer>...</answer>`.
    AnswerTag,
    /// The text after the last "the answer is" / "answer:".
    AnswerIs,
    /// The last inline maths: `$...$`, `\(...\)` or `\[...\]`.
    LastMath,
    /// The last number in the text (or the LaTeX expression ending its last sentence).
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

/// Which extractors run, in priority order; the first that finds something wins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extraction {
    /// Extractors in priority order.
    pub priority: Vec<ExtractionKind>,
}

impl Default for Extraction {
    /// Boxed, then answer tags, then "the answer is", then the last inline maths, then the last
    /// number.
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

/// Texts longer than this are only searched in their last part.
const MAX_SCAN: usize = 200_000;

fn tail(text: &str) -> &str {
    if text.len() <= MAX_SCAN {
        return text;
    }
    let mut start = text.len() - MAX_SCAN;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}

/// The braced group starting at `open` (which must be `{`), without its braces.
fn braced(text: &str, open: usize) -> Option<&str> {
    let bytes = text.as_bytes();
    if bytes.get(open) != Some(&b'{') {
        return None;
    }
    let mut depth = 0usize;
    let mut i = open;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 1, // skip escaped braces
            b'{' => depth += 1,
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(&text[open + 1..i]);
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// The content of the last `\boxed{...}` or `\fbox{...}` (also `\boxed 5`).
pub fn extract_boxed(text: &str) -> Option<String> {
    let text = tail(text);
    let mut best: Option<(usize, String)> = None;
    for cmd in ["\\boxed", "\\fbox"] {
        let mut from = 0;
        while let Some(pos) = text[from..].find(cmd) {
            let at = from + pos;
            let after = at + cmd.len();
            let rest = &text[after..];
            let content = if rest.starts_with('{') {
                braced(text, after).map(str::to_string)
            } else if let Some(r) = rest.strip_prefix(' ') {
                let word: String = r
                    .chars()
                    .take_while(|c| !c.is_whitespace() && *c != '$')
                    .collect();
                (!word.is_empty()).then_some(word)
            } else {
                None
            };
            if let Some(c) = content
                && best.as_ref().is_none_or(|(p, _)| at > *p)
            {
                best = Some((at, c));
            }
            from = after;
        }
    }
    best.map(|(_, c)| c)
}

fn answer_tag(text: &str) -> Option<String> {
    let start = text.rfind("<answer>")? + "<answer>".len();
    let end = text[start..]
        .find("</answer>")
        .map_or(text.len(), |e| start + e);
    let inner = text[start..end].trim();
    if inner.is_empty() {
        return None;
    }
    // An answer tag holding a boxed answer or inline maths: take that.
    Some(extract_boxed(inner).unwrap_or_else(|| strip_math(inner).to_string()))
}

fn strip_math(s: &str) -> &str {
    let s = s.trim().trim_end_matches('.').trim();
    for (a, b) in [("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]")] {
        if let Some(inner) = s.strip_prefix(a).and_then(|r| r.strip_suffix(b)) {
            return inner.trim();
        }
    }
    s
}

fn answer_is(text: &str) -> Option<String> {
    let lower = text.to_lowercase();
    let mut best: Option<usize> = None;
    for marker in [
        "the answer is",
        "final answer is",
        "answer is:",
        "answer:",
        "the answer:",
    ] {
        if let Some(p) = lower.rfind(marker) {
            let end = p + marker.len();
            if best.is_none_or(|b| end > b) {
                best = Some(end);
            }
        }
    }
    let start = best?;
    // lower-casing can shift byte offsets for non-ASCII text: map back safely
    if !text.is_char_boundary(start) || lower.len() != text.len() {
        return None;
    }
    let rest = text[start..].trim_start_matches([':', ' ']);
    let line = rest.split('\n').next().unwrap_or("");
    // Stop at a sentence end that is not a decimal point.
    let mut end = line.len();
    let bytes = line.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'.' && bytes.get(i + 1).is_none_or(|n| !n.is_ascii_digit()) {
            end = i;
            break;
        }
    }
    let ans = strip_math(&line[..end]).trim();
    (!ans.is_empty()).then(|| extract_boxed(ans).unwrap_or_else(|| ans.to_string()))
}

fn last_math(text: &str) -> Option<String> {
    let mut found: Vec<(usize, &str)> = Vec::new();
    for (open, close) in [("\\(", "\\)"), ("\\[", "\\]")] {
        if let Some(a) = text.rfind(open)
            && let Some(b) = text[a + 2..].find(close)
        {
            found.push((a, &text[a + 2..a + 2 + b]));
        }
    }
    // `$...$` pairs, scanning left to right so that pairing is right.
    let mut dollars = Vec::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' {
            i += 2;
            continue;
        }
        if bytes[i] == b'$' {
            dollars.push(i);
        }
        i += 1;
    }
    let mut k = 0;
    while k + 1 < dollars.len() {
        let (a, mut b) = (dollars[k], dollars[k + 1]);
        let mut skip = 2;
        if b == a + 1 && k + 3 < dollars.len() {
            // $$ ... $$
            b = dollars[k + 2];
            skip = 4;
            found.push((a, &text[a + 2..b]));
        } else {
            found.push((a, &text[a + 1..b]));
        }
        k += skip;
    }
    found
        .into_iter()
        .filter(|(_, s)| !s.trim().is_empty())
        .max_by_key(|(at, _)| *at)
        .map(|(_, s)| extract_boxed(s).unwrap_or_else(|| s.trim().to_string()))
}

/// The mathematical tail of the last sentence: `... the result is \frac{3}{2}.` gives
/// `\frac{3}{2}`, `... is 40_9.` gives `40_9`; plain numbers fall through to [`last_number`].
fn last_expression(text: &str) -> Option<String> {
    let trimmed = text.trim_end().trim_end_matches(['.', '!']).trim_end();
    let line = trimmed.rsplit('\n').next().unwrap_or(trimmed);
    let mathy = |w: &str| {
        w.contains('\\')
            || w.contains('_')
            || w.contains('^')
            || w.chars().any(|c| c.is_ascii_digit())
            || matches!(w, "+" | "-" | "=" | "*" | "/")
    };
    let words: Vec<&str> = line.split_whitespace().collect();
    let mut start = words.len();
    while start > 0 && mathy(words[start - 1]) {
        start -= 1;
    }
    let tail = words[start..].join(" ");
    // Only expressions that a plain number search would get wrong.
    (tail.contains('\\') || tail.contains('_') || tail.contains('^')).then_some(tail)
}

fn last_number(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut end = bytes.len();
    while end > 0 {
        if bytes[end - 1].is_ascii_digit() {
            let mut start = end;
            while start > 0
                && (bytes[start - 1].is_ascii_digit()
                    || (matches!(bytes[start - 1], b'.' | b',' | b'/')
                        && start >= 2
                        && bytes[start - 2].is_ascii_digit()))
            {
                start -= 1;
            }
            if start > 0 && bytes[start - 1] == b'-' {
                start -= 1;
            }
            let s = text[start..end].trim_end_matches(['.', ',']);
            return Some(s.to_string());
        }
        end -= 1;
    }
    None
}

/// The final answer of `text` by the first extractor in `extraction` that finds one.
pub fn extract_answer(text: &str, extraction: &Extraction) -> Option<String> {
    let text = tail(text);
    extraction.priority.iter().find_map(|kind| match kind {
        ExtractionKind::Boxed => extract_boxed(text),
        ExtractionKind::AnswerTag => answer_tag(text),
        ExtractionKind::AnswerIs => answer_is(text),
        ExtractionKind::LastMath => last_math(text),
        ExtractionKind::LastNumber => last_expression(text).or_else(|| last_number(text)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extracts_in_priority_order() {
        let e = Extraction::default();
        assert_eq!(
            extract_answer("so \\boxed{\\frac{1}{2}} and \\boxed{3}", &e).as_deref(),
            Some("3")
        );
        assert_eq!(
            extract_answer("x \\boxed{a_{1}+\\{b\\}}", &e).as_deref(),
            Some("a_{1}+\\{b\\}")
        );
        assert_eq!(
            extract_answer("<answer> $42$ </answer>", &e).as_deref(),
            Some("42")
        );
        assert_eq!(
            extract_answer("Thus the answer is 3.5. Done", &e).as_deref(),
            Some("3.5")
        );
        assert_eq!(
            extract_answer("we get $x = 2$ and then $y=7$.", &e).as_deref(),
            Some("y=7")
        );
        assert_eq!(
            extract_answer("He pays 1,250 dollars.", &e).as_deref(),
            Some("1,250")
        );
        assert_eq!(extract_answer("total is -3.", &e).as_deref(), Some("-3"));
        assert_eq!(extract_answer("no digits here", &e), None);
        assert_eq!(extract_answer("\\fbox{7}", &e).as_deref(), Some("7"));
    }
}
