//! The SFT step, as transformers' `Trainer` + TRL's `SFTTrainer` compute it.
//!
//! The loss is the causal-LM cross-entropy: position `p` predicts token `p + 1`, only label
//! tokens count, and each micro-batch's summed `-log p` is divided by the label tokens of the
//! whole optimiser step (transformers' `num_items_in_batch`), so `gradient_accumulation_steps`
//! micro-batches give exactly the step of one batch that holds them all. Cross-entropy goes
//! through r1-grpo's fused head + log-softmax on the label positions only: no
//! `[tokens, vocab]` tensor is kept for backward.
//!
//! With a teacher, the KD term (forward or reverse KL at a temperature) is mixed in:
//! `(1 - kd_alpha) * ce + kd_alpha * T^2 * kl`, token-averaged like the CE. Its gradient is
//! computed a chunk of rows at a time and applied through a surrogate, so neither model's
//! `[tokens, vocab]` logits are kept for backward.

use burn::module::Module;
use burn::optim::{GradientsAccumulator, GradientsParams};
use burn::tensor::{DType, Int, Tensor, TensorData, activation};
use r1_grpo::logprobs::{LogProbImpl, chunk_rows_for, token_logprobs};
use r1_grpo::{OptimSettings, Optimizer};
use r1_model::model::read_f32;
use r1_model::{Batch, CausalLm};

use crate::config::KdDivergence;
use crate::error::{DistillError, Result};
use crate::tokenize::Example;

/// One micro-batch: rows of sequences. Without packing each row holds one sequence; packed
/// rows hold several, which never attend to each other.
#[derive(Debug, Clone, Default)]
pub struct MicroBatch {
    /// `rows[r]`: the sequences packed into row `r`.
    pub rows: Vec<Vec<Example>>,
}

impl MicroBatch {
    /// Label tokens the loss sees.
    pub fn label_tokens(&self) -> usize {
        self.rows.iter().flatten().map(Example::label_count).sum()
    }

    /// Real (non-padding) tokens.
    pub fn tokens(&self) -> usize {
        self.rows.iter().flatten().map(|e| e.ids.len()).sum()
    }

    fn packed(&self) -> bool {
        self.rows.iter().any(|r| r.len() > 1)
    }

    /// The batch, and the flat `(row * (seq - 1) + p)` indices of positions whose next token is
    /// a label, with those labels.
    fn layout(&self, pad: u32) -> (Batch, Vec<i64>, Vec<i64>) {
        let batch = if self.packed() {
            let rows: Vec<Vec<Vec<u32>>> = self
                .rows
                .iter()
                .map(|r| r.iter().map(|e| e.ids.clone()).collect())
                .collect();
            Batch::packed(&rows, pad)
        } else {
            let seqs: Vec<Vec<u32>> = self
                .rows
                .iter()
                .map(|r| r.iter().flat_map(|e| e.ids.iter().copied()).collect())
                .collect();
            Batch::right_padded(&seqs, pad)
        };
        let t = batch.seq;
        let mut positions = Vec::new();
        let mut targets = Vec::new();
        for (r, row) in self.rows.iter().enumerate() {
            let mut offset = 0;
            for e in row {
                for i in 1..e.ids.len() {
                    if e.labels[i] {
                        positions.push((r * (t.max(1) - 1) + offset + i - 1) as i64);
                        targets.push(e.ids[i] as i64);
                    }
                }
                offset += e.ids.len();
            }
        }
        (batch, positions, targets)
    }
}

/// What one optimiser step measured (transformers' and TRL's names).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StepOutput {
    /// `loss`: the step's token-mean loss (CE, or the KD mixture).
    pub loss: f64,
    /// `grad_norm` before clipping.
    pub grad_norm: f64,
    /// `learning_rate` the step used.
    pub learning_rate: f64,
    /// `mean_token_accuracy`: mean over the micro-batches of the share of label tokens that
    /// are the model's top-1.
    pub mean_token_accuracy: f64,
    /// `entropy`: mean over the micro-batches of the mean entropy at label positions.
    pub entropy: f64,
    /// Real tokens in the step (for `num_tokens`).
    pub tokens: u64,
    /// Label tokens in the step.
    pub label_tokens: u64,
    /// The CE part of the loss (equal to `loss` without a teacher).
    pub ce_loss: f64,
    /// The KD part (0 without a teacher).
    pub kd_loss: f64,
}

