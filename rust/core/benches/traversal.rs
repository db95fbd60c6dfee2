//! Query latency of every traversal algorithm on a synthetic SPLADE-like corpus.
//!
//! Corpus: `sparsedex_core::synth` with its MS MARCO-like defaults (30,522-term vocabulary,
//! ~120 non-zeros per document and ~45 per query, Zipf-like term popularity, documents and
//! queries drawn from topic mixtures), 100k documents (override with SPARSEDEX_BENCH_DOCS),
//! u8 impacts. Each iteration runs the same 50 queries at k=10 on one thread, so the reported
//! time divided by 50 is the mean latency per query. Compare algorithms within one run.

use criterion::{criterion_group, criterion_main, Criterion};
use sparsedex_core::index::build::{build, BuildOptions, CsrRef, IdsInput};
use sparsedex_core::search::{search, Algorithm, QueryRef};
use sparsedex_core::synth::{generate, SynthParams};

fn bench(c: &mut Criterion) {
    let n_docs = std::env::var("SPARSEDEX_BENCH_DOCS").ok().and_then(|s| s.parse().ok()).unwrap_or(100_000);
    let p = SynthParams { n_docs, n_queries: 50, seed: 42, ..SynthParams::default() };
    let (docs, queries) = generate(&p);
    let index = build(
        CsrRef { indptr: &docs.indptr, indices: &docs.indices, values: &docs.values },
        IdsInput::None,
        &BuildOptions { n_terms: Some(p.vocab_size), store_vectors: false, ..BuildOptions::default() },
    )
    .expect("synthetic corpus is valid")
    .index;
    let qs: Vec<(Vec<u32>, Vec<f32>)> = (0..queries.indptr.len() - 1)
        .map(|i| {
            let (a, b) = (queries.indptr[i] as usize, queries.indptr[i + 1] as usize);
            (queries.indices[a..b].to_vec(), queries.values[a..b].to_vec())
        })
        .collect();
    let mut g = c.benchmark_group(format!("traversal_{n_docs}_docs_50_queries_k10"));
    g.sample_size(10);
    for algo in Algorithm::ALL {
        g.bench_function(algo.name(), |b| {
            b.iter(|| {
                let mut n = 0;
                for (t, w) in &qs {
                    n += search(&index, QueryRef { terms: t, weights: w }, 10, algo).expect("valid query").len();
                }
                n
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
