//! The decode loop of `r1 serve`: one thread owns the model and a [`ContinuousBatch`]; requests
//! arrive over a channel, join between decode steps and stream their tokens back. A sequence
//! whose receiver is gone (the client disconnected) is dropped before the next step.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender};

use anyhow::{Context, Result, bail};
use burn::tensor::{DType, Device};
use r1::model::{ContinuousBatch, Pretrained, SeqId, SeqParams, TokenEvent, Tokenizer};
use tokio::sync::{mpsc, oneshot};

/// What the engine sends back for a sequence.
#[derive(Debug)]
pub enum Update {
    /// A token (the last one carries `finish`).
    Token(TokenEvent),
    /// The sequence failed.
    Error(String),
}

/// One sequence to generate; `reply` receives its updates.
#[derive(Debug)]
pub struct Submission {
    /// Handle shared with the updates.
    pub id: SeqId,
    /// What to generate.
    pub params: SeqParams,
    /// Where updates go.
    pub reply: mpsc::UnboundedSender<Update>,
}

/// A swapped-in checkpoint: its folder and tokenizer.
#[derive(Debug)]
pub struct Loaded {
    /// The folder.
    pub folder: PathBuf,
    /// Its tokenizer.
    pub tokenizer: Arc<Tokenizer>,
}

/// Commands to the engine thread.
#[derive(Debug)]
pub enum Command {
    /// Sequences to queue.
    Submit(Vec<Submission>),
    /// Swap the weights once the running sequences have finished.
    LoadWeights {
        /// Checkpoint folder.
        path: PathBuf,
        /// The outcome.
        reply: oneshot::Sender<Result<Loaded, String>>,
    },
}

/// Settings of the engine.
#[derive(Debug, Clone)]
pub struct EngineSettings {
    /// Sequences decoded together at most.
    pub max_batch: usize,
    /// Tokens per sequence (prompt plus completion); default: the model's
    /// `max_position_embeddings`, at most 4096.
    pub max_model_len: Option<usize>,
    /// Weights dtype.
    pub dtype: Option<DType>,
}

/// Sequences queued and not yet running, shared with the HTTP side for the 429 check.
pub type QueueDepth = Arc<AtomicUsize>;

/// Loads `folder` and runs the engine on a thread of its own. Returns once the model has loaded
/// (or failed to), with the command channel.
pub fn spawn(
    folder: PathBuf,
    device: Device,
    settings: EngineSettings,
    queued: QueueDepth,
) -> Result<(Sender<Command>, ModelInfo)> {
    let (tx, rx) = std::sync::mpsc::channel::<Command>();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<ModelInfo, String>>();
    std::thread::Builder::new()
        .name("r1-engine".into())
        .spawn(move || {
            let (pretrained, tokenizer) = match load(&folder, settings.dtype, &device) {
                Ok(loaded) => loaded,
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                    return;
                }
            };
            let max_model_len = settings
                .max_model_len
                .unwrap_or_else(|| pretrained.model.config().max_position_embeddings.min(4096));
            let info = ModelInfo {
                eos_token_ids: pretrained.eos_token_ids(),
                max_model_len,
                tokenizer: tokenizer.clone(),
            };
            let _ = ready_tx.send(Ok(info));
            Engine::new(
                pretrained,
                tokenizer,
                max_model_len,
                device,
                settings,
                queued,
            )
            .run(rx);
        })
        .context("could not start the engine thread")?;
    match ready_rx.recv() {
        Ok(Ok(info)) => Ok((tx, info)),
        Ok(Err(e)) => bail!("{e}"),
        Err(_) => bail!("the engine thread stopped while loading the model"),
    }
}

/// What the HTTP side needs to know of the loaded model.
#[derive(Debug, Clone)]
pub struct ModelInfo {
    /// Ids that end a completion.
    pub eos_token_ids: Vec<u32>,
    /// Tokens per sequence, resolved.
    pub max_model_len: usize,
    /// The checkpoint's tokenizer (shared with the engine, which checks stop strings with it).
    pub tokenizer: Arc<Tokenizer>,
}

/// Loads a checkpoint and takes its tokenizer out to share it; serving needs one.
fn load(
    folder: &std::path::Path,
    dtype: Option<DType>,
    device: &Device,
) -> Result<(Pretrained, Arc<Tokenizer>), String> {
    let mut pretrained = Pretrained::load(folder, dtype, device)
        .map_err(|e| format!("{}: {e}", folder.display()))?;
    let tokenizer = pretrained
        .tokenizer
        .take()
        .ok_or_else(|| format!("{}: serving needs tokenizer.json", folder.display()))?;
    Ok((pretrained, Arc::new(tokenizer)))
}

struct Engine {
    model: Pretrained,
    /// The model's tokenizer, taken out of `model` to be shared with the HTTP side.
    tokenizer: Arc<Tokenizer>,
    device: Device,
    settings: EngineSettings,
    batch: ContinuousBatch,
    waiting: VecDeque<Submission>,
    running: HashMap<SeqId, mpsc::UnboundedSender<Update>>,
    pending_load: Option<(PathBuf, oneshot::Sender<Result<Loaded, String>>)>,
    queued: QueueDepth,
}

impl Engine {
    fn new(
        model: Pretrained,
        tokenizer: Arc<Tokenizer>,
        max_model_len: usize,
        device: Device,
        settings: EngineSettings,
        queued: QueueDepth,
    ) -> Self {
        let batch = ContinuousBatch::new(max_model_len, model.pad_token_id());
        Self {
            model,
            tokenizer,
            device,
            settings,
            batch,
            waiting: VecDeque::new(),
            running: HashMap::new(),
            pending_load: None,
            queued,
        }
    }

