//! Deciding whether a predicted answer is equivalent to the gold one.
//!
//! The comparison is not symmetric, as Math-Verify's is not: the gold answer's form decides
//! how a relation is read (`x = 3` against `3`).

use super::expr::{Budget, Expr, Num, RelOp};
use super::value::{Rational, Value};

/// Relative tolerance between values computed in floating point.
const REL_TOL: f64 = 1e-8;
/// Random points tried for expressions with variables.
const POINTS: usize = 7;

/// Whether `pred` is an equivalent answer to `gold`.
pub fn equal(gold: &Expr, pred: &Expr, budget: &mut Budget) -> bool {
    eq(gold, pred, budget, 0)
}

fn eq(g: &Expr, p: &Expr, b: &mut Budget, depth: usize) -> bool {
    if depth > 24 || !b.spend() {
        return false;
    }
    let d = depth + 1;
    use Expr::*;
    if let Some(m) = g.fold_matrix() {
        return eq(&m, p, b, d);
    }
    if let Some(m) = p.fold_matrix() {
        return eq(g, &m, b, d);
    }
    // `\pm` stands for both values.
    if g.has_plus_minus() || p.has_plus_minus() {
        let gs = as_items(g);
        let ps = as_items(p);
        if gs.len() > 1 || ps.len() > 1 {
            return collections_equal(&gs, &ps, false, b, d);
        }
    }
    match (g, p) {
        (Rel(gs, gops), Rel(ps, pops)) => relations_equal(gs, gops, ps, pops, b, d),
        (Rel(sides, ops), other) => {
            if is_assignment(sides, ops)
                && let Some(v) = value_of(sides, ops)
            {
                return eq(v, other, b, d);
            }
            if let (Some(x), Some(y)) = (real_set(g, b), real_set(other, b)) {
                return real_sets_equal(&x, &y, b, d);
            }
            false
        }
        (other, Rel(sides, ops)) => {
            if ops
                .iter()
                .all(|o| matches!(o, RelOp::Eq | RelOp::Approx | RelOp::In))
                && let Some(v) = value_of(sides, ops)
                && eq(other, v, b, d)
            {
                return true;
            }
            if let (Some(x), Some(y)) = (real_set(other, b), real_set(p, b)) {
                return real_sets_equal(&x, &y, b, d);
            }
            false
        }
        (Percent(x), Percent(y)) => eq(x, y, b, d),
        (Percent(x), other) | (other, Percent(x)) if other.is_scalar() => {
            // 28\% against 28 (a number written alone, the sign left out), or against 0.28.
            let literal =
                |e: &Expr| matches!(e, Num(_)) || matches!(e, Neg(n) if matches!(**n, Num(_)));
            (literal(x) && literal(other) && eq(x, other, b, d)) || scalar_equal(g, p, b)
        }
        (Text(x), Text(y)) => x == y,
        (Based(x, bx), Based(y, by)) => bx == by && same_digits(x, y),
        (Based(x, _), Num(n)) | (Num(n), Based(x, _)) => {
            n.value.is_int() && n.decimals.is_none() && same_digits(x, &n.value.n.to_string())
        }
        (Matrix(x), Matrix(y)) => {
            x.len() == y.len()
                && x.iter().zip(y).all(|(r1, r2)| {
                    r1.len() == r2.len() && r1.iter().zip(r2).all(|(a, c)| eq(a, c, b, d))
                })
        }
        // A column or row vector and a tuple.
        (Matrix(m), Tuple(t)) | (Tuple(t), Matrix(m)) => {
            let flat: Vec<&Expr> = m.iter().flatten().collect();
            let vector = m.len() == 1 || m.iter().all(|r| r.len() == 1);
            vector && flat.len() == t.len() && flat.iter().zip(t).all(|(a, c)| eq(a, c, b, d))
        }
        (Ratio(x), Ratio(y)) => ratios_equal(x, y, b),
        (Ratio(x), other) | (other, Ratio(x)) if x.len() == 2 && other.is_scalar() => {
            let q = Div(Box::new(x[0].clone()), Box::new(x[1].clone()));
            scalar_equal(&q, other, b)
        }
        (Tuple(x), Tuple(y)) => ordered(x, y, b, d),
        // `{1, 3}` (braces as grouping) against the tuple `(1, 3)`: in the order written.
        (Tuple(x), Set(y)) if x.len() > 1 => ordered(x, y, b, d),
        // A bare list against a tuple: in the gold's order when the gold is the tuple.
        (Tuple(x), List(y)) => ordered(x, y, b, d),
        (List(x), Tuple(y)) => {
            // `p = 2, q = 3` names each place: only in that order.
            let named = x
                .iter()
                .all(|e| matches!(e, Rel(s, o) if is_assignment(s, o)));
            ordered(x, y, b, d) || (!named && collections_equal(x, y, false, b, d))
        }
        (Set(x) | List(x), Set(y) | List(y)) => collections_equal(x, y, false, b, d),
        // A single value and a one-element set.
        (Set(x), other) | (other, Set(x)) if x.len() == 1 && !matches!(other, List(_)) => {
            eq(&x[0], other, b, d)
        }
        (Interval(..) | Union(_) | Reals | Without(..), _)
        | (_, Interval(..) | Union(_) | Reals | Without(..)) => {
            // An open interval and a pair are written alike.
            if let (Interval(lo, hi, false, false), Tuple(t)) = (g, p)
                && t.len() == 2
            {
                return eq(lo, &t[0], b, d) && eq(hi, &t[1], b, d);
            }
            if let (Tuple(t), Interval(lo, hi, false, false)) = (g, p)
                && t.len() == 2
            {
                return eq(&t[0], lo, b, d) && eq(&t[1], hi, b, d);
            }
            match (real_set(g, b), real_set(p, b)) {
                (Some(x), Some(y)) => real_sets_equal(&x, &y, b, d),
                _ => false,
            }
        }
        (List(x), other) if !other.is_scalar() => {
            // A list of relations (`x < -1 or x > 2`) against a set of reals.
            match (real_set(g, b), real_set(other, b)) {
                (Some(s1), Some(s2)) => real_sets_equal(&s1, &s2, b, d),
                _ => false,
            }
        }
        (a, c) if a.is_scalar() && c.is_scalar() => scalar_equal(a, c, b),
        _ => false,
    }
}

