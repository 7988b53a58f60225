//! Numbers the grader computes with: exact rationals while they stay small, complex floats
//! otherwise (so that `e^{i\pi}`, `\frac{1}{i}` and identities checked at random points work).

/// An exact rational `n / d` with `d > 0`, reduced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rational {
    /// Numerator.
    pub n: i128,
    /// Denominator, positive.
    pub d: i128,
}

fn gcd(mut a: i128, mut b: i128) -> i128 {
    a = a.abs();
    b = b.abs();
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

impl Rational {
    /// `n / d` reduced; `None` on a zero denominator or overflow.
    pub fn new(n: i128, d: i128) -> Option<Self> {
        if d == 0 {
            return None;
        }
        let g = gcd(n, d).max(1);
        let (mut n, mut d) = (n / g, d / g);
        if d < 0 {
            n = n.checked_neg()?;
            d = d.checked_neg()?;
        }
        Some(Self { n, d })
    }

    /// The integer `n`.
    pub fn int(n: i128) -> Self {
        Self { n, d: 1 }
    }

    /// As a float.
    pub fn to_f64(self) -> f64 {
        self.n as f64 / self.d as f64
    }

    /// Whether this is an integer.
    pub fn is_int(self) -> bool {
        self.d == 1
    }

    fn add(self, o: Self) -> Option<Self> {
        Self::new(
            self.n
                .checked_mul(o.d)?
                .checked_add(o.n.checked_mul(self.d)?)?,
            self.d.checked_mul(o.d)?,
        )
    }

    fn mul(self, o: Self) -> Option<Self> {
        // Cross-reduce first so that products stay small.
        let g1 = gcd(self.n, o.d).max(1);
        let g2 = gcd(o.n, self.d).max(1);
        Self::new(
            (self.n / g1).checked_mul(o.n / g2)?,
            (self.d / g2).checked_mul(o.d / g1)?,
        )
    }

    fn div(self, o: Self) -> Option<Self> {
        if o.n == 0 {
            return None;
        }
        self.mul(Self::new(o.d, o.n)?)
    }

    fn powi(self, e: i64) -> Option<Self> {
        if e.unsigned_abs() > 512 {
            return None;
        }
        let (mut n, mut d) = (1i128, 1i128);
        for _ in 0..e.unsigned_abs() {
            n = n.checked_mul(self.n)?;
            d = d.checked_mul(self.d)?;
        }
        if e >= 0 {
            Self::new(n, d)
        } else {
            Self::new(d, n)
        }
    }

    /// The exact `k`-th root when it is rational (`(4/9)^(1/2) = 2/3`, `(-8)^(1/3) = -2`).
    fn root(self, k: i128) -> Option<Self> {
        if !(2..=64).contains(&k) {
            return None;
        }
        let neg = self.n < 0;
        if neg && k % 2 == 0 {
            return None;
        }
        let rn = int_root(self.n.unsigned_abs(), k as u32)?;
        let rd = int_root(self.d.unsigned_abs(), k as u32)?;
        let rn = i128::try_from(rn).ok()?;
        Self::new(if neg { -rn } else { rn }, i128::try_from(rd).ok()?)
    }
}

fn int_root(x: u128, k: u32) -> Option<u128> {
    let guess = (x as f64).powf(1.0 / k as f64).round() as u128;
    (guess.saturating_sub(1)..=guess + 1).find(|&c| c.checked_pow(k) == Some(x))
}

/// A complex float.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Complex {
    /// Real part.
    pub re: f64,
    /// Imaginary part.
    pub im: f64,
}

const I: Complex = Complex { re: 0.0, im: 1.0 };

impl Complex {
    /// `re + i im`.
    pub const fn new(re: f64, im: f64) -> Self {
        Self { re, im }
    }

    /// A real number.
    pub const fn real(re: f64) -> Self {
        Self { re, im: 0.0 }
    }

    fn add(self, o: Self) -> Self {
        Self::new(self.re + o.re, self.im + o.im)
    }

    fn sub(self, o: Self) -> Self {
        Self::new(self.re - o.re, self.im - o.im)
    }

    fn mul(self, o: Self) -> Self {
        Self::new(
            self.re * o.re - self.im * o.im,
            self.re * o.im + self.im * o.re,
        )
    }

    fn div(self, o: Self) -> Self {
        let den = o.re * o.re + o.im * o.im;
        Self::new(
            (self.re * o.re + self.im * o.im) / den,
            (self.im * o.re - self.re * o.im) / den,
        )
    }

