//! Weighted sets of named rewards, built from TOML and scored in parallel.
//!
//! ```toml
//! [[reward]]
//! name = "format"       # the key its values are reported under
//! kind = "format"       # a built-in, or "plugin" with path = "plugins/.../libcountdown.so"
//! weight = 0.5
//!
//! [[reward]]
//! name = "accuracy"
//! kind = "accuracy"
//! weight = 1.0
//! gate = "format"       # counts only when `format` scored at least `gate_min` (default 1.0)
//! ```

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rayon::prelude::*;
use toml::Value;

use crate::builtin::{self, AnswerStyle, CosineLength, Script};
use crate::error::{Result, RewardError};
use crate::math::{Extraction, ExtractionKind};
use crate::{Reward, RewardInput, per_item};

/// One named, weighted reward of a set.
#[derive(Clone)]
pub struct Entry {
    /// The key its values are reported under.
    pub name: String,
    /// Multiplier in the total.
    pub weight: f32,
    /// Name of the reward that must score at least `gate_min` for this one to count.
    pub gate: Option<String>,
    /// Threshold of the gate.
    pub gate_min: f32,
    /// The reward.
    pub reward: Arc<dyn Reward>,
}

impl std::fmt::Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Entry")
            .field("name", &self.name)
            .field("weight", &self.weight)
            .field("gate", &self.gate)
            .finish()
    }
}

/// Named rewards with weights; scoring keeps every reward's values for logging. Cloning
/// shares the rewards (they sit behind `Arc`s), so a clone costs nothing.
#[derive(Debug, Default, Clone)]
pub struct RewardSet {
    entries: Vec<Entry>,
}

/// The scores of a batch.
#[derive(Debug, Clone, PartialEq)]
pub struct Scored {
    /// Reward names, in config order.
    pub names: Vec<String>,
    /// `values[r][i]`: reward `r` of input `i` after gating, `None` where it does not apply.
    pub values: Vec<Vec<Option<f32>>>,
    /// Weighted sum over the rewards that apply; `None` when none applies.
    pub totals: Vec<Option<f32>>,
}

/// Builds a built-in or plugin reward from one `[[reward]]` table.
pub type Factory = dyn Fn(&toml::Table, &Path) -> Result<Arc<dyn Reward>> + Send + Sync;

struct Ctx<'a> {
    path: &'a Path,
    index: usize,
    table: &'a toml::Table,
}

impl Ctx<'_> {
    fn err(&self, key: &str, message: impl std::fmt::Display) -> RewardError {
        let name = self
            .table
            .get("name")
            .and_then(Value::as_str)
            .map(|n| format!(" (`{n}`)"))
            .unwrap_or_default();
        RewardError::Config {
            path: self.path.to_path_buf(),
            message: format!(
                "[[reward]] #{}{name}: key `{key}`: {message}",
                self.index + 1
            ),
        }
    }

    fn f32_or(&self, key: &str, default: f32) -> Result<f32> {
        match self.table.get(key) {
            None => Ok(default),
            Some(Value::Float(f)) => Ok(*f as f32),
            Some(Value::Integer(i)) => Ok(*i as f32),
            Some(v) => Err(self.err(key, format!("expected a number, found {v}"))),
        }
    }

    fn usize_or(&self, key: &str, default: usize) -> Result<usize> {
        match self.table.get(key) {
            None => Ok(default),
            Some(Value::Integer(i)) if *i >= 0 => Ok(*i as usize),
            Some(v) => Err(self.err(key, format!("expected a non-negative integer, found {v}"))),
        }
    }

    fn bool_or(&self, key: &str, default: bool) -> Result<bool> {
        match self.table.get(key) {
            None => Ok(default),
            Some(Value::Boolean(b)) => Ok(*b),
            Some(v) => Err(self.err(key, format!("expected true or false, found {v}"))),
        }
    }

    fn str_opt(&self, key: &str) -> Result<Option<&str>> {
        match self.table.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(v) => Err(self.err(key, format!("expected a string, found {v}"))),
        }
    }

    fn only(&self, allowed: &[&str]) -> Result<()> {
        const COMMON: &[&str] = &["name", "kind", "weight", "gate", "gate_min"];
        for key in self.table.keys() {
            if !COMMON.contains(&key.as_str()) && !allowed.contains(&key.as_str()) {
                let mut known: Vec<&str> = allowed.to_vec();
                known.extend_from_slice(COMMON);
                return Err(self.err(
                    key,
                    format!(
                        "unknown key for this kind; known keys: {}",
                        known.join(", ")
                    ),
                ));
            }
        }
        Ok(())
    }
}

