//! The two inner loops of term-at-a-time scoring, with SIMD twins picked once per process:
//!
//! - [`accumulate_u32`]: `acc[doc] += w * impact` for one decoded 128-posting block (a
//!   scatter-add: the doc ids of a block are distinct, so a gather / add / scatter of 16 lanes
//!   is exact);
//! - [`drain_above_u32`]: one pass over the accumulators that hands every value above a
//!   (rising) threshold to a collector and leaves every accumulator zero (16 lanes compared
//!   at a time; the collector is only called for the rare lanes that pass).
//!
//! Every SIMD kernel has a scalar twin with identical results (tested on random input for
//! every kernel this CPU has). The AVX-512 kernels run only where `avx512f` was detected at
//! run time; the wheel stays baseline x86-64. The AVX2 set ([`Isa::Avx2`]) runs the threshold
//! scan and the block-bound update 8 lanes at a time (AVX2 has no scatter, so the scatter-add
//! and the row kernel stay scalar there). Which set searches use is measured once per process
//! ([`fastest`]): on a CPU whose AVX-512 scatter is slow, the AVX2 set wins.
//!
//! Safety of the scatter: the kernels never trust the doc ids. A block's doc ids are checked
//! against the accumulator length (one vector max per block) before any unchecked access; a
//! block that fails the check (a corrupt index that slipped through validation) is added with
//! bounds checks instead, ignoring out-of-range ids, as the portable loop does.

use std::sync::atomic::{AtomicU8, Ordering};

use crate::index::TermId;

/// Which accumulation kernel this CPU runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Isa {
    /// Portable scalar loops.
    Scalar,
    /// AVX2: 8-lane threshold scan and block-bound update; the other kernels scalar.
    #[cfg(target_arch = "x86_64")]
    Avx2,
    /// AVX-512 (F + BW) gather / scatter kernels.
    #[cfg(target_arch = "x86_64")]
    Avx512,
}

/// The kernel set searches use: the fastest on this CPU, measured once per process
/// ([`fastest`]), or the one [`force`] chose.
#[inline]
pub fn isa() -> Isa {
    match CHOSEN.load(Ordering::Relaxed) {
        1 => Isa::Scalar,
        #[cfg(target_arch = "x86_64")]
        2 => Isa::Avx512,
        #[cfg(target_arch = "x86_64")]
        3 => Isa::Avx2,
        _ => {
            let best = fastest();
            CHOSEN.store(code(best), Ordering::Relaxed);
            best
        }
    }
}

/// Run every later search with `isa` (`None`: the fastest, [`fastest`]), for measuring the
/// SIMD kernels against their scalar twins. `isa` must be one of [`available`] (others are
/// ignored).
pub fn force(isa: Option<Isa>) {
    let pick = isa.filter(|i| available().contains(i)).unwrap_or_else(fastest);
    CHOSEN.store(code(pick), Ordering::Relaxed);
}

/// The fastest kernel set of [`available`] on this CPU, measured once per process (about a
/// millisecond, on the first search): the widest instructions are not always the fastest.
/// On an AMD EPYC with AVX-512 (a Zen 4 class core, whose 16-lane scatter is slow) the AVX-512
/// set made debian's exhaustive search no faster than the scalar loops (0.146-0.153 against
/// 0.146-0.149 ms median), while the AVX2 set took 0.121-0.126 ms (`examples/probe.rs` with
/// `PROBE_ISA`, each query run by every set in turn, both orders). The measurement is the
/// exhaustive scorer's work, [`accumulate_u32`] over 128-posting blocks of distinct random
/// documents and one [`drain_above_u32`] pass, on 65,536 accumulators; each set runs
/// [`PICK_TRIALS`] times, interleaved, and keeps its fastest trial. A wider set must win by
/// [`PICK_MARGIN`] to be chosen over a narrower one.
pub fn fastest() -> Isa {
    static PICK: std::sync::OnceLock<Isa> = std::sync::OnceLock::new();
    *PICK.get_or_init(|| {
        let sets = available();
        if sets.len() == 1 {
            return sets[0];
        }
        let times = measure(&sets);
        let mut best = 0;
        for i in 1..sets.len() {
            if times[i] < times[best] * (1.0 - PICK_MARGIN) {
                best = i;
            }
        }
        sets[best]
    })
}

