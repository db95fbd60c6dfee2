//! Codec tests: round trips for every bit width, every kernel this CPU has against the scalar
//! twin, doc-id blocks (prev None/Some, short blocks, gap extremes), unaligned inputs.

use proptest::prelude::*;

use super::*;

/// Every kernel this machine can run (the dispatched one first, scalar last).
fn kernels() -> Vec<&'static Kernel> {
    available_kernels()
}

fn unpack_with(k: &Kernel, input: &[u8], bits: u32) -> [u32; BLOCK_LEN] {
    let mut out = [0xDEAD_BEEF; BLOCK_LEN];
    let input = &input[..packed_len(bits)];
    // SAFETY: `k` comes from `available_kernels` (features detected) and `input` is exactly
    // `packed_len(bits)` bytes.
    unsafe { (k.unpack[bits as usize])(input, &mut out) };
    out
}

fn decode_with(k: &Kernel, input: &[u8], bits: u32, prev: Option<u32>) -> [u32; BLOCK_LEN] {
    let mut out = [0xDEAD_BEEF; BLOCK_LEN];
    let input = &input[..packed_len(bits)];
    // SAFETY: as in `unpack_with`.
    unsafe { (k.decode[bits as usize])(input, base(prev), &mut out) };
    out
}

/// `bytes` copied into a fresh exact-size allocation at byte offset `off`: the block ends where
/// the allocation ends, so a kernel reading past `packed_len` is out of bounds (Miri sees it).
fn shifted(bytes: &[u8], off: usize) -> Box<[u8]> {
    let mut v = vec![0x5A; off];
    v.extend_from_slice(bytes);
    v.into_boxed_slice()
}

/// Checks every decode path (dispatched, scalar API, each kernel table, offsets 0..8) on one
/// packed block against the expected values.
fn check_unpack(packed: &[u8], bits: u32, expect: &[u32; BLOCK_LEN]) {
    assert_eq!(packed.len(), packed_len(bits));
    for off in 0..8 {
        let buf = shifted(packed, off);
        let input = &buf[off..];
        let mut out = [7; BLOCK_LEN];
        unpack(input, bits, &mut out);
        assert_eq!(&out, expect, "dispatched unpack, bits {bits}, offset {off}");
        scalar::unpack(input, bits, &mut out);
        assert_eq!(&out, expect, "scalar unpack, bits {bits}, offset {off}");
        for k in kernels() {
            assert_eq!(&unpack_with(k, input, bits), expect, "{} bits {bits} off {off}", k.name);
        }
    }
}

/// Encodes `docs` after `prev`, checks the bit width is minimal, and decodes on every path.
fn check_docs(docs: &[u32], prev: Option<u32>) {
    let mut out = vec![0xEE]; // encode appends
    let bits = encode_docs(docs, prev, &mut out);
    assert_eq!(out.len(), 1 + packed_len(bits));
    let mut last = base(prev);
    let max_gap = docs
        .iter()
        .map(|&d| {
            let g = d.wrapping_sub(last).wrapping_sub(1);
            last = d;
            g
        })
        .max()
        .unwrap();
    assert_eq!(bits, bits_for(max_gap), "bit width is minimal");
    let packed = &out[1..];
    let mut expect = [0u32; BLOCK_LEN];
    scalar::decode_docs(packed, bits, prev, &mut expect);
    assert_eq!(&expect[..docs.len()], docs, "scalar decode");
    for off in 0..8 {
        let buf = shifted(packed, off);
        let input = &buf[off..];
        let mut got = [0u32; BLOCK_LEN];
        decode_docs(input, bits, prev, &mut got);
        assert_eq!(got, expect, "dispatched decode, offset {off}");
        for k in kernels() {
            assert_eq!(decode_with(k, input, bits, prev), expect, "{} offset {off}", k.name);
        }
    }
}

#[test]
fn sizes() {
    assert_eq!(packed_len(0), 0);
    assert_eq!(packed_len(1), 16);
    assert_eq!(packed_len(32), 512);
    assert_eq!(bits_for(0), 0);
    assert_eq!(bits_for(1), 1);
    assert_eq!(bits_for(2), 2);
    assert_eq!(bits_for(255), 8);
    assert_eq!(bits_for(256), 9);
    assert_eq!(bits_for(u32::MAX), 32);
    for b in 1..=32 {
        assert_eq!(bits_for(mask(b)), b);
    }
}

#[test]
fn kernel_is_detected_once_and_named() {
    let name = kernel_name();
    assert!(["avx2", "sse2", "scalar"].contains(&name), "{name}");
    assert_eq!(name, kernels()[0].name);
    assert_eq!(kernels().last().unwrap().name, "scalar");
    #[cfg(target_arch = "x86_64")]
    if is_x86_feature_detected!("avx2") {
        assert_eq!(name, "avx2");
    }
}

#[test]
fn every_width_extremes() {
    for bits in 0..=32 {
        let max = if bits == 0 { 0 } else { mask(bits) };
        let patterns: [[u32; BLOCK_LEN]; 4] = [
            [0; BLOCK_LEN],
            [max; BLOCK_LEN],
            std::array::from_fn(|i| if i % 2 == 0 { max } else { 0 }),
            std::array::from_fn(|i| (i as u32).wrapping_mul(0x9E37_79B9) & max),
        ];
        for values in &patterns {
            let mut packed = Vec::new();
            pack(values, bits, &mut packed);
            assert_eq!(packed.len(), packed_len(bits));
            check_unpack(&packed, bits, values);
        }
    }
}

