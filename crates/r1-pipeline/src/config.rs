//! The pipeline file: one TOML document describing a base model, datasets, reward sets, the
//! evaluation plan and an ordered list of stages. Read strictly: an unknown key, a value of the
//! wrong type, a bad value or a reference to something that does not exist is an error naming
//! the file, the line and the key (`tiny.toml:42: key `stage.grpo.learning_rat`: ...`).
//!
//! ```toml
//! name = "tiny"
//! seed = 0
//!
//! [base]                      # a Hugging Face folder: model = "path"; or a tiny architecture
//! hidden_size = 128           # (config.json keys; the rest default to the tiny R1 recipe's)
//!
//! [datasets.arith]            # a synthetic task, a file, or a pretraining corpus
//! task = "arithmetic"
//! train = 2000
//! eval = 200
//!
//! [rewards.reasoning]         # `[[rewards.NAME.reward]]` tables, or file = "rewards.toml"
//! [[rewards.reasoning.reward]]
//! name = "format"
//! kind = "format"
//!
//! [eval]                      # after every stage that makes a model
//! benchmarks = ["arith"]
//! rewards = "reasoning"
//!
//! [[stage]]
//! name = "cold_start"
//! kind = "sft"                # pretrain | sft | grpo | sample | distill | eval
//! data = "arith"
//! learning_rate = 1e-3        # the settings of the matching command (TRL's names)
//! ```
//!
//! `--set` overrides address a stage by its name (`--set grpo.learning_rate=1e-5`) and any other
//! key by its dotted path (`--set seed=1`, `--set eval.num_samples=4`,
//! `--set datasets.arith.train=500`).

use std::path::{Path, PathBuf};

use r1_data::synthetic::CorpusConfig;
use r1_data::{ReadOptions, TaskConfig};
use r1_distill::SftConfig;
use r1_distill::filters::{FilterConfig, KeepOrder};
use r1_distill::rejection::SampleSettings;
use r1_rewards::RewardSet;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::error::{PipelineError, Result};
use crate::eval::EvalSettings;
use crate::grpo::GrpoSettings;
use crate::lines::LineIndex;

/// Where the run starts.
#[derive(Debug, Clone)]
pub enum Base {
    /// A Hugging Face folder (with `tokenizer.json`).
    Folder(PathBuf),
    /// A tiny decoder built here with random weights and a character tokenizer, to pretrain.
    Tiny(Map<String, Value>),
}

/// How a dataset is made.
#[derive(Debug, Clone)]
pub enum DatasetKind {
    /// A JSONL or Parquet file; `eval` carves a seeded held-out split off it, `eval_file`
    /// names a separate one.
    File {
        /// The file.
        path: PathBuf,
        /// Format, column map, limit, skipping.
        read: ReadOptions,
        /// Held-out share or count taken from the file.
        eval: Option<r1_data::sampler::EvalSize>,
        /// A held-out file.
        eval_file: Option<PathBuf>,
    },
    /// A seeded synthetic task with disjoint train and held-out prompts.
    Task {
        /// The task and its knobs.
        task: TaskConfig,
        /// Training samples.
        train: usize,
        /// Held-out samples.
        eval: usize,
    },
    /// Pretraining documents for the task of another dataset.
    Corpus {
        /// The task dataset whose notation the corpus teaches.
        of: String,
        /// Documents.
        documents: usize,
        /// The mix.
        mix: CorpusConfig,
    },
    /// The first `train` training samples of another (file or task) dataset, with that
    /// dataset's held-out split: a cold-start set drawn from RL's prompts, never from the
    /// held-out ones, however the other dataset is changed.
    Subset {
        /// The dataset it is cut from.
        of: String,
        /// Training samples kept (a prefix of `of`'s training split).
        train: usize,
    },
}

/// A named dataset.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// Its name, as stages refer to it.
    pub name: String,
    /// How it is made.
    pub kind: DatasetKind,
    /// Seed of generation and splits (default: the run's seed).
    pub seed: u64,
}

/// What a stage does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StageKind {
    /// Language modelling on a corpus (every token trained on), from a tiny init or a model.
    Pretrain,
    /// Supervised fine-tuning (`r1 sft`).
    Sft,
    /// GRPO (`r1 grpo`).
    Grpo,
    /// Rejection sampling (`r1 sample`): makes a dataset.
    Sample,
    /// Distillation into a student (`r1 distill`).
    Distill,
    /// Evaluation only (`r1 eval`).
    Eval,
}

impl StageKind {
    /// The kind's name in TOML.
    pub fn name(self) -> &'static str {
        match self {
            Self::Pretrain => "pretrain",
            Self::Sft => "sft",
            Self::Grpo => "grpo",
            Self::Sample => "sample",
            Self::Distill => "distill",
            Self::Eval => "eval",
        }
    }

    /// Whether the stage writes a model.
    pub fn makes_model(self) -> bool {
        matches!(
            self,
            Self::Pretrain | Self::Sft | Self::Grpo | Self::Distill
        )
    }
}

/// The settings of a stage, by kind.
#[derive(Debug, Clone)]
pub enum StageSettings {
    /// `pretrain`, `sft`, `distill`: TRL's `SFTConfig` keys.
    Sft(Box<SftConfig>),
    /// `grpo`: `GRPOConfig` keys and the run's.
    Grpo(Box<GrpoSettings>),
    /// `sample`: rejection sampling.
    Sample(Box<SampleStage>),
    /// `eval`.
    Eval(Box<EvalSettings>),
}

/// Settings of a `sample` stage.
#[derive(Debug, Clone)]
pub struct SampleStage {
    /// Sampling, filtering and keeping.
    pub settings: SampleSettings,
    /// How prompts are wrapped.
    pub prompt_template: String,
}

