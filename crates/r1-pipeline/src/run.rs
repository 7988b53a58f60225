//! Running a pipeline: the run directory, `run.json`, the stages (in order, or up to
//! `parallel_stages` at a time once the stages each reads are done), evaluation after the
//! stages that make a model, and resumption.
//!
//! ```text
//! RUN/
//!   run.json            the contract tools read (see [`RunState`])
//!   config.toml         the resolved config (after --set): what --resume reads again
//!   r1.log              tracing output of the run (written by `r1 train`)
//!   report.md, plots/   the report (see crate::report)
//!   data/NAME/          each dataset as JSONL (train.jsonl, eval.jsonl)
//!   base/               the tiny base's random init (Hugging Face folder)
//!   STAGE/              a stage's folder: the model (Hugging Face files), checkpoints/,
//!                       metrics.jsonl; or data.jsonl and stats.txt for `sample`;
//!                       eval-BENCH.json for each evaluation
//! ```
//!
//! A stage is marked `done` only after its evaluations are recorded, so a run killed at any
//! point (SIGKILL included) resumes by skipping the `done` stages and continuing the ones that were
//! `running` from their newest checkpoints (the trainers' own `--resume`), losing at most the steps
//! since that checkpoint. Every write of `run.json` and of each artifact is atomic.

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::tensor::Device;
use r1_data::{Content, Format, ReadOptions, Sample};
use r1_distill::rejection::rejection_sample;
use r1_distill::tokenize::SftTokenizer;
use r1_distill::{SftConfig, SftRun, run_sft};
use r1_model::Pretrained;
use r1_rewards::RewardSet;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::config::{Base, DatasetKind, PipelineConfig, Stage, StageKind, StageSettings};
use crate::error::{PipelineError, Result};
use crate::eval::{EvalResult, EvalSettings, evaluate};
use crate::grpo::{GrpoRun, run_grpo};
use r1_grpo::{progress_println, set_progress_scope};

/// A stage's status in `run.json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Not started.
    Pending,
    /// Started and not finished (or killed).
    Running,
    /// Finished, evaluations included.
    Done,
    /// Stopped by an error.
    Failed,
}

/// One stage in `run.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageState {
    /// The stage's name.
    pub name: String,
    /// Its kind.
    pub kind: String,
    /// `pending`, `running`, `done` or `failed`.
    pub status: Status,
    /// When it started (UTC, RFC 3339), if it did.
    pub started: Option<String>,
    /// When it finished.
    pub finished: Option<String>,
    /// Its outputs, as paths relative to the run directory (`model`, `metrics`, `data`,
    /// `stats`, `eval/BENCH`).
    pub artifacts: Map<String, Value>,
}

/// One evaluation in `run.json`: values are fractions in `[0, 1]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalRecord {
    /// The stage whose model was evaluated.
    pub stage: String,
    /// The benchmark (a dataset's name).
    pub benchmark: String,
    /// `pass@1`, `cons@k`, `pass@k` or `format`.
    pub metric: String,
    /// The value.
    pub value: f64,
    /// Samples per problem.
    pub k: usize,
    /// Problems.
    pub n: usize,
}

/// `run.json`: `{"config", "stages", "evals"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunState {
    /// The resolved config.
    pub config: Value,
    /// Every stage, in order.
    pub stages: Vec<StageState>,
    /// Every evaluation so far.
    pub evals: Vec<EvalRecord>,
}

impl RunState {
    /// Reads `RUN/run.json`.
    pub fn read(run_dir: &Path) -> Result<Self> {
        let path = run_dir.join("run.json");
        let text = std::fs::read_to_string(&path).map_err(|e| PipelineError::io(&path, e))?;
        serde_json::from_str(&text).map_err(|e| PipelineError::io(&path, e))
    }

    fn write(&self, run_dir: &Path) -> Result<()> {
        let path = run_dir.join("run.json");
        let text = serde_json::to_string_pretty(self).map_err(|e| PipelineError::io(&path, e))?;
        r1_model::io::write_atomic(&path, text.as_bytes()).map_err(|e| PipelineError::io(&path, e))
    }

    /// The value of `metric` for `stage` on `benchmark`.
    pub fn eval(&self, stage: &str, benchmark: &str, metric: &str) -> Option<f64> {
        self.evals
            .iter()
            .find(|e| e.stage == stage && e.benchmark == benchmark && e.metric == metric)
            .map(|e| e.value)
    }
}

