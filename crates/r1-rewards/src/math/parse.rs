//! Parsing a cleaned answer into an [`Expr`]: a recursive-descent parser over [`Tok`]s with a
//! depth limit and a work budget.
//!
//! Precedence, loosest first: separators (`,`, `;`, `and`, `or`), relations (`=`, `<`, `\le`,
//! `\in`, `\approx`, chains), ratios (`:`), unions, sums (`+`, `-`, `\pm`), products
//! (explicit and implicit), unary signs, powers (right-associative), postfix (`!`, `\%`,
//! subscripts), atoms.

use super::expr::{Budget, Expr, Num, RelOp, digits};
use super::latex::{MAX_ANSWER, Tok, clean, tokenize};
use super::value::{Func, Rational};

/// Nesting deeper than this is refused.
const MAX_DEPTH: usize = 60;

struct Parser<'b> {
    toks: Vec<Tok>,
    pos: usize,
    depth: usize,
    /// Open `|...|` pairs: a `|` then closes instead of starting a new one.
    abs: usize,
    budget: &'b mut Budget,
}

fn word_func(name: &str) -> Option<Func> {
    Some(match name {
        "sin" => Func::Sin,
        "cos" => Func::Cos,
        "tan" | "tg" => Func::Tan,
        "cot" | "ctg" => Func::Cot,
        "sec" => Func::Sec,
        "csc" | "cosec" => Func::Csc,
        "arcsin" | "asin" => Func::Asin,
        "arccos" | "acos" => Func::Acos,
        "arctan" | "atan" | "arctg" => Func::Atan,
        "sinh" => Func::Sinh,
        "cosh" => Func::Cosh,
        "tanh" => Func::Tanh,
        "ln" => Func::Ln,
        "log" | "lg" => Func::Log,
        "exp" => Func::Exp,
        "sqrt" => Func::Sqrt,
        "abs" => Func::Abs,
        "floor" => Func::Floor,
        "ceil" => Func::Ceil,
        "gcd" => Func::Gcd,
        "lcm" => Func::Lcm,
        "max" => Func::Max,
        "min" => Func::Min,
        _ => return None,
    })
}

