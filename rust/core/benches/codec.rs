//! Block codec decode throughput, in decoded values per second (criterion `Elements`).
//!
//! For each bit width in {2, 5, 8, 13, 20} it packs 256 blocks of random values (about 80 KiB
//! at 20 bits, so the input stays in L2) and measures decoding all of them with `unpack` and
//! with `decode_docs` (unpack fused with the doc-id prefix sum), each through the runtime
//! dispatched kernel (`kernel_name()`: avx2 / sse2 / scalar) and through the portable
//! `scalar` twin. Packed blocks sit at an odd byte offset, as they may in an mmapped file.
//!
//! Run: `cargo bench -p sparsedex-core --bench codec -- --warm-up-time 1 --measurement-time 2`

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use sparsedex_core::codec::{self, BLOCK_LEN};

const BLOCKS: usize = 256;
const WIDTHS: [u32; 5] = [2, 5, 8, 13, 20];

/// `BLOCKS` packed blocks of `bits`-bit pseudo-random values, starting at byte offset 1.
fn packed_blocks(bits: u32) -> Vec<u8> {
    let mut state = 0x2545_F491_4F6C_DD1Du64 ^ u64::from(bits);
    let mut out = vec![0u8; 1];
    for _ in 0..BLOCKS {
        let values: [u32; BLOCK_LEN] = std::array::from_fn(|_| {
            // xorshift64*
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            let r = (state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 32) as u32;
            r & (u32::MAX >> (32 - bits))
        });
        codec::pack(&values, bits, &mut out);
    }
    out
}

type DecodeFn = fn(&[u8], u32, Option<u32>, &mut [u32; BLOCK_LEN]);

fn bench_decoder(c: &mut Criterion, group: &str, variants: [(&str, DecodeFn); 2]) {
    let mut g = c.benchmark_group(group);
    g.throughput(Throughput::Elements((BLOCKS * BLOCK_LEN) as u64));
    for bits in WIDTHS {
        let data = packed_blocks(bits);
        let len = codec::packed_len(bits);
        for (name, f) in variants {
            g.bench_with_input(BenchmarkId::new(name, bits), &data, |b, data| {
                let mut out = [0u32; BLOCK_LEN];
                b.iter(|| {
                    let mut check = 0u32;
                    for (i, block) in data[1..].chunks_exact(len).enumerate() {
                        // As in a posting cursor, `prev` comes from block metadata (the
                        // previous block's last doc id), not from the previous decode.
                        let prev = (i > 0).then_some(i as u32 * 1_000_000);
                        f(black_box(block), bits, prev, &mut out);
                        check = check.wrapping_add(out[BLOCK_LEN - 1]);
                    }
                    check
                })
            });
        }
    }
    g.finish();
}

fn codec_benches(c: &mut Criterion) {
    let dispatched = format!("dispatched({})", codec::kernel_name());
    let dispatched: &'static str = Box::leak(dispatched.into_boxed_str());
    bench_decoder(
        c,
        "unpack",
        [(dispatched, |i, b, _, o| codec::unpack(i, b, o)), ("scalar", |i, b, _, o| codec::scalar::unpack(i, b, o))],
    );
    bench_decoder(c, "decode_docs", [(dispatched, codec::decode_docs), ("scalar", codec::scalar::decode_docs)]);
}

criterion_group!(benches, codec_benches);
criterion_main!(benches);