/// What to run.
#[derive(Debug)]
pub struct TrainOptions {
    /// The checked config.
    pub config: PipelineConfig,
    /// The run directory.
    pub out: PathBuf,
    /// Continue the run in `out` (skip `done` stages, resume the `running` one).
    pub resume: bool,
    /// Device.
    pub device: Device,
}

/// What a run did.
#[derive(Debug, Clone)]
pub struct RunSummary {
    /// The run directory.
    pub out: PathBuf,
    /// The final state.
    pub state: RunState,
    /// Seconds of this process.
    pub seconds: f64,
}

/// The current time in UTC as RFC 3339 with milliseconds (`2026-12-06T03:04:05.678Z`).
pub fn now_utc() -> String {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's civil-from-days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_millis()
    )
}

/// Seconds between two [`now_utc`] stamps of the same day or later (for the report).
pub fn seconds_between(a: &str, b: &str) -> Option<f64> {
    fn parse(s: &str) -> Option<f64> {
        let (date, time) = s.trim_end_matches('Z').split_once('T')?;
        let mut d = date.split('-').map(|x| x.parse::<i64>().ok());
        let (y, m, dd) = (d.next()??, d.next()??, d.next()??);
        let mut t = time.split(':');
        let (h, mi, sec) = (
            t.next()?.parse::<f64>().ok()?,
            t.next()?.parse::<f64>().ok()?,
            t.next()?.parse::<f64>().ok()?,
        );
        // days from civil
        let y = if m <= 2 { y - 1 } else { y };
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let mp = (m + 9) % 12;
        let doy = (153 * mp + 2) / 5 + dd - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        let days = era * 146_097 + doe - 719_468;
        Some(days as f64 * 86_400.0 + h * 3600.0 + mi * 60.0 + sec)
    }
    Some(parse(b)? - parse(a)?)
}

fn rel(run: &Path, p: &Path) -> String {
    p.strip_prefix(run).unwrap_or(p).display().to_string()
}

/// A sample as a prompt-completion record (what `data/` files and stage inputs hold): the
/// record's own fields, with `prompt`, `completion` and `answer` set from the sample.
pub fn normalised_record(s: &Sample) -> Map<String, Value> {
    let content = |c: &Content| match c {
        Content::Text(t) => Value::String(t.clone()),
        Content::Messages(m) => serde_json::to_value(m).unwrap_or(Value::Null),
    };
    let mut out = Map::new();
    out.insert("id".into(), Value::String(s.id.clone()));
    out.insert("prompt".into(), content(&s.prompt));
    if let Some(c) = &s.completion {
        out.insert("completion".into(), content(c));
    }
    match s.answers.len() {
        0 => {}
        1 => {
            out.insert("answer".into(), Value::String(s.answers[0].clone()));
        }
        _ => {
            out.insert("answer".into(), json!(s.answers));
        }
    }
    for (k, v) in &s.record {
        if !["id", "prompt", "completion", "answer", "text", "messages"].contains(&k.as_str()) {
            out.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    out
}

/// Writes samples as prompt-completion JSONL, atomically.
pub fn write_samples(samples: &[Sample], path: &Path) -> Result<()> {
    let mut bytes = Vec::new();
    for s in samples {
        serde_json::to_writer(&mut bytes, &Value::Object(normalised_record(s)))
            .map_err(|e| PipelineError::io(path, e))?;
        bytes.push(b'\n');
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| PipelineError::io(parent, e))?;
    }
    r1_model::io::write_atomic(path, &bytes).map_err(|e| PipelineError::io(path, e))
}

fn read_samples(path: &Path) -> Result<Vec<Sample>> {
    // A `sample` stage that kept nothing leaves an empty file.
    if std::fs::metadata(path).is_ok_and(|m| m.len() == 0) {
        return Ok(Vec::new());
    }
    let options = ReadOptions {
        format: Format::PromptCompletion,
        ..ReadOptions::default()
    };
    Ok(r1_data::read(path, &options)?.samples)
}

/// The run's folders and files.
struct Layout<'a> {
    run: &'a Path,
    config: &'a PipelineConfig,
}

