//! BM25 scored in the engine at query time (Robertson & Zaragoza, "The probabilistic relevance
//! framework: BM25 and beyond", FnTIR 2009; the idf of Lucene's `BM25Similarity`):
//!
//! ```text
//! score(q, d) = sum over query terms t of  W_t * tf / (tf + k1 * (1 - b) + k1 * b * dl / avgdl)
//! W_t         = idf_t * qtf_t * (k1 + 1)
//! idf_t       = ln(1 + (N - df_t + 0.5) / (df_t + 0.5))
//! ```
//!
//! Segments store `(tf, dl)` per posting and k1, b; the collection statistics (N, the total
//! length, df of each query term) come with the query ([`Bm25Stats`]), computed by the caller
//! over whatever the collection is (a store's live documents, or every shard of a sharded
//! index), so scores equal those of a fresh index over the same documents.
//!
//! A posting's score is evaluated as `W / (1 + K / tf)` with `K = c0 + c1 * dl`,
//! `c0 = k1 (1 - b)`, `c1 = k1 b / avgdl`. Every floating-point step is monotone (a product,
//! sum or quotient of non-negative values rounds monotonically in each argument), so the
//! computed score is non-decreasing in `tf` and non-increasing in `dl` *as computed*, not only
//! in exact arithmetic: the score of a block's join `(max tf, min dl)` is a true upper bound of
//! every posting in the block, for any statistics.
//!
//! Two arithmetics over the same postings:
//! - [`Bm25F32Kind`]: float scores. Each contribution is the f32 of the formula above; a
//!   document's contributions are summed exactly in fixed point ([`super::fixed`]), so the
//!   score (the f32 nearest to that sum) does not depend on the order of the terms, hence not
//!   on how a term dictionary numbered them: two indexes over the same documents, added in
//!   any order or split into shards with their own dictionaries, give bit-identical scores.
//! - [`Bm25U8Kind`]: the document weight `(k1 + 1) tf / (tf + K)` (always below `k1 + 1`) is
//!   quantized on the fixed grid `255 / (k1 + 1)` at query time, and multiplied by the query
//!   weight `idf * qtf` quantized to 16 bits as [`super::U8Kind`] does: exact integer scores,
//!   comparable across segments and shards that share k1 and the statistics.

use super::fixed::{self, Fixed};
use super::kind::{quantize_query_for, u32_floor_below, Bm25Ctx, Kind, Scratch, WeightCtx};
use crate::index::{Bm25Impact, ImpactArrays, Impacts, Index, IndexView};
use crate::{Error, Result};

/// Collection statistics of a BM25 search: the number of documents, the sum of their lengths,
/// and the document frequency of a set of terms (every term of the query, or of a batch).
#[derive(Clone, Debug, PartialEq)]
pub struct Bm25Stats {
    n_docs: u64,
    total_len: u64,
    terms: Vec<u32>,
    df: Vec<u64>,
}

impl Bm25Stats {
    /// Statistics over `n_docs` documents of total length `total_len`, with `df[i]` the
    /// document frequency of `terms[i]`. Terms may come in any order; a repeated term, lengths
    /// that differ, or a document frequency above `n_docs` are errors.
    pub fn new(n_docs: u64, total_len: u64, terms: Vec<u32>, df: Vec<u64>) -> Result<Bm25Stats> {
        if terms.len() != df.len() {
            return Err(Error::InvalidArgument(format!(
                "BM25 statistics: {} terms but {} document frequencies",
                terms.len(),
                df.len()
            )));
        }
        if let Some((t, d)) = terms.iter().zip(&df).find(|(_, &d)| d > n_docs) {
            return Err(Error::InvalidArgument(format!(
                "BM25 statistics: term {t} is in {d} documents, more than the {n_docs} documents counted"
            )));
        }
        let mut pairs: Vec<(u32, u64)> = terms.into_iter().zip(df).collect();
        pairs.sort_unstable_by_key(|p| p.0);
        if let Some(w) = pairs.windows(2).find(|w| w[0].0 == w[1].0) {
            return Err(Error::InvalidArgument(format!("BM25 statistics: term {} is listed twice", w[0].0)));
        }
        let (terms, df) = pairs.into_iter().unzip();
        Ok(Bm25Stats { n_docs, total_len, terms, df })
    }