/// One `[[stage]]`.
#[derive(Debug, Clone)]
pub struct Stage {
    /// Its name: its folder in the run and how later stages refer to its output.
    pub name: String,
    /// What it does.
    pub kind: StageKind,
    /// The model it starts from: `base` or an earlier stage (default: the newest model).
    pub model: String,
    /// Its data: datasets or earlier `sample` stages, concatenated.
    pub data: Vec<String>,
    /// Its reward set (`grpo`, `sample`, `eval`).
    pub rewards: Option<String>,
    /// A teacher model for logit distillation (`distill`).
    pub teacher: Option<String>,
    /// A tiny architecture to build and pretrain (`pretrain` only; e.g. a smaller student).
    pub architecture: Option<Map<String, Value>>,
    /// Benchmarks of an `eval` stage (default: the `[eval]` plan's).
    pub benchmarks: Vec<String>,
    /// Evaluate after this stage (default: `[eval] after_every_stage` for stages that make a
    /// model).
    pub eval: bool,
    /// The kind's settings.
    pub settings: StageSettings,
}

/// The `[eval]` plan.
#[derive(Debug, Clone)]
pub struct EvalPlan {
    /// Datasets whose held-out split is evaluated.
    pub benchmarks: Vec<String>,
    /// Evaluate after every stage that makes a model (default true when there are benchmarks).
    pub after_every_stage: bool,
    /// The reward set that decides correctness and format.
    pub rewards: Option<String>,
    /// Sampling settings (R1's temperature 0.6, top-p 0.95).
    pub settings: EvalSettings,
    /// How prompts are wrapped (`none`, `r1_zero`, `chat`).
    pub prompt_template: String,
}

/// A whole pipeline file, checked.
#[derive(Debug, Clone)]
pub struct PipelineConfig {
    /// The file it was read from.
    pub file: PathBuf,
    /// The run's name (default: the file's stem).
    pub name: String,
    /// The run's seed (default 0).
    pub seed: u64,
    /// How many stages may run at once (default 1: one after another). A stage starts once
    /// every stage it reads (`model`, `data`, `teacher`) is done; on a CPU whose element-wise
    /// work runs on one core, two independent stages share the cores better than one.
    pub parallel_stages: usize,
    /// The base model.
    pub base: Base,
    /// Datasets, in file order.
    pub datasets: Vec<Dataset>,
    /// Reward sets by name, in file order.
    pub rewards: Vec<(String, RewardSet)>,
    /// Evaluation plan.
    pub eval: EvalPlan,
    /// Stages, in order.
    pub stages: Vec<Stage>,
    /// The document after `--set`, as JSON (what `run.json` records).
    pub resolved: Value,
    /// The document after `--set`, as TOML text (what a resumed run reads again).
    pub resolved_toml: String,
}

impl PipelineConfig {
    /// The earlier stages that stage `i` reads (its `model`, `data` and `teacher`), as indices.
    /// A stage with an `architecture` builds a new model and reads no `model`.
    pub fn dependencies(&self, i: usize) -> Vec<usize> {
        let Some(stage) = self.stages.get(i) else {
            return Vec::new();
        };
        let model = stage.architecture.is_none().then_some(&stage.model);
        let names = model
            .into_iter()
            .chain(&stage.data)
            .chain(stage.teacher.as_ref());
        let mut deps: Vec<usize> = names
            .filter_map(|n| self.stages[..i].iter().position(|s| &s.name == n))
            .collect();
        deps.sort_unstable();
        deps.dedup();
        deps
    }
}

const TOP_KEYS: &[&str] = &[
    "name",
    "seed",
    "parallel_stages",
    "base",
    "datasets",
    "rewards",
    "eval",
    "stage",
];
const STAGE_KEYS: &[&str] = &[
    "name",
    "kind",
    "model",
    "data",
    "rewards",
    "teacher",
    "architecture",
    "benchmarks",
    "eval",
];
const EVAL_KEYS: &[&str] = &[
    "benchmarks",
    "after_every_stage",
    "rewards",
    "prompt_template",
    "num_samples",
    "pass_k",
    "temperature",
    "top_p",
    "max_new_tokens",
    "seed",
    "prompts_per_batch",
    "limit",
];
const SAMPLE_KEYS: &[&str] = &[
    "num_samples",
    "keep",
    "filters",
    "order",
    "temperature",
    "top_p",
    "max_new_tokens",
    "seed",
    "prompts_per_batch",
    "prompt_template",
    "max_paragraph_chars",
    "max_foreign_fraction",
    "max_repeated_ngram_fraction",
];

/// Reads `path` with `--set` overrides.
pub fn load(path: &Path, sets: &[String]) -> Result<PipelineConfig> {
    let text = std::fs::read_to_string(path).map_err(|e| PipelineError::io(path, e))?;
    from_str(&text, path, sets)
}

/// Parses a pipeline document; `path` names it in errors and anchors relative paths.
pub fn from_str(text: &str, path: &Path, sets: &[String]) -> Result<PipelineConfig> {
    let origin = path.display().to_string();
    let mut doc: toml::Table = toml::from_str(text).map_err(|e| {
        let at = e
            .span()
            .map(|s| {
                format!(
                    "{origin}:{}",
                    text[..s.start.min(text.len())].lines().count().max(1)
                )
            })
            .unwrap_or_else(|| origin.clone());
        PipelineError::config("(syntax)", format!("{at}: {}", e.message()))
    })?;
    let index = LineIndex::new(text, &origin);
    let mut set_paths = Vec::new();
    for s in sets {
        set_paths.push(apply_set(&mut doc, s)?);
    }
    let ctx = Ctx {
        index: &index,
        sets: &set_paths,
        dir: path.parent().unwrap_or(Path::new(".")).to_path_buf(),
    };
    let resolved_toml =
        toml::to_string(&doc).map_err(|e| PipelineError::config("(document)", e.to_string()))?;
    let resolved = serde_json::to_value(&doc)
        .map_err(|e| PipelineError::config("(document)", e.to_string()))?;
    parse(doc, path, &ctx, resolved, resolved_toml)
}

