//! Normalising and parsing answers written in LaTeX or plain text.

use super::expr::{Expr, Val, rat};

/// Answers longer than this (after normalisation) are compared as text only.
const MAX_LEN: usize = 2000;
/// Nesting deeper than this is refused.
const MAX_DEPTH: usize = 100;

fn unwrap_command(s: &str, cmd: &str) -> String {
    // Replaces `\cmd{X}` by `X`, keeping nested braces of X.
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(pos) = rest.find(cmd) {
        let after = &rest[pos + cmd.len()..];
        let trimmed = after.trim_start();
        if !trimmed.starts_with('{') {
            out.push_str(&rest[..pos + cmd.len()]);
            rest = after;
            continue;
        }
        let open = pos + cmd.len() + (after.len() - trimmed.len());
        let bytes = rest.as_bytes();
        let mut depth = 0;
        let mut close = None;
        for (i, &b) in bytes.iter().enumerate().skip(open) {
            match b {
                b'{' => depth += 1,
                b'}' => {
                    depth -= 1;
                    if depth == 0 {
                        close = Some(i);
                        break;
                    }
                }
                _ => {}
            }
        }
        let Some(close) = close else {
            out.push_str(rest);
            return out;
        };
        out.push_str(&rest[..pos]);
        out.push_str(&rest[open + 1..close]);
        rest = &rest[close + 1..];
    }
    out.push_str(rest);
    out
}

const UNIT_WORDS: &[&str] = &[
    "units", "unit", "square", "sq", "cubic", "cm", "mm", "km", "m", "meters", "meter", "metres",
    "inches", "inch", "in", "feet", "foot", "ft", "yards", "yard", "miles", "mile", "mph", "kg",
    "g", "grams", "gram", "pounds", "pound", "lbs", "lb", "ounces", "oz", "dollars", "dollar",
    "cents", "cent", "degrees", "degree", "seconds", "second", "sec", "minutes", "minute", "min",
    "hours", "hour", "hrs", "hr", "days", "day", "weeks", "week", "months", "month", "years",
    "year", "liters", "liter", "litres", "l", "ml", "gallons", "gallon", "percent", "people",
    "students", "apples", "marbles", "pages", "books", "cookies", "boxes", "points", "per",
];

/// Canonical text of an answer: delimiters, spacing commands, `\left`/`\right`, `\text{}`
/// wrappers, degrees, dollars and trailing units removed; `\dfrac` as `\frac`; thousands
/// separators dropped.
pub fn normalize(answer: &str) -> String {
    let mut s = answer.trim().to_string();
    for (a, b) in [("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]")] {
        if s.len() >= a.len() + b.len() && s.starts_with(a) && s.ends_with(b) {
            s = s[a.len()..s.len() - b.len()].to_string();
        }
    }
    s = s.replace("\\boxed", "");
    for cmd in [
        "\\text",
        "\\textbf",
        "\\textit",
        "\\mathrm",
        "\\mathbf",
        "\\mbox",
        "\\operatorname",
        "\\mathit",
        "\\textnormal",
    ] {
        s = unwrap_command(&s, cmd);
    }
    for (from, to) in [
        ("\\left", ""),
        ("\\right", ""),
        ("\\bigl", ""),
        ("\\bigr", ""),
        ("\\Bigl", ""),
        ("\\Bigr", ""),
        ("\\big", ""),
        ("\\Big", ""),
        ("\\displaystyle", ""),
        ("\\!", ""),
        ("\\,", ""),
        ("\\;", ""),
        ("\\:", ""),
        ("\\quad", " "),
        ("\\qquad", " "),
        ("\\ ", " "),
        ("~", " "),
        ("\\dfrac", "\\frac"),
        ("\\tfrac", "\\frac"),
        ("^{\\circ}", ""),
        ("^\\circ", ""),
        ("\\circ", ""),
        ("\\degree", ""),
        ("°", ""),
        ("\\$", ""),
        ("$", ""),
        ("\\%", "%"),
        ("\\lbrace", "\\{"),
        ("\\rbrace", "\\}"),
        ("\\cdot", "*"),
        ("\\times", "*"),
        ("\\ast", "*"),
        ("\\div", "/"),
        ("\\leqslant", "<="),
        ("\\geqslant", ">="),
        ("\\leq", "<="),
        ("\\geq", ">="),
        ("\\le", "<="),
        ("\\ge", ">="),
        ("\\neq", "!="),
        ("\\ne", "!="),
        ("≤", "<="),
        ("≥", ">="),
        ("\\pm", "±"),
        ("\\infty", "∞"),
        ("\\emptyset", "\\{\\}"),
        ("\\varnothing", "\\{\\}"),
        ("\\\\", " "),
        ("−", "-"),
    ] {
        s = s.replace(from, to);
    }
    s = s
        .trim()
        .trim_end_matches(['.', ',', ';'])
        .trim()
        .to_string();
    s = drop_thousands_separators(&s);
    strip_units(&s)
}