/// Trials per kernel set in [`fastest`].
pub const PICK_TRIALS: usize = 7;
/// How much faster (as a fraction) a wider kernel set must be to be picked over a narrower one.
pub const PICK_MARGIN: f64 = 0.03;

/// Seconds of each kernel set's fastest trial of the exhaustive scorer's work (see [`fastest`]).
pub fn measure(sets: &[Isa]) -> Vec<f64> {
    const N: usize = 1 << 16;
    const BLOCKS: usize = 192;
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || crate::synth::xorshift64(&mut seed);
    // Blocks of 128 distinct ascending documents (a posting list's block), random impacts.
    let blocks: Vec<(Vec<u32>, Vec<u8>)> = (0..BLOCKS)
        .map(|_| {
            let start = (next() % (N as u64 - 128 * 64)) as u32;
            let mut d = start;
            let docs: Vec<u32> = (0..128)
                .map(|_| {
                    d += 1 + (next() % 63) as u32;
                    d
                })
                .collect();
            let imps: Vec<u8> = (0..128).map(|_| 1 + (next() % 255) as u8).collect();
            (docs, imps)
        })
        .collect();
    let mut acc = vec![0u32; N];
    let mut best = vec![f64::MAX; sets.len()];
    for _ in 0..PICK_TRIALS {
        for (i, &isa) in sets.iter().enumerate() {
            let t = std::time::Instant::now();
            for (j, (docs, imps)) in blocks.iter().enumerate() {
                accumulate_u32(isa, &mut acc, docs, imps, 1 + j as u32);
            }
            let mut kept = 0u32;
            drain_above_u32(isa, &mut acc, 1 << 20, |_, s| {
                kept = kept.wrapping_add(s);
                1 << 20
            });
            std::hint::black_box(kept);
            best[i] = best[i].min(t.elapsed().as_secs_f64());
        }
    }
    best
}

static CHOSEN: AtomicU8 = AtomicU8::new(0);

fn code(i: Isa) -> u8 {
    match i {
        Isa::Scalar => 1,
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => 2,
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => 3,
    }
}

/// Every kernel set this CPU can run, narrowest first ([`fastest`] prefers the narrower of two
/// sets within its margin).
pub fn available() -> Vec<Isa> {
    #[allow(unused_mut)]
    let mut v = vec![Isa::Scalar];
    #[cfg(target_arch = "x86_64")]
    {
        if is_x86_feature_detected!("avx2") {
            v.push(Isa::Avx2);
        }
        if is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512bw") {
            v.push(Isa::Avx512);
        }
    }
    v
}

/// `acc[docs[i]] += w * imps[i] as u32` for every `i < docs.len()`, with wrapping arithmetic
/// (the query plan guarantees no score overflows). `docs` must be distinct (they are: one
/// block of one posting list); ids at or beyond `acc.len()` are ignored.
#[inline]
pub fn accumulate_u32(isa: Isa, acc: &mut [u32], docs: &[u32], imps: &[u8], w: u32) {
    let n = docs.len().min(imps.len());
    let (docs, imps) = (&docs[..n], &imps[..n]);
    match isa {
        Isa::Scalar => accumulate_u32_scalar(acc, docs, imps, w),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => accumulate_u32_scalar(acc, docs, imps, w),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => {
            // Distinct ids below acc.len(): checked here, so the kernel may use unchecked lanes.
            let max = docs.iter().copied().max().unwrap_or(0);
            if (max as usize) < acc.len() && n > 0 {
                // SAFETY: avx512f/bw were detected (Isa::Avx512 is only returned then); every
                // id is < acc.len() (checked just above) and the ids are distinct, so the
                // gather / scatter lanes address valid, non-overlapping accumulators; `imps`
                // and `docs` hold exactly `n` elements and the tail is masked.
                unsafe { x86::accumulate_u32(acc.as_mut_ptr(), docs.as_ptr(), imps.as_ptr(), n, w) }
            } else {
                accumulate_u32_scalar(acc, docs, imps, w)
            }
        }
    }
}

