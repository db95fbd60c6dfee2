//! Development probe for approximate search: per (beta, rerank) grid point, the median latency
//! and the recall@10 against float scores on a corpus dumped as raw arrays (as `probe`), beside
//! the calibrated choice at 0.95 / 0.97 / 0.99 (`DUMP=b`: the calibration's points of bucket b).
//! `cargo run --release --example approx_grid -- DIR [n_queries]`
use sparsedex_core::index::build::{build, BuildOptions, IdsInput, Quantization, Reorder};
use sparsedex_core::search::approx::calibrate::{BETAS, LAYERED, RERANKS};
use sparsedex_core::search::approx::{search_with_params, ApproxParams, RecallTarget};
use sparsedex_core::search::{search, Algorithm, QueryRef};
use sparsedex_core::vectors::CsrRef;
use std::time::Instant;

#[path = "common/raw.rs"]
mod raw;
use raw::read;

fn median(mut x: Vec<f64>) -> f64 {
    x.sort_by(|a, b| a.partial_cmp(b).unwrap());
    x[x.len() / 2]
}

fn main() {
    let a: Vec<String> = std::env::args().collect();
    let dir = &a[1];
    let nq_max: usize = a.get(2).map_or(200, |s| s.parse().unwrap());
    let di: Vec<u64> = read(&format!("{dir}/d_indptr"));
    let dx: Vec<u32> = read(&format!("{dir}/d_indices"));
    let dv: Vec<f32> = read(&format!("{dir}/d_values"));
    let qi: Vec<u64> = read(&format!("{dir}/q_indptr"));
    let qx: Vec<u32> = read(&format!("{dir}/q_indices"));
    let qv: Vec<f32> = read(&format!("{dir}/q_values"));
    let n_terms = dx.iter().chain(&qx).max().map_or(1, |&m| m + 1);
    let make = |quantization| {
        build(
            CsrRef { indptr: &di, indices: &dx, values: &dv },
            IdsInput::None,
            &BuildOptions { n_terms: Some(n_terms), quantization, store_vectors: true, reorder: Reorder::default() },
        )
        .unwrap()
        .index
    };
    let t = Instant::now();
    let ix = make(Quantization::U8 { scale: None });
    let fx = make(Quantization::F32);
    eprintln!("built both in {:.1}s", t.elapsed().as_secs_f64());
    let nq = (qi.len() - 1).min(nq_max);
    // CAL=m: calibrate on the m queries after the timed ones (as `calibrate(queries)` does)
    // instead of pseudo-queries.
    if let Some(m) = std::env::var("CAL").ok().map(|s| s.parse::<usize>().unwrap()) {
        use sparsedex_core::search::approx::calibrate::{calibrate_with, set};
        let hi = (nq + m).min(qi.len() - 1);
        let base = qi[nq];
        let ip: Vec<u64> = qi[nq..=hi].iter().map(|&x| x - base).collect();
        let (s, e) = (qi[nq] as usize, qi[hi] as usize);
        let csr = CsrRef { indptr: &ip, indices: &qx[s..e], values: &qv[s..e] };
        set(&ix, calibrate_with(&ix, Some(csr), 0x5eed).unwrap());
        eprintln!("calibrated on {} queries", hi - nq);
    }
    let q = |i: usize| {
        let (s, e) = (qi[i] as usize, qi[i + 1] as usize);
        QueryRef { terms: &qx[s..e], weights: &qv[s..e] }
    };
    let truth: Vec<f32> = (0..nq)
        .map(|i| search(&fx, q(i), 10, Algorithm::Exhaustive).unwrap().last().map_or(0.0, |h| h.score))
        .collect();
    let recall = |hits: &[sparsedex_core::search::Hit], i: usize| {
        hits.iter().filter(|h| h.score >= truth[i]).count() as f64 / 10.0
    };
    // COLD=m: before each timed query, read m MB of other memory (caches evicted when m is
    // above the last-level cache: 32 MB per CCD on the EPYC of stops 21-24, more on others),
    // as in the harness, whose rows take turns; each query's time is then its median over the
    // rounds, not its minimum (so warm and cold numbers are different statistics).
    let cold_mb: usize = std::env::var("COLD").map_or(0, |s| s.parse().expect("COLD: a size in MB"));
    let evict = std::cell::RefCell::new(vec![1u8; cold_mb << 20]);
    let time = |f: &dyn Fn(usize) -> Vec<sparsedex_core::search::Hit>| {
        let mut ts = vec![Vec::new(); nq];
        let mut r = 0.0;
        for round in 0..3 {
            for (i, t) in ts.iter_mut().enumerate() {
                if cold_mb > 0 {
                    // reads, not writes: dirty lines would cost the timed query their write-back
                    let e = evict.borrow();
                    std::hint::black_box(e.iter().step_by(64).fold(0u8, |a, &x| a ^ x));
                }
                let t0 = Instant::now();
                let h = f(i);
                t.push(t0.elapsed().as_secs_f64() * 1e3);
                if round == 0 {
                    r += recall(&h, i);
                }
            }
        }
        let per_query: Vec<f64> = ts
            .into_iter()
            .map(|t| if cold_mb > 0 { median(t) } else { t.into_iter().fold(f64::MAX, f64::min) })
            .collect();
        (median(per_query), r / nq as f64)
    };
    let (ms, _) = time(&|i| search(&ix, q(i), 10, Algorithm::Exhaustive).unwrap());
    let exact_float_recall = (0..nq)
        .map(|i| {
            let h = search(&ix, q(i), 10, Algorithm::Exhaustive).unwrap();
            let all = search(&fx, q(i), fx.n_docs() as usize, Algorithm::Exhaustive).unwrap();
            let fh: Vec<_> = h.iter().map(|x| *all.iter().find(|y| y.doc == x.doc).unwrap()).collect();
            recall(&fh, i)
        })
        .sum::<f64>()
        / nq as f64;
    println!("exhaustive u8: {ms:.3} ms, recall vs float {exact_float_recall:.4}");
    // TARGETS=a,b,..: the recall targets to report (default 0.95,0.97,0.99).
    let targets: Vec<f64> =
        std::env::var("TARGETS").map_or(vec![0.95, 0.97, 0.99], |s| s.split(',').map(|x| x.parse().unwrap()).collect());
    for &t in &targets {
        let algo = Algorithm::Approximate(RecallTarget::new(t).unwrap());
        let (ms, r) = time(&|i| search(&ix, q(i), 10, algo).unwrap());
        let cal = sparsedex_core::search::approx::calibrate::cached(&ix);
        // DUMP=b: the calibration's points of bucket b (recall, standard error, cost in us).
        if let Some(b) = std::env::var("DUMP").ok().and_then(|s| s.parse::<usize>().ok()).filter(|_| t == targets[0]) {
            for p in cal.points.iter().filter(|p| p.bucket == b) {
                eprintln!(
                    "  bucket {b} b{} g{} r{}: recall {:.4} se {:.4} cost {:.1} us",
                    p.params.beta, p.params.gamma, p.params.rerank, p.recall, p.recall_se, p.cost
                );
            }
        }
        let ch: Vec<String> = [12usize, 24, 48]
            .iter()
            .map(|&n| {
                let (p, r) = cal.choose(t, n);
                format!("{n}t:b{}g{}r{}@{r:.3}", p.beta, p.gamma, p.rerank)
            })
            .collect();
        println!("approximate@{t}: {ms:.3} ms recall {r:.4}  chosen {}", ch.join(" "));
    }
    // BYBUCKET=1: per query-length bucket and grid point, the calibration's recall (and its
    // lower bound, the mean less MARGIN_SE standard errors) beside the recall the real queries
    // of that bucket reach (untimed): how well the calibration queries stand for real ones.
    if std::env::var("BYBUCKET").is_ok() {
        use sparsedex_core::search::approx::calibrate::{BUCKETS, MARGIN_SE};
        let cal = sparsedex_core::search::approx::calibrate::cached(&ix);
        let bucket = |n: usize| BUCKETS.iter().position(|&m| n <= m).unwrap_or(BUCKETS.len() - 1);
        let qb: Vec<usize> = (0..nq).map(|i| bucket(q(i).terms.len())).collect();
        for p in &cal.points {
            let mine: Vec<usize> = (0..nq).filter(|&i| qb[i] == p.bucket).collect();
            if mine.is_empty() {
                continue;
            }
            let r = mine.iter().map(|&i| recall(&search_with_params(&ix, q(i), 10, p.params).unwrap(), i)).sum::<f64>()
                / mine.len() as f64;
            println!(
                "bucket {} b{} g{} r{}: calibration {:.4} (lower {:.4}) real {:.4} ({} queries) gap {:+.4}",
                p.bucket,
                p.params.beta,
                p.params.gamma,
                p.params.rerank,
                p.recall,
                p.recall - MARGIN_SE * p.recall_se,
                r,
                mine.len(),
                r - p.recall
            );
        }
        return;
    }
    let lens: Vec<usize> = (0..nq).map(|i| q(i).terms.len()).collect();
    println!("query terms median {}", median(lens.iter().map(|&x| x as f64).collect()));
    // BETAS=a,b,..: cuts by bound share read whole; LBETAS=a,b,..: the same cuts with layered
    // reads (gamma 0.1, as in the calibration's layered grid); default: BETAS and LAYERED.
    let list = |name: &str, default: &[f32]| -> Vec<f32> {
        std::env::var(name).map_or(default.to_vec(), |s| s.split(',').map(|x| x.parse().unwrap()).collect())
    };
    let mut cuts: Vec<(f32, f32)> = match (std::env::var("BETAS").is_ok(), std::env::var("LBETAS").is_ok()) {
        (false, false) => {
            BETAS.iter().map(|&b| (b, 0.0)).chain(LAYERED.iter().copied().filter(|c| c.1 > 0.0)).collect()
        }
        (b, l) => {
            let whole = if b { list("BETAS", &BETAS) } else { vec![] };
            let layered = if l { list("LBETAS", &[]) } else { vec![] };
            whole.iter().map(|&b| (b, 0.0)).chain(layered.iter().map(|&b| (b, 0.1))).collect()
        }
    };
    // CUTS=beta:gamma,..: exactly these cuts.
    if let Ok(c) = std::env::var("CUTS") {
        cuts = c
            .split(',')
            .map(|x| {
                let (b, g) = x.split_once(':').unwrap();
                (b.parse().unwrap(), g.parse().unwrap())
            })
            .collect();
    }
    let reranks: Vec<f32> = list("RERANKS", &RERANKS);
    println!("beta gamma rerank ms recall");
    for &(beta, gamma) in &cuts {
        for &rerank in &reranks {
            let p = ApproxParams { beta, gamma, rerank };
            let (ms, r) = time(&|i| search_with_params(&ix, q(i), 10, p).unwrap());
            println!("{beta} {gamma} {rerank} {ms:.3} {r:.4}");
        }
    }
}