impl Layout<'_> {
    fn dataset(&self, name: &str, split: &str) -> PathBuf {
        self.run
            .join("data")
            .join(name)
            .join(format!("{split}.jsonl"))
    }

    fn stage(&self, name: &str) -> PathBuf {
        self.run.join(name)
    }

    fn model(&self, name: &str) -> PathBuf {
        if name == "base" {
            match &self.config.base {
                Base::Folder(p) => p.clone(),
                Base::Tiny(_) => self.run.join("base"),
            }
        } else {
            self.stage(name)
        }
    }

    /// Training samples of `refs` (datasets' train splits, `sample` stages' data), concatenated.
    fn train_samples(&self, refs: &[String]) -> Result<Vec<Sample>> {
        let mut out = Vec::new();
        for r in refs {
            let path = if self.config.datasets.iter().any(|d| &d.name == r) {
                self.dataset(r, "train")
            } else {
                self.stage(r).join("data.jsonl")
            };
            out.extend(read_samples(&path)?);
        }
        Ok(out)
    }

    /// Held-out samples of a dataset: its eval split, or the whole file when it has none.
    fn eval_samples(&self, name: &str) -> Result<Vec<Sample>> {
        let eval = self.dataset(name, "eval");
        if eval.exists() {
            read_samples(&eval)
        } else {
            read_samples(&self.dataset(name, "train"))
        }
    }
}

/// Writes every dataset under `RUN/data/` (deterministic: a rerun writes the same files).
fn materialise(layout: &Layout<'_>) -> Result<Vec<String>> {
    let _span = tracing::info_span!("datasets").entered();
    let mut texts = Vec::new();
    let config = layout.config;
    // Subsets are cut from the others once those are made; files keep the config's order.
    let mut made: Vec<Option<(Vec<Sample>, Vec<Sample>)>> = Vec::new();
    for d in &config.datasets {
        let split = match &d.kind {
            DatasetKind::Subset { .. } => None,
            kind => Some(make_dataset(config, d, kind)?),
        };
        made.push(split);
    }
    for (i, d) in config.datasets.iter().enumerate() {
        let DatasetKind::Subset { of, train: n } = &d.kind else {
            continue;
        };
        let parent = config
            .datasets
            .iter()
            .position(|o| &o.name == of)
            .and_then(|j| made[j].as_ref())
            .ok_or_else(|| {
                PipelineError::Data(format!(
                    "dataset `{}`: `{of}` is not a file or task dataset",
                    d.name
                ))
            })?;
        if parent.0.len() < *n {
            return Err(PipelineError::Data(format!(
                "dataset `{}`: asks for {n} training samples of `{of}`, which has {}",
                d.name,
                parent.0.len()
            )));
        }
        made[i] = Some((parent.0[..*n].to_vec(), parent.1.clone()));
    }
    for (d, split) in config.datasets.iter().zip(made) {
        let (train, eval) = split.expect("every dataset is made above");
        for s in train.iter().chain(&eval) {
            texts.push(s.prompt.to_plain_text());
            if let Some(c) = &s.completion {
                texts.push(c.to_plain_text());
            }
        }
        write_samples(&train, &layout.dataset(&d.name, "train"))?;
        if !eval.is_empty() {
            write_samples(&eval, &layout.dataset(&d.name, "eval"))?;
        }
    }
    Ok(texts)
}

/// Makes a file, task or corpus dataset: its training and held-out samples.
fn make_dataset(
    config: &PipelineConfig,
    d: &crate::config::Dataset,
    kind: &DatasetKind,
) -> Result<(Vec<Sample>, Vec<Sample>)> {
    Ok(match kind {
        DatasetKind::File {
            path,
            read,
            eval,
            eval_file,
        } => {
            let data = r1_data::read(path, read)?;
            if data.skipped > 0 {
                tracing::warn!(dataset = %d.name, skipped = data.skipped, "malformed records skipped");
            }
            match (eval, eval_file) {
                (Some(e), _) => r1_data::sampler::split(data.samples, *e, d.seed)?,
                (None, Some(f)) => (data.samples, r1_data::read(f, read)?.samples),
                (None, None) => (data.samples, Vec::new()),
            }
        }
        DatasetKind::Task { task, train, eval } => {
            r1_data::generate_split(task, *train, *eval, d.seed)
        }
        DatasetKind::Corpus { of, documents, mix } => {
            let task = config.datasets.iter().find_map(|o| match &o.kind {
                DatasetKind::Task { task, .. } if &o.name == of => Some(task),
                _ => None,
            });
            let Some(r1_data::TaskConfig::Arithmetic(arith)) = task else {
                return Err(PipelineError::Data(format!(
                    "dataset `{}`: corpora exist for the arithmetic task only",
                    d.name
                )));
            };
            let docs = r1_data::synthetic::arithmetic_corpus(arith, mix, *documents, d.seed);
            let samples = docs
                .into_iter()
                .enumerate()
                .map(|(i, text)| Sample {
                    id: format!("{}:{i}", d.name),
                    prompt: Content::Text(String::new()),
                    completion: Some(Content::Text(text)),
                    reasoning: None,
                    final_answer: None,
                    answers: Vec::new(),
                    record: Map::new(),
                })
                .collect();
            (samples, Vec::new())
        }
        DatasetKind::Subset { .. } => unreachable!("subsets are cut in `materialise`"),
    })
}

