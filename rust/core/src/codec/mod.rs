//! Fixed 128-value blocks of bit-packed `u32`s, decoded with SIMD where the CPU has it.
//!
//! # Layout
//!
//! A block of [`BLOCK_LEN`] = 128 values packed at `bits` bits is the 4-lane *vertical* layout
//! of the `bitpacking` crate's `BitPacker4x` (Lemire & Boytsov 2015, "SIMD-BP128"): value `i`
//! belongs to lane `i % 4`, and each lane packs its 32 values LSB-first into a stream of `bits`
//! little-endian `u32` words. Word `w` of lane `j` is stored at byte `16 * w + 4 * j`, so the
//! block is `bits` rows of 16 bytes ([`packed_len`]) and one 128-bit load fetches word `w` of
//! all four lanes: a SIMD decoder extracts values `4k..4k+4` (already in output order) with the
//! same shift and mask in every lane, and the delta decoder prefix-sums them in-register.
//!
//! # Kernels
//!
//! [`unpack`] and [`decode_docs`] pick, once per process, the best kernel this CPU has
//! ([`kernel_name`]); [`scalar`] is the portable twin with byte-identical output. Every kernel
//! is monomorphised per bit width (`const BITS: u32`) and fully unrolled, so all shifts and
//! masks are immediates. Kernels read exactly `input[..packed_len(bits)]`, with unaligned loads
//! (blocks come straight from an mmapped file).
//!
//! # Doc-id blocks
//!
//! [`encode_docs`] stores strictly increasing doc ids as *gaps minus one* relative to the last
//! doc id of the previous block (a list's first block uses a virtual previous doc id of `-1`,
//! so its first stored value is the doc id itself). Short final blocks are padded with zero
//! gaps; decoding runs on wrapping `u32` arithmetic, so padding (or corrupt input) can never
//! panic, it only yields meaningless values past the block's real length. A list's short final
//! block is stored *trimmed* ([`encode_docs_final`], [`decode_stored_docs`]): only the rows its
//! values need, then its bit width in one byte.

use std::sync::OnceLock;

use scalar::{decode_bits as scalar_decode_bits, unpack_bits as scalar_unpack_bits};

pub mod scalar;
#[cfg(target_arch = "x86_64")]
mod x86;

#[cfg(test)]
mod tests;

/// Number of values in one block.
pub const BLOCK_LEN: usize = 128;

/// Largest supported bit width.
const MAX_BITS: u32 = 32;

/// Bytes one packed block of 128 values of `bits` bits takes: `16 * bits`.
///
/// `bits` above 32 is a caller bug (debug assertion); release builds clamp it to 32.
#[inline]
pub fn packed_len(bits: u32) -> usize {
    16 * clamp_bits(bits) as usize
}

/// Smallest bit width (0..=32) that holds `max`.
#[inline]
pub fn bits_for(max: u32) -> u32 {
    32 - max.leading_zeros()
}

/// Clamps a bit width to `0..=32`; widths above 32 are a caller bug.
#[inline(always)]
fn clamp_bits(bits: u32) -> u32 {
    debug_assert!(bits <= MAX_BITS, "bit width {bits} > 32");
    bits.min(MAX_BITS)
}

/// Pack 128 values (each < 2^bits) and append exactly `packed_len(bits)` bytes to `out`.
///
/// Values wider than `bits` are a caller bug (debug assertion); release builds keep only their
/// low `bits` bits, so a bad value never corrupts its neighbours.
pub fn pack(values: &[u32; BLOCK_LEN], bits: u32, out: &mut Vec<u8>) {
    let bits = clamp_bits(bits);
    debug_assert!(values.iter().all(|&v| bits_for(v) <= bits), "a value does not fit in {bits} bits");
    let start = out.len();
    out.resize(start + packed_len(bits), 0);
    if bits == 0 {
        return;
    }
    let dst = &mut out[start..];
    let mask = mask(bits);
    for lane in 0..4 {
        // LSB-first bit accumulator for this lane's word stream.
        let mut acc: u64 = 0;
        let mut filled = 0u32;
        let mut word = 0usize;
        for k in 0..32 {
            acc |= u64::from(values[4 * k + lane] & mask) << filled;
            filled += bits;
            if filled >= 32 {
                let at = 16 * word + 4 * lane;
                dst[at..at + 4].copy_from_slice(&(acc as u32).to_le_bytes());
                acc >>= 32;
                filled -= 32;
                word += 1;
            }
        }
        debug_assert_eq!((word, filled), (bits as usize, 0));
    }
}

