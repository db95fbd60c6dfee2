//! The x86-64 SIMD kernels (AVX2, AVX-512) behind the safe functions of [`super`]; each runs
//! only where its instructions were detected (an [`super::Isa`] other than `Scalar` is proof).

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

/// AVX2 `super::chunk_pass_u16`: the portable loop compiled for AVX2 (16-lane maxima,
/// 32-byte zeroing stores).
///
/// # Safety
///
/// avx2 is available.
#[target_feature(enable = "avx2")]
pub(super) unsafe fn chunk_pass_u16_avx2(acc: &mut [u16], thr: u32, seed_k: usize, kept: &mut Vec<u64>) -> u32 {
    super::chunk_pass_u16_scalar(acc, thr, seed_k, kept)
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

/// AVX2 [`super::drain_above_u16`]: 16 lanes compared at a time (unsigned, as signed compares
/// of the values with their top bit flipped), zeroed with one store.
///
/// # Safety
///
/// avx2 is available.
#[target_feature(enable = "avx2")]
pub(super) unsafe fn drain_above_u16_avx2(acc: &mut [u16], mut thr: u32, mut take: impl FnMut(u32, u32) -> u32) {
    let n = acc.len();
    let p = acc.as_mut_ptr();
    let zero = _mm256_setzero_si256();
    let bias = _mm256_set1_epi16(i16::MIN);
    // Lanes compare against min(thr, u16::MAX): no 16-bit value is above that clamp when thr is.
    let lane = |thr: u32| _mm256_set1_epi16((thr.min(u16::MAX as u32) as u16 ^ 0x8000) as i16);
    let mut t = lane(thr);
    let mut i = 0;
    while i + 16 <= n {
        // SAFETY: i + 16 <= n: the 16 lanes are inside `acc`.
        let v = _mm256_loadu_si256(p.add(i).cast());
        let gt = _mm256_cmpgt_epi16(_mm256_xor_si256(v, bias), t);
        // Two mask bits per 16-bit lane: keep the low one.
        let mut m = (_mm256_movemask_epi8(gt) as u32) & 0x5555_5555;
        if m != 0 {
            // Rare: lanes above the threshold, in doc order (the threshold may rise).
            while m != 0 {
                let j = (m.trailing_zeros() / 2) as usize;
                m &= m - 1;
                let s = *p.add(i + j) as u32;
                if s > thr {
                    thr = take((i + j) as u32, s);
                }
            }
            t = lane(thr);
        }
        _mm256_storeu_si256(p.add(i).cast(), zero);
        i += 16;
    }
    for (d, a) in acc.iter_mut().enumerate().skip(i) {
        let s = std::mem::take(a) as u32;
        if s > thr {
            thr = take(d as u32, s);
        }
    }
}

/// AVX-512 [`super::drain_above_u16`]: 32 lanes at a time.
///
/// # Safety
///
/// avx512f and avx512bw are available.
#[target_feature(enable = "avx512f,avx512bw")]
pub(super) unsafe fn drain_above_u16(acc: &mut [u16], mut thr: u32, mut take: impl FnMut(u32, u32) -> u32) {
    let n = acc.len();
    let p = acc.as_mut_ptr();
    let zero = _mm512_setzero_si512();
    let lane = |thr: u32| _mm512_set1_epi16(thr.min(u16::MAX as u32) as u16 as i16);
    let mut t = lane(thr);
    let mut i = 0;
    while i + 32 <= n {
        // SAFETY: i + 32 <= n: the 32 lanes are inside `acc`.
        let v = _mm512_loadu_si512(p.add(i).cast());
        let mut m = _mm512_cmpgt_epu16_mask(v, t) as u32;
        if m != 0 {
            // Rare: lanes above the threshold, in doc order (the threshold may rise).
            while m != 0 {
                let j = m.trailing_zeros() as usize;
                m &= m - 1;
                let s = *p.add(i + j) as u32;
                if s > thr {
                    thr = take((i + j) as u32, s);
                }
            }
            t = lane(thr);
        }
        _mm512_storeu_si512(p.add(i).cast(), zero);
        i += 32;
    }
    for (d, a) in acc.iter_mut().enumerate().skip(i) {
        let s = std::mem::take(a) as u32;
        if s > thr {
            thr = take(d as u32, s);
        }
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
/// avx512f, avx512bw and avx512vl are available (the tail's 128-bit masked load is VL);
/// `docs` and `imps` are valid for `n` reads; the `n` doc ids are distinct, each is a valid
/// index of the `acc` allocation and below 2^31 (the gather / scatter lanes are signed).
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
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
