//! The term dictionary of a segment: external term ids (any `u32`, `0..=2^32-1`) to dense
//! local ids `0..n_local`, in ascending external order (so a row sorted by external id is
//! sorted by local id too, and float scores keep their canonical summation order).
//!
//! Memory follows the number of distinct terms, never the value of the largest id. The builder
//! maps with a lookup table when the ids are dense (the largest id is within a small multiple
//! of the number of postings) and with a [`BucketIndex`] over the distinct ids otherwise. A segment
//! keeps the sorted external ids (`term_ids`) and, only when they are dense enough (largest id
//! below 4x the number of distinct terms), a lookup table (`term_lut`); otherwise queries are
//! mapped by binary search over `term_ids`.

use rayon::prelude::*;

/// Marks an external id that has no local id in a lookup table.
pub const NO_TERM: u32 = u32::MAX;

/// A segment writes `term_lut` when `max_id + 1 <= LUT_FACTOR * n_local`.
pub const LUT_FACTOR: u64 = 4;

/// Postings per parallel chunk when collecting and remapping ids.
const CHUNK: usize = 1 << 18;

/// Sort `a` ascending by least-significant-digit radix sort (three passes of 11 bits; a pass
/// whose digit is the same everywhere is skipped), `tmp` as scratch.
fn radix_sort(a: &mut Vec<u32>, tmp: &mut Vec<u32>) {
    const BITS: u32 = 11;
    const R: usize = 1 << BITS;
    tmp.clear();
    tmp.resize(a.len(), 0);
    for pass in 0..3 {
        let shift = pass * BITS;
        let mut count = vec![0usize; R];
        for &x in a.iter() {
            count[(x >> shift) as usize & (R - 1)] += 1;
        }
        if count.contains(&a.len()) {
            continue;
        }
        let mut sum = 0;
        for c in count.iter_mut() {
            (*c, sum) = (sum, sum + *c);
        }
        for &x in a.iter() {
            let d = (x >> shift) as usize & (R - 1);
            tmp[count[d]] = x;
            count[d] += 1;
        }
        std::mem::swap(a, tmp);
    }
}

/// External -> local ids for ids spread over a span too wide for a table: the distinct ids
/// (ascending) and, over the span `min..=max` cut into `2^k >= 2 * n` equal buckets, where
/// each bucket's ids start. A lookup reads its bucket's bounds and, when a bucket holds more
/// than one id, binary-searches them: about one id per bucket for spread-out (hashed) ids,
/// never worse than a binary search over all of them.
#[derive(Clone, Debug)]
pub struct BucketIndex {
    ids: Vec<u32>,
    min: u32,
    shift: u32,
    starts: Vec<u32>,
}

impl BucketIndex {
    /// The index of `ids` (strictly ascending).
    pub fn new(ids: Vec<u32>) -> BucketIndex {
        let (min, max) = (ids.first().copied().unwrap_or(0), ids.last().copied().unwrap_or(0));
        let buckets = (2 * ids.len()).next_power_of_two().max(1024) as u64;
        let span = (max - min) as u64 + 1;
        let mut shift = 0;
        while span.div_ceil(1 << shift) > buckets {
            shift += 1;
        }
        let n = span.div_ceil(1 << shift) as usize;
        let mut starts = vec![0u32; n + 1];
        for &t in &ids {
            starts[((t - min) >> shift) as usize + 1] += 1;
        }
        for b in 0..n {
            starts[b + 1] += starts[b];
        }
        BucketIndex { ids, min, shift, starts }
    }

    /// The local id (position in the ascending ids) of `t`, if present.
    #[inline]
    pub fn get(&self, t: u32) -> Option<u32> {
        let b = (t.wrapping_sub(self.min) >> self.shift) as usize;
        if t < self.min || b + 1 >= self.starts.len() {
            return None;
        }
        let (lo, hi) = (self.starts[b] as usize, self.starts[b + 1] as usize);
        if hi - lo == 1 {
            return (self.ids[lo] == t).then_some(lo as u32);
        }
        self.ids[lo..hi].binary_search(&t).ok().map(|i| (lo + i) as u32)
    }
}

