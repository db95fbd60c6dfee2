//! The two inner loops of term-at-a-time scoring, with SIMD twins picked once per process:
//!
//! - [`accumulate_u32`]: `acc[doc] += w * impact` for one decoded 128-posting block (a
//!   scatter-add: the doc ids of a block are distinct, so a gather / add / scatter of 16 lanes
//!   is exact);
//! - [`drain_above_u32`]: one pass over the accumulators that hands every value above a
//!   (rising) threshold to a collector and leaves every accumulator zero (16 lanes compared
//!   at a time; the collector is only called for the rare lanes that pass);
//! - [`drain_top_u16`]: the 16-bit drain of approximate search's candidate stage, in two
//!   passes: chunk maxima first (they seed the threshold of a top-k collector; chunks below it
//!   are zeroed as they are read), then only the chunks above the threshold, and no write to
//!   chunks the query never touched.
//!
//! Every SIMD kernel has a scalar twin with identical results (tested on random input for
//! every kernel this CPU has). The AVX-512 kernels run only where `avx512f` was detected at
//! run time; the wheel stays baseline x86-64. The AVX2 set runs the threshold
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

/// A set of accumulation kernels: [`Isa::SCALAR`], or a SIMD set that only [`available`] (and
/// so [`isa`], [`fastest`]) hands out, after detecting its instructions at run time. The type is
/// opaque (its one field is private), so safe code can pass an `Isa` it holds to the safe kernel
/// functions below but cannot make one that names a set this CPU lacks:
///
/// ```compile_fail
/// use sparsedex_core::search::kernels::{available, Isa};
/// let held: Isa = available()[0];
/// let Isa(set) = held; // error[E0451]: the field is private, so no set can be taken or named
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Isa(Set);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Set {
    /// Portable scalar loops.
    Scalar,
    /// AVX2: 8-lane threshold scan and block-bound update; the other kernels scalar.
    #[cfg(target_arch = "x86_64")]
    Avx2,
    /// AVX-512 (F + BW + VL) gather / scatter kernels.
    #[cfg(target_arch = "x86_64")]
    Avx512,
}

impl Isa {
    /// The portable scalar loops (every CPU).
    pub const SCALAR: Isa = Isa(Set::Scalar);

    /// `"scalar"`, `"avx2"` or `"avx512"`.
    pub fn name(self) -> &'static str {
        match self.0 {
            Set::Scalar => "scalar",
            #[cfg(target_arch = "x86_64")]
            Set::Avx2 => "avx2",
            #[cfg(target_arch = "x86_64")]
            Set::Avx512 => "avx512",
        }
    }
}

impl std::fmt::Debug for Isa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The kernel set searches use: the fastest on this CPU, measured once per process
/// ([`fastest`]), or the one [`force`] chose.
#[inline]
pub fn isa() -> Isa {
    match CHOSEN.load(Ordering::Relaxed) {
        1 => Isa(Set::Scalar),
        #[cfg(target_arch = "x86_64")]
        2 => Isa(Set::Avx512),
        #[cfg(target_arch = "x86_64")]
        3 => Isa(Set::Avx2),
        _ => {
            let best = fastest();
            CHOSEN.store(code(best), Ordering::Relaxed);
            best
        }
    }
}

