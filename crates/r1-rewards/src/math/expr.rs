//! Parsed answers and their evaluation.

use super::value::{Complex, Func, Rational, Value};

/// A number as written: its exact value and, for decimals, how many digits it shows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Num {
    /// The exact value (`0.25` is `1/4`).
    pub value: Rational,
    /// Digits after the decimal point when written as a decimal (`0.2857`: 4); `None` for
    /// integers and fractions.
    pub decimals: Option<u32>,
    /// Significant digits shown (`0.2857`: 4, `3.14`: 3, `120`: 3).
    pub significant: u32,
}

/// A relation between two sides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelOp {
    /// `=`
    Eq,
    /// `\neq`
    Ne,
    /// `<`
    Lt,
    /// `\le`
    Le,
    /// `>`
    Gt,
    /// `\ge`
    Ge,
    /// `\approx`
    Approx,
    /// `\in`
    In,
}

impl RelOp {
    /// The same relation with its sides swapped (`<` becomes `>`).
    pub fn flipped(self) -> Self {
        match self {
            RelOp::Lt => RelOp::Gt,
            RelOp::Gt => RelOp::Lt,
            RelOp::Le => RelOp::Ge,
            RelOp::Ge => RelOp::Le,
            other => other,
        }
    }

    /// An order relation (`<`, `\le`, `>`, `\ge`).
    pub fn is_order(self) -> bool {
        matches!(self, RelOp::Lt | RelOp::Le | RelOp::Gt | RelOp::Ge)
    }
}

/// A parsed answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// A number as written.
    Num(Num),
    /// A number too large for an exact rational.
    Float(f64),
    /// A variable (`x`, `x_1`, `\alpha`).
    Sym(String),
    /// π.
    Pi,
    /// Euler's number.
    E,
    /// The imaginary unit.
    I,
    /// Infinity.
    Inf,
    /// A sum.
    Add(Vec<Expr>),
    /// A product.
    Mul(Vec<Expr>),
    /// Negation.
    Neg(Box<Expr>),
    /// A quotient.
    Div(Box<Expr>, Box<Expr>),
    /// A power.
    Pow(Box<Expr>, Box<Expr>),
    /// A known function of arguments.
    Func(Func, Vec<Expr>),
    /// `x\%`.
    Percent(Box<Expr>),
    /// `a \pm b`: both values.
    PlusMinus(Box<Expr>, Box<Expr>),
    /// A chain of relations: `sides[0] ops[0] sides[1] ops[1] sides[2] ...`.
    Rel(Vec<Expr>, Vec<RelOp>),
    /// `(a, b, ...)`: ordered (a point, a vector, an open interval when two ends).
    Tuple(Vec<Expr>),
    /// `\{a, b\}`: unordered.
    Set(Vec<Expr>),
    /// `a, b` or `a and b` with no brackets: several answers, in any order.
    List(Vec<Expr>),
    /// An interval `(lo, hi)` with whether each end is closed.
    Interval(Box<Expr>, Box<Expr>, bool, bool),
    /// A union of intervals or sets.
    Union(Vec<Expr>),
    /// All real numbers.
    Reals,
    /// A set without another (`\\mathbb{R} \\setminus \\{1\\}`).
    Without(Box<Expr>, Box<Expr>),
    /// A matrix, row by row.
    Matrix(Vec<Vec<Expr>>),
    /// `a : b`.
    Ratio(Vec<Expr>),
    /// A numeral in another base: digits and base (`1011_2`).
    Based(String, u32),
    /// Words (a name, a day): compared case-insensitively.
    Text(String),
}

/// Work left for parsing, evaluating and comparing one pair of answers: a count of steps and
/// a wall-clock deadline, whichever runs out first.
#[derive(Debug)]
pub struct Budget {
    steps: u64,
    deadline: Option<std::time::Instant>,
}

impl Budget {
    /// A budget of `steps` units of work.
    pub fn new(steps: u64) -> Self {
        Self {
            steps,
            deadline: None,
        }
    }

    /// A budget of `steps` units and at most `time`.
    pub fn with_deadline(steps: u64, time: std::time::Duration) -> Self {
        Self {
            steps,
            deadline: Some(std::time::Instant::now() + time),
        }
    }

