//! One step of recursive graph bisection: split a partition in two halves, swap documents
//! between them while that lowers the log-gap cost, lay the halves out for their own
//! bisection, recurse. See [`super::bp`] for the algorithm and its sources.

use super::bp::{BpOptions, BpWeighting, UNIT_SCALE};
use rayon::prelude::*;
use std::ops::Range;

// Thresholds of the parallel code paths (small under test, so that tests run them).
/// Partitions at least this large compute move gains in parallel.
#[cfg(not(test))]
const PAR_GAINS: usize = 4096;
#[cfg(test)]
const PAR_GAINS: usize = 48;
/// Partitions at least this large count degrees in parallel.
#[cfg(not(test))]
const PAR_DEGREES: usize = 1 << 15;
#[cfg(test)]
const PAR_DEGREES: usize = 96;
/// Partitions at least this large bisect their two halves in parallel.
#[cfg(not(test))]
const PAR_RECURSE: usize = 256;
#[cfg(test)]
const PAR_RECURSE: usize = 8;
/// Documents per task of the parallel passes.
#[cfg(not(test))]
const PAR_CHUNK: usize = 1024;
#[cfg(test)]
const PAR_CHUNK: usize = 16;

/// The documents of one partition and their postings: document `i` (input row `docs[i]`) has
/// terms `terms[starts[i]..starts[i + 1]]` (the last one up to the end of `terms`) with units
/// `units[..]`. Terms are local ids below `n_terms`, numbered for this partition (so that the
/// per-term arrays of a small partition are small and stay in cache). As a destination,
/// `terms` and `units` may be longer than what is written.
pub(crate) struct Part<'a> {
    pub docs: &'a mut [u32],
    pub starts: &'a mut [usize],
    pub terms: &'a mut [u32],
    pub units: &'a mut [u8],
    pub n_terms: usize,
}

impl Part<'_> {
    #[inline]
    fn range(&self, i: usize) -> Range<usize> {
        let end = if i + 1 < self.starts.len() { self.starts[i + 1] } else { self.terms.len() };
        self.starts[i]..end
    }
}

/// Precomputed cost differences for integer degrees: `delta[d] = f(d) - f(d - 1)` with
/// `f(d) = d * log2(d + 1)`, for `d` in `1..=n_docs + 2` (`delta[0] = 0`).
pub(crate) struct Tables {
    delta: Vec<f32>,
    weighting: BpWeighting,
}

impl Tables {
    pub fn new(n_docs: usize, weighting: BpWeighting) -> Tables {
        let f = |d: usize| d as f64 * ((d + 1) as f64).log2();
        let delta = match weighting {
            BpWeighting::Uniform | BpWeighting::Levels(_) => {
                (0..n_docs + 3).map(|d| if d == 0 { 0.0 } else { (f(d) - f(d - 1)) as f32 }).collect()
            }
            BpWeighting::Impact => Vec::new(),
        };
        Tables { delta, weighting }
    }
}

/// What every bisection shares.
pub(crate) struct Ctx<'a> {
    pub opts: &'a BpOptions,
    pub tables: &'a Tables,
    /// The calling thread's cancellation ([`crate::cancel`]): no more swaps or bisections.
    pub stop: crate::cancel::Watch,
}

/// Where a partition of `n` documents splits: half, rounded to a multiple of `align` when the
/// partition holds more than two aligned blocks.
pub(crate) fn split_point(n: usize, align: usize) -> usize {
    let half = n / 2;
    if align > 1 && n > 2 * align {
        let m = (half + align / 2) / align * align;
        m.clamp(align, n - 1)
    } else {
        half
    }
}