/// The items of a collection (`\pm` expanded), or the expression alone.
fn as_items(e: &Expr) -> Vec<Expr> {
    match e {
        Expr::Set(v) | Expr::List(v) => v.iter().flat_map(Expr::expand_plus_minus).collect(),
        other => other.expand_plus_minus(),
    }
}

fn dedupe(v: &[Expr], b: &mut Budget, d: usize) -> Vec<Expr> {
    let mut out: Vec<Expr> = Vec::with_capacity(v.len());
    for e in v {
        if !out
            .iter()
            .any(|o| o == e || (o.is_scalar() && e.is_scalar() && eq(o, e, b, d)))
        {
            out.push(e.clone());
        }
    }
    out
}

fn same_digits(a: &str, b: &str) -> bool {
    a.trim_start_matches('0')
        .eq_ignore_ascii_case(b.trim_start_matches('0'))
}

fn ordered(x: &[Expr], y: &[Expr], b: &mut Budget, d: usize) -> bool {
    x.len() == y.len() && x.iter().zip(y).all(|(a, c)| eq(a, c, b, d))
}

/// Unordered equality: a perfect matching between the items (small sizes: backtracking).
fn collections_equal(x: &[Expr], y: &[Expr], _ordered: bool, b: &mut Budget, d: usize) -> bool {
    if x.len() > 64 || y.len() > 64 {
        return false;
    }
    // Groups of labelled values against the same values listed flat
    // (`p=5, q=2; p=7, q=2` against `p=5, q=2 and p=7, q=2`): compare flat.
    let nested = |v: &[Expr]| v.iter().any(|e| matches!(e, Expr::List(_)));
    let flat = |v: &[Expr]| -> Vec<Expr> {
        v.iter()
            .flat_map(|e| match e {
                Expr::List(inner) => inner.clone(),
                other => vec![other.clone()],
            })
            .collect()
    };
    let (fx, fy);
    let relations = |v: &[Expr]| v.iter().all(|e| matches!(e, Expr::Rel(..)));
    let (x, y) =
        if (nested(x) && !nested(y) && relations(y)) || (nested(y) && !nested(x) && relations(x)) {
            fx = flat(x);
            fy = flat(y);
            (fx.as_slice(), fy.as_slice())
        } else {
            (x, y)
        };
    // As sets: a value listed twice counts once.
    let (xs, ys) = (dedupe(x, b, d), dedupe(y, b, d));
    let (x, y) = (xs.as_slice(), ys.as_slice());
    if x.len() != y.len() {
        return false;
    }
    let n = x.len();
    // equality table, computed once
    let mut table = vec![false; n * n];
    for i in 0..n {
        for j in 0..n {
            table[i * n + j] = eq(&x[i], &y[j], b, d);
        }
        if !(0..n).any(|j| table[i * n + j]) {
            return false;
        }
    }
    let mut used = vec![false; n];
    fn assign(i: usize, n: usize, t: &[bool], used: &mut [bool], steps: &mut usize) -> bool {
        if i == n {
            return true;
        }
        *steps += 1;
        if *steps > 100_000 {
            return false;
        }
        for j in 0..n {
            if !used[j] && t[i * n + j] {
                used[j] = true;
                if assign(i + 1, n, t, used, steps) {
                    return true;
                }
                used[j] = false;
            }
        }
        false
    }
    let mut steps = 0;
    assign(0, n, &table, &mut used, &mut steps)
}

