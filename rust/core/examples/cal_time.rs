//! Development probe: how long a segment's calibration on pseudo-queries takes, and what it
//! chooses. `cargo run --release --example cal_time -- DIR [runs]` (DIR as `seg_probe`'s; the
//! whole corpus is one segment, BP order, u8 with stored vectors): per run, the seconds
//! (`RAYON_NUM_THREADS=1` for one core, as a first approximate search calibrates) and, per
//! bucket with queries, the recall and parameters chosen at 0.90 / 0.95 / 0.97 / 0.99.
//! `DOCS=n`: the first n documents only.
use sparsedex_core::index::build::{build, BuildOptions, IdsInput, Quantization, Reorder};
use sparsedex_core::search::approx::calibrate::{calibrate_with, BUCKETS};
use sparsedex_core::vectors::CsrRef;
use std::time::Instant;

#[path = "common/raw.rs"]
mod raw;
use raw::read;

fn main() {
    let a: Vec<String> = std::env::args().collect();
    let dir = &a[1];
    let runs: usize = a.get(2).map_or(1, |s| s.parse().unwrap());
    let di: Vec<u64> = read(&format!("{dir}/d_indptr"));
    let dx: Vec<u32> = read(&format!("{dir}/d_indices"));
    let dv: Vec<f32> = read(&format!("{dir}/d_values"));
    // DOCS=n: the first n documents only (a segment of a live index)
    let n = std::env::var("DOCS").map_or(di.len() - 1, |s| s.parse::<usize>().unwrap().min(di.len() - 1));
    let e = di[n] as usize;
    let ix = build(
        CsrRef { indptr: &di[..=n], indices: &dx[..e], values: &dv[..e] },
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
    for run in 0..runs {
        let t = Instant::now();
        let c = calibrate_with(&ix, None, 0x5eed).unwrap();
        let secs = t.elapsed().as_secs_f64();
        // the points' recalls depend on the seed only (costs are timed): equal sums, equal recalls
        let sum: f64 = c.points.iter().map(|p| p.recall * (1.0 + p.params.beta as f64 + p.params.rerank as f64)).sum();
        println!("run {run}: {secs:.2} s; {} points, recall checksum {sum:.9}", c.points.len());
        for (b, &m) in BUCKETS.iter().enumerate() {
            if c.queries[b] == 0 {
                continue;
            }
            let n_terms = if b == 0 { 1 } else { BUCKETS[b - 1] + 1 };
            let row: Vec<String> = [0.90, 0.95, 0.97, 0.99]
                .iter()
                .map(|&t| {
                    let (p, r) = c.choose(t, n_terms);
                    format!("{t}: {r:.4} ({} {} {})", p.beta, p.gamma, p.rerank)
                })
                .collect();
            println!("  bucket <= {m} ({} queries): {}", c.queries[b], row.join(" | "));
        }
    }
}