/// A teacher for logit distillation.
#[derive(Debug)]
pub struct Teacher {
    /// The teacher network (no autodiff needed).
    pub model: CausalLm,
    /// Forward or reverse KL.
    pub divergence: KdDivergence,
    /// Softmax temperature of both models.
    pub temperature: f32,
    /// Weight of the KD term.
    pub alpha: f64,
}

/// The SFT learner: a model on an autodiff device and its optimiser.
#[derive(Debug)]
pub struct SftTrainer {
    model: Option<CausalLm>,
    optim: Optimizer,
    pad_token_id: u32,
    chunk_elements: usize,
    teacher: Option<Teacher>,
    logprob_impl: LogProbImpl,
}

struct MicroOut {
    loss: f64,
    ce: f64,
    kd: f64,
    accuracy: f64,
    entropy: f64,
}

impl SftTrainer {
    /// A trainer for `model` (on an autodiff device).
    pub fn new(
        model: CausalLm,
        settings: OptimSettings,
        pad_token_id: u32,
        chunk_elements: usize,
    ) -> Result<Self> {
        Ok(Self {
            model: Some(model),
            optim: Optimizer::new(settings)?,
            pad_token_id,
            chunk_elements: chunk_elements.max(1),
            teacher: None,
            logprob_impl: LogProbImpl::Fused,
        })
    }

    /// A trainer continuing from a checkpoint's model and optimiser.
    pub fn from_parts(
        model: CausalLm,
        optim: Optimizer,
        pad_token_id: u32,
        chunk_elements: usize,
    ) -> Self {
        Self {
            model: Some(model),
            optim,
            pad_token_id,
            chunk_elements: chunk_elements.max(1),
            teacher: None,
            logprob_impl: LogProbImpl::Fused,
        }
    }

    /// How the cross-entropy's log-probs are computed (default `fused`: no `[tokens, vocab]`
    /// tensor kept for backward; `reference` is the plain full log-softmax, for benchmarks and
    /// tests).
    pub fn with_logprob_impl(mut self, method: LogProbImpl) -> Self {
        self.logprob_impl = method;
        self
    }

    /// Adds a teacher: the loss becomes the CE/KD mixture.
    pub fn with_teacher(mut self, teacher: Teacher) -> Result<Self> {
        let student = self.model()?;
        if teacher.model.config().vocab_size != student.config().vocab_size {
            return Err(DistillError::Data(format!(
                "logit distillation needs one vocabulary: the teacher has {} tokens, the student {}",
                teacher.model.config().vocab_size,
                student.config().vocab_size
            )));
        }
        self.teacher = Some(teacher);
        Ok(self)
    }

    /// The model.
    pub fn model(&self) -> Result<&CausalLm> {
        self.model
            .as_ref()
            .ok_or_else(|| DistillError::Data("the model was lost in a failed step".into()))
    }

    /// The optimiser (for checkpoints).
    pub fn optimizer(&self) -> &Optimizer {
        &self.optim
    }

    /// Optimiser steps taken.
    pub fn global_step(&self) -> u64 {
        self.optim.global_step()
    }

    /// One optimiser step over `micro_batches` (its gradient-accumulation window).
    pub fn step(&mut self, micro_batches: &[MicroBatch]) -> Result<StepOutput> {
        let step = self.global_step();
        let _span = tracing::info_span!("sft_step", step).entered();
        let num_items: usize = micro_batches.iter().map(MicroBatch::label_tokens).sum();
        let model = self
            .model
            .take()
            .ok_or_else(|| DistillError::Data("no model".into()))?;
        let mut accumulated = GradientsAccumulator::<CausalLm>::new();
        let mut out = StepOutput::default();
        let mut counted = 0usize;
        for mb in micro_batches {
            out.tokens += mb.tokens() as u64;
            out.label_tokens += mb.label_tokens() as u64;
            match self.micro(&model, mb, num_items as f32, true) {
                Ok((m, Some(grads))) => {
                    out.loss += m.loss;
                    out.ce_loss += m.ce;
                    out.kd_loss += m.kd;
                    out.mean_token_accuracy += m.accuracy;
                    out.entropy += m.entropy;
                    counted += 1;
                    accumulated.accumulate(&model, grads);
                }
                Ok((_, None)) => {}
                Err(e) => {
                    self.model = Some(model);
                    return Err(e);
                }
            }
        }
        out.mean_token_accuracy /= counted.max(1) as f64;
        out.entropy /= counted.max(1) as f64;
        if !out.loss.is_finite() {
            self.model = Some(model);
            return Err(DistillError::Diverged {
                step,
                message: format!("the loss is {}: the weights were not updated", out.loss),
            });
        }
        let (model, info) = self.optim.step(model, accumulated.grads());
        self.model = Some(model);
        let info = info.map_err(|e| DistillError::Diverged {
            step,
            message: e.to_string(),
        })?;
        out.grad_norm = info.grad_norm;
        out.learning_rate = info.learning_rate;
        Ok(out)
    }