/// Parses a decimal or integer literal (`0.2857`, `120`, `3.2e4`).
pub fn number(text: &str) -> Option<Expr> {
    let (mantissa, exp) = match text.split_once(['e', 'E']) {
        Some((m, e)) => (m, e.parse::<i32>().ok()?),
        None => (text, 0),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let all = format!("{int}{frac}");
    let sig_digits = all.trim_start_matches('0');
    let significant = if frac.is_empty() {
        digits(int.parse::<i128>().unwrap_or(1))
    } else {
        sig_digits.len().max(1) as u32
    };
    let decimals = (!frac.is_empty()).then_some(frac.len() as u32);
    let n: Option<i128> = all.parse().ok();
    let den = 10i128.checked_pow(frac.len() as u32);
    let value = match (n, den) {
        (Some(n), Some(d)) => {
            let base = Rational::new(n, d)?;
            if exp == 0 {
                Some(base)
            } else {
                let p = 10i128.checked_pow(exp.unsigned_abs())?;
                if exp > 0 {
                    Rational::new(base.n.checked_mul(p)?, base.d)
                } else {
                    Rational::new(base.n, base.d.checked_mul(p)?)
                }
            }
        }
        _ => None,
    };
    Some(match value {
        Some(value) => Expr::Num(Num {
            value,
            // 3.2e4 is exact as written; its precision is not a decimal's.
            decimals: if exp == 0 { decimals } else { None },
            significant,
        }),
        None => Expr::Float(text.parse::<f64>().ok()?),
    })
}

fn neg(e: Expr) -> Expr {
    match e {
        Expr::Num(n) if n.value.n != i128::MIN => Expr::Num(Num {
            value: Rational {
                n: -n.value.n,
                d: n.value.d,
            },
            ..n
        }),
        other => Expr::Neg(Box::new(other)),
    }
}

impl Parser<'_> {
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
        (self.depth < MAX_DEPTH && self.budget.spend()).then_some(())
    }

    fn leave(&mut self) {
        self.depth -= 1;
    }

    fn is_separator(&self) -> bool {
        match self.peek() {
            Some(Tok::Comma(_) | Tok::Semi | Tok::RowSep) => true,
            Some(Tok::Ident(w)) => matches!(w.as_str(), "and" | "or"),
            _ => false,
        }
    }

    /// items := relation (separator relation)*; empty items are skipped.
    fn list(&mut self, close: &[Tok]) -> Option<Vec<Expr>> {
        let mut items = Vec::new();
        loop {
            while self.is_separator() {
                self.pos += 1;
            }
            match self.peek() {
                None => break,
                Some(t) if close.contains(t) => break,
                _ => {}
            }
            items.push(self.relation()?);
            if !self.is_separator() {
                break;
            }
        }
        Some(items)
    }

    /// The top level: `;` separates groups of comma-separated items (`p=5,q=2;p=7,q=2`).
    fn semicolon_groups(&mut self) -> Option<Vec<Expr>> {
        if !self.toks.contains(&Tok::Semi)
            || self.toks.iter().any(|t| {
                matches!(
                    t,
                    Tok::LParen | Tok::LBrack | Tok::LSet | Tok::LBrace | Tok::Cmd(_)
                )
            })
        {
            return self.list(&[]);
        }
        let mut groups = Vec::new();
        loop {
            let mut items = Vec::new();
            loop {
                while matches!(self.peek(), Some(Tok::Comma(_))) {
                    self.pos += 1;
                }
                if matches!(self.peek(), None | Some(Tok::Semi)) {
                    break;
                }
                items.push(self.relation()?);
                if !matches!(self.peek(), Some(Tok::Comma(_))) {
                    break;
                }
            }
            match items.len() {
                0 => {}
                1 => groups.extend(items),
                _ => groups.push(Expr::List(items)),
            }
            if !self.eat(&Tok::Semi) {
                break;
            }
        }
        Some(groups)
    }

    fn relop(&self) -> Option<RelOp> {
        Some(match self.peek()? {
            Tok::Rel('=') => RelOp::Eq,
            Tok::Rel('<') => RelOp::Lt,
            Tok::Rel('>') => RelOp::Gt,
            Tok::Rel('≤') => RelOp::Le,
            Tok::Rel('≥') => RelOp::Ge,
            Tok::Rel('≠') => RelOp::Ne,
            Tok::Rel('≈') => RelOp::Approx,
            Tok::In => RelOp::In,
            Tok::Cmd(c) if c == "equiv" || c == "cong" => RelOp::Eq,
            Tok::Cmd(c) if c == "sim" => RelOp::Approx,
            _ => return None,
        })
    }

    fn relation(&mut self) -> Option<Expr> {
        self.enter()?;
        // `\approx 3.46` or `= 5` with nothing before: the value alone.
        if let Some(RelOp::Approx | RelOp::Eq) = self.relop() {
            self.pos += 1;
        }
        let first = self.ratio()?;
        let mut sides = vec![first];
        let mut ops = Vec::new();
        while let Some(op) = self.relop() {
            self.pos += 1;
            // `x \in \mathbb{R}`, `x = \pm 3`: the right side may start with anything.
            sides.push(self.ratio()?);
            ops.push(op);
        }
        self.leave();
        // `A \approx 0.577` after an exact A keeps A (and `x = A \approx 0.577` keeps x = A);
        // `x \approx 3.46` stays a labelled approximation.
        while ops.last() == Some(&RelOp::Approx)
            && sides.len() >= 2
            && !sides[sides.len() - 2].is_label()
        {
            ops.pop();
            sides.pop();
        }
        Some(if ops.is_empty() {
            sides.pop()?
        } else {
            Expr::Rel(sides, ops)
        })
    }

    fn ratio(&mut self) -> Option<Expr> {
        let first = self.union()?;
        if self.peek() != Some(&Tok::Colon) {
            return Some(first);
        }
        let mut parts = vec![first];
        while self.eat(&Tok::Colon) {
            parts.push(self.union()?);
        }
        Some(Expr::Ratio(parts))
    }

    fn union(&mut self) -> Option<Expr> {
        let first = self.union_only()?;
        if let Some(Tok::Cmd(c)) = self.peek()
            && (c == "setminus" || c == "backslash")
        {
            self.pos += 1;
            let rest = self.union_only()?;
            return Some(Expr::Without(Box::new(first), Box::new(rest)));
        }
        Some(first)
    }

    fn union_only(&mut self) -> Option<Expr> {
        let first = self.sum()?;
        let mut parts = vec![first];
        loop {
            match self.peek() {
                Some(Tok::Cup) => {}
                Some(Tok::Ident(u)) if u == "U" => {}
                _ => break,
            }
            self.pos += 1;
            parts.push(self.sum()?);
        }
        Some(if parts.len() == 1 {
            parts.pop()?
        } else {
            Expr::Union(parts)
        })
    }

    fn sum(&mut self) -> Option<Expr> {
        self.enter()?;
        let mut terms = vec![self.term()?];
        let mut pm: Option<Expr> = None;
        loop {
            match self.peek() {
                Some(Tok::Op('+')) => {
                    self.pos += 1;
                    terms.push(self.term()?);
                }
                Some(Tok::Op('-')) => {
                    self.pos += 1;
                    let t = self.term()?;
                    terms.push(neg(t));
                }
                Some(Tok::Op('±' | '∓')) => {
                    self.pos += 1;
                    let t = self.term()?;
                    // a ± b ± c: keep the first; further terms join b
                    pm = Some(match pm {
                        None => t,
                        Some(prev) => Expr::Add(vec![prev, t]),
                    });
                }
                _ => break,
            }
        }
        self.leave();
        let base = if terms.len() == 1 {
            terms.pop()?
        } else {
            Expr::Add(terms)
        };
        Some(match pm {
            Some(b) => Expr::PlusMinus(Box::new(base), Box::new(b)),
            None => base,
        })
    }

    /// Whether the next token can start an implicitly multiplied factor.
    fn starts_factor(&self) -> bool {
        match self.peek() {
            Some(Tok::Num(_) | Tok::LParen | Tok::LBrace | Tok::LSet | Tok::Inf) => true,
            Some(Tok::Ident(w)) => !matches!(w.as_str(), "and" | "or" | "U"),
            Some(Tok::Pipe) => self.abs == 0,
            Some(Tok::Cmd(c)) => !matches!(
                c.as_str(),
                "end"
                    | "cap"
                    | "setminus"
                    | "equiv"
                    | "cong"
                    | "sim"
                    | "to"
                    | "rightarrow"
                    | "implies"
                    | "Rightarrow"
                    | "quad"
            ),
            Some(Tok::LBrack) => false,
            _ => false,
        }
    }

    fn term(&mut self) -> Option<Expr> {
        self.enter()?;
        let mut factors = vec![self.unary()?];
        loop {
            match self.peek() {
                Some(Tok::Op('*')) => {
                    self.pos += 1;
                    factors.push(self.unary()?);
                }
                Some(Tok::Op('/')) => {
                    self.pos += 1;
                    let d = self.unary()?;
                    let n = if factors.len() == 1 {
                        factors.pop()?
                    } else {
                        Expr::Mul(std::mem::take(&mut factors))
                    };
                    factors.push(Expr::Div(Box::new(n), Box::new(d)));
                }
                // `3128 1/2`: a whole number and a proper fraction written apart
                Some(Tok::Num(bn))
                    if factors.len() == 1
                        && matches!(self.toks.get(self.pos.wrapping_sub(1)), Some(Tok::Num(_)))
                        && matches!(&factors[0], Expr::Num(a) if a.decimals.is_none() && a.value.is_int() && a.value.n >= 0)
                        && self.toks.get(self.pos + 1) == Some(&Tok::Op('/'))
                        && matches!(self.toks.get(self.pos + 2), Some(Tok::Num(_)))
                        && !bn.contains(['.', 'e']) =>
                {
                    let bn = bn.clone();
                    let Some(Tok::Num(cn)) = self.toks.get(self.pos + 2).cloned() else {
                        return None;
                    };
                    let (b_, c_) = (bn.parse::<i128>().ok()?, cn.parse::<i128>().ok()?);
                    if c_ == 0 || b_ >= c_ {
                        // not a mixed number (`11 6/6`)
                        return None;
                    }
                    self.pos += 3;
                    let whole = factors.pop()?;
                    let frac = Expr::Div(Box::new(Expr::int(b_)), Box::new(Expr::int(c_)));
                    let mixed = Expr::Add(vec![whole, frac]);
                    factors.push(self.postfix_ops(mixed));
                }
                _ if self.starts_factor() => {
                    let f = self.power()?;
                    // 2\frac{1}{2} is a mixed number: 2 + 1/2.
                    let mixed = matches!(
                        (factors.last(), &f),
                        (Some(Expr::Num(a)), Expr::Div(n, d))
                            if a.decimals.is_none() && a.value.is_int() && a.value.n >= 0
                                && matches!(**n, Expr::Num(x) if x.value.is_int() && x.value.n > 0)
                                && matches!(**d, Expr::Num(x) if x.value.is_int() && x.value.n > 0)
                                && factors.len() == 1
                    );
                    // 33\frac{1}{3}\%: the percent applies to the mixed number
                    let mixed_percent = matches!(
                        (factors.last(), &f),
                        (Some(Expr::Num(a)), Expr::Percent(inner))
                            if a.decimals.is_none() && a.value.is_int() && a.value.n >= 0
                                && factors.len() == 1
                                && matches!(&**inner, Expr::Div(n, d)
                                    if matches!(**n, Expr::Num(x) if x.value.is_int() && x.value.n > 0)
                                    && matches!(**d, Expr::Num(x) if x.value.is_int() && x.value.n > 0))
                    );
                    if mixed_percent && let Expr::Percent(inner) = f {
                        let whole = factors.pop()?;
                        factors.push(Expr::Percent(Box::new(Expr::Add(vec![whole, *inner]))));
                    } else if mixed {
                        let whole = factors.pop()?;
                        factors.push(Expr::Add(vec![whole, f]));
                    } else {
                        factors.push(f);
                    }
                }
                _ => break,
            }
        }
        self.leave();
        if factors.len() > 1 && factors.iter().any(|f| matches!(f, Expr::Text(_))) {
            // words inside arithmetic: not an answer (`210 ways to choose`)
            return None;
        }
        Some(if factors.len() == 1 {
            factors.pop()?
        } else {
            Expr::Mul(factors)
        })
    }

    fn unary(&mut self) -> Option<Expr> {
        self.enter()?;
        let e = match self.peek() {
            Some(Tok::Op('-')) => {
                self.pos += 1;
                neg(self.unary()?)
            }
            Some(Tok::Op('+')) => {
                self.pos += 1;
                self.unary()?
            }
            Some(Tok::Op('±' | '∓')) => {
                self.pos += 1;
                let x = self.unary()?;
                Expr::PlusMinus(Box::new(Expr::int(0)), Box::new(x))
            }
            _ => self.power()?,
        };
        self.leave();
        Some(e)
    }

    fn power(&mut self) -> Option<Expr> {
        self.enter()?;
        let base = self.postfix()?;
        let e = if self.eat(&Tok::Op('^')) {
            let exp = self.exponent()?;
            let p = Expr::Pow(Box::new(base), Box::new(exp));
            self.postfix_ops(p)
        } else {
            base
        };
        self.leave();
        Some(e)
    }

    /// The exponent after `^`: a group, a signed atom, or a whole number (`2^10`).
    fn exponent(&mut self) -> Option<Expr> {
        self.enter()?;
        let e = match self.peek()? {
            Tok::Op('-') => {
                self.pos += 1;
                neg(self.exponent()?)
            }
            Tok::Op('+') => {
                self.pos += 1;
                self.exponent()?
            }
            Tok::Num(n) => {
                let n = n.clone();
                self.pos += 1;
                let e = number(&n)?;
                if self.eat(&Tok::Op('^')) {
                    Expr::Pow(Box::new(e), Box::new(self.exponent()?))
                } else {
                    e
                }
            }
            Tok::Ident(w) if w.chars().count() > 1 && word_func(w).is_none() => {
                // x^ab is x^a b in TeX: take one letter.
                let w = w.clone();
                let mut chars = w.chars();
                let first = chars.next()?.to_string();
                self.toks[self.pos] = Tok::Ident(chars.collect());
                symbol(&first)
            }
            _ => {
                let a = self.postfix()?;
                if self.eat(&Tok::Op('^')) {
                    Expr::Pow(Box::new(a), Box::new(self.exponent()?))
                } else {
                    a
                }
            }
        };
        self.leave();
        Some(e)
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
                    e = Expr::Func(Func::Fact, vec![e]);
                }
                Some(Tok::Op('%')) => {
                    self.pos += 1;
                    e = Expr::Percent(Box::new(e));
                }
                Some(Tok::Op('\'')) => {
                    self.pos += 1;
                    if let Expr::Sym(s) = &e {
                        e = Expr::Sym(format!("{s}'"));
                    }
                }
                Some(Tok::Under) => {
                    self.pos += 1;
                    let sub = self.subscript();
                    e = match e {
                        Expr::Sym(name) => Expr::Sym(format!("{name}_{sub}")),
                        Expr::Num(n)
                            if n.value.is_int()
                                && n.decimals.is_none()
                                && sub.parse::<u32>().is_ok_and(|b| (2..=36).contains(&b)) =>
                        {
                            Expr::Based(n.value.n.to_string(), sub.parse().unwrap_or(10))
                        }
                        other => other,
                    };
                }
                _ => return e,
            }
        }
    }

    /// A subscript's text: one token or a braced group.
    fn subscript(&mut self) -> String {
        match self.next() {
            Some(Tok::Num(n)) => {
                // x_12 is x_1 2 in TeX, but writers mean x_{12}.
                n
            }
            Some(Tok::Ident(n)) => n,
            Some(Tok::Cmd(c)) => c,
            Some(Tok::LBrace) => {
                let mut s = String::new();
                let mut depth = 1;
                while let Some(t) = self.next() {
                    match t {
                        Tok::LBrace => depth += 1,
                        Tok::RBrace => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        Tok::Num(n) | Tok::Ident(n) | Tok::Cmd(n) => s.push_str(&n),
                        Tok::Op(c) => s.push(c),
                        Tok::Comma(_) => s.push(','),
                        _ => s.push('?'),
                    }
                }
                s
            }
            _ => String::new(),
        }
    }

    /// A TeX argument: a braced group, or a single token (`\frac12` is 1/2, `\sqrt2`).
    fn tex_arg(&mut self) -> Option<Expr> {
        match self.peek()? {
            Tok::LBrace => self.primary(),
            Tok::Num(n) if n.len() > 1 && !n.contains(['.', 'e']) => {
                let n = n.clone();
                let (first, rest) = n.split_at(1);
                self.toks[self.pos] = Tok::Num(rest.to_string());
                number(first)
            }
            Tok::Ident(w) if w.chars().count() > 1 => {
                let w = w.clone();
                let mut chars = w.chars();
                let first = chars.next()?.to_string();
                self.toks[self.pos] = Tok::Ident(chars.collect());
                Some(symbol(&first))
            }
            _ => self.primary(),
        }
    }

    /// The argument of `\sin`, `\log`, ...: parenthesised, or the product that follows up
    /// to the next operator or function (`\sin 2x \cos x` is `sin(2x) cos(x)`).
    fn func_arg(&mut self) -> Option<Expr> {
        match self.peek()? {
            Tok::LParen | Tok::LBrace => {
                let a = self.primary()?;
                Some(a)
            }
            _ => {
                let mut factors = vec![self.power()?];
                while self.starts_factor() {
                    if let Some(Tok::Cmd(c)) = self.peek()
                        && (cmd_func(c).is_some() || c == "frac" || c == "sqrt")
                    {
                        break;
                    }
                    if let Some(Tok::Ident(w)) = self.peek()
                        && word_func(w).is_some()
                    {
                        break;
                    }
                    factors.push(self.power()?);
                }
                Some(if factors.len() == 1 {
                    factors.pop()?
                } else {
                    Expr::Mul(factors)
                })
            }
        }
    }

    /// `\sin^2 x`, `\log_2 8`, `\sin^{-1} x`, `\ln(x)`.
    fn apply_func(&mut self, f: Func) -> Option<Expr> {
        let mut base = None;
        let mut power = None;
        for _ in 0..2 {
            if f == Func::Log && base.is_none() && self.eat(&Tok::Under) {
                base = Some(self.tex_arg()?);
            } else if power.is_none() && self.eat(&Tok::Op('^')) {
                power = Some(self.exponent()?);
            }
        }
        let arg = self.func_arg()?;
        let inverse = matches!(&power, Some(Expr::Num(n)) if n.value == Rational::int(-1));
        let f = if inverse {
            match f {
                Func::Sin => Func::Asin,
                Func::Cos => Func::Acos,
                Func::Tan => Func::Atan,
                other => other,
            }
        } else {
            f
        };
        let applied = match (f, base) {
            (Func::Log, Some(b)) => Expr::Func(Func::Log, vec![b, arg]),
            // \log without a base: base 10, as sympy's LaTeX parser reads it.
            (Func::Log, None) => Expr::Func(Func::Log, vec![Expr::int(10), arg]),
            (f, _) => Expr::Func(f, vec![arg]),
        };
        Some(match power {
            Some(p) if !inverse => Expr::Pow(Box::new(applied), Box::new(p)),
            _ => applied,
        })
    }

    fn primary(&mut self) -> Option<Expr> {
        self.enter()?;
        let t = self.next()?;
        let e = match t {
            Tok::Num(n) => number(&n)?,
            Tok::Inf => Expr::Inf,
            Tok::Reals => Expr::Reals,
            Tok::Ident(word) => self.word(word)?,
            Tok::Cmd(c) => self.command(&c)?,
            Tok::LBrace => {
                let items = self.list(&[Tok::RBrace])?;
                if !self.eat(&Tok::RBrace) {
                    return None;
                }
                match items.len() {
                    0 => Expr::Set(Vec::new()),
                    1 => items.into_iter().next()?,
                    _ => Expr::Set(items),
                }
            }
            Tok::LSet => {
                let items = self.list(&[Tok::RSet])?;
                if !self.eat(&Tok::RSet) {
                    return None;
                }
                Expr::Set(items)
            }
            Tok::LParen | Tok::LBrack | Tok::RBrack => {
                let open_closed = t == Tok::LBrack;
                let french = t == Tok::RBrack;
                let closers: &[Tok] = if french || open_closed {
                    &[Tok::RParen, Tok::RBrack, Tok::LBrack]
                } else {
                    &[Tok::RParen, Tok::RBrack]
                };
                let items = self.list(closers)?;
                let close_closed = match self.next()? {
                    Tok::RParen => false,
                    Tok::RBrack => true,
                    // `]a, b[` and `[a, b[`: French notation for open ends
                    Tok::LBrack => false,
                    _ => return None,
                };
                if french && items.len() != 2 {
                    return None;
                }
                match items.len() {
                    0 => return None,
                    1 if open_closed == close_closed => items.into_iter().next()?,
                    1 => return None,
                    2 if open_closed || close_closed => {
                        let mut it = items.into_iter();
                        let (a, b) = (it.next()?, it.next()?);
                        Expr::Interval(Box::new(a), Box::new(b), open_closed, close_closed)
                    }
                    _ => Expr::Tuple(items),
                }
            }
            Tok::Pipe => {
                self.abs += 1;
                let inner = self.sum();
                self.abs -= 1;
                let inner = inner?;
                if !self.eat(&Tok::Pipe) {
                    return None;
                }
                Expr::Func(Func::Abs, vec![inner])
            }
            _ => return None,
        };
        self.leave();
        Some(e)
    }

    /// A run of letters: a function, a constant, a separator word, variables or a word.
    fn word(&mut self, word: String) -> Option<Expr> {
        if let Some(f) = word_func(&word) {
            if f == Func::Sqrt {
                let x = self.tex_arg()?;
                return Some(Expr::Func(Func::Sqrt, vec![x]));
            }
            return self.apply_func(f);
        }
        // f(x), g(2), P(1, 2): a function named at a point, kept as one name so that
        // `g(2) = 7` reads as a labelled answer.
        if word.chars().count() == 1
            && word != "e"
            && word != "i"
            && self.peek() == Some(&Tok::LParen)
            && let Some(name) = self.call_name(&word)
        {
            return Some(Expr::Sym(name));
        }
        Some(match word.as_str() {
            "pi" => Expr::Pi,
            "inf" | "infinity" | "oo" | "Infinity" => Expr::Inf,
            w if w.chars().count() == 1 => symbol(w),
            w if w.len() <= 3
                && !is_short_word(w)
                && w.chars().all(|c| c.is_ascii_alphabetic())
                && (w.chars().all(|c| c.is_ascii_lowercase())
                    || w.chars().all(|c| c.is_ascii_uppercase())) =>
            {
                // xy, PQ, abc: a product of variables (as sympy's parser reads them).
                Expr::Mul(w.chars().map(|c| Expr::Sym(c.to_string())).collect())
            }
            _ => {
                // Words: gather the run of words into one text.
                let mut text = word;
                while let Some(Tok::Ident(w)) = self.peek() {
                    if matches!(w.as_str(), "and" | "or") {
                        break;
                    }
                    text.push(' ');
                    text.push_str(w);
                    self.pos += 1;
                }
                Expr::Text(text.to_lowercase())
            }
        })
    }

    /// `f(x)`: the name with its atomic arguments, when the parentheses hold only numbers and
    /// single letters; the parser then skips them.
    fn call_name(&mut self, f: &str) -> Option<String> {
        let mut k = self.pos + 1;
        let mut args = Vec::new();
        loop {
            match self.toks.get(k)? {
                Tok::Num(n) => args.push(n.clone()),
                Tok::Ident(w) if w.chars().count() == 1 => args.push(w.clone()),
                Tok::Op('-') if matches!(self.toks.get(k + 1), Some(Tok::Num(_))) => {
                    k += 1;
                    if let Some(Tok::Num(n)) = self.toks.get(k) {
                        args.push(format!("-{n}"));
                    }
                }
                _ => return None,
            }
            k += 1;
            match self.toks.get(k)? {
                Tok::Comma(_) => k += 1,
                Tok::RParen => break,
                _ => return None,
            }
        }
        self.pos = k + 1;
        Some(format!("{f}({})", args.join(",")))
    }

    fn command(&mut self, c: &str) -> Option<Expr> {
        if let Some(f) = cmd_func(c) {
            return self.apply_func(f);
        }
        Some(match c {
            "frac" | "over" => {
                let a = self.tex_arg()?;
                let b = self.tex_arg()?;
                Expr::Div(Box::new(a), Box::new(b))
            }
            "binom" | "choose" => {
                let n = self.tex_arg()?;
                let k = self.tex_arg()?;
                Expr::Func(Func::Binom, vec![n, k])
            }
            "sqrt" => {
                if self.eat(&Tok::LBrack) {
                    let k = self.sum()?;
                    if !self.eat(&Tok::RBrack) {
                        return None;
                    }
                    let x = self.tex_arg()?;
                    Expr::Func(Func::Root, vec![k, x])
                } else {
                    let x = self.tex_arg()?;
                    Expr::Func(Func::Sqrt, vec![x])
                }
            }
            "pi" | "Pi" => Expr::Pi,
            "infty" => Expr::Inf,
            "e" => Expr::E,
            "i" | "imath" => Expr::I,
            "lfloor" | "lceil" => {
                let inner = self.sum()?;
                let close = self.next()?;
                let f = match (c, close) {
                    ("lfloor", Tok::Cmd(ref r)) if r == "rfloor" => Func::Floor,
                    ("lceil", Tok::Cmd(ref r)) if r == "rceil" => Func::Ceil,
                    _ => return None,
                };
                Expr::Func(f, vec![inner])
            }
            "begin" => self.environment()?,
            "mathbb" => {
                let w = match self.next()? {
                    Tok::Ident(w) => w,
                    _ => return None,
                };
                if w == "R" {
                    Expr::Reals
                } else {
                    Expr::Text(format!("mathbb{w}").to_lowercase())
                }
            }
            "in" | "cup" | "cap" | "end" | "setminus" | "to" | "rightarrow" | "Rightarrow"
            | "implies" | "rfloor" | "rceil" => return None,
            // Greek letters and other symbols are variables.
            other => Expr::Sym(format!("\\{other}")),
        })
    }

    /// `\begin{pmatrix} a & b \\ c & d \end{pmatrix}`, `\begin{array}{cc} ... \end{array}`,
    /// `\begin{cases} ... \end{cases}` (its rows as a list).
    fn environment(&mut self) -> Option<Expr> {
        if !self.eat(&Tok::LBrace) {
            return None;
        }
        let name = match self.next()? {
            Tok::Ident(n) => n,
            _ => return None,
        };
        // `align*` and friends
        self.eat(&Tok::Op('*'));
        if !self.eat(&Tok::RBrace) {
            return None;
        }
        if name == "array" && self.peek() == Some(&Tok::LBrace) {
            // column spec
            while let Some(t) = self.next() {
                if t == Tok::RBrace {
                    break;
                }
            }
        }
        let mut rows: Vec<Vec<Expr>> = vec![Vec::new()];
        loop {
            match self.peek()? {
                Tok::Cmd(c) if c == "end" => {
                    self.pos += 1;
                    // {name}
                    if self.eat(&Tok::LBrace) {
                        while let Some(t) = self.next() {
                            if t == Tok::RBrace {
                                break;
                            }
                        }
                    }
                    break;
                }
                Tok::Amp => {
                    self.pos += 1;
                }
                Tok::RowSep => {
                    self.pos += 1;
                    rows.push(Vec::new());
                }
                _ => {
                    let e = self.relation()?;
                    rows.last_mut()?.push(e);
                    // A comma inside a cell row (cases) separates too.
                    while matches!(self.peek(), Some(Tok::Comma(_) | Tok::Semi)) {
                        self.pos += 1;
                    }
                }
            }
        }
        rows.retain(|r| !r.is_empty());
        let matrix = name.ends_with("matrix") || name == "array";
        Some(if matrix {
            Expr::Matrix(rows)
        } else {
            let mut items: Vec<Expr> = rows.into_iter().flatten().collect();
            if items.len() == 1 {
                items.pop()?
            } else {
                Expr::List(items)
            }
        })
    }
}