/// Bisect `src` (its documents and postings), lay the halves out in `dst`, and recurse with
/// the roles of the two buffers swapped; leaves write their documents to `out`.
pub(crate) fn recurse(ctx: &Ctx<'_>, depth: u32, src: Part<'_>, dst: Part<'_>, out: &mut [u32]) {
    let n = src.docs.len();
    // cancelled: the order so far (a permutation still) is kept; the caller returns the error
    if n <= ctx.opts.leaf_size.max(1) || depth >= ctx.opts.max_depth || n < 2 || ctx.stop.stopped() {
        out.copy_from_slice(src.docs);
        return;
    }
    let m = split_point(n, ctx.opts.align);
    let (side, deg) = bisect(ctx, &src, m);
    let mut dst = dst;
    let [(left_postings, left_terms), (right_postings, right_terms)] = regather(&src, &side, &deg, &mut dst);
    drop((side, deg));

    // The halves, now in `dst`, are bisected next; `src` becomes their destination.
    let Part { docs: dd, starts: ds, terms: dt, units: du, .. } = dst;
    let (dd0, dd1) = dd.split_at_mut(m);
    let (ds0, ds1) = ds.split_at_mut(m);
    let (dt0, dt1) = dt.split_at_mut(left_postings);
    let (du0, du1) = du.split_at_mut(left_postings);
    let left = Part { docs: dd0, starts: ds0, terms: dt0, units: du0, n_terms: left_terms };
    let right = Part {
        docs: dd1,
        starts: ds1,
        terms: &mut dt1[..right_postings],
        units: &mut du1[..right_postings],
        n_terms: right_terms,
    };
    let Part { docs: sd, starts: ss, terms: st, units: su, .. } = src;
    let (sd0, sd1) = sd.split_at_mut(m);
    let (ss0, ss1) = ss.split_at_mut(m);
    let (st0, st1) = st.split_at_mut(left_postings);
    let (su0, su1) = su.split_at_mut(left_postings);
    let left_dst = Part { docs: sd0, starts: ss0, terms: st0, units: su0, n_terms: 0 };
    let right_dst = Part { docs: sd1, starts: ss1, terms: st1, units: su1, n_terms: 0 };
    let (out0, out1) = out.split_at_mut(m);
    if n >= PAR_RECURSE {
        rayon::join(
            || recurse(ctx, depth + 1, left, left_dst, out0),
            || recurse(ctx, depth + 1, right, right_dst, out1),
        );
    } else {
        recurse(ctx, depth + 1, left, left_dst, out0);
        recurse(ctx, depth + 1, right, right_dst, out1);
    }
}

/// Split `p` into its first `m` documents (side 0) and the rest (side 1), then swap pairs of
/// documents while that lowers the cost. Returns the side of each document and the final
/// degrees of every term in both halves.
fn bisect(ctx: &Ctx<'_>, p: &Part<'_>, m: usize) -> (Vec<u8>, Vec<[u32; 2]>) {
    let n = p.docs.len();
    let mut side = vec![0u8; n];
    side[m..].fill(1);
    let mut deg = degrees(p, &side);
    let mut cache = [vec![0.0f32; p.n_terms], vec![0.0f32; p.n_terms]];
    let uniform = ctx.tables.weighting != BpWeighting::Impact;
    let (log_n0, log_n1) = ((m as f32).log2(), ((n - m) as f32).log2());
    let mut gains = vec![0.0f32; n];
    let (mut cand0, mut cand1) = (Vec::new(), Vec::new());
    for _ in 0..ctx.opts.iterations(n) {
        if ctx.stop.stopped() {
            break;
        }
        move_gains(ctx.tables, &deg, &mut cache, log_n0, log_n1);
        doc_gains(p, &side, &cache, uniform, &mut gains);
        if ctx.stop.stopped() {
            break; // an iteration of a large partition takes a while: stop before its swaps
        }
        // A document can only be in a swap with a positive sum if its gain beats minus the
        // best gain on the other side.
        let mut best = [f32::NEG_INFINITY; 2];
        for (g, &sd) in gains.iter().zip(&side) {
            best[sd as usize] = best[sd as usize].max(*g);
        }
        cand0.clear();
        cand1.clear();
        let mut positive = [0usize; 2];
        for (i, (g, &sd)) in gains.iter().zip(&side).enumerate() {
            positive[sd as usize] += (*g > 0.0) as usize;
            if *g + best[1 - sd as usize] > 0.0 {
                if sd == 0 { &mut cand0 } else { &mut cand1 }.push(i as u32);
            }
        }
        // The j-th pair has a positive sum only if one of its gains is positive, so at most
        // max(positive) pairs swap: select that many from each side before sorting.
        let by_gain = |a: &u32, b: &u32| gains[*b as usize].total_cmp(&gains[*a as usize]).then(a.cmp(b));
        let most = cand0.len().min(cand1.len()).min(positive[0].max(positive[1]));
        if most == 0 {
            break;
        }
        for cand in [&mut cand0, &mut cand1] {
            if cand.len() > most {
                cand.select_nth_unstable_by(most - 1, by_gain);
                cand.truncate(most);
            }
        }
        if 2 * most >= PAR_GAINS {
            rayon::join(|| cand0.par_sort_unstable_by(by_gain), || cand1.par_sort_unstable_by(by_gain));
        } else {
            cand0.sort_unstable_by(by_gain);
            cand1.sort_unstable_by(by_gain);
        }
        let swaps =
            cand0.iter().zip(&cand1).take_while(|(a, b)| gains[**a as usize] + gains[**b as usize] > 0.0).count();
        if swaps == 0 {
            break;
        }
        for (&a, &b) in cand0[..swaps].iter().zip(&cand1[..swaps]) {
            move_doc(p, a as usize, 0, &mut deg);
            move_doc(p, b as usize, 1, &mut deg);
            side[a as usize] = 1;
            side[b as usize] = 0;
        }
        if ((2 * swaps) as f64) < ctx.opts.min_swap_fraction * n as f64 {
            break;
        }
    }
    (side, deg)
}