    /// Statistics over every document of `indexes` (BM25 segments; others count nothing) for
    /// `terms` (any order, duplicates allowed).
    pub fn of_indexes(indexes: &[&Index], terms: &[u32]) -> Bm25Stats {
        let mut t = terms.to_vec();
        t.sort_unstable();
        t.dedup();
        let mut df = vec![0u64; t.len()];
        let (mut n_docs, mut total_len) = (0u64, 0u64);
        for ix in indexes {
            let v = ix.view();
            let Some(meta) = v.bm25 else { continue };
            n_docs += v.n_docs as u64;
            total_len += meta.total_len;
            for (d, &term) in df.iter_mut().zip(&t) {
                *d += v.local_term(term).map_or(0, |l| v.df(l));
            }
        }
        Bm25Stats { n_docs, total_len, terms: t, df }
    }

    /// Number of documents (N).
    pub fn n_docs(&self) -> u64 {
        self.n_docs
    }

    /// Sum of the document lengths.
    pub fn total_len(&self) -> u64 {
        self.total_len
    }

    /// The terms, ascending.
    pub fn terms(&self) -> &[u32] {
        &self.terms
    }

    /// Document frequencies, aligned with [`Bm25Stats::terms`].
    pub fn df(&self) -> &[u64] {
        &self.df
    }

    /// Document frequency of `term`, if the statistics cover it.
    pub fn df_of(&self, term: u32) -> Option<u64> {
        self.terms.binary_search(&term).ok().map(|i| self.df[i])
    }

    /// Average document length (1 for a collection without length, which has no postings).
    pub fn avgdl(&self) -> f64 {
        if self.n_docs == 0 || self.total_len == 0 {
            1.0
        } else {
            self.total_len as f64 / self.n_docs as f64
        }
    }

    /// `ln(1 + (N - df + 0.5) / (df + 0.5))` (> 0, since `df <= N`).
    pub fn idf(&self, df: u64) -> f64 {
        let (n, df) = (self.n_docs as f64, df as f64);
        ((n - df + 0.5) / (df + 0.5)).ln_1p()
    }

    /// The sum of statistics of disjoint collections (shards) over the same terms. Parts over
    /// other terms, or sums past `u64::MAX` (documents, total length or a df; the additions
    /// are checked, they wrapped in release builds), are [`Error::InvalidArgument`].
    pub fn sum(parts: &[Bm25Stats]) -> Result<Bm25Stats> {
        let Some(first) = parts.first() else {
            return Ok(Bm25Stats { n_docs: 0, total_len: 0, terms: Vec::new(), df: Vec::new() });
        };
        let overflow =
            |what: &str| Error::InvalidArgument(format!("BM25 statistics: the summed {what} overflows 64 bits"));
        let mut out = first.clone();
        for p in &parts[1..] {
            if p.terms != out.terms {
                return Err(Error::InvalidArgument("BM25 statistics to add cover different terms".into()));
            }
            out.n_docs = out.n_docs.checked_add(p.n_docs).ok_or_else(|| overflow("document count"))?;
            out.total_len = out.total_len.checked_add(p.total_len).ok_or_else(|| overflow("total length"))?;
            for ((a, b), t) in out.df.iter_mut().zip(&p.df).zip(&p.terms) {
                *a = a.checked_add(*b).ok_or_else(|| overflow(&format!("document frequency of term {t}")))?;
            }
        }
        Ok(out)
    }
}

/// `c0 = k1 (1 - b)` and `c1 = k1 b / avgdl` of a search.
fn consts(ctx: &WeightCtx) -> (Bm25Ctx, f32, f32) {
    let p = ctx.bm25.unwrap_or(Bm25Ctx { k1: 0.0, b: 0.0, avgdl: 1.0 });
    let avgdl = if p.avgdl > 0.0 && p.avgdl.is_finite() { p.avgdl } else { 1.0 };
    let (k1, b) = (p.k1 as f64, p.b as f64);
    (p, (k1 * (1.0 - b)) as f32, (k1 * b / avgdl) as f32)
}