/// `lhs = value` with a label-like left-hand side (`x`, `f(x)`, `(a, b)`, `PQ`, `A:B`), the
/// chain's relations all `=` / `\approx` / `\in`.
fn is_assignment(sides: &[Expr], ops: &[RelOp]) -> bool {
    sides.len() >= 2
        && sides[0].is_label()
        && ops
            .iter()
            .all(|o| matches!(o, RelOp::Eq | RelOp::Approx | RelOp::In))
}

/// The value a chain of equalities ends in: `x = 4 + 4 = 8` gives 8; an `\approx` after an
/// exact value keeps the exact one (`\frac{2}{7} \approx 0.29` gives `\frac{2}{7}`).
fn value_of<'e>(sides: &'e [Expr], ops: &[RelOp]) -> Option<&'e Expr> {
    let mut k = sides.len() - 1;
    while k >= 1 && ops[k - 1] == RelOp::Approx && !sides[k - 1].is_label() {
        k -= 1;
    }
    sides.get(k)
}

fn relations_equal(
    gs: &[Expr],
    gops: &[RelOp],
    ps: &[Expr],
    pops: &[RelOp],
    b: &mut Budget,
    d: usize,
) -> bool {
    let g_assign = is_assignment(gs, gops);
    let p_assign = is_assignment(ps, pops);
    if g_assign && p_assign {
        // x = 1 against y = 1 is wrong; the same label: compare the values.
        if labels_equal(&gs[0], &ps[0])
            && let (Some(x), Some(y)) = (value_of(gs, gops), value_of(ps, pops))
        {
            return eq(x, y, b, d);
        }
        // Both may still be the same equation (y = 2x + 1 against x = (y - 1)/2).
    }
    // Single relations: the same up to rearrangement and a constant factor.
    if gops.len() == 1 && pops.len() == 1 {
        let (go, po) = (gops[0], pops[0]);
        if single_relations_equal(&gs[0], go, &gs[1], &ps[0], po, &ps[1], b) == Some(true) {
            return true;
        }
    }
    if gops.len() == pops.len()
        && gops == pops
        && gs.len() == ps.len()
        && gs.iter().zip(ps).all(|(x, y)| eq(x, y, b, d))
    {
        return true;
    }
    // Order relations in one variable: as sets of reals (`1 \le t < 4` vs `t \ge 1, t < 4`).
    let (g, p) = (
        Expr::Rel(gs.to_vec(), gops.to_vec()),
        Expr::Rel(ps.to_vec(), pops.to_vec()),
    );
    if let (Some(x), Some(y)) = (real_set(&g, b), real_set(&p, b)) {
        return real_sets_equal(&x, &y, b, d);
    }
    // An equation against an assignment of the same value (`2 + 2 = 4` vs `x = 4`): no.
    false
}

fn labels_equal(a: &Expr, c: &Expr) -> bool {
    match (a, c) {
        (Expr::Sym(x), Expr::Sym(y)) => {
            x == y || (x.chars().count() > 1 && x.eq_ignore_ascii_case(y))
        }
        (Expr::Mul(x), Expr::Mul(y))
        | (Expr::Tuple(x), Expr::Tuple(y))
        | (Expr::Ratio(x), Expr::Ratio(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| labels_equal(p, q))
        }
        _ => false,
    }
}

