//! Property test of the maths grader on random and adversarial LaTeX-like input: no input
//! panics, and no verdict takes more than the grader's budget ([`math::TIME_BUDGET`]) plus a
//! small slack.
//!
//! Time is measured as this thread's CPU time, not wall-clock time, so that a busy CI machine
//! (other test binaries run beside this one) cannot make the check flaky: the grader's own
//! deadline is wall-clock, so contention only makes it give up sooner.

use std::time::Duration;

use r1_rewards::math::{self, Extraction};

/// Seeded SplitMix64: the same cases on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

/// Pieces that random answers are made of: LaTeX commands, delimiters, operators, numbers in
/// every format the grader reads, words, and multi-byte characters (char boundaries).
const PIECES: &[&str] = &[
    "0",
    "1",
    "2",
    "7",
    "42",
    "3.14",
    ".5",
    "1,000",
    "1\\,000",
    "3,75",
    "10^{",
    "-",
    "+",
    "*",
    "/",
    "^",
    "_",
    "!",
    "=",
    "<",
    ">",
    "\\le",
    "\\geq",
    "\\ne",
    "\\approx",
    "\\pm",
    "\\mp",
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    "\\{",
    "\\}",
    "\\left(",
    "\\right)",
    "\\left[",
    "\\right]",
    "\\left|",
    "\\right|",
    "|",
    ",",
    ";",
    ":",
    ".",
    "x",
    "y",
    "n",
    "k",
    "a",
    "b",
    "\\pi",
    "e",
    "i",
    "\\infty",
    "\\frac{",
    "\\dfrac",
    "\\tfrac12",
    "\\sqrt{",
    "\\sqrt[3]{",
    "\\sin",
    "\\cos",
    "\\tan",
    "\\cot",
    "\\csc",
    "\\log",
    "\\ln",
    "\\log_{2}",
    "\\exp",
    "\\binom{",
    "\\cdot",
    "\\times",
    "\\div",
    "\\%",
    "%",
    "\\$",
    "$",
    "$$",
    "\\(",
    "\\)",
    "\\[",
    "\\]",
    "\\boxed{",
    "\\fbox{",
    "\\text{",
    "\\textbf{",
    "\\mathrm{",
    "\\mathbb{R}",
    "\\cup",
    "\\cap",
    "\\setminus",
    "\\in",
    "\\emptyset",
    "\\begin{pmatrix}",
    "\\end{pmatrix}",
    "\\begin{array}{cc}",
    "\\end{array}",
    "&",
    "\\\\",
    "\\quad",
    "\\,",
    "\\!",
    "~",
    " ",
    " ",
    " ",
    "\n",
    "and",
    "or",
    "the answer is",
    "final answer",
    "Therefore",
    "so",
    "units",
    "percent",
    "dollars",
    "cm",
    "(A)",
    "B",
    "\\text{(C)}",
    "<think>",
    "</think>",
    "<answer>",
    "</answer>",
    "####",
    "é",
    "−",
    "×",
    "√",
    "π",
    "∞",
    "≤",
    "，",
    "。",
    "答案是",
    "🙂",
    "\u{200b}",
    "\\",
    "\\\\boxed",
    "\\unknowncommand",
    "\\overline{",
    "\\circ",
    "^\\circ",
    "\\ldots",
    "...",
    "\\cdots",
    "f(x)",
    "g(2)",
    "\\lt",
    "\\gt",
    "\\leqslant",
    "2\\frac{1}{2}",
];

fn random_text(rng: &mut Rng, max_pieces: usize) -> String {
    let n = 1 + rng.below(max_pieces);
    let mut s = String::new();
    for _ in 0..n {
        s.push_str(rng.pick(PIECES));
    }
    s
}