/// Unpack a block (`input.len() >= packed_len(bits)`, any alignment) with the best kernel this
/// CPU has. Reads only `input[..packed_len(bits)]`.
///
/// # Panics
///
/// If `input` is shorter than `packed_len(bits)`.
#[inline]
pub fn unpack(input: &[u8], bits: u32, out: &mut [u32; BLOCK_LEN]) {
    let bits = clamp_bits(bits);
    let input = &input[..packed_len(bits)];
    let kernel = kernel();
    // SAFETY: `kernel()` only returns kernels whose CPU features were detected at runtime,
    // `bits <= 32` indexes the 33-entry table, and `input` holds exactly `packed_len(bits)`
    // bytes, which is all the `bits` entry reads.
    unsafe { (kernel.unpack[bits as usize])(input, out) }
}

/// Doc-id blocks: `docs` strictly increasing, 1..=128 of them. Stores gaps minus one relative to
/// `prev` (the last doc id of the previous block; `None` for a list's first block, where the
/// first gap is the doc id itself). Pads to 128 values with zero gaps, appends
/// `packed_len(bits)` bytes, returns `bits`.
///
/// # Panics
///
/// If `docs` is empty or longer than [`BLOCK_LEN`]. Non-increasing doc ids (or a first doc id
/// not above `prev`) are a caller bug: debug assertion, garbage but no panic in release.
pub fn encode_docs(docs: &[u32], prev: Option<u32>, out: &mut Vec<u8>) -> u32 {
    assert!(!docs.is_empty() && docs.len() <= BLOCK_LEN, "a doc-id block holds 1..=128 docs, got {}", docs.len());
    let mut gaps = [0u32; BLOCK_LEN];
    let mut last = base(prev);
    let mut max = 0u32;
    for (i, (gap, &doc)) in gaps.iter_mut().zip(docs).enumerate() {
        debug_assert!(
            (i == 0 && prev.is_none()) || doc > last,
            "doc ids must be strictly increasing: {doc} after {last}"
        );
        *gap = doc.wrapping_sub(last).wrapping_sub(1);
        max |= *gap;
        last = doc;
    }
    let bits = bits_for(max);
    pack(&gaps, bits, out);
    bits
}

/// Inverse of [`encode_docs`]: unpack + prefix sum fused (SIMD where available). Writes all 128
/// slots; only the first `n` (the block's real length, known to the caller) are meaningful.
///
/// # Panics
///
/// If `input` is shorter than `packed_len(bits)`.
#[inline]
pub fn decode_docs(input: &[u8], bits: u32, prev: Option<u32>, out: &mut [u32; BLOCK_LEN]) {
    let bits = clamp_bits(bits);
    let input = &input[..packed_len(bits)];
    let kernel = kernel();
    // SAFETY: as in `unpack`: the kernel's CPU features were detected, `bits <= 32`, and
    // `input` holds exactly the `packed_len(bits)` bytes the kernel reads.
    unsafe { (kernel.decode[bits as usize])(input, base(prev), out) }
}

/// Rows (16-byte words of the four lanes) that hold the first `len` values of a block packed at
/// `bits`: lane `j` holds values `j, j + 4, ...`, at most `ceil(len / 4)` of them, in a stream
/// of `bits` bits each, so the first `ceil(ceil(len / 4) * bits / 32)` rows hold them all.
#[inline]
pub fn rows_for(len: usize, bits: u32) -> usize {
    (len.div_ceil(4) * clamp_bits(bits) as usize).div_ceil(32)
}