/// A direct-mapped table over `2^bits` slots (multiplicative hash): each slot holds at most
/// one key and a 32-bit value (`key << 32 | value`); a key whose slot another key owns is not
/// in the table. A lookup is one load and one comparison.
#[derive(Clone, Debug)]
struct Direct {
    slots: Vec<u64>,
    bits: u32,
}

const EMPTY: u64 = u64::MAX;
/// Largest table: 2^22 slots (32 MiB).
const MAX_BITS: u32 = 22;

impl Direct {
    fn new(bits: u32) -> Direct {
        Direct { slots: vec![EMPTY; 1 << bits], bits }
    }
    #[inline(always)]
    fn slot(&self, k: u32) -> usize {
        ((k as u64 | 1 << 32).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - self.bits)) as usize
    }
    /// The value of `k`, if `k` owns its slot.
    #[inline(always)]
    fn get(&self, k: u32) -> Option<u32> {
        let s = self.slots[self.slot(k)];
        (s >> 32 == k as u64 && s != EMPTY).then_some(s as u32)
    }
    fn entries(&self) -> impl Iterator<Item = (u32, u32)> + '_ {
        self.slots.iter().filter(|&&s| s != EMPTY).map(|&s| ((s >> 32) as u32, s as u32))
    }
}

/// Distinct ids of a part of the postings, with how often each was seen: the keys owning a
/// slot of a direct-mapped table (counted there), and the others (collisions, typically rare
/// ids) listed as they come.
struct Distinct {
    table: Direct,
    owned: usize,
    overflow: Vec<u32>,
}

impl Distinct {
    fn new() -> Distinct {
        Distinct { table: Direct::new(16), owned: 0, overflow: Vec::new() }
    }

    fn add(&mut self, ids: &[u32]) {
        for &k in ids {
            let h = self.table.slot(k);
            let s = self.table.slots[h];
            if s >> 32 == k as u64 && s != EMPTY {
                // Counts saturate below u32::MAX, so a slot never reads as EMPTY.
                self.table.slots[h] = s + ((s as u32) < u32::MAX - 1) as u64;
            } else if s == EMPTY {
                self.table.slots[h] = (k as u64) << 32 | 1;
                self.owned += 1;
                if 4 * self.owned > self.table.slots.len() && self.table.bits < MAX_BITS {
                    self.grow();
                }
            } else {
                self.overflow.push(k);
            }
        }
    }

    /// Double the table; keys that collide in the new one join the overflow.
    fn grow(&mut self) {
        let bigger = Direct::new(self.table.bits + 1);
        let old = std::mem::replace(&mut self.table, bigger);
        self.owned = 0;
        for (k, c) in old.entries() {
            let h = self.table.slot(k);
            if self.table.slots[h] == EMPTY {
                self.table.slots[h] = (k as u64) << 32 | c as u64;
                self.owned += 1;
            } else {
                self.overflow.push(k);
            }
        }
    }

    fn merge(mut self, other: Distinct) -> Distinct {
        if other.owned > self.owned {
            return other.merge(self);
        }
        for (k, c) in other.table.entries() {
            let h = self.table.slot(k);
            let s = self.table.slots[h];
            if s >> 32 == k as u64 && s != EMPTY {
                self.table.slots[h] = ((s as u32).saturating_add(c).min(u32::MAX - 1) as u64) | (s & !0xffff_ffff);
            } else if s == EMPTY {
                self.table.slots[h] = (k as u64) << 32 | c as u64;
                self.owned += 1;
            } else {
                self.overflow.push(k);
            }
        }
        self.overflow.extend_from_slice(&other.overflow);
        self
    }

    /// Every distinct id with its count (the counts of overflowed ids are partial), ascending.
    fn finish(self) -> Vec<(u32, u32)> {
        let (mut over, mut tmp) = (self.overflow, Vec::new());
        radix_sort(&mut over, &mut tmp);
        let mut out: Vec<(u32, u32)> = self.table.entries().collect();
        let mut i = 0;
        while i < over.len() {
            let j = i + over[i..].iter().take_while(|&&x| x == over[i]).count();
            out.push((over[i], (j - i) as u32));
            i = j;
        }
        out.sort_unstable();
        // An id may be both owned and overflowed: keep one, summing the counts.
        let mut merged: Vec<(u32, u32)> = Vec::with_capacity(out.len());
        for (k, c) in out {
            match merged.last_mut() {
                Some(last) if last.0 == k => last.1 = last.1.saturating_add(c),
                _ => merged.push((k, c)),
            }
        }
        merged
    }
}