/// `1 + K / tf`, the divisor of a posting's score (monotone in tf and dl, see the module doc).
#[inline(always)]
fn divisor(c0: f32, c1: f32, i: Bm25Impact) -> f32 {
    1.0 + (c0 + c1 * i.dl as f32) / i.tf as f32
}

/// Query weight of [`Bm25F32Kind`]: `W = idf * qtf * (k1 + 1)` in fixed-point units
/// (`W x 2^e`, see [`super::fixed`]) and the search's constants.
#[derive(Clone, Copy, Debug)]
pub struct Bm25W {
    /// `idf * qtf * (k1 + 1) * 2^e` (a power-of-two scaling: exact).
    pub w: f32,
    /// `k1 (1 - b)`.
    pub c0: f32,
    /// `k1 b / avgdl`.
    pub c1: f32,
}

/// BM25 with float scores, summed exactly in fixed point ([`super::fixed`]): a contribution
/// is `trunc(W 2^e / (1 + K / tf))` units (the f32 formula scaled by `2^e`, which is exact),
/// a score the f32 nearest to the sum of its units times `2^-e`, whatever the order of terms.
pub enum Bm25F32Kind {}
impl Kind for Bm25F32Kind {
    type Imp = Bm25Impact;
    type S = Fixed;
    type W = Bm25W;
    const ORDERED_SUM: bool = false;
    /// The unit `2^-e` comes from the sum of every query weight (the bound of every score), so
    /// it is the same in every segment and shard searched with the same statistics.
    fn weights(ws: &[f32], ctx: &WeightCtx) -> (Vec<Bm25W>, f32) {
        let (p, c0, c1) = consts(ctx);
        let k1p1 = p.k1 as f64 + 1.0;
        let big: Vec<f32> = ws.iter().map(|&w| (w as f64 * k1p1) as f32).collect();
        let e = fixed::unit_exponent(big.iter().map(|&w| w as f64).sum());
        let (scale, norm) = (2f64.powi(e), 2f32.powi(e));
        (big.into_iter().map(|w| Bm25W { w: (w as f64 * scale) as f32, c0, c1 }).collect(), norm)
    }
    fn acc(s: &mut Scratch) -> &mut Vec<Fixed> {
        &mut s.acc_fixed
    }
    fn ub_and_acc(s: &mut Scratch) -> (&mut Vec<Fixed>, &mut Vec<Fixed>) {
        (&mut s.ub_fixed, &mut s.small_fixed)
    }
    #[inline(always)]
    fn impact_of(x: f32, dl: u32, _scale: f32) -> Bm25Impact {
        Bm25Impact { tf: x as u32, dl }
    }
    fn doc_weight(i: Bm25Impact, ctx: &WeightCtx) -> f32 {
        let (p, c0, c1) = consts(ctx);
        if i.tf == 0 {
            return 0.0;
        }
        ((p.k1 as f64 + 1.0) / divisor(c0, c1, i) as f64) as f32
    }
    fn w_is_zero(w: Bm25W) -> bool {
        w.w == 0.0
    }
    #[inline(always)]
    fn mul(w: Bm25W, i: Bm25Impact) -> Fixed {
        if i.tf == 0 {
            return Fixed(0);
        }
        fixed::to_units(w.w / divisor(w.c0, w.c1, i))
    }
    #[inline(always)]
    fn prune(bound: Fixed, thr: Fixed, _slack: f32) -> bool {
        bound <= thr
    }
    #[inline(always)]
    fn below(bound: Fixed, thr: Fixed, _slack: f32) -> bool {
        bound <= thr
    }
    #[inline(always)]
    fn to_f32(s: Fixed, norm: f32) -> f32 {
        fixed::to_f32(s, norm)
    }
    fn floor_below(f: f32, norm: f32) -> Fixed {
        fixed::floor_below(f, norm)
    }
    fn arrays<'a>(v: &IndexView<'a>) -> Option<ImpactArrays<'a, Bm25Impact>> {
        match v.impacts {
            Impacts::Bm25(a) => Some(a),
            _ => None,
        }
    }
}

/// Query weight of [`Bm25U8Kind`]: the quantized `idf * qtf` and the search's constants.
#[derive(Clone, Copy, Debug)]
pub struct Bm25Q {
    /// Quantized `idf * qtf`.
    pub q: u32,
    /// `k1 (1 - b)`.
    pub c0: f32,
    /// `k1 b / avgdl`.
    pub c1: f32,
}