/// Where keys are, for messages.
struct Ctx<'a> {
    index: &'a LineIndex,
    sets: &'a [String],
    dir: PathBuf,
}

impl Ctx<'_> {
    fn at(&self, path: &str) -> String {
        if self.index.line(path).is_none() && self.sets.iter().any(|s| s == path) {
            return "--set".into();
        }
        self.index.locate(path)
    }

    fn err(&self, path: &str, message: impl std::fmt::Display) -> PipelineError {
        PipelineError::config(path, format!("{}: {message}", self.at(path)))
    }

    fn resolve(&self, p: &str) -> PathBuf {
        let p = Path::new(p);
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.dir.join(p)
        }
    }

    fn only(&self, table: &toml::Table, prefix: &str, keys: &[&str], what: &str) -> Result<()> {
        for k in table.keys() {
            if !keys.contains(&k.as_str()) {
                return Err(self.err(
                    &join(prefix, k),
                    format!("unknown key in {what} (known: {})", keys.join(", ")),
                ));
            }
        }
        Ok(())
    }

    fn get<T: serde::de::DeserializeOwned>(
        &self,
        table: &toml::Table,
        prefix: &str,
        key: &str,
    ) -> Result<Option<T>> {
        match table.get(key) {
            None => Ok(None),
            Some(v) => v
                .clone()
                .try_into()
                .map(Some)
                .map_err(|e: toml::de::Error| self.err(&join(prefix, key), e.message())),
        }
    }
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}.{key}")
    }
}

/// Applies one `--set a.b.c=value`; returns the dotted path in the document's own terms
/// (`stage.N.key` for a stage addressed by name).
fn apply_set(doc: &mut toml::Table, assignment: &str) -> Result<String> {
    let (key, value) = r1_distill::config::parse_set(assignment)?;
    let parts: Vec<&str> = key.split('.').collect();
    // A stage by name.
    if parts.len() >= 2
        && let Some(toml::Value::Array(stages)) = doc.get_mut("stage")
    {
        let found = stages
            .iter()
            .position(|s| s.get("name").and_then(toml::Value::as_str) == Some(parts[0]));
        if let Some(i) = found {
            let mut t = stages[i]
                .as_table_mut()
                .ok_or_else(|| PipelineError::config(key.clone(), "--set: not a table"))?;
            for p in &parts[1..parts.len() - 1] {
                t = t
                    .entry((*p).to_string())
                    .or_insert_with(|| toml::Value::Table(toml::Table::new()))
                    .as_table_mut()
                    .ok_or_else(|| {
                        PipelineError::config(key.clone(), format!("--set: `{p}` is not a table"))
                    })?;
            }
            t.insert(parts[parts.len() - 1].to_string(), value);
            return Ok(format!("stage.{i}.{}", parts[1..].join(".")));
        }
    }
    if parts[0] == "stage" {
        return Err(PipelineError::config(
            key.clone(),
            "--set: address a stage by its name (`--set grpo.learning_rate=1e-5`)",
        ));
    }
    let mut t = doc;
    for p in &parts[..parts.len() - 1] {
        t = t
            .entry((*p).to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()))
            .as_table_mut()
            .ok_or_else(|| {
                PipelineError::config(key.clone(), format!("--set: `{p}` is not a table"))
            })?;
    }
    t.insert(parts[parts.len() - 1].to_string(), value);
    Ok(key)
}

fn table_of<'a>(v: &'a toml::Value, ctx: &Ctx<'_>, path: &str) -> Result<&'a toml::Table> {
    v.as_table()
        .ok_or_else(|| ctx.err(path, format!("expected a table, got {}", v.type_str())))
}

