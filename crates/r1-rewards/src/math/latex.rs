//! From an answer as written (LaTeX, plain text, or both) to tokens: delimiters, styling,
//! spacing, units, thousands separators and synonyms are normalised first.

/// Answers longer than this after cleaning are compared as text only.
pub const MAX_ANSWER: usize = 1500;

/// Finds `\name` at or after `from` where the command name ends there (so `\text` does not
/// match `\textbf`).
pub fn find_cmd(s: &str, name: &str, from: usize) -> Option<usize> {
    let mut at = from;
    while let Some(p) = s.get(at..)?.find(name) {
        let start = at + p;
        let end = start + name.len();
        let next = s[end..].chars().next();
        if !next.is_some_and(|c| c.is_ascii_alphabetic()) {
            return Some(start);
        }
        at = end;
    }
    None
}

/// The end (exclusive, after `}`) of the braced group opening at `open`.
pub fn group_end(s: &str, open: usize) -> Option<usize> {
    let b = s.as_bytes();
    if b.get(open) != Some(&b'{') {
        return None;
    }
    let mut depth = 0usize;
    let mut i = open;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 1,
            b'{' => depth += 1,
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i + 1);
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

fn skip_ws(s: &str, mut i: usize) -> usize {
    let b = s.as_bytes();
    while i < b.len() && b[i] == b' ' {
        i += 1;
    }
    i
}

/// Replaces every `\name{arg}` by `f(arg)` (innermost first where they nest).
fn map_cmd(s: &str, name: &str, f: &dyn Fn(&str) -> String) -> String {
    let mut out = s.to_string();
    let mut guard = 0;
    let mut from = 0;
    while let Some(pos) = find_cmd(&out, name, from) {
        guard += 1;
        if guard > 200 {
            break;
        }
        let open = skip_ws(&out, pos + name.len());
        let Some(end) = group_end(&out, open) else {
            // `\text` without a group: drop the command.
            out.replace_range(pos..pos + name.len(), "");
            from = pos;
            continue;
        };
        let inner = map_cmd(&out[open + 1..end - 1], name, f);
        let replacement = f(&inner);
        out.replace_range(pos..end, &replacement);
        from = pos + replacement.len();
    }
    out
}

/// Strips one pair of outer maths delimiters.
pub fn strip_delimiters(s: &str) -> &str {
    let mut s = s.trim();
    loop {
        let before = s;
        for (a, b) in [("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]")] {
            if s.len() >= a.len() + b.len()
                && let Some(inner) = s.strip_prefix(a).and_then(|r| r.strip_suffix(b))
            {
                s = inner.trim();
                break;
            }
        }
        if s == before {
            return s;
        }
    }
}

/// The content of `\boxed{...}` / `\fbox{...}` wrappers anywhere in `s`.
fn unbox(s: &str) -> String {
    let mut out = s.to_string();
    for name in ["\\boxed", "\\fbox", "\\framebox"] {
        out = map_cmd(&out, name, &|x: &str| x.to_string());
    }
    out
}

const TEXT_CMDS: &[&str] = &[
    "\\text",
    "\\textbf",
    "\\textit",
    "\\textrm",
    "\\textsf",
    "\\texttt",
    "\\textnormal",
    "\\textup",
    "\\mathrm",
    "\\mathbf",
    "\\mathit",
    "\\mathsf",
    "\\mathtt",
    "\\mathnormal",
    "\\boldsymbol",
    "\\bm",
    "\\mbox",
    "\\hbox",
    "\\emph",
    "\\operatorname",
];

const DECORATIONS: &[&str] = &[
    "\\overline",
    "\\underline",
    "\\overrightarrow",
    "\\overleftrightarrow",
    "\\widehat",
    "\\widetilde",
    "\\hat",
    "\\bar",
    "\\vec",
    "\\tilde",
    "\\dot",
    "\\ddot",
    "\\mathcal",
    "\\mathscr",
    "\\mathfrak",
    "\\color",
];

/// Words that stand between several answers.
fn is_separator_word(w: &str) -> bool {
    matches!(
        w.trim().trim_matches(',').trim(),
        "and" | "or" | "," | "and/or" | "und" | "et" | "y" | "ou" | "o" | "as well as"
    )
}

