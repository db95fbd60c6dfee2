//! Every traversal algorithm returns exactly the exhaustive oracle's top-k (ids and scores,
//! score descending then doc id ascending), on random corpora whose posting lists span many
//! 128-posting blocks, for both impact kinds.

use proptest::prelude::*;
use sparsedex_core::index::build::{build, BuildOptions, CsrRef, IdsInput, Quantization};
use sparsedex_core::index::{ExternalIds, Index};
use sparsedex_core::reorder::{BpOptions, BpWeighting, Reorder};
use sparsedex_core::search::{
    search, search_filtered, search_forward, search_segments, Algorithm, DocSet, Hit, QueryRef, Segment,
};

#[derive(Debug, Clone)]
struct Corpus {
    indptr: Vec<u64>,
    indices: Vec<u32>,
    values: Vec<f32>,
}

fn corpus_strategy(max_docs: usize, vocab: u32) -> impl Strategy<Value = Corpus> {
    // Per-term inclusion probabilities vary so that some lists are long (many blocks) and some short.
    (1..max_docs, proptest::collection::vec(0.0f64..1.0, vocab as usize), any::<u64>(), 0u8..6).prop_map(
        move |(n, probs, seed, wmode)| {
            let mut rng = seed | 1;
            let mut next = || {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                rng
            };
            let mut c = Corpus { indptr: vec![0], indices: vec![], values: vec![] };
            for d in 0..n {
                for (t, &p) in probs.iter().enumerate() {
                    let p = p * p; // skew towards short lists
                    if (next() % 10_000) as f64 / 10_000.0 < p {
                        c.indices.push(t as u32);
                        let r = next();
                        let w = match wmode {
                            0 => 1.0,                                         // all-equal weights: ties everywhere
                            1 => [0.5f32, 1.0, 1.5, 2.0][(r % 4) as usize],   // few distinct values
                            2 => (r % 10_000) as f32 / 1000.0 + 0.001,        // continuous
                            3 => [1e-6f32, 1e6, 3.0, 0.25][(r % 4) as usize], // extreme range
                            // Impacts clustered by doc range, so block maxima differ from list maxima
                            // and the block-max algorithms skip whole blocks.
                            _ => {
                                let hot = (d / 97 + t) % 7 == 0;
                                (r % 100) as f32 / 100.0 + if hot { 5.0 } else { 0.01 }
                            }
                        };
                        c.values.push(w);
                    }
                }
                c.indptr.push(c.indices.len() as u64);
            }
            c
        },
    )
}

fn query_strategy(vocab: u32) -> impl Strategy<Value = Vec<(u32, f32)>> {
    proptest::collection::btree_map(0..vocab + 3, prop_oneof![Just(1.0f32), 0.01f32..5.0, Just(0.0f32)], 0..10)
        .prop_map(|m| m.into_iter().collect())
}

fn run_all(index: &Index, q: &[(u32, f32)], k: usize) {
    let terms: Vec<u32> = q.iter().map(|e| e.0).collect();
    let weights: Vec<f32> = q.iter().map(|e| e.1).collect();
    let qr = QueryRef { terms: &terms, weights: &weights };
    let oracle: Vec<Hit> = search(index, qr, k, Algorithm::Exhaustive).unwrap();
    for algo in Algorithm::ALL {
        let got = search(index, qr, k, algo).unwrap();
        assert_eq!(got, oracle, "algorithm {algo} differs from the oracle (k={k}, query={q:?})");
    }
    // Sorted, scores positive, at most k.
    assert!(oracle.len() <= k);
    // Best first. (Ties are broken by doc id on the exact integer scores; two different integer
    // scores may round to the same f32, so the f32 view only has to be non-increasing.)
    for w in oracle.windows(2) {
        assert!(w[0].score >= w[1].score, "not sorted: {w:?}");
    }
}

fn build_kind(c: &Corpus, quant: Quantization) -> Index {
    build(
        CsrRef { indptr: &c.indptr, indices: &c.indices, values: &c.values },
        IdsInput::None,
        &BuildOptions { n_terms: None, quantization: quant, store_vectors: false, reorder: false.into() },
    )
    .unwrap()
}

