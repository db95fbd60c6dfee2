//! Stored impacts: what a posting holds, and how block / term / doc-block maxima are formed.
//!
//! Maxima are *joins* (least upper bounds) under the order every scoring function is monotone
//! in: for `u8` and `f32` impacts the larger value; for BM25 the pair `(largest tf, smallest
//! document length)`. BM25's posting score `W * tf / (tf + k1 * (1 - b + b * dl / avgdl))`
//! grows with `tf` and shrinks with `dl` for every `avgdl > 0` (and so does its floating-point
//! evaluation, see [`crate::search::bm25`]), so the score of a join bounds the score of every
//! posting under it, whatever the collection statistics are at query time (as tantivy bounds
//! BM25 blocks with their largest tf and smallest fieldnorm).

use std::fmt::Debug;

/// A stored impact.
pub trait Impact: Copy + Default + Send + Sync + Debug + 'static {
    /// The least upper bound of two impacts; `Default::default()` is its identity and the
    /// impact of "no posting".
    fn join(self, other: Self) -> Self;
    /// True for the impact of "no posting" (a real posting never has it).
    fn is_zero(self) -> bool;
    /// What the open check compares with the stored vector's weight: the `u8` impact, the
    /// `f32` bits, or BM25's term frequency (the length is checked against `doc_len`).
    fn check_key(self) -> u64;
}

/// One (term, document, impact) triple's share of the stored-vectors checksum: a mix of all
/// three (the key scaled by the golden ratio folded into the (term, doc) word, then a
/// multiply-xorshift round), summed with wrapping adds, so the sum is the same in any order and
/// a changed term, document or weight (or two swapped) changes it but with chance 2^-64.
#[inline(always)]
pub(crate) fn posting_hash(term: u32, doc: u32, key: u64) -> u64 {
    let x = ((term as u64) << 32 | doc as u64) ^ key.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let x = (x ^ (x >> 31)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x ^ (x >> 29)
}

/// The join of `xs` (`Default::default()` for none): the maximum of a block's or a term's
/// impacts, as the writer stores it and the open check recomputes it.
#[inline]
pub(crate) fn join_all<I: Impact>(xs: &[I]) -> I {
    xs.iter().fold(I::default(), |m, &x| m.join(x))
}

impl Impact for u8 {
    #[inline(always)]
    fn join(self, other: u8) -> u8 {
        self.max(other)
    }
    #[inline(always)]
    fn is_zero(self) -> bool {
        self == 0
    }
    #[inline(always)]
    fn check_key(self) -> u64 {
        self as u64
    }
}

impl Impact for f32 {
    #[inline(always)]
    fn join(self, other: f32) -> f32 {
        // Impacts are finite and >= 0 (validated at open).
        if other > self {
            other
        } else {
            self
        }
    }
    #[inline(always)]
    fn is_zero(self) -> bool {
        self == 0.0
    }
    #[inline(always)]
    fn check_key(self) -> u64 {
        self.to_bits() as u64
    }
}

/// A BM25 posting: the term's frequency in the document and the document's length. The length
/// is repeated in every posting so that every traversal scores a posting from its impact alone.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bm25Impact {
    /// Term frequency (>= 1 in a posting).
    pub tf: u32,
    /// Document length.
    pub dl: u32,
}

impl Default for Bm25Impact {
    /// No posting: tf 0 and the largest length (the identity of [`Impact::join`]).
    fn default() -> Self {
        Bm25Impact { tf: 0, dl: u32::MAX }
    }
}

impl Impact for Bm25Impact {
    #[inline(always)]
    fn join(self, other: Bm25Impact) -> Bm25Impact {
        Bm25Impact { tf: self.tf.max(other.tf), dl: self.dl.min(other.dl) }
    }
    #[inline(always)]
    fn is_zero(self) -> bool {
        self.tf == 0
    }
    #[inline(always)]
    fn check_key(self) -> u64 {
        self.tf as u64
    }
}

/// BM25 impacts as the `u32` pairs they are stored as (little-endian `tf, dl`).
pub(crate) fn bm25_as_u32s(x: &[Bm25Impact]) -> &[u32] {
    // SAFETY: Bm25Impact is repr(C) over two u32 (size 8, align 4, no padding), so a slice of
    // n of them is 2n initialized u32 at the same address, with the same alignment.
    unsafe { std::slice::from_raw_parts(x.as_ptr().cast::<u32>(), x.len() * 2) }
}

/// `u32` pairs as BM25 impacts (`None` for an odd length).
pub(crate) fn bm25_from_u32s(x: &[u32]) -> Option<&[Bm25Impact]> {
    if !x.len().is_multiple_of(2) {
        return None;
    }
    // SAFETY: the slice holds an even number of initialized u32 at an address aligned for u32;
    // Bm25Impact is repr(C) over two u32 (align 4, no padding, every bit pattern valid).
    Some(unsafe { std::slice::from_raw_parts(x.as_ptr().cast::<Bm25Impact>(), x.len() / 2) })
}

/// BM25 parameters of a segment.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bm25Params {
    /// Term-frequency saturation (>= 0, finite; 1.2 is the usual value).
    pub k1: f32,
    /// Length normalisation (0..=1; 0.75 is the usual value).
    pub b: f32,
    /// Score with integers ([`crate::search::bm25::Bm25U8Kind`]) rather than floats.
    pub quantized: bool,
}

impl Bm25Params {
    /// Check the ranges.
    pub fn check(&self) -> crate::Result<()> {
        if !(self.k1.is_finite() && self.k1 >= 0.0 && self.b >= 0.0 && self.b <= 1.0) {
            return Err(crate::Error::InvalidArgument(format!(
                "BM25 parameters must satisfy k1 >= 0 (finite) and 0 <= b <= 1, got k1={} b={}",
                self.k1, self.b
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_and_casts() {
        let a = Bm25Impact { tf: 3, dl: 10 };
        let b = Bm25Impact { tf: 1, dl: 4 };
        assert_eq!(a.join(b), Bm25Impact { tf: 3, dl: 4 });
        assert_eq!(Bm25Impact::default().join(a), a);
        assert!(Bm25Impact::default().is_zero() && !a.is_zero());
        let v = vec![a, b];
        assert_eq!(bm25_as_u32s(&v), &[3, 10, 1, 4]);
        assert_eq!(bm25_from_u32s(&[3, 10, 1, 4]).unwrap(), &v[..]);
        assert!(bm25_from_u32s(&[1, 2, 3]).is_none());
        assert_eq!(2u8.join(7), 7);
        assert_eq!(0.5f32.join(0.25), 0.5);
    }
}