/// Short English words that are not products of variables.
fn is_short_word(w: &str) -> bool {
    matches!(
        w,
        "the"
            | "not"
            | "is"
            | "it"
            | "its"
            | "of"
            | "to"
            | "in"
            | "on"
            | "at"
            | "by"
            | "an"
            | "for"
            | "are"
            | "was"
            | "be"
            | "so"
            | "as"
            | "if"
            | "we"
            | "no"
            | "yes"
            | "but"
            | "all"
            | "any"
            | "can"
            | "has"
            | "how"
            | "may"
            | "who"
            | "why"
            | "let"
            | "get"
            | "thus"
            | "then"
            | "our"
            | "you"
            | "one"
            | "two"
            | "six"
            | "ten"
            | "per"
            | "nor"
            | "odd"
            | "had"
            | "his"
            | "her"
            | "she"
            | "he"
            | "me"
            | "my"
            | "do"
            | "am"
            | "now"
            | "new"
            | "see"
            | "way"
            | "use"
            | "set"
            | "sum"
    )
}

fn cmd_func(c: &str) -> Option<Func> {
    match c {
        "sqrt" | "frac" => None,
        "arcsec" | "arccsc" | "arccot" => None,
        other => word_func(other),
    }
}

/// A one-letter name: `e` is Euler's number and `i` the imaginary unit, as sympy reads them.
fn symbol(w: &str) -> Expr {
    match w {
        "e" => Expr::E,
        "i" => Expr::I,
        other => Expr::Sym(other.to_string()),
    }
}