/// The portable twin of [`accumulate_u32`].
#[inline]
pub fn accumulate_u32_scalar(acc: &mut [u32], docs: &[u32], imps: &[u8], w: u32) {
    let max = docs.iter().copied().max().unwrap_or(0);
    if (max as usize) < acc.len() {
        for (&d, &i) in docs.iter().zip(imps) {
            // Checked above: the compiler keeps this bounds check out of the loop only if it
            // can prove it; `get_mut` keeps it safe either way, and is well predicted.
            if let Some(a) = acc.get_mut(d as usize) {
                *a = a.wrapping_add(w.wrapping_mul(i as u32));
            }
        }
    } else {
        for (&d, &i) in docs.iter().zip(imps) {
            if let Some(a) = acc.get_mut(d as usize) {
                *a = a.wrapping_add(w.wrapping_mul(i as u32));
            }
        }
    }
}

/// One pass over `acc`: for every accumulator above the threshold, call `take(doc, value)`,
/// which offers it to a collector and returns the new threshold; every accumulator is zero
/// afterwards. Documents are visited in ascending order, so with a collector that breaks ties
/// by doc id the result is the same as the scalar loop's.
#[inline]
pub fn drain_above_u32(isa: Isa, acc: &mut [u32], thr: u32, take: impl FnMut(u32, u32) -> u32) {
    match isa {
        Isa::Scalar => drain_above_u32_scalar(acc, thr, take),
        #[cfg(target_arch = "x86_64")]
        // SAFETY: avx2 was detected; the kernel reads and writes only inside `acc`.
        Isa::Avx2 => unsafe { x86::drain_above_u32_avx2(acc, thr, take) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: avx512f was detected; the kernel reads and writes only inside `acc`.
        Isa::Avx512 => unsafe { x86::drain_above_u32(acc, thr, take) },
    }
}

/// The portable twin of [`drain_above_u32`].
#[inline]
pub fn drain_above_u32_scalar(acc: &mut [u32], mut thr: u32, mut take: impl FnMut(u32, u32) -> u32) {
    for (d, a) in acc.iter_mut().enumerate() {
        let s = std::mem::take(a);
        if s > thr {
            thr = take(d as u32, s);
        }
    }
}

/// `ub[i] += w * dense[i] as u32` for every `i` (wrapping; the query plan guarantees no
/// overflow): one query term's contribution to the upper bounds of every block.
#[inline]
pub fn add_scaled_u32(isa: Isa, ub: &mut [u32], dense: &[u8], w: u32) {
    let n = ub.len().min(dense.len());
    let (ub, dense) = (&mut ub[..n], &dense[..n]);
    match isa {
        Isa::Scalar => add_scaled_u32_scalar(ub, dense, w),
        #[cfg(target_arch = "x86_64")]
        // SAFETY: avx2 was detected; both slices hold exactly `n` elements.
        Isa::Avx2 => unsafe { x86::add_scaled_u32_avx2(ub, dense, w) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: avx512f/bw were detected; both slices hold exactly `n` elements.
        Isa::Avx512 => unsafe { x86::add_scaled_u32(ub.as_mut_ptr(), dense.as_ptr(), n, w) },
    }
}

/// The portable twin of [`add_scaled_u32`].
#[inline]
pub fn add_scaled_u32_scalar(ub: &mut [u32], dense: &[u8], w: u32) {
    for (u, &x) in ub.iter_mut().zip(dense) {
        *u = u.wrapping_add(w.wrapping_mul(x as u32));
    }
}

/// Exact score of one stored row under u8 quantization: the sum over its entries `(t, x)` of
/// `wtab[t] * quantize(x, scale)` (wrapping; the query plan guarantees no overflow), where
/// `wtab` holds the query's u32 weight of each local term (0 for terms not in the query) and
/// `quantize` is the builder's [`crate::index::build::quantize`]. Terms at or beyond
/// `wtab.len()` count as absent. Term ids are `u16` or `u32` (the stored vectors' width).
#[inline]
pub fn score_row_u8<T: TermId>(isa: Isa, terms: &[T], values: &[f32], scale: f32, wtab: &[u32]) -> u32 {
    let n = terms.len().min(values.len());
    if wtab.is_empty() {
        return 0;
    }
    match isa {
        Isa::Scalar => score_row_u8_scalar(&terms[..n], &values[..n], scale, wtab),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => score_row_u8_scalar(&terms[..n], &values[..n], scale, wtab),
        #[cfg(target_arch = "x86_64")]
        // SAFETY: avx512f/bw were detected; `terms` holds at least `n` elements of the width
        // passed (2 or 4 bytes, checked here), `values` at least `n`; `wtab` is not empty (the
        // kernel clamps every term id to `wtab.len() - 1` before the gather and masks out the
        // entries it clamped).
        Isa::Avx512 => unsafe {
            match std::mem::size_of::<T>() {
                2 => x86::score_row_u8::<2>(terms.as_ptr().cast(), values.as_ptr(), n, scale, wtab),
                4 => x86::score_row_u8::<4>(terms.as_ptr().cast(), values.as_ptr(), n, scale, wtab),
                _ => score_row_u8_scalar(&terms[..n], &values[..n], scale, wtab),
            }
        },
    }
}

/// The portable twin of [`score_row_u8`].
#[inline]
pub fn score_row_u8_scalar<T: TermId>(terms: &[T], values: &[f32], scale: f32, wtab: &[u32]) -> u32 {
    let mut s = 0u32;
    for (&t, &x) in terms.iter().zip(values) {
        let w = wtab.get(t.into() as usize).copied().unwrap_or(0);
        if w != 0 {
            s = s.wrapping_add(w.wrapping_mul(crate::index::build::quantize(x, scale) as u32));
        }
    }
    s
}

/// Call `f(docs, impacts)` for every 128-posting block of `term`'s list in doc order (the
/// last block may be shorter): the block-at-a-time loop of the term-at-a-time scorers.
#[inline]
pub fn for_each_block<I: Copy>(
    v: &crate::index::IndexView<'_>,
    arrays: &crate::index::ImpactArrays<'_, I>,
    term: u32,
    mut f: impl FnMut(&[u32], &[I]),
) {
    use crate::codec::BLOCK_LEN;
    let t = term as usize;
    if t >= v.n_terms as usize {
        return;
    }
    let (b0, b1) = (v.term_block_start[t] as usize, v.term_block_start[t + 1] as usize);
    let p0 = v.term_post_start[t] as usize;
    let df = v.term_post_start[t + 1] as usize - p0;
    let mut buf = [0u32; BLOCK_LEN];
    for b in b0..b1 {
        crate::postings::decode_block(v, b0, b, &mut buf);
        let start = (b - b0) * BLOCK_LEN;
        let len = (df - start).min(BLOCK_LEN);
        f(&buf[..len], &arrays.impacts[p0 + start..p0 + start + len]);
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use core::arch::x86_64::*;

    /// AVX2 [`super::add_scaled_u32`]: the portable loop compiled for AVX2 (8 lanes of
    /// widen, multiply, add; the compiler vectorizes it, which baseline x86-64 code cannot).
    ///
    /// # Safety
    ///
    /// avx2 is available.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn add_scaled_u32_avx2(ub: &mut [u32], dense: &[u8], w: u32) {
        for (u, &x) in ub.iter_mut().zip(dense) {
            *u = u.wrapping_add(w.wrapping_mul(x as u32));
        }
    }

    /// AVX2 [`super::drain_above_u32`]: 8 lanes compared at a time (unsigned, as signed
    /// compares of the values with their top bit flipped), zeroed with one store.
    ///
    /// # Safety
    ///
    /// avx2 is available.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn drain_above_u32_avx2(acc: &mut [u32], mut thr: u32, mut take: impl FnMut(u32, u32) -> u32) {
        let n = acc.len();
        let p = acc.as_mut_ptr();
        let zero = _mm256_setzero_si256();
        let bias = _mm256_set1_epi32(i32::MIN);
        let mut t = _mm256_set1_epi32((thr ^ 0x8000_0000) as i32);
        let mut i = 0;
        while i + 8 <= n {
            // SAFETY: i + 8 <= n: the 8 lanes are inside `acc`.
            let v = _mm256_loadu_si256(p.add(i).cast());
            let gt = _mm256_cmpgt_epi32(_mm256_xor_si256(v, bias), t);
            let mut m = _mm256_movemask_ps(_mm256_castsi256_ps(gt)) as u32;
            if m != 0 {
                // Rare: lanes above the threshold, in doc order (the threshold may rise).
                while m != 0 {
                    let j = m.trailing_zeros() as usize;
                    m &= m - 1;
                    let s = *p.add(i + j);
                    if s > thr {
                        thr = take((i + j) as u32, s);
                    }
                }
                t = _mm256_set1_epi32((thr ^ 0x8000_0000) as i32);
            }
            _mm256_storeu_si256(p.add(i).cast(), zero);
            i += 8;
        }
        for (d, a) in acc.iter_mut().enumerate().skip(i) {
            let s = std::mem::take(a);
            if s > thr {
                thr = take(d as u32, s);
            }
        }
    }

    /// AVX-512 [`super::add_scaled_u32`] of `n` entries.
    ///
    /// # Safety
    ///
    /// avx512f and avx512bw are available; `ub` and `dense` are valid for `n` elements.
    #[target_feature(enable = "avx512f,avx512bw")]
    pub(super) unsafe fn add_scaled_u32(ub: *mut u32, dense: *const u8, n: usize, w: u32) {
        let wv = _mm512_set1_epi32(w as i32);
        let mut i = 0;
        while i + 16 <= n {
            // SAFETY: i + 16 <= n: 16 bytes of `dense` and 16 u32 of `ub` are in bounds.
            let x = _mm512_cvtepu8_epi32(_mm_loadu_si128(dense.add(i).cast()));
            let u = _mm512_loadu_si512(ub.add(i).cast());
            _mm512_storeu_si512(ub.add(i).cast(), _mm512_add_epi32(u, _mm512_mullo_epi32(x, wv)));
            i += 16;
        }
        while i < n {
            // SAFETY: i < n.
            *ub.add(i) = (*ub.add(i)).wrapping_add(w.wrapping_mul(*dense.add(i) as u32));
            i += 1;
        }
    }

    /// AVX-512 [`super::score_row_u8`] of `n` entries.
    ///
    /// # Safety
    ///
    /// avx512f and avx512bw are available; `terms` is valid for `n` reads of `W`-byte
    /// little-endian ids (`W` is 2 or 4), `values` for `n` reads; `wtab` is not empty.
    #[target_feature(enable = "avx512f,avx512bw")]
    pub(super) unsafe fn score_row_u8<const W: usize>(
        terms: *const u8,
        values: *const f32,
        n: usize,
        scale: f32,
        wtab: &[u32],
    ) -> u32 {
        let last = _mm512_set1_epi32((wtab.len() - 1) as i32);
        let sv = _mm512_set1_ps(scale);
        let half = _mm512_set1_ps(0.5);
        let one = _mm512_set1_ps(1.0);
        let top = _mm512_set1_ps(255.0);
        let mut acc = _mm512_setzero_si512();
        let mut i = 0;
        while i < n {
            let m: __mmask16 = if i + 16 <= n { 0xffff } else { ((1u32 << (n - i)) - 1) as __mmask16 };
            // SAFETY: masked loads read only lanes below n - i, all in bounds.
            let t = if W == 2 {
                // SAFETY: as above, 16-bit lanes below n - i (mask bit j covers id j).
                _mm512_cvtepu16_epi32(_mm512_castsi512_si256(_mm512_maskz_loadu_epi16(
                    m as __mmask32,
                    terms.add(2 * i).cast(),
                )))
            } else {
                _mm512_maskz_loadu_epi32(m, terms.add(4 * i).cast())
            };
            let inb = _mm512_mask_cmple_epu32_mask(m, t, last);
            let t = _mm512_min_epu32(t, last);
            // SAFETY: every lane index is clamped to wtab.len() - 1 (and lanes are masked).
            let w = _mm512_mask_i32gather_epi32::<4>(_mm512_setzero_si512(), inb, t, wtab.as_ptr().cast());
            let hit = _mm512_test_epi32_mask(w, w);
            if hit != 0 {
                let x = _mm512_maskz_loadu_ps(m, values.add(i));
                let y = _mm512_mul_ps(x, sv);
                // round half away from zero for y >= 0: trunc(y) + (y - trunc(y) >= 0.5),
                // where y - trunc(y) is exact
                let tr = _mm512_roundscale_ps::<{ _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC }>(y);
                let up = _mm512_cmp_ps_mask::<_CMP_GE_OQ>(_mm512_sub_ps(y, tr), half);
                let r = _mm512_mask_add_ps(tr, up, tr, one);
                let r = _mm512_min_ps(_mm512_max_ps(r, one), top);
                let imp = _mm512_cvttps_epu32(r);
                acc = _mm512_mask_add_epi32(acc, hit, acc, _mm512_mullo_epi32(imp, w));
            }
            i += 16;
        }
        _mm512_reduce_add_epi32(acc) as u32
    }

    /// AVX-512 scatter-add of `n` postings.
    ///
    /// # Safety
    ///
    /// avx512f and avx512bw are available; `docs` and `imps` are valid for `n` reads; the `n`
    /// doc ids are distinct and each is a valid index of the `acc` allocation.
    #[target_feature(enable = "avx512f,avx512bw")]
    pub(super) unsafe fn accumulate_u32(acc: *mut u32, docs: *const u32, imps: *const u8, n: usize, w: u32) {
        let wv = _mm512_set1_epi32(w as i32);
        let mut i = 0;
        while i + 16 <= n {
            // SAFETY (all lanes): i + 16 <= n, so the 16 ids and 16 impacts are in bounds; ids
            // index `acc` (caller contract) and are distinct, so the scatter loses no update.
            let idx = _mm512_loadu_si512(docs.add(i).cast());
            let imp = _mm512_cvtepu8_epi32(_mm_loadu_si128(imps.add(i).cast()));
            let a = _mm512_i32gather_epi32::<4>(idx, acc.cast_const().cast());
            let a = _mm512_add_epi32(a, _mm512_mullo_epi32(imp, wv));
            _mm512_i32scatter_epi32::<4>(acc.cast(), idx, a);
            i += 16;
        }
        if i < n {
            let m: __mmask16 = (1u32 << (n - i)).wrapping_sub(1) as __mmask16;
            // SAFETY: masked loads read only the first n - i lanes, all in bounds.
            let idx = _mm512_maskz_loadu_epi32(m, docs.add(i).cast());
            let imp = _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(m, imps.add(i).cast()));
            let a = _mm512_mask_i32gather_epi32::<4>(_mm512_setzero_si512(), m, idx, acc.cast_const().cast());
            let a = _mm512_add_epi32(a, _mm512_mullo_epi32(imp, wv));
            _mm512_mask_i32scatter_epi32::<4>(acc.cast(), m, idx, a);
        }
    }

    /// AVX-512 [`super::drain_above_u32`].
    ///
    /// # Safety
    ///
    /// avx512f is available.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn drain_above_u32(acc: &mut [u32], mut thr: u32, mut take: impl FnMut(u32, u32) -> u32) {
        let n = acc.len();
        let p = acc.as_mut_ptr();
        let zero = _mm512_setzero_si512();
        let mut t = _mm512_set1_epi32(thr as i32);
        let mut i = 0;
        while i + 16 <= n {
            // SAFETY: i + 16 <= n: the 16 lanes are inside `acc`.
            let v = _mm512_loadu_si512(p.add(i).cast());
            let mut m = _mm512_cmpgt_epu32_mask(v, t) as u32;
            if m != 0 {
                // Rare: lanes above the threshold, in doc order (the threshold may rise).
                while m != 0 {
                    let j = m.trailing_zeros() as usize;
                    m &= m - 1;
                    let s = *p.add(i + j);
                    if s > thr {
                        thr = take((i + j) as u32, s);
                    }
                }
                t = _mm512_set1_epi32(thr as i32);
            }
            _mm512_storeu_si512(p.add(i).cast(), zero);
            i += 16;
        }
        for (d, a) in acc.iter_mut().enumerate().skip(i) {
            let s = std::mem::take(a);
            if s > thr {
                thr = take(d as u32, s);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rng(seed: &mut u64) -> u64 {
        crate::synth::xorshift64(seed)
    }

    #[test]
    fn accumulate_kernels_match_scalar() {
        let mut seed = 0x9e3779b97f4a7c15u64;
        for case in 0..300 {
            let n_acc = 1 + (rng(&mut seed) % 5000) as usize;
            let len = (rng(&mut seed) % 129) as usize;
            // distinct ids, some out of range in a few cases
            let mut ids: Vec<u32> = (0..n_acc as u32 + if case % 7 == 0 { 40 } else { 0 }).collect();
            for i in (1..ids.len()).rev() {
                let j = (rng(&mut seed) % (i as u64 + 1)) as usize;
                ids.swap(i, j);
            }
            ids.truncate(len);
            let imps: Vec<u8> = (0..ids.len()).map(|_| rng(&mut seed) as u8).collect();
            let w = (rng(&mut seed) % 70_000) as u32;
            let init: Vec<u32> = (0..n_acc).map(|_| (rng(&mut seed) % 1_000_000) as u32).collect();
            let mut want = init.clone();
            accumulate_u32_scalar(&mut want, &ids, &imps, w);
            for isa in available() {
                let mut got = init.clone();
                accumulate_u32(isa, &mut got, &ids, &imps, w);
                assert_eq!(got, want, "{isa:?} case {case}");
            }
        }
    }

    /// The builder's quantizer (f64 add + truncation) equals `f32::round` then clamp, on edge
    /// cases and on random weights and scales.
    #[test]
    fn quantize_matches_round() {
        let reference = |w: f32, s: f32| (w * s).round().clamp(1.0, 255.0) as u8;
        let q = crate::index::build::quantize;
        let edges = [
            0.0f32,
            1e-30,
            0.49999997,
            0.5,
            0.50000006,
            1.4999999,
            1.5,
            2.5,
            127.5,
            254.5,
            254.49998,
            255.0,
            255.49998,
            255.5,
            256.0,
            1e9,
            f32::MAX,
            f32::INFINITY,
        ];
        for &y in &edges {
            assert_eq!(q(y, 1.0), reference(y, 1.0), "y = {y}");
        }
        let mut seed = 11u64;
        for _ in 0..200_000 {
            let w = f32::from_bits((rng(&mut seed) % 0x4380_0000) as u32); // [0, 256)
            let s = 1.0 + (rng(&mut seed) % 1000) as f32 / 7.0;
            assert_eq!(q(w, s), reference(w, s), "w = {w}, scale = {s}");
            assert_eq!(q(w, 1.0), reference(w, 1.0), "w = {w}");
        }
    }

    #[test]
    fn row_kernels_match_scalar() {
        let mut seed = 99u64;
        for case in 0..500 {
            let nt = 1 + (rng(&mut seed) % 400) as usize;
            let wtab: Vec<u32> =
                (0..nt).map(|_| if rng(&mut seed) % 3 == 0 { (rng(&mut seed) % 70_000) as u32 } else { 0 }).collect();
            let len = (rng(&mut seed) % 200) as usize;
            let terms: Vec<u32> = (0..len).map(|_| (rng(&mut seed) % (nt as u64 + 3)) as u32).collect();
            let values: Vec<f32> = (0..len)
                .map(|_| match rng(&mut seed) % 4 {
                    0 => (rng(&mut seed) % 512) as f32 / 2.0, // ties at .5
                    1 => f32::from_bits((rng(&mut seed) % 0x4380_0000) as u32),
                    2 => 1e-9,
                    _ => (rng(&mut seed) % 10_000) as f32 / 997.0,
                })
                .collect();
            let scale = [1.0f32, 0.7, 3.3, 90.0][case % 4];
            let want = score_row_u8_scalar(&terms, &values, scale, &wtab);
            // The same row with 16-bit term ids (the stored vectors of a segment of at most
            // 65,536 terms): ids here are below 403, so they are the same ids.
            let terms16: Vec<u16> = terms.iter().map(|&t| t as u16).collect();
            assert_eq!(score_row_u8_scalar(&terms16, &values, scale, &wtab), want, "u16 scalar case {case}");
            for isa in available() {
                assert_eq!(score_row_u8(isa, &terms, &values, scale, &wtab), want, "{isa:?} case {case}");
                assert_eq!(score_row_u8(isa, &terms16, &values, scale, &wtab), want, "{isa:?} u16 case {case}");
            }
        }
    }

    #[test]
    fn add_scaled_kernels_match_scalar() {
        let mut seed = 5u64;
        for case in 0..200 {
            let n = (rng(&mut seed) % 300) as usize;
            let dense: Vec<u8> = (0..n).map(|_| rng(&mut seed) as u8).collect();
            let init: Vec<u32> = (0..n).map(|_| (rng(&mut seed) % 100_000) as u32).collect();
            let w = (rng(&mut seed) % 70_000) as u32;
            let mut want = init.clone();
            add_scaled_u32_scalar(&mut want, &dense, w);
            for isa in available() {
                let mut got = init.clone();
                add_scaled_u32(isa, &mut got, &dense, w);
                assert_eq!(got, want, "{isa:?} case {case}");
            }
        }
    }

    #[test]
    fn the_measured_pick_is_an_available_set() {
        let sets = available();
        let times = measure(&sets);
        assert_eq!(times.len(), sets.len());
        assert!(times.iter().all(|t| t.is_finite() && *t > 0.0), "{times:?}");
        let pick = fastest();
        assert!(sets.contains(&pick));
        assert_eq!(fastest(), pick, "measured once per process");
        force(None);
        assert_eq!(isa(), pick);
    }

    #[test]
    fn drain_kernels_match_scalar() {
        let mut seed = 77u64;
        for case in 0..300 {
            let n = (rng(&mut seed) % 3000) as usize;
            // every third case over the whole u32 range (the unsigned compare's edge: values
            // and thresholds with the top bit set)
            let wide = case % 3 == 0;
            let acc: Vec<u32> = (0..n)
                .map(|_| match (rng(&mut seed) % 5, wide) {
                    (0, false) => (rng(&mut seed) % 1000) as u32,
                    (0, true) => rng(&mut seed) as u32,
                    (1, true) => u32::MAX - (rng(&mut seed) % 3) as u32,
                    _ => 0,
                })
                .collect();
            let thr0 = if wide {
                [0, 1 << 31, (1 << 31) - 1, u32::MAX - 1][case / 3 % 4]
            } else {
                (rng(&mut seed) % 50) as u32
            };
            let run = |isa: Isa| {
                let mut a = acc.clone();
                let mut got = Vec::new();
                // a collector whose threshold rises with every entry
                let mut thr = thr0;
                drain_above_u32(isa, &mut a, thr0, |d, s| {
                    got.push((d, s));
                    thr = thr.max(s / 2);
                    thr
                });
                assert!(a.iter().all(|&x| x == 0), "{isa:?} left accumulators dirty");
                got
            };
            let want = run(Isa::Scalar);
            for isa in available() {
                assert_eq!(run(isa), want, "{isa:?} case {case}");
            }
        }
    }
}
