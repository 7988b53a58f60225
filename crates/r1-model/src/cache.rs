//! A key/value cache owned by the caller: one preallocated `[batch, kv_heads, max_len, head_dim]`
//! buffer per layer, filled left to right. Rows of a left-padded batch share the slot axis; which
//! slots hold real tokens is tracked per row, so padding is never attended to.

use burn::tensor::{DType, Device, Int, Tensor, TensorData};

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

    /// Whether slot `slot` of row `row` holds a real token.
    pub fn is_valid(&self, row: usize, slot: usize) -> bool {
        row < self.batch && slot < self.len && self.key_valid[row * self.max_len + slot]
    }

    /// Real tokens cached for row `row`.
    pub fn valid_len(&self, row: usize) -> usize {
        (0..self.len).filter(|&j| self.is_valid(row, j)).count()
    }

    /// Fills the next `n` slots of every row with nothing: they count as filled but no query
    /// attends to them. Continuous batching uses it to line up caches of different lengths (a
    /// query attends to its row's valid slots, whatever their index; positions come from the
    /// offsets given to the forward pass, not from slots).
    pub fn skip_slots(&mut self, n: usize) -> Result<()> {
        if self.len + n > self.max_len {
            return Err(ModelError::invalid(format!(
                "the cache holds {} of {} slots and cannot skip {n} more",
                self.len, self.max_len
            )));
        }
        for b in 0..self.batch {
            self.key_valid[b * self.max_len + self.len..b * self.max_len + self.len + n]
                .fill(false);
        }
        self.len += n;
        Ok(())
    }

    /// Raises the capacity to `max_len` slots (zeros appended to every buffer).
    pub fn grow(&mut self, max_len: usize) {
        if max_len <= self.max_len {
            return;
        }
        let extra = max_len - self.max_len;
        for slot in self.keys.iter_mut().chain(self.values.iter_mut()) {
            let buf = slot.take().expect("cache buffer present between calls");
            let [b, h, _, d] = buf.dims();
            let zeros = Tensor::<4>::zeros([b, h, extra, d], (&buf.device(), buf.dtype()));
            *slot = Some(Tensor::cat(vec![buf, zeros], 2));
        }
        let mut valid = vec![false; self.batch * max_len];
        for b in 0..self.batch {
            valid[b * max_len..b * max_len + self.max_len]
                .copy_from_slice(&self.key_valid[b * self.max_len..(b + 1) * self.max_len]);
        }
        self.key_valid = valid;
        self.max_len = max_len;
    }

    /// Appends the rows of `other` after this cache's rows. Both caches must have the same
    /// layers, capacity and length (see [`KvCache::grow`] and [`KvCache::skip_slots`]).
    pub fn append_rows(&mut self, mut other: KvCache) -> Result<()> {
        if other.keys.len() != self.keys.len()
            || other.max_len != self.max_len
            || other.len != self.len
        {
            return Err(ModelError::invalid(format!(
                "caches differ: {} layers, {} of {} slots against {} layers, {} of {}",
                self.keys.len(),
                self.len,
                self.max_len,
                other.keys.len(),
                other.len,
                other.max_len
            )));
        }
        let pairs = self
            .keys
            .iter_mut()
            .chain(self.values.iter_mut())
            .zip(other.keys.iter_mut().chain(other.values.iter_mut()));
        for (mine, theirs) in pairs {
            let a = mine.take().expect("cache buffer present between calls");
            let b = theirs.take().expect("cache buffer present between calls");
            *mine = Some(Tensor::cat(vec![a, b], 0));
        }
        self.key_valid.extend_from_slice(&other.key_valid);
        self.batch += other.batch;
        Ok(())
    }

    /// Keeps the rows `rows` (in that order) and drops the others. `rows` must not be empty.
    pub fn retain_rows(&mut self, rows: &[usize]) -> Result<()> {
        if rows.is_empty() || rows.iter().any(|&r| r >= self.batch) {
            return Err(ModelError::invalid(format!(
                "rows {rows:?} do not select from a cache of {} rows",
                self.batch
            )));
        }
        if rows.iter().copied().eq(0..self.batch) {
            return Ok(());
        }
        for slot in self.keys.iter_mut().chain(self.values.iter_mut()) {
            let buf = slot.take().expect("cache buffer present between calls");
            let index = index_tensor(rows, &buf.device());
            *slot = Some(buf.select(0, index));
        }
        let mut valid = Vec::with_capacity(rows.len() * self.max_len);
        for &r in rows {
            valid.extend_from_slice(&self.key_valid[r * self.max_len..(r + 1) * self.max_len]);
        }
        self.key_valid = valid;
        self.batch = rows.len();
        Ok(())
    }

    /// Moves every row's real tokens to the front of its slots, in order, so that the filled
    /// length becomes the longest row's token count. Attention results are unchanged: a query
    /// sees the same keys in the same order.
    pub fn compact(&mut self) {
        let counts: Vec<usize> = (0..self.batch).map(|r| self.valid_len(r)).collect();
        let new_len = counts.iter().copied().max().unwrap_or(0);
        if new_len == self.len {
            return;
        }
        // Row r's real slots, then (for rows shorter than the longest) repeats of slot 0, which
        // stay invalid.
        let plans: Vec<Vec<usize>> = (0..self.batch)
            .map(|r| {
                let mut idx: Vec<usize> = (0..self.len).filter(|&j| self.is_valid(r, j)).collect();
                idx.resize(new_len, 0);
                idx
            })
            .collect();
        let tail = self.max_len - new_len;
        for slot in self.keys.iter_mut().chain(self.values.iter_mut()) {
            let buf = slot.take().expect("cache buffer present between calls");
            let [b, h, _, d] = buf.dims();
            let device = buf.device();
            let mut rows = Vec::with_capacity(b);
            for (r, plan) in plans.iter().enumerate() {
                let row = buf.clone().slice([r..r + 1, 0..h, 0..self.max_len, 0..d]);
                rows.push(row.select(2, index_tensor(plan, &device)));
            }
            let mut parts = vec![Tensor::cat(rows, 0)];
            if tail > 0 {
                parts.push(Tensor::<4>::zeros([b, h, tail, d], (&device, buf.dtype())));
            }
            *slot = Some(Tensor::cat(parts, 2));
        }
        let mut valid = vec![false; self.batch * self.max_len];
        for (r, &n) in counts.iter().enumerate() {
            valid[r * self.max_len..r * self.max_len + n].fill(true);
        }
        self.key_valid = valid;
        self.len = new_len;
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

fn index_tensor(index: &[usize], device: &Device) -> Tensor<1, Int> {
    let data: Vec<i64> = index.iter().map(|&i| i as i64).collect();
    Tensor::<1, Int>::from_data(TensorData::new(data, [index.len()]), device)
}
