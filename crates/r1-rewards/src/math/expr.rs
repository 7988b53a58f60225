//! Answer expressions and their evaluation: exact rationals where possible, floats otherwise.

/// A parsed answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// An exact rational `num / den` (den > 0, reduced).
    Rat(i128, i128),
    /// A number that is not exactly representable as a small rational.
    Float(f64),
    /// A variable.
    Sym(String),
    /// π.
    Pi,
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
    /// A function of arguments: `sqrt`, `root` (index, radicand), `sin`, `cos`, `tan`, `ln`,
    /// `log`, `exp`, `abs`, `fact`.
    Func(String, Vec<Expr>),
    /// `x%`.
    Percent(Box<Expr>),
    /// `(a, b, ...)`: ordered.
    Tuple(Vec<Expr>),
    /// `\{a, b\}`: unordered.
    Set(Vec<Expr>),
    /// `a, b` with no brackets: several answers, in any order.
    List(Vec<Expr>),
    /// An interval with its closedness.
    Interval(bool, Box<Expr>, Box<Expr>, bool),
    /// A union of intervals or sets.
    Union(Vec<Expr>),
    /// A relation `lhs op rhs`, op one of `=`, `<`, `<=`, `>`, `>=`, `!=`, `in`.
    Rel(String, Box<Expr>, Box<Expr>),
    /// A matrix, row by row.
    Matrix(Vec<Vec<Expr>>),
    /// Free text (names, words).
    Text(String),
}

/// An evaluated scalar.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Val {
    /// Exact rational.
    Rat(i128, i128),
    /// Floating point.
    F(f64),
}