    /// Spends one unit; false when none is left.
    pub fn spend(&mut self) -> bool {
        if self.steps == 0 {
            return false;
        }
        self.steps -= 1;
        if self.steps.is_multiple_of(512)
            && let Some(d) = self.deadline
            && std::time::Instant::now() >= d
        {
            self.steps = 0;
            return false;
        }
        true
    }

    /// Whether the budget is spent.
    pub fn exhausted(&self) -> bool {
        self.steps == 0
    }
}

/// Values of the free symbols at one evaluation point.
pub type Env<'a> = &'a [(String, Value)];

impl Expr {
    /// An integer literal.
    pub fn int(n: i128) -> Self {
        Expr::Num(Num {
            value: Rational::int(n),
            decimals: None,
            significant: digits(n),
        })
    }

    /// Whether this is a scalar (something [`Expr::eval`] can evaluate).
    pub fn is_scalar(&self) -> bool {
        matches!(
            self,
            Expr::Num(_)
                | Expr::Float(_)
                | Expr::Sym(_)
                | Expr::Pi
                | Expr::E
                | Expr::I
                | Expr::Inf
                | Expr::Add(_)
                | Expr::Mul(_)
                | Expr::Neg(_)
                | Expr::Div(..)
                | Expr::Pow(..)
                | Expr::Func(..)
                | Expr::Percent(_)
        )
    }

    /// Evaluates a scalar; symbols take their values from `env` (a missing one gives `None`).
    pub fn eval(&self, env: Env<'_>, budget: &mut Budget) -> Option<Value> {
        if !budget.spend() {
            return None;
        }
        Some(match self {
            Expr::Num(n) => Value::Exact(n.value),
            Expr::Float(x) => Value::Approx(Complex::real(*x)),
            Expr::Sym(s) => env.iter().find(|(k, _)| k == s).map(|(_, v)| *v)?,
            Expr::Pi => Value::Approx(Complex::real(std::f64::consts::PI)),
            Expr::E => Value::Approx(Complex::real(std::f64::consts::E)),
            Expr::I => Value::Approx(Complex::new(0.0, 1.0)),
            Expr::Inf => Value::Approx(Complex::real(f64::INFINITY)),
            Expr::Add(items) => {
                let mut acc = Value::int(0);
                for e in items {
                    acc = acc.add(e.eval(env, budget)?);
                }
                acc
            }
            Expr::Mul(items) => {
                let mut acc = Value::int(1);
                for e in items {
                    acc = acc.mul(e.eval(env, budget)?);
                }
                acc
            }
            Expr::Neg(e) => e.eval(env, budget)?.neg(),
            Expr::Div(a, b) => {
                let d = b.eval(env, budget)?;
                a.eval(env, budget)?.div(d)?
            }
            Expr::Pow(a, b) => {
                // e^x is exp(x), exactly 1 at 0.
                if **a == Expr::E {
                    return Value::apply(Func::Exp, &[b.eval(env, budget)?]);
                }
                let (x, e) = (a.eval(env, budget)?, b.eval(env, budget)?);
                x.pow(e)?
            }
            Expr::Func(f, args) => {
                let mut v = Vec::with_capacity(args.len());
                for a in args {
                    v.push(a.eval(env, budget)?);
                }
                Value::apply(*f, &v)?
            }
            Expr::Percent(e) => e.eval(env, budget)?.div(Value::int(100))?,
            _ => return None,
        })
    }

    /// Free symbols, sorted and deduplicated.
    pub fn symbols(&self) -> Vec<String> {
        let mut out = Vec::new();
        self.walk(&mut |e| {
            if let Expr::Sym(s) = e {
                out.push(s.clone());
            }
        });
        out.sort();
        out.dedup();
        out
    }