fn reward_set(config: &PipelineConfig, name: Option<&str>) -> Result<RewardSet> {
    match name {
        Some(n) => config
            .rewards
            .iter()
            .find(|(r, _)| r == n)
            .map(|(_, s)| s.clone())
            .ok_or_else(|| PipelineError::config("rewards", format!("no reward set `{n}`"))),
        None => Ok(RewardSet::from_toml_str(
            "[[reward]]\nname = \"accuracy\"\nkind = \"accuracy\"\n",
            Path::new("(default rewards)"),
        )?),
    }
}

/// Evaluates `model` on each benchmark, records the evals and writes `STAGE/eval-BENCH.json`.
#[allow(clippy::too_many_arguments)]
fn run_evals(
    layout: &Layout<'_>,
    stage: &str,
    model_dir: &Path,
    benchmarks: &[String],
    settings: &EvalSettings,
    rewards: Option<&str>,
    device: &Device,
    records: &mut Vec<EvalRecord>,
    artifacts: &mut Map<String, Value>,
) -> Result<Vec<EvalResult>> {
    let config = layout.config;
    let device = device.clone().without_autodiff();
    let model = Pretrained::load(model_dir, None, &device)?;
    let tok = model.tokenizer.as_ref().ok_or_else(|| {
        PipelineError::Data(format!("{}: no tokenizer.json", model_dir.display()))
    })?;
    let sft = SftConfig {
        prompt_template: config.eval.prompt_template.clone(),
        ..SftConfig::default()
    };
    let sft_tok = SftTokenizer::new(tok, &sft);
    let set = reward_set(config, rewards.or(config.eval.rewards.as_deref()))?;
    let mut out = Vec::new();
    for b in benchmarks {
        let samples = layout.eval_samples(b)?;
        let r = evaluate(&model, &sft_tok, &samples, &set, settings, b)?;
        for (metric, value) in r.metrics() {
            records.push(EvalRecord {
                stage: stage.to_string(),
                benchmark: b.clone(),
                metric: metric.into(),
                value,
                k: r.k,
                n: r.n,
            });
        }
        let path = layout.stage(stage).join(format!("eval-{b}.json"));
        let text =
            serde_json::to_string_pretty(&r.to_json()).map_err(|e| PipelineError::io(&path, e))?;
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| PipelineError::io(parent, e))?;
        }
        r1_model::io::write_atomic(&path, text.as_bytes())
            .map_err(|e| PipelineError::io(&path, e))?;
        artifacts.insert(format!("eval/{b}"), Value::String(rel(layout.run, &path)));
        progress_println(&format!(
            "eval {stage} on {b}: pass@1 {:.3}, cons@{} {:.3}, pass@{} {:.3}, format {:.3}, {:.1} tokens",
            r.pass_at_1, r.k, r.cons_at_k, r.pass_k, r.pass_at_k, r.format, r.mean_tokens
        ));
        out.push(r);
    }
    Ok(out)
}

