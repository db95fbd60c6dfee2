//! x86-64 kernels: 128-bit SSE2 code over the 4-lane layout, compiled twice: once for the
//! x86-64 baseline (`"sse2"`) and once with AVX2 enabled (`"avx2"`: VEX three-operand
//! encoding, fewer register copies). One 16-byte load yields word `w` of all four lanes, so
//! every output vector is values `4k..4k+4` in order, extracted with immediate shifts.

use core::arch::x86_64::{
    __m128i, _mm_add_epi32, _mm_and_si128, _mm_cvtsi32_si128, _mm_loadu_si128, _mm_or_si128, _mm_set1_epi32,
    _mm_set_epi32, _mm_setzero_si128, _mm_shuffle_epi32, _mm_sll_epi32, _mm_slli_epi64, _mm_srl_epi32,
    _mm_storeu_si128,
};

use super::{bit_table, mask, packed_len, unroll32, DecodeFn, Kernel, UnpackFn, BLOCK_LEN};

/// SSE2 kernels (always available on x86-64).
pub(super) static SSE2: Kernel =
    Kernel { name: "sse2", unpack: bit_table!(UnpackFn, unpack_sse2), decode: bit_table!(DecodeFn, decode_sse2) };

/// The same kernels compiled with AVX2 enabled; only valid where AVX2 was detected.
pub(super) static AVX2: Kernel =
    Kernel { name: "avx2", unpack: bit_table!(UnpackFn, unpack_avx2), decode: bit_table!(DecodeFn, decode_avx2) };

/// Where an unpacked vector of values `4k..4k+4` goes.
trait Sink {
    /// Consumes output vector `k` (values `4k..4k+4`); called for k = 0, 1, ..., 31 in order.
    ///
    /// # Safety
    ///
    /// `k < 32`, and the sink's output pointer is valid for 128 `u32` writes.
    unsafe fn put(&mut self, k: u32, v: __m128i);
}

/// Stores the values as they are.
struct Store(*mut u32);

impl Sink for Store {
    #[inline(always)]
    unsafe fn put(&mut self, k: u32, v: __m128i) {
        // SAFETY: k < 32, so `4k..4k+4` is inside the 128-slot output; storeu is unaligned.
        _mm_storeu_si128(self.0.add(4 * k as usize).cast::<__m128i>(), v);
    }
}

/// Turns gaps-minus-one into doc ids: in-register prefix sum carried across vectors.
struct PrefixStore {
    out: *mut u32,
    /// The last doc id so far, broadcast to all four lanes.
    acc: __m128i,
    /// `[1; 4]`: stored values are gaps minus one.
    one: __m128i,
    /// `[0, 0, !0, !0]`: selects lanes 2 and 3.
    hi: __m128i,
}

impl Sink for PrefixStore {
    #[inline(always)]
    unsafe fn put(&mut self, k: u32, v: __m128i) {
        // Inclusive prefix sum of the 4 gaps [a, b, c, d] with a single shuffle (the shuffle
        // port is this kernel's bottleneck): a 64-bit shift gives [a, a+b, c, c+d], then lane 1
        // is broadcast (pshufd) and masked onto lanes 2 and 3.
        let v = _mm_add_epi32(v, self.one); // the gaps
        let v = _mm_add_epi32(v, _mm_slli_epi64::<32>(v));
        let v = _mm_add_epi32(v, _mm_and_si128(_mm_shuffle_epi32::<0x50>(v), self.hi));
        let docs = _mm_add_epi32(v, self.acc);
        // SAFETY: k < 32, so `4k..4k+4` is inside the 128-slot output; storeu is unaligned.
        _mm_storeu_si128(self.out.add(4 * k as usize).cast::<__m128i>(), docs);
        // Carry = acc + this vector's total: one add on the loop-carried chain (the shuffle
        // of `v` is off it), instead of add + shuffle when broadcasting the last doc id.
        self.acc = _mm_add_epi32(self.acc, _mm_shuffle_epi32::<0xFF>(v));
    }
}