/// Inputs built to be slow or deep: nesting, towers, huge numbers and exponents, long lists
/// and chains, many boxes, long prose.
fn adversarial() -> Vec<String> {
    let rep = |s: &str, n: usize| s.repeat(n);
    let mut v = vec![
        rep("{", 5000) + &rep("}", 5000),
        rep("{", 20000),
        rep("(", 5000) + "1" + &rep(")", 5000),
        rep("\\frac{", 3000) + "1" + &rep("}{2}", 3000),
        rep("\\sqrt{", 3000) + "2" + &rep("}", 3000),
        rep("2^{", 2000) + "2" + &rep("}", 2000),
        rep("2^", 5000) + "2",
        "10^{10^{10^{10}}}".to_string(),
        "9^{9^{9^{9^{9}}}} - 9^{9^{9^{9^{9}}}}".to_string(),
        "(x+1)^{1000000}".to_string(),
        "(x+y+z+1)^{60}".to_string(),
        "x^{123456789012345678901234567890}".to_string(),
        rep("9", 20000),
        format!("0.{}", rep("3", 20000)),
        rep("100!", 50),
        "1000000!".to_string(),
        "(10^{100})!".to_string(),
        rep("\\boxed{1}, ", 20000),
        rep("\\boxed{", 5000),
        rep("$", 20000),
        rep("$x$ ", 10000),
        (0..10000)
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(", "),
        format!(
            "\\{{{}\\}}",
            (0..3000)
                .map(|i| format!("({i},{})", i + 1))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        (0..2000)
            .map(|i| format!("[{i},{})", i + 1))
            .collect::<Vec<_>>()
            .join(" \\cup "),
        (0..3000)
            .map(|i| format!("x_{{{i}}}"))
            .collect::<Vec<_>>()
            .join(" < "),
        format!(
            "\\begin{{pmatrix}}{}\\end{{pmatrix}}",
            (0..100)
                .map(|_| rep("1 & ", 99) + "1")
                .collect::<Vec<_>>()
                .join(" \\\\ ")
        ),
        rep("\\begin{pmatrix}", 500) + &rep("\\end{pmatrix}", 500),
        rep("\\left(", 3000) + &rep("\\right)", 3000),
        rep("\\text{", 5000),
        rep("\\sin(", 2000) + "x" + &rep(")", 2000),
        rep("x", 50000),
        rep("a+", 30000) + "a",
        rep("x*", 30000) + "x",
        rep("-", 30000) + "1",
        rep("The answer is 5. ", 20000),
        rep("so the total is 12 dollars and then ", 10000),
        rep("\\\\", 20000),
        rep("é−×√π", 20000),
        rep("1/", 20000) + "1",
        rep("\\pm 1", 5000),
        rep("x = ", 10000) + "1",
        rep("\\sqrt[", 3000),
        "\\binom{1000000}{500000}".to_string(),
        "\\log(0)/0 + \\infty - \\infty".to_string(),
        "e^{e^{e^{e^{e^{10}}}}}".to_string(),
        "\\tan(\\pi/2)^{-1000}".to_string(),
    ];
    v.push(rep("<think>", 5000) + "</think>7");
    v
}

/// CPU time of the calling thread.
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec and the clock id is a constant the kernel
    // knows.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// The bound checked per verdict: the budget and a slack for the work that runs before the
/// first budget check and after the last one (scanning and cleaning the text).
fn bound() -> Duration {
    math::TIME_BUDGET + Duration::from_millis(50)
}

/// Where the checks stand: the slowest verdict so far and every one over the bound.
#[derive(Default)]
struct Report {
    slowest: (Duration, String),
    over: Vec<String>,
}

impl Report {
    fn check(&mut self, gold: &str, completion: &str) {
        let e = Extraction::default();
        let t = thread_cpu();
        let grade = math::grade(gold, completion, &e);
        let took = thread_cpu() - t;
        let t2 = thread_cpu();
        let _ = math::equivalent(gold, completion);
        let took2 = thread_cpu() - t2;
        let worst = took.max(took2);
        let show = |s: &str| s.chars().take(60).collect::<String>();
        let case = format!(
            "gold {:?} ({} bytes) against {:?} ({} bytes): {}",
            show(gold),
            gold.len(),
            show(completion),
            completion.len(),
            show(&format!("{grade:?}"))
        );
        if worst > bound() {
            self.over.push(format!("{worst:?}: {case}"));
        }
        if worst > self.slowest.0 {
            self.slowest = (worst, case);
        }
    }

    fn finish(self, what: &str) {
        eprintln!(
            "slowest {what} case: {:?}: {}",
            self.slowest.0, self.slowest.1
        );
        assert!(
            self.over.is_empty(),
            "{} verdicts over {:?}:\n{}",
            self.over.len(),
            bound(),
            self.over.join("\n")
        );
    }
}

#[test]
fn random_latex_never_panics_and_stays_in_budget() {
    let mut rng = Rng(0x5EED_0008);
    let mut report = Report::default();
    for _ in 0..3000 {
        let gold = random_text(&mut rng, 12);
        let pred = random_text(&mut rng, 40);
        report.check(&gold, &pred);
        // The same text on both sides takes the full comparison paths.
        report.check(&gold, &gold);
        // A completion that boxes the gold.
        report.check(&gold, &format!("so \\boxed{{{gold}}}"));
    }
    report.finish("random");
}

#[test]
fn adversarial_latex_gets_a_verdict_in_budget() {
    let inputs = adversarial();
    let mut report = Report::default();
    let plain = ["2", "x^2+2x+1", "\\{1, 2\\}", "[0, 1)"];
    for a in &inputs {
        report.check(a, a);
        for p in plain {
            report.check(a, p);
            report.check(p, a);
        }
    }
    let mut rng = Rng(7);
    for _ in 0..200 {
        let (a, b) = (
            &inputs[rng.below(inputs.len())],
            &inputs[rng.below(inputs.len())],
        );
        report.check(a, b);
    }
    report.finish("adversarial");
}