/// A list's final doc-id block (`docs` as in [`encode_docs`]), *trimmed* when it is short: the
/// block is packed as by [`encode_docs`], then, if its `len < 128` values fit in fewer rows
/// than the full block's `bits` ([`rows_for`]), only those rows are kept and one byte holding
/// `bits` is appended (`16 * rows + 1` bytes, a length that is not a multiple of 16, which is
/// how [`decode_stored_docs`] tells the layouts apart). The rows kept are byte for byte those
/// of the full block, and the rows dropped hold only padding, so decoding (with the dropped
/// rows as zeros) gives the full block's output. Returns `bits`.
///
/// Format version 3 of the index (rust/core/FORMAT.md §2); on the debian corpus the final blocks of
/// the 14,000 lists shorter than a block were a quarter of the doc-id bytes.
pub fn encode_docs_final(docs: &[u32], prev: Option<u32>, out: &mut Vec<u8>) -> u32 {
    let start = out.len();
    let bits = encode_docs(docs, prev, out);
    let rows = rows_for(docs.len(), bits);
    if docs.len() < BLOCK_LEN && rows < bits as usize {
        out.truncate(start + 16 * rows);
        out.push(bits as u8);
    }
    bits
}

/// Decode a doc-id block as stored: a full block of `input.len() / 16` bits (a multiple of 16
/// bytes), or a trimmed final block ([`encode_docs_final`]: `16 * rows + 1` bytes, the last
/// one its bit width), whose missing rows decode as zeros. A trimmed block's bit width is
/// clamped to 32 and at most `packed_len(bits)` of its bytes are read, so a corrupt one yields
/// meaningless values, never a panic; a full block longer than `packed_len(32)` is a caller
/// bug as in [`decode_docs`] (opening an index refuses it).
#[inline]
pub fn decode_stored_docs(input: &[u8], prev: Option<u32>, out: &mut [u32; BLOCK_LEN]) {
    if input.len().is_multiple_of(16) {
        decode_docs(input, (input.len() / 16) as u32, prev, out);
    } else {
        decode_trimmed(input, prev, out);
    }
}

/// [`decode_stored_docs`] of the block stored at `section[lo..hi]`. A trimmed block is decoded
/// in place when the section holds `packed_len(bits)` bytes from `lo`, without copying it into
/// a zeroed full block: the bytes past it (its width byte, the next block) are read as its
/// dropped rows, and those rows only hold bits of values at or past the block's length (lane
/// `j` keeps its first `ceil(len / 4)` values in the rows kept, [`rows_for`]), which callers
/// never read, and the prefix sum runs forward, so values before the length are the same as
/// [`decode_stored_docs`] gives. Near the section's end it copies, as that function does.
#[inline]
pub fn decode_stored_docs_at(section: &[u8], lo: usize, hi: usize, prev: Option<u32>, out: &mut [u32; BLOCK_LEN]) {
    let input = &section[lo..hi];
    if input.len().is_multiple_of(16) {
        decode_docs(input, (input.len() / 16) as u32, prev, out);
        return;
    }
    let bits = input.last().map_or(0, |&b| clamp_bits_lenient(b as u32));
    match section.get(lo..lo + packed_len(bits)) {
        Some(full) if bits > 0 => decode_docs(full, bits, prev, out),
        _ => decode_trimmed(input, prev, out),
    }
}

#[inline(never)]
fn decode_trimmed(input: &[u8], prev: Option<u32>, out: &mut [u32; BLOCK_LEN]) {
    let bits = input.last().map_or(0, |&b| clamp_bits_lenient(b as u32));
    let mut full = [0u8; 16 * MAX_BITS as usize];
    let n = (input.len() - 1).min(packed_len(bits));
    full[..n].copy_from_slice(&input[..n]);
    decode_docs(&full, bits, prev, out);
}

