//! Development probe, a `perf` target: approximate search at one recall target (or `auto`,
//! exact, for a target of 1) over the first 200 queries of a corpus dumped as raw arrays (as
//! `probe`), `reps` times, after the calibration (the first search), which it reports apart.
//! `cargo run --release --example approx_loop -- DIR 0.97 200`; profile with
//! `perf record -D <ms past the calibration> ./target/release/examples/approx_loop DIR 0.97 200`.
use sparsedex_core::index::build::{build, BuildOptions, IdsInput, Quantization, Reorder};
use sparsedex_core::search::approx::{search_with_params, ApproxParams, RecallTarget};
use sparsedex_core::search::{search, Algorithm, QueryRef};
use sparsedex_core::vectors::CsrRef;
use std::time::Instant;
#[path = "common/raw.rs"]
mod raw;
use raw::read;
fn main() {
    let a: Vec<String> = std::env::args().collect();
    let dir = &a[1];
    let target: f64 = a[2].parse().unwrap();
    let reps: usize = a[3].parse().unwrap();
    let di: Vec<u64> = read(&format!("{dir}/d_indptr"));
    let dx: Vec<u32> = read(&format!("{dir}/d_indices"));
    let dv: Vec<f32> = read(&format!("{dir}/d_values"));
    let qi: Vec<u64> = read(&format!("{dir}/q_indptr"));
    let qx: Vec<u32> = read(&format!("{dir}/q_indices"));
    let qv: Vec<f32> = read(&format!("{dir}/q_values"));
    let n_terms = dx.iter().chain(&qx).max().map_or(1, |&m| m + 1);
    let ix = build(
        CsrRef { indptr: &di, indices: &dx, values: &dv },
        IdsInput::None,
        &BuildOptions {
            n_terms: Some(n_terms),
            quantization: Quantization::U8 { scale: None },
            store_vectors: true,
            reorder: Reorder::default(),
        },
    )
    .unwrap()
    .index;
    let nq = (qi.len() - 1).min(200);
    let q = |i: usize| {
        let (s, e) = (qi[i] as usize, qi[i + 1] as usize);
        QueryRef { terms: &qx[s..e], weights: &qv[s..e] }
    };
    let algo = if target >= 1.0 { Algorithm::Auto } else { Algorithm::Approximate(RecallTarget::new(target).unwrap()) };
    // LAYER=1: the size of the segment's high layer (approximate search's layered cuts).
    if std::env::var("LAYER").is_ok() {
        use sparsedex_core::search::{Kind, U8Kind};
        let v = ix.view();
        let t = Instant::now();
        let layer = sparsedex_core::search::approx::layer::HighLayer::build(v, &U8Kind::arrays(v).unwrap());
        eprintln!(
            "high layer: {:.1} MB, {:.1}% of {} postings, built in {:.2} s",
            layer.bytes() as f64 / 1e6,
            100.0 * layer.postings_len() as f64 / dx.len() as f64,
            dx.len(),
            t.elapsed().as_secs_f64()
        );
    }
    let fixed0 = std::env::var("PARAMS").is_ok();
    let t = Instant::now();
    if !fixed0 {
        search(&ix, q(0), 10, algo).unwrap();
    }
    eprintln!("first search (calibration) {:.2} s; start", t.elapsed().as_secs_f64());
    // PARAMS=beta,gamma,rerank: fixed parameters (`search_with_params`) instead of the calibrated ones.
    let fixed = std::env::var("PARAMS").ok().map(|s| {
        let v: Vec<f32> = s.split(',').map(|x| x.parse().unwrap()).collect();
        ApproxParams { beta: v[0], gamma: v[1], rerank: v[2] }
    });
    let t = Instant::now();
    for _ in 0..reps {
        for i in 0..nq {
            match fixed {
                Some(p) => std::hint::black_box(search_with_params(&ix, q(i), 10, p).unwrap()),
                None => std::hint::black_box(search(&ix, q(i), 10, algo).unwrap()),
            };
        }
    }
    eprintln!("{:.4} ms/query", t.elapsed().as_secs_f64() * 1e3 / (reps * nq) as f64);
}