/// The document weight `(k1 + 1) tf / (tf + K)` on the grid `255 / (k1 + 1)`:
/// `round(255 / (1 + K / tf))` clamped to 1..=255 (a match is never lost).
///
/// It is computed for every posting the BM25 u8 kind scores, so the rounding is [`grid8`]
/// (branch-free f32 arithmetic that vectorises), not `f32::round`, which on baseline x86-64
/// (no SSE4.1) is a call to libm's `roundf`: 25% of a BM25 calibration's time (debian, 60k
/// texts).
#[inline(always)]
fn q8(c0: f32, c1: f32, i: Bm25Impact) -> u32 {
    grid8(255.0 / divisor(c0, c1, i))
}

/// `(y.round() as u32).clamp(1, 255)` for every f32 `y` (NaN and negatives give 1), as
/// `trunc(min(max(y, 0), 255.5) + 0.5)` clamped. Equal because: below 0.5 both give 1 after
/// the clamp (the f32 sum may round 0.4999... + 0.5 up to 1, which the clamp hides); from 0.5
/// to 255.5, `y + 0.5` is exact or rounds within `[floor(y + 0.5), floor(y + 0.5) + 0.5]` (it
/// only rounds where it crosses into a binade of coarser spacing, upward from a power of two),
/// so its truncation is `floor(y + 0.5)`, which is `round(y)` (half away from zero); above,
/// both give 255.
#[inline(always)]
#[allow(clippy::manual_clamp)] // max/min send a NaN to 0, where clamp would keep it
fn grid8(y: f32) -> u32 {
    let r = y.max(0.0).min(255.5) + 0.5;
    // SAFETY: r is in [0.5, 256] (f32::max returns 0 for a NaN y), within i32.
    let t = unsafe { r.to_int_unchecked::<i32>() } as u32;
    t.clamp(1, 255)
}