/// Filtered search: every algorithm, and the forward scorer, return the brute-force top-k of
/// the allowed documents (the unfiltered ranking of every document, restricted to the set).
fn run_filtered(index: &Index, q: &[(u32, f32)], k: usize, allowed: &DocSet) {
    let terms: Vec<u32> = q.iter().map(|e| e.0).collect();
    let weights: Vec<f32> = q.iter().map(|e| e.1).collect();
    let qr = QueryRef { terms: &terms, weights: &weights };
    let everything = search(index, qr, index.n_docs().max(1) as usize, Algorithm::Exhaustive).unwrap();
    let expect: Vec<Hit> = everything.into_iter().filter(|h| allowed.contains(h.doc)).take(k).collect();
    for algo in Algorithm::ALL {
        let got = search_filtered(index, qr, k, algo, Some(allowed)).unwrap();
        assert_eq!(got, expect, "filtered {algo} differs from brute force (k={k}, {} allowed)", allowed.len());
    }
    if index.view().forward.is_some() {
        let got = search_forward(index, qr, k, allowed).unwrap();
        assert_eq!(got, expect, "forward scorer differs from brute force (k={k})");
    }
}

fn allowed_strategy() -> impl Strategy<Value = (u8, u64, f64)> {
    // (shape, seed, density): random bits, one doc range, or every m-th doc.
    (0u8..3, any::<u64>(), prop_oneof![Just(0.0f64), 0.0f64..0.05, 0.0f64..1.0, Just(1.0f64)])
}