    /// Modulus.
    pub fn abs(self) -> f64 {
        self.re.hypot(self.im)
    }

    fn exp(self) -> Self {
        let m = self.re.exp();
        Self::new(m * self.im.cos(), m * self.im.sin())
    }

    fn ln(self) -> Self {
        Self::new(self.abs().ln(), self.im.atan2(self.re))
    }

    fn sqrt(self) -> Self {
        if self.im == 0.0 {
            return if self.re >= 0.0 {
                Self::real(self.re.sqrt())
            } else {
                Self::new(0.0, (-self.re).sqrt())
            };
        }
        let m = self.abs();
        let re = ((m + self.re) / 2.0).sqrt();
        let im = ((m - self.re) / 2.0).sqrt().copysign(self.im);
        Self::new(re, im)
    }

    fn powc(self, e: Self) -> Self {
        if self.re == 0.0 && self.im == 0.0 {
            return if e.re > 0.0 {
                Self::real(0.0)
            } else {
                Self::real(f64::NAN)
            };
        }
        if self.im == 0.0 && e.im == 0.0 && self.re > 0.0 {
            return Self::real(self.re.powf(e.re));
        }
        if self.im == 0.0 && e.im == 0.0 && e.re.fract() == 0.0 && e.re.abs() < 1e6 {
            return Self::real(self.re.powi(e.re as i32));
        }
        e.mul(self.ln()).exp()
    }

    fn sin(self) -> Self {
        Self::new(
            self.re.sin() * self.im.cosh(),
            self.re.cos() * self.im.sinh(),
        )
    }

    fn cos(self) -> Self {
        Self::new(
            self.re.cos() * self.im.cosh(),
            -self.re.sin() * self.im.sinh(),
        )
    }

    fn asin(self) -> Self {
        if self.im == 0.0 && self.re.abs() <= 1.0 {
            return Self::real(self.re.asin());
        }
        // -i ln(iz + sqrt(1 - z^2))
        let root = Self::real(1.0).sub(self.mul(self)).sqrt();
        Self::new(0.0, -1.0).mul(I.mul(self).add(root).ln())
    }

    fn acos(self) -> Self {
        if self.im == 0.0 && self.re.abs() <= 1.0 {
            return Self::real(self.re.acos());
        }
        Self::real(std::f64::consts::FRAC_PI_2).sub(self.asin())
    }

    fn atan(self) -> Self {
        if self.im == 0.0 {
            return Self::real(self.re.atan());
        }
        // (i/2) (ln(1 - iz) - ln(1 + iz))
        let iz = I.mul(self);
        let a = Self::real(1.0).sub(iz).ln();
        let b = Self::real(1.0).add(iz).ln();
        Self::new(0.0, 0.5).mul(a.sub(b))
    }

    /// Whether both parts are finite.
    pub fn is_finite(self) -> bool {
        self.re.is_finite() && self.im.is_finite()
    }
}

/// A computed value: exact while possible.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value {
    /// An exact rational.
    Exact(Rational),
    /// A complex float.
    Approx(Complex),
}

/// The functions the evaluator knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Func {
    /// Square root.
    Sqrt,
    /// `root(k, x)`: the real `k`-th root for odd `k` of a negative `x`.
    Root,
    /// Sine.
    Sin,
    /// Cosine.
    Cos,
    /// Tangent.
    Tan,
    /// Cotangent.
    Cot,
    /// Secant.
    Sec,
    /// Cosecant.
    Csc,
    /// Inverse sine.
    Asin,
    /// Inverse cosine.
    Acos,
    /// Inverse tangent.
    Atan,
    /// Hyperbolic sine.
    Sinh,
    /// Hyperbolic cosine.
    Cosh,
    /// Hyperbolic tangent.
    Tanh,
    /// Natural logarithm.
    Ln,
    /// `log(b, x)`: logarithm to base `b`.
    Log,
    /// Exponential.
    Exp,
    /// Absolute value (modulus).
    Abs,
    /// Floor.
    Floor,
    /// Ceiling.
    Ceil,
    /// Factorial.
    Fact,
    /// Binomial coefficient.
    Binom,
    /// Greatest common divisor.
    Gcd,
    /// Least common multiple.
    Lcm,
    /// Largest argument.
    Max,
    /// Smallest argument.
    Min,
}

// `add`/`mul`/`neg` sit beside the fallible `div` (and `Rational`'s checked ops) as one
// family of methods; operator traits would hide that `div` can fail.
#[allow(clippy::should_implement_trait)]
impl Value {
    /// An integer.
    pub fn int(n: i128) -> Self {
        Value::Exact(Rational::int(n))
    }

