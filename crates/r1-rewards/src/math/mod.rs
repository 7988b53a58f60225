//! A maths answer grader: extract the final answer from a completion, then decide whether it
//! is equivalent to the reference, the way Math-Verify does.
//!
//! - [`extract_answer`]: the last `\boxed{}` / `\fbox{}`, `<answer>` tags, "the answer is ...",
//!   the last `$...$`, or the last number, in a configurable priority.
//! - [`equivalent`]: normalise (units, `\text{}`, `\left(`, `\dfrac`, thousands separators,
//!   degrees, dollars), parse LaTeX or plain text into an expression, and compare: exact
//!   rational arithmetic where both sides are rational, numeric evaluation with tolerance
//!   (at seeded random points for symbolic expressions), sets unordered, tuples and intervals
//!   ordered, equations by their right-hand side, percentages as value or fraction,
//!   multiple-choice letters, and text case-insensitively. Inputs are bounded in size and
//!   evaluation in work, so pathological answers fail fast instead of hanging.

mod equiv;
mod expr;
mod extract;
mod parse;

pub use equiv::{equivalent, equivalent_parsed};
pub use expr::Expr;
pub use extract::{Extraction, ExtractionKind, extract_answer, extract_boxed};
pub use parse::{normalize, parse_answer};