/// Run every later search with `isa` (`None`: the fastest, [`fastest`]), for measuring the
/// SIMD kernels against their scalar twins. `isa` must be one of [`available`] (it always is:
/// only `available` makes SIMD sets; checked again here, others are ignored).
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
/// documents and one [`drain_above_u32`] pass, on 32,768 accumulators with two postings each
/// (real queries add 2-3 postings per accumulator: debian's 155k over 60k documents); each set
/// runs [`PICK_TRIALS`] times, interleaved, and keeps its fastest trial. A wider set must win by
/// [`PICK_MARGIN`] to be chosen over a narrower one. Until stop 37 the trial added 0.4 postings
/// per accumulator, so the drain decided it: on an Intel Xeon with AVX-512 it picked AVX2,
/// although the AVX-512 set made debian's exhaustive search 7% faster (0.186 against 0.173 ms
/// median, `examples/probe.rs`); the trial now picks AVX-512 there (about 49 against 52 us).
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
    const N: usize = 1 << 15;
    const BLOCKS: usize = 512;
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || crate::synth::xorshift64(&mut seed);
    // Blocks of 128 distinct ascending documents (a posting list's block), random impacts.
    let blocks: Vec<(Vec<u32>, Vec<u8>)> = (0..BLOCKS)
        .map(|_| {
            let start = (next() % (N as u64 - 128 * 16)) as u32;
            let mut d = start;
            let docs: Vec<u32> = (0..128)
                .map(|_| {
                    d += 1 + (next() % 15) as u32;
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
    match i.0 {
        Set::Scalar => 1,
        #[cfg(target_arch = "x86_64")]
        Set::Avx512 => 2,
        #[cfg(target_arch = "x86_64")]
        Set::Avx2 => 3,
    }
}

/// Every kernel set this CPU can run, narrowest first ([`fastest`] prefers the narrower of two
/// sets within its margin).
pub fn available() -> Vec<Isa> {
    #[allow(unused_mut)]
    let mut v = vec![Isa(Set::Scalar)];
    #[cfg(target_arch = "x86_64")]
    {
        if is_x86_feature_detected!("avx2") {
            v.push(Isa(Set::Avx2));
        }
        // The AVX-512 set runs AVX2 kernels where they are the faster (`add_scaled_u32`).
        if is_x86_feature_detected!("avx2")
            && is_x86_feature_detected!("avx512f")
            && is_x86_feature_detected!("avx512bw")
            && is_x86_feature_detected!("avx512vl")
        {
            v.push(Isa(Set::Avx512));
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
    match isa.0 {
        Set::Scalar => accumulate_u32_scalar(acc, docs, imps, w),
        #[cfg(target_arch = "x86_64")]
        Set::Avx2 => accumulate_u32_scalar(acc, docs, imps, w),
        #[cfg(target_arch = "x86_64")]
        Set::Avx512 => {
            // Distinct ids below acc.len(): checked here, so the kernel may use unchecked lanes.
            // The gather / scatter lanes are signed 32-bit offsets: ids must also be below 2^31.
            let max = docs.iter().copied().max().unwrap_or(0);
            if (max as usize) < acc.len() && max <= i32::MAX as u32 && n > 0 {
                // SAFETY: avx512f/bw/vl were detected (only `available` makes this set); every
                // id is < acc.len() and < 2^31 (checked just above: the lanes' sign-extended
                // offsets are the ids) and the ids are distinct, so the gather / scatter lanes
                // address valid, non-overlapping accumulators; `imps` and `docs` hold exactly
                // `n` elements and the tail is masked.
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
    match isa.0 {
        Set::Scalar => drain_above_u32_scalar(acc, thr, take),
        #[cfg(target_arch = "x86_64")]
        // SAFETY: avx2 was detected; the kernel reads and writes only inside `acc`.
        Set::Avx2 => unsafe { x86::drain_above_u32_avx2(acc, thr, take) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: avx512f was detected; the kernel reads and writes only inside `acc`.
        Set::Avx512 => unsafe { x86::drain_above_u32(acc, thr, take) },
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

/// `acc[docs[i]] += w * imps[i]` in 16-bit accumulators, with wrapping arithmetic (the caller
/// guarantees that no score passes `u16::MAX`, see [`super::exhaustive`]); ids at or beyond
/// `acc.len()` are ignored. Scalar on every CPU: there is no 16-bit gather / scatter, and the
/// gain of a narrow accumulator is the halved memory of the pass that drains it.
#[inline]
pub fn accumulate_u16(acc: &mut [u16], docs: &[u32], imps: &[u8], w: u16) {
    for (&d, &i) in docs.iter().zip(imps) {
        if let Some(a) = acc.get_mut(d as usize) {
            *a = a.wrapping_add(w.wrapping_mul(i as u16));
        }
    }
}

/// [`drain_above_u32`] over 16-bit accumulators: for every accumulator above `thr`, call
/// `take(doc, value)`, which returns the new threshold; every accumulator is zero afterwards,
/// documents are visited in ascending order. A threshold at or above `u16::MAX` passes nothing.
#[inline]
pub fn drain_above_u16(isa: Isa, acc: &mut [u16], thr: u32, take: impl FnMut(u32, u32) -> u32) {
    match isa.0 {
        Set::Scalar => drain_above_u16_scalar(acc, thr, take),
        #[cfg(target_arch = "x86_64")]
        // SAFETY: avx2 was detected; the kernel reads and writes only inside `acc`.
        Set::Avx2 => unsafe { x86::drain_above_u16_avx2(acc, thr, take) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: avx512f/bw were detected; the kernel reads and writes only inside `acc`.
        Set::Avx512 => unsafe { x86::drain_above_u16(acc, thr, take) },
    }
}

/// Accumulators per chunk of [`drain_top_u16`].
pub const DRAIN_CHUNK: usize = 64;

/// [`drain_above_u16`] for a collector of the best `seed_k` documents (0: no seed), in two
/// passes over chunks of [`DRAIN_CHUNK`] accumulators:
///
/// 1. Each chunk's largest value is taken (a vectorized max, no branch). These are scores of
///    distinct documents, so once at least `seed_k` of the maxima seen reach `s`, no document
///    scoring below `s` can be among the best `seed_k`: the *seed* rises to `s - 1` (`s` a
///    multiple of 256, from a histogram of the maxima). A chunk whose maximum is at or below
///    the seed so far (or `thr`) is zeroed at once, while it is in the L1 cache; the others
///    are listed in `kept`. Without a seed the collector's threshold starts at the floor and
///    a drain offers hundreds of documents while it climbs, each an unpredictable branch
///    (half the drain's time in approximate search's candidate stage, k' = 25..250).
/// 2. The listed chunks whose maximum is above the threshold (at least the final seed) are
///    drained as [`drain_above_u16`] does; the other listed ones are zeroed. Chunks that hold
///    only zeros (untouched by the query) are not written at all.
///
/// Zeroing in the first pass spares a second pass over the whole accumulator (and a call to
/// `memset` per chunk).
///
/// The threshold never falls below the seed, whatever `take` returns. `take` sees documents in
/// ascending order, as [`drain_above_u16`] gives them. The seed is only valid when every
/// document may be collected: a caller with an allowed set must pass `seed_k = 0`. `kept` is
/// scratch space (cleared first).
pub fn drain_top_u16(
    isa: Isa,
    acc: &mut [u16],
    thr: u32,
    seed_k: usize,
    kept: &mut Vec<u64>,
    mut take: impl FnMut(u32, u32) -> u32,
) {
    kept.clear();
    let seed = chunk_pass_u16(isa, acc, thr, seed_k, kept);
    let mut thr = thr.max(seed);
    let n = acc.len();
    for &e in kept.iter() {
        let (lo, m) = ((e >> 16) as usize * DRAIN_CHUNK, (e & 0xffff) as u32);
        let chunk = &mut acc[lo..(lo + DRAIN_CHUNK).min(n)];
        if m > thr {
            let mut t = thr;
            drain_above_u16(isa, chunk, thr, |d, s| {
                t = take(lo as u32 + d, s).max(seed);
                t
            });
            thr = t;
        } else {
            chunk.fill(0);
        }
    }
}

/// Pass 1 of [`drain_top_u16`]: lists in `kept` (as `chunk << 16 | max`, ascending) the
/// chunks whose maximum is above `thr` and the seed so far, zeroes the other touched ones, and
/// returns the final seed (0 without one).
#[inline]
fn chunk_pass_u16(isa: Isa, acc: &mut [u16], thr: u32, seed_k: usize, kept: &mut Vec<u64>) -> u32 {
    match isa.0 {
        Set::Scalar => chunk_pass_u16_scalar(acc, thr, seed_k, kept),
        #[cfg(target_arch = "x86_64")]
        // SAFETY: avx2 was detected (AVX-512 CPUs have it too); the kernel is the safe
        // portable loop compiled for it.
        Set::Avx2 | Set::Avx512 => unsafe { x86::chunk_pass_u16_avx2(acc, thr, seed_k, kept) },
    }
}

/// The portable `chunk_pass_u16`.
#[inline(always)]
pub(super) fn chunk_pass_u16_scalar(acc: &mut [u16], thr: u32, seed_k: usize, kept: &mut Vec<u64>) -> u32 {
    // Maxima per bin of 256 (from `bin` up), and how many of them there are: the seed is
    // `bin * 256 - 1` once `bin` > 0, the highest bin with at least `seed_k` maxima at or above
    // it. Maxima below the bin no longer count, so they are not recorded.
    let mut hist = [0u32; 256];
    let mut bin = 0usize;
    let mut at_least = 0usize;
    let mut cut = thr; // chunks whose maximum is at or below this are zeroed
    let mut one = |c: usize, chunk: &mut [u16], m: u16| {
        if m == 0 {
            return;
        }
        if m as u32 <= cut {
            chunk.fill(0);
            return;
        }
        kept.push(((c as u64) << 16) | m as u64);
        if seed_k > 0 {
            hist[(m >> 8) as usize] += 1;
            at_least += 1;
            let before = bin;
            while bin < 255 && at_least - hist[bin] as usize >= seed_k {
                at_least -= hist[bin] as usize;
                bin += 1;
            }
            if bin != before {
                cut = cut.max(((bin as u32) << 8) - 1);
            }
        }
    };
    let mut chunks = acc.chunks_exact_mut(DRAIN_CHUNK);
    for (c, chunk) in (&mut chunks).enumerate() {
        let chunk: &mut [u16; DRAIN_CHUNK] = chunk.try_into().expect("chunks_exact");
        let m = chunk.iter().copied().fold(0, u16::max);
        one(c, chunk, m);
    }
    let c = acc.len() / DRAIN_CHUNK;
    let rest = &mut acc[c * DRAIN_CHUNK..];
    if !rest.is_empty() {
        let m = rest.iter().copied().fold(0, u16::max);
        one(c, rest, m);
    }
    if seed_k > 0 && bin > 0 {
        ((bin as u32) << 8) - 1
    } else {
        0
    }
}

/// The portable twin of [`drain_above_u16`].
#[inline]
pub fn drain_above_u16_scalar(acc: &mut [u16], mut thr: u32, mut take: impl FnMut(u32, u32) -> u32) {
    for (d, a) in acc.iter_mut().enumerate() {
        let s = std::mem::take(a) as u32;
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
    match isa.0 {
        Set::Scalar => add_scaled_u32_scalar(ub, dense, w),
        #[cfg(target_arch = "x86_64")]
        // SAFETY: avx2 was detected; both slices hold exactly `n` elements.
        Set::Avx2 => unsafe { x86::add_scaled_u32_avx2(ub, dense, w) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: avx2 was detected (the AVX-512 set requires it); both slices hold exactly `n`
        // elements. The AVX2 loop: a 16-lane kernel (widen, multiply, add) made block-max
        // pruning's bounds slower on an Intel Xeon with AVX-512 (`bmp` on synthetic 100k, BP,
        // `examples/probe.rs` with `PROBE_ISA`: 0.132 against 0.125-0.131 ms).
        Set::Avx512 => unsafe { x86::add_scaled_u32_avx2(ub, dense, w) },
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
    match isa.0 {
        Set::Scalar => score_row_u8_scalar(&terms[..n], &values[..n], scale, wtab),
        #[cfg(target_arch = "x86_64")]
        Set::Avx2 => score_row_u8_scalar(&terms[..n], &values[..n], scale, wtab),
        #[cfg(target_arch = "x86_64")]
        // The gather's lanes are signed 32-bit offsets: a table past 2^31 entries takes the
        // scalar loop.
        Set::Avx512 if wtab.len() > i32::MAX as usize => score_row_u8_scalar(&terms[..n], &values[..n], scale, wtab),
        #[cfg(target_arch = "x86_64")]
        // SAFETY: avx512f/bw were detected; `terms` holds at least `n` elements of the width
        // passed (2 or 4 bytes, checked here; `TermId` is sealed: u16 and u32 only, whose bytes
        // are their little-endian values), `values` at least `n`; `wtab` is not empty and has
        // at most 2^31 - 1 entries (checked above; the kernel clamps every term id to
        // `wtab.len() - 1`, a non-negative i32, before the gather and masks out the entries it
        // clamped).
        Set::Avx512 => unsafe {
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
    // Not `ListCursor::until(u32::MAX)`: its per-block range check and state in memory made
    // `bmp`'s rare-term gathering slower (synthetic 1M, 0.68 to 0.75 ms).
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

/// A term's compressed posting list read in ascending doc ranges ([`ListCursor::until`]):
/// the term-at-a-time scorers accumulate range by range, so that the accumulators they write
/// stay in the L2 cache, and drain each range as soon as it is complete ([`doc_ranges`]).
pub(crate) struct ListCursor {
    /// Next posting block to read, and how many of its postings were read already.
    b: usize,
    off: usize,
    b0: usize,
    b1: usize,
    p0: usize,
    df: usize,
    /// Whether `buf` holds block `b` decoded.
    decoded: bool,
    buf: [u32; crate::codec::BLOCK_LEN],
}

impl ListCursor {
    pub(crate) fn new(v: &crate::index::IndexView<'_>, term: u32) -> Self {
        let t = term as usize;
        let (b0, b1, p0, df) = if t < v.n_terms as usize {
            let p0 = v.term_post_start[t] as usize;
            let df = v.term_post_start[t + 1] as usize - p0;
            (v.term_block_start[t] as usize, v.term_block_start[t + 1] as usize, p0, df)
        } else {
            (0, 0, 0, 0)
        };
        ListCursor { b: b0, off: 0, b0, b1, p0, df, decoded: false, buf: [0; crate::codec::BLOCK_LEN] }
    }

    /// Feed `f(docs, impacts)` with the postings not read yet whose doc id is below `hi`, in
    /// doc order, a posting block (or the part of one below `hi`) at a time. Over calls with
    /// rising `hi`, every posting is fed once.
    #[inline]
    pub(crate) fn until<I: Copy>(
        &mut self,
        v: &crate::index::IndexView<'_>,
        arrays: &crate::index::ImpactArrays<'_, I>,
        hi: u32,
        mut f: impl FnMut(&[u32], &[I]),
    ) {
        use crate::codec::BLOCK_LEN;
        while self.b < self.b1 {
            let b = self.b;
            if !self.decoded {
                crate::postings::decode_block(v, self.b0, b, &mut self.buf);
            }
            let start = (b - self.b0) * BLOCK_LEN;
            let len = (self.df - start).min(BLOCK_LEN);
            let imps = &arrays.impacts[self.p0 + start..self.p0 + start + len];
            if v.block_last[b] < hi {
                f(&self.buf[self.off..len], &imps[self.off..]);
                self.b += 1;
                self.off = 0;
                self.decoded = false;
                continue;
            }
            // The block reaches `hi`: its postings below it, the rest on a later call.
            let n = self.off + self.buf[self.off..len].partition_point(|&d| d < hi);
            if n > self.off {
                f(&self.buf[self.off..n], &imps[self.off..n]);
            }
            self.off = n;
            self.decoded = true;
            return;
        }
    }
}

/// Bytes of accumulators one doc range of a ranged accumulation covers ([`doc_ranges`]): an
/// eighth of a 2 MB L2 cache, half of a 512 KB one, so that a range's accumulators stay there
/// beside the posting blocks being read. On synthetic 1M (`examples/probe.rs`, Intel Xeon, 2 MB
/// L2) ranges of 128, 256 and 512 KB were within 2% of one another. Unit tests use small ranges
/// so that every scorer built on them crosses range ends.
#[cfg(not(test))]
pub(crate) const RANGE_BYTES: usize = 256 << 10;
#[cfg(test)]
pub(crate) const RANGE_BYTES: usize = 4 << 10;

/// The doc ranges `[lo, hi)` a term-at-a-time accumulation over `n_docs` accumulators of
/// `width` bytes goes through: one range when they all fit in [`RANGE_BYTES`]; every range but
/// the last a multiple of 64 documents.
pub(crate) fn doc_ranges(n_docs: usize, width: usize) -> Vec<(usize, usize)> {
    let per = (RANGE_BYTES / width.max(1) / 64 * 64).max(64);
    (0..n_docs.div_ceil(per).max(1)).map(|r| (r * per, ((r + 1) * per).min(n_docs))).collect()
}

/// A ranged accumulation over `acc` (one accumulator per document): for each of the
/// [`doc_ranges`] in turn, `accumulate(acc, end)` adds every posting below `end` not added yet
/// (`end` is `u32::MAX` for the last range, so that none is left), then `drain(range, lo)`
/// collects and clears that range's accumulators, `lo` its first document.
#[inline]
pub(crate) fn by_ranges<S>(
    acc: &mut [S],
    mut accumulate: impl FnMut(&mut [S], u32),
    mut drain: impl FnMut(&mut [S], u32),
) {
    let ranges = doc_ranges(acc.len(), std::mem::size_of::<S>());
    let last = ranges.len() - 1;
    for (r, &(lo, hi)) in ranges.iter().enumerate() {
        accumulate(acc, if r == last { u32::MAX } else { hi as u32 });
        drain(&mut acc[lo..hi], lo as u32);
    }
}

/// Ask the CPU to start loading the first [`PREFETCH_LINES`] cache lines of `term`'s
/// compressed doc ids (and a quarter as many of its impacts), so that a query's posting lists
/// are fetched together, before the first is scored, rather than one after another as the
/// scoring reaches each: with the caches cold (other work between queries), the list starts
/// are misses the hardware prefetcher cannot predict. On synthetic 100k, approximate search's
/// candidate stage (beta 0.7, gamma 0.1, rerank 4; `examples/approx_grid.rs`, 200 queries) went
/// from 0.080-0.084 to 0.067-0.072 ms warm and from 0.136-0.141 to 0.111-0.113 ms after reading
/// 16 MB of other memory before each query (`COLD=16`); 4 lines gained less, 32 no more. The
/// exhaustive scorer, which asks for every term's lines before its first, went from 0.316-0.321
/// to 0.278-0.280 ms warm and from 0.379-0.383 to 0.323-0.342 cold there, and on debian from
/// 0.171-0.175 to 0.165 warm and 0.215-0.217 to 0.190-0.194 cold (stop 35, Intel Xeon).
#[inline]
pub fn prefetch_term<I>(v: &crate::index::IndexView<'_>, arrays: &crate::index::ImpactArrays<'_, I>, term: u32) {
    let t = term as usize;
    if t >= v.n_terms as usize {
        return;
    }
    let (b0, b1) = (v.term_block_start[t] as usize, v.term_block_start[t + 1] as usize);
    let (lo, hi) = (v.block_off[b0] as usize, v.block_off[b1] as usize);
    prefetch_lines(&v.docs[lo..hi], PREFETCH_LINES);
    let (p0, p1) = (v.term_post_start[t] as usize, v.term_post_start[t + 1] as usize);
    prefetch_lines(&arrays.impacts[p0..p1], PREFETCH_LINES / 4);
}

/// Ask the CPU to start loading the per-term entries a search reads first for each of `terms`
/// (local ids): where its posting blocks and postings start, its largest impact and the slot of
/// its doc-block maxima. One line each, no branch on what they hold, so the misses of all terms
/// are in flight together. [`prefetch_term`] then reads these entries to find the lists, a
/// second miss that depends on the first: issued term after term, its loads and the branches on
/// them kept the misses of one term from overlapping those of the next (seen as the largest
/// per-segment cost of a search over many small segments, issue #10).
#[inline]
pub fn prefetch_term_meta<I>(
    v: &crate::index::IndexView<'_>,
    arrays: &crate::index::ImpactArrays<'_, I>,
    terms: impl Iterator<Item = u32>,
) {
    for t in terms {
        let t = t as usize;
        prefetch_lines(v.term_block_start.get(t..).unwrap_or_default(), 1);
        prefetch_lines(v.term_post_start.get(t..).unwrap_or_default(), 1);
        prefetch_lines(arrays.term_max.get(t..).unwrap_or_default(), 1);
        prefetch_lines(arrays.doc_block_max.slot.get(t..).unwrap_or_default(), 1);
    }
}

/// Ask the CPU to start loading the first entry of the block offsets of each of `terms` that
/// has no doc-block maxima (the terms whose postings [`prefetch_term`] asks for next), once
/// [`prefetch_term_meta`] has had the term entries loaded.
#[inline]
pub fn prefetch_term_blocks<I>(
    v: &crate::index::IndexView<'_>,
    arrays: &crate::index::ImpactArrays<'_, I>,
    terms: impl Iterator<Item = u32>,
) {
    for t in terms {
        let t = t as usize;
        if t >= v.n_terms as usize || arrays.doc_block_max.slot.get(t).is_some_and(|&s| s != u32::MAX) {
            continue;
        }
        let b0 = v.term_block_start[t] as usize;
        prefetch_lines(v.block_off.get(b0..).unwrap_or_default(), 1);
    }
}

/// [`prefetch_term`] of each of `terms`, all before any is read.
#[inline]
pub fn prefetch_terms<I>(
    v: &crate::index::IndexView<'_>,
    arrays: &crate::index::ImpactArrays<'_, I>,
    terms: impl Iterator<Item = u32>,
) {
    for t in terms {
        prefetch_term(v, arrays, t);
    }
}

/// Cache lines [`prefetch_term`] asks for at the start of a term's doc ids.
pub const PREFETCH_LINES: usize = 16;

/// Ask the CPU to start loading the first `max` cache lines of `x` (a hint: nothing is read).
#[inline(always)]
pub fn prefetch_lines<T>(x: &[T], max: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        let p = x.as_ptr() as *const i8;
        let bytes = std::mem::size_of_val(x).min(max * 64);
        let mut off = 0;
        while off < bytes {
            // SAFETY: a hint at an address inside `x`; prefetching never faults.
            unsafe { std::arch::x86_64::_mm_prefetch(p.add(off), std::arch::x86_64::_MM_HINT_T0) };
            off += 64;
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (x, max);
}

#[cfg(target_arch = "x86_64")]
mod x86;

#[cfg(test)]
mod tests;