    /// As a complex float.
    pub fn c(self) -> Complex {
        match self {
            Value::Exact(r) => Complex::real(r.to_f64()),
            Value::Approx(c) => c,
        }
    }

    /// The real part when the value is real (imaginary part negligible).
    pub fn real(self) -> Option<f64> {
        let c = self.c();
        (c.im.abs() <= 1e-12 * c.re.abs().max(1.0)).then_some(c.re)
    }

    fn exact(self) -> Option<Rational> {
        match self {
            Value::Exact(r) => Some(r),
            Value::Approx(_) => None,
        }
    }

    /// Sum.
    pub fn add(self, o: Self) -> Self {
        if let (Some(a), Some(b)) = (self.exact(), o.exact())
            && let Some(r) = a.add(b)
        {
            return Value::Exact(r);
        }
        Value::Approx(self.c().add(o.c()))
    }

    /// Product.
    pub fn mul(self, o: Self) -> Self {
        if let (Some(a), Some(b)) = (self.exact(), o.exact())
            && let Some(r) = a.mul(b)
        {
            return Value::Exact(r);
        }
        Value::Approx(self.c().mul(o.c()))
    }

    /// Negation.
    pub fn neg(self) -> Self {
        match self {
            Value::Exact(r) => match r.n.checked_neg() {
                Some(n) => Value::Exact(Rational { n, d: r.d }),
                None => Value::Approx(Complex::real(-r.to_f64())),
            },
            Value::Approx(c) => Value::Approx(Complex::new(-c.re, -c.im)),
        }
    }

    /// Quotient; `None` when dividing by zero.
    pub fn div(self, o: Self) -> Option<Self> {
        if let (Some(a), Some(b)) = (self.exact(), o.exact()) {
            if b.n == 0 {
                return None;
            }
            if let Some(r) = a.div(b) {
                return Some(Value::Exact(r));
            }
        }
        let d = o.c();
        if d.re == 0.0 && d.im == 0.0 {
            return None;
        }
        Some(Value::Approx(self.c().div(d)))
    }

    /// Power; exact for integer exponents and perfect roots.
    pub fn pow(self, e: Self) -> Option<Self> {
        if let (Some(b), Some(x)) = (self.exact(), e.exact()) {
            if x.is_int() {
                if b.n == 0 && x.n < 0 {
                    return None;
                }
                if let Some(r) = i64::try_from(x.n).ok().and_then(|k| b.powi(k)) {
                    return Some(Value::Exact(r));
                }
            } else if let Some(root) = b.root(x.d)
                && let Some(r) = i64::try_from(x.n).ok().and_then(|k| root.powi(k))
            {
                return Some(Value::Exact(r));
            } else if b.n < 0 && x.d % 2 == 1 {
                // An odd root of a negative number is taken as the real one, as writers mean.
                let m = (-b.to_f64()).powf(x.to_f64());
                let sign = if x.n % 2 == 0 { 1.0 } else { -1.0 };
                return Some(Value::Approx(Complex::real(sign * m)));
            }
        }
        let (b, x) = (self.c(), e.c());
        if x.abs() > 1e4 {
            return None;
        }
        Some(Value::Approx(b.powc(x)))
    }

