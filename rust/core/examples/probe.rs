//! Development probe: per-query latency of each algorithm on a corpus dumped as raw arrays.
//! `cargo run --release --example probe -- DIR [reorder:0|1|bp] [algos,...]` (0: none, 1: signature,
//! bp: the default, BP)
use sparsedex_core::index::build::{build, BuildOptions, IdsInput, Reorder};
use sparsedex_core::search::{search, Algorithm, QueryRef};
use sparsedex_core::vectors::CsrRef;
use std::time::Instant;

#[path = "common/raw.rs"]
mod raw;
use raw::read;

fn main() {
    let a: Vec<String> = std::env::args().collect();
    let dir = &a[1];
    let mode = a.get(2).map_or("0", |s| s.as_str());
    let reorder = match mode {
        "1" => Reorder::Signature,
        "bp" => Reorder::default(),
        "0" => Reorder::None,
        other => panic!("reorder mode {other:?}: 0 (none), 1 (signature) or bp (the default); a cached index of a mode is reused until PROBE_REBUILD is set"),
    };
    let algos: Vec<Algorithm> = a
        .get(3)
        .map_or("exhaustive,bmp,auto".to_string(), |s| s.clone())
        .split(',')
        .map(|s| match s.strip_prefix("approx") {
            Some(t) => {
                Algorithm::Approximate(sparsedex_core::search::approx::RecallTarget::new(t.parse().unwrap()).unwrap())
            }
            None => s.parse().unwrap(),
        })
        .collect();
    {
        use sparsedex_core::search::kernels::{available, fastest, measure};
        let sets = available();
        eprintln!(
            "kernel sets {:?}: fastest trial {:?} us; picked {:?}",
            sets,
            measure(&sets).iter().map(|t| (t * 1e7).round() / 10.0).collect::<Vec<_>>(),
            fastest()
        );
    }
    let di: Vec<u64> = read(&format!("{dir}/d_indptr"));
    let dx: Vec<u32> = read(&format!("{dir}/d_indices"));
    let dv: Vec<f32> = read(&format!("{dir}/d_values"));
    let qi: Vec<u64> = read(&format!("{dir}/q_indptr"));
    let qx: Vec<u32> = read(&format!("{dir}/q_indices"));
    let qv: Vec<f32> = read(&format!("{dir}/q_values"));
    let t = Instant::now();
    let cache = format!(
        "{dir}/index-{}-{}.sdx",
        match mode {
            "1" => "sig",
            "bp" => "bp",
            _ => "none",
        },
        std::env::var("PROBE_TAG").unwrap_or_default()
    );
    let ix = if std::path::Path::new(&cache).exists() && std::env::var("PROBE_REBUILD").is_err() {
        sparsedex_core::index::Index::open(std::path::Path::new(&cache)).unwrap()
    } else {
        let ix = build(
            CsrRef { indptr: &di, indices: &dx, values: &dv },
            IdsInput::None,
            &BuildOptions { n_terms: Some(30522), reorder, store_vectors: true, ..Default::default() },
        )
        .unwrap()
        .index;
        ix.save(std::path::Path::new(&cache)).unwrap();
        ix
    };
    let v = ix.view();
    eprintln!(
        "build {:.2}s, {} docs, postings bytes {}",
        t.elapsed().as_secs_f64(),
        ix.n_docs(),
        ix.stats().postings_bytes
    );
    let nq = qi.len() - 1;
    let post: Vec<u64> = (0..nq)
        .map(|i| (qi[i] as usize..qi[i + 1] as usize).map(|p| v.local_term(qx[p]).map_or(0, |t| v.df(t))).sum())
        .collect();
    let mut oracle = Vec::new();
    let isas: Vec<Option<sparsedex_core::search::kernels::Isa>> = if std::env::var("PROBE_ISA").is_ok() {
        {
            let mut v: Vec<_> = sparsedex_core::search::kernels::available().into_iter().map(Some).collect();
            if std::env::var("PROBE_ISA_REV").is_ok() {
                v.reverse();
            }
            v
        }
    } else {
        vec![None]
    };
    for alg in &algos {
        let mut tsa = vec![vec![f64::MAX; nq]; isas.len()];
        let (mut recall_sum, mut recall_n) = (0.0f64, 0usize);
        if let Algorithm::Approximate(_) = alg {
            let t = Instant::now();
            let (s, e) = (qi[0] as usize, qi[1] as usize);
            let _ = search(&ix, QueryRef { terms: &qx[s..e], weights: &qv[s..e] }, 10, *alg);
            eprintln!("calibration (first query) {:.2}s", t.elapsed().as_secs_f64());
            let cal = sparsedex_core::search::approx::calibrate::cached(&ix);
            for nt in [6usize, 12, 24, 48, 96, 160] {
                let (p, r) = cal.choose(if let Algorithm::Approximate(t) = alg { t.get() } else { 1.0 }, nt);
                eprintln!(
                    "  {nt} terms: beta {} gamma {} rerank {} cal recall {:.4} (queries per bucket {:?})",
                    p.beta, p.gamma, p.rerank, r, cal.queries
                );
            }
        }
        for round in 0..3 {
            for (ii, isa) in isas.iter().enumerate() {
                sparsedex_core::search::kernels::force(*isa);
                let ts = &mut tsa[ii];
                for i in 0..nq {
                    let (s, e) = (qi[i] as usize, qi[i + 1] as usize);
                    let q = QueryRef { terms: &qx[s..e], weights: &qv[s..e] };
                    let t = Instant::now();
                    let h = search(&ix, q, 10, *alg).unwrap();
                    let el = t.elapsed().as_secs_f64();
                    ts[i] = ts[i].min(el);
                    if round == 0 {
                        if oracle.len() < nq {
                            oracle.push(h);
                        } else if let Algorithm::Approximate(_) = alg {
                            let o: &Vec<sparsedex_core::search::Hit> = &oracle[i];
                            if let Some(th) = o.last().map(|x| x.score) {
                                let good = h.iter().filter(|x| x.score >= th).count();
                                recall_sum += good as f64 / o.len() as f64;
                                recall_n += 1;
                            }
                        } else if oracle[i] != h {
                            eprintln!("MISMATCH {alg} query {i}");
                        }
                    }
                }
            }
        }
        for (ii, ts) in tsa.iter().enumerate() {
            let ts = ts.clone();
            if isas.len() > 1 {
                print!("{:?} ", isas[ii]);
            }
            let mut s = ts.clone();
            s.sort_by(|a, b| a.partial_cmp(b).unwrap());
            let mean = ts.iter().sum::<f64>() / nq as f64;
            let ns_post: f64 = ts.iter().sum::<f64>() * 1e9 / post.iter().sum::<u64>() as f64;
            if recall_n > 0 {
                print!("recall {:.4} ", recall_sum / recall_n as f64);
            }
            println!(
                "{:14} median {:8.3} ms  p90 {:8.3}  mean {:8.3}  ns/posting(mean) {:.3}",
                alg.name(),
                s[nq / 2] * 1e3,
                s[nq * 9 / 10] * 1e3,
                mean * 1e3,
                ns_post
            );
        }
    }
    eprintln!("auto race on this segment: {:?}", ix.auto_standing());
    let mut p = post.clone();
    p.sort();
    println!("postings/query median {} mean {}", p[nq / 2], p.iter().sum::<u64>() / nq as u64);
}