/// Runs one stage (its training or sampling part); returns its artifacts.
fn run_stage(
    layout: &Layout<'_>,
    stage: &Stage,
    alphabet: &[char],
    resume: bool,
    device: &Device,
) -> Result<Map<String, Value>> {
    let config = layout.config;
    let dir = layout.stage(&stage.name);
    std::fs::create_dir_all(&dir).map_err(|e| PipelineError::io(&dir, e))?;
    let mut artifacts = Map::new();
    let model_dir = layout.model(&stage.model);
    match (&stage.settings, stage.kind) {
        (StageSettings::Sft(sft), StageKind::Pretrain | StageKind::Sft | StageKind::Distill) => {
            let start = match &stage.architecture {
                Some(arch) => {
                    let init = dir.join("init");
                    if !init.join("config.json").exists() {
                        let params = crate::base::build_tiny_base(
                            arch,
                            alphabet,
                            config.seed ^ 0x5EED,
                            &init,
                            &device.clone().without_autodiff(),
                        )?;
                        tracing::info!(stage = %stage.name, params, "tiny init");
                    }
                    init
                }
                None => model_dir,
            };
            let data = if stage.data.len() == 1
                && config.datasets.iter().any(|d| d.name == stage.data[0])
            {
                layout.dataset(&stage.data[0], "train")
            } else {
                let path = dir.join("data.jsonl");
                write_samples(&layout.train_samples(&stage.data)?, &path)?;
                path
            };
            let teacher = stage.teacher.as_deref().map(|t| layout.model(t));
            let summary = run_sft(&SftRun {
                model: start,
                data,
                out: dir.clone(),
                config: (**sft).clone(),
                resume,
                device: device.clone(),
                teacher,
                read: ReadOptions {
                    format: Format::PromptCompletion,
                    ..ReadOptions::default()
                },
            })?;
            progress_println(&format!(
                "{} `{}`: {} steps, loss {:.4} ({:.1}s)",
                stage.kind.name(),
                stage.name,
                summary.steps,
                summary.final_loss,
                summary.seconds
            ));
            artifacts.insert("model".into(), Value::String(stage.name.clone()));
            artifacts.insert(
                "metrics".into(),
                Value::String(rel(layout.run, &dir.join("metrics.jsonl"))),
            );
        }
        (StageSettings::Grpo(g), StageKind::Grpo) => {
            let samples = layout.train_samples(&stage.data)?;
            let summary = run_grpo(&GrpoRun {
                model: model_dir,
                samples,
                data_name: stage.data.join("+"),
                rewards: reward_set(config, stage.rewards.as_deref())?,
                out: dir.clone(),
                settings: (**g).clone(),
                resume,
                device: device.clone(),
            })?;
            progress_println(&format!(
                "grpo `{}`: {} steps, reward {:.3} ({:.1}s)",
                stage.name, summary.steps, summary.final_reward, summary.seconds
            ));
            artifacts.insert("model".into(), Value::String(stage.name.clone()));
            artifacts.insert(
                "metrics".into(),
                Value::String(rel(layout.run, &dir.join("metrics.jsonl"))),
            );
        }
        (StageSettings::Sample(s), StageKind::Sample) => {
            let samples = layout.train_samples(&stage.data)?;
            let dev = device.clone().without_autodiff();
            let model = Pretrained::load(&model_dir, None, &dev)?;
            let tok = model.tokenizer.as_ref().ok_or_else(|| {
                PipelineError::Data(format!("{}: no tokenizer.json", model_dir.display()))
            })?;
            let sft = SftConfig {
                prompt_template: s.prompt_template.clone(),
                ..SftConfig::default()
            };
            let out = dir.join("data.jsonl");
            let stats = rejection_sample(
                &model,
                &SftTokenizer::new(tok, &sft),
                &samples,
                &reward_set(config, stage.rewards.as_deref())?,
                &s.settings,
                &out,
                &stage.model,
            )?;
            let mut table = stats.table();
            progress_println(&format!("sample `{}`:\n{}", stage.name, table.trim_end()));
            if !table.ends_with('\n') {
                table.push('\n');
            }
            let stats_path = dir.join("stats.txt");
            r1_model::io::write_atomic(&stats_path, table.as_bytes())
                .map_err(|e| PipelineError::io(&stats_path, e))?;
            if stats.kept == 0 {
                tracing::warn!(stage = %stage.name, seen = stats.seen, "rejection sampling kept nothing");
                progress_println(&format!(
                    "warning: sample `{}` kept no completion of {}; stages reading it get no data from it",
                    stage.name, stats.seen
                ));
            }
            artifacts.insert("data".into(), Value::String(rel(layout.run, &out)));
            artifacts.insert("stats".into(), Value::String(rel(layout.run, &stats_path)));
        }
        (StageSettings::Eval(_), StageKind::Eval) => {}
        _ => {
            return Err(PipelineError::Stage {
                stage: stage.name.clone(),
                message: "settings do not match the kind".into(),
            });
        }
    }
    Ok(artifacts)
}

/// What a finished stage hands back to the scheduler.
struct StageOutput {
    artifacts: Map<String, Value>,
    benchmarks: Vec<String>,
    evals: Vec<EvalRecord>,
}