fn drop_thousands_separators(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b','
            && i > 0
            && b[i - 1].is_ascii_digit()
            && i + 3 < b.len() + 1
            && b.get(i + 1..i + 4)
                .is_some_and(|d| d.iter().all(u8::is_ascii_digit))
            && b.get(i + 4).is_none_or(|c| !c.is_ascii_digit())
        {
            // Only inside a run like 1,234,567 whose first group has at most 3 digits.
            let mut start = i;
            while start > 0 && (b[start - 1].is_ascii_digit() || b[start - 1] == b',') {
                start -= 1;
            }
            let first_group = s[start..i].split(',').next().map_or(0, str::len);
            let prev_is_decimal = start > 0 && b[start - 1] == b'.';
            if first_group <= 3 && !prev_is_decimal {
                i += 1;
                continue;
            }
        }
        out.push(b[i] as char);
        i += 1;
    }
    // `push(b as char)` is only right for ASCII; fall back for anything else.
    if s.is_ascii() { out } else { s.to_string() }
}

fn strip_units(s: &str) -> String {
    // "12 cm", "5 square units", "3 dollars": drop trailing unit words after a number.
    let words: Vec<&str> = s.split_whitespace().collect();
    if words.len() < 2 {
        return s.to_string();
    }
    let mut keep = words.len();
    while keep > 1 {
        let w = words[keep - 1].trim_end_matches(['.', ',']).to_lowercase();
        // square and cubic units: inches^2, cm^{3}
        let w = match w.find('^') {
            Some(i)
                if i > 0
                    && w[i + 1..]
                        .trim_matches(['{', '}'])
                        .chars()
                        .all(|c| c.is_ascii_digit()) =>
            {
                w[..i].to_string()
            }
            _ => w,
        };
        let w = w.trim_start_matches('^');
        if UNIT_WORDS.contains(&w) {
            keep -= 1;
        } else {
            break;
        }
    }
    if keep == words.len() {
        return s.to_string();
    }
    let head = words[..keep].join(" ");
    if head
        .chars()
        .last()
        .is_some_and(|c| c.is_ascii_digit() || c == '}' || c == ')' || c == '%')
    {
        head
    } else {
        s.to_string()
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Num(String),
    Ident(String),
    Cmd(String),
    Op(char),
    Rel(String),
    LParen,
    RParen,
    LBrack,
    RBrack,
    LBrace,
    RBrace,
    LSet,
    RSet,
    Comma,
    Pipe,
    Amp,
    Under,
}

fn tokenize(s: &str) -> Option<Vec<Tok>> {
    let chars: Vec<char> = s.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            ' ' | '\t' | '\n' => i += 1,
            '0'..='9' | '.' => {
                let start = i;
                while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                    i += 1;
                }
                let text: String = chars[start..i].iter().collect();
                if text == "." {
                    return None;
                }
                out.push(Tok::Num(text));
            }
            '\\' => {
                i += 1;
                if i < chars.len() && (chars[i] == '{' || chars[i] == '}') {
                    out.push(if chars[i] == '{' {
                        Tok::LSet
                    } else {
                        Tok::RSet
                    });
                    i += 1;
                    continue;
                }
                let start = i;
                while i < chars.len() && chars[i].is_ascii_alphabetic() {
                    i += 1;
                }
                if start == i {
                    return None;
                }
                out.push(Tok::Cmd(chars[start..i].iter().collect()));
            }
            'a'..='z' | 'A'..='Z' => {
                let start = i;
                while i < chars.len() && chars[i].is_ascii_alphabetic() {
                    i += 1;
                }
                out.push(Tok::Ident(chars[start..i].iter().collect()));
            }
            '+' | '-' | '*' | '/' | '^' | '!' | '%' | '±' | '∪' | '\'' => {
                out.push(Tok::Op(c));
                i += 1;
            }
            '∞' => {
                out.push(Tok::Cmd("infty".into()));
                i += 1;
            }
            'π' => {
                out.push(Tok::Cmd("pi".into()));
                i += 1;
            }
            '√' => {
                out.push(Tok::Cmd("sqrt".into()));
                i += 1;
            }
            '=' => {
                out.push(Tok::Rel("=".into()));
                i += 1;
            }
            '<' | '>' => {
                let two = chars.get(i + 1) == Some(&'=');
                out.push(Tok::Rel(format!("{c}{}", if two { "=" } else { "" })));
                i += if two { 2 } else { 1 };
            }
            '(' => {
                out.push(Tok::LParen);
                i += 1;
            }
            ')' => {
                out.push(Tok::RParen);
                i += 1;
            }
            '[' => {
                out.push(Tok::LBrack);
                i += 1;
            }
            ']' => {
                out.push(Tok::RBrack);
                i += 1;
            }
            '{' => {
                out.push(Tok::LBrace);
                i += 1;
            }
            '}' => {
                out.push(Tok::RBrace);
                i += 1;
            }
            ',' => {
                out.push(Tok::Comma);
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
            ':' | ';' => {
                out.push(Tok::Comma);
                i += 1;
            }
            _ => return None,
        }
    }
    // `!=` was split as Op('!') + Rel("="): join them.
    let mut joined = Vec::with_capacity(out.len());
    for t in out {
        if t == Tok::Rel("=".into()) && joined.last() == Some(&Tok::Op('!')) {
            joined.pop();
            joined.push(Tok::Rel("!=".into()));
        } else {
            joined.push(t);
        }
    }
    Some(joined)
}

