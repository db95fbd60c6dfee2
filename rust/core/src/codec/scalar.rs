//! The portable twin of the SIMD kernels: same byte layout, byte-identical output, no
//! `unsafe`. Used on CPUs without a SIMD kernel and as the reference in parity tests.

use super::{base, bit_table, clamp_bits, mask, packed_len, unroll32, BLOCK_LEN};

/// Portable [`super::unpack`]: unpack a block (`input.len() >= packed_len(bits)`, any
/// alignment). Reads only `input[..packed_len(bits)]`.
///
/// # Panics
///
/// If `input` is shorter than `packed_len(bits)`.
pub fn unpack(input: &[u8], bits: u32, out: &mut [u32; BLOCK_LEN]) {
    let bits = clamp_bits(bits);
    let input = &input[..packed_len(bits)];
    (UNPACK[bits as usize])(input, out)
}

/// Portable [`super::decode_docs`]: unpack, then prefix-sum the gaps (minus one) from `prev`
/// (`None`: a list's first block). Writes all 128 slots.
///
/// # Panics
///
/// If `input` is shorter than `packed_len(bits)`.
pub fn decode_docs(input: &[u8], bits: u32, prev: Option<u32>, out: &mut [u32; BLOCK_LEN]) {
    let bits = clamp_bits(bits);
    let input = &input[..packed_len(bits)];
    (DECODE[bits as usize])(input, base(prev), out)
}

/// A safe scalar unpack kernel for one bit width.
type ScalarUnpack = fn(&[u8], &mut [u32; BLOCK_LEN]);
/// A safe scalar doc-id decode kernel for one bit width.
type ScalarDecode = fn(&[u8], u32, &mut [u32; BLOCK_LEN]);

static UNPACK: [ScalarUnpack; 33] = bit_table!(ScalarUnpack, unpack_bits);
static DECODE: [ScalarDecode; 33] = bit_table!(ScalarDecode, decode_bits);

/// Unpacks one block of `BITS`-bit values; `input` is exactly `packed_len(BITS)` bytes.
// The unrolled loop's last straddling value updates `cur` for a successor it does not have.
#[allow(unused_assignments)]
#[inline(always)]
pub(super) fn unpack_bits<const BITS: u32>(input: &[u8], out: &mut [u32; BLOCK_LEN]) {
    if BITS == 0 {
        out.fill(0);
        return;
    }
    let input = &input[..packed_len(BITS)];
    let m = mask(BITS);
    for lane in 0..4 {
        // Word `w` of this lane's stream.
        let word = |w: u32| {
            let at = 16 * w as usize + 4 * lane;
            u32::from_le_bytes([input[at], input[at + 1], input[at + 2], input[at + 3]])
        };
        let mut cur = word(0);
        unroll32!(k, {
            let bit = k * BITS;
            let (w, s) = (bit / 32, bit % 32);
            if k > 0 && s == 0 {
                cur = word(w);
            }
            let mut v = cur >> s;
            if s + BITS > 32 {
                // The value straddles into the next word (which exists: it ends by bit 32*BITS).
                let next = word(w + 1);
                v |= next << (32 - s);
                cur = next;
            }
            out[4 * k as usize + lane] = v & m;
        });
    }
}

/// Decodes one doc-id block of `BITS`-bit gaps from running doc id `base`.
#[inline(always)]
pub(super) fn decode_bits<const BITS: u32>(input: &[u8], base: u32, out: &mut [u32; BLOCK_LEN]) {
    unpack_bits::<BITS>(input, out);
    let mut acc = base;
    for v in out.iter_mut() {
        acc = acc.wrapping_add(*v).wrapping_add(1);
        *v = acc;
    }
}