/// `l1 op1 r1` against `l2 op2 r2`: equations equal when `l1 - r1 = k (l2 - r2)` for a
/// constant `k != 0`; inequalities when, oriented the same way, `k > 0` and the strictness
/// matches. `None` when the kinds differ.
fn single_relations_equal(
    l1: &Expr,
    o1: RelOp,
    r1: &Expr,
    l2: &Expr,
    o2: RelOp,
    r2: &Expr,
    b: &mut Budget,
) -> Option<bool> {
    if !(l1.is_scalar() && r1.is_scalar() && l2.is_scalar() && r2.is_scalar()) {
        return None;
    }
    let diff = |l: &Expr, r: &Expr| Expr::Add(vec![l.clone(), Expr::Neg(Box::new(r.clone()))]);
    // orient order relations to `<` / `\le`
    let orient = |l: &Expr, o: RelOp, r: &Expr| -> (Expr, RelOp) {
        match o {
            RelOp::Gt | RelOp::Ge => (diff(r, l), o.flipped()),
            _ => (diff(l, r), o),
        }
    };
    let (d1, o1) = orient(l1, o1, r1);
    let (d2, o2) = orient(l2, o2, r2);
    let kind = |o: RelOp| match o {
        RelOp::Eq | RelOp::Approx => 0,
        RelOp::Ne => 1,
        RelOp::Lt => 2,
        RelOp::Le => 3,
        _ => 4,
    };
    if kind(o1) != kind(o2) || kind(o1) == 4 {
        return None;
    }
    let k = proportional(&d1, &d2, b)?;
    Some(match o1 {
        RelOp::Lt | RelOp::Le => k > 0.0,
        _ => true,
    })
}

/// The constant `k` with `a = k b` at every sampled point (`None` if there is none, or if `b`
/// vanishes identically).
fn proportional(a: &Expr, c: &Expr, b: &mut Budget) -> Option<f64> {
    let syms = union_symbols(a, c);
    if syms.is_empty() {
        return None;
    }
    let mut ratio: Option<f64> = None;
    let mut valid = 0;
    for point in points(&syms) {
        let env: Vec<(String, Value)> = syms.iter().cloned().zip(point).collect();
        let (Some(x), Some(y)) = (a.eval(&env, b), c.eval(&env, b)) else {
            if b.exhausted() {
                return None;
            }
            continue;
        };
        let (x, y) = (x.c(), y.c());
        if !x.is_finite() || !y.is_finite() {
            continue;
        }
        if y.abs() < 1e-12 {
            if x.abs() < 1e-12 {
                continue;
            }
            return None;
        }
        if x.im.abs() > 1e-9 * x.abs().max(1.0) || y.im.abs() > 1e-9 * y.abs().max(1.0) {
            // complex: compare the full ratio
            let den = y.re * y.re + y.im * y.im;
            let re = (x.re * y.re + x.im * y.im) / den;
            let im = (x.im * y.re - x.re * y.im) / den;
            if im.abs() > 1e-8 * re.abs().max(1.0) {
                return None;
            }
            if !agree_ratio(&mut ratio, re) {
                return None;
            }
        } else if !agree_ratio(&mut ratio, x.re / y.re) {
            return None;
        }
        valid += 1;
    }
    let k = ratio?;
    (valid >= 3 && k.abs() > 1e-12).then_some(k)
}

fn agree_ratio(ratio: &mut Option<f64>, r: f64) -> bool {
    match ratio {
        None => {
            *ratio = Some(r);
            true
        }
        Some(k) => (r - *k).abs() <= 1e-7 * k.abs().max(r.abs()).max(1e-9),
    }
}

fn union_symbols(a: &Expr, c: &Expr) -> Vec<String> {
    let mut s = a.symbols();
    s.extend(c.symbols());
    s.sort();
    s.dedup();
    s
}

/// Deterministic evaluation points: small rationals of both signs (so rational functions are
/// checked exactly), a different one per variable.
fn points(syms: &[String]) -> Vec<Vec<Value>> {
    const BASE: [(i128, i128); 11] = [
        (7, 5),
        (-13, 7),
        (19, 4),
        (3, 11),
        (-5, 3),
        (23, 9),
        (-2, 13),
        (11, 6),
        (29, 10),
        (-17, 8),
        (5, 12),
    ];
    (0..POINTS)
        .map(|p| {
            (0..syms.len())
                .map(|v| {
                    let (n, d) = BASE[(p * 3 + v * 5) % BASE.len()];
                    Value::Exact(Rational::new(n + v as i128, d).unwrap_or(Rational::int(1)))
                })
                .collect()
        })
        .collect()
}

fn ratios_equal(x: &[Expr], y: &[Expr], b: &mut Budget) -> bool {
    if x.len() != y.len() || x.is_empty() {
        return false;
    }
    // With a zero part (a time like 12:00) the parts must be equal; else proportional:
    // a1 : a2 : ... against b1 : b2 : ...: a_i b_0 = b_i a_0.
    let zero =
        |e: &Expr, b: &mut Budget| matches!(e.eval(&[], b), Some(Value::Exact(r)) if r.n == 0);
    if x.iter().chain(y).any(|e| zero(e, b)) {
        return x.iter().zip(y).all(|(p, q)| scalar_equal(p, q, b));
    }
    (1..x.len()).all(|i| {
        let l = Expr::Mul(vec![x[i].clone(), y[0].clone()]);
        let r = Expr::Mul(vec![y[i].clone(), x[0].clone()]);
        scalar_equal(&l, &r, b)
    })
}