/// Parses an answer as written; `None` when it is not a mathematical expression (it is then
/// compared as text).
pub fn parse_answer(answer: &str, budget: &mut Budget) -> Option<Expr> {
    // Cleaning is not linear in the worst case; an answer this long is not parsed at all.
    if answer.len() > 4 * MAX_ANSWER {
        return None;
    }
    let cleaned = clean(answer);
    parse_cleaned(&cleaned, budget)
}

/// [`parse_answer`] on an already cleaned answer.
pub fn parse_cleaned(cleaned: &str, budget: &mut Budget) -> Option<Expr> {
    if cleaned.is_empty() || cleaned.len() > MAX_ANSWER {
        return None;
    }
    let (toks, spaced) = tokenize(cleaned)?;
    let toks = drop_units(toks, &spaced);
    let mut p = Parser {
        toks,
        pos: 0,
        depth: 0,
        abs: 0,
        budget,
    };
    let items = p.semicolon_groups()?;
    if p.pos != p.toks.len() {
        return None;
    }
    let mut items = items;
    let e = match items.len() {
        0 => return None,
        1 => items.pop()?,
        _ => Expr::List(items),
    };
    words_only_as_items(&e).then_some(e)
}

/// Words may stand alone or as items of a list, set or tuple (`\text{Monday}`,
/// `Alice, Bob`), never inside arithmetic or a relation (`Answer: 12`, `12 ways to`).
fn words_only_as_items(e: &Expr) -> bool {
    match e {
        Expr::Text(_) => true,
        Expr::List(v) | Expr::Set(v) | Expr::Tuple(v) => v.iter().all(words_only_as_items),
        other => {
            let mut ok = true;
            other.walk(&mut |x| ok &= !matches!(x, Expr::Text(_)));
            ok
        }
    }
}