/// Unaligned load of row `w` (word `w` of all four lanes).
///
/// # Safety
///
/// `16 * (w + 1) <= input.len()`.
#[inline(always)]
unsafe fn row(input: &[u8], w: u32) -> __m128i {
    debug_assert!(16 * (w as usize + 1) <= input.len());
    // SAFETY: the caller guarantees the 16 bytes at 16*w are inside `input`; loadu has no
    // alignment requirement.
    _mm_loadu_si128(input.as_ptr().add(16 * w as usize).cast::<__m128i>())
}

/// The fully unrolled unpacker for one bit width; every shift amount, row index and branch
/// below folds to a constant.
///
/// # Safety
///
/// `input.len() >= packed_len(BITS)`, the sink's output is valid for 128 `u32`s, and the CPU
/// has every feature the calling kernel was compiled for.
// The unrolled loop's last straddling value updates `cur` for a successor it does not have.
#[allow(unused_assignments)]
#[inline(always)]
unsafe fn unpack_body<const BITS: u32, S: Sink>(input: &[u8], sink: &mut S) {
    debug_assert!(input.len() >= packed_len(BITS));
    if BITS == 0 {
        unroll32!(k, {
            // SAFETY: k < 32 and the caller's output holds 128 values.
            sink.put(k, _mm_setzero_si128());
        });
        return;
    }
    let m = _mm_set1_epi32(mask(BITS) as i32);
    // SAFETY (all `row` calls): rows read are < BITS, i.e. inside packed_len(BITS): row 0
    // because BITS >= 1; row w at a word boundary because w = k*BITS/32 < BITS for k < 32; row
    // w+1 of a straddling value because the value ends by bit (k+1)*BITS <= 32*BITS.
    let mut cur = row(input, 0);
    unroll32!(k, {
        let bit = k * BITS;
        let (w, s) = (bit / 32, bit % 32);
        if k > 0 && s == 0 {
            cur = row(input, w);
        }
        let mut v = if s == 0 { cur } else { _mm_srl_epi32(cur, _mm_cvtsi32_si128(s as i32)) };
        if s + BITS > 32 {
            let next = row(input, w + 1);
            let hi = _mm_sll_epi32(next, _mm_cvtsi32_si128((32 - s) as i32));
            v = _mm_or_si128(v, hi);
            cur = next;
        }
        if s + BITS != 32 {
            // A value ending exactly at a word boundary has no stray high bits.
            v = _mm_and_si128(v, m);
        }
        // SAFETY: k < 32 and the caller's output holds 128 values.
        sink.put(k, v);
    });
}

/// Expands to the unpack and decode kernels for one target feature.
macro_rules! kernels {
    ($feature:literal, $unpack:ident, $decode:ident) => {
        /// Unpack kernel for one bit width.
        ///
        /// # Safety
        ///
        /// The CPU supports the target feature; `input.len() >= packed_len(BITS)`.
        #[target_feature(enable = $feature)]
        unsafe fn $unpack<const BITS: u32>(input: &[u8], out: &mut [u32; BLOCK_LEN]) {
            // SAFETY: forwarded from this function's contract; `out` holds 128 values.
            unpack_body::<BITS, _>(input, &mut Store(out.as_mut_ptr()));
        }

        /// Doc-id decode kernel (unpack + prefix sum from `base`) for one bit width.
        ///
        /// # Safety
        ///
        /// The CPU supports the target feature; `input.len() >= packed_len(BITS)`.
        #[target_feature(enable = $feature)]
        unsafe fn $decode<const BITS: u32>(input: &[u8], base: u32, out: &mut [u32; BLOCK_LEN]) {
            let mut sink = PrefixStore {
                out: out.as_mut_ptr(),
                acc: _mm_set1_epi32(base as i32),
                one: _mm_set1_epi32(1),
                hi: _mm_set_epi32(-1, -1, 0, 0),
            };
            // SAFETY: forwarded from this function's contract; `out` holds 128 values.
            unpack_body::<BITS, _>(input, &mut sink);
        }
    };
}

kernels!("sse2", unpack_sse2, decode_sse2);
kernels!("avx2", unpack_avx2, decode_avx2);