/// Cleans an answer for tokenising. See the module docs for what goes.
pub fn clean(answer: &str) -> String {
    let mut s = strip_delimiters(answer.trim().trim_end_matches('\\')).to_string();
    s = fix_escapes(&s);
    if s.contains("\\boxed") || s.contains("\\fbox") {
        s = unbox(&s);
    }
    // Markdown emphasis and stray dollar signs (currency or inner maths delimiters).
    s = s.replace("**", "").replace("\\$", "").replace('$', "");
    if s.contains("\\text")
        || s.contains("\\math")
        || s.contains("\\mbox")
        || s.contains("\\op")
        || s.contains("\\bm")
        || s.contains("\\emph")
        || s.contains("\\hbox")
        || s.contains("\\boldsymbol")
    {
        for cmd in TEXT_CMDS {
            s = map_cmd(&s, cmd, &|inner: &str| {
                if is_separator_word(inner) {
                    " , ".to_string()
                } else {
                    format!(" {inner} ")
                }
            });
        }
    }
    if s.contains("\\mathbb") {
        s = map_cmd(&s, "\\mathbb", &|inner: &str| match inner.trim() {
            "R" => " ℝ ".to_string(),
            other => format!(" \\mathbb{other} "),
        });
    }
    for cmd in DECORATIONS {
        if s.contains(cmd) {
            s = map_cmd(&s, cmd, &|inner: &str| format!("{{{inner}}}"));
        }
    }
    s = replace_all(&s);
    s = words(&s);
    s = join_thousands(&s);
    s = comma_thousands(&s);
    s = percent_words(&s);
    let t = s.trim().trim_end_matches(['.', ';']).trim();
    let t = t.strip_suffix("\\\\").unwrap_or(t).trim();
    t.to_string()
}

/// Currency signs and codes go; "all real numbers" is ℝ.
fn words(s: &str) -> String {
    let mut out = s.to_string();
    for sign in ["€", "£", "¥", "₹", "₩", "₽", "¢", "元"] {
        if out.contains(sign) {
            out = out.replace(sign, " ");
        }
    }
    if !out.bytes().any(|b| b.is_ascii_alphabetic()) {
        return out;
    }
    let lower = out.to_ascii_lowercase();
    for phrase in [
        "all real numbers",
        "all real values",
        "all reals",
        "all real x",
        "every real number",
        "any real number",
        "the set of real numbers",
        "the real numbers",
        "real numbers",
    ] {
        if let Some(p) = lower.find(phrase) {
            out.replace_range(p..p + phrase.len(), " ℝ ");
            break;
        }
    }
    let mut kept: Vec<&str> = Vec::new();
    for w in out.split(' ') {
        let bare = w.trim_matches(|c: char| c == '.' || c == ',');
        if matches!(
            bare,
            "USD"
                | "EUR"
                | "GBP"
                | "CAD"
                | "AUD"
                | "INR"
                | "RMB"
                | "CNY"
                | "JPY"
                | "Rs"
                | "Rs."
                | "US"
        ) && !w.ends_with(',')
        {
            continue;
        }
        kept.push(w);
    }
    kept.join(" ")
}

/// Doubled backslashes before commands (`\\\\frac`, from over-escaped JSON) become single
/// ones unless the answer has rows (matrices, cases); `{, }` is `{,}`; `,\\!` between digits
/// joins them (`56,\\!01,\\!78` is one number); `\\!` eats the spaces after it.
fn fix_escapes(s: &str) -> String {
    let mut out = s.to_string();
    let rows = out.contains("matrix")
        || out.contains("array")
        || out.contains("cases")
        || out.contains("align");
    if !rows && out.contains("\\\\") {
        let mut fixed = String::with_capacity(out.len());
        let b = out.as_bytes();
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'\\'
                && b.get(i + 1) == Some(&b'\\')
                && b.get(i + 2).is_some_and(u8::is_ascii_alphabetic)
            {
                i += 1;
                continue;
            }
            let c = out[i..].chars().next().unwrap_or(' ');
            fixed.push(c);
            i += c.len_utf8();
        }
        out = fixed;
    }
    for v in ["{, }", "{ ,}", "{ , }", " {,}", "{,} "] {
        if out.contains(v) {
            out = out.replace(v, "{,}");
        }
    }
    if out.contains("\\!") {
        let mut fixed = String::with_capacity(out.len());
        let mut rest = out.as_str();
        while let Some(p) = rest.find("\\!") {
            let mut head = &rest[..p];
            let digit_before = head
                .trim_end_matches(',')
                .ends_with(|c: char| c.is_ascii_digit());
            let after = rest[p + 2..].trim_start_matches(' ');
            if digit_before
                && head.ends_with(',')
                && after.starts_with(|c: char| c.is_ascii_digit())
            {
                head = &head[..head.len() - 1];
            }
            fixed.push_str(head);
            rest = after;
        }
        fixed.push_str(rest);
        out = fixed;
    }
    out
}

