//! The training machinery every r1 trainer shares (GRPO here, SFT and distillation in
//! `r1-distill`): AdamW with PyTorch's defaults, global-norm clipping, the learning-rate
//! schedule, atomic checkpoints that resume exactly, and JSONL metrics. One copy, so a fix to
//! any of them reaches every trainer.

use std::path::{Path, PathBuf};

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::optim::{AdamWConfig, GradientsParams, ModuleOptimizer};
use burn::tensor::{DType, Tensor};
use r1_model::weights::SafetensorsWeights;
use r1_model::{CausalLm, GenerationDefaults, ModelConfig, Tokenizer, save_pretrained};
use serde_json::{Map, Value};

use crate::error::{GrpoError, Result};
use crate::schedule::{LrSchedule, learning_rate_with_floor};

/// Optimiser settings, with transformers' `TrainingArguments` names.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OptimSettings {
    /// `learning_rate`: the peak learning rate.
    pub learning_rate: f64,
    /// `weight_decay`: AdamW's decoupled weight decay (transformers' default 0).
    pub weight_decay: f32,
    /// `adam_beta1`, `adam_beta2` (PyTorch's 0.9, 0.999).
    pub adam_betas: (f32, f32),
    /// `adam_epsilon` (PyTorch's 1e-8; Burn's default 1e-5 is not used).
    pub adam_epsilon: f32,
    /// `max_grad_norm`: global L2 clipping (0 turns it off; transformers' default 1.0).
    pub max_grad_norm: f64,
    /// `lr_scheduler_type`.
    pub lr_scheduler_type: LrSchedule,
    /// Warm-up optimiser steps.
    pub warmup_steps: u64,
    /// Optimiser steps the linear and cosine schedules decay over.
    pub max_steps: u64,
    /// Floor of the cosine schedule as a fraction of `learning_rate` (transformers'
    /// `cosine_with_min_lr`'s `min_lr_rate`; 0 decays to 0).
    pub min_lr_rate: f64,
}

impl OptimSettings {
    /// Checks every field; the error names the field.
    pub fn validate(&self) -> Result<()> {
        let bad = |field: &str, message: &str| Err(GrpoError::config(field, message));
        if !(self.learning_rate >= 0.0 && self.learning_rate.is_finite()) {
            return bad("learning_rate", "must be a finite number >= 0");
        }
        if self.max_grad_norm.is_nan() || self.max_grad_norm < 0.0 {
            return bad("max_grad_norm", "must be >= 0 (0 turns clipping off)");
        }
        if !(self.weight_decay >= 0.0 && self.weight_decay.is_finite()) {
            return bad("weight_decay", "must be a finite number >= 0");
        }
        if !(0.0..1.0).contains(&self.adam_betas.0) {
            return bad("adam_beta1", "must be in [0, 1)");
        }
        if !(0.0..1.0).contains(&self.adam_betas.1) {
            return bad("adam_beta2", "must be in [0, 1)");
        }
        if self.adam_epsilon.is_nan() || self.adam_epsilon <= 0.0 {
            return bad("adam_epsilon", "must be positive");
        }
        if !(0.0..=1.0).contains(&self.min_lr_rate) {
            return bad("min_lr_rate", "must be in [0, 1]");
        }
        if self.lr_scheduler_type != LrSchedule::Constant && self.max_steps == 0 {
            return bad(
                "max_steps",
                "the linear and cosine schedules decay over max_steps: set it",
            );
        }
        Ok(())
    }
}

/// What one optimiser step did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepInfo {
    /// Global gradient norm before clipping (`grad_norm`).
    pub grad_norm: f64,
    /// Learning rate the step used (`learning_rate`).
    pub learning_rate: f64,
}

/// AdamW plus the step counter that drives the schedule.
pub struct Optimizer {
    optim: ModuleOptimizer,
    settings: OptimSettings,
    step: u64,
}