/// `bits.min(32)` without the debug assertion (a corrupt byte is not a caller bug).
#[inline(always)]
fn clamp_bits_lenient(bits: u32) -> u32 {
    bits.min(MAX_BITS)
}

/// Which kernel [`unpack`] / [`decode_docs`] dispatch to on this machine: `"avx2"`, `"sse2"`
/// or `"scalar"`.
pub fn kernel_name() -> &'static str {
    kernel().name
}

/// The running doc id a block's prefix sum starts from: `prev`, or `-1` (wrapping) for a list's
/// first block, so that `doc = base + sum(gap_minus_one + 1)` holds uniformly.
#[inline(always)]
fn base(prev: Option<u32>) -> u32 {
    prev.unwrap_or(u32::MAX)
}

/// Low-`bits` mask for `bits` in `1..=32`.
#[inline(always)]
const fn mask(bits: u32) -> u32 {
    u32::MAX >> (32 - bits)
}

/// Unpack kernel: `input` is exactly `packed_len(BITS)` bytes.
type UnpackFn = unsafe fn(&[u8], &mut [u32; BLOCK_LEN]);
/// Doc-id decode kernel: `input` is exactly `packed_len(BITS)` bytes; the `u32` is [`base`].
type DecodeFn = unsafe fn(&[u8], u32, &mut [u32; BLOCK_LEN]);

/// One implementation of the block decoders, one monomorphised entry per bit width 0..=32.
///
/// Invariant: the functions may only be called when every CPU feature they were compiled for
/// is present (guaranteed by [`kernel`] and [`available_kernels`]), with an `input` of exactly
/// `packed_len(bits)` bytes for the entry at index `bits`.
struct Kernel {
    name: &'static str,
    unpack: [UnpackFn; 33],
    decode: [DecodeFn; 33],
}

/// `[f::<0>, f::<1>, ..., f::<32>]` as a table of the given function-pointer type.
macro_rules! bit_table {
    ($ty:ty, $f:ident) => {
        $crate::codec::bit_table!(@ $ty, $f; 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24
            25 26 27 28 29 30 31 32)
    };
    (@ $ty:ty, $f:ident; $($b:literal)*) => {
        [$($f::<$b> as $ty),*]
    };
}
pub(crate) use bit_table;

/// Repeats `$body` 32 times with `$i: u32` bound to 0, 1, ..., 31: a guaranteed full unroll,
/// so that with a const bit width every shift amount and word index is a constant.
macro_rules! unroll32 {
    ($i:ident, $body:block) => {
        $crate::codec::unroll32!(@ $i, $body; 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24
            25 26 27 28 29 30 31)
    };
    (@ $i:ident, $body:block; $($n:literal)*) => {
        $( { let $i: u32 = $n; $body } )*
    };
}
pub(crate) use unroll32;

/// The portable kernel, available everywhere.
static SCALAR: Kernel = Kernel {
    name: "scalar",
    unpack: bit_table!(UnpackFn, scalar_unpack_bits),
    decode: bit_table!(DecodeFn, scalar_decode_bits),
};

/// Every kernel this CPU can run, best first; the last one is always [`SCALAR`].
fn available_kernels() -> Vec<&'static Kernel> {
    let mut kernels: Vec<&'static Kernel> = Vec::new();
    #[cfg(target_arch = "x86_64")]
    {
        if is_x86_feature_detected!("avx2") {
            kernels.push(&x86::AVX2);
        }
        // SSE2 is part of the x86-64 baseline.
        kernels.push(&x86::SSE2);
    }
    kernels.push(&SCALAR);
    kernels
}

/// The best kernel for this CPU, detected once per process.
#[inline(always)]
fn kernel() -> &'static Kernel {
    static BEST: OnceLock<&'static Kernel> = OnceLock::new();
    BEST.get_or_init(|| available_kernels()[0])
}