/// Plain replacements: sizes, spacing, fraction and relation variants, symbols.
fn replace_all(s: &str) -> String {
    const PAIRS: &[(&str, &str)] = &[
        ("\\left.", ""),
        ("\\right.", ""),
        ("\\left", ""),
        ("\\right", ""),
        ("\\middle", ""),
        ("\\biggl", ""),
        ("\\biggr", ""),
        ("\\Biggl", ""),
        ("\\Biggr", ""),
        ("\\bigl", ""),
        ("\\bigr", ""),
        ("\\Bigl", ""),
        ("\\Bigr", ""),
        ("\\bigg", ""),
        ("\\Bigg", ""),
        ("\\big", ""),
        ("\\Big", ""),
        ("\\displaystyle", ""),
        ("\\textstyle", ""),
        ("\\scriptstyle", ""),
        ("\\limits", ""),
        ("\\nolimits", ""),
        ("\\dfrac", "\\frac"),
        ("\\tfrac", "\\frac"),
        ("\\cfrac", "\\frac"),
        ("\\dbinom", "\\binom"),
        ("\\tbinom", "\\binom"),
        ("\\leqslant", "≤"),
        ("\\geqslant", "≥"),
        ("\\leqq", "≤"),
        ("\\geqq", "≥"),
        ("\\leq", "≤"),
        ("\\geq", "≥"),
        ("\\neq", "≠"),
        ("\\approx", "≈"),
        ("\\simeq", "≈"),
        ("\\thickapprox", "≈"),
        ("\\doteq", "≈"),
        ("\\cdots", "…"),
        ("\\ldots", "…"),
        ("\\dots", "…"),
        ("...", "…"),
        ("\\cdot", "*"),
        ("\\times", "*"),
        ("\\ast", "*"),
        ("\\div", "/"),
        ("\\pm", "±"),
        ("\\mp", "∓"),
        ("\\infty", "∞"),
        ("\\infin", "∞"),
        ("\\emptyset", "\\{\\}"),
        ("\\varnothing", "\\{\\}"),
        ("\\lbrace", "\\{"),
        ("\\rbrace", "\\}"),
        ("\\lbrack", "["),
        ("\\rbrack", "]"),
        ("\\langle", "("),
        ("\\rangle", ")"),
        ("\\lvert", "|"),
        ("\\rvert", "|"),
        ("\\lVert", "|"),
        ("\\rVert", "|"),
        ("\\vert", "|"),
        ("\\Vert", "|"),
        ("\\|", "|"),
        ("\\degree", ""),
        ("^{\\circ}", ""),
        ("^\\circ", ""),
        ("^{°}", ""),
        ("\\circ", ""),
        ("°", ""),
        ("\\%", "%"),
        ("\\quad", " , "),
        ("\\qquad", " , "),
        ("\\enspace", " "),
        ("\\hspace", " "),
        ("\\colon", ":"),
        ("\\mid", "|"),
        ("\\prime", "'"),
        ("\\lt", "<"),
        ("\\gt", ">"),
        ("\\le", "≤"),
        ("\\ge", "≥"),
        ("\\ne", "≠"),
        ("&lt;", "<"),
        ("&gt;", ">"),
        ("<=", "≤"),
        (">=", "≥"),
        ("=<", "≤"),
        ("!=", "≠"),
        ("−", "-"),
        ("–", "-"),
        ("—", "-"),
        ("×", "*"),
        ("·", "*"),
        ("⋅", "*"),
        ("÷", "/"),
        ("∶", ":"),
        ("√", "\\sqrt"),
        ("π", "\\pi"),
        ("⩽", "≤"),
        ("⩾", "≥"),
        ("∅", "\\{\\}"),
        ("²", "^2"),
        ("³", "^3"),
        ("½", "(1/2)"),
        ("¼", "(1/4)"),
        ("¾", "(3/4)"),
        ("\n", " "),
        ("\t", " "),
        ("\\displaystyle", ""),
    ];
    let mut out = s.to_string();
    for (from, to) in PAIRS {
        if out.contains(from) {
            out = replace_word(&out, from, to);
        }
    }
    out
}