fn gcd(mut a: i128, mut b: i128) -> i128 {
    a = a.abs();
    b = b.abs();
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// A reduced rational, or `None` on a zero denominator or overflow.
pub fn rat(num: i128, den: i128) -> Option<Val> {
    if den == 0 {
        return None;
    }
    let g = gcd(num, den).max(1);
    let (mut n, mut d) = (num / g, den / g);
    if d < 0 {
        n = n.checked_neg()?;
        d = d.checked_neg()?;
    }
    Some(Val::Rat(n, d))
}

impl Val {
    /// As a float.
    pub fn f(self) -> f64 {
        match self {
            Val::Rat(n, d) => n as f64 / d as f64,
            Val::F(x) => x,
        }
    }

    fn add(self, o: Val) -> Val {
        if let (Val::Rat(a, b), Val::Rat(c, d)) = (self, o)
            && let Some(v) = (|| {
                rat(
                    a.checked_mul(d)?.checked_add(c.checked_mul(b)?)?,
                    b.checked_mul(d)?,
                )
            })()
        {
            return v;
        }
        Val::F(self.f() + o.f())
    }

    fn mul(self, o: Val) -> Val {
        if let (Val::Rat(a, b), Val::Rat(c, d)) = (self, o)
            && let Some(v) = (|| rat(a.checked_mul(c)?, b.checked_mul(d)?))()
        {
            return v;
        }
        Val::F(self.f() * o.f())
    }

    fn neg(self) -> Val {
        match self {
            Val::Rat(n, d) => n
                .checked_neg()
                .map_or(Val::F(-(n as f64) / d as f64), |n| Val::Rat(n, d)),
            Val::F(x) => Val::F(-x),
        }
    }

    fn div(self, o: Val) -> Val {
        if let (Val::Rat(a, b), Val::Rat(c, d)) = (self, o)
            && c != 0
            && let Some(v) = (|| rat(a.checked_mul(d)?, b.checked_mul(c)?))()
        {
            return v;
        }
        Val::F(self.f() / o.f())
    }

    fn pow(self, o: Val) -> Val {
        if let (Val::Rat(a, b), Val::Rat(e, 1)) = (self, o)
            && e.abs() <= 128
        {
            let mut num: Option<i128> = Some(1);
            let mut den: Option<i128> = Some(1);
            for _ in 0..e.abs() {
                num = num.and_then(|n| n.checked_mul(a));
                den = den.and_then(|d| d.checked_mul(b));
            }
            if let (Some(n), Some(d)) = (num, den) {
                let v = if e >= 0 { rat(n, d) } else { rat(d, n) };
                if let Some(v) = v {
                    return v;
                }
            }
        }
        // Perfect roots of rationals stay exact: (4/9)^(1/2) = 2/3.
        if let (Val::Rat(a, b), Val::Rat(1, k)) = (self, o)
            && (2..=6).contains(&k)
            && a >= 0
            && let (Some(ra), Some(rb)) = (int_root(a, k as u32), int_root(b, k as u32))
            && let Some(v) = rat(ra, rb)
        {
            return v;
        }
        let (base, exp) = (self.f(), o.f());
        // Odd roots of negative numbers are real.
        if base < 0.0
            && let Val::Rat(1, k) = o
            && k % 2 == 1
        {
            return Val::F(-(-base).powf(exp));
        }
        Val::F(base.powf(exp))
    }
}

fn int_root(x: i128, k: u32) -> Option<i128> {
    if x < 0 {
        return None;
    }
    let r = (x as f64).powf(1.0 / k as f64).round() as i128;
    [r - 1, r, r + 1]
        .into_iter()
        .find(|&c| c >= 0 && c.checked_pow(k) == Some(x))
}

/// Work budget for one evaluation: nested powers and factorials cannot run away.
pub struct Budget(pub usize);

impl Expr {
    /// Evaluates a scalar expression; symbols take their value from `env`, and a missing
    /// symbol makes the result `None`.
    pub fn eval(&self, env: &dyn Fn(&str) -> Option<f64>, budget: &mut Budget) -> Option<Val> {
        if budget.0 == 0 {
            return None;
        }
        budget.0 -= 1;
        Some(match self {
            Expr::Rat(n, d) => Val::Rat(*n, *d),
            Expr::Float(x) => Val::F(*x),
            Expr::Sym(s) => Val::F(env(s)?),
            Expr::Pi => Val::F(std::f64::consts::PI),
            Expr::Inf => Val::F(f64::INFINITY),
            Expr::Add(items) => {
                let mut acc = Val::Rat(0, 1);
                for e in items {
                    acc = acc.add(e.eval(env, budget)?);
                }
                acc
            }
            Expr::Mul(items) => {
                let mut acc = Val::Rat(1, 1);
                for e in items {
                    acc = acc.mul(e.eval(env, budget)?);
                }
                acc
            }
            Expr::Neg(e) => e.eval(env, budget)?.neg(),
            Expr::Div(a, b) => {
                let d = b.eval(env, budget)?;
                if d.f() == 0.0 {
                    return None;
                }
                a.eval(env, budget)?.div(d)
            }
            Expr::Pow(a, b) => {
                let (x, e) = (a.eval(env, budget)?, b.eval(env, budget)?);
                if e.f().abs() > 1e4 {
                    return None;
                }
                x.pow(e)
            }
            Expr::Percent(e) => e.eval(env, budget)?.div(Val::Rat(100, 1)),
            Expr::Func(name, args) => {
                let v: Vec<Val> = args
                    .iter()
                    .map(|a| a.eval(env, budget))
                    .collect::<Option<_>>()?;
                match (name.as_str(), v.as_slice()) {
                    ("sqrt", [x]) => x.pow(Val::Rat(1, 2)),
                    ("root", [k, x]) => match k {
                        Val::Rat(k, 1) if *k > 0 => x.pow(Val::Rat(1, *k)),
                        _ => x.pow(Val::F(1.0 / k.f())),
                    },
                    ("abs", [x]) => match x {
                        Val::Rat(n, d) => Val::Rat(n.checked_abs()?, *d),
                        Val::F(f) => Val::F(f.abs()),
                    },
                    ("fact", [Val::Rat(n, 1)]) if (0..=30).contains(n) => {
                        Val::Rat((1..=*n).product::<i128>().max(1), 1)
                    }
                    ("binom", [Val::Rat(n, 1), Val::Rat(k, 1)])
                        if (0..=60).contains(n) && (0..=*n).contains(k) =>
                    {
                        let mut c: i128 = 1;
                        for i in 0..*k {
                            c = c * (n - i) / (i + 1);
                        }
                        Val::Rat(c, 1)
                    }
                    ("sin", [x]) => Val::F(x.f().sin()),
                    ("cos", [x]) => Val::F(x.f().cos()),
                    ("tan", [x]) => Val::F(x.f().tan()),
                    ("cot", [x]) => Val::F(1.0 / x.f().tan()),
                    ("sec", [x]) => Val::F(1.0 / x.f().cos()),
                    ("csc", [x]) => Val::F(1.0 / x.f().sin()),
                    ("arcsin", [x]) => Val::F(x.f().asin()),
                    ("arccos", [x]) => Val::F(x.f().acos()),
                    ("arctan", [x]) => Val::F(x.f().atan()),
                    ("ln", [x]) => Val::F(x.f().ln()),
                    ("log", [x]) => Val::F(x.f().log10()),
                    ("log", [b, x]) => Val::F(x.f().ln() / b.f().ln()),
                    ("exp", [x]) => Val::F(x.f().exp()),
                    _ => return None,
                }
            }
            _ => return None,
        })
    }

    /// Free symbols, sorted and deduplicated.
    pub fn symbols(&self) -> Vec<String> {
        let mut out = Vec::new();
        self.collect_symbols(&mut out);
        out.sort();
        out.dedup();
        out
    }

    fn collect_symbols(&self, out: &mut Vec<String>) {
        match self {
            Expr::Sym(s) => out.push(s.clone()),
            Expr::Add(v)
            | Expr::Mul(v)
            | Expr::Tuple(v)
            | Expr::Set(v)
            | Expr::List(v)
            | Expr::Union(v)
            | Expr::Func(_, v) => v.iter().for_each(|e| e.collect_symbols(out)),
            Expr::Neg(e) | Expr::Percent(e) => e.collect_symbols(out),
            Expr::Div(a, b) | Expr::Pow(a, b) | Expr::Rel(_, a, b) | Expr::Interval(_, a, b, _) => {
                a.collect_symbols(out);
                b.collect_symbols(out);
            }
            Expr::Matrix(rows) => rows.iter().flatten().for_each(|e| e.collect_symbols(out)),
            _ => {}
        }
    }

    /// Whether this is a scalar expression (something [`Expr::eval`] can evaluate).
    pub fn is_scalar(&self) -> bool {
        matches!(
            self,
            Expr::Rat(..)
                | Expr::Float(_)
                | Expr::Sym(_)
                | Expr::Pi
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
}