/// Runs one stage and the evaluations after it.
fn execute_stage(
    layout: &Layout<'_>,
    stage: &Stage,
    alphabet: &[char],
    resume: bool,
    device: &Device,
) -> Result<StageOutput> {
    let config = layout.config;
    let mut artifacts = run_stage(layout, stage, alphabet, resume, device)?;
    let (benchmarks, settings) = match &stage.settings {
        StageSettings::Eval(s) => {
            let b = if stage.benchmarks.is_empty() {
                config.eval.benchmarks.clone()
            } else {
                stage.benchmarks.clone()
            };
            (b, (**s).clone())
        }
        _ if stage.eval => (config.eval.benchmarks.clone(), config.eval.settings.clone()),
        _ => (Vec::new(), config.eval.settings.clone()),
    };
    let mut evals = Vec::new();
    if !benchmarks.is_empty() {
        let model_dir = if stage.kind.makes_model() {
            layout.stage(&stage.name)
        } else {
            layout.model(&stage.model)
        };
        let rewards = if stage.kind == StageKind::Eval {
            stage.rewards.as_deref()
        } else {
            None
        };
        run_evals(
            layout,
            &stage.name,
            &model_dir,
            &benchmarks,
            &settings,
            rewards,
            device,
            &mut evals,
            &mut artifacts,
        )?;
    }
    Ok(StageOutput {
        artifacts,
        benchmarks,
        evals,
    })
}

/// Runs every stage that is not `done`, up to `parallel_stages` at a time, each once the
/// stages it reads are done (config order among the ready ones). Only this thread touches
/// `state` and `run.json`. After a failure no new stage starts; the running ones finish and
/// the first failure is returned.
fn schedule(
    layout: &Layout<'_>,
    alphabet: &[char],
    device: &Device,
    state: &mut RunState,
) -> Result<()> {
    let config = layout.config;
    let run = layout.run;
    let n = config.stages.len();
    let deps: Vec<Vec<usize>> = (0..n).map(|i| config.dependencies(i)).collect();
    let parallel = config.parallel_stages.max(1);
    let pipeline_span = tracing::Span::current();
    let mut launched: Vec<bool> = state
        .stages
        .iter()
        .map(|s| s.status == Status::Done)
        .collect();
    let mut failure: Option<PipelineError> = None;
    std::thread::scope(|scope| -> Result<()> {
        let (tx, rx) = std::sync::mpsc::channel::<(usize, Result<StageOutput>)>();
        let mut running: Vec<usize> = Vec::new();
        loop {
            while failure.is_none() && running.len() < parallel {
                let Some(i) = (0..n).find(|&i| {
                    !launched[i]
                        && deps[i]
                            .iter()
                            .all(|&d| state.stages[d].status == Status::Done)
                }) else {
                    break;
                };
                launched[i] = true;
                let resume = state.stages[i].status != Status::Pending;
                state.stages[i].status = Status::Running;
                if state.stages[i].started.is_none() {
                    state.stages[i].started = Some(now_utc());
                }
                state.write(run)?;
                // A stage started beside an earlier one in the file yields the CPU to it: the
                // teacher's chain (first in the file, the longest) is slowed least.
                let yield_cpu = running.iter().any(|&r| r < i);
                running.push(i);
                let stage = &config.stages[i];
                let tx = tx.clone();
                let parent = pipeline_span.clone();
                scope.spawn(move || {
                    let span = tracing::info_span!(parent: &parent, "stage", name = %stage.name, kind = stage.kind.name());
                    let work = || {
                        let _s = span.entered();
                        if parallel > 1 {
                            set_progress_scope(Some(&stage.name));
                        }
                        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                            execute_stage(layout, stage, alphabet, resume, device)
                        }))
                        .unwrap_or_else(|panic| {
                            Err(PipelineError::Stage {
                                stage: stage.name.clone(),
                                message: r1_rewards::plugin::sdk::panic_message(panic.as_ref()),
                            })
                        })
                    };
                    let result = if yield_cpu {
                        run_yielding(work)
                    } else {
                        work()
                    };
                    // The receiver outlives every sender of this scope.
                    let _ = tx.send((i, result));
                });
            }
            if running.is_empty() {
                break;
            }
            let Ok((i, result)) = rx.recv() else {
                break;
            };
            running.retain(|&r| r != i);
            let name = config.stages[i].name.clone();
            match result {
                Ok(out) => {
                    state
                        .evals
                        .retain(|e| !(e.stage == name && out.benchmarks.contains(&e.benchmark)));
                    state.evals.extend(out.evals);
                    // Config order, whichever stage finished first.
                    state
                        .evals
                        .sort_by_key(|e| config.stages.iter().position(|s| s.name == e.stage));
                    state.stages[i].artifacts = out.artifacts;
                    state.stages[i].status = Status::Done;
                    state.stages[i].finished = Some(now_utc());
                    state.write(run)?;
                    crate::report::write_report(run, state)?;
                }
                Err(e) => {
                    state.stages[i].status = Status::Failed;
                    state.write(run)?;
                    let _ = crate::report::write_report(run, state);
                    if failure.is_none() {
                        failure = Some(match e {
                            e @ PipelineError::Stage { .. } => e,
                            e => PipelineError::Stage {
                                stage: name,
                                message: e.to_string(),
                            },
                        });
                    }
                }
            }
        }
        Ok(())
    })?;
    match failure {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Runs `work` at a lower CPU priority on a one-thread rayon pool of its own: the stage's
/// element-wise work and its matmuls (which would otherwise go to the shared pool at full
/// priority) both yield to the stage it was started beside. A thread-count change alone
/// leaves the numbers as they are (gemm splits rows and columns, not the reduction).
fn run_yielding<T: Send>(work: impl FnOnce() -> T + Send) -> T {
    match rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .thread_name(|_| "r1-stage-low".into())
        .start_handler(|_| lower_thread_priority())
        .build()
    {
        Ok(pool) => pool.install(work),
        Err(e) => {
            tracing::debug!("no thread pool for a yielding stage: {e}");
            lower_thread_priority();
            work()
        }
    }
}

/// Lowers the calling thread's CPU priority (nice 10; Linux threads have their own).
/// Elsewhere a no-op.
fn lower_thread_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: `setpriority` on the calling thread's id changes only that thread's nice value
    // (an error leaves it unchanged).
    if unsafe { libc::setpriority(libc::PRIO_PROCESS, current_tid(), 10) } != 0 {
        tracing::debug!("could not lower a stage thread's priority");
    }
}