fn number(text: &str) -> Option<Expr> {
    if let Some((int, frac)) = text.split_once('.') {
        if frac.contains('.') {
            return None;
        }
        let digits = format!("{int}{frac}");
        let den = 10i128.checked_pow(frac.len() as u32);
        if let (Ok(n), Some(d)) = (digits.parse::<i128>(), den)
            && let Some(Val::Rat(n, d)) = rat(n, d)
        {
            return Some(Expr::Rat(n, d));
        }
        return text.parse::<f64>().ok().map(Expr::Float);
    }
    match text.parse::<i128>() {
        Ok(n) => Some(Expr::Rat(n, 1)),
        Err(_) => text.parse::<f64>().ok().map(Expr::Float),
    }
}

const FUNCS: &[&str] = &[
    "sin", "cos", "tan", "cot", "sec", "csc", "arcsin", "arccos", "arctan", "ln", "log", "exp",
];

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
    depth: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn eat(&mut self, t: &Tok) -> bool {
        if self.peek() == Some(t) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn enter(&mut self) -> Option<()> {
        self.depth += 1;
        (self.depth < MAX_DEPTH).then_some(())
    }

    /// list := relation (',' relation)*
    fn list(&mut self) -> Option<Vec<Expr>> {
        let mut items = vec![self.relation()?];
        while self.eat(&Tok::Comma) {
            items.push(self.relation()?);
        }
        Some(items)
    }

    fn relation(&mut self) -> Option<Expr> {
        self.enter()?;
        let mut lhs = self.union()?;
        while let Some(Tok::Rel(op)) = self.peek().cloned() {
            self.pos += 1;
            let rhs = self.union()?;
            lhs = Expr::Rel(op, Box::new(lhs), Box::new(rhs));
        }
        if let Some(Tok::Cmd(c)) = self.peek().cloned()
            && c == "in"
        {
            self.pos += 1;
            let rhs = self.union()?;
            lhs = Expr::Rel("in".into(), Box::new(lhs), Box::new(rhs));
        }
        self.depth -= 1;
        Some(lhs)
    }

    fn union(&mut self) -> Option<Expr> {
        let first = self.sum()?;
        let mut parts = vec![first];
        loop {
            match self.peek() {
                Some(Tok::Cmd(c)) if c == "cup" => {}
                Some(Tok::Op('∪')) => {}
                Some(Tok::Ident(u)) if u == "U" => {}
                _ => break,
            }
            self.pos += 1;
            parts.push(self.sum()?);
        }
        Some(if parts.len() == 1 {
            parts.remove(0)
        } else {
            Expr::Union(parts)
        })
    }

    fn sum(&mut self) -> Option<Expr> {
        self.enter()?;
        let mut terms = vec![self.product()?];
        let mut pm = None;
        loop {
            match self.peek() {
                Some(Tok::Op('+')) => {
                    self.pos += 1;
                    terms.push(self.product()?);
                }
                Some(Tok::Op('-')) => {
                    self.pos += 1;
                    terms.push(Expr::Neg(Box::new(self.product()?)));
                }
                Some(Tok::Op('±')) => {
                    self.pos += 1;
                    pm = Some(self.product()?);
                    break;
                }
                _ => break,
            }
        }
        self.depth -= 1;
        let base = if terms.len() == 1 {
            terms.remove(0)
        } else {
            Expr::Add(terms)
        };
        Some(match pm {
            // a ± b: both values
            Some(b) => Expr::Set(vec![
                Expr::Add(vec![base.clone(), b.clone()]),
                Expr::Add(vec![base, Expr::Neg(Box::new(b))]),
            ]),
            None => base,
        })
    }

    fn product(&mut self) -> Option<Expr> {
        self.enter()?;
        let mut acc = self.unary()?;
        loop {
            match self.peek() {
                Some(Tok::Op('*')) => {
                    self.pos += 1;
                    let r = self.unary()?;
                    acc = Expr::Mul(vec![acc, r]);
                }
                Some(Tok::Op('/')) => {
                    self.pos += 1;
                    let r = self.unary()?;
                    acc = Expr::Div(Box::new(acc), Box::new(r));
                }
                Some(Tok::Num(_) | Tok::Ident(_) | Tok::LParen | Tok::LBrace | Tok::Pipe) => {
                    let r = self.power()?;
                    acc = Expr::Mul(vec![acc, r]);
                }
                Some(Tok::Cmd(c)) if !matches!(c.as_str(), "cup" | "in" | "end") => {
                    // 2\frac{1}{2} is a mixed number; 2\sqrt{3}, 2\pi are products.
                    let is_frac = c == "frac";
                    let r = self.power()?;
                    let simple_frac = |e: &Expr| matches!(e, Expr::Div(a, b) if matches!(**a, Expr::Rat(_, 1)) && matches!(**b, Expr::Rat(_, 1)));
                    acc = match (&acc, is_frac && simple_frac(&r)) {
                        (Expr::Rat(n, 1), true) if *n >= 0 => Expr::Add(vec![acc.clone(), r]),
                        (Expr::Neg(inner), true) if matches!(**inner, Expr::Rat(n, 1) if n >= 0) => {
                            Expr::Neg(Box::new(Expr::Add(vec![(**inner).clone(), r])))
                        }
                        _ => Expr::Mul(vec![acc, r]),
                    };
                }
                _ => break,
            }
        }
        self.depth -= 1;
        Some(acc)
    }

    fn unary(&mut self) -> Option<Expr> {
        self.enter()?;
        let e = match self.peek() {
            Some(Tok::Op('-')) => {
                self.pos += 1;
                Expr::Neg(Box::new(self.unary()?))
            }
            Some(Tok::Op('+')) => {
                self.pos += 1;
                self.unary()?
            }
            _ => self.power()?,
        };
        self.depth -= 1;
        Some(e)
    }

    fn power(&mut self) -> Option<Expr> {
        self.enter()?;
        let mut base = self.postfix()?;
        if self.eat(&Tok::Op('^')) {
            let exp = match self.peek() {
                Some(Tok::Op('-')) => {
                    self.pos += 1;
                    Expr::Neg(Box::new(self.atom_or_group()?))
                }
                _ => self.atom_or_group()?,
            };
            base = Expr::Pow(Box::new(base), Box::new(exp));
            // factorial/percent after the exponent
            base = self.postfix_ops(base);
        }
        self.depth -= 1;
        Some(base)
    }

    /// A single-token argument (`x^2`, `\frac12`) or a braced group.
    fn atom_or_group(&mut self) -> Option<Expr> {
        match self.peek()? {
            Tok::LBrace => self.primary(),
            Tok::Num(n) => {
                let n = n.clone();
                self.pos += 1;
                // TeX reads one digit as the argument: x^23 is x^2 * 3; keep it simple and
                // take the whole number, which is what writers of answers mean.
                number(&n)
            }
            _ => self.primary(),
        }
    }

    fn postfix(&mut self) -> Option<Expr> {
        let p = self.primary()?;
        Some(self.postfix_ops(p))
    }

    fn postfix_ops(&mut self, mut e: Expr) -> Expr {
        loop {
            match self.peek() {
                Some(Tok::Op('!')) => {
                    self.pos += 1;
                    e = Expr::Func("fact".into(), vec![e]);
                }
                Some(Tok::Op('%')) => {
                    self.pos += 1;
                    e = Expr::Percent(Box::new(e));
                }
                Some(Tok::Op('\'')) => {
                    self.pos += 1;
                }
                Some(Tok::Under) => {
                    // subscripts name a variable: x_1, a_{n}
                    self.pos += 1;
                    let sub = match self.next() {
                        Some(Tok::Num(n)) | Some(Tok::Ident(n)) => n,
                        Some(Tok::LBrace) => {
                            let mut s = String::new();
                            while let Some(t) = self.next() {
                                match t {
                                    Tok::RBrace => break,
                                    Tok::Num(n) | Tok::Ident(n) => s.push_str(&n),
                                    _ => s.push('?'),
                                }
                            }
                            s
                        }
                        _ => String::new(),
                    };
                    if let Expr::Sym(name) = &e {
                        e = Expr::Sym(format!("{name}_{sub}"));
                    }
                }
                _ => return e,
            }
        }
    }

    fn group(&mut self) -> Option<Expr> {
        // `{ ... }`, or TeX's single-token argument: `\frac12` is 1/2.
        if !self.eat(&Tok::LBrace) {
            if let Some(Tok::Num(n)) = self.peek().cloned()
                && n.len() > 1
                && !n.contains('.')
            {
                let (first, rest) = n.split_at(1);
                self.toks[self.pos] = Tok::Num(rest.to_string());
                return number(first);
            }
            return self.atom_or_group();
        }
        let items = self.list()?;
        if !self.eat(&Tok::RBrace) {
            return None;
        }
        Some(if items.len() == 1 {
            items.into_iter().next()?
        } else {
            Expr::List(items)
        })
    }

    fn primary(&mut self) -> Option<Expr> {
        self.enter()?;
        let t = self.next()?;
        let e = match t {
            Tok::Num(n) => number(&n)?,
            Tok::Ident(word) => {
                if FUNCS.contains(&word.as_str()) {
                    let arg = self.function_argument()?;
                    Expr::Func(word, vec![arg])
                } else if word.len() == 1 {
                    Expr::Sym(word)
                } else {
                    // Several letters: a product of variables (xy) unless it is a word.
                    if word.len() <= 3 && word.chars().all(|c| c.is_ascii_lowercase()) {
                        let mut parts: Vec<Expr> =
                            word.chars().map(|c| Expr::Sym(c.to_string())).collect();
                        if parts.len() == 1 {
                            parts.remove(0)
                        } else {
                            Expr::Mul(parts)
                        }
                    } else {
                        Expr::Text(word)
                    }
                }
            }
            Tok::Cmd(c) => match c.as_str() {
                "frac" | "cfrac" => {
                    let a = self.group()?;
                    let b = self.group()?;
                    Expr::Div(Box::new(a), Box::new(b))
                }
                "binom" | "dbinom" | "tbinom" => {
                    let n = self.group()?;
                    let k = self.group()?;
                    Expr::Func("binom".into(), vec![n, k])
                }
                "sqrt" => {
                    if self.eat(&Tok::LBrack) {
                        let k = self.sum()?;
                        if !self.eat(&Tok::RBrack) {
                            return None;
                        }
                        let x = self.group()?;
                        Expr::Func("root".into(), vec![k, x])
                    } else {
                        let x = self.group()?;
                        Expr::Func("sqrt".into(), vec![x])
                    }
                }
                "pi" => Expr::Pi,
                "infty" => Expr::Inf,
                "in" => return None,
                "cup" => return None,
                "begin" => self.environment()?,
                "ln" | "log" | "exp" | "sin" | "cos" | "tan" | "cot" | "sec" | "csc" | "arcsin"
                | "arccos" | "arctan" => {
                    let mut base = None;
                    if c == "log" && self.eat(&Tok::Under) {
                        base = Some(self.atom_or_group()?);
                    }
                    let arg = self.function_argument()?;
                    match base {
                        Some(b) => Expr::Func("log".into(), vec![b, arg]),
                        None => Expr::Func(c.clone(), vec![arg]),
                    }
                }
                // Greek letters and other symbols are variables.
                other => Expr::Sym(format!("\\{other}")),
            },
            Tok::LBrace => {
                let items = self.list()?;
                if !self.eat(&Tok::RBrace) {
                    return None;
                }
                if items.len() == 1 {
                    items.into_iter().next()?
                } else {
                    Expr::List(items)
                }
            }
            Tok::LSet => {
                if self.eat(&Tok::RSet) {
                    Expr::Set(Vec::new())
                } else {
                    let items = self.list()?;
                    if !self.eat(&Tok::RSet) {
                        return None;
                    }
                    Expr::Set(items)
                }
            }
            Tok::LParen | Tok::LBrack => {
                let open_closed = t == Tok::LBrack;
                let items = self.list()?;
                let close = self.next()?;
                let close_closed = match close {
                    Tok::RParen => false,
                    Tok::RBrack => true,
                    _ => return None,
                };
                match items.len() {
                    1 if !open_closed && !close_closed => items.into_iter().next()?,
                    1 => return None,
                    2 if open_closed || close_closed => {
                        let mut it = items.into_iter();
                        let (a, b) = (it.next()?, it.next()?);
                        Expr::Interval(open_closed, Box::new(a), Box::new(b), close_closed)
                    }
                    _ if open_closed || close_closed => Expr::Tuple(items),
                    _ => Expr::Tuple(items),
                }
            }
            Tok::Pipe => {
                let inner = self.sum()?;
                if !self.eat(&Tok::Pipe) {
                    return None;
                }
                Expr::Func("abs".into(), vec![inner])
            }
            _ => return None,
        };
        self.depth -= 1;
        Some(e)
    }

    fn function_argument(&mut self) -> Option<Expr> {
        // sin^2 x is (sin x)^2 in writing, but rare in final answers: accept sin x, sin(x), sin{x}
        match self.peek()? {
            Tok::LParen | Tok::LBrace => self.primary(),
            _ => self.power(),
        }
    }

    fn environment(&mut self) -> Option<Expr> {
        // \begin{pmatrix} a & b \\ c & d \end{pmatrix}; `\\` was normalised to a space, so rows
        // are recovered from `&` counts only when the matrix is a single row or column.
        if !self.eat(&Tok::LBrace) {
            return None;
        }
        let name = match self.next()? {
            Tok::Ident(n) => n,
            _ => return None,
        };
        if !self.eat(&Tok::RBrace) {
            return None;
        }
        let mut rows = vec![Vec::new()];
        loop {
            if let Some(Tok::Cmd(c)) = self.peek()
                && c == "end"
            {
                self.pos += 1;
                let _ = self.group();
                break;
            }
            let e = self.sum()?;
            rows.last_mut()?.push(e);
            match self.peek() {
                Some(Tok::Amp) => {
                    self.pos += 1;
                }
                Some(Tok::Cmd(c)) if c == "end" => {}
                _ => {
                    // a new row started without a separator we can see
                    rows.push(Vec::new());
                }
            }
        }
        let _ = name;
        rows.retain(|r| !r.is_empty());
        Some(Expr::Matrix(rows))
    }
}