impl std::fmt::Debug for Optimizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Optimizer")
            .field("settings", &self.settings)
            .field("step", &self.step)
            .finish()
    }
}

impl Optimizer {
    /// A fresh AdamW at step 0.
    pub fn new(settings: OptimSettings) -> Result<Self> {
        settings.validate()?;
        let optim = AdamWConfig::new()
            .with_beta_1(settings.adam_betas.0)
            .with_beta_2(settings.adam_betas.1)
            .with_epsilon(settings.adam_epsilon)
            .with_weight_decay(settings.weight_decay)
            .init();
        Ok(Self {
            optim,
            settings,
            step: 0,
        })
    }

    /// Optimiser steps taken.
    pub fn global_step(&self) -> u64 {
        self.step
    }

    /// The settings.
    pub fn settings(&self) -> &OptimSettings {
        &self.settings
    }

    /// The learning rate the next step will use.
    pub fn next_learning_rate(&self) -> f64 {
        let s = &self.settings;
        learning_rate_with_floor(
            s.learning_rate,
            self.step,
            s.warmup_steps,
            s.max_steps,
            s.lr_scheduler_type,
            s.min_lr_rate,
        )
    }

    /// Clips `grads` to `max_grad_norm` and takes one AdamW step at the schedule's learning
    /// rate. The model always comes back: on a non-finite gradient norm it comes back untouched
    /// with the error.
    pub fn step(
        &mut self,
        model: CausalLm,
        mut grads: GradientsParams,
    ) -> (CausalLm, Result<StepInfo>) {
        let grad_norm = clip_global_norm(&model, &mut grads, self.settings.max_grad_norm);
        if !grad_norm.is_finite() {
            return (
                model,
                Err(GrpoError::Backend(format!(
                    "the gradient norm is {grad_norm}: not updating the weights"
                ))),
            );
        }
        let lr = self.next_learning_rate();
        let model = self.optim.step(lr, model, grads);
        self.step += 1;
        (
            model,
            Ok(StepInfo {
                grad_norm,
                learning_rate: lr,
            }),
        )
    }
}

struct SquaredNorm<'a> {
    grads: &'a GradientsParams,
    total: f64,
}

impl ModuleVisitor for SquaredNorm<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(g) = self.grads.get::<D>(param.id) {
            let s: f32 = g.square().sum().into_scalar();
            self.total += s as f64;
        }
    }
}

struct Scale<'a> {
    grads: &'a mut GradientsParams,
    factor: f64,
}

impl ModuleVisitor for Scale<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(g) = self.grads.remove::<D>(param.id) {
            self.grads.register::<D>(param.id, g * self.factor);
        }
    }
}

/// Clips gradients to a global L2 norm of `max_norm` (PyTorch's `clip_grad_norm_`, which Burn's
/// per-tensor clipping is not) and returns the norm before clipping.
pub fn clip_global_norm<M: Module>(model: &M, grads: &mut GradientsParams, max_norm: f64) -> f64 {
    let mut norm = SquaredNorm { grads, total: 0.0 };
    model.visit(&mut norm);
    let total = norm.total.sqrt();
    if max_norm > 0.0 && total > max_norm {
        let mut scale = Scale {
            grads,
            factor: max_norm / (total + 1e-6),
        };
        model.visit(&mut scale);
    }
    total
}

struct CollectIds(Vec<u64>);

impl ModuleVisitor for CollectIds {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        self.0.push(param.id.val());
    }
}

/// Gives a freshly loaded model the parameter ids of the run it resumes, in visiting order, so
/// that the optimiser state (keyed by id) applies to the same tensors.
struct AssignIds {
    ids: Vec<u64>,
    next: usize,
}

impl ModuleMapper for AssignIds {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let (id, value, mapper) = param.consume();
        let id = self.ids.get(self.next).map_or(id, |v| ParamId::from(*v));
        self.next += 1;
        Param::from_mapped_value(id, value, mapper)
    }
}