/// The calling thread's kernel id, which Linux's priority calls take for one thread.
#[cfg(target_os = "linux")]
fn current_tid() -> libc::id_t {
    // SAFETY: `gettid` takes no arguments and cannot fail.
    unsafe { libc::syscall(libc::SYS_gettid) as libc::id_t }
}

/// Runs (or resumes) a whole pipeline.
pub fn run_pipeline(opts: &TrainOptions) -> Result<RunSummary> {
    let started = Instant::now();
    let config = &opts.config;
    let run = opts.out.as_path();
    let _span = tracing::info_span!("pipeline", run = %run.display()).entered();
    std::fs::create_dir_all(run).map_err(|e| PipelineError::io(run, e))?;
    let fresh = RunState {
        config: config.resolved.clone(),
        stages: config
            .stages
            .iter()
            .map(|s| StageState {
                name: s.name.clone(),
                kind: s.kind.name().into(),
                status: Status::Pending,
                started: None,
                finished: None,
                artifacts: Map::new(),
            })
            .collect(),
        evals: Vec::new(),
    };
    let mut state = if opts.resume && run.join("run.json").exists() {
        let old = RunState::read(run)?;
        let names_old: Vec<&str> = old.stages.iter().map(|s| s.name.as_str()).collect();
        let names_new: Vec<&str> = fresh.stages.iter().map(|s| s.name.as_str()).collect();
        if names_old != names_new {
            return Err(PipelineError::Data(format!(
                "{}: the run's stages ({}) differ from the config's ({}); resume with the run's \
                 own config.toml",
                run.join("run.json").display(),
                names_old.join(", "),
                names_new.join(", ")
            )));
        }
        old
    } else {
        if run.join("run.json").exists() {
            return Err(PipelineError::Data(format!(
                "{} already holds a run; pass --resume to continue it or choose another --out",
                run.display()
            )));
        }
        fresh
    };
    let cfg_path = run.join("config.toml");
    r1_model::io::write_atomic(&cfg_path, config.resolved_toml.as_bytes())
        .map_err(|e| PipelineError::io(&cfg_path, e))?;
    state.write(run)?;

    let layout = Layout { run, config };
    let texts = materialise(&layout)?;
    let alphabet = crate::base::alphabet(texts.iter().map(String::as_str));
    if let Base::Tiny(arch) = &config.base {
        let base = run.join("base");
        if !base.join("config.json").exists() {
            let params = crate::base::build_tiny_base(
                arch,
                &alphabet,
                config.seed,
                &base,
                &opts.device.clone().without_autodiff(),
            )?;
            eprintln!(
                "tiny base: {params} parameters, {} symbols -> {}",
                alphabet.len() + crate::base::SPECIAL.len() + crate::base::TAGS.len(),
                base.display()
            );
        }
    }

    schedule(&layout, &alphabet, &opts.device, &mut state)?;
    crate::report::write_report(run, &state)?;
    Ok(RunSummary {
        out: run.to_path_buf(),
        state,
        seconds: started.elapsed().as_secs_f64(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_yielding_stage_runs_on_one_low_priority_thread_of_its_own() {
        let caller = std::thread::current().id();
        let caller_nice = current_nice();
        let (threads, other, name, nice) = run_yielding(|| {
            (
                rayon::current_num_threads(),
                std::thread::current().id() != caller,
                std::thread::current().name().map(str::to_string),
                current_nice(),
            )
        });
        assert_eq!(
            threads, 1,
            "the stage's matmuls must not reach the shared pool"
        );
        assert!(
            other,
            "the work runs on the pool's thread, not the caller's"
        );
        assert_eq!(name.as_deref(), Some("r1-stage-low"));
        if cfg!(target_os = "linux") {
            assert!(nice >= 10, "the pool's thread runs at nice 10, got {nice}");
            assert_eq!(current_nice(), caller_nice, "the caller keeps its priority");
        }
    }

    fn current_nice() -> i32 {
        #[cfg(target_os = "linux")]
        // SAFETY: `getpriority` only reads the calling thread's nice value.
        unsafe {
            libc::getpriority(libc::PRIO_PROCESS, current_tid())
        }
        #[cfg(not(target_os = "linux"))]
        0
    }

    #[test]
    fn timestamps_are_rfc3339_and_subtract() {
        let t = now_utc();
        assert_eq!(t.len(), 24, "{t}");
        assert!(t.ends_with('Z') && t.as_bytes()[10] == b'T');
        let d = seconds_between("2026-12-31T23:59:59.000Z", "2027-01-01T00:00:01.500Z")
            .expect("parses");
        assert!((d - 2.5).abs() < 1e-9, "{d}");
        let d = seconds_between("2024-02-28T00:00:00.000Z", "2024-03-01T00:00:00.000Z")
            .expect("parses");
        assert!((d - 2.0 * 86_400.0).abs() < 1e-9, "leap day: {d}");
    }

    #[test]
    fn records_normalise_to_prompt_completion() {
        let s = Sample {
            id: "a:1".into(),
            prompt: Content::Text("1+2=".into()),
            completion: Some(Content::Text("<think>x</think><answer>3</answer>".into())),
            reasoning: None,
            final_answer: None,
            answers: vec!["3".into()],
            record: serde_json::from_value(json!({"task": "arithmetic", "question": "q"}))
                .expect("map"),
        };
        let dir = std::env::temp_dir().join(format!("r1-norm-{}", std::process::id()));
        let path = dir.join("x.jsonl");
        write_samples(std::slice::from_ref(&s), &path).expect("write");
        let back = read_samples(&path).expect("read");
        assert_eq!(back[0].id, "a:1");
        assert_eq!(back[0].prompt, s.prompt);
        assert_eq!(back[0].completion, s.completion);
        assert_eq!(back[0].answers, s.answers);
        assert_eq!(back[0].record.get("task"), Some(&json!("arithmetic")));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_subset_is_a_prefix_of_its_dataset_with_its_held_out_split() {
        let text = "[base]\nhidden_size = 32\n\n\
            [datasets.cold]\nsubset = \"arith\"\ntrain = 7\n\n\
            [datasets.arith]\ntask = \"arithmetic\"\ntrain = 30\neval = 5\n\n\
            [[stage]]\nname = \"s\"\nkind = \"pretrain\"\ndata = \"cold\"\nmax_steps = 1\n";
        let config = crate::config::from_str(text, Path::new("t.toml"), &[]).expect("parses");
        let dir = std::env::temp_dir().join(format!("r1-subset-{}", std::process::id()));
        let layout = Layout {
            run: &dir,
            config: &config,
        };
        materialise(&layout).expect("materialises");
        let read = |name: &str, split: &str| {
            read_samples(&layout.dataset(name, split))
                .expect("read")
                .into_iter()
                .map(|s| s.prompt.to_plain_text())
                .collect::<Vec<_>>()
        };
        let (arith, cold) = (read("arith", "train"), read("cold", "train"));
        assert_eq!((arith.len(), cold.len()), (30, 7));
        assert_eq!(cold[..], arith[..7]);
        assert_eq!(read("cold", "eval"), read("arith", "eval"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