    /// Applies `f` to `args`.
    pub fn apply(f: Func, args: &[Value]) -> Option<Self> {
        use Func::*;
        let one = |g: fn(Complex) -> Complex| -> Option<Value> {
            match args {
                [x] => Some(Value::Approx(g(x.c()))),
                _ => None,
            }
        };
        match f {
            Sqrt => match args {
                [x] => x.pow(Value::Exact(Rational { n: 1, d: 2 })),
                _ => None,
            },
            Root => match args {
                [k, x] => {
                    let k = k.exact().filter(|k| k.is_int() && k.n > 0)?;
                    x.pow(Value::Exact(Rational { n: 1, d: k.n }))
                }
                _ => None,
            },
            Sin => zero_at_zero(args).or_else(|| one(Complex::sin)),
            Cos => one(Complex::cos),
            Tan => zero_at_zero(args).or_else(|| one(|z| z.sin().div(z.cos()))),
            Cot => one(|z| z.cos().div(z.sin())),
            Sec => one(|z| Complex::real(1.0).div(z.cos())),
            Csc => one(|z| Complex::real(1.0).div(z.sin())),
            Asin => zero_at_zero(args).or_else(|| one(Complex::asin)),
            Acos => one(Complex::acos),
            Atan => zero_at_zero(args).or_else(|| one(Complex::atan)),
            Sinh => one(|z| {
                z.exp()
                    .sub(Complex::new(-z.re, -z.im).exp())
                    .mul(Complex::real(0.5))
            }),
            Cosh => one(|z| {
                z.exp()
                    .add(Complex::new(-z.re, -z.im).exp())
                    .mul(Complex::real(0.5))
            }),
            Tanh => one(|z| {
                let (a, b) = (z.exp(), Complex::new(-z.re, -z.im).exp());
                a.sub(b).div(a.add(b))
            }),
            Ln => match args {
                [Value::Exact(r)] if *r == Rational::int(1) => Some(Value::int(0)),
                [x] => Some(Value::Approx(x.c().ln())),
                _ => None,
            },
            Log => match args {
                [b, x] => {
                    log_exact(*b, *x).or_else(|| Some(Value::Approx(x.c().ln().div(b.c().ln()))))
                }
                _ => None,
            },
            Exp => match args {
                [Value::Exact(r)] if r.n == 0 => Some(Value::int(1)),
                [x] => Some(Value::Approx(x.c().exp())),
                _ => None,
            },
            Abs => match args {
                [Value::Exact(r)] => Some(Value::Exact(Rational {
                    n: r.n.checked_abs()?,
                    d: r.d,
                })),
                [x] => Some(Value::Approx(Complex::real(x.c().abs()))),
                _ => None,
            },
            Floor | Ceil => match args {
                [Value::Exact(r)] => {
                    let q = r.n.div_euclid(r.d);
                    let up = f == Ceil && r.n.rem_euclid(r.d) != 0;
                    Some(Value::int(q + i128::from(up)))
                }
                [x] => {
                    let re = x.real()?;
                    let v = if f == Floor { re.floor() } else { re.ceil() };
                    Some(Value::Approx(Complex::real(v)))
                }
                _ => None,
            },
            Fact => match args {
                [Value::Exact(r)] if r.is_int() && (0..=33).contains(&r.n) => {
                    Some(Value::int((1..=r.n).product::<i128>().max(1)))
                }
                _ => None,
            },
            Binom => match args {
                [Value::Exact(n), Value::Exact(k)] if n.is_int() && k.is_int() => {
                    let (n, k) = (n.n, k.n);
                    if !(0..=120).contains(&n) || k < 0 || k > n {
                        return Some(Value::int(0)).filter(|_| (0..=120).contains(&n));
                    }
                    let k = k.min(n - k);
                    let mut c: i128 = 1;
                    for i in 0..k {
                        c = c.checked_mul(n - i)? / (i + 1);
                    }
                    Some(Value::int(c))
                }
                _ => None,
            },
            Gcd | Lcm => {
                let ints: Option<Vec<i128>> = args
                    .iter()
                    .map(|a| a.exact().filter(|r| r.is_int()).map(|r| r.n))
                    .collect();
                let ints = ints?;
                let mut acc = *ints.first()?;
                for &x in &ints[1..] {
                    acc = if f == Gcd {
                        gcd(acc, x)
                    } else {
                        let g = gcd(acc, x).max(1);
                        (acc / g).checked_mul(x)?.abs()
                    };
                }
                Some(Value::int(acc.abs()))
            }
            Max | Min => {
                let mut best: Option<Value> = None;
                for a in args {
                    let x = a.real()?;
                    let better = match best {
                        None => true,
                        Some(b) => {
                            let y = b.real()?;
                            if f == Max { x > y } else { x < y }
                        }
                    };
                    if better {
                        best = Some(*a);
                    }
                }
                best
            }
        }
    }
}

/// `f(0) = 0` exactly for odd functions, so that `\sin 0` stays exact.
fn zero_at_zero(args: &[Value]) -> Option<Value> {
    match args {
        [Value::Exact(r)] if r.n == 0 => Some(Value::int(0)),
        _ => None,
    }
}

/// `log_b x` exactly when `x` is an integer power of `b` (`\log_2 8 = 3`, `\log 100 = 2`).
fn log_exact(b: Value, x: Value) -> Option<Value> {
    let (b, x) = (b.exact()?, x.exact()?);
    if b.n <= 0 || x.n <= 0 || b == Rational::int(1) {
        return None;
    }
    let guess = (x.to_f64().ln() / b.to_f64().ln()).round();
    if guess.abs() > 256.0 {
        return None;
    }
    let k = guess as i64;
    (b.powi(k)? == x).then(|| Value::int(i128::from(k)))
}