fn make_allowed(n: u32, (shape, seed, density): (u8, u64, f64)) -> DocSet {
    let mut rng = seed | 1;
    let docs: Vec<u32> = (0..n)
        .filter(|&d| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            match shape {
                0 => ((rng % 10_000) as f64) < density * 10_000.0,
                1 => {
                    (d as f64) >= (seed % (n as u64 + 1)) as f64
                        && (d as f64) < (seed % (n as u64 + 1)) as f64 + density * n as f64
                }
                _ => d % ((1.0 / density.max(1e-3)) as u32).max(1) == 0,
            }
        })
        .collect();
    DocSet::from_docs(docs, n).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// A corpus split into segments (each with its own allowed set) searched with
    /// `search_segments` returns exactly what one index over all documents returns (with the
    /// union of the allowed sets), for every algorithm: the per-segment floor is exact.
    #[test]
    fn segments_equal_one_index(
        c in corpus_strategy(1500, 12),
        cuts in proptest::collection::vec(0.0f64..1.0, 0..6),
        qs in proptest::collection::vec(query_strategy(12), 1..4),
        set in allowed_strategy(),
        filtered in any::<bool>(),
        float in any::<bool>(),
        k in 1usize..40,
    ) {
        let n = c.indptr.len() - 1;
        let max_w = c.values.iter().copied().fold(0.0f32, f32::max);
        let quantization = if float || max_w <= 0.0 { Quantization::F32 } else { Quantization::U8 { scale: Some(255.0 / max_w) } };
        let opts = BuildOptions { n_terms: None, quantization, store_vectors: true, reorder: false.into() };
        let whole = build(CsrRef { indptr: &c.indptr, indices: &c.indices, values: &c.values }, IdsInput::None, &opts).unwrap();
        let mut bounds: Vec<usize> = cuts.iter().map(|f| (f * n as f64) as usize).collect();
        bounds.push(0);
        bounds.push(n);
        bounds.sort_unstable();
        bounds.dedup();
        let allowed = if filtered { Some(make_allowed(n as u32, set)) } else { None };
        let mut parts = Vec::new();
        for w in bounds.windows(2) {
            let (a, b) = (w[0], w[1]);
            let (lo, hi) = (c.indptr[a] as usize, c.indptr[b] as usize);
            let indptr: Vec<u64> = c.indptr[a..=b].iter().map(|&p| p - c.indptr[a]).collect();
            let index = build(CsrRef { indptr: &indptr, indices: &c.indices[lo..hi], values: &c.values[lo..hi] }, IdsInput::None, &opts).unwrap();
            let set = allowed.as_ref().map(|al| DocSet::from_docs((a as u32..b as u32).filter(|&d| al.contains(d)).map(|d| d - a as u32), (b - a) as u32).unwrap());
            parts.push((a as u32, index, set));
        }
        let segs: Vec<Segment<'_>> = parts.iter().map(|(_, ix, set)| Segment { index: ix, allowed: set.as_ref() }).collect();
        for q in &qs {
            let terms: Vec<u32> = q.iter().map(|e| e.0).collect();
            let weights: Vec<f32> = q.iter().map(|e| e.1).collect();
            let qr = QueryRef { terms: &terms, weights: &weights };
            let want = search_filtered(&whole, qr, k, Algorithm::Exhaustive, allowed.as_ref()).unwrap();
            for algo in Algorithm::ALL {
                let got: Vec<Hit> = search_segments(&segs, qr, k, algo)
                    .unwrap()
                    .into_iter()
                    .map(|h| Hit { doc: parts[h.segment as usize].0 + h.doc, score: h.score })
                    .collect();
                prop_assert_eq!(&got, &want, "{} over {} segments (k={})", algo, segs.len(), k);
            }
        }
    }

    #[test]
    fn filtered_search_equals_brute_force(
        c in corpus_strategy(1500, 12),
        qs in proptest::collection::vec(query_strategy(12), 1..4),
        sets in proptest::collection::vec(allowed_strategy(), 1..4),
        float in any::<bool>(),
        kf in 0.0f64..1.0,
    ) {
        let quantization = if float { Quantization::F32 } else { Quantization::U8 { scale: None } };
        let index = build(
            CsrRef { indptr: &c.indptr, indices: &c.indices, values: &c.values },
            IdsInput::None,
            &BuildOptions { n_terms: None, quantization, store_vectors: true, reorder: false.into() },
        )
        .unwrap();
        let n = index.n_docs();
        let k = 1 + (kf * (n + 1) as f64) as usize;
        for spec in &sets {
            let allowed = make_allowed(n, *spec);
            for q in &qs {
                run_filtered(&index, q, k, &allowed);
                run_filtered(&index, q, 10, &allowed);
            }
        }
    }

    #[test]
    fn all_algorithms_equal_oracle_u8(c in corpus_strategy(1500, 12), qs in proptest::collection::vec(query_strategy(12), 1..6), kf in 0.0f64..1.0) {
        let index = build_kind(&c, Quantization::U8 { scale: None });
        let n = c.indptr.len() - 1;
        let k = 1 + (kf * (n + 1) as f64) as usize;
        for q in &qs {
            run_all(&index, q, k);
            run_all(&index, q, 10);
        }
    }

    #[test]
    fn all_algorithms_equal_oracle_f32(c in corpus_strategy(1500, 12), qs in proptest::collection::vec(query_strategy(12), 1..6), kf in 0.0f64..1.0) {
        let index = build_kind(&c, Quantization::F32);
        let n = c.indptr.len() - 1;
        let k = 1 + (kf * (n + 1) as f64) as usize;
        for q in &qs {
            run_all(&index, q, k);
            run_all(&index, q, 10);
        }
    }
}