/// Unit words after a number (`12 cm`, `5 square units`, `3 \text{ km/h}`, `4 m^2`) are
/// dropped; so are words that only follow a complete number at the end.
fn drop_units(toks: Vec<Tok>, spaced: &[bool]) -> Vec<Tok> {
    let mut out: Vec<Tok> = Vec::with_capacity(toks.len());
    let mut i = 0;
    while i < toks.len() {
        let after_value = match out.last() {
            Some(Tok::Num(_) | Tok::RParen | Tok::RBrace | Tok::Op('%')) => true,
            Some(Tok::Cmd(c)) => c == "pi",
            Some(Tok::Ident(w)) => is_unit(w),
            _ => false,
        };
        // One-letter and other ambiguous units (`m`, `s`, `in`) only when written apart:
        // `5 m` is five metres, `5m` may be five times m.
        let unit = |k: usize| match &toks[k] {
            Tok::Ident(w) => {
                is_unit(w)
                    && (!is_ambiguous_unit(w)
                        || spaced[k]
                        // 100m^2: a unit with its power
                        || (toks.get(k + 1) == Some(&Tok::Op('^'))
                            && matches!(toks.get(k + 2), Some(Tok::Num(n)) if n == "2" || n == "3")))
            }
            _ => false,
        };
        if let Tok::Ident(w) = &toks[i]
            && matches!(out.last(), Some(Tok::Num(_)))
            && let Some(scale) = scale_word(w)
        {
            out.push(Tok::Op('*'));
            out.push(Tok::Num(scale.to_string()));
            i += 1;
            continue;
        }
        if after_value && unit(i) {
            // the unit and what belongs to it: ^2, /s, further unit words
            let mut j = i + 1;
            loop {
                match (toks.get(j), toks.get(j + 1)) {
                    (Some(Tok::Op('^')), Some(Tok::Num(_))) => j += 2,
                    (Some(Tok::Op('/')), Some(Tok::Ident(u))) if is_unit(u) => j += 2,
                    (Some(Tok::Ident(_)), _) if unit(j) => j += 1,
                    _ => break,
                }
            }
            // Only where the unit ends the value: end, separator, relation or bracket.
            let ends = matches!(
                toks.get(j),
                None | Some(
                    Tok::Comma(_)
                        | Tok::Semi
                        | Tok::Rel(_)
                        | Tok::RParen
                        | Tok::RBrack
                        | Tok::RBrace
                        | Tok::RSet
                        | Tok::Amp
                        | Tok::RowSep
                )
            ) || matches!(toks.get(j), Some(Tok::Ident(w)) if w == "and" || w == "or");
            if ends {
                i = j;
                continue;
            }
        }
        out.push(toks[i].clone());
        i += 1;
    }
    // Words after a complete value at the end (`17 \text{ any text}`, `12 apples`): dropped.
    let is_word = |t: &Tok| matches!(t, Tok::Ident(w) if w.chars().count() >= 2 && word_func(w).is_none() && !matches!(w.as_str(), "and" | "or" | "pi" | "inf" | "infinity"));
    let mut k = out.len();
    while k > 0 && is_word(&out[k - 1]) {
        k -= 1;
    }
    if k < out.len()
        && k > 0
        && matches!(
            out[k - 1],
            Tok::Num(_) | Tok::RParen | Tok::RBrace | Tok::Op('%') | Tok::RBrack | Tok::RSet
        )
        && !out[..k]
            .iter()
            .any(|t| matches!(t, Tok::Ident(w) if w.chars().count() >= 4))
    {
        out.truncate(k);
    }
    out
}