/// A decimal literal as written, possibly negated: its value and digits shown.
fn decimal_literal(e: &Expr) -> Option<Num> {
    match e {
        Expr::Num(n) if n.decimals.is_some() => Some(*n),
        Expr::Neg(x) => decimal_literal(x).map(|n| Num {
            value: Rational {
                n: -n.value.n,
                d: n.value.d,
            },
            ..n
        }),
        Expr::Percent(x) => decimal_literal(x).map(|n| Num {
            value: Rational::new(n.value.n, n.value.d.saturating_mul(100)).unwrap_or(n.value),
            decimals: n.decimals.map(|k| k + 2),
            ..n
        }),
        _ => None,
    }
}

/// A decimal precise enough to stand for an exact value: at least three significant digits
/// (`0.2857`, `1.41`, `0.333`, `3.14`; not `0.29` or `1.4`).
fn precise_enough(n: &Num) -> bool {
    n.significant >= 3
}

/// Scalars: exact where both are exact; a decimal against anything else at the precision the
/// decimal shows; otherwise within a relative tolerance, at random points when there are
/// variables.
pub fn scalar_equal(a: &Expr, c: &Expr, b: &mut Budget) -> bool {
    let syms = union_symbols(a, c);
    if syms.is_empty() {
        let (Some(x), Some(y)) = (a.eval(&[], b), c.eval(&[], b)) else {
            return false;
        };
        if let (Value::Exact(p), Value::Exact(q)) = (x, y)
            && p == q
        {
            return true;
        }
        // A decimal stands for what rounds to it.
        let (da, dc) = (decimal_literal(a), decimal_literal(c));
        let coarser = match (da, dc) {
            // Two decimals: the prediction must show at least the gold's precision (17.3 is
            // not 17.32); a more precise one counts when it rounds to the gold.
            (Some(p), Some(q)) => {
                if q.decimals < p.decimals {
                    return false;
                }
                Some(p)
            }
            (Some(p), None) | (None, Some(p)) => Some(p),
            (None, None) => None,
        };
        if let Some(n) = coarser {
            if !precise_enough(&n) {
                return values_close(x, y) && !matches!((x, y), (Value::Exact(_), Value::Exact(_)));
            }
            let half = 0.5 * 10f64.powi(-(n.decimals.unwrap_or(0) as i32));
            let (xc, yc) = (x.c(), y.c());
            return (xc.re - yc.re).abs() <= half * (1.0 + 1e-9) + 1e-15
                && (xc.im - yc.im).abs() <= half;
        }
        if let (Value::Exact(_), Value::Exact(_)) = (x, y) {
            return false;
        }
        return values_close(x, y);
    }
    let mut valid = 0;
    for point in points(&syms) {
        let env: Vec<(String, Value)> = syms.iter().cloned().zip(point).collect();
        match (a.eval(&env, b), c.eval(&env, b)) {
            (Some(x), Some(y)) => {
                let (xc, yc) = (x.c(), y.c());
                if !xc.is_finite() || !yc.is_finite() {
                    continue;
                }
                if !values_close(x, y) {
                    return false;
                }
                valid += 1;
            }
            (None, None) => {}
            // Defined on one side only (a removable singularity, or a missing symbol).
            _ => {}
        }
        if b.exhausted() {
            return false;
        }
    }
    valid >= 3
}

fn values_close(x: Value, y: Value) -> bool {
    if let (Value::Exact(p), Value::Exact(q)) = (x, y) {
        return p == q;
    }
    let (x, y) = (x.c(), y.c());
    if x.re.is_infinite() || y.re.is_infinite() {
        return x.re == y.re && x.im.abs() < 1e-12 && y.im.abs() < 1e-12;
    }
    let scale = x.abs().max(y.abs()).max(1e-6);
    (x.re - y.re).abs() <= REL_TOL * scale && (x.im - y.im).abs() <= REL_TOL * scale
}

/// One end of an interval: a value (`None` for an infinite end) and whether it is included.
#[derive(Debug, Clone)]
struct End {
    at: Option<Expr>,
    closed: bool,
}

/// A set of reals as a union of intervals, as written (not merged), and the variable it
/// constrains when it came from relations.
#[derive(Debug, Clone)]
struct RealSet {
    var: Option<String>,
    pieces: Vec<(End, End)>,
}

