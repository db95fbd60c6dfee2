//! Sets of allowed documents (live and passing a filter), as bitsets over internal doc ids.

use crate::{Error, Result};
use std::sync::Arc;

/// A set of internal doc ids: bit `d % 64` of word `d / 64`. Cloning shares the words.
#[derive(Clone, Debug)]
pub struct DocSet {
    words: Arc<[u64]>,
    len: u64,
}

impl DocSet {
    /// The set given by `words` over an index of `n_docs` documents. `words` must hold exactly
    /// `ceil(n_docs / 64)` words; bits at or beyond `n_docs` are ignored (cleared).
    pub fn from_words(mut words: Vec<u64>, n_docs: u32) -> Result<DocSet> {
        let need = (n_docs as usize).div_ceil(64);
        if words.len() != need {
            return Err(Error::InvalidArgument(format!(
                "allowed-document set has {} words, an index of {n_docs} documents needs {need}",
                words.len()
            )));
        }
        if !n_docs.is_multiple_of(64) {
            if let Some(last) = words.last_mut() {
                *last &= (1u64 << (n_docs % 64)) - 1;
            }
        }
        let len = words.iter().map(|w| w.count_ones() as u64).sum();
        Ok(DocSet { words: words.into(), len })
    }
    /// The set of the listed documents (each below `n_docs`).
    pub fn from_docs(docs: impl IntoIterator<Item = u32>, n_docs: u32) -> Result<DocSet> {
        let mut words = vec![0u64; (n_docs as usize).div_ceil(64)];
        for d in docs {
            if d >= n_docs {
                return Err(Error::InvalidArgument(format!("document {d} is out of range ({n_docs} documents)")));
            }
            words[(d >> 6) as usize] |= 1 << (d & 63);
        }
        DocSet::from_words(words, n_docs)
    }
    /// Whether `d` is in the set.
    #[inline(always)]
    pub fn contains(&self, d: u32) -> bool {
        self.words.get((d >> 6) as usize).is_some_and(|w| w >> (d & 63) & 1 != 0)
    }
    /// Word `i` (documents `64 i .. 64 i + 63`); 0 beyond the end.
    #[inline(always)]
    pub fn word(&self, i: usize) -> u64 {
        self.words.get(i).copied().unwrap_or(0)
    }
    /// All words.
    pub fn words(&self) -> &[u64] {
        &self.words
    }
    /// Number of documents in the set.
    pub fn len(&self) -> u64 {
        self.len
    }
    /// True when the set is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl DocSet {
    /// The documents in both sets (over the same documents).
    pub fn and(&self, other: &DocSet) -> Result<DocSet> {
        if self.words.len() != other.words.len() {
            return Err(Error::InvalidArgument(format!(
                "document sets of different sizes ({} and {} words)",
                self.words.len(),
                other.words.len()
            )));
        }
        let words: Vec<u64> = self.words.iter().zip(other.words.iter()).map(|(a, b)| a & b).collect();
        let len = words.iter().map(|w| w.count_ones() as u64).sum();
        Ok(DocSet { words: words.into(), len })
    }

    /// Every document of `0..n_docs`.
    pub fn all(n_docs: u32) -> DocSet {
        let words = vec![u64::MAX; (n_docs as usize).div_ceil(64)];
        DocSet::from_words(words, n_docs).unwrap_or_else(|_| DocSet { words: Arc::from([]), len: 0 })
    }

    /// The documents of `0..n_docs` not in the set.
    pub fn complement(&self, n_docs: u32) -> Result<DocSet> {
        DocSet::from_words(self.words.iter().map(|w| !w).collect(), n_docs)
    }
}
