//! A key/value cache owned by the caller: one preallocated `[batch, kv_heads, max_len, head_dim]`
//! buffer per layer, filled left to right. Rows of a left-padded batch share the slot axis; which
//! slots hold real tokens is tracked per row, so padding is never attended to.

use burn::tensor::{DType, Device, Tensor};

use crate::config::ModelConfig;
use crate::error::{ModelError, Result};

/// Cached keys and values of every layer for one batch.
#[derive(Debug)]
pub struct KvCache {
    keys: Vec<Option<Tensor<4>>>,
    values: Vec<Option<Tensor<4>>>,
    /// `batch * max_len`: whether slot `j` of row `b` holds a real token.
    key_valid: Vec<bool>,
    batch: usize,
    max_len: usize,
    len: usize,
}

impl KvCache {
    /// Preallocates room for `max_len` tokens of `batch` sequences.
    pub fn new(
        config: &ModelConfig,
        batch: usize,
        max_len: usize,
        dtype: DType,
        device: &Device,
    ) -> Self {
        let shape = [batch, config.num_key_value_heads, max_len, config.head_dim];
        let alloc = || {
            (0..config.num_hidden_layers)
                .map(|_| Some(Tensor::<4>::zeros(shape, (device, dtype))))
                .collect::<Vec<_>>()
        };
        Self {
            keys: alloc(),
            values: alloc(),
            key_valid: vec![false; batch * max_len],
            batch,
            max_len,
            len: 0,
        }
    }

    /// Number of slots filled so far.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing has been cached yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Capacity in slots.
    pub fn max_len(&self) -> usize {
        self.max_len
    }

    /// Number of sequences.
    pub fn batch(&self) -> usize {
        self.batch
    }

    /// Forgets every cached token, keeping the buffers.
    pub fn reset(&mut self) {
        self.len = 0;
        self.key_valid.fill(false);
    }

    pub(crate) fn check_fits(&self, batch: usize, seq: usize) -> Result<()> {
        if batch != self.batch {
            return Err(ModelError::invalid(format!(
                "the cache holds {} sequences, the call has {batch}",
                self.batch
            )));
        }
        if self.len + seq > self.max_len {
            return Err(ModelError::invalid(format!(
                "the cache holds {} of {} slots and cannot take {seq} more",
                self.len, self.max_len
            )));
        }
        Ok(())
    }

    /// Records which of the call's `seq` tokens are real and returns the validity of every slot
    /// up to the end of the call, `batch * (len + seq)` flags.
    pub(crate) fn extend_mask(&mut self, mask: &[bool], batch: usize, seq: usize) -> Vec<bool> {
        let total = self.len + seq;
        let mut out = Vec::with_capacity(batch * total);
        for b in 0..batch {
            let row = &mut self.key_valid[b * self.max_len..(b + 1) * self.max_len];
            row[self.len..total].copy_from_slice(&mask[b * seq..(b + 1) * seq]);
            out.extend_from_slice(&row[..total]);
        }
        out
    }

    /// Writes this call's keys and values `[batch, kv_heads, seq, head_dim]` of `layer` and
    /// returns every filled slot, `[batch, kv_heads, len + seq, head_dim]`.
    pub(crate) fn append(
        &mut self,
        layer: usize,
        k: Tensor<4>,
        v: Tensor<4>,
    ) -> (Tensor<4>, Tensor<4>) {
        let [b, h, t, d] = k.dims();
        let (start, end) = (self.len, self.len + t);
        let write = |slot: &mut Option<Tensor<4>>, new: Tensor<4>| {
            // Taking the buffer out leaves it uniquely owned, so backends can write in place.
            let buf = slot.take().expect("cache buffer present between calls");
            let buf = buf.slice_assign([0..b, 0..h, start..end, 0..d], new);
            let filled = buf.clone().slice([0..b, 0..h, 0..end, 0..d]);
            *slot = Some(buf);
            filled
        };
        let keys = write(&mut self.keys[layer], k);
        let values = write(&mut self.values[layer], v);
        (keys, values)
    }

    pub(crate) fn advance(&mut self, seq: usize) {
        self.len += seq;
    }
}