/// BM25 with exact integer scores.
pub enum Bm25U8Kind {}
impl Kind for Bm25U8Kind {
    type Imp = Bm25Impact;
    type S = u32;
    type W = Bm25Q;
    const ORDERED_SUM: bool = false;
    fn weights(ws: &[f32], ctx: &WeightCtx) -> (Vec<Bm25Q>, f32) {
        let (p, c0, c1) = consts(ctx);
        let grid = 255.0 / (p.k1 as f64 + 1.0);
        let (qs, q) = quantize_query_for(ws, grid);
        (qs.into_iter().map(|q| Bm25Q { q, c0, c1 }).collect(), (q * grid) as f32)
    }
    fn acc(s: &mut Scratch) -> &mut Vec<u32> {
        &mut s.acc_u32
    }
    fn ub_and_acc(s: &mut Scratch) -> (&mut Vec<u32>, &mut Vec<u32>) {
        (&mut s.ub_u32, &mut s.small_u32)
    }
    #[inline(always)]
    fn impact_of(x: f32, dl: u32, _scale: f32) -> Bm25Impact {
        Bm25Impact { tf: x as u32, dl }
    }
    fn doc_weight(i: Bm25Impact, ctx: &WeightCtx) -> f32 {
        let (p, c0, c1) = consts(ctx);
        if i.tf == 0 {
            return 0.0;
        }
        (q8(c0, c1, i) as f64 * (p.k1 as f64 + 1.0) / 255.0) as f32
    }
    fn scored_query_weight(w: Bm25Q, norm: f32, ctx: &WeightCtx) -> Option<f32> {
        // contribution q x q8 / norm = (q x grid / norm) x (q8 / grid), grid = 255 / (k1 + 1)
        let grid = 255.0 / (consts(ctx).0.k1 as f64 + 1.0);
        Some((w.q as f64 * grid / norm as f64) as f32)
    }
    fn w_is_zero(w: Bm25Q) -> bool {
        w.q == 0
    }
    #[inline(always)]
    fn mul(w: Bm25Q, i: Bm25Impact) -> u32 {
        if i.tf == 0 {
            return 0;
        }
        w.q * q8(w.c0, w.c1, i)
    }
    /// Per block: every posting's contribution first (the two divisions and the rounding of
    /// [`q8`], in a loop without stores to `acc`, which the compiler is free to vectorise and
    /// whose divisions no longer wait on the scattered adds), then the adds. With [`grid8`],
    /// debian's BM25 exhaustive search went from 0.83 to 0.27 ms (`benches/bm25_peers.py`).
    #[inline]
    fn accumulate(acc: &mut [u32], docs: &[u32], imps: &[Bm25Impact], w: Bm25Q) {
        const CHUNK: usize = 128;
        let mut buf = [0u32; CHUNK];
        for (dc, ic) in docs.chunks(CHUNK).zip(imps.chunks(CHUNK)) {
            let n = dc.len().min(ic.len());
            for (b, &i) in buf[..n].iter_mut().zip(&ic[..n]) {
                let c = w.q * q8(w.c0, w.c1, i);
                *b = if i.tf == 0 { 0 } else { c };
            }
            for (&d, &c) in dc[..n].iter().zip(&buf[..n]) {
                if let Some(a) = acc.get_mut(d as usize) {
                    *a += c;
                }
            }
        }
    }
    #[inline(always)]
    fn prune(bound: u32, thr: u32, _slack: f32) -> bool {
        bound <= thr
    }
    #[inline(always)]
    fn below(bound: u32, thr: u32, _slack: f32) -> bool {
        bound <= thr
    }
    #[inline(always)]
    fn to_f32(s: u32, norm: f32) -> f32 {
        (s as f64 / norm as f64) as f32
    }
    fn floor_below(f: f32, norm: f32) -> u32 {
        u32_floor_below(f, norm)
    }
    fn arrays<'a>(v: &IndexView<'a>) -> Option<ImpactArrays<'a, Bm25Impact>> {
        match v.impacts {
            Impacts::Bm25(a) => Some(a),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// [`grid8`] equals `(y.round() as u32).clamp(1, 255)` on every f32 from 0 to 2^10 by a
    /// stride of bit patterns, every value within 4 ulps of each half-integer up to 256 (the
    /// rounding's edges), and the special values: negatives, NaN, infinities, huge values.
    #[test]
    fn grid8_equals_rounding_then_clamping() {
        let check = |y: f32| assert_eq!(grid8(y), (y.round() as u32).clamp(1, 255), "y = {y:e} ({:#x})", y.to_bits());
        let mut b = 0u32;
        while f32::from_bits(b) < 1024.0 {
            check(f32::from_bits(b));
            b += 61;
        }
        for h in 0..=520u32 {
            let y = h as f32 * 0.5;
            for d in -4i32..=4 {
                check(f32::from_bits((y.to_bits() as i32 + d).max(0) as u32));
            }
        }
        for y in [
            -0.0f32,
            -0.3,
            -0.5,
            -0.7,
            -1.5,
            -1e30,
            f32::NAN,
            -f32::NAN,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::MIN_POSITIVE,
            1e-45,
            8388607.5,
            8388608.0,
            4294967040.0,
            4294967296.0,
            1e30,
            f32::MAX,
        ] {
            check(y);
        }
    }

    /// The block accumulation (contributions first, then added) adds what [`Kind::mul`] gives
    /// per posting, tf 0 and extreme lengths included.
    #[test]
    fn u8_accumulate_adds_mul() {
        let mut rng = 0x2545_F491_4F6C_DD1Du64;
        let mut next = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        for round in 0..200 {
            let n = (next() % 300) as usize;
            let docs: Vec<u32> = (0..n as u32).map(|d| d * 3 + (round % 3)).collect();
            let imps: Vec<Bm25Impact> = (0..n)
                .map(|_| {
                    let tf = match next() % 10 {
                        0 => 0,
                        1 => u32::MAX - (next() % 4) as u32,
                        _ => 1 + (next() % 40) as u32,
                    };
                    let dl = match next() % 10 {
                        0 => 0,
                        1 => u32::MAX - (next() % 4) as u32,
                        2 => 1 << 24 | 1,
                        _ => 1 + (next() % 900) as u32,
                    };
                    Bm25Impact { tf, dl }
                })
                .collect();
            let w = Bm25Q {
                q: (next() % 60_000) as u32,
                c0: 0.3 + (next() % 100) as f32 * 0.01,
                c1: (next() % 1000) as f32 * 1e-4,
            };
            let mut acc = vec![7u32; 3 * n + 3];
            let mut want = acc.clone();
            Bm25U8Kind::accumulate(&mut acc, &docs, &imps, w);
            for (&d, &i) in docs.iter().zip(&imps) {
                want[d as usize] += Bm25U8Kind::mul(w, i);
            }
            assert_eq!(acc, want, "round {round}");
        }
    }

    fn ctx(k1: f32, b: f32, avgdl: f64) -> WeightCtx {
        WeightCtx { scale: 1.0, bm25: Some(Bm25Ctx { k1, b, avgdl }) }
    }

    /// The computed score is monotone in (tf up, dl down) for random parameters: a join bounds
    /// every posting under it.
    #[test]
    fn computed_scores_are_monotone() {
        let mut rng = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        for _ in 0..2000 {
            let k1 = (next() % 400) as f32 / 100.0;
            let b = (next() % 101) as f32 / 100.0;
            let avgdl = 1.0 + (next() % 100_000) as f64 / 7.0;
            let c = ctx(k1, b, avgdl);
            let (fw, _) = Bm25F32Kind::weights(&[(next() % 1000) as f32 / 37.0 + 0.01], &c);
            let (qw, _) = Bm25U8Kind::weights(&[(next() % 1000) as f32 / 37.0 + 0.01], &c);
            let tf = 1 + (next() % 50) as u32;
            let dl = (next() % 1_000_000) as u32;
            let i = Bm25Impact { tf, dl };
            for j in [Bm25Impact { tf: tf + 1, dl }, Bm25Impact { tf, dl: dl.saturating_sub(1) }, i] {
                assert!(Bm25F32Kind::mul(fw[0], j) >= Bm25F32Kind::mul(fw[0], i), "{k1} {b} {avgdl} {i:?} {j:?}");
                assert!(Bm25U8Kind::mul(qw[0], j) >= Bm25U8Kind::mul(qw[0], i));
            }
            assert_eq!(Bm25F32Kind::mul(fw[0], Bm25Impact::default()), Fixed(0));
            assert_eq!(Bm25U8Kind::mul(qw[0], Bm25Impact::default()), 0);
        }
    }

    #[test]
    fn stats() {
        let s = Bm25Stats::new(10, 50, vec![9, 2], vec![1, 4]).unwrap();
        assert_eq!((s.terms(), s.df()), (&[2u32, 9][..], &[4u64, 1][..]));
        assert_eq!(s.df_of(9), Some(1));
        assert_eq!(s.df_of(3), None);
        assert_eq!(s.avgdl(), 5.0);
        assert!((s.idf(4) - (1.0f64 + 6.5 / 4.5).ln()).abs() < 1e-12);
        assert!(Bm25Stats::new(1, 1, vec![1, 1], vec![1, 1]).is_err());
        assert!(Bm25Stats::new(1, 1, vec![1], vec![]).is_err());
        let err = Bm25Stats::new(3, 9, vec![7], vec![4]).unwrap_err().to_string();
        assert!(err.contains("term 7 is in 4 documents, more than the 3"), "{err}");
        let t = Bm25Stats::sum(&[s.clone(), s.clone()]).unwrap();
        assert_eq!((t.n_docs(), t.total_len(), t.df()), (20, 100, &[8u64, 2][..]));
        // checked sums: an overflow is an error naming what overflowed, never a wrapped count
        let big = Bm25Stats::new(u64::MAX, 1, vec![2, 9], vec![1, 0]).unwrap();
        let err = Bm25Stats::sum(&[big.clone(), s.clone()]).unwrap_err().to_string();
        assert!(err.contains("summed document count overflows 64 bits"), "{err}");
        let long = Bm25Stats::new(1, u64::MAX, vec![2, 9], vec![1, 0]).unwrap();
        let err = Bm25Stats::sum(&[long, s.clone()]).unwrap_err().to_string();
        assert!(err.contains("summed total length overflows 64 bits"), "{err}");
        let ok = Bm25Stats::new(u64::MAX - 10, 0, vec![2, 9], vec![0, 0]).unwrap();
        assert_eq!(Bm25Stats::sum(&[ok, s.clone()]).unwrap().n_docs(), u64::MAX);
    }
}