/// Replaces `from` by `to`; a `from` that is a command (`\le`) is only replaced where the
/// command name ends (so `\le` does not eat `\left` or `\lessdot`).
fn replace_word(s: &str, from: &str, to: &str) -> String {
    let is_cmd = from.starts_with('\\')
        && from.len() > 1
        && from[1..].chars().all(|c| c.is_ascii_alphabetic());
    if !is_cmd {
        return s.replace(from, to);
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(p) = rest.find(from) {
        let after = &rest[p + from.len()..];
        out.push_str(&rest[..p]);
        if after
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic())
        {
            out.push_str(from);
        } else {
            out.push_str(to);
        }
        rest = after;
    }
    out.push_str(rest);
    out
}

/// Thousands separators: `1\,000`, `1{,}000`, `1 000`, `1~000`, `1'000`, thin spaces,
/// `1,000,000`: a separator between a leading group of 1-3 digits (not starting with 0, not a
/// decimal's fraction) and groups of exactly three digits is dropped. `\,` and the like
/// elsewhere become a space, `{,}` a comma.
fn join_thousands(s: &str) -> String {
    const SEPS: &[&str] = &[
        "{,}", "\\,", "\\;", "\\:", "\\ ", "~", "\u{2009}", "\u{202f}", "\u{a0}", "{ }", " ", "'",
    ];
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    // Inside a run of digit groups already joined.
    let mut in_run = false;
    while i < s.len() {
        if i > 0 && b[i - 1].is_ascii_digit() {
            let digits = out.bytes().rev().take_while(u8::is_ascii_digit).count();
            let lead = &out[out.len() - digits..];
            let before = &out[..out.len() - digits];
            let leading_ok = in_run
                || (digits <= 3
                    && !lead.starts_with('0')
                    && !before.ends_with('.')
                    && !before.ends_with(|c: char| c.is_ascii_digit()));
            if leading_ok && let Some(sep) = SEPS.iter().find(|sep| s[i..].starts_with(**sep)) {
                let j = i + sep.len();
                let group = &b[j..(j + 3).min(b.len())];
                let next = b.get(j + 3);
                if group.len() == 3
                    && group.iter().all(u8::is_ascii_digit)
                    && next.is_none_or(|c| !c.is_ascii_digit())
                {
                    in_run = true;
                    i = j;
                    continue;
                }
            }
        }
        let rest = &s[i..];
        if rest.starts_with("\\\\") {
            // a row break, not a spacing command
            out.push_str("\\\\");
            i += 2;
            in_run = false;
            continue;
        }
        let spacing = [
            "\\,", "\\;", "\\:", "\\ ", "~", "\u{2009}", "\u{202f}", "\u{a0}",
        ];
        if let Some(sp) = spacing.iter().find(|sp| rest.starts_with(**sp)) {
            out.push(' ');
            i += sp.len();
            in_run = false;
            continue;
        }
        if rest.starts_with("{,}") {
            out.push(',');
            i += 3;
            in_run = false;
            continue;
        }
        let c = rest.chars().next().unwrap_or(' ');
        if !c.is_ascii_digit() {
            in_run = false;
        }
        out.push(c);
        i += c.len_utf8();
    }
    out
}