fn parse(
    mut doc: toml::Table,
    path: &Path,
    ctx: &Ctx<'_>,
    resolved: Value,
    resolved_toml: String,
) -> Result<PipelineConfig> {
    ctx.only(&doc, "", TOP_KEYS, "the pipeline file")?;
    let name: String = ctx.get(&doc, "", "name")?.unwrap_or_else(|| {
        path.file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "run".into())
    });
    let seed: u64 = ctx.get(&doc, "", "seed")?.unwrap_or(0);
    let parallel_stages: usize = ctx.get(&doc, "", "parallel_stages")?.unwrap_or(1);
    if parallel_stages == 0 {
        return Err(ctx.err("parallel_stages", "must be at least 1"));
    }

    // [base]
    let base = match doc.remove("base") {
        None => Base::Tiny(Map::new()),
        Some(v) => {
            let t = table_of(&v, ctx, "base")?;
            if let Some(m) = t.get("model") {
                if t.len() > 1 {
                    let other = t
                        .keys()
                        .find(|k| *k != "model")
                        .cloned()
                        .unwrap_or_default();
                    return Err(ctx.err(
                        &join("base", &other),
                        "a base `model` folder takes no architecture keys",
                    ));
                }
                let folder = m
                    .as_str()
                    .ok_or_else(|| ctx.err("base.model", "expected a folder path (a string)"))?;
                Base::Folder(ctx.resolve(folder))
            } else {
                let arch = architecture(t, ctx, "base")?;
                Base::Tiny(arch)
            }
        }
    };

    // [datasets.*]
    let mut datasets = Vec::new();
    if let Some(v) = doc.remove("datasets") {
        let t = table_of(&v, ctx, "datasets")?;
        for (dname, dv) in t {
            let p = format!("datasets.{dname}");
            let dt = table_of(dv, ctx, &p)?;
            datasets.push(dataset(dname, dt, ctx, &p, seed)?);
        }
    }
    for d in &datasets {
        if let DatasetKind::Corpus { of, .. } = &d.kind {
            let ok = datasets
                .iter()
                .any(|o| &o.name == of && matches!(o.kind, DatasetKind::Task { .. }));
            if !ok {
                return Err(ctx.err(
                    &format!("datasets.{}.corpus", d.name),
                    format!("`{of}` is not a synthetic-task dataset of this file"),
                ));
            }
        }
        if let DatasetKind::Subset { of, train } = &d.kind {
            let key = format!("datasets.{}.subset", d.name);
            match datasets.iter().find(|o| &o.name == of).map(|o| &o.kind) {
                Some(DatasetKind::Task { train: n, .. }) if train > n => {
                    return Err(ctx.err(
                        &format!("datasets.{}.train", d.name),
                        format!("{train} is more than the {n} training samples of `{of}`"),
                    ));
                }
                Some(DatasetKind::Task { .. } | DatasetKind::File { .. }) => {}
                _ => {
                    return Err(ctx.err(
                        &key,
                        format!("`{of}` is not a file or synthetic-task dataset of this file"),
                    ));
                }
            }
        }
    }

    // [rewards.*]
    let mut rewards = Vec::new();
    if let Some(v) = doc.remove("rewards") {
        let t = table_of(&v, ctx, "rewards")?;
        for (rname, rv) in t {
            let p = format!("rewards.{rname}");
            let rt = table_of(rv, ctx, &p)?;
            ctx.only(rt, &p, &["file", "reward"], "a reward set")?;
            let set = match (rt.get("file"), rt.get("reward")) {
                (Some(f), None) => {
                    let f = f
                        .as_str()
                        .ok_or_else(|| ctx.err(&format!("{p}.file"), "expected a path"))?;
                    RewardSet::from_file(ctx.resolve(f))
                        .map_err(|e| ctx.err(&format!("{p}.file"), e))?
                }
                (None, Some(toml::Value::Array(tables))) => {
                    RewardSet::from_tables(tables, path).map_err(|e| ctx.err(&p, e))?
                }
                (None, Some(_)) => {
                    return Err(ctx.err(&format!("{p}.reward"), "expected [[reward]] tables"));
                }
                _ => {
                    return Err(ctx.err(
                        &p,
                        "a reward set has either `file` or `[[rewards.NAME.reward]]` tables",
                    ));
                }
            };
            rewards.push((rname.clone(), set));
        }
    }
    let reward_ok = |r: &str| rewards.iter().any(|(n, _)| n == r);

    // [eval]
    let eval = {
        let empty = toml::Table::new();
        let owned = doc.remove("eval");
        let t = match &owned {
            Some(v) => table_of(v, ctx, "eval")?,
            None => &empty,
        };
        ctx.only(t, "eval", EVAL_KEYS, "[eval]")?;
        let benchmarks: Vec<String> = ctx.get(t, "eval", "benchmarks")?.unwrap_or_default();
        for (i, b) in benchmarks.iter().enumerate() {
            if !datasets.iter().any(|d| &d.name == b) {
                return Err(ctx.err(
                    &format!("eval.benchmarks.{i}"),
                    format!("`{b}` is not a dataset of this file"),
                ));
            }
        }
        let rewards_name: Option<String> = ctx.get(t, "eval", "rewards")?;
        if let Some(r) = &rewards_name
            && !reward_ok(r)
        {
            return Err(ctx.err(
                "eval.rewards",
                format!("`{r}` is not a reward set of this file"),
            ));
        }
        let mut settings = eval_settings(t, ctx, "eval")?;
        if t.get("seed").is_none() {
            settings.seed = seed;
        }
        EvalPlan {
            after_every_stage: ctx
                .get(t, "eval", "after_every_stage")?
                .unwrap_or(!benchmarks.is_empty()),
            benchmarks,
            rewards: rewards_name,
            settings,
            prompt_template: template(t, ctx, "eval")?,
        }
    };

    // [[stage]]
    let mut stages: Vec<Stage> = Vec::new();
    let stage_values = match doc.remove("stage") {
        None => Vec::new(),
        Some(toml::Value::Array(a)) => a,
        Some(_) => return Err(ctx.err("stage", "expected [[stage]] tables")),
    };
    if stage_values.is_empty() {
        return Err(ctx.err("stage", "the pipeline has no [[stage]]"));
    }
    for (i, sv) in stage_values.iter().enumerate() {
        let p = format!("stage.{i}");
        let st = table_of(sv, ctx, &p)?;
        let stage = stage(st, ctx, &p, &stages, &datasets, &eval, &reward_ok, seed)?;
        if stages.iter().any(|s| s.name == stage.name) || stage.name == "base" {
            return Err(ctx.err(
                &format!("{p}.name"),
                format!("`{}` names another stage (or the base)", stage.name),
            ));
        }
        if datasets.iter().any(|d| d.name == stage.name) {
            return Err(ctx.err(
                &format!("{p}.name"),
                format!("`{}` is also a dataset's name", stage.name),
            ));
        }
        stages.push(stage);
    }
    if matches!(base, Base::Tiny(_))
        && !stages
            .iter()
            .any(|s| s.kind == StageKind::Pretrain && s.model == "base")
    {
        return Err(ctx.err(
            "base",
            "a tiny base has random weights: the pipeline needs a `pretrain` stage on it \
             (or give `[base] model = \"folder\"`)",
        ));
    }
    Ok(PipelineConfig {
        file: path.to_path_buf(),
        name,
        seed,
        parallel_stages,
        base,
        datasets,
        rewards,
        eval,
        stages,
        resolved,
        resolved_toml,
    })
}