fn io(path: &Path, e: impl std::fmt::Display) -> GrpoError {
    GrpoError::Backend(format!("{}: {e}", path.display()))
}

fn backend(e: impl std::fmt::Display) -> GrpoError {
    GrpoError::Backend(e.to_string())
}

/// Loads a Hugging Face folder written by [`save_checkpoint`] (or any r1/transformers folder)
/// in the dtype its config names.
pub fn load_model_folder(folder: &Path, device: &burn::tensor::Device) -> Result<CausalLm> {
    let config = ModelConfig::from_file(folder.join("config.json")).map_err(backend)?;
    let mut weights = SafetensorsWeights::open(folder).map_err(backend)?;
    let dtype = match config.torch_dtype.as_deref() {
        Some(d) => r1_model::parse_dtype(d).map_err(backend)?,
        None => DType::F32,
    };
    CausalLm::from_source(&config, &mut weights, dtype, device).map_err(backend)
}

/// Writes a checkpoint folder: `policy/` (a Hugging Face folder with `tokenizer`, in the
/// model's dtype so nothing is rounded), one more folder per entry of `others` (e.g. the GRPO
/// reference model), `optimizer.bpk` (AdamW moments) and `trainer_state.json` (the step, the
/// parameter ids, and the caller's `extra` fields such as its data cursor). The folder is
/// written under a temporary name and renamed into place, so a crash leaves either the previous
/// checkpoint or the new one, never half of one.
pub fn save_checkpoint(
    dir: &Path,
    policy: &CausalLm,
    tokenizer: Option<&Tokenizer>,
    others: &[(&str, &CausalLm)],
    optimizer: &Optimizer,
    extra: Map<String, Value>,
) -> Result<()> {
    let _s = tracing::info_span!("checkpoint", step = optimizer.step).entered();
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "checkpoint".into());
    let parent = dir.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(|e| io(parent, e))?;
    let tmp = parent.join(format!(".{name}.tmp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let defaults = GenerationDefaults::default();
    save_pretrained(policy, tokenizer, &defaults, &tmp.join("policy"), None).map_err(backend)?;
    for (folder, model) in others {
        save_pretrained(model, None, &defaults, &tmp.join(folder), None).map_err(backend)?;
    }
    let bytes = optimizer
        .optim
        .into_bytes()
        .map_err(|e| backend(format!("optimizer state: {e:?}")))?;
    std::fs::write(tmp.join("optimizer.bpk"), &bytes[..]).map_err(|e| io(&tmp, e))?;
    let mut ids = CollectIds(Vec::new());
    policy.visit(&mut ids);
    let mut state = extra;
    state.insert("global_step".into(), optimizer.step.into());
    state.insert("param_ids".into(), ids.0.into());
    state.insert("format".into(), 1.into());
    std::fs::write(
        tmp.join("trainer_state.json"),
        Value::Object(state).to_string(),
    )
    .map_err(|e| io(&tmp, e))?;
    let old = parent.join(format!(".{name}.old-{}", std::process::id()));
    if dir.exists() {
        std::fs::rename(dir, &old).map_err(|e| io(dir, e))?;
    }
    std::fs::rename(&tmp, dir).map_err(|e| io(dir, e))?;
    let _ = std::fs::remove_dir_all(&old);
    Ok(())
}

/// What [`load_checkpoint`] read back.
#[derive(Debug)]
pub struct Checkpoint {
    /// The policy, on the given device, with the saved parameter ids.
    pub policy: CausalLm,
    /// AdamW with its moments and step count restored.
    pub optimizer: Optimizer,
    /// The caller's fields of `trainer_state.json`.
    pub extra: Map<String, Value>,
    /// The checkpoint folder.
    pub dir: PathBuf,
}

/// Reads [`save_checkpoint`]'s folder back: the policy on `device`, AdamW (built from
/// `settings`, with the saved moments and step), and the extra state fields.
pub fn load_checkpoint(
    dir: &Path,
    settings: OptimSettings,
    device: &burn::tensor::Device,
) -> Result<Checkpoint> {
    let state_path = dir.join("trainer_state.json");
    let text = std::fs::read_to_string(&state_path).map_err(|e| io(&state_path, e))?;
    let state: Value = serde_json::from_str(&text).map_err(|e| io(&state_path, e))?;
    let Value::Object(mut state) = state else {
        return Err(io(&state_path, "not a JSON object"));
    };
    let step = state
        .remove("global_step")
        .and_then(|v| v.as_u64())
        .ok_or_else(|| io(&state_path, "missing `global_step`"))?;
    let ids: Vec<u64> = state
        .remove("param_ids")
        .and_then(|v| {
            v.as_array()
                .map(|a| a.iter().filter_map(Value::as_u64).collect())
        })
        .ok_or_else(|| io(&state_path, "missing `param_ids`"))?;
    state.remove("format");
    let model = load_model_folder(&dir.join("policy"), device)?;
    let mut check = CollectIds(Vec::new());
    model.visit(&mut check);
    if check.0.len() != ids.len() {
        return Err(io(
            &state_path,
            format!(
                "{} parameter ids for a model with {}",
                ids.len(),
                check.0.len()
            ),
        ));
    }
    let policy = model.map(&mut AssignIds { ids, next: 0 });
    let mut optimizer = Optimizer::new(settings)?;
    let opt_path = dir.join("optimizer.bpk");
    let bytes = std::fs::read(&opt_path).map_err(|e| io(&opt_path, e))?;
    let fresh = std::mem::replace(&mut optimizer.optim, AdamWConfig::new().init());
    optimizer.optim = fresh
        .from_bytes(burn::tensor::Bytes::from_bytes_vec(bytes))
        .map_err(|e| io(&opt_path, format!("{e:?}")))?;
    optimizer.step = step;
    Ok(Checkpoint {
        policy,
        optimizer,
        extra: state,
        dir: dir.to_path_buf(),
    })
}

/// Appends one JSON object per line to a metrics file (created on first write).
#[derive(Debug, Clone)]
pub struct MetricsLog {
    path: PathBuf,
}

impl MetricsLog {
    /// A log at `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `record` as one line and logs it at `info` under the `metrics` target.
    pub fn write(&self, record: &Value) -> Result<()> {
        use std::io::Write;
        tracing::info!(target: "metrics", "{record}");
        if let Some(parent) = self.path.parent()
            && !parent.as_os_str().is_empty()
        {
            std::fs::create_dir_all(parent).map_err(|e| io(parent, e))?;
        }
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(|e| io(&self.path, e))?;
        writeln!(f, "{record}").map_err(|e| io(&self.path, e))
    }

    /// Drops the lines whose `step` is above `step` (after resuming from that step, so the
    /// file holds each step once).
    pub fn truncate_after(&self, step: u64) -> Result<()> {
        let Ok(text) = std::fs::read_to_string(&self.path) else {
            return Ok(());
        };
        let kept: String = text
            .lines()
            .filter(|l| {
                serde_json::from_str::<Value>(l)
                    .ok()
                    .and_then(|v| v.get("step").and_then(Value::as_u64))
                    .is_none_or(|s| s <= step)
            })
            .flat_map(|l| [l, "\n"])
            .collect();
        r1_model::io::write_atomic(&self.path, kept.as_bytes()).map_err(backend)
    }
}

thread_local! {
    static PROGRESS_SCOPE: std::cell::RefCell<Option<String>> =
        const { std::cell::RefCell::new(None) };
}

/// Bars being drawn on a terminal: `(id, line)` in the order they started.
static ACTIVE_BARS: std::sync::Mutex<Vec<(u64, String)>> = std::sync::Mutex::new(Vec::new());
static NEXT_BAR: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Names the bars that this thread starts from now on (`None`: no name). A pipeline that runs
/// stages side by side labels each stage's bars with the stage's name.
pub fn set_progress_scope(name: Option<&str>) {
    PROGRESS_SCOPE.with(|s| *s.borrow_mut() = name.map(str::to_string));
}

fn active_bars() -> std::sync::MutexGuard<'static, Vec<(u64, String)>> {
    ACTIVE_BARS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The live bars on one terminal line.
fn draw_bars(bars: &[(u64, String)]) {
    let line: Vec<&str> = bars.iter().map(|(_, l)| l.as_str()).collect();
    eprint!("\r{}\x1b[K", line.join("  |  "));
}

/// Prints a line on stderr without tearing the live progress bars: they are cleared, the
/// line is printed, and they are drawn again below it.
pub fn progress_println(message: &str) {
    use std::io::IsTerminal;
    let bars = active_bars();
    if bars.is_empty() || !std::io::stderr().is_terminal() {
        eprintln!("{message}");
        return;
    }
    eprintln!("\r\x1b[K{message}");
    draw_bars(&bars);
}

/// A progress line on stderr for long runs: steps, a bar, tokens per second and the time left.
/// On a terminal it redraws one line (bars of stages running side by side share it);
/// otherwise it prints a line every tenth of the run.
#[derive(Debug)]
pub struct Progress {
    id: u64,
    label: String,
    total: u64,
    start: std::time::Instant,
    first: u64,
    tokens: u64,
    tty: bool,
    last_tenth: u64,
    enabled: bool,
}

impl Progress {
    /// A bar for `total` steps, of which `done` are already behind (a resumed run).
    pub fn new(label: &str, total: u64, done: u64) -> Self {
        use std::io::IsTerminal;
        let label = match PROGRESS_SCOPE.with(|s| s.borrow().clone()) {
            Some(scope) => format!("{scope}: {label}"),
            None => label.to_string(),
        };
        Self {
            id: NEXT_BAR.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            label,
            total: total.max(1),
            start: std::time::Instant::now(),
            first: done,
            tokens: 0,
            tty: std::io::stderr().is_terminal(),
            last_tenth: done * 10 / total.max(1),
            enabled: std::env::var_os("R1_NO_PROGRESS").is_none(),
        }
    }

    /// Records step `step` (1-based) with `tokens` processed in it and a short status.
    pub fn update(&mut self, step: u64, tokens: u64, status: &str) {
        self.tokens += tokens;
        if !self.enabled {
            return;
        }
        let secs = self.start.elapsed().as_secs_f64().max(1e-9);
        let done = step.saturating_sub(self.first).max(1);
        let left = (self.total.saturating_sub(step)) as f64 * secs / done as f64;
        let tps = self.tokens as f64 / secs;
        let width = 24usize;
        let filled = ((step as f64 / self.total as f64) * width as f64).round() as usize;
        let bar: String = (0..width)
            .map(|i| if i < filled.min(width) { '#' } else { '.' })
            .collect();
        let line = format!(
            "{} [{bar}] {step}/{} {status} | {tps:.0} tok/s | ETA {}",
            self.label,
            self.total,
            format_duration(left)
        );
        if self.tty {
            let mut bars = active_bars();
            bars.retain(|(id, _)| *id != self.id);
            if step >= self.total {
                // Finished: the bar's last state stays on its own line above the live ones.
                eprintln!("\r{line}\x1b[K");
                if !bars.is_empty() {
                    draw_bars(&bars);
                }
            } else {
                let at = bars.partition_point(|(id, _)| *id < self.id);
                bars.insert(at, (self.id, line));
                draw_bars(&bars);
            }
        } else {
            let tenth = step * 10 / self.total;
            if tenth > self.last_tenth || step >= self.total {
                self.last_tenth = tenth;
                eprintln!("{line}");
            }
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if self.tty {
            active_bars().retain(|(id, _)| *id != self.id);
        }
    }
}

/// `1h02m`, `3m05s`, `42s`.
pub fn format_duration(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
    } else if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}