/// `1,000`, `-12,345.6`, `1,000,000 dollars`: commas group thousands when the answer is one
/// such number (with words or a percent after it), as Math-Verify reads them; elsewhere a
/// comma separates (`(12,102)` is a pair).
fn comma_thousands(s: &str) -> String {
    let t = s.trim_start();
    let b = t.as_bytes();
    let mut i = usize::from(b.first() == Some(&b'-'));
    let lead = b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
    if lead == 0 || lead > 3 || b[i] == b'0' {
        return s.to_string();
    }
    i += lead;
    let mut groups = 0;
    while b.get(i) == Some(&b',')
        && b.get(i + 1..i + 4)
            .is_some_and(|g| g.iter().all(u8::is_ascii_digit))
        && b.get(i + 4).is_none_or(|c| !c.is_ascii_digit())
    {
        groups += 1;
        i += 4;
    }
    if groups == 0 {
        return s.to_string();
    }
    if b.get(i) == Some(&b'.') {
        i += 1 + b[i + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
    }
    // nothing numeric may follow: no further commas, digits or operators
    let rest = &t[i..];
    // (a unit's power, `m^2`, may follow)
    let rest_plain = rest.replace("^2", "").replace("^3", "");
    if rest_plain.contains([',', '+', '*', '/', '=', '(', ')'])
        || rest_plain.chars().any(|c| c.is_ascii_digit())
    {
        return s.to_string();
    }
    format!("{}{rest}", t[..i].replace(',', ""))
}

/// `12 percent`, `12 pct`, `12 per cent`, `12 percentage points` → `12%`.
fn percent_words(s: &str) -> String {
    let lower = s.to_ascii_lowercase();
    if !(lower.contains("percent") || lower.contains("pct") || lower.contains("per cent")) {
        return s.to_string();
    }
    let mut out = s.to_string();
    for w in [
        " percentage points",
        " percentage point",
        " percentage",
        "percentage",
        " per cent",
        " percent",
        "percent",
        " pct",
        "pct",
    ] {
        loop {
            let lower = out.to_ascii_lowercase();
            let Some(p) = lower.find(w) else { break };
            let end = p + w.len();
            let next = lower[end..].chars().next();
            if next.is_some_and(|c| c.is_ascii_alphabetic()) || !out.is_char_boundary(p) {
                break;
            }
            out.replace_range(p..end, "%");
        }
    }
    out
}

/// A token of a cleaned answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Tok {
    /// Digits with at most one decimal point, possibly an exponent (`3.2e4`).
    Num(String),
    /// A run of letters.
    Ident(String),
    /// A LaTeX command without its backslash.
    Cmd(String),
    /// `+ - * / ^ ! % ' ± ∓`
    Op(char),
    /// `= < > ≤ ≥ ≠ ≈`
    Rel(char),
    /// `(`
    LParen,
    /// `)`
    RParen,
    /// `[`
    LBrack,
    /// `]`
    RBrack,
    /// `{`
    LBrace,
    /// `}`
    RBrace,
    /// `\{`
    LSet,
    /// `\}`
    RSet,
    /// `,` (true: directly between two digits, as in a decimal comma)
    Comma(bool),
    /// `;`
    Semi,
    /// `:`
    Colon,
    /// `|`
    Pipe,
    /// `&`
    Amp,
    /// `\\`
    RowSep,
    /// `_`
    Under,
    /// `∪`
    Cup,
    /// `∈`
    In,
    /// `∞`
    Inf,
    /// `ℝ`
    Reals,
}

