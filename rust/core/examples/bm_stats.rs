//! Nonzero fraction of the dense block-maxima arrays (dev probe).
use sparsedex_core::index::build::{build, BuildOptions, IdsInput, Quantization, Reorder};
use sparsedex_core::index::Impacts;
use sparsedex_core::vectors::CsrRef;
#[path = "common/raw.rs"]
mod raw;
use raw::read;
fn main() {
    let dir = std::env::args().nth(1).unwrap();
    let di: Vec<u64> = read(&format!("{dir}/d_indptr"));
    let dx: Vec<u32> = read(&format!("{dir}/d_indices"));
    let dv: Vec<f32> = read(&format!("{dir}/d_values"));
    let ix = build(
        CsrRef { indptr: &di, indices: &dx, values: &dv },
        IdsInput::None,
        &BuildOptions {
            n_terms: None,
            quantization: Quantization::U8 { scale: None },
            store_vectors: true,
            reorder: Reorder::default(),
        },
    )
    .unwrap()
    .index;
    let v = ix.view();
    let Impacts::U8(a) = v.impacts else { panic!() };
    packed_bits(v);
    for (name, d) in [("dbm", a.doc_block_max), ("fbm", a.fine_block_max), ("sbm", a.superblock_max)] {
        let nz = d.dense.iter().filter(|&&x| x > 0).count();
        let small = d.dense.iter().filter(|&&x| x > 0 && x < 16).count();
        println!(
            "{name}: entries {} nonzero {} ({:.1}%), 1..15: {} arrays {}",
            d.dense.len(),
            nz,
            100.0 * nz as f64 / d.dense.len().max(1) as f64,
            small,
            d.dense.len() / d.n_blocks.max(1)
        );
    }
}
// appended probe: bits needed by u8 impacts if bit-packed per 128-posting block
pub fn packed_bits(v: &sparsedex_core::index::IndexView<'_>) {
    let Impacts::U8(a) = v.impacts else { panic!() };
    let mut bits_total = 0u64;
    let mut hist = [0u64; 9];
    let nb = v.block_last.len();
    let bs = v.term_block_start;
    let ps = v.term_post_start;
    for t in 0..v.n_terms as usize {
        let (p0, p1) = (ps[t] as usize, ps[t + 1] as usize);
        let mut p = p0;
        for _b in bs[t]..bs[t + 1] {
            let e = (p + 128).min(p1);
            let m = a.impacts[p..e].iter().copied().max().unwrap_or(0);
            let bits = 8 - m.leading_zeros() as u64;
            hist[bits as usize] += (e - p) as u64;
            bits_total += bits * (e - p) as u64;
            p = e;
        }
    }
    println!(
        "blocks {nb} packed impacts {:.2} MB (vs {:.2}), postings by width {:?}",
        bits_total as f64 / 8e6,
        a.impacts.len() as f64 / 1e6,
        hist
    );
}