    /// Calls `f` on this node and every node below it.
    pub fn walk(&self, f: &mut dyn FnMut(&Expr)) {
        f(self);
        match self {
            Expr::Add(v)
            | Expr::Mul(v)
            | Expr::Tuple(v)
            | Expr::Set(v)
            | Expr::List(v)
            | Expr::Union(v)
            | Expr::Ratio(v)
            | Expr::Func(_, v)
            | Expr::Rel(v, _) => v.iter().for_each(|e| e.walk(f)),
            Expr::Neg(e) | Expr::Percent(e) => e.walk(f),
            Expr::Div(a, b)
            | Expr::Pow(a, b)
            | Expr::PlusMinus(a, b)
            | Expr::Without(a, b)
            | Expr::Interval(a, b, ..) => {
                a.walk(f);
                b.walk(f);
            }
            Expr::Matrix(rows) => rows.iter().flatten().for_each(|e| e.walk(f)),
            _ => {}
        }
    }

    /// Whether this names something rather than computes it: a variable, a product of
    /// variables (`PQ`, `xy`), a variable applied to variables (`f(x)`), or a tuple or ratio of
    /// such (`(a, b)`, `A:B`). Such a left-hand side makes `lhs = value` a labelled answer.
    pub fn is_label(&self) -> bool {
        match self {
            Expr::Sym(_) => true,
            Expr::Mul(v) => v.iter().all(|e| matches!(e, Expr::Sym(_)) || e.is_label()),
            Expr::Tuple(v) | Expr::Ratio(v) | Expr::List(v) => {
                !v.is_empty() && v.iter().all(Expr::is_label)
            }
            // NO/BO, |AB|
            Expr::Div(a, b) => a.is_label() && b.is_label(),
            Expr::Func(Func::Abs, v) => v.len() == 1 && v[0].is_label(),
            _ => false,
        }
    }

    /// Matrix arithmetic written out: sums, products, scalar multiples and quotients of
    /// matrices as one matrix of entries (`3 \begin{pmatrix}..\end{pmatrix}`, `\frac{1}{5} M`,
    /// `A + B`, `A B`); `None` for anything that is not such an expression.
    pub fn fold_matrix(&self) -> Option<Expr> {
        if !matches!(
            self,
            Expr::Mul(_) | Expr::Div(..) | Expr::Add(_) | Expr::Neg(_)
        ) {
            return None;
        }
        let mut has = false;
        self.walk(&mut |e| has |= matches!(e, Expr::Matrix(_)));
        if !has {
            return None;
        }
        matrix_of(self).map(Expr::Matrix)
    }

    /// Whether the expression holds `\pm`.
    pub fn has_plus_minus(&self) -> bool {
        let mut found = false;
        self.walk(&mut |e| found |= matches!(e, Expr::PlusMinus(..)));
        found
    }

    /// The values of an expression with `\pm`: `a \pm b` gives `a + b` and `a - b` (each `\pm`
    /// doubles the count; at most 8).
    pub fn expand_plus_minus(&self) -> Vec<Expr> {
        fn go(e: &Expr, depth: usize) -> Vec<Expr> {
            if depth > 3 || !e.has_plus_minus() {
                return vec![e.clone()];
            }
            let map = |v: &[Expr], k: fn(Vec<Expr>) -> Expr| -> Vec<Expr> {
                let mut acc: Vec<Vec<Expr>> = vec![Vec::new()];
                for item in v {
                    let opts = go(item, depth + 1);
                    acc = acc
                        .into_iter()
                        .flat_map(|prefix| {
                            opts.iter().map(move |o| {
                                let mut p = prefix.clone();
                                p.push(o.clone());
                                p
                            })
                        })
                        .take(8)
                        .collect();
                }
                acc.into_iter().map(k).collect()
            };
            match e {
                Expr::PlusMinus(a, b) => {
                    let mut out = Vec::new();
                    for a in go(a, depth + 1) {
                        for b in go(b, depth + 1) {
                            out.push(Expr::Add(vec![a.clone(), b.clone()]));
                            out.push(Expr::Add(vec![a.clone(), Expr::Neg(Box::new(b))]));
                        }
                    }
                    out.truncate(8);
                    out
                }
                Expr::Add(v) => map(v, Expr::Add),
                Expr::Mul(v) => map(v, Expr::Mul),
                Expr::Neg(x) => go(x, depth + 1)
                    .into_iter()
                    .map(|x| Expr::Neg(Box::new(x)))
                    .collect(),
                Expr::Div(a, b) => {
                    let mut out = Vec::new();
                    for a in go(a, depth + 1) {
                        for b in go(b, depth + 1) {
                            out.push(Expr::Div(Box::new(a.clone()), Box::new(b)));
                        }
                    }
                    out.truncate(8);
                    out
                }
                Expr::Pow(a, b) => go(a, depth + 1)
                    .into_iter()
                    .map(|a| Expr::Pow(Box::new(a), b.clone()))
                    .collect(),
                // x = \pm 2: the equation for each value
                Expr::Rel(sides, ops) => match sides.split_last() {
                    Some((last, init)) => go(last, depth + 1)
                        .into_iter()
                        .map(|v| {
                            let mut s = init.to_vec();
                            s.push(v);
                            Expr::Rel(s, ops.clone())
                        })
                        .collect(),
                    None => vec![e.clone()],
                },
                other => vec![other.clone()],
            }
        }
        go(self, 0)
    }
}