fn is_infinite(e: &Expr, sign: i8) -> bool {
    match e {
        Expr::Inf => sign >= 0,
        Expr::Neg(x) => matches!(**x, Expr::Inf) && sign <= 0,
        Expr::Add(v) if v.len() == 1 => is_infinite(&v[0], sign),
        _ => false,
    }
}

fn end(e: &Expr, closed: bool, sign: i8) -> End {
    if is_infinite(e, sign) {
        End {
            at: None,
            closed: false,
        }
    } else {
        End {
            at: Some(e.clone()),
            closed,
        }
    }
}

const OPEN: End = End {
    at: None,
    closed: false,
};

fn value_expr(v: Value) -> Expr {
    match v {
        Value::Exact(r) => Expr::Num(Num {
            value: r,
            decimals: None,
            significant: 9,
        }),
        Value::Approx(c) => Expr::Float(c.re),
    }
}

fn at(v: Value, closed: bool) -> End {
    End {
        at: Some(value_expr(v)),
        closed,
    }
}

/// The set of reals an answer describes: intervals, unions, `\mathbb{R}`, set differences
/// with points, and relations in one variable that solve linearly (`x > 3`, `1 \le t < 4`,
/// `-y > -2`, `x \ne 2`, `|x - 1| < 3`, `t \in [1, 4)`), or lists of those (`x < -1 or
/// x > 2`).
fn real_set(e: &Expr, b: &mut Budget) -> Option<RealSet> {
    if !b.spend() {
        return None;
    }
    let plain = |pieces| Some(RealSet { var: None, pieces });
    match e {
        Expr::Interval(lo, hi, lc, hc) => plain(vec![(end(lo, *lc, -1), end(hi, *hc, 1))]),
        Expr::Tuple(v) if v.len() == 2 => {
            plain(vec![(end(&v[0], false, -1), end(&v[1], false, 1))])
        }
        Expr::Reals => plain(vec![(OPEN, OPEN)]),
        Expr::Union(parts) => {
            let mut pieces = Vec::new();
            for p in parts {
                pieces.extend(real_set(p, b)?.pieces);
            }
            plain(pieces)
        }
        Expr::Without(a, points) => {
            let base = real_set(a, b)?;
            let pts: Vec<&Expr> = match &**points {
                Expr::Set(v) => v.iter().collect(),
                other if other.is_scalar() => vec![other],
                _ => return None,
            };
            let mut pieces = base.pieces;
            for p in pts {
                let pv = p.eval(&[], b)?.real()?;
                let mut next = Vec::new();
                for (lo, hi) in pieces {
                    let lv = match &lo.at {
                        Some(x) => x.eval(&[], b)?.real()?,
                        None => f64::NEG_INFINITY,
                    };
                    let hv = match &hi.at {
                        Some(x) => x.eval(&[], b)?.real()?,
                        None => f64::INFINITY,
                    };
                    if pv > lv && pv < hv {
                        let cut = End {
                            at: Some(p.clone()),
                            closed: false,
                        };
                        next.push((lo, cut.clone()));
                        next.push((cut, hi));
                    } else if pv == lv {
                        next.push((
                            End {
                                closed: false,
                                ..lo
                            },
                            hi,
                        ));
                    } else if pv == hv {
                        next.push((
                            lo,
                            End {
                                closed: false,
                                ..hi
                            },
                        ));
                    } else {
                        next.push((lo, hi));
                    }
                }
                pieces = next;
            }
            Some(RealSet {
                var: base.var,
                pieces,
            })
        }
        Expr::List(items) => {
            // Only lists of relations read as a union ("x < -1 or x > 2").
            if !items.iter().all(|i| matches!(i, Expr::Rel(..))) {
                return None;
            }
            let mut pieces = Vec::new();
            let mut var: Option<String> = None;
            for i in items {
                let s = relation_set(i, b)?;
                if s.var.is_some() && var.is_some() && s.var != var {
                    return None;
                }
                var = var.or(s.var);
                pieces.extend(s.pieces);
            }
            Some(RealSet { var, pieces })
        }
        Expr::Rel(..) => relation_set(e, b),
        _ => None,
    }
}

/// `f(x) = a x + c` exactly (checked at four points): `(a, c)`.
fn linear(f: &Expr, var: &str, b: &mut Budget) -> Option<(Value, Value)> {
    let mut at = |x: i128| f.eval(&[(var.to_string(), Value::int(x))], b);
    let (f0, f1, f2, f3) = (at(0)?, at(1)?, at(2)?, at(-3)?);
    let slope = f1.add(f0.neg());
    let check2 = f0.add(slope.mul(Value::int(2)));
    let check3 = f0.add(slope.mul(Value::int(-3)));
    if !values_close(check2, f2) || !values_close(check3, f3) {
        return None;
    }
    slope.real().filter(|a| a.abs() > 1e-12)?;
    f0.real()?;
    Some((slope, f0))
}