/// Every document order the builder offers, BP with options that exercise its variants.
fn reorder_strategy() -> impl Strategy<Value = Reorder> {
    prop_oneof![
        Just(Reorder::None),
        Just(Reorder::Signature),
        Just(Reorder::bp()),
        Just(Reorder::Bp(BpOptions { leaf_size: 4, align: 8, weighting: BpWeighting::Impact, ..BpOptions::default() })),
        Just(Reorder::Bp(BpOptions {
            leaf_size: 1,
            align: 1,
            weighting: BpWeighting::Levels(3),
            min_weight_ratio: 0.3,
            max_iterations: 3,
            ..BpOptions::default()
        })),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// On a reordered index every algorithm still equals the oracle, and internal document
    /// `i` holds input row `ids[i]` (the stored vector and the external id agree).
    #[test]
    fn all_algorithms_equal_oracle_reordered(
        c in corpus_strategy(1500, 12),
        qs in proptest::collection::vec(query_strategy(12), 1..6),
        kf in 0.0f64..1.0,
        reorder in reorder_strategy(),
        float in any::<bool>(),
    ) {
        let quantization = if float { Quantization::F32 } else { Quantization::U8 { scale: None } };
        let index = build(
            CsrRef { indptr: &c.indptr, indices: &c.indices, values: &c.values },
            IdsInput::None,
            &BuildOptions { n_terms: None, quantization, store_vectors: true, reorder: reorder.clone() },
        )
        .unwrap();
        let n = c.indptr.len() - 1;
        let v = index.view();
        let fwd = v.forward.unwrap();
        match (&v.ids, reorder.is_some() && n > 1) {
            (ExternalIds::Int(ids), true) => {
                let mut seen = vec![false; n];
                for (i, &row) in ids.iter().enumerate() {
                    let row = row as usize;
                    prop_assert!(row < n && !seen[row], "ids are not a permutation");
                    seen[row] = true;
                    let (a, b) = (c.indptr[row] as usize, c.indptr[row + 1] as usize);
                    let want: Vec<(u32, f32)> = c.indices[a..b].iter().copied().zip(c.values[a..b].iter().copied()).filter(|e| e.1 > 0.0).collect();
                    let (fa, fb) = (fwd.indptr[i] as usize, fwd.indptr[i + 1] as usize);
                    let got: Vec<(u32, f32)> = fwd.terms[fa..fb].iter().copied().zip(fwd.values[fa..fb].iter().copied()).collect();
                    prop_assert_eq!(got, want, "internal doc {} is not input row {}", i, row);
                }
            }
            (ExternalIds::None, false) => {}
            _ => prop_assert!(false, "unexpected ids for reorder {:?} over {} docs", reorder, n),
        }
        let k = 1 + (kf * (n + 1) as f64) as usize;
        for q in &qs {
            run_all(&index, q, k);
            run_all(&index, q, 10);
        }
    }
}

#[test]
fn synthetic_corpus_all_algorithms_equal_oracle() {
    use sparsedex_core::synth::{generate, SynthParams};
    let p = SynthParams { n_docs: 20_000, n_queries: 40, seed: 7, ..SynthParams::default() };
    let (docs, queries) = generate(&p);
    for (quant, reorder) in [(Quantization::U8 { scale: None }, Reorder::bp()), (Quantization::F32, Reorder::Signature)]
    {
        let index = build(
            CsrRef { indptr: &docs.indptr, indices: &docs.indices, values: &docs.values },
            IdsInput::None,
            &BuildOptions { n_terms: Some(p.vocab_size), quantization: quant, store_vectors: false, reorder },
        )
        .unwrap();
        for i in 0..queries.indptr.len() - 1 {
            let (a, b) = (queries.indptr[i] as usize, queries.indptr[i + 1] as usize);
            let q: Vec<(u32, f32)> =
                queries.indices[a..b].iter().copied().zip(queries.values[a..b].iter().copied()).collect();
            for k in [1, 10, 100] {
                run_all(&index, &q, k);
            }
        }
    }
}

#[test]
fn empty_index_and_edge_queries() {
    let c = Corpus { indptr: vec![0], indices: vec![], values: vec![] };
    let index = build_kind(&c, Quantization::U8 { scale: None });
    run_all(&index, &[(0, 1.0)], 10);
    run_all(&index, &[], 10);
    // Docs without postings, absent terms, k larger than the index.
    let c = Corpus { indptr: vec![0, 0, 2, 2, 3], indices: vec![0, 1, 1], values: vec![1.0, 2.0, 2.0] };
    for quant in [Quantization::U8 { scale: None }, Quantization::F32] {
        let index = build_kind(&c, quant);
        for q in [vec![(5u32, 1.0f32)], vec![(1, 1.0)], vec![(0, 1.0), (1, 0.5), (9, 3.0)], vec![(1, 0.0)]] {
            for k in [1, 2, 3, 100] {
                run_all(&index, &q, k);
            }
        }
        let hits = search(&index, QueryRef { terms: &[1], weights: &[1.0] }, 10, Algorithm::Auto).unwrap();
        assert_eq!(hits.iter().map(|h| h.doc).collect::<Vec<_>>(), vec![1, 3]);
        assert!((hits[0].score - 2.0).abs() < 0.01);
    }
}