#[test]
fn pack_layout_is_vertical_four_lanes() {
    // bits = 1: value i is bit i/4 of the word of lane i%4, lane j's word at byte 4*j.
    let mut values = [0u32; BLOCK_LEN];
    values[0] = 1; // lane 0, bit 0
    values[5] = 1; // lane 1, bit 1
    values[127] = 1; // lane 3, bit 31
    let mut packed = Vec::new();
    pack(&values, 1, &mut packed);
    assert_eq!(packed, [1, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x80]);
}

#[test]
fn doc_blocks_edge_cases() {
    let max = u32::MAX;
    check_docs(&[0], None);
    check_docs(&[max], None); // 32-bit first gap
    check_docs(&[1], Some(0)); // gap 1 -> 0 bits
    check_docs(&[max], Some(0)); // gap - 1 = 2^32 - 2
    check_docs(&[0, max], None); // second gap needs 32 bits
    check_docs(&[max], Some(max - 1));
    let tail: Vec<u32> = (max - 127..=max).collect();
    check_docs(&tail, None);
    check_docs(&tail, Some(max - 200));
    check_docs(&tail, Some(max - 128)); // all gaps 1: 0 bits, padding wraps past u32::MAX
    let dense: Vec<u32> = (0..128).collect();
    check_docs(&dense, None);
    let sparse: Vec<u32> = (0..128).map(|i| i * 33_554_431).collect();
    check_docs(&sparse, None);
    for n in [1, 2, 3, 4, 5, 31, 32, 33, 127] {
        let docs: Vec<u32> = (0..n).map(|i| 1000 + i * i * 7).collect();
        check_docs(&docs, None);
        check_docs(&docs, Some(999));
        check_docs(&docs, Some(3));
    }
}

#[test]
#[should_panic]
fn short_input_panics_cleanly() {
    let mut out = [0; BLOCK_LEN];
    unpack(&[0u8; 16 * 5 - 1], 5, &mut out);
}

#[test]
#[should_panic]
fn empty_doc_block_panics() {
    encode_docs(&[], None, &mut Vec::new());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn round_trip_every_width(
        bits in 0u32..=32,
        raw in proptest::array::uniform32(any::<u32>()),
        seed in any::<u32>(),
    ) {
        // 128 values from 32 random words, each masked to `bits`.
        let values: [u32; BLOCK_LEN] = std::array::from_fn(|i| {
            let v = raw[i % 32].rotate_left(i as u32 / 32 * 8) ^ seed.wrapping_mul(i as u32);
            if bits == 0 { 0 } else { v & mask(bits) }
        });
        let mut packed = Vec::new();
        pack(&values, bits, &mut packed);
        check_unpack(&packed, bits, &values);
    }

    #[test]
    fn kernels_agree_on_arbitrary_bytes(
        bits in 0u32..=32,
        bytes in proptest::collection::vec(any::<u8>(), 512),
        prev in proptest::option::of(any::<u32>()),
        off in 0usize..8,
    ) {
        let buf = shifted(&bytes[..packed_len(bits)], off);
        let input = &buf[off..];
        let mut want_u = [0; BLOCK_LEN];
        let mut want_d = [0; BLOCK_LEN];
        scalar::unpack(input, bits, &mut want_u);
        scalar::decode_docs(input, bits, prev, &mut want_d);
        for k in kernels() {
            prop_assert_eq!(unpack_with(k, input, bits), want_u, "{}", k.name);
            prop_assert_eq!(decode_with(k, input, bits, prev), want_d, "{}", k.name);
        }
    }

    #[test]
    fn doc_blocks_round_trip(
        spread in 0u32..=32,
        raw in proptest::collection::vec(any::<u32>(), 1..=128),
        prev in proptest::option::of(any::<u32>()),
    ) {
        // Gaps of up to `spread` bits, so every width shows up; stop before u32 overflows.
        let gaps: Vec<u64> = raw.iter().map(|&r| u64::from(r) >> (32 - spread)).collect();
        let mut last = prev.map_or(-1i64, i64::from);
        let mut docs = Vec::new();
        for &g in &gaps {
            let d = last + g as i64 + 1;
            if d > i64::from(u32::MAX) {
                break;
            }
            docs.push(d as u32);
            last = d;
        }
        if docs.is_empty() {
            check_docs(&[gaps[0] as u32], None);
        } else {
            check_docs(&docs, prev);
        }
    }
}

proptest! {
    /// A trimmed final block decoded in place, with arbitrary bytes after it (the next block),
    /// gives the values the copying decoder gives, up to the block's length; at the section's
    /// end it falls back to the copy.
    #[test]
    fn trimmed_block_in_place_equals_copy(
        gaps in proptest::collection::vec(0u32..5000, 1..BLOCK_LEN),
        first in 0u32..1_000_000,
        prev in proptest::option::of(0u32..1000),
        tail in proptest::collection::vec(any::<u8>(), 0..600),
    ) {
        let start = prev.map_or(first, |p| p + 1 + first);
        let mut docs = Vec::with_capacity(gaps.len());
        let mut d = start;
        for g in &gaps {
            docs.push(d);
            d = d.saturating_add(g + 1);
        }
        prop_assume!(docs.windows(2).all(|w| w[0] < w[1]));
        let mut section = vec![0x5Au8; 7]; // an earlier block's bytes
        let lo = section.len();
        encode_docs_final(&docs, prev, &mut section);
        let hi = section.len();
        section.extend_from_slice(&tail);
        let mut want = [0u32; BLOCK_LEN];
        decode_stored_docs(&section[lo..hi], prev, &mut want);
        prop_assert_eq!(&want[..docs.len()], &docs[..]);
        let mut got = [0xDEAD_BEEFu32; BLOCK_LEN];
        decode_stored_docs_at(&section, lo, hi, prev, &mut got);
        prop_assert_eq!(&got[..docs.len()], &docs[..]);
    }
}