/// Where `a x + c` equals `target`: `(target - c) / a`.
fn solve(a: Value, c: Value, target: Value) -> Option<Value> {
    target.add(c.neg()).div(a)
}

fn constant(e: &Expr, b: &mut Budget) -> Option<Value> {
    if !e.symbols().is_empty() {
        return None;
    }
    let v = e.eval(&[], b)?;
    v.real()?;
    Some(v)
}

/// A relation in a single variable as a set.
fn relation_set(e: &Expr, b: &mut Budget) -> Option<RealSet> {
    let Expr::Rel(sides, ops) = e else {
        return None;
    };
    // x \in S
    if ops.len() == 1 && ops[0] == RelOp::In {
        let Expr::Sym(v) = &sides[0] else {
            return None;
        };
        let s = real_set(&sides[1], b)?;
        return Some(RealSet {
            var: Some(v.clone()),
            pieces: s.pieces,
        });
    }
    let mut syms: Vec<String> = sides.iter().flat_map(Expr::symbols).collect();
    syms.sort();
    syms.dedup();
    if syms.len() != 1 {
        return None;
    }
    let var = syms[0].clone();
    let with = |pieces| {
        Some(RealSet {
            var: Some(var.clone()),
            pieces,
        })
    };
    // lo < |f(x)| < hi: two pieces.
    if sides.len() == 3
        && let Expr::Func(super::value::Func::Abs, inner) = &sides[1]
        && inner.len() == 1
    {
        let (lo, hi) = (constant(&sides[0], b)?, constant(&sides[2], b)?);
        let (o1, o2) = (ops[0], ops[1]);
        if !(matches!(o1, RelOp::Lt | RelOp::Le) && matches!(o2, RelOp::Lt | RelOp::Le)) {
            return None;
        }
        if lo.real()? < 0.0 {
            return None;
        }
        let (c1, c2) = (o1 == RelOp::Le, o2 == RelOp::Le);
        let (a, c) = linear(&inner[0], &var, b)?;
        let xs = [
            solve(a, c, hi.neg())?,
            solve(a, c, lo.neg())?,
            solve(a, c, lo)?,
            solve(a, c, hi)?,
        ];
        let mut sorted = xs;
        sorted.sort_by(|p, q| p.c().re.total_cmp(&q.c().re));
        return with(vec![
            (at(sorted[0], c2), at(sorted[1], c1)),
            (at(sorted[2], c1), at(sorted[3], c2)),
        ]);
    }
    // lo < f(x) < hi with f linear: bounds on x.
    if sides.len() == 3 {
        let (lo, hi) = (constant(&sides[0], b)?, constant(&sides[2], b)?);
        let (a, c) = linear(&sides[1], &var, b)?;
        let (o1, o2) = (ops[0], ops[1]);
        let (lower_first, c1, c2) = match (o1, o2) {
            (RelOp::Lt | RelOp::Le, RelOp::Lt | RelOp::Le) => {
                (true, o1 == RelOp::Le, o2 == RelOp::Le)
            }
            (RelOp::Gt | RelOp::Ge, RelOp::Gt | RelOp::Ge) => {
                (false, o1 == RelOp::Ge, o2 == RelOp::Ge)
            }
            _ => return None,
        };
        // bounds on f: [fl, fh] with closedness
        let (fl, cl, fh, ch) = if lower_first {
            (lo, c1, hi, c2)
        } else {
            (hi, c2, lo, c1)
        };
        let (xl, xh) = (solve(a, c, fl)?, solve(a, c, fh)?);
        let positive = a.real()? > 0.0;
        return with(if positive {
            vec![(at(xl, cl), at(xh, ch))]
        } else {
            vec![(at(xh, ch), at(xl, cl))]
        });
    }
    if sides.len() != 2 {
        return None;
    }
    let op = ops[0];
    if !(op.is_order() || op == RelOp::Ne || op == RelOp::Eq) {
        return None;
    }
    // |f(x)| op k with f linear
    let abs_side = |x: &Expr| match x {
        Expr::Func(super::value::Func::Abs, args) if args.len() == 1 => Some(args[0].clone()),
        _ => None,
    };
    let (abs, k, op) = match (abs_side(&sides[0]), abs_side(&sides[1])) {
        (Some(inner), None) => (Some(inner), constant(&sides[1], b), op),
        (None, Some(inner)) => (Some(inner), constant(&sides[0], b), op.flipped()),
        _ => (None, None, op),
    };
    if let Some(inner) = abs {
        let k = k?;
        if k.real()? <= 0.0 {
            return None;
        }
        let (a, c) = linear(&inner, &var, b)?;
        let (p, q) = (solve(a, c, k.neg())?, solve(a, c, k)?);
        let (lo, hi) = if p.real()? <= q.real()? {
            (p, q)
        } else {
            (q, p)
        };
        let closed = matches!(op, RelOp::Le | RelOp::Ge);
        return with(match op {
            RelOp::Lt | RelOp::Le => vec![(at(lo, closed), at(hi, closed))],
            RelOp::Gt | RelOp::Ge => vec![(OPEN, at(lo, closed)), (at(hi, closed), OPEN)],
            _ => return None,
        });
    }
    // lhs - rhs = a x + c op 0
    let f = Expr::Add(vec![
        sides[0].clone(),
        Expr::Neg(Box::new(sides[1].clone())),
    ]);
    let (a, c) = linear(&f, &var, b)?;
    let root = solve(a, c, Value::int(0))?;
    let positive = a.real()? > 0.0;
    let below = matches!(op, RelOp::Lt | RelOp::Le) == positive;
    let closed = matches!(op, RelOp::Le | RelOp::Ge);
    with(match op {
        RelOp::Ne => vec![(OPEN, at(root, false)), (at(root, false), OPEN)],
        RelOp::Eq => vec![(at(root, true), at(root, true))],
        _ if below => vec![(OPEN, at(root, closed))],
        _ => vec![(at(root, closed), OPEN)],
    })
}

