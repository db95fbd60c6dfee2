//! Development probe: one search over `nseg` segments against one segment of the same documents
//! (shared 8-bit grid, BP order each), as a multi-segment index searches them.
//! `cargo run --release --example seg_probe -- DIR nseg [algos] [loop-reps]`: median per-query
//! ms of each (fastest of 3 interleaved rounds; `CHUNK=c`: c queries per turn, default 1); with
//! `loop-reps`, only the `nseg` search, that many rounds (a `perf` target).
use sparsedex_core::index::build::{build, BuildOptions, IdsInput, Quantization, Reorder};
use sparsedex_core::search::{search_segments_scores, Algorithm, QueryRef, Scores, Segment};

/// `SDX_IMPACTS=1`: the 8-bit scores (no float rerank).
fn search_segments(
    s: &[Segment<'_>],
    q: QueryRef<'_>,
    k: usize,
    a: Algorithm,
    st: Option<&sparsedex_core::search::Bm25Stats>,
) -> sparsedex_core::Result<Vec<sparsedex_core::search::SegmentHit>> {
    let sc = if std::env::var_os("SDX_IMPACTS").is_some() { Scores::Impacts } else { Scores::Vectors };
    search_segments_scores(s, q, k, a, st, sc)
}
use sparsedex_core::vectors::CsrRef;
use std::time::Instant;

#[path = "common/raw.rs"]
mod raw;
use raw::read;

fn main() {
    let a: Vec<String> = std::env::args().collect();
    let dir = &a[1];
    let nseg: usize = a[2].parse().unwrap();
    let algos: Vec<Algorithm> = a.get(3).map_or("bmp", |s| s.as_str()).split(',').map(|s| s.parse().unwrap()).collect();
    let reps: Option<usize> = a.get(4).map(|s| s.parse().unwrap());
    let di: Vec<u64> = read(&format!("{dir}/d_indptr"));
    let dx: Vec<u32> = read(&format!("{dir}/d_indices"));
    let dv: Vec<f32> = read(&format!("{dir}/d_values"));
    let qi: Vec<u64> = read(&format!("{dir}/q_indptr"));
    let qx: Vec<u32> = read(&format!("{dir}/q_indices"));
    let qv: Vec<f32> = read(&format!("{dir}/q_values"));
    let n_terms = dx.iter().chain(&qx).max().map_or(1, |&m| m + 1);
    let scale = 255.0 / dv.iter().copied().fold(0.0f32, f32::max);
    let n = di.len() - 1;
    let part = |lo: usize, hi: usize| {
        let (p0, p1) = (di[lo] as usize, di[hi] as usize);
        let ip: Vec<u64> = di[lo..=hi].iter().map(|&x| x - di[lo]).collect();
        let ids: Vec<i64> = (lo as i64..hi as i64).collect();
        build(
            CsrRef { indptr: &ip, indices: &dx[p0..p1], values: &dv[p0..p1] },
            IdsInput::Int(&ids),
            &BuildOptions {
                n_terms: Some(n_terms),
                quantization: Quantization::U8 { scale: Some(scale) },
                store_vectors: true,
                reorder: Reorder::default(),
            },
        )
        .unwrap()
        .index
    };
    let t = Instant::now();
    let many: Vec<_> = (0..nseg).map(|s| part(s * n / nseg, (s + 1) * n / nseg)).collect();
    let one = if reps.is_none() { vec![part(0, n)] } else { Vec::new() };
    eprintln!("built in {:.1} s", t.elapsed().as_secs_f64());
    let nq = (qi.len() - 1).min(200);
    let q = |i: usize| {
        let (s, e) = (qi[i] as usize, qi[i + 1] as usize);
        QueryRef { terms: &qx[s..e], weights: &qv[s..e] }
    };
    fn segs(v: &[sparsedex_core::index::Index]) -> Vec<Segment<'_>> {
        v.iter().map(|ix| Segment { index: ix, allowed: None }).collect()
    }
    let (s1, sn) = (segs(&one), segs(&many));
    if let Some(r) = reps {
        let t = Instant::now();
        for _ in 0..r {
            for i in 0..nq {
                std::hint::black_box(search_segments(&sn, q(i), 10, algos[0], None).unwrap());
            }
        }
        eprintln!("{:.4} ms/query", t.elapsed().as_secs_f64() * 1e3 / (r * nq) as f64);
        return;
    }
    // CHUNK=c: each side runs c queries in a row before the other takes its turn (default 1:
    // the two sides alternate query by query, each query finding the caches the other side
    // left; CHUNK=200, a whole round per side, is how benches/updates.py times indexes, as an
    // index serving its own queries sees them).
    let chunk: usize = std::env::var("CHUNK").map_or(1, |s| s.parse().expect("CHUNK: queries per turn"));
    for &algo in &algos {
        let mut best = [vec![f64::MAX; nq], vec![f64::MAX; nq]];
        for round in 0..4 {
            for (c, lo) in (0..nq).step_by(chunk.max(1)).enumerate() {
                for w in if (c + round) % 2 == 0 { [0, 1] } else { [1, 0] } {
                    for i in lo..(lo + chunk.max(1)).min(nq) {
                        let t = Instant::now();
                        let h = search_segments(if w == 0 { &s1 } else { &sn }, q(i), 10, algo, None).unwrap();
                        std::hint::black_box(h);
                        if round > 0 {
                            best[w][i] = best[w][i].min(t.elapsed().as_secs_f64() * 1e3);
                        }
                    }
                }
            }
        }
        let med = |v: &mut Vec<f64>| {
            v.sort_by(|a, b| a.partial_cmp(b).unwrap());
            v[v.len() / 2]
        };
        let (m1, mn) = (med(&mut best[0]), med(&mut best[1]));
        println!("{algo:?}: 1 segment {m1:.3} ms, {nseg} segments {mn:.3} ms, ratio {:.2}", mn / m1);
    }
}