/// `2 million`, `3 thousand`.
fn scale_word(w: &str) -> Option<&'static str> {
    Some(match w {
        "hundred" => "100",
        "thousand" => "1000",
        "million" | "millions" => "1000000",
        "billion" | "billions" => "1000000000",
        "trillion" => "1000000000000",
        _ => return None,
    })
}

fn is_ambiguous_unit(w: &str) -> bool {
    w.chars().count() == 1
        || matches!(
            w,
            "in" | "min"
                | "sec"
                | "cup"
                | "cups"
                | "rad"
                | "deg"
                | "per"
                | "am"
                | "pm"
                | "cu"
                | "sq"
                | "each"
                | "times"
                | "ways"
                | "mi"
                | "yd"
                | "hr"
        )
}

fn is_unit(w: &str) -> bool {
    const UNITS: &[&str] = &[
        "unit",
        "units",
        "square",
        "sq",
        "cubic",
        "cu",
        "cm",
        "mm",
        "km",
        "m",
        "meter",
        "meters",
        "metre",
        "metres",
        "inch",
        "inches",
        "in",
        "ft",
        "feet",
        "foot",
        "yard",
        "yards",
        "yd",
        "mile",
        "miles",
        "mi",
        "mph",
        "kph",
        "kmh",
        "kg",
        "g",
        "gram",
        "grams",
        "mg",
        "lb",
        "lbs",
        "pound",
        "pounds",
        "ounce",
        "ounces",
        "oz",
        "ton",
        "tons",
        "dollar",
        "dollars",
        "cent",
        "cents",
        "euro",
        "euros",
        "usd",
        "USD",
        "EUR",
        "GBP",
        "yuan",
        "rs",
        "rupees",
        "degree",
        "degrees",
        "deg",
        "radian",
        "radians",
        "rad",
        "second",
        "seconds",
        "sec",
        "s",
        "minute",
        "minutes",
        "min",
        "mins",
        "hour",
        "hours",
        "hr",
        "hrs",
        "h",
        "day",
        "days",
        "week",
        "weeks",
        "month",
        "months",
        "year",
        "years",
        "yr",
        "yrs",
        "liter",
        "liters",
        "litre",
        "litres",
        "l",
        "L",
        "ml",
        "mL",
        "gallon",
        "gallons",
        "gal",
        "quart",
        "quarts",
        "pint",
        "pints",
        "cup",
        "cups",
        "people",
        "persons",
        "students",
        "apples",
        "marbles",
        "pages",
        "books",
        "cookies",
        "boxes",
        "points",
        "per",
        "each",
        "times",
        "ways",
        "items",
        "pieces",
        "percent",
        "km/h",
        "m/s",
        "sqft",
        "acres",
        "acre",
        "hectares",
        "kilometers",
        "kilometres",
        "centimeters",
        "centimetres",
        "millimeters",
        "grams",
        "kilograms",
        "calories",
        "miles",
        "mins",
        "secs",
        "am",
        "pm",
        "cm²",
        "m²",
    ];
    UNITS.contains(&w)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Option<Expr> {
        parse_answer(s, &mut Budget::new(100_000))
    }

    #[test]
    fn parses_structures() {
        assert!(matches!(
            p("(1, 2]"),
            Some(Expr::Interval(_, _, false, true))
        ));
        assert!(matches!(p("\\{1, 2\\}"), Some(Expr::Set(v)) if v.len() == 2));
        assert!(matches!(p("1, 2, 3"), Some(Expr::List(v)) if v.len() == 3));
        assert!(matches!(p("x = 3"), Some(Expr::Rel(_, ops)) if ops == [RelOp::Eq]));
        assert!(matches!(p("1 \\le t < 4"), Some(Expr::Rel(_, ops)) if ops.len() == 2));
        assert!(matches!(p("\\text{Evelyn}"), Some(Expr::Text(t)) if t == "evelyn"));
        assert!(matches!(p("1011_2"), Some(Expr::Based(d, 2)) if d == "1011"));
        assert!(matches!(p("2:9"), Some(Expr::Ratio(v)) if v.len() == 2));
        assert!(matches!(p("12 \\text{ cm}"), Some(Expr::Num(_))));
        assert!(
            matches!(p("\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}"), Some(Expr::Matrix(r)) if r.len() == 2 && r[0].len() == 2)
        );
        let deep = format!("{}1{}", "(".repeat(500), ")".repeat(500));
        assert!(p(&deep).is_none());
    }
}