fn choice_letter(s: &str) -> Option<char> {
    let t = s
        .trim()
        .trim_start_matches('(')
        .trim_end_matches(')')
        .trim();
    let mut chars = t.chars();
    let c = chars.next()?;
    (chars.next().is_none() && ('A'..='E').contains(&c)).then_some(c)
}

/// Parses a normalised answer. Multiple-choice letters become `Text("(X)")`; unparseable
/// text becomes `Text` of its lower-cased, space-free form.
pub fn parse_answer(answer: &str) -> Expr {
    let n = normalize(answer);
    if let Some(c) = choice_letter(&n) {
        return Expr::Text(format!("({c})"));
    }
    if n.len() > MAX_LEN {
        return Expr::Text(text_key(&n));
    }
    // Matrices keep their row breaks: `\\` becomes a newline token before normalisation.
    let parsed = tokenize(&n).and_then(|toks| {
        let mut p = Parser {
            toks,
            pos: 0,
            depth: 0,
        };
        let items = p.list()?;
        if p.pos != p.toks.len() {
            return None;
        }
        Some(if items.len() == 1 {
            items.into_iter().next()?
        } else {
            Expr::List(items)
        })
    });
    match parsed {
        Some(Expr::Text(t)) => Expr::Text(text_key(&t)),
        Some(e) => e,
        None => Expr::Text(text_key(&n)),
    }
}