fn ends_equal(x: &End, y: &End, b: &mut Budget, d: usize) -> bool {
    match (&x.at, &y.at) {
        (None, None) => true,
        (Some(p), Some(q)) => x.closed == y.closed && eq(p, q, b, d),
        _ => false,
    }
}

fn real_sets_equal(x: &RealSet, y: &RealSet, b: &mut Budget, d: usize) -> bool {
    if let (Some(v), Some(w)) = (&x.var, &y.var)
        && v != w
    {
        return false;
    }
    let (x, y) = (&x.pieces, &y.pieces);
    if x.len() != y.len() || x.len() > 16 {
        return false;
    }
    // Unordered match of the pieces.
    let mut used = vec![false; y.len()];
    'outer: for (lo, hi) in x {
        for (j, (lo2, hi2)) in y.iter().enumerate() {
            if !used[j] && ends_equal(lo, lo2, b, d) && ends_equal(hi, hi2, b, d) {
                used[j] = true;
                continue 'outer;
            }
        }
        return false;
    }
    true
}

#[cfg(test)]
mod tests {
    use crate::math::equivalent;

    /// One example per rule of docs/rewards.md, both ways where the rule is symmetric.
    #[test]
    fn the_issue_families() {
        let same = [
            ("1000", "1 000"),
            ("1000", "1\\,000"),
            ("3.75", "3,75"),
            ("0.25", ".25"),
            ("12\\%", "12%"),
            ("12", "12 percent"),
            ("y < 2", "-y > -2"),
            ("8", "x = 4+4 = 8"),
            ("3x - 6y = 3", "x = 2y + 1"),
            ("[1, 4)", "1 \\le t < 4"),
            ("\\{4, 5\\}", "4 and 5"),
            ("(1,2),(2,1)", "(2,1) or (1,2)"),
            ("(4,1)", "(a,b) = (4,1)"),
            ("3, 7", "PQ = 3, RS = 7"),
            ("2:9", "A:B = 2:9"),
            ("2", "g(t) = 2"),
            (
                "\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}",
                "\\begin{bmatrix} 1 \\\\ 2 \\end{bmatrix}",
            ),
            ("\\frac{2}{7}", "0.2857"),
            ("\\csc^2 u", "1 + \\cot^2 u"),
            ("x^2+2x+1", "(x+1)^2"),
            ("\\text{(B)}", "B"),
        ];
        for (g, p) in same {
            assert!(equivalent(g, p), "{g} should equal {p}");
        }
        let different = [
            ("1000", "100"),
            ("y < 2", "y > 2"),
            ("3x - 6y = 3", "x = 2y - 1"),
            ("[1, 4)", "1 \\le t \\le 4"),
            ("(1,2)", "(2,1)"),
            ("\\frac{2}{7}", "0.28"),
            ("x^2+2x+1", "(x-1)^2"),
            ("\\text{(B)}", "C"),
            ("x = 1", "y = 1"),
        ];
        for (g, p) in different {
            assert!(!equivalent(g, p), "{g} should not equal {p}");
        }
    }
}