fn extraction(ctx: &Ctx<'_>) -> Result<Extraction> {
    match ctx.table.get("extract") {
        None => Ok(Extraction::default()),
        Some(Value::Array(items)) => {
            let mut priority = Vec::new();
            for item in items {
                let name = item
                    .as_str()
                    .ok_or_else(|| ctx.err("extract", "expected a list of strings"))?;
                priority.push(ExtractionKind::parse(name).ok_or_else(|| {
                    ctx.err(
                        "extract",
                        format!("unknown extractor `{name}`; use boxed, answer_tag, answer_is, last_math, last_number"),
                    )
                })?);
            }
            if priority.is_empty() {
                return Err(ctx.err("extract", "name at least one extractor"));
            }
            Ok(Extraction { priority })
        }
        Some(v) => Err(ctx.err("extract", format!("expected a list of strings, found {v}"))),
    }
}

fn length_of(input: &RewardInput, unit_tokens: bool) -> usize {
    if unit_tokens && input.completion_tokens > 0 {
        input.completion_tokens
    } else {
        input.completion.chars().count()
    }
}

fn build_builtin(kind: &str, ctx: &Ctx<'_>) -> Result<Arc<dyn Reward>> {
    Ok(match kind {
        "accuracy" => {
            ctx.only(&["extract"])?;
            let ex = extraction(ctx)?;
            Arc::new(per_item(move |i| builtin::accuracy(i, &ex)))
        }
        "format" => {
            ctx.only(&["answer", "allow_open_in_prompt"])?;
            let style = match ctx.str_opt("answer")?.unwrap_or("either") {
                "tags" => AnswerStyle::Tags,
                "boxed" => AnswerStyle::Boxed,
                "either" | "any" => AnswerStyle::Either,
                other => {
                    return Err(ctx.err("answer", format!("`{other}`: use tags, boxed or either")));
                }
            };
            let open = ctx.bool_or("allow_open_in_prompt", false)?;
            Arc::new(per_item(move |i| {
                Some(builtin::format_reward(&i.completion, style, open))
            }))
        }
        "tag_count" => {
            ctx.only(&[])?;
            Arc::new(per_item(|i| Some(builtin::tag_count_reward(&i.completion))))
        }
        "language" => {
            ctx.only(&["target", "metadata_key"])?;
            let target_name = ctx.str_opt("target")?.unwrap_or("en").to_string();
            let target = Script::parse(&target_name)
                .ok_or_else(|| ctx.err("target", format!("unknown language `{target_name}`")))?;
            let key = ctx.str_opt("metadata_key")?.map(str::to_string);
            Arc::new(per_item(move |i| {
                // A task may name its own language in its metadata.
                let t = key
                    .as_deref()
                    .and_then(|k| i.metadata.get(k))
                    .and_then(|v| v.as_str())
                    .and_then(Script::parse)
                    .unwrap_or(target);
                builtin::language_consistency(&i.completion, t)
            }))
        }
        "cosine_length" => {
            ctx.only(&[
                "min_value_wrong",
                "max_value_wrong",
                "min_value_correct",
                "max_value_correct",
                "max_len",
                "unit",
                "extract",
            ])?;
            let d = CosineLength::default();
            let c = CosineLength {
                min_value_wrong: ctx.f32_or("min_value_wrong", d.min_value_wrong)?,
                max_value_wrong: ctx.f32_or("max_value_wrong", d.max_value_wrong)?,
                min_value_correct: ctx.f32_or("min_value_correct", d.min_value_correct)?,
                max_value_correct: ctx.f32_or("max_value_correct", d.max_value_correct)?,
                max_len: ctx.usize_or("max_len", d.max_len)?,
            };
            let tokens = unit(ctx, "chars")?;
            let ex = extraction(ctx)?;
            Arc::new(per_item(move |i| {
                let correct = builtin::accuracy(i, &ex)? > 0.5;
                Some(c.reward(length_of(i, tokens), correct))
            }))
        }
        "overlong" => {
            ctx.only(&["max_completion_length", "soft_punish_cache", "unit"])?;
            let max = ctx.usize_or("max_completion_length", 0)?;
            if max == 0 {
                return Err(ctx.err("max_completion_length", "required and positive"));
            }
            let cache = ctx.usize_or("soft_punish_cache", max / 4)?;
            if cache > max {
                return Err(ctx.err("soft_punish_cache", "cannot exceed max_completion_length"));
            }
            let tokens = unit(ctx, "tokens")?;
            Arc::new(per_item(move |i| {
                Some(builtin::soft_overlong(length_of(i, tokens), max, cache))
            }))
        }
        "repetition" => {
            ctx.only(&["ngram_size", "max_penalty"])?;
            let n = ctx.usize_or("ngram_size", 3)?;
            let p = ctx.f32_or("max_penalty", -1.0)?;
            if p > 0.0 {
                return Err(ctx.err("max_penalty", "must not be positive"));
            }
            if n == 0 {
                return Err(ctx.err("ngram_size", "must be positive"));
            }
            Arc::new(per_item(move |i| {
                Some(builtin::repetition_penalty(&i.completion, n, p))
            }))
        }
        "code" => {
            ctx.only(&[
                "python",
                "timeout_s",
                "cpu_s",
                "memory_mb",
                "max_processes",
                "max_file_mb",
                "max_output_kb",
                "scoring",
            ])?;
            let d = crate::code::Limits::default();
            let limits = crate::code::Limits {
                cpu_seconds: ctx.usize_or("cpu_s", d.cpu_seconds as usize)? as u64,
                wall: std::time::Duration::from_secs_f32(
                    ctx.f32_or("timeout_s", d.wall.as_secs_f32())?.max(0.1),
                ),
                memory_bytes: (ctx.usize_or("memory_mb", (d.memory_bytes >> 20) as usize)? as u64)
                    << 20,
                max_processes: ctx.usize_or("max_processes", d.max_processes as usize)? as u64,
                max_file_bytes: (ctx.usize_or("max_file_mb", (d.max_file_bytes >> 20) as usize)?
                    as u64)
                    << 20,
                max_output_bytes: ctx.usize_or("max_output_kb", d.max_output_bytes >> 10)? << 10,
            };
            let scoring = match ctx.str_opt("scoring")?.unwrap_or("fraction") {
                "fraction" => crate::code::Scoring::Fraction,
                "all" | "all_or_nothing" => crate::code::Scoring::AllOrNothing,
                other => return Err(ctx.err("scoring", format!("`{other}`: use fraction or all"))),
            };
            let python = ctx.str_opt("python")?.unwrap_or("python3");
            let sandbox =
                crate::code::Sandbox::new(python, limits).map_err(|e| ctx.err("python", e))?;
            Arc::new(crate::code::CodeReward::new(sandbox, scoring))
        }
        "arithmetic_steps" => {
            ctx.only(&[])?;
            Arc::new(per_item(|i| {
                builtin::arithmetic_steps(&i.prompt, &i.completion)
            }))
        }
        "reasoning_steps" => {
            ctx.only(&[])?;
            Arc::new(per_item(|i| Some(builtin::reasoning_steps(&i.completion))))
        }
        other => {
            return Err(ctx.err(
                "kind",
                format!(
                    "unknown reward kind `{other}`; built-ins: accuracy, format, tag_count, language, \
                     cosine_length, overlong, repetition, reasoning_steps, arithmetic_steps, code; or plugin"
                ),
            ));
        }
    })
}