/// The key under which texts compare: lower case, no spaces, no braces.
pub fn text_key(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_whitespace() && *c != '{' && *c != '}')
        .flat_map(char::to_lowercase)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_latex_noise() {
        assert_eq!(normalize("$\\dfrac{1}{2}$"), "\\frac{1}{2}");
        assert_eq!(normalize("\\text{12 cm}"), "12");
        assert_eq!(normalize("1,234,567"), "1234567");
        assert_eq!(normalize("(1,2)"), "(1,2)");
        assert_eq!(normalize("90^\\circ"), "90");
        assert_eq!(normalize("\\$5.00"), "5.00");
        assert_eq!(
            normalize("\\left( 3, \\frac{\\pi}{2} \\right)"),
            "( 3, \\frac{\\pi}{2} )"
        );
    }

    #[test]
    fn parses_structures() {
        assert!(matches!(
            parse_answer("(1, 2]"),
            Expr::Interval(false, _, _, true)
        ));
        assert!(matches!(parse_answer("\\{1, 2\\}"), Expr::Set(v) if v.len() == 2));
        assert!(matches!(parse_answer("1, 2, 3"), Expr::List(v) if v.len() == 3));
        assert!(matches!(parse_answer("x = 3"), Expr::Rel(op, _, _) if op == "="));
        assert_eq!(parse_answer("(B)"), Expr::Text("(B)".into()));
        assert!(matches!(parse_answer("\\text{Evelyn}"), Expr::Text(t) if t == "evelyn"));
        let deep = format!("{}1{}", "(".repeat(500), ")".repeat(500));
        assert!(matches!(parse_answer(&deep), Expr::Text(_)));
    }
}
