//! TEMPORARY scalar codec (replaced by the real codec branch).
#![allow(missing_docs)]
pub const BLOCK_LEN: usize = 128;
pub fn packed_len(bits: u32) -> usize { 16 * bits as usize }
pub fn bits_for(max: u32) -> u32 { 32 - max.leading_zeros() }
pub fn pack(values: &[u32; BLOCK_LEN], bits: u32, out: &mut Vec<u8>) {
    let start = out.len();
    out.resize(start + packed_len(bits), 0);
    if bits == 0 { return; }
    let buf = &mut out[start..];
    for (i, &v) in values.iter().enumerate() {
        for b in 0..bits { if (v >> b) & 1 == 1 { let p = i * bits as usize + b as usize; buf[p / 8] |= 1 << (p % 8); } }
    }
}
pub fn unpack(input: &[u8], bits: u32, out: &mut [u32; BLOCK_LEN]) {
    for (i, o) in out.iter_mut().enumerate() {
        let mut v = 0u32;
        for b in 0..bits { let p = i * bits as usize + b as usize; if (input[p / 8] >> (p % 8)) & 1 == 1 { v |= 1 << b; } }
        *o = v;
    }
}
pub fn encode_docs(docs: &[u32], prev: Option<u32>, out: &mut Vec<u8>) -> u32 {
    let mut vals = [0u32; BLOCK_LEN];
    let mut p = prev;
    for (i, &d) in docs.iter().enumerate() { vals[i] = match p { None => d, Some(q) => d - q - 1 }; p = Some(d); }
    let bits = bits_for(vals.iter().copied().max().unwrap_or(0));
    pack(&vals, bits, out);
    bits
}
pub fn decode_docs(input: &[u8], bits: u32, prev: Option<u32>, out: &mut [u32; BLOCK_LEN]) {
    unpack(input, bits, out);
    let mut acc: u32 = match prev { None => 0u32.wrapping_sub(1), Some(p) => p };
    for o in out.iter_mut() { acc = acc.wrapping_add(*o).wrapping_add(1); *o = acc; }
}
pub fn kernel_name() -> &'static str { "scalar" }
