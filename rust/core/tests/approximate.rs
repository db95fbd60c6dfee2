//! Approximate search: hits carry exact scores, honour filters, and the recall target holds on
//! held-out queries (queries the calibration never saw).

use sparsedex_core::index::build::{build, BuildOptions, IdsInput, Quantization, Reorder};
use sparsedex_core::index::Index;
use sparsedex_core::search::approx::RecallTarget;
use sparsedex_core::search::{search, search_with, Algorithm, DocSet, QueryRef};
use sparsedex_core::synth::{generate, SynthParams};
use sparsedex_core::vectors::CsrRef;

fn corpus(n_docs: usize, seed: u64) -> (Index, sparsedex_core::synth::Csr, u32) {
    let p = SynthParams { n_docs, n_queries: 200, seed, ..SynthParams::default() };
    let (docs, queries) = generate(&p);
    let index = build(
        CsrRef { indptr: &docs.indptr, indices: &docs.indices, values: &docs.values },
        IdsInput::None,
        &BuildOptions {
            n_terms: Some(p.vocab_size),
            quantization: Quantization::U8 { scale: None },
            store_vectors: true,
            reorder: Reorder::Signature,
        },
    )
    .unwrap()
    .index;
    (index, queries, p.vocab_size)
}

/// recall@k of `got` against the exact `want`: a hit counts when its score reaches the exact
/// k-th score (ties at the k-th place are not held against it).
fn recall(got: &[sparsedex_core::search::Hit], want: &[sparsedex_core::search::Hit]) -> f64 {
    let Some(th) = want.last().map(|h| h.score) else { return 1.0 };
    got.iter().filter(|h| h.score >= th).count() as f64 / want.len() as f64
}

#[test]
fn approximate_meets_its_target_on_held_out_queries_with_exact_scores() {
    let (index, queries, _) = corpus(30_000, 11);
    let exact_scores = |q: QueryRef<'_>| search(&index, q, index.n_docs() as usize, Algorithm::Exhaustive).unwrap();
    for target in [0.9, 0.97] {
        let algo = Algorithm::Approximate(RecallTarget::new(target).unwrap());
        let (mut sum, mut n) = (0.0, 0usize);
        for i in 0..queries.indptr.len() - 1 {
            let (terms, weights) = queries.row(i);
            let q = QueryRef { terms, weights };
            let want = search(&index, q, 10, Algorithm::Exhaustive).unwrap();
            let got = search(&index, q, 10, algo).unwrap();
            assert_eq!(got.len(), want.len(), "query {i}: approximate returns as many hits as exact");
            // Every returned score is the document's exact score, best first.
            let all = exact_scores(q);
            for h in &got {
                let e = all.iter().find(|x| x.doc == h.doc).expect("hit is a matching document");
                assert_eq!(e.score, h.score, "query {i}: doc {} score", h.doc);
            }
            assert!(got.windows(2).all(|w| w[0].score >= w[1].score));
            sum += recall(&got, &want);
            n += 1;
        }
        let r = sum / n as f64;
        // The calibration holds the target on its own queries; on held-out queries allow the
        // sampling error of 200 queries.
        assert!(r >= target - 0.02, "target {target}: held-out recall {r}");
    }
}

#[test]
fn approximate_honours_filters() {
    let (index, queries, _) = corpus(12_000, 5);
    let n = index.n_docs();
    let mut words = vec![0u64; (n as usize).div_ceil(64)];
    for d in (0..n).filter(|d| d % 3 == 0) {
        words[(d / 64) as usize] |= 1 << (d % 64);
    }
    let allowed = DocSet::from_words(words, n).unwrap();
    let algo = Algorithm::Approximate(RecallTarget::new(0.95).unwrap());
    for i in 0..20 {
        let (terms, weights) = queries.row(i);
        let q = QueryRef { terms, weights };
        let got = search_with(&index, q, 10, algo, Some(&allowed), None).unwrap();
        assert!(got.iter().all(|h| h.doc % 3 == 0), "query {i}: a hit outside the filter");
    }
}

#[test]
fn target_recall_out_of_range_is_an_error() {
    for bad in [0.0, -0.5, 1.01, f64::NAN] {
        let e = RecallTarget::new(bad).unwrap_err().to_string();
        assert!(e.contains("target_recall"), "{e}");
    }
}