/// External -> local ids for ids spread over a span too wide for a lookup table: a
/// direct-mapped table in which the most frequent ids own their slots (one load per lookup),
/// and a [`BucketIndex`] for the rest.
#[derive(Clone, Debug)]
pub struct SparseMap {
    direct: Direct,
    buckets: BucketIndex,
}

impl SparseMap {
    /// The map of `ids` (ascending, with how often each occurs).
    fn new(ids: &[(u32, u32)]) -> SparseMap {
        let mut bits = 16;
        while (1usize << bits) < 8 * ids.len() && bits < MAX_BITS {
            bits += 1;
        }
        let mut direct = Direct::new(bits);
        let mut by_count: Vec<u32> = (0..ids.len() as u32).collect();
        by_count.sort_unstable_by_key(|&l| std::cmp::Reverse(ids[l as usize].1));
        for l in by_count {
            let k = ids[l as usize].0;
            let h = direct.slot(k);
            if direct.slots[h] == EMPTY {
                direct.slots[h] = (k as u64) << 32 | l as u64;
            }
        }
        SparseMap { direct, buckets: BucketIndex::new(ids.iter().map(|e| e.0).collect()) }
    }

    /// The local id of `t`, if present.
    #[inline(always)]
    pub fn get(&self, t: u32) -> Option<u32> {
        self.direct.get(t).or_else(|| self.buckets.get(t))
    }
}

/// External -> local term ids for building a segment.
#[derive(Clone, Debug)]
pub enum TermMap {
    /// Lookup table indexed by external id (`NO_TERM` where absent).
    Dense(Vec<u32>),
    /// Spread-out ids.
    Sparse(SparseMap),
}

impl TermMap {
    /// The dictionary of the ids in `terms`: the map and the sorted distinct external ids
    /// (`term_ids[local] = external`). A lookup table is used when the largest id is below
    /// `max(4 * terms.len(), 65536)` (memory proportional to the input); otherwise the
    /// distinct ids are collected in direct-mapped tables (one per worker) and lookups go
    /// through a [`SparseMap`] (memory proportional to the distinct ids).
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
        let counted = terms
            .par_chunks(CHUNK)
            .fold(Distinct::new, |mut d, c| {
                d.add(c);
                d
            })
            .reduce(Distinct::new, Distinct::merge)
            .finish();
        let ids = counted.iter().map(|e| e.0).collect();
        (TermMap::Sparse(SparseMap::new(&counted)), ids)
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
    fn radix_sort_and_merge() {
        let mut rng = 7u64;
        let mut v: Vec<u32> = (0..100_000)
            .map(|_| {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                rng as u32 >> (rng % 20)
            })
            .collect();
        let mut want = v.clone();
        want.sort_unstable();
        radix_sort(&mut v, &mut Vec::new());
        assert_eq!(v, want);
        // Clustered ids (one bucket holds many) are still found.
        let ids: Vec<u32> = (0..5000u32).map(|i| u32::MAX - 10_000 + 2 * i).chain([0, 1 << 31]).collect::<Vec<_>>();
        let mut sorted = ids.clone();
        sorted.sort_unstable();
        let ix = BucketIndex::new(sorted.clone());
        for (l, &t) in sorted.iter().enumerate() {
            assert_eq!(ix.get(t), Some(l as u32));
        }
        assert_eq!(ix.get(u32::MAX - 9_999), None);
        assert_eq!(ix.get(5), None);
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
    fn sparse_ids_take_the_bucket_path() {
        let terms = [u32::MAX, 0, 1 << 31, 10_000_000, u32::MAX];
        assert_eq!(TermMap::from_terms(&terms).0.get(10_000_000), Some(1));
        let (map, ids) = TermMap::from_terms(&terms);
        assert!(matches!(map, TermMap::Sparse(_)));
        assert_eq!(ids, vec![0, 10_000_000, 1 << 31, u32::MAX]);
        assert!(segment_lut(&ids).is_none());
        let (map, _) = TermMap::from_terms(&[3, 1, 2]);
        assert_eq!(map.get(2), Some(1));
        assert!(matches!(map, TermMap::Dense(ref l) if l.len() == 4));
    }
}
