//! The term dictionary of a segment: external term ids (any `u32`, `0..=2^32-1`) to dense
//! local ids `0..n_local`, in ascending external order (so a row sorted by external id is
//! sorted by local id too, and float scores keep their canonical summation order).
//!
//! Memory follows the number of distinct terms, never the value of the largest id. The builder
//! maps with a lookup table when the ids are dense (the largest id is within a small multiple
//! of the number of postings) and with an open-addressing hash table otherwise. A segment
//! keeps the sorted external ids (`term_ids`) and, only when they are dense enough (largest id
//! below 4x the number of distinct terms), a lookup table (`term_lut`); otherwise queries are
//! mapped by binary search over `term_ids`.

use rayon::prelude::*;

/// Marks an external id that has no local id in a lookup table.
pub const NO_TERM: u32 = u32::MAX;

/// A segment writes `term_lut` when `max_id + 1 <= LUT_FACTOR * n_local`.
pub const LUT_FACTOR: u64 = 4;

/// Postings per parallel chunk when collecting and remapping ids.
const CHUNK: usize = 1 << 16;

/// Open-addressing hash table from `u32` keys to `u32` values (values `< NO_TERM`), linear
/// probing, multiplicative (Fibonacci) hashing; at most half full.
#[derive(Clone, Debug)]
pub struct U32Map {
    slots: Vec<(u32, u32)>,
    shift: u32,
    len: usize,
}

impl U32Map {
    /// An empty map for about `n` keys.
    pub fn with_capacity(n: usize) -> Self {
        let cap = (2 * n.max(8)).next_power_of_two();
        U32Map { slots: vec![(0, NO_TERM); cap], shift: 64 - cap.trailing_zeros(), len: 0 }
    }

    #[inline(always)]
    fn slot(&self, key: u32) -> usize {
        ((key as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> self.shift) as usize
    }

    /// The value of `key`, if present.
    #[inline]
    pub fn get(&self, key: u32) -> Option<u32> {
        let mask = self.slots.len() - 1;
        let mut i = self.slot(key);
        loop {
            let (k, v) = self.slots[i];
            if v == NO_TERM {
                return None;
            }
            if k == key {
                return Some(v);
            }
            i = (i + 1) & mask;
        }
    }

    /// Insert `key` with `value` (< `NO_TERM`) unless present; returns true if inserted.
    #[inline]
    pub fn insert(&mut self, key: u32, value: u32) -> bool {
        debug_assert!(value != NO_TERM);
        if 2 * (self.len + 1) > self.slots.len() {
            self.grow();
        }
        let mask = self.slots.len() - 1;
        let mut i = self.slot(key);
        loop {
            let (k, v) = self.slots[i];
            if v == NO_TERM {
                self.slots[i] = (key, value);
                self.len += 1;
                return true;
            }
            if k == key {
                return false;
            }
            i = (i + 1) & mask;
        }
    }

    fn grow(&mut self) {
        let old = std::mem::replace(self, U32Map::with_capacity(self.slots.len()));
        for (k, v) in old.slots {
            if v != NO_TERM {
                self.insert(k, v);
            }
        }
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The keys, in no particular order.
    pub fn keys(&self) -> impl Iterator<Item = u32> + '_ {
        self.slots.iter().filter(|s| s.1 != NO_TERM).map(|s| s.0)
    }
}

/// External -> local term ids for building a segment.
#[derive(Clone, Debug)]
pub enum TermMap {
    /// Lookup table indexed by external id (`NO_TERM` where absent).
    Dense(Vec<u32>),
    /// Hash table.
    Sparse(U32Map),
}

impl TermMap {
    /// The dictionary of the ids in `terms`: the map and the sorted distinct external ids
    /// (`term_ids[local] = external`). A lookup table is used when the largest id is below
    /// `max(4 * terms.len(), 65536)` (memory proportional to the input), a hash table otherwise.
    pub fn from_terms(terms: &[u32]) -> (TermMap, Vec<u32>) {
        let max = terms.par_iter().copied().max();
        let Some(max) = max else {
            return (TermMap::Dense(Vec::new()), Vec::new());
        };
        let span = max as u64 + 1;
        if span <= (4 * terms.len() as u64).max(1 << 16) {
            let mut lut = vec![NO_TERM; span as usize];
            for &t in terms {
                lut[t as usize] = 0;
            }
            let mut ids = Vec::new();
            for (t, slot) in lut.iter_mut().enumerate() {
                if *slot == 0 {
                    *slot = ids.len() as u32;
                    ids.push(t as u32);
                }
            }
            return (TermMap::Dense(lut), ids);
        }
        // Distinct ids per chunk in parallel, then merged.
        let sets: Vec<U32Map> = terms
            .par_chunks(CHUNK)
            .map(|c| {
                let mut m = U32Map::with_capacity(1024);
                for &t in c {
                    m.insert(t, 0);
                }
                m
            })
            .collect();
        let mut all = U32Map::with_capacity(sets.iter().map(|s| s.len()).max().unwrap_or(0));
        for s in &sets {
            for k in s.keys() {
                all.insert(k, 0);
            }
        }
        drop(sets);
        let mut ids: Vec<u32> = all.keys().collect();
        ids.par_sort_unstable();
        let mut map = U32Map::with_capacity(ids.len());
        for (l, &t) in ids.iter().enumerate() {
            map.insert(t, l as u32);
        }
        (TermMap::Sparse(map), ids)
    }