fn unit(ctx: &Ctx<'_>, default: &str) -> Result<bool> {
    match ctx.str_opt("unit")?.unwrap_or(default) {
        "tokens" => Ok(true),
        "chars" => Ok(false),
        other => Err(ctx.err("unit", format!("`{other}`: use tokens or chars"))),
    }
}

impl RewardSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a reward under `name` with `weight`.
    pub fn push(
        &mut self,
        name: impl Into<String>,
        weight: f32,
        reward: impl Reward + 'static,
    ) -> &mut Self {
        self.entries.push(Entry {
            name: name.into(),
            weight,
            gate: None,
            gate_min: 1.0,
            reward: Arc::new(reward),
        });
        self
    }

    /// Makes the reward `name` count only when `gate` scores at least `min`.
    pub fn gate(&mut self, name: &str, gate: &str, min: f32) -> Result<&mut Self> {
        let path = PathBuf::from("<code>");
        if !self.entries.iter().any(|e| e.name == gate) {
            return Err(RewardError::Config {
                path,
                message: format!("gate `{gate}` is not a reward of the set"),
            });
        }
        let entry = self
            .entries
            .iter_mut()
            .find(|e| e.name == name)
            .ok_or_else(|| RewardError::Config {
                path,
                message: format!("no reward named `{name}`"),
            })?;
        entry.gate = Some(gate.to_string());
        entry.gate_min = min;
        Ok(self)
    }

    /// The rewards, in order.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// Reads a TOML file with `[[reward]]` tables; relative plugin paths resolve against the
    /// file's folder.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| RewardError::Io {
            path: path.to_path_buf(),
            source: e,
        })?;
        Self::from_toml_str(&text, path)
    }

    /// Parses `[[reward]]` tables from TOML text; `path` names it in errors.
    pub fn from_toml_str(text: &str, path: &Path) -> Result<Self> {
        let doc: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| RewardError::Config {
                path: path.to_path_buf(),
                message: e.to_string().trim().replace('\n', " "),
            })?;
        let tables = match doc.get("reward") {
            Some(Value::Array(items)) => items,
            Some(_) => {
                return Err(RewardError::Config {
                    path: path.to_path_buf(),
                    message: "`reward` must be an array of tables ([[reward]])".into(),
                });
            }
            None => {
                return Err(RewardError::Config {
                    path: path.to_path_buf(),
                    message: "no [[reward]] tables".into(),
                });
            }
        };
        Self::from_tables(tables, path)
    }

    /// Builds a set from `[[reward]]` tables (as embedded in a pipeline config).
    pub fn from_tables(tables: &[Value], path: &Path) -> Result<Self> {
        let mut set = Self::new();
        let base = path.parent().unwrap_or(Path::new("."));
        for (index, t) in tables.iter().enumerate() {
            let table = t.as_table().ok_or_else(|| RewardError::Config {
                path: path.to_path_buf(),
                message: format!("[[reward]] #{}: expected a table", index + 1),
            })?;
            let ctx = Ctx { path, index, table };
            let name = ctx
                .str_opt("name")?
                .ok_or_else(|| ctx.err("name", "required"))?
                .to_string();
            if set.entries.iter().any(|e| e.name == name) {
                return Err(ctx.err("name", format!("`{name}` is used twice")));
            }
            let kind = ctx
                .str_opt("kind")?
                .ok_or_else(|| ctx.err("kind", "required"))?;
            let weight = ctx.f32_or("weight", 1.0)?;
            if !weight.is_finite() {
                return Err(ctx.err("weight", "must be finite"));
            }
            let gate = ctx.str_opt("gate")?.map(str::to_string);
            let gate_min = ctx.f32_or("gate_min", 1.0)?;
            let reward: Arc<dyn Reward> = match kind {
                "plugin" => {
                    crate::plugin::from_table(table, base).map_err(|e| ctx.err("path", e))?
                }
                other => build_builtin(other, &ctx)?,
            };
            set.entries.push(Entry {
                name,
                weight,
                gate,
                gate_min,
                reward,
            });
        }
        let names: HashSet<&str> = set.entries.iter().map(|e| e.name.as_str()).collect();
        for e in &set.entries {
            if let Some(g) = &e.gate
                && (!names.contains(g.as_str()) || g == &e.name)
            {
                return Err(RewardError::Config {
                    path: path.to_path_buf(),
                    message: format!(
                        "reward `{}`: key `gate`: `{g}` is not another reward of the set",
                        e.name
                    ),
                });
            }
        }
        Ok(set)
    }

    /// Scores a batch with every reward (in parallel), applies gates and weights.
    pub fn score(&self, inputs: &[RewardInput]) -> Result<Scored> {
        let _span = tracing::info_span!(
            "rewards",
            batch = inputs.len(),
            rewards = self.entries.len()
        )
        .entered();
        let raw: Vec<Vec<Option<f32>>> = self
            .entries
            .par_iter()
            .map(|e| {
                let values = e.reward.score(inputs)?;
                if values.len() != inputs.len() {
                    return Err(RewardError::Scoring {
                        name: e.name.clone(),
                        message: format!(
                            "returned {} scores for {} inputs",
                            values.len(),
                            inputs.len()
                        ),
                    });
                }
                if let Some(bad) = values.iter().flatten().find(|v| !v.is_finite()) {
                    return Err(RewardError::Scoring {
                        name: e.name.clone(),
                        message: format!("returned a non-finite score ({bad})"),
                    });
                }
                Ok(values)
            })
            .collect::<Result<_>>()?;
        let mut values = raw.clone();
        for (r, e) in self.entries.iter().enumerate() {
            if let Some(g) = &e.gate {
                let gi = self.entries.iter().position(|x| &x.name == g).unwrap_or(r);
                for (i, v) in values[r].iter_mut().enumerate() {
                    let open = raw[gi][i].is_some_and(|x| x >= e.gate_min);
                    if v.is_some() && !open {
                        *v = Some(0.0);
                    }
                }
            }
        }
        let totals = (0..inputs.len())
            .map(|i| {
                let mut any = false;
                let mut sum = 0f32;
                for (r, e) in self.entries.iter().enumerate() {
                    if let Some(v) = values[r][i] {
                        any = true;
                        sum += e.weight * v;
                    }
                }
                any.then_some(sum)
            })
            .collect();
        Ok(Scored {
            names: self.entries.iter().map(|e| e.name.clone()).collect(),
            values,
            totals,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(text: &str) -> Result<RewardSet> {
        RewardSet::from_toml_str(text, Path::new("rewards.toml"))
    }

    #[test]
    fn builds_and_scores_with_gates_and_weights() {
        let set = cfg(r#"
[[reward]]
name = "format"
kind = "format"
answer = "boxed"
weight = 0.5

[[reward]]
name = "accuracy"
kind = "accuracy"
weight = 1.0
gate = "format"
"#)
        .expect("config");
        let inputs = vec![
            RewardInput::new("<think>2+3</think> \\boxed{5}", "5"),
            RewardInput::new("\\boxed{5}", "5"),
            RewardInput::new("<think>2+3</think> \\boxed{6}", "5"),
            RewardInput {
                completion: "<think>x</think> \\boxed{1}".into(),
                ..RewardInput::default()
            },
        ];
        let s = set.score(&inputs).expect("score");
        assert_eq!(s.names, vec!["format", "accuracy"]);
        assert_eq!(
            s.values[0],
            vec![Some(1.0), Some(0.0), Some(1.0), Some(1.0)]
        );
        assert_eq!(s.values[1], vec![Some(1.0), Some(0.0), Some(0.0), None]);
        assert_eq!(s.totals, vec![Some(1.5), Some(0.0), Some(0.5), Some(0.5)]);
    }

    #[test]
    fn errors_name_the_table_and_key() {
        let e = cfg("[[reward]]\nname = \"a\"\nkind = \"nope\"\n")
            .expect_err("unknown kind")
            .to_string();
        assert!(
            e.contains("rewards.toml")
                && e.contains("#1")
                && e.contains("`kind`")
                && e.contains("nope"),
            "{e}"
        );
        let e = cfg("[[reward]]\nname = \"a\"\nkind = \"format\"\nanswr = \"tags\"\n")
            .expect_err("typo")
            .to_string();
        assert!(e.contains("`answr`"), "{e}");
        let e = cfg("[[reward]]\nname = \"a\"\nkind = \"format\"\ngate = \"b\"\n")
            .expect_err("gate")
            .to_string();
        assert!(e.contains("gate"), "{e}");
        let e = cfg("[[reward]]\nname = \"a\"\nkind = \"repetition\"\nmax_penalty = 1.0\n")
            .expect_err("sign")
            .to_string();
        assert!(e.contains("max_penalty"), "{e}");
        assert!(cfg("[[reward]\n").is_err());
    }

    #[test]
    fn closures_and_wrong_counts() {
        let mut set = RewardSet::new();
        set.push("len", 1.0, |xs: &[RewardInput]| {
            xs.iter().map(|x| Some(x.completion.len() as f32)).collect()
        });
        set.push("bad", 1.0, |_: &[RewardInput]| vec![Some(1.0)]);
        let inputs = vec![RewardInput::new("ab", ""), RewardInput::new("abc", "")];
        let err = set.score(&inputs).expect_err("wrong count").to_string();
        assert!(
            err.contains("`bad`") && err.contains("1 scores for 2"),
            "{err}"
        );
    }
}
