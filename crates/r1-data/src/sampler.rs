//! Deterministic shuffling, train/eval splits, and a resumable batch loader.
//!
//! Every permutation is a pure function of a seed (and, for the loader, the epoch), so a run
//! resumed from a saved [`Cursor`] sees exactly the batches the uninterrupted run would have.

use serde::{Deserialize, Serialize};

use crate::error::{DataError, Result};
use crate::rng::{Rng, mix};

/// Shuffles `items` in place with a seeded Fisher–Yates shuffle.
pub fn shuffle<T>(items: &mut [T], seed: u64) {
    Rng::new(seed).shuffle(items);
}

/// A seeded permutation of `0..n`.
pub fn permutation(n: usize, seed: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    shuffle(&mut order, seed);
    order
}

/// How large the eval part of a [`split`] is. From TOML, a float is a fraction and an integer
/// a count: `eval = 0.05` or `eval = 200`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum EvalSize {
    /// This many items.
    Count(usize),
    /// This fraction of the items (in `[0, 1]`), rounded to the nearest count.
    Fraction(f64),
}

impl From<usize> for EvalSize {
    fn from(n: usize) -> Self {
        Self::Count(n)
    }
}

impl From<f64> for EvalSize {
    fn from(f: f64) -> Self {
        Self::Fraction(f)
    }
}

/// Splits `items` into `(train, eval)`: the eval items are chosen by a seeded permutation, and
/// both parts keep the items' original order. Fails when the fraction is outside `[0, 1]` or
/// the count exceeds the number of items.
pub fn split<T>(items: Vec<T>, eval: impl Into<EvalSize>, seed: u64) -> Result<(Vec<T>, Vec<T>)> {
    let n = items.len();
    let n_eval = match eval.into() {
        EvalSize::Count(c) if c <= n => c,
        EvalSize::Count(c) => {
            return Err(DataError::InvalidArgument(format!(
                "eval count {c} exceeds the {n} items"
            )));
        }
        EvalSize::Fraction(f) if (0.0..=1.0).contains(&f) => ((n as f64) * f).round() as usize,
        EvalSize::Fraction(f) => {
            return Err(DataError::InvalidArgument(format!(
                "eval fraction {f} is outside [0, 1]"
            )));
        }
    };
    let mut is_eval = vec![false; n];
    for &i in permutation(n, seed).iter().take(n_eval) {
        is_eval[i] = true;
    }
    let mut train = Vec::with_capacity(n - n_eval);
    let mut held_out = Vec::with_capacity(n_eval);
    for (item, eval) in items.into_iter().zip(is_eval) {
        if eval {
            held_out.push(item);
        } else {
            train.push(item);
        }
    }
    Ok((train, held_out))
}

/// Where a [`Loader`] is: save it with a checkpoint and resume with [`Loader::from_cursor`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Cursor {
    /// The current epoch, from 0.
    pub epoch: u64,
    /// Items of this epoch already handed out.
    pub index: u64,
    /// The loader's seed.
    pub seed: u64,
}

/// Batches of item indices over epochs, each epoch in its own seeded order (or in file order
/// without `shuffle`). A batch never spans two epochs, and the last batch of an epoch may be
/// short (no drop-last). As an [`Iterator`] it never ends: take as many batches as needed.
#[derive(Debug, Clone)]
pub struct Loader {
    len: usize,
    batch_size: usize,
    shuffle: bool,
    seed: u64,
    epoch: u64,
    index: usize,
    order: Vec<usize>,
}

/// An alias: the loader iterates over epochs.
pub type EpochIterator = Loader;

impl Loader {
    /// A loader over `len` items from the start of epoch 0.
    pub fn new(len: usize, batch_size: usize, shuffle: bool, seed: u64) -> Result<Self> {
        Self::from_cursor(
            len,
            batch_size,
            shuffle,
            Cursor {
                epoch: 0,
                index: 0,
                seed,
            },
        )
    }

    /// A loader that continues from `cursor`, with the same batches an uninterrupted run would
    /// produce (given the same `len`, `batch_size` and `shuffle`).
    pub fn from_cursor(
        len: usize,
        batch_size: usize,
        shuffle: bool,
        cursor: Cursor,
    ) -> Result<Self> {
        if len == 0 {
            return Err(DataError::InvalidArgument(
                "a loader needs at least one item".into(),
            ));
        }
        if batch_size == 0 {
            return Err(DataError::InvalidArgument(
                "batch size must be at least 1".into(),
            ));
        }
        let index = usize::try_from(cursor.index)
            .ok()
            .filter(|&i| i <= len)
            .ok_or_else(|| {
                DataError::InvalidArgument(format!(
                    "cursor index {} is past the {len} items (was the data changed?)",
                    cursor.index
                ))
            })?;
        let mut loader = Self {
            len,
            batch_size,
            shuffle,
            seed: cursor.seed,
            epoch: cursor.epoch,
            index,
            order: Vec::new(),
        };
        loader.order = loader.epoch_order(cursor.epoch);
        Ok(loader)
    }

    /// The order of an epoch: a permutation seeded by `(seed, epoch)`, or file order.
    pub fn epoch_order(&self, epoch: u64) -> Vec<usize> {
        if self.shuffle {
            permutation(self.len, mix(&[self.seed, epoch]))
        } else {
            (0..self.len).collect()
        }
    }

    /// Where the loader is now; the next batch starts there.
    pub fn cursor(&self) -> Cursor {
        Cursor {
            epoch: self.epoch,
            index: self.index as u64,
            seed: self.seed,
        }
    }

    /// The current epoch (the epoch of the next batch, unless this one is used up).
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Batches per epoch, counting a short last batch.
    pub fn batches_per_epoch(&self) -> usize {
        self.len.div_ceil(self.batch_size)
    }

    /// The next batch of indices, starting the next epoch when this one is used up.
    pub fn next_batch(&mut self) -> Vec<usize> {
        if self.index >= self.len {
            self.epoch += 1;
            self.index = 0;
            self.order = self.epoch_order(self.epoch);
        }
        let end = (self.index + self.batch_size).min(self.len);
        let batch = self.order[self.index..end].to_vec();
        self.index = end;
        batch
    }
}

impl Iterator for Loader {
    type Item = Vec<usize>;

    fn next(&mut self) -> Option<Vec<usize>> {
        Some(self.next_batch())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_sizes_and_errors() {
        let (train, eval) = split((0..10).collect::<Vec<_>>(), 0.3, 1).expect("valid");
        assert_eq!((train.len(), eval.len()), (7, 3));
        assert!(train.windows(2).all(|w| w[0] < w[1]));
        assert!(split(vec![1, 2], 3usize, 0).is_err());
        assert!(split(vec![1, 2], 1.5, 0).is_err());
        let (_, eval) = split(vec![1, 2], 0usize, 0).expect("valid");
        assert!(eval.is_empty());
    }

    #[test]
    fn eval_size_from_toml() {
        #[derive(Deserialize)]
        struct C {
            eval: EvalSize,
        }
        let c: C = toml::from_str("eval = 200").expect("toml");
        assert_eq!(c.eval, EvalSize::Count(200));
        let c: C = toml::from_str("eval = 0.05").expect("toml");
        assert_eq!(c.eval, EvalSize::Fraction(0.05));
    }
}