    /// The local id of external id `t`.
    #[inline]
    pub fn get(&self, t: u32) -> Option<u32> {
        match self {
            TermMap::Dense(lut) => lut.get(t as usize).copied().filter(|&l| l != NO_TERM),
            TermMap::Sparse(m) => m.get(t),
        }
    }

    /// Replace every external id in `terms` by its local id (all must be in the map).
    pub fn remap(&self, terms: &mut [u32]) {
        terms.par_chunks_mut(CHUNK).for_each(|c| match self {
            TermMap::Dense(lut) => c.iter_mut().for_each(|t| *t = lut[*t as usize]),
            TermMap::Sparse(m) => c.iter_mut().for_each(|t| *t = m.get(*t).unwrap_or(NO_TERM)),
        });
    }
}

/// The lookup table a segment stores for `term_ids` (ascending), if the 4x rule allows it:
/// `lut[external] = local` or `NO_TERM`.
pub fn segment_lut(term_ids: &[u32]) -> Option<Vec<u32>> {
    let &max = term_ids.last()?;
    if max as u64 + 1 > LUT_FACTOR * term_ids.len() as u64 {
        return None;
    }
    let mut lut = vec![NO_TERM; max as usize + 1];
    for (l, &t) in term_ids.iter().enumerate() {
        lut[t as usize] = l as u32;
    }
    Some(lut)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn u32_map_grows_and_finds() {
        let mut m = U32Map::with_capacity(1);
        for k in (0..10_000u32).map(|i| i.wrapping_mul(2_654_435_761)) {
            assert!(m.insert(k, k % 1000));
            assert!(!m.insert(k, 1));
        }
        assert_eq!(m.len(), 10_000);
        for k in (0..10_000u32).map(|i| i.wrapping_mul(2_654_435_761)) {
            assert_eq!(m.get(k), Some(k % 1000));
        }
        assert_eq!(m.get(u32::MAX - 3), None);
        let mut e = U32Map::with_capacity(0);
        assert!(e.is_empty() && e.get(0).is_none() && e.get(u32::MAX).is_none());
        e.insert(u32::MAX, 7);
        assert_eq!(e.get(u32::MAX), Some(7));
    }

    proptest! {
        #[test]
        fn maps_agree_with_a_sorted_dedup(terms in proptest::collection::vec(
            prop_oneof![0u32..50, any::<u32>(), Just(u32::MAX), Just(0u32)], 0..3000)) {
            let (map, ids) = TermMap::from_terms(&terms);
            let mut want = terms.clone();
            want.sort_unstable();
            want.dedup();
            prop_assert_eq!(&ids, &want);
            for (l, &t) in ids.iter().enumerate() {
                prop_assert_eq!(map.get(t), Some(l as u32));
            }
            let mut local = terms.clone();
            map.remap(&mut local);
            for (a, b) in terms.iter().zip(&local) {
                prop_assert_eq!(ids[*b as usize], *a);
            }
            if let Some(lut) = segment_lut(&ids) {
                prop_assert!(lut.len() as u64 <= 4 * ids.len() as u64);
                for (l, &t) in ids.iter().enumerate() {
                    prop_assert_eq!(lut[t as usize], l as u32);
                }
                prop_assert_eq!(lut.iter().filter(|&&x| x != NO_TERM).count(), ids.len());
            }
        }
    }

    #[test]
    fn sparse_ids_take_the_hash_path() {
        let terms = [u32::MAX, 0, 1 << 31, 10_000_000, u32::MAX];
        let (map, ids) = TermMap::from_terms(&terms);
        assert!(matches!(map, TermMap::Sparse(_)));
        assert_eq!(ids, vec![0, 10_000_000, 1 << 31, u32::MAX]);
        assert!(segment_lut(&ids).is_none());
        let (map, _) = TermMap::from_terms(&[3, 1, 2]);
        assert!(matches!(map, TermMap::Dense(ref l) if l.len() == 4));
    }
}