    /// Token-mean loss and accuracy over `batches` without updating (held-out loss).
    pub fn evaluate(&self, batches: &[MicroBatch]) -> Result<(f64, f64)> {
        let _span = tracing::info_span!("sft_eval").entered();
        let model = self.model()?.valid();
        let mut loss = 0.0;
        let mut correct = 0.0;
        let mut labels = 0usize;
        for mb in batches {
            let n = mb.label_tokens();
            if n == 0 {
                continue;
            }
            let (m, _) = self.micro(&model, mb, n as f32, false)?;
            loss += m.loss * n as f64;
            correct += m.accuracy * n as f64;
            labels += n;
        }
        let n = labels.max(1) as f64;
        Ok((loss / n, correct / n))
    }

    /// Loss (divided by `num_items`), metrics and, with `backward`, gradients of one
    /// micro-batch. Returns no gradients for a micro-batch without labels.
    fn micro(
        &self,
        model: &CausalLm,
        mb: &MicroBatch,
        num_items: f32,
        backward: bool,
    ) -> Result<(MicroOut, Option<GradientsParams>)> {
        let (batch, positions, targets) = mb.layout(self.pad_token_id);
        let n = positions.len();
        if n == 0 || batch.seq < 2 {
            let zero = MicroOut {
                loss: 0.0,
                ce: 0.0,
                kd: 0.0,
                accuracy: 0.0,
                entropy: 0.0,
            };
            return Ok((zero, None));
        }
        let device = model.device();
        let (b, t) = (batch.batch, batch.seq);
        let hidden = model.forward_hidden(&batch, &vec![0; b], None)?; // [b, t, h]
        let h = hidden.dims()[2];
        let rows = hidden
            .slice([0..b, 0..t - 1, 0..h])
            .reshape([b * (t - 1), h]);
        let index = Tensor::<1, Int>::from_data(TensorData::new(positions.clone(), [n]), &device);
        let picked = rows.select(0, index); // [n, h]
        let target = Tensor::<2, Int>::from_data(TensorData::new(targets.clone(), [1, n]), &device);
        let vocab = model.config().vocab_size;
        let chunk = chunk_rows_for(vocab, self.chunk_elements);
        let (logp, entropy) = token_logprobs(
            model,
            picked.clone().reshape([1, n, h]),
            target,
            1.0,
            self.logprob_impl,
            chunk,
            true,
        );
        let ce_sum = logp.sum().neg(); // [1]
        let mut loss = ce_sum.clone() / num_items;
        let mut kd_value = 0.0;
        let ce_value = scalar(ce_sum)? / num_items as f64;
        let mut loss_value = ce_value;
        if let Some(teacher) = &self.teacher {
            let (kd_sum, surrogate) =
                self.kd(teacher, &batch, &positions, picked.clone(), model)?;
            kd_value = kd_sum / num_items as f64;
            let a = teacher.alpha;
            loss = loss * (1.0 - a) + surrogate * (a / num_items as f64);
            loss_value = (1.0 - a) * ce_value + a * kd_value;
        }
        let entropy_mean = match entropy {
            Some(e) => scalar(e.sum())? / n as f64,
            None => 0.0,
        };
        let accuracy = self.top1(model, picked.detach(), &targets)?;
        let out = MicroOut {
            loss: loss_value,
            ce: ce_value,
            kd: kd_value,
            accuracy,
            entropy: entropy_mean,
        };
        if !loss_value.is_finite() {
            return Err(DistillError::Diverged {
                step: self.global_step(),
                message: format!("the loss is {loss_value}: the weights were not updated"),
            });
        }
        let grads = backward.then(|| GradientsParams::from_grads(loss.backward(), model));
        Ok((out, grads))
    }