/// Degrees of every term in both halves (integer sums, so the parallel order does not matter).
fn degrees(p: &Part<'_>, side: &[u8]) -> Vec<[u32; 2]> {
    let n = p.docs.len();
    let nt = p.n_terms;
    let count = |deg: &mut Vec<[u32; 2]>, docs: Range<usize>| {
        for i in docs {
            let sd = side[i] as usize;
            for q in p.range(i) {
                deg[p.terms[q] as usize][sd] += p.units[q] as u32;
            }
        }
    };
    if n < PAR_DEGREES {
        let mut deg = vec![[0u32; 2]; nt];
        count(&mut deg, 0..n);
        return deg;
    }
    (0..n.div_ceil(PAR_CHUNK))
        .into_par_iter()
        .fold(
            || vec![[0u32; 2]; nt],
            |mut deg, c| {
                count(&mut deg, c * PAR_CHUNK..((c + 1) * PAR_CHUNK).min(n));
                deg
            },
        )
        .reduce(
            || vec![[0u32; 2]; nt],
            |mut a, b| {
                for (x, y) in a.iter_mut().zip(b) {
                    x[0] += y[0];
                    x[1] += y[1];
                }
                a
            },
        )
}

/// Per term, the gain (cost decrease) of moving one unit of it from each half to the other.
///
/// Uniform: the exact difference of the cost `c(d, n) = d * (log2 n - log2(d + 1))` of the
/// term's degree `d` in a half of `n` documents (Dhulipala et al.; PISA's `expb`): with
/// `f(d) = d * log2(d + 1)`, moving one posting from half 0 to half 1 gains
/// `log2 n0 - log2 n1 + (f(d1 + 1) - f(d1)) - (f(d0) - f(d0 - 1))`. Impact: degrees are real
/// (units / [`UNIT_SCALE`]) and the difference is taken as the derivative of `c` at the
/// midpoint of the move, per unit of [`UNIT_SCALE`].
fn move_gains(tables: &Tables, deg: &[[u32; 2]], cache: &mut [Vec<f32>; 2], log_n0: f32, log_n1: f32) {
    let [c0, c1] = cache;
    match tables.weighting {
        BpWeighting::Uniform | BpWeighting::Levels(_) => {
            let delta = &tables.delta[..];
            let dn = log_n0 - log_n1;
            for ((&[d0, d1], o0), o1) in deg.iter().zip(c0.iter_mut()).zip(c1.iter_mut()) {
                let (d0, d1) = (d0 as usize, d1 as usize);
                // d0 = 0 (or d1 = 0): no document of that half to move; the value is unused.
                *o0 = dn + delta[d1 + 1] - delta[d0];
                *o1 = -dn + delta[d0 + 1] - delta[d1];
            }
        }
        BpWeighting::Impact => {
            const INV_LN2: f32 = std::f32::consts::LOG2_E;
            let dc = |x: f32, log_n: f32| log_n - fast_log2(x + 1.0) - x / (x + 1.0) * INV_LN2;
            for ((&[d0, d1], o0), o1) in deg.iter().zip(c0.iter_mut()).zip(c1.iter_mut()) {
                let (x0, x1) = (d0 as f32 / UNIT_SCALE, d1 as f32 / UNIT_SCALE);
                let g0 = if d0 > 0 { dc((x0 - 0.5).max(0.0), log_n0) - dc(x1 + 0.5, log_n1) } else { 0.0 };
                let g1 = if d1 > 0 { dc((x1 - 0.5).max(0.0), log_n1) - dc(x0 + 0.5, log_n0) } else { 0.0 };
                (*o0, *o1) = (g0 / UNIT_SCALE, g1 / UNIT_SCALE);
            }
        }
    }
}