fn architecture(t: &toml::Table, ctx: &Ctx<'_>, p: &str) -> Result<Map<String, Value>> {
    let json = serde_json::to_value(t).map_err(|e| ctx.err(p, e))?;
    let arch = match json {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    crate::base::check_architecture(&arch, &|k| ctx.at(&join(p, k))).map_err(|e| match e {
        PipelineError::Config { key, message } => PipelineError::config(join(p, &key), message),
        other => other,
    })?;
    Ok(arch)
}

fn template(t: &toml::Table, ctx: &Ctx<'_>, p: &str) -> Result<String> {
    let v: String = ctx
        .get(t, p, "prompt_template")?
        .unwrap_or_else(|| "none".into());
    if !["none", "r1_zero", "chat"].contains(&v.as_str()) {
        return Err(ctx.err(
            &join(p, "prompt_template"),
            format!("`{v}`: use none, r1_zero or chat"),
        ));
    }
    Ok(v)
}

fn eval_settings(t: &toml::Table, ctx: &Ctx<'_>, p: &str) -> Result<EvalSettings> {
    let d = EvalSettings::default();
    let s = EvalSettings {
        num_samples: ctx.get(t, p, "num_samples")?.unwrap_or(d.num_samples),
        pass_k: ctx.get(t, p, "pass_k")?,
        temperature: ctx.get(t, p, "temperature")?.unwrap_or(d.temperature),
        top_p: ctx.get(t, p, "top_p")?.unwrap_or(d.top_p),
        max_new_tokens: ctx.get(t, p, "max_new_tokens")?.unwrap_or(d.max_new_tokens),
        seed: ctx.get(t, p, "seed")?.unwrap_or(d.seed),
        prompts_per_batch: ctx
            .get(t, p, "prompts_per_batch")?
            .unwrap_or(d.prompts_per_batch),
        limit: ctx.get(t, p, "limit")?,
    };
    s.validate().map_err(|e| match e {
        PipelineError::Config { key, message } => ctx.err(&join(p, &key), message),
        other => other,
    })?;
    Ok(s)
}

fn dataset(name: &str, t: &toml::Table, ctx: &Ctx<'_>, p: &str, run_seed: u64) -> Result<Dataset> {
    let seed: u64 = ctx.get(t, p, "seed")?.unwrap_or(run_seed);
    let kind = if t.contains_key("file") {
        ctx.only(
            t,
            p,
            &[
                "file",
                "format",
                "columns",
                "limit",
                "skip_malformed",
                "eval",
                "eval_file",
                "seed",
            ],
            "a file dataset",
        )?;
        let file: String = ctx.get(t, p, "file")?.unwrap_or_default();
        let mut read = ReadOptions::default();
        if let Some(f) = ctx.get(t, p, "format")? {
            read.format = f;
        }
        if let Some(c) = ctx.get(t, p, "columns")? {
            read.columns = c;
        }
        read.limit = ctx.get(t, p, "limit")?;
        read.skip_malformed = ctx.get(t, p, "skip_malformed")?.unwrap_or(false);
        let eval = ctx.get(t, p, "eval")?;
        let eval_file: Option<String> = ctx.get(t, p, "eval_file")?;
        if eval.is_some() && eval_file.is_some() {
            return Err(ctx.err(
                &join(p, "eval_file"),
                "give `eval` or `eval_file`, not both",
            ));
        }
        DatasetKind::File {
            path: ctx.resolve(&file),
            read,
            eval,
            eval_file: eval_file.map(|f| ctx.resolve(&f)),
        }
    } else if t.contains_key("task") {
        let mut knobs = t.clone();
        let train: usize = ctx.get(t, p, "train")?.unwrap_or(1000);
        let eval: usize = ctx.get(t, p, "eval")?.unwrap_or(0);
        for k in ["train", "eval", "seed"] {
            knobs.remove(k);
        }
        let task: TaskConfig =
            toml::Value::Table(knobs.clone())
                .try_into()
                .map_err(|e: toml::de::Error| {
                    // Name the key: the first that fails beside `task` alone.
                    let key = knobs
                        .iter()
                        .filter(|(k, _)| k.as_str() != "task")
                        .find(|(k, v)| {
                            let mut one = toml::Table::new();
                            if let Some(task) = knobs.get("task") {
                                one.insert("task".into(), task.clone());
                            }
                            one.insert((*k).clone(), (*v).clone());
                            toml::Value::Table(one).try_into::<TaskConfig>().is_err()
                        })
                        .map(|(k, _)| k.clone())
                        .unwrap_or_else(|| "task".into());
                    ctx.err(&join(p, &key), e.message())
                })?;
        task.validate().map_err(|e| ctx.err(p, e))?;
        if train == 0 {
            return Err(ctx.err(&join(p, "train"), "must be at least 1"));
        }
        DatasetKind::Task { task, train, eval }
    } else if t.contains_key("corpus") {
        ctx.only(
            t,
            p,
            &[
                "corpus",
                "documents",
                "facts",
                "facts_per_doc",
                "noise",
                "direct",
                "tagged",
                "seed",
            ],
            "a corpus dataset",
        )?;
        let of: String = ctx.get(t, p, "corpus")?.unwrap_or_default();
        let documents: usize = ctx.get(t, p, "documents")?.unwrap_or(10_000);
        let mut mix_table = t.clone();
        for k in ["corpus", "documents", "seed"] {
            mix_table.remove(k);
        }
        let mix: CorpusConfig = toml::Value::Table(mix_table)
            .try_into()
            .map_err(|e: toml::de::Error| ctx.err(p, e.message()))?;
        mix.validate().map_err(|e| ctx.err(p, e))?;
        DatasetKind::Corpus { of, documents, mix }
    } else if t.contains_key("subset") {
        ctx.only(t, p, &["subset", "train"], "a subset dataset")?;
        let of: String = ctx.get(t, p, "subset")?.unwrap_or_default();
        let train: usize = ctx
            .get(t, p, "train")?
            .ok_or_else(|| ctx.err(&join(p, "train"), "a subset needs `train = N`"))?;
        if train == 0 {
            return Err(ctx.err(&join(p, "train"), "must be at least 1"));
        }
        DatasetKind::Subset { of, train }
    } else {
        return Err(ctx.err(
            p,
            "a dataset needs `file = \"...\"`, `task = \"arithmetic\"|\"countdown\"`, \
             `corpus = \"<task dataset>\"` or `subset = \"<dataset>\"`",
        ));
    };
    Ok(Dataset {
        name: name.to_string(),
        kind,
        seed,
    })
}

fn strings(t: &toml::Table, ctx: &Ctx<'_>, p: &str, key: &str) -> Result<Vec<String>> {
    match t.get(key) {
        None => Ok(Vec::new()),
        Some(toml::Value::String(s)) => Ok(vec![s.clone()]),
        Some(toml::Value::Array(_)) => Ok(ctx.get(t, p, key)?.unwrap_or_default()),
        Some(v) => Err(ctx.err(
            &join(p, key),
            format!("expected a name or a list of names, got {}", v.type_str()),
        )),
    }
}

#[allow(clippy::too_many_arguments)]
fn stage(
    t: &toml::Table,
    ctx: &Ctx<'_>,
    p: &str,
    earlier: &[Stage],
    datasets: &[Dataset],
    plan: &EvalPlan,
    reward_ok: &dyn Fn(&str) -> bool,
    run_seed: u64,
) -> Result<Stage> {
    let name: String = ctx
        .get(t, p, "name")?
        .ok_or_else(|| ctx.err(p, "a stage needs a `name`"))?;
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(ctx.err(
            &join(p, "name"),
            format!("`{name}`: use letters, digits, `_` and `-` (it names a folder)"),
        ));
    }
    let kind: StageKind = ctx.get(t, p, "kind")?.ok_or_else(|| {
        ctx.err(
            p,
            "a stage needs a `kind`: pretrain, sft, grpo, sample, distill or eval",
        )
    })?;
    let newest_model = earlier
        .iter()
        .rev()
        .find(|s| s.kind.makes_model())
        .map(|s| s.name.clone())
        .unwrap_or_else(|| "base".into());
    let model: String = ctx.get(t, p, "model")?.unwrap_or(newest_model);
    let model_ok =
        |m: &str| m == "base" || earlier.iter().any(|s| s.name == m && s.kind.makes_model());
    if !model_ok(&model) {
        return Err(ctx.err(
            &join(p, "model"),
            format!("`{model}` is neither `base` nor an earlier stage that makes a model"),
        ));
    }
    let teacher: Option<String> = ctx.get(t, p, "teacher")?;
    if let Some(te) = &teacher {
        if kind != StageKind::Distill {
            return Err(ctx.err(&join(p, "teacher"), "only `distill` stages take a teacher"));
        }
        if !model_ok(te) {
            return Err(ctx.err(
                &join(p, "teacher"),
                format!("`{te}` is neither `base` nor an earlier stage that makes a model"),
            ));
        }
    }
    let data = strings(t, ctx, p, "data")?;
    for (i, d) in data.iter().enumerate() {
        let is_dataset = datasets.iter().any(|x| &x.name == d);
        let is_sample = earlier
            .iter()
            .any(|s| &s.name == d && s.kind == StageKind::Sample);
        if !is_dataset && !is_sample {
            let at = if t.get("data").is_some_and(toml::Value::is_array) {
                format!("{p}.data.{i}")
            } else {
                format!("{p}.data")
            };
            return Err(ctx.err(
                &at,
                format!("`{d}` is neither a dataset nor an earlier `sample` stage"),
            ));
        }
    }
    let needs_data = !matches!(kind, StageKind::Eval);
    if needs_data && data.is_empty() {
        return Err(ctx.err(p, format!("a `{}` stage needs `data`", kind.name())));
    }
    let rewards: Option<String> = ctx.get(t, p, "rewards")?;
    if let Some(r) = &rewards
        && !reward_ok(r)
    {
        return Err(ctx.err(
            &join(p, "rewards"),
            format!("`{r}` is not a reward set of this file"),
        ));
    }
    if kind == StageKind::Grpo && rewards.is_none() {
        return Err(ctx.err(p, "a `grpo` stage needs `rewards` (a reward set's name)"));
    }
    let architecture = match t.get("architecture") {
        None => None,
        Some(v) => {
            if kind != StageKind::Pretrain {
                return Err(ctx.err(
                    &join(p, "architecture"),
                    "only `pretrain` stages build a new architecture",
                ));
            }
            let at = join(p, "architecture");
            Some(architecture(table_of(v, ctx, &at)?, ctx, &at)?)
        }
    };
    let benchmarks = strings(t, ctx, p, "benchmarks")?;
    if !benchmarks.is_empty() && kind != StageKind::Eval {
        return Err(ctx.err(
            &join(p, "benchmarks"),
            "only `eval` stages take `benchmarks`",
        ));
    }
    for b in &benchmarks {
        if !datasets.iter().any(|d| &d.name == b) {
            return Err(ctx.err(&join(p, "benchmarks"), format!("`{b}` is not a dataset")));
        }
    }
    let eval = ctx
        .get(t, p, "eval")?
        .unwrap_or(plan.after_every_stage && kind.makes_model());

    // The rest are the kind's settings.
    let mut rest = t.clone();
    for k in STAGE_KEYS {
        rest.remove(*k);
    }
    let locate = |key: &str| ctx.at(&join(p, key));
    let rename = |e: PipelineError| match e {
        PipelineError::Config { key, message } => PipelineError::config(join(p, &key), message),
        other => other,
    };
    let settings = match kind {
        StageKind::Pretrain | StageKind::Sft | StageKind::Distill => {
            if kind == StageKind::Pretrain && !rest.contains_key("completion_only_loss") {
                rest.insert("completion_only_loss".into(), toml::Value::Boolean(false));
            }
            if !rest.contains_key("seed") {
                rest.insert("seed".into(), toml::Value::Integer(run_seed as i64));
            }
            let c = SftConfig::from_table(rest, &locate).map_err(|e| match e {
                r1_distill::DistillError::Config { key, message } => {
                    PipelineError::config(join(p, &key), message)
                }
                other => other.into(),
            })?;
            if teacher.is_none() && t.contains_key("kd_alpha") {
                return Err(ctx.err(
                    &join(p, "kd_alpha"),
                    "kd_alpha weighs logit distillation, which needs a `teacher`",
                ));
            }
            StageSettings::Sft(Box::new(c))
        }
        StageKind::Grpo => {
            if !rest.contains_key("seed") {
                rest.insert("seed".into(), toml::Value::Integer(run_seed as i64));
            }
            StageSettings::Grpo(Box::new(
                GrpoSettings::from_table(rest, &locate).map_err(rename)?,
            ))
        }
        StageKind::Sample => {
            ctx.only(&rest, p, SAMPLE_KEYS, "a `sample` stage")?;
            let d = SampleSettings::default();
            let mut filter_config = FilterConfig::default();
            if let Some(v) = ctx.get(&rest, p, "max_paragraph_chars")? {
                filter_config.max_paragraph_chars = v;
            }
            if let Some(v) = ctx.get(&rest, p, "max_foreign_fraction")? {
                filter_config.max_foreign_fraction = v;
            }
            if let Some(v) = ctx.get(&rest, p, "max_repeated_ngram_fraction")? {
                filter_config.max_repeated_ngram_fraction = v;
            }
            let order: KeepOrder = ctx.get(&rest, p, "order")?.unwrap_or_default();
            let settings = SampleSettings {
                num_samples: ctx.get(&rest, p, "num_samples")?.unwrap_or(d.num_samples),
                keep: ctx.get(&rest, p, "keep")?.unwrap_or(d.keep),
                filters: ctx.get(&rest, p, "filters")?.unwrap_or(true),
                filter_config,
                order,
                temperature: ctx.get(&rest, p, "temperature")?.unwrap_or(d.temperature),
                top_p: ctx.get(&rest, p, "top_p")?.unwrap_or(d.top_p),
                max_new_tokens: ctx
                    .get(&rest, p, "max_new_tokens")?
                    .unwrap_or(d.max_new_tokens),
                seed: ctx.get(&rest, p, "seed")?.unwrap_or(run_seed),
                prompts_per_batch: ctx
                    .get(&rest, p, "prompts_per_batch")?
                    .unwrap_or(d.prompts_per_batch),
            };
            if settings.num_samples == 0 {
                return Err(ctx.err(&join(p, "num_samples"), "must be at least 1"));
            }
            if !(settings.top_p > 0.0 && settings.top_p <= 1.0) {
                return Err(ctx.err(&join(p, "top_p"), "must be in (0, 1]"));
            }
            StageSettings::Sample(Box::new(SampleStage {
                settings,
                prompt_template: template(&rest, ctx, p)?,
            }))
        }
        StageKind::Eval => {
            let mut allowed: Vec<&str> = EVAL_KEYS.to_vec();
            allowed.retain(|k| {
                ![
                    "benchmarks",
                    "after_every_stage",
                    "rewards",
                    "prompt_template",
                ]
                .contains(k)
            });
            ctx.only(&rest, p, &allowed, "an `eval` stage")?;
            // The plan's settings, then the stage's.
            let plan_s = &plan.settings;
            let mut s = eval_settings(&rest, ctx, p)?;
            if !rest.contains_key("num_samples") {
                s.num_samples = plan_s.num_samples;
            }
            if !rest.contains_key("temperature") {
                s.temperature = plan_s.temperature;
            }
            if !rest.contains_key("top_p") {
                s.top_p = plan_s.top_p;
            }
            if !rest.contains_key("max_new_tokens") {
                s.max_new_tokens = plan_s.max_new_tokens;
            }
            if !rest.contains_key("seed") {
                s.seed = plan_s.seed;
            }
            if !rest.contains_key("limit") {
                s.limit = plan_s.limit;
            }
            StageSettings::Eval(Box::new(s))
        }
    };
    if kind == StageKind::Eval && benchmarks.is_empty() && plan.benchmarks.is_empty() {
        return Err(ctx.err(
            p,
            "an `eval` stage needs `benchmarks` (or `[eval] benchmarks`)",
        ));
    }
    Ok(Stage {
        name,
        kind,
        model,
        data,
        rewards,
        teacher,
        architecture,
        benchmarks,
        eval,
        settings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
name = "t"
seed = 3

[base]
hidden_size = 32
num_hidden_layers = 1

[datasets.arith]
task = "arithmetic"
train = 50
eval = 10

[datasets.corpus]
corpus = "arith"
documents = 100

[rewards.r]
[[rewards.r.reward]]
name = "format"
kind = "format"
answer = "tags"
[[rewards.r.reward]]
name = "accuracy"
kind = "accuracy"
gate = "format"

[eval]
benchmarks = ["arith"]
rewards = "r"
num_samples = 2
max_new_tokens = 40

[[stage]]
name = "pretrain"
kind = "pretrain"
data = "corpus"
max_steps = 5

[[stage]]
name = "grpo"
kind = "grpo"
data = "arith"
rewards = "r"
num_generations = 4
max_steps = 2
learning_rate = 1e-5
"#;

    fn parse_good(sets: &[&str]) -> Result<PipelineConfig> {
        let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
        from_str(GOOD, Path::new("t.toml"), &sets)
    }

    #[test]
    fn a_good_file_parses_with_defaults_and_references() {
        let c = parse_good(&[]).expect("parses");
        assert_eq!((c.name.as_str(), c.seed), ("t", 3));
        assert_eq!(c.stages.len(), 2);
        assert_eq!(c.stages[0].model, "base");
        assert_eq!(c.stages[1].model, "pretrain", "default: the newest model");
        assert!(c.stages[0].eval && c.stages[1].eval);
        match &c.stages[0].settings {
            StageSettings::Sft(s) => {
                assert_eq!(s.completion_only_loss, Some(false));
                assert_eq!(s.seed, 3);
            }
            _ => panic!("pretrain takes SFT settings"),
        }
        match &c.stages[1].settings {
            StageSettings::Grpo(g) => {
                assert_eq!(g.trainer.learning_rate, 1e-5);
                assert_eq!(g.trainer.seed, 3);
            }
            _ => panic!("grpo settings"),
        }
        assert_eq!(c.eval.settings.num_samples, 2);
        assert_eq!(c.eval.settings.seed, 3);
    }

    #[test]
    fn set_overrides_stages_by_name_and_keys_by_path() {
        let c = parse_good(&["grpo.learning_rate=3e-5", "seed=9", "eval.num_samples=4"])
            .expect("parses");
        match &c.stages[1].settings {
            StageSettings::Grpo(g) => assert_eq!(g.trainer.learning_rate, 3e-5),
            _ => panic!(),
        }
        assert_eq!((c.seed, c.eval.settings.num_samples), (9, 4));
        let e = parse_good(&["grpo.learning_rat=1"])
            .expect_err("typo")
            .to_string();
        assert!(e.contains("--set") && e.contains("learning_rat"), "{e}");
    }

    #[test]
    fn errors_name_file_line_and_key() {
        let err = |from: &str, to: &str| {
            let text = GOOD.replacen(from, to, 1);
            from_str(&text, Path::new("t.toml"), &[])
                .expect_err("rejected")
                .to_string()
        };
        let line = |needle: &str, text: &str| {
            text.lines()
                .position(|l| l.contains(needle))
                .map(|i| i + 1)
                .expect("line")
        };
        let e = err("learning_rate = 1e-5", "learning_rat = 1e-5");
        assert!(
            e.contains(&format!("t.toml:{}", line("learning_rate = 1e-5", GOOD))),
            "{e}"
        );
        assert!(e.contains("stage.1.learning_rat"), "{e}");
        let e = err("learning_rate = 1e-5", "learning_rate = \"fast\"");
        assert!(
            e.contains("stage.1.learning_rate") && e.contains("t.toml:"),
            "{e}"
        );
        let e = err("data = \"arith\"", "data = \"nope\"");
        assert!(e.contains("stage.1.data") && e.contains("nope"), "{e}");
        let e = err(
            "rewards = \"r\"\nnum_generations",
            "rewards = \"q\"\nnum_generations",
        );
        assert!(e.contains("stage.1.rewards"), "{e}");
        let e = err("hidden_size = 32", "hidden_sise = 32");
        assert!(
            e.contains("base.hidden_sise") && e.contains("t.toml:6"),
            "{e}"
        );
        let e = err("corpus = \"arith\"", "corpus = \"corpus\"");
        assert!(e.contains("datasets.corpus.corpus"), "{e}");
        let e = err("kind = \"grpo\"", "kind = \"ppo\"");
        assert!(e.contains("stage.1.kind"), "{e}");
        let e = err("benchmarks = [\"arith\"]", "benchmarks = [\"gsm\"]");
        assert!(e.contains("eval.benchmarks.0"), "{e}");
        let e = err("name = \"grpo\"", "name = \"pretrain\"");
        assert!(e.contains("stage.1.name"), "{e}");
        let e = err("seed = 3", "seed = \"x\"");
        assert!(e.contains("t.toml:3") && e.contains("`seed`"), "{e}");
        let e = err("[eval]", "[evals]");
        assert!(e.contains("evals"), "{e}");
        let e = err("max_steps = 2\n", "max_steps = 0\n");
        assert!(e.contains("max_steps"), "{e}");
    }

    #[test]
    fn a_subset_is_checked_against_the_dataset_it_cuts() {
        let with = |table: &str| {
            let text = GOOD.replacen("[rewards.r]", &format!("{table}\n\n[rewards.r]"), 1);
            from_str(&text, Path::new("t.toml"), &[])
        };
        let c = with("[datasets.cold]\nsubset = \"arith\"\ntrain = 20").expect("parses");
        let cold = c.datasets.iter().find(|d| d.name == "cold").expect("cold");
        assert!(matches!(&cold.kind, DatasetKind::Subset { of, train: 20 } if of == "arith"));
        let e = with("[datasets.cold]\nsubset = \"arith\"\ntrain = 51")
            .expect_err("more than arith has")
            .to_string();
        assert!(e.contains("datasets.cold.train") && e.contains("50"), "{e}");
        let e = with("[datasets.cold]\nsubset = \"corpus\"\ntrain = 5")
            .expect_err("a corpus is not cut")
            .to_string();
        assert!(e.contains("datasets.cold.subset"), "{e}");
        let e = with("[datasets.cold]\nsubset = \"arith\"")
            .expect_err("no size")
            .to_string();
        assert!(e.contains("datasets.cold.train"), "{e}");
        let e = with("[datasets.cold]\nsubset = \"arith\"\ntrain = 5\neval = 3")
            .expect_err("a subset has its parent's held-out split")
            .to_string();
        assert!(e.contains("datasets.cold.eval"), "{e}");
    }

    #[test]
    fn stages_depend_on_the_stages_they_read() {
        let text = format!(
            "{GOOD}\n[[stage]]\nname = \"student\"\nkind = \"pretrain\"\n\
             data = \"corpus\"\nmax_steps = 5\narchitecture = {{ hidden_size = 16 }}\n\n\
             [[stage]]\nname = \"rs\"\nkind = \"sample\"\nmodel = \"grpo\"\ndata = \"arith\"\n\n\
             [[stage]]\nname = \"distill\"\nkind = \"distill\"\nmodel = \"student\"\n\
             data = \"rs\"\nteacher = \"pretrain\"\nmax_steps = 2\n"
        );
        let c = from_str(&text, Path::new("t.toml"), &[]).expect("parses");
        assert_eq!(c.parallel_stages, 1, "one stage at a time unless asked");
        let deps: Vec<Vec<usize>> = (0..c.stages.len()).map(|i| c.dependencies(i)).collect();
        assert_eq!(deps, vec![vec![], vec![0], vec![], vec![1], vec![0, 2, 3]]);
        let c =
            from_str(&text, Path::new("t.toml"), &["parallel_stages=2".into()]).expect("parses");
        assert_eq!(c.parallel_stages, 2);
        let e = from_str(&text, Path::new("t.toml"), &["parallel_stages=0".into()])
            .expect_err("zero stages at once")
            .to_string();
        assert!(e.contains("parallel_stages"), "{e}");
    }
}