    fn run(mut self, rx: Receiver<Command>) {
        loop {
            let idle = self.batch.is_empty() && self.waiting.is_empty();
            if idle && self.pending_load.is_none() {
                // Nothing to do: block until a command comes (or every sender is gone).
                match rx.recv() {
                    Ok(cmd) => self.accept(cmd),
                    Err(_) => return,
                }
            }
            while let Ok(cmd) = rx.try_recv() {
                self.accept(cmd);
            }
            self.drop_abandoned();
            if self.pending_load.is_some() && self.batch.is_empty() {
                self.load_weights();
            }
            if self.pending_load.is_none() {
                self.admit();
            }
            self.step();
        }
    }

    fn accept(&mut self, cmd: Command) {
        match cmd {
            Command::Submit(subs) => self.waiting.extend(subs),
            Command::LoadWeights { path, reply } => {
                if let Some((_, earlier)) = self.pending_load.take() {
                    let _ = earlier.send(Err("superseded by a later load_weights".into()));
                }
                self.pending_load = Some((path, reply));
            }
        }
    }

    /// Drops queued and running sequences whose clients went away.
    fn drop_abandoned(&mut self) {
        let before = self.waiting.len();
        self.waiting.retain(|s| !s.reply.is_closed());
        self.queued
            .fetch_sub(before - self.waiting.len(), Ordering::SeqCst);
        let gone: Vec<SeqId> = self
            .running
            .iter()
            .filter(|(_, tx)| tx.is_closed())
            .map(|(id, _)| *id)
            .collect();
        for id in gone {
            self.running.remove(&id);
            if let Err(e) = self.batch.cancel(id) {
                tracing::warn!("dropping sequence {id}: {e}");
            }
            tracing::debug!(id, "client went away: sequence dropped");
        }
    }

    fn admit(&mut self) {
        let room = self.settings.max_batch.saturating_sub(self.batch.len());
        let n = room.min(self.waiting.len());
        if n == 0 {
            return;
        }
        let subs: Vec<Submission> = self.waiting.drain(..n).collect();
        self.queued.fetch_sub(n, Ordering::SeqCst);
        let mut new = Vec::with_capacity(n);
        for s in subs {
            if let Err(e) = self.batch.check(&s.params) {
                let _ = s.reply.send(Update::Error(e.to_string()));
                continue;
            }
            self.running.insert(s.id, s.reply);
            new.push((s.id, s.params));
        }
        let ids: Vec<SeqId> = new.iter().map(|(id, _)| *id).collect();
        match self
            .batch
            .admit(&self.model.model, new, Some(&self.tokenizer))
        {
            Ok(events) => self.deliver(events),
            Err(e) => self.fail(&ids, &e.to_string()),
        }
    }

    fn step(&mut self) {
        if self.batch.is_empty() {
            return;
        }
        match self.batch.step(&self.model.model, Some(&self.tokenizer)) {
            Ok(events) => self.deliver(events),
            Err(e) => {
                let ids = self.batch.ids();
                for id in &ids {
                    let _ = self.batch.cancel(*id);
                }
                self.fail(&ids, &e.to_string());
            }
        }
    }

    fn deliver(&mut self, events: Vec<TokenEvent>) {
        for e in events {
            let id = e.id;
            let last = e.finish.is_some();
            let sent = self
                .running
                .get(&id)
                .is_some_and(|tx| tx.send(Update::Token(e)).is_ok());
            if last {
                self.running.remove(&id);
            } else if !sent {
                self.running.remove(&id);
                let _ = self.batch.cancel(id);
            }
        }
    }

    fn fail(&mut self, ids: &[SeqId], message: &str) {
        tracing::error!("generation failed: {message}");
        for id in ids {
            if let Some(tx) = self.running.remove(id) {
                let _ = tx.send(Update::Error(message.to_string()));
            }
        }
    }

    /// Swaps in the pending checkpoint (the batch is empty: in-flight sequences finished on the
    /// old weights).
    fn load_weights(&mut self) {
        let Some((path, reply)) = self.pending_load.take() else {
            return;
        };
        let _span = tracing::info_span!("load_weights", path = %path.display()).entered();
        let outcome = (|| -> Result<Loaded, String> {
            if !path.is_dir() {
                return Err(format!("{}: not a folder", path.display()));
            }
            let (new, tokenizer) = load(&path, self.settings.dtype, &self.device)?;
            let (a, b) = (self.model.model.config(), new.model.config());
            let same = a.architecture == b.architecture
                && a.vocab_size == b.vocab_size
                && a.hidden_size == b.hidden_size
                && a.intermediate_size == b.intermediate_size
                && a.num_hidden_layers == b.num_hidden_layers
                && a.num_attention_heads == b.num_attention_heads
                && a.num_key_value_heads == b.num_key_value_heads
                && a.head_dim == b.head_dim;
            if !same {
                return Err(format!(
                    "{}: a different architecture ({:?}, {} layers, hidden {}, vocab {}) from the \
                     served model ({:?}, {} layers, hidden {}, vocab {})",
                    path.display(),
                    b.architecture,
                    b.num_hidden_layers,
                    b.hidden_size,
                    b.vocab_size,
                    a.architecture,
                    a.num_hidden_layers,
                    a.hidden_size,
                    a.vocab_size
                ));
            }
            self.model = new;
            self.tokenizer = tokenizer.clone();
            Ok(Loaded {
                folder: path.clone(),
                tokenizer,
            })
        })();
        match &outcome {
            Ok(_) => tracing::info!("weights swapped in from {}", path.display()),
            Err(e) => tracing::warn!("load_weights refused: {e}"),
        }
        let _ = reply.send(outcome);
    }
}