    /// Share of `targets` that are the top-1 of the head at `hidden` (`[n, h]`, no gradient).
    fn top1(&self, model: &CausalLm, hidden: Tensor<2>, targets: &[i64]) -> Result<f64> {
        let [n, h] = hidden.dims();
        let chunk = chunk_rows_for(model.config().vocab_size, self.chunk_elements);
        let mut correct = 0usize;
        let mut start = 0;
        while start < n {
            let end = (start + chunk).min(n);
            let logits = model.logits(hidden.clone().slice([start..end, 0..h])); // [rows, vocab]
            let best = logits.argmax(1).reshape([end - start]);
            let best: Vec<i64> = best
                .into_data()
                .convert::<i64>()
                .try_into_vec::<i64>()
                .map_err(|e| DistillError::Data(format!("argmax: {e:?}")))?;
            correct += best
                .iter()
                .zip(&targets[start..end])
                .filter(|(a, b)| a == b)
                .count();
            start = end;
        }
        Ok(correct as f64 / n.max(1) as f64)
    }

    /// The KD term over the label positions: its summed value `T^2 * KL`, and a surrogate
    /// whose gradients with respect to the student's hidden states and head are exactly the
    /// KD term's. The gradient is computed a chunk of rows at a time with no graph (for forward
    /// KL, `dKL/dz = T * (p_s - p_t)`), and the surrogate `<h, G W^T> + <W, h^T G>` keeps only
    /// `[rows, hidden]` and `[hidden, vocab]` tensors: no `[tokens, vocab]` tensor of either
    /// model is kept for backward.
    fn kd(
        &self,
        teacher: &Teacher,
        batch: &Batch,
        positions: &[i64],
        student_hidden: Tensor<2>,
        student: &CausalLm,
    ) -> Result<(f64, Tensor<1>)> {
        let device = student.device();
        let tdevice = teacher.model.device();
        let (b, t) = (batch.batch, batch.seq);
        let th = teacher
            .model
            .forward_hidden(batch, &vec![0; b], None)?
            .detach();
        let thd = th.dims()[2];
        let trows = th
            .slice([0..b, 0..t - 1, 0..thd])
            .reshape([b * (t - 1), thd]);
        let n = positions.len();
        let index = Tensor::<1, Int>::from_data(TensorData::new(positions.to_vec(), [n]), &tdevice);
        let tpicked = trows.select(0, index); // [n, th]
        let temp = teacher.temperature as f64;
        let vocab = student.config().vocab_size;
        let chunk = chunk_rows_for(vocab, self.chunk_elements);
        let h = student_hidden.dims()[1];
        let weight = student.head_weight(); // [h, vocab]
        let w_const = weight.clone().detach();
        let hid_const = student_hidden.clone().detach();
        let mut value = 0.0;
        let mut grad_h = Vec::new();
        let mut grad_w: Option<Tensor<2>> = None;
        let mut start = 0;
        while start < n {
            let end = (start + chunk).min(n);
            let hs = hid_const.clone().slice([start..end, 0..h]);
            let s_logits = hs.clone().matmul(w_const.clone()) / temp; // [rows, vocab]
            let t_logits = teacher
                .model
                .logits(tpicked.clone().slice([start..end, 0..thd]))
                / temp;
            let t_logits = Tensor::<2>::from_data(t_logits.into_data(), (&device, DType::F32));
            let s_logp = activation::log_softmax(s_logits, 1);
            let t_logp = activation::log_softmax(t_logits, 1);
            let (kl_rows, g) = match teacher.divergence {
                KdDivergence::Forward => {
                    let p_t = t_logp.clone().exp();
                    let kl = (p_t.clone() * (t_logp - s_logp.clone())).sum_dim(1); // [rows, 1]
                    (kl, s_logp.exp() - p_t)
                }
                KdDivergence::Reverse => {
                    let p_s = s_logp.clone().exp();
                    let diff = s_logp - t_logp;
                    let kl = (p_s.clone() * diff.clone()).sum_dim(1); // [rows, 1]
                    (kl.clone(), p_s * (diff - kl))
                }
            };
            // d(T^2 KL)/dz = T^2 * (1/T) * dKL/d(z/T)
            let g = g * temp; // [rows, vocab]
            value += scalar(kl_rows.sum())? * temp * temp;
            grad_h.push(g.clone().matmul(w_const.clone().transpose())); // [rows, h]
            let gw = hs.transpose().matmul(g); // [h, vocab]
            grad_w = Some(match grad_w {
                Some(acc) => acc + gw,
                None => gw,
            });
            start = end;
        }
        let grad_h = Tensor::cat(grad_h, 0).detach(); // [n, h]
        let mut surrogate = (student_hidden * grad_h).sum();
        if let Some(gw) = grad_w {
            surrogate = surrogate + (weight * gw.detach()).sum();
        }
        Ok((value, surrogate))
    }
}

fn scalar(t: Tensor<1>) -> Result<f64> {
    Ok(read_f32(t)?.first().copied().unwrap_or(f32::NAN) as f64)
}