/// Significant digits of an integer.
pub fn digits(n: i128) -> u32 {
    let s = n.unsigned_abs().to_string();
    let trimmed = s.trim_end_matches('0');
    trimmed.len().max(1) as u32
}

type Rows = Vec<Vec<Expr>>;

fn matrix_of(e: &Expr) -> Option<Rows> {
    match e {
        Expr::Matrix(m) => Some(m.clone()),
        Expr::Neg(x) => Some(map_entries(&matrix_of(x)?, |v| Expr::Neg(Box::new(v)))),
        Expr::Add(items) => {
            let mut acc: Option<Rows> = None;
            for it in items {
                let m = matrix_of(it)?;
                acc = Some(match acc {
                    None => m,
                    Some(a) => {
                        if a.len() != m.len() || a.iter().zip(&m).any(|(r, s)| r.len() != s.len()) {
                            return None;
                        }
                        a.into_iter()
                            .zip(m)
                            .map(|(r, s)| {
                                r.into_iter()
                                    .zip(s)
                                    .map(|(x, y)| Expr::Add(vec![x, y]))
                                    .collect()
                            })
                            .collect()
                    }
                });
            }
            acc
        }
        Expr::Mul(items) => {
            let mut scalars = Vec::new();
            let mut acc: Option<Rows> = None;
            for it in items {
                if !contains_matrix(it) {
                    if !it.is_scalar() {
                        return None;
                    }
                    scalars.push(it.clone());
                    continue;
                }
                let m = matrix_of(it)?;
                acc = Some(match acc {
                    None => m,
                    Some(a) => mat_mul(&a, &m)?,
                });
            }
            let m = acc?;
            if scalars.is_empty() {
                return Some(m);
            }
            Some(map_entries(&m, |v| {
                let mut f = scalars.clone();
                f.push(v);
                Expr::Mul(f)
            }))
        }
        Expr::Div(a, d) if d.is_scalar() && !contains_matrix(d) => {
            let m = matrix_of(a)?;
            Some(map_entries(&m, |v| Expr::Div(Box::new(v), d.clone())))
        }
        _ => None,
    }
}

fn contains_matrix(e: &Expr) -> bool {
    let mut has = false;
    e.walk(&mut |x| has |= matches!(x, Expr::Matrix(_)));
    has
}

fn map_entries(m: &Rows, f: impl Fn(Expr) -> Expr) -> Rows {
    m.iter()
        .map(|r| r.iter().map(|x| f(x.clone())).collect())
        .collect()
}

fn mat_mul(a: &Rows, b: &Rows) -> Option<Rows> {
    let (n, k) = (a.len(), a.first()?.len());
    if b.len() != k || a.iter().any(|r| r.len() != k) {
        return None;
    }
    let m = b.first()?.len();
    if b.iter().any(|r| r.len() != m) || n * m * k > 4096 {
        return None;
    }
    Some(
        (0..n)
            .map(|i| {
                (0..m)
                    .map(|j| {
                        Expr::Add(
                            (0..k)
                                .map(|t| Expr::Mul(vec![a[i][t].clone(), b[t][j].clone()]))
                                .collect(),
                        )
                    })
                    .collect()
            })
            .collect(),
    )
}