/// `log2 x` for finite `x >= 1`, within 3e-5: the exponent plus a degree-5 least-squares
/// polynomial of the mantissa (plain arithmetic, so the same on every machine and thread).
#[inline]
pub(crate) fn fast_log2(x: f32) -> f32 {
    const C: [f32; 5] = [1.441_825_8, -0.708_682_1, 0.415_421_95, -0.194_422_67, 0.045_885_527];
    let bits = x.to_bits();
    let e = ((bits >> 23) & 0xff) as i32 - 127;
    let t = f32::from_bits((bits & 0x007f_ffff) | 0x3f80_0000) - 1.0;
    e as f32 + t * (C[0] + t * (C[1] + t * (C[2] + t * (C[3] + t * C[4]))))
}

/// Every document's gain of moving to the other half: the sum over its postings of units x
/// the term's gain (four running sums, added in a fixed order: the result does not depend on
/// the threads). With `uniform` units (all 1) the multiplication is skipped.
fn doc_gains(p: &Part<'_>, side: &[u8], cache: &[Vec<f32>; 2], uniform: bool, gains: &mut [f32]) {
    let gain = |i: usize| {
        let c = &cache[side[i] as usize][..];
        let r = p.range(i);
        let (ts, us) = (&p.terms[r.clone()], &p.units[r]);
        let mut acc = [0.0f32; 4];
        if uniform {
            let mut quads = ts.chunks_exact(4);
            for q in &mut quads {
                for j in 0..4 {
                    acc[j] += c[q[j] as usize];
                }
            }
            for (j, &t) in quads.remainder().iter().enumerate() {
                acc[j] += c[t as usize];
            }
        } else {
            let mut quads = ts.chunks_exact(4).zip(us.chunks_exact(4));
            for (q, u) in &mut quads {
                for j in 0..4 {
                    acc[j] += u[j] as f32 * c[q[j] as usize];
                }
            }
            let done = ts.len() / 4 * 4;
            for (j, (&t, &u)) in ts[done..].iter().zip(&us[done..]).enumerate() {
                acc[j] += u as f32 * c[t as usize];
            }
        }
        (acc[0] + acc[1]) + (acc[2] + acc[3])
    };
    if gains.len() >= PAR_GAINS {
        gains.par_chunks_mut(PAR_CHUNK).enumerate().for_each(|(c, ch)| {
            for (j, g) in ch.iter_mut().enumerate() {
                *g = gain(c * PAR_CHUNK + j);
            }
        });
    } else {
        for (i, g) in gains.iter_mut().enumerate() {
            *g = gain(i);
        }
    }
}

/// Move document `i` out of half `from`, updating the degrees.
fn move_doc(p: &Part<'_>, i: usize, from: usize, deg: &mut [[u32; 2]]) {
    for q in p.range(i) {
        let d = &mut deg[p.terms[q] as usize];
        let u = p.units[q] as u32;
        d[from] -= u;
        d[1 - from] += u;
    }
}

/// Lay out the left half's documents, then the right half's (each in their current relative
/// order) in `dst`, dropping postings of terms that occur in only one document of their half
/// (they cannot change that half's cost, nor any of its parts'), and numbering each half's
/// terms anew in order of appearance. Returns, per half, the postings written and its number
/// of terms.
fn regather(src: &Part<'_>, side: &[u8], deg: &[[u32; 2]], dst: &mut Part<'_>) -> [(usize, usize); 2] {
    let mut local = vec![[u32::MAX; 2]; src.n_terms];
    let mut out = [(0, 0); 2];
    let mut w = 0;
    let mut k = 0;
    for half in 0..2usize {
        let base = w;
        let mut next = 0u32;
        for (i, _) in side.iter().enumerate().filter(|(_, &sd)| sd as usize == half) {
            dst.docs[k] = src.docs[i];
            dst.starts[k] = w - base;
            k += 1;
            for q in src.range(i) {
                let (t, u) = (src.terms[q] as usize, src.units[q]);
                // Units are at least 1, so a degree equal to this posting's units means no
                // other document of the half has the term.
                if deg[t][half] > u as u32 {
                    let id = &mut local[t][half];
                    if *id == u32::MAX {
                        *id = next;
                        next += 1;
                    }
                    dst.terms[w] = *id;
                    dst.units[w] = u;
                    w += 1;
                }
            }
        }
        out[half] = (w - base, next as usize);
    }
    out
}