/// Tokens of a cleaned answer, with whether whitespace preceded each; `None` for characters
/// no answer uses.
pub fn tokenize(s: &str) -> Option<(Vec<Tok>, Vec<bool>)> {
    let chars: Vec<char> = s.chars().collect();
    let mut out = Vec::with_capacity(chars.len() / 2 + 1);
    let mut spaced = Vec::with_capacity(chars.len() / 2 + 1);
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let space_before = i > 0 && chars[i - 1] == ' ';
        let before = out.len();
        match c {
            ' ' => i += 1,
            '0'..='9' | '.' => {
                let start = i;
                let mut dot = false;
                while i < chars.len() {
                    if chars[i].is_ascii_digit() {
                        i += 1;
                    } else if chars[i] == '.'
                        && !dot
                        && chars.get(i + 1).is_some_and(char::is_ascii_digit)
                    {
                        dot = true;
                        i += 1;
                    } else {
                        break;
                    }
                }
                if i == start {
                    // a lone dot: punctuation
                    i += 1;
                    continue;
                }
                let mut text: String = chars[start..i].iter().collect();
                // Scientific notation: 3.2e4, 1E-5 (no space).
                if matches!(chars.get(i), Some('e' | 'E')) {
                    let mut j = i + 1;
                    if matches!(chars.get(j), Some('+' | '-')) {
                        j += 1;
                    }
                    let ds = j;
                    while chars.get(j).is_some_and(char::is_ascii_digit) {
                        j += 1;
                    }
                    if j > ds && !chars.get(j).is_some_and(|c| c.is_alphabetic()) {
                        text.push('e');
                        text.extend(&chars[i + 1..j]);
                        i = j;
                    }
                }
                out.push(Tok::Num(text));
            }
            '\\' => {
                i += 1;
                match chars.get(i) {
                    Some('{') => {
                        out.push(Tok::LSet);
                        i += 1;
                    }
                    Some('}') => {
                        out.push(Tok::RSet);
                        i += 1;
                    }
                    Some('\\') => {
                        out.push(Tok::RowSep);
                        i += 1;
                    }
                    Some('%') => {
                        out.push(Tok::Op('%'));
                        i += 1;
                    }
                    Some(',' | ';' | ':' | '!' | ' ') => i += 1,
                    Some(c) if c.is_ascii_alphabetic() => {
                        let start = i;
                        while chars.get(i).is_some_and(char::is_ascii_alphabetic) {
                            i += 1;
                        }
                        let name: String = chars[start..i].iter().collect();
                        match name.as_str() {
                            "in" => out.push(Tok::In),
                            "cup" => out.push(Tok::Cup),
                            "infty" => out.push(Tok::Inf),
                            _ => out.push(Tok::Cmd(name)),
                        }
                    }
                    _ => return None,
                }
            }
            'ℝ' => {
                out.push(Tok::Reals);
                i += 1;
            }
            c if c.is_alphabetic() => {
                let start = i;
                while chars.get(i).is_some_and(|c| c.is_alphabetic()) {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                if let Some(name) = greek(&word) {
                    out.push(Tok::Cmd(name.to_string()));
                } else {
                    out.push(Tok::Ident(word));
                }
            }
            '+' | '-' | '*' | '/' | '^' | '!' | '%' | '\'' | '±' | '∓' => {
                out.push(Tok::Op(c));
                i += 1;
            }
            '=' | '<' | '>' | '≤' | '≥' | '≠' | '≈' => {
                out.push(Tok::Rel(c));
                i += 1;
            }
            '(' | ')' | '[' | ']' | '{' | '}' => {
                out.push(match c {
                    '(' => Tok::LParen,
                    ')' => Tok::RParen,
                    '[' => Tok::LBrack,
                    ']' => Tok::RBrack,
                    '{' => Tok::LBrace,
                    _ => Tok::RBrace,
                });
                i += 1;
            }
            ',' => {
                let tight = i > 0
                    && chars[i - 1].is_ascii_digit()
                    && chars.get(i + 1).is_some_and(char::is_ascii_digit);
                out.push(Tok::Comma(tight));
                i += 1;
            }
            ';' => {
                out.push(Tok::Semi);
                i += 1;
            }
            ':' => {
                out.push(Tok::Colon);
                i += 1;
            }
            '|' => {
                out.push(Tok::Pipe);
                i += 1;
            }
            '&' => {
                out.push(Tok::Amp);
                i += 1;
            }
            '_' => {
                out.push(Tok::Under);
                i += 1;
            }
            '∪' => {
                out.push(Tok::Cup);
                i += 1;
            }
            '∈' => {
                out.push(Tok::In);
                i += 1;
            }
            '∞' => {
                out.push(Tok::Inf);
                i += 1;
            }
            '?' | '"' | '`' => i += 1,
            _ => return None,
        }
        while spaced.len() < out.len() {
            spaced.push(spaced.len() == before && space_before);
        }
    }
    Some((out, spaced))
}

/// Greek letters written as Unicode: their LaTeX names.
fn greek(word: &str) -> Option<&'static str> {
    let mut it = word.chars();
    let c = it.next()?;
    if it.next().is_some() {
        return None;
    }
    Some(match c {
        'α' => "alpha",
        'β' => "beta",
        'γ' => "gamma",
        'δ' => "delta",
        'ε' => "epsilon",
        'θ' => "theta",
        'λ' => "lambda",
        'μ' => "mu",
        'σ' => "sigma",
        'φ' => "phi",
        'ω' => "omega",
        'Δ' => "Delta",
        'Ω' => "Omega",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleans_noise() {
        assert_eq!(clean("$\\dfrac{1}{2}$"), "\\frac{1}{2}");
        assert_eq!(clean("1\\,000"), "1000");
        assert_eq!(clean("1{,}000{,}000"), "1000000");
        assert_eq!(clean("1 000"), "1000");
        assert_eq!(clean("12 percent"), "12%");
        assert_eq!(clean("12\\%"), "12%");
        assert_eq!(clean("90^\\circ"), "90");
        assert_eq!(
            clean("\\left( 3, \\frac{\\pi}{2} \\right)"),
            "( 3, \\frac{\\pi}{2} )"
        );
        assert_eq!(clean("x \\le 3"), "x ≤ 3");
        assert_eq!(clean("\\left\\{1\\right\\}"), "\\{1\\}");
        assert!(clean("4 \\text{ and } 5").contains(','));
        assert_eq!(clean("0.1 234"), "0.1 234");
    }
}
