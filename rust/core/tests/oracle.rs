//! Every traversal algorithm returns exactly the exhaustive oracle's top-k (ids and scores,
//! score descending then document id ascending), on random corpora whose posting lists span many
//! 128-posting blocks, for both impact kinds.

use proptest::prelude::*;
use sparsedex_core::index::build::{build, BuildOptions, CsrRef, IdsInput, Quantization, Reorder};
use sparsedex_core::index::{Id, Index};
use sparsedex_core::reorder::{BpOptions, BpWeighting};
use sparsedex_core::search::explain::explain_scored_as;
use sparsedex_core::search::{
    search, search_filtered, search_forward, search_segments, search_with_scores, Algorithm, DocSet, Hit, QueryRef,
    Scores, Segment,
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
    // The raw 8-bit scoring of a u8 index: every algorithm equals its own exhaustive oracle.
    let impacts = |algo| search_with_scores(index, qr, k, algo, None, None, Scores::Impacts).unwrap();
    let raw = impacts(Algorithm::Exhaustive);
    for algo in Algorithm::ALL {
        assert_eq!(impacts(algo), raw, "algorithm {algo} (impact scores) differs from the oracle (k={k}, query={q:?})");
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
    build_kind_with(c, quant, false)
}

/// With `store_vectors`, the algorithms that rescore from stored rows (sp, bmt, approximate
/// search) run their own code instead of their fallbacks.
fn build_kind_with(c: &Corpus, quant: Quantization, store_vectors: bool) -> Index {
    build(
        CsrRef { indptr: &c.indptr, indices: &c.indices, values: &c.values },
        IdsInput::None,
        &BuildOptions { n_terms: None, quantization: quant, store_vectors, reorder: Reorder::None },
    )
    .unwrap()
    .index
}

/// Filtered search: every algorithm, and the forward scorer, return the brute-force top-k of
/// the allowed documents (the unfiltered ranking of every document, restricted to the set).
fn run_filtered(index: &Index, q: &[(u32, f32)], k: usize, allowed: &DocSet) {
    let terms: Vec<u32> = q.iter().map(|e| e.0).collect();
    let weights: Vec<f32> = q.iter().map(|e| e.1).collect();
    let qr = QueryRef { terms: &terms, weights: &weights };
    let all = index.n_docs().max(1) as usize;
    let top = |scores| -> Vec<Hit> {
        let everything = search_with_scores(index, qr, all, Algorithm::Exhaustive, None, None, scores).unwrap();
        everything.into_iter().filter(|h| allowed.contains(h.doc)).take(k).collect()
    };
    for scores in [Scores::Vectors, Scores::Impacts] {
        let expect = top(scores);
        for algo in Algorithm::ALL {
            let got = search_with_scores(index, qr, k, algo, Some(allowed), None, scores).unwrap();
            assert_eq!(
                got,
                expect,
                "filtered {algo} ({scores:?}) differs from brute force (k={k}, {} allowed)",
                allowed.len()
            );
        }
    }
    if index.view().forward.is_some() {
        // The forward scorer scores in the index's own arithmetic (8-bit for u8 indexes).
        let got = search_forward(index, qr, k, allowed).unwrap();
        assert_eq!(got, top(Scores::Impacts), "forward scorer differs from brute force (k={k})");
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
        let opts = BuildOptions { n_terms: None, quantization, store_vectors: true, reorder: Reorder::None };
        let whole = build(CsrRef { indptr: &c.indptr, indices: &c.indices, values: &c.values }, IdsInput::None, &opts).unwrap().index;
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
            let index = build(CsrRef { indptr: &indptr, indices: &c.indices[lo..hi], values: &c.values[lo..hi] }, IdsInput::None, &opts).unwrap().index;
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
                let got: Vec<Hit> = search_segments(&segs, qr, k, algo, None)
                    .unwrap()
                    .into_iter()
                    .map(|h| Hit { doc: parts[h.segment as usize].0 + h.doc, score: h.score })
                    .collect();
                prop_assert_eq!(&got, &want, "{} over {} segments (k={})", algo, segs.len(), k);
            }
        }
    }

    /// u8 segments on grids of their own (each scaled to its own largest weight, one of them
    /// made much heavier) searched together return exactly the float index's top-k over all
    /// documents: each segment's rerank is exact in float, and the floor carried between
    /// segments (float units) is lowered by each segment's own rounding bound.
    #[test]
    fn u8_segments_on_their_own_grids_equal_one_float_index(
        c in corpus_strategy(1500, 12),
        cuts in proptest::collection::vec(0.0f64..1.0, 1..6),
        qs in proptest::collection::vec(query_strategy(12), 1..4),
        set in allowed_strategy(),
        filtered in any::<bool>(),
        heavy in 0usize..6,
        k in 1usize..40,
    ) {
        let n = c.indptr.len() - 1;
        let mut bounds: Vec<usize> = cuts.iter().map(|f| (f * n as f64) as usize).collect();
        bounds.push(0);
        bounds.push(n);
        bounds.sort_unstable();
        bounds.dedup();
        // one segment's documents weigh 40x more: its grid is 40x coarser than the others'
        let heavy = heavy % (bounds.len() - 1);
        let mut values = c.values.clone();
        let (ha, hb) = (c.indptr[bounds[heavy]] as usize, c.indptr[bounds[heavy + 1]] as usize);
        values[ha..hb].iter_mut().for_each(|v| *v *= 40.0);
        let fopts = BuildOptions { n_terms: None, quantization: Quantization::F32, store_vectors: true, reorder: Reorder::None };
        let uopts = BuildOptions { quantization: Quantization::U8 { scale: None }, reorder: Reorder::bp(), ..fopts.clone() };
        let whole = build(CsrRef { indptr: &c.indptr, indices: &c.indices, values: &values }, IdsInput::None, &fopts).unwrap().index;
        let allowed = if filtered { Some(make_allowed(n as u32, set)) } else { None };
        let mut parts = Vec::new();
        for w in bounds.windows(2) {
            let (a, b) = (w[0], w[1]);
            let (lo, hi) = (c.indptr[a] as usize, c.indptr[b] as usize);
            let indptr: Vec<u64> = c.indptr[a..=b].iter().map(|&p| p - c.indptr[a]).collect();
            let ids: Vec<i64> = (a as i64..b as i64).collect();
            let built = build(CsrRef { indptr: &indptr, indices: &c.indices[lo..hi], values: &values[lo..hi] }, IdsInput::Int(&ids), &uopts).unwrap();
            let set = allowed.as_ref().map(|al| {
                DocSet::from_docs(
                    built.order.iter().enumerate().filter(|(_, &r)| al.contains(a as u32 + r)).map(|(i, _)| i as u32).collect::<Vec<u32>>(),
                    (b - a) as u32,
                ).unwrap()
            });
            parts.push((built.index, set));
        }
        let segs: Vec<Segment<'_>> = parts.iter().map(|(ix, set)| Segment { index: ix, allowed: set.as_ref() }).collect();
        for q in &qs {
            let terms: Vec<u32> = q.iter().map(|e| e.0).collect();
            let weights: Vec<f32> = q.iter().map(|e| e.1).collect();
            let qr = QueryRef { terms: &terms, weights: &weights };
            let want: Vec<(i64, f32)> = search_filtered(&whole, qr, k, Algorithm::Exhaustive, allowed.as_ref())
                .unwrap().into_iter().map(|h| (h.doc as i64, h.score)).collect();
            for algo in Algorithm::ALL {
                let got: Vec<(i64, f32)> = search_segments(&segs, qr, k, algo, None)
                    .unwrap()
                    .into_iter()
                    .map(|h| match parts[h.segment as usize].0.id(h.doc) {
                        Some(Id::Int(x)) => (x, h.score),
                        other => panic!("doc {} has id {other:?}", h.doc),
                    })
                    .collect();
                prop_assert_eq!(&got, &want, "{} over {} u8 segments on their own grids (k={})", algo, segs.len(), k);
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
            &BuildOptions { n_terms: None, quantization, store_vectors: true, reorder: Reorder::None },
        )
        .unwrap().index;
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
    fn all_algorithms_equal_oracle_u8(c in corpus_strategy(1500, 12), qs in proptest::collection::vec(query_strategy(12), 1..6), kf in 0.0f64..1.0, store in any::<bool>()) {
        let index = build_kind_with(&c, Quantization::U8 { scale: None }, store);
        let n = c.indptr.len() - 1;
        let k = 1 + (kf * (n + 1) as f64) as usize;
        for q in &qs {
            run_all(&index, q, k);
            run_all(&index, q, 10);
        }
    }

    #[test]
    fn all_algorithms_equal_oracle_f32(c in corpus_strategy(1500, 12), qs in proptest::collection::vec(query_strategy(12), 1..6), kf in 0.0f64..1.0, store in any::<bool>()) {
        let index = build_kind_with(&c, Quantization::F32, store);
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
        Just(Reorder::Bp(BpOptions {
            leaf_size: 2,
            align: 1,
            weighting: BpWeighting::Uniform,
            min_weight_ratio: 0.0,
            ..BpOptions::default()
        })),
    ]
}

/// Top-k of `index` keyed by external (integer) id: `(id, score)`, best first.
fn hits_by_id(index: &Index, q: &[(u32, f32)], k: usize, algo: Algorithm) -> Vec<(i64, f32)> {
    let terms: Vec<u32> = q.iter().map(|e| e.0).collect();
    let weights: Vec<f32> = q.iter().map(|e| e.1).collect();
    search(index, QueryRef { terms: &terms, weights: &weights }, k, algo)
        .unwrap()
        .into_iter()
        .map(|h| match index.id(h.doc) {
            Some(Id::Int(x)) => (x, h.score),
            other => panic!("doc {} has id {other:?}", h.doc),
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Whatever the document order, results keyed by external id are exactly those of the
    /// index in input order (same ids, scores and order: ties go to the smaller id, not to the
    /// smaller internal doc); every algorithm equals the oracle on the reordered index;
    /// internal doc `i` stores the vector of the input row its id names.
    #[test]
    fn results_by_id_do_not_depend_on_the_order(
        c in corpus_strategy(1500, 12),
        qs in proptest::collection::vec(query_strategy(12), 1..6),
        kf in 0.0f64..1.0,
        reorder in reorder_strategy(),
        float in any::<bool>(),
    ) {
        let quantization = if float { Quantization::F32 } else { Quantization::U8 { scale: None } };
        let n = c.indptr.len() - 1;
        let ids: Vec<i64> = (0..n as i64).map(|r| r * 7_919 - 1_000).collect();
        let csr = CsrRef { indptr: &c.indptr, indices: &c.indices, values: &c.values };
        let opts = |reorder| BuildOptions { n_terms: None, quantization, store_vectors: true, reorder };
        let plain = build(csr, IdsInput::Int(&ids), &opts(Reorder::None)).unwrap().index;
        let built = build(csr, IdsInput::Int(&ids), &opts(reorder)).unwrap();
        let index = built.index;
        let mut seen = vec![false; n];
        for (i, &row) in built.order.iter().enumerate() {
            let row = row as usize;
            prop_assert!(row < n && !seen[row], "the order is not a permutation");
            seen[row] = true;
            prop_assert_eq!(index.id(i as u32), Some(Id::Int(ids[row])));
            prop_assert_eq!(index.vector(i as u32).unwrap(), plain.vector(row as u32).unwrap());
        }
        let k = 1 + (kf * (n + 1) as f64) as usize;
        for q in &qs {
            let all: std::collections::HashMap<i64, f32> =
                hits_by_id(&plain, q, n.max(1), Algorithm::Exhaustive).into_iter().collect();
            for k in [k, 10] {
                let want = hits_by_id(&plain, q, k, Algorithm::Exhaustive);
                for algo in Algorithm::ALL {
                    let got = hits_by_id(&index, q, k, algo);
                    // Ties go to the smaller id whatever the internal order: the same hits.
                    prop_assert_eq!(&got, &want, "{} differs from the input-order index ({:?})", algo, reorder);
                    for (id, s) in &got {
                        prop_assert_eq!(all.get(id), Some(s), "{} returned id {} with another score", algo, id);
                    }
                }
                run_all(&index, q, k);
            }
        }
    }
}

#[test]
fn synthetic_corpus_all_algorithms_equal_oracle() {
    use sparsedex_core::synth::{generate, SynthParams};
    let p = SynthParams { n_docs: 20_000, n_queries: 40, seed: 7, ..SynthParams::default() };
    let (docs, queries) = generate(&p);
    for (quant, store_vectors, reorder) in [
        (Quantization::U8 { scale: None }, true, Reorder::bp()),
        (Quantization::U8 { scale: None }, false, Reorder::Signature),
        (Quantization::F32, true, Reorder::Signature),
    ] {
        let index = build(
            CsrRef { indptr: &docs.indptr, indices: &docs.indices, values: &docs.values },
            IdsInput::None,
            &BuildOptions { n_terms: Some(p.vocab_size), quantization: quant, store_vectors, reorder },
        )
        .unwrap()
        .index;
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

/// Long queries (hundreds of terms: unions of 16 synthetic queries, and random terms of
/// weight 1, as a document used as a query gives): every algorithm equals the oracle. Block-max
/// pruning keeps each block's unread bound sum up to date as it reads terms (it summed the
/// unread terms' bounds at every check, quadratic in the query's terms).
#[test]
fn long_queries_all_algorithms_equal_oracle() {
    use sparsedex_core::synth::{generate, SynthParams};
    let p = SynthParams { n_docs: 12_000, n_queries: 64, seed: 11, ..SynthParams::default() };
    let (docs, queries) = generate(&p);
    let mut long: Vec<Vec<(u32, f32)>> = Vec::new();
    for u in 0..2 {
        let mut m = std::collections::BTreeMap::<u32, f32>::new();
        for i in u * 16..(u + 1) * 16 {
            let (a, b) = (queries.indptr[i] as usize, queries.indptr[i + 1] as usize);
            for (&t, &w) in queries.indices[a..b].iter().zip(&queries.values[a..b]) {
                *m.entry(t).or_default() += w;
            }
        }
        long.push(m.into_iter().collect());
    }
    long.push((0..p.vocab_size).step_by(37).map(|t| (t, 1.0)).collect());
    assert!(long.iter().all(|q| q.len() > 300), "{:?}", long.iter().map(|q| q.len()).collect::<Vec<_>>());
    for (quant, store_vectors, reorder) in
        [(Quantization::U8 { scale: None }, true, Reorder::bp()), (Quantization::F32, true, Reorder::Signature)]
    {
        let index = build(
            CsrRef { indptr: &docs.indptr, indices: &docs.indices, values: &docs.values },
            IdsInput::None,
            &BuildOptions { n_terms: Some(p.vocab_size), quantization: quant, store_vectors, reorder },
        )
        .unwrap()
        .index;
        for q in &long {
            run_all(&index, q, 10);
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

/// A one-to-one map of `0..vocab` onto spread-out 32-bit ids whose largest is `u32::MAX`
/// (and which holds 0): ascending when `monotone`, scrambled otherwise.
fn spread_ids(vocab: u32, seed: u64, monotone: bool) -> Vec<u32> {
    let mut rng = seed | 1;
    let mut ids: Vec<u32> = Vec::with_capacity(vocab as usize);
    let mut seen = std::collections::HashSet::new();
    for special in [u32::MAX, 0] {
        if ids.len() < vocab as usize {
            ids.push(special);
            seen.insert(special);
        }
    }
    while ids.len() < vocab as usize {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let x = (rng >> 16) as u32;
        if seen.insert(x) {
            ids.push(x);
        }
    }
    if monotone {
        ids.sort_unstable();
    }
    ids
}

fn remap_corpus(c: &Corpus, ids: &[u32]) -> Corpus {
    // Rows must stay free of duplicates (they are: the map is one-to-one); order within a row
    // does not matter to the builder.
    Corpus {
        indptr: c.indptr.clone(),
        indices: c.indices.iter().map(|&t| ids[t as usize]).collect(),
        values: c.values.clone(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Term ids anywhere in 0..=2^32-1 (including u32::MAX) give exactly the results of the same
    /// corpus with dense ids, for every algorithm and both kinds; queries may hold ids the
    /// index has never seen. (Float scores are compared exactly when the id map keeps the
    /// order of terms, which is the canonical summation order.)
    #[test]
    fn spread_term_ids_equal_dense_ids(
        c in corpus_strategy(1200, 12),
        qs in proptest::collection::vec(query_strategy(12), 1..4),
        seed in any::<u64>(),
        monotone in any::<bool>(),
        float in any::<bool>(),
        k in 1usize..30,
    ) {
        let ids = spread_ids(15, seed, monotone);
        let quant = if float { Quantization::F32 } else { Quantization::U8 { scale: None } };
        let dense = build_kind(&c, quant);
        let spread = build_kind(&remap_corpus(&c, &ids), quant);
        prop_assert_eq!(dense.n_docs(), spread.n_docs());
        for q in &qs {
            let mq: Vec<(u32, f32)> = q.iter().map(|&(t, w)| (ids[t as usize], w)).collect();
            run_all(&spread, &mq, k);
            if !float || monotone {
                let terms: Vec<u32> = q.iter().map(|e| e.0).collect();
                let weights: Vec<f32> = q.iter().map(|e| e.1).collect();
                let mterms: Vec<u32> = mq.iter().map(|e| e.0).collect();
                let want = search(&dense, QueryRef { terms: &terms, weights: &weights }, k, Algorithm::Exhaustive).unwrap();
                let got = search(&spread, QueryRef { terms: &mterms, weights: &weights }, k, Algorithm::Auto).unwrap();
                prop_assert_eq!(got, want);
            }
        }
    }
}

#[test]
fn any_u32_term_id_in_documents_and_queries() {
    let indptr = vec![0u64, 2, 3, 5];
    let indices = vec![u32::MAX, 7, 1 << 31, 0, u32::MAX];
    let values = vec![1.0f32, 2.0, 3.0, 0.5, 4.0];
    for quantization in [Quantization::U8 { scale: None }, Quantization::F32] {
        for reorder in [false, true] {
            let opts = BuildOptions {
                n_terms: None,
                quantization,
                store_vectors: true,
                reorder: if reorder { Reorder::Signature } else { Reorder::None },
            };
            let ix = build(CsrRef { indptr: &indptr, indices: &indices, values: &values }, IdsInput::None, &opts)
                .unwrap()
                .index;
            let st = ix.stats();
            assert_eq!((st.n_terms, st.vocabulary), (4, 1u64 << 32));
            let hits =
                search(&ix, QueryRef { terms: &[u32::MAX, 12345], weights: &[1.0, 9.0] }, 10, Algorithm::Auto).unwrap();
            assert_eq!(hits.len(), 2);
            assert!((hits[0].score - 4.0).abs() < 0.02 && (hits[1].score - 1.0).abs() < 0.02, "{hits:?}");
            // Stored vectors come back with their external ids.
            let mut rows: Vec<(Vec<u32>, Vec<f32>)> = (0..3).map(|d| ix.vector(d).unwrap()).collect();
            rows.sort_by(|a, b| a.0.cmp(&b.0));
            assert_eq!(rows[0].0, vec![0, u32::MAX]);
            assert_eq!(rows[1].0, vec![7, u32::MAX]);
            assert_eq!(rows[2].0, vec![1 << 31]);
            assert!(ix.vector(3).is_err());
        }
    }
}

#[test]
fn declared_vocabulary_rejects_larger_ids() {
    let opts = BuildOptions {
        n_terms: Some(100),
        quantization: Quantization::F32,
        store_vectors: true,
        reorder: Reorder::None,
    };
    let err = build(CsrRef { indptr: &[0, 1, 2], indices: &[5, 100], values: &[1.0, 1.0] }, IdsInput::None, &opts)
        .unwrap_err()
        .to_string();
    assert!(err.contains("document 1") && err.contains("term id 100 is out of range (vocabulary size 100)"), "{err}");
    let ix = build(CsrRef { indptr: &[0, 1, 2], indices: &[5, 99], values: &[1.0, 1.0] }, IdsInput::None, &opts)
        .unwrap()
        .index;
    assert_eq!(ix.stats().vocabulary, 100);
    let err =
        search(&ix, QueryRef { terms: &[5, 100], weights: &[1.0, 1.0] }, 3, Algorithm::Auto).unwrap_err().to_string();
    assert!(err.contains("term id 100 is out of range (vocabulary size 100)"), "{err}");
    // Without a declared size, unknown ids are terms without postings.
    let opts = BuildOptions { n_terms: None, ..opts };
    let ix = build(CsrRef { indptr: &[0, 1, 2], indices: &[5, 99], values: &[1.0, 1.0] }, IdsInput::None, &opts)
        .unwrap()
        .index;
    let hits = search(&ix, QueryRef { terms: &[5, 100], weights: &[1.0, 1.0] }, 3, Algorithm::Auto).unwrap();
    assert_eq!(hits.len(), 1);
    let zero = BuildOptions { n_terms: Some(0), ..opts };
    assert!(build(CsrRef { indptr: &[0], indices: &[], values: &[] }, IdsInput::None, &zero).is_err());
}

/// Per-term arrays follow the distinct terms: a 2-document segment over a 30k vocabulary (or
/// with ids near 2^32) is a few KB, not hundreds.
#[test]
fn tiny_segments_are_tiny() {
    for (indices, vocab) in [(vec![3u32, 29_000, 17, 30_000], Some(30_522)), (vec![3, u32::MAX, 1 << 30, 9], None)] {
        let opts = BuildOptions {
            n_terms: vocab,
            quantization: Quantization::U8 { scale: None },
            store_vectors: true,
            reorder: Reorder::Signature,
        };
        let ix = build(
            CsrRef { indptr: &[0, 2, 4], indices: &indices, values: &[1.0, 2.0, 3.0, 4.0] },
            IdsInput::Int(&[10, 20]),
            &opts,
        )
        .unwrap()
        .index;
        let bytes = ix.stats().bytes;
        assert!(bytes < 4096, "a 2-document segment takes {bytes} bytes");
    }
}

/// Segments with vocabularies of very different sizes searched one after another on one
/// thread: the per-term tables of the scratch space (left as long as the largest vocabulary
/// seen, all cleared, since searches no longer re-zero them per segment) score a small segment
/// exactly. Every algorithm, both scores, the wide segment first and last, and a small segment
/// alone after a wide one, against the exhaustive scorer over one index of all documents.
#[test]
fn segments_of_different_vocabularies_reuse_the_term_tables() {
    // wide: 400 documents over 3000 terms; narrow: 300 documents over terms 0..4
    let (mut indptr, mut indices, mut values) = (vec![0u64], Vec::new(), Vec::new());
    let mut rng = 7u64;
    let mut next = || {
        rng = rng.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (rng >> 33) as u32
    };
    for d in 0..700u32 {
        let mut row: Vec<u32> =
            if d < 400 { (0..12).map(|_| next() % 3000).collect() } else { (0..3).map(|_| next() % 4).collect() };
        row.sort_unstable();
        row.dedup();
        for t in row {
            indices.push(t);
            values.push(0.05 + (next() % 1000) as f32 / 997.0);
        }
        indptr.push(indices.len() as u64);
    }
    let opts =
        |quantization| BuildOptions { n_terms: Some(3000), quantization, store_vectors: true, reorder: Reorder::None };
    let max_w = values.iter().copied().fold(0.0f32, f32::max);
    for quantization in [Quantization::U8 { scale: Some(255.0 / max_w) }, Quantization::F32] {
        let part = |a: usize, b: usize| {
            let ip: Vec<u64> = indptr[a..=b].iter().map(|&p| p - indptr[a]).collect();
            let (lo, hi) = (indptr[a] as usize, indptr[b] as usize);
            let csr = CsrRef { indptr: &ip, indices: &indices[lo..hi], values: &values[lo..hi] };
            // stored ids: ties break by id, whichever segment comes first
            let ids: Vec<i64> = (a as i64..b as i64).collect();
            build(csr, IdsInput::Int(&ids), &opts(quantization)).unwrap().index
        };
        let whole = part(0, 700);
        let (wide, narrow) = (part(0, 400), part(400, 700));
        assert!(wide.view().n_terms > 10 * narrow.view().n_terms);
        for (terms, weights) in
            [(vec![0u32, 1, 2, 3], vec![0.7f32, 0.2, 1.3, 0.4]), (vec![1, 2, 17, 2999], vec![1.0, 0.5, 2.0, 0.3])]
        {
            let qr = QueryRef { terms: &terms, weights: &weights };
            for scores in [Scores::Vectors, Scores::Impacts] {
                let want = search_with_scores(&whole, qr, 7, Algorithm::Exhaustive, None, None, scores).unwrap();
                let want_narrow =
                    search_with_scores(&narrow, qr, 7, Algorithm::Exhaustive, None, None, scores).unwrap();
                for algo in Algorithm::ALL {
                    for (order, base) in [([&wide, &narrow], [0u32, 400]), ([&narrow, &wide], [400, 0])] {
                        let segs: Vec<Segment<'_>> =
                            order.iter().map(|ix| Segment { index: ix, allowed: None }).collect();
                        let got: Vec<Hit> =
                            sparsedex_core::search::search_segments_scores(&segs, qr, 7, algo, None, scores)
                                .unwrap()
                                .into_iter()
                                .map(|h| Hit { doc: base[h.segment as usize] + h.doc, score: h.score })
                                .collect();
                        assert_eq!(got, want, "{algo} {scores:?} {quantization:?}");
                    }
                    let _ = search_with_scores(&wide, qr, 7, algo, None, None, scores).unwrap();
                    let got = search_with_scores(&narrow, qr, 7, algo, None, None, scores).unwrap();
                    assert_eq!(got, want_narrow, "{algo} {scores:?} {quantization:?}, narrow after wide");
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// BM25: term frequencies and document lengths scored at query time from statistics that come
// with the query.

use sparsedex_core::index::build::build_with;
use sparsedex_core::index::Bm25Params;
use sparsedex_core::search::{search_with, Bm25Stats};

/// A corpus whose weights are term frequencies (whole numbers, skewed towards 1), with
/// document lengths that are their sums or given (then larger, as when stop words count).
#[derive(Debug, Clone)]
struct TfCorpus {
    c: Corpus,
    doc_len: Option<Vec<u32>>,
}

fn tf_corpus_strategy(max_docs: usize, vocab: u32) -> impl Strategy<Value = TfCorpus> {
    (corpus_strategy(max_docs, vocab), any::<u64>(), any::<bool>()).prop_map(|(mut c, seed, given)| {
        let mut rng = seed | 1;
        let mut next = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        for v in c.values.iter_mut() {
            *v = match next() % 8 {
                0..=3 => 1.0,
                4 | 5 => 2.0,
                6 => (3 + next() % 5) as f32,
                _ => (1 + next() % 300) as f32,
            };
        }
        let doc_len = given.then(|| {
            c.indptr
                .windows(2)
                .map(|w| c.values[w[0] as usize..w[1] as usize].iter().sum::<f32>() as u32 + (next() % 50) as u32)
                .collect()
        });
        TfCorpus { c, doc_len }
    })
}

fn build_bm25(tc: &TfCorpus, params: Bm25Params, store_vectors: bool) -> Index {
    let c = &tc.c;
    build_with(
        CsrRef { indptr: &c.indptr, indices: &c.indices, values: &c.values },
        IdsInput::None,
        tc.doc_len.as_deref(),
        &BuildOptions {
            n_terms: None,
            quantization: Quantization::Bm25(params),
            store_vectors,
            reorder: Reorder::None,
        },
    )
    .unwrap()
    .index
}

fn params_strategy() -> impl Strategy<Value = Bm25Params> {
    (
        prop_oneof![Just(1.2f32), Just(0.0f32), 0.0f32..3.0],
        prop_oneof![Just(0.75f32), Just(0.0), Just(1.0), 0.0f32..1.0],
        any::<bool>(),
    )
        .prop_map(|(k1, b, quantized)| Bm25Params { k1, b, quantized })
}

/// Statistics for the terms `0..vocab + 3`: the index's own (`None`), or arbitrary ones (any
/// N, total length and df: the bounds must hold whatever the statistics are).
fn stats_strategy(vocab: u32) -> impl Strategy<Value = Option<(u64, u64, Vec<u64>)>> {
    proptest::option::of((
        1u64..100_000,
        1u64..10_000_000,
        proptest::collection::vec(0u64..5_000, (vocab + 3) as usize),
    ))
}

fn make_stats(s: &Option<(u64, u64, Vec<u64>)>) -> Option<Bm25Stats> {
    s.as_ref().map(|(n, total, df)| {
        let df = df.iter().map(|d| d % (n + 1)).collect();
        Bm25Stats::new(*n, *total, (0..(df_len(s)) as u32).collect(), df).unwrap()
    })
}

fn df_len(s: &Option<(u64, u64, Vec<u64>)>) -> usize {
    s.as_ref().map_or(0, |x| x.2.len())
}

fn q_ref(q: &[(u32, f32)]) -> (Vec<u32>, Vec<f32>) {
    (q.iter().map(|e| e.0).collect(), q.iter().map(|e| e.1).collect())
}

/// Every algorithm (filtered or not, and the forward scorer) equals the exhaustive scorer.
fn run_all_bm25(index: &Index, q: &[(u32, f32)], k: usize, stats: Option<&Bm25Stats>, allowed: Option<&DocSet>) {
    let (terms, weights) = q_ref(q);
    let qr = QueryRef { terms: &terms, weights: &weights };
    let everything =
        search_with(index, qr, index.n_docs().max(1) as usize, Algorithm::Exhaustive, None, stats).unwrap();
    let want: Vec<Hit> = everything.into_iter().filter(|h| allowed.is_none_or(|a| a.contains(h.doc))).take(k).collect();
    for algo in Algorithm::ALL {
        let got = search_with(index, qr, k, algo, allowed, stats).unwrap();
        assert_eq!(got, want, "BM25 {algo} differs from the oracle (k={k}, query={q:?})");
    }
    if let (Some(a), Some(_), None) = (allowed, index.view().forward, stats) {
        assert_eq!(search_forward(index, qr, k, a).unwrap(), want, "BM25 forward scorer");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn bm25_all_algorithms_equal_oracle(
        tc in tf_corpus_strategy(1500, 12),
        params in params_strategy(),
        stats in stats_strategy(12),
        qs in proptest::collection::vec(query_strategy(12), 1..4),
        set in allowed_strategy(),
        kf in 0.0f64..1.0,
    ) {
        let index = build_bm25(&tc, params, true);
        let stats = make_stats(&stats);
        let n = index.n_docs();
        let k = 1 + (kf * (n + 1) as f64) as usize;
        let allowed = make_allowed(n, set);
        for q in &qs {
            for k in [k, 10] {
                run_all_bm25(&index, q, k, stats.as_ref(), None);
                run_all_bm25(&index, q, k, stats.as_ref(), Some(&allowed));
            }
        }
    }

    /// A BM25 corpus split into segments, searched with the statistics of the whole (given or
    /// computed over the segments), equals one index over every document: floors are exact.
    #[test]
    fn bm25_segments_equal_one_index(
        tc in tf_corpus_strategy(1500, 12),
        params in params_strategy(),
        stats in stats_strategy(12),
        cuts in proptest::collection::vec(0.0f64..1.0, 0..6),
        qs in proptest::collection::vec(query_strategy(12), 1..4),
        set in allowed_strategy(),
        filtered in any::<bool>(),
        k in 1usize..40,
    ) {
        let c = &tc.c;
        let n = c.indptr.len() - 1;
        let whole = build_bm25(&tc, params, false);
        let stats = make_stats(&stats);
        let mut bounds: Vec<usize> = cuts.iter().map(|f| (f * n as f64) as usize).collect();
        bounds.extend([0, n]);
        bounds.sort_unstable();
        bounds.dedup();
        let allowed = if filtered { Some(make_allowed(n as u32, set)) } else { None };
        let mut parts = Vec::new();
        for w in bounds.windows(2) {
            let (a, b) = (w[0], w[1]);
            let (lo, hi) = (c.indptr[a] as usize, c.indptr[b] as usize);
            let indptr: Vec<u64> = c.indptr[a..=b].iter().map(|&p| p - c.indptr[a]).collect();
            let part = TfCorpus {
                c: Corpus { indptr, indices: c.indices[lo..hi].to_vec(), values: c.values[lo..hi].to_vec() },
                doc_len: tc.doc_len.as_ref().map(|l| l[a..b].to_vec()),
            };
            let set = allowed.as_ref().map(|al| DocSet::from_docs((a as u32..b as u32).filter(|&d| al.contains(d)).map(|d| d - a as u32), (b - a) as u32).unwrap());
            parts.push((a as u32, build_bm25(&part, params, false), set));
        }
        let segs: Vec<Segment<'_>> = parts.iter().map(|(_, ix, set)| Segment { index: ix, allowed: set.as_ref() }).collect();
        for q in &qs {
            let (terms, weights) = q_ref(q);
            let qr = QueryRef { terms: &terms, weights: &weights };
            let want = search_with(&whole, qr, k, Algorithm::Exhaustive, allowed.as_ref(), stats.as_ref()).unwrap();
            for algo in Algorithm::ALL {
                let got: Vec<Hit> = search_segments(&segs, qr, k, algo, stats.as_ref())
                    .unwrap()
                    .into_iter()
                    .map(|h| Hit { doc: parts[h.segment as usize].0 + h.doc, score: h.score })
                    .collect();
                prop_assert_eq!(&got, &want, "{} over {} segments (k={})", algo, segs.len(), k);
            }
        }
    }

    /// Float BM25 scores equal the textbook formula computed in f64, to float rounding.
    #[test]
    fn bm25_float_scores_equal_the_textbook(
        tc in tf_corpus_strategy(400, 10),
        k1 in prop_oneof![Just(1.2f32), 0.0f32..3.0],
        b in prop_oneof![Just(0.75f32), 0.0f32..1.0],
        stats in stats_strategy(10),
        q in query_strategy(10),
    ) {
        let params = Bm25Params { k1, b, quantized: false };
        let index = build_bm25(&tc, params, false);
        let stats = make_stats(&stats).unwrap_or_else(|| Bm25Stats::of_indexes(&[&index], &(0..13).collect::<Vec<u32>>()));
        let (terms, weights) = q_ref(&q);
        let n = tc.c.indptr.len() - 1;
        let hits = search_with(&index, QueryRef { terms: &terms, weights: &weights }, n.max(1), Algorithm::Exhaustive, None, Some(&stats)).unwrap();
        let (nn, avgdl) = (stats.n_docs() as f64, stats.avgdl());
        let (k1, b) = (k1 as f64, b as f64);
        let mut want = vec![0.0f64; n];
        for d in 0..n {
            let (lo, hi) = (tc.c.indptr[d] as usize, tc.c.indptr[d + 1] as usize);
            let dl = tc.doc_len.as_ref().map_or_else(|| tc.c.values[lo..hi].iter().map(|&x| x as f64).sum(), |l| l[d] as f64);
            for (&t, &tf) in tc.c.indices[lo..hi].iter().zip(&tc.c.values[lo..hi]) {
                if let Some(&(_, qtf)) = q.iter().find(|e| e.0 == t) {
                    let df = stats.df_of(t).unwrap() as f64;
                    if qtf > 0.0 && df > 0.0 {
                        let idf = (1.0 + (nn - df + 0.5) / (df + 0.5)).ln();
                        let tf = tf as f64;
                        want[d] += idf * qtf as f64 * tf * (k1 + 1.0) / (tf + k1 * (1.0 - b + b * dl / avgdl));
                    }
                }
            }
        }
        prop_assert_eq!(hits.len(), want.iter().filter(|&&w| (w as f32) > 0.0).count());
        for h in &hits {
            let w = want[h.doc as usize];
            let tol = 1e-5 * w.abs() + 1e-30;
            prop_assert!((h.score as f64 - w).abs() <= tol, "doc {}: {} vs textbook {}", h.doc, h.score, w);
        }
    }
}

/// Quantized BM25 scores are within the grid's rounding of the float scores.
#[test]
fn bm25_quantized_scores_track_float_scores() {
    use sparsedex_core::synth::{generate, SynthParams};
    let p = SynthParams { n_docs: 3000, n_queries: 20, seed: 3, ..SynthParams::default() };
    let (docs, queries) = generate(&p);
    let tf: Vec<f32> = docs.values.iter().map(|&v| (v * 3.0).ceil()).collect();
    let mk = |quantized| {
        build(
            CsrRef { indptr: &docs.indptr, indices: &docs.indices, values: &tf },
            IdsInput::None,
            &BuildOptions {
                n_terms: None,
                quantization: Quantization::Bm25(Bm25Params { k1: 1.2, b: 0.75, quantized }),
                store_vectors: false,
                reorder: Reorder::Signature,
            },
        )
        .unwrap()
        .index
    };
    let (f, q) = (mk(false), mk(true));
    for i in 0..queries.indptr.len() - 1 {
        let (a, b) = (queries.indptr[i] as usize, queries.indptr[i + 1] as usize);
        let qtf: Vec<f32> = vec![1.0; b - a];
        let qr = QueryRef { terms: &queries.indices[a..b], weights: &qtf };
        let (hf, hq) = (search(&f, qr, 10, Algorithm::Auto).unwrap(), search(&q, qr, 10, Algorithm::Auto).unwrap());
        run_all_bm25(&q, &queries.indices[a..b].iter().map(|&t| (t, 1.0)).collect::<Vec<_>>(), 10, None, None);
        // Each term's document weight is off by at most half a grid step (k1 + 1) / 510.
        let bound = (b - a) as f32 * 2.2 / 510.0 * 20.0;
        for (x, y) in hf.iter().zip(&hq) {
            assert!((x.score - y.score).abs() <= bound, "{x:?} vs {y:?}");
        }
    }
}

/// Exact search of a u8 index that stores its vectors returns the float top-k: every
/// algorithm returns the hits and scores (bit for bit: the f32 products added in ascending term
/// order) of the exhaustive scorer of a float index over the same vectors, keyed by external
/// id (the two indexes may order documents differently); explanations of the hits sum the
/// stored float weights to the same score.
fn run_float_exact(u8ix: &Index, f32ix: &Index, q: &[(u32, f32)], k: usize, allowed: Option<(&DocSet, &DocSet)>) {
    let (terms, weights) = q_ref(q);
    let qr = QueryRef { terms: &terms, weights: &weights };
    let by_id = |ix: &Index, hits: Vec<Hit>| -> Vec<(i64, f32)> {
        hits.into_iter()
            .map(|h| match ix.id(h.doc) {
                Some(Id::Int(x)) => (x, h.score),
                other => panic!("doc {} has id {other:?}", h.doc),
            })
            .collect()
    };
    let want = by_id(f32ix, search_filtered(f32ix, qr, k, Algorithm::Exhaustive, allowed.map(|a| a.1)).unwrap());
    for algo in Algorithm::ALL {
        let hits = search_filtered(u8ix, qr, k, algo, allowed.map(|a| a.0)).unwrap();
        for h in &hits {
            let (parts, score) = explain_scored_as(u8ix, qr, h.doc, None, Scores::Vectors).unwrap();
            assert_eq!(score, h.score, "explained score differs from the hit's ({algo})");
            let sum: f32 = parts.iter().map(|p| p.contribution).sum();
            assert!((sum - score).abs() <= 1e-5 * score.abs().max(1e-30), "contributions sum to {sum}, not {score}");
        }
        let got = by_id(u8ix, hits);
        assert_eq!(got, want, "{algo} on the u8 index is not the float top-k (k={k}, query={q:?})");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// The u8 index's exact search is the float index's exhaustive top-k, whatever the
    /// document order, the filter and k.
    #[test]
    fn u8_exact_search_is_the_float_top_k(
        c in corpus_strategy(1500, 12),
        qs in proptest::collection::vec(query_strategy(12), 1..5),
        kf in 0.0f64..1.0,
        reorder in reorder_strategy(),
        set in allowed_strategy(),
        filtered in any::<bool>(),
    ) {
        let n = c.indptr.len() - 1;
        let ids: Vec<i64> = (0..n as i64).map(|r| (r * 7_919) % 10_007).collect();
        let csr = CsrRef { indptr: &c.indptr, indices: &c.indices, values: &c.values };
        let opts = |quantization, reorder| BuildOptions { n_terms: None, quantization, store_vectors: true, reorder };
        let fl = build(csr, IdsInput::Int(&ids), &opts(Quantization::F32, Reorder::None)).unwrap().index;
        let built = build(csr, IdsInput::Int(&ids), &opts(Quantization::U8 { scale: None }, reorder)).unwrap();
        let u8ix = built.index;
        // The same documents allowed in both (rows of the float index, internal docs of the u8 one).
        let rows = make_allowed(n as u32, set);
        let docs = DocSet::from_docs(
            built.order.iter().enumerate().filter(|(_, &r)| rows.contains(r)).map(|(i, _)| i as u32).collect::<Vec<u32>>(),
            n as u32,
        ).unwrap();
        let k = 1 + (kf * (n + 1) as f64) as usize;
        for q in &qs {
            for k in [k, 1, 10] {
                run_float_exact(&u8ix, &fl, q, k, if filtered { Some((&docs, &rows)) } else { None });
            }
        }
    }
}

/// A query term whose weight quantizes to 0 (below 1/131070 of the largest) still counts: a
/// document that shares only that term has a positive float score and is returned.
#[test]
fn query_terms_quantized_to_zero_still_count() {
    let c = Corpus { indptr: vec![0, 1, 2, 3], indices: vec![0, 1, 2], values: vec![1.0, 0.5, 2.0] };
    let ids: Vec<i64> = vec![10, 11, 12];
    let csr = CsrRef { indptr: &c.indptr, indices: &c.indices, values: &c.values };
    let opts = |quantization| BuildOptions { n_terms: None, quantization, store_vectors: true, reorder: Reorder::None };
    let u8ix = build(csr, IdsInput::Int(&ids), &opts(Quantization::U8 { scale: None })).unwrap().index;
    let fl = build(csr, IdsInput::Int(&ids), &opts(Quantization::F32)).unwrap().index;
    let q = [(0u32, 1.0f32), (1, 1e-7)];
    for k in [1, 2, 3] {
        run_float_exact(&u8ix, &fl, &q, k, None);
    }
    let (terms, weights) = q_ref(&q);
    let qr = QueryRef { terms: &terms, weights: &weights };
    let hits = search(&u8ix, qr, 3, Algorithm::Auto).unwrap();
    assert_eq!(hits.iter().map(|h| h.doc).collect::<Vec<_>>(), vec![0, 1]);
    assert_eq!(hits[1].score, 0.5f32 * 1e-7);
    // The 8-bit scoring drops the term: only document 0.
    let raw = search_with_scores(&u8ix, qr, 3, Algorithm::Auto, None, None, Scores::Impacts).unwrap();
    assert_eq!(raw.iter().map(|h| h.doc).collect::<Vec<_>>(), vec![0]);
}

/// The synthetic corpus (the shape of learned sparse vectors, 20k documents, BP order):
/// every algorithm of the u8 index returns the float index's exhaustive top-k.
#[test]
fn synthetic_corpus_u8_exact_search_is_the_float_top_k() {
    use sparsedex_core::synth::{generate, SynthParams};
    let p = SynthParams { n_docs: 20_000, n_queries: 30, seed: 11, ..SynthParams::default() };
    let (docs, queries) = generate(&p);
    let ids: Vec<i64> = (0..p.n_docs as i64).collect();
    let csr = CsrRef { indptr: &docs.indptr, indices: &docs.indices, values: &docs.values };
    let opts = |quantization, reorder| BuildOptions {
        n_terms: Some(p.vocab_size),
        quantization,
        store_vectors: true,
        reorder,
    };
    let u8ix = build(csr, IdsInput::Int(&ids), &opts(Quantization::U8 { scale: None }, Reorder::bp())).unwrap().index;
    let fl = build(csr, IdsInput::Int(&ids), &opts(Quantization::F32, Reorder::Signature)).unwrap().index;
    for i in 0..queries.indptr.len() - 1 {
        let (a, b) = (queries.indptr[i] as usize, queries.indptr[i + 1] as usize);
        let q: Vec<(u32, f32)> =
            queries.indices[a..b].iter().copied().zip(queries.values[a..b].iter().copied()).collect();
        for k in [1, 10, 100] {
            run_float_exact(&u8ix, &fl, &q, k, None);
        }
    }
}

/// Documents whose weights all round to the same impact: the u8 traversal cannot tell them
/// apart, so the first candidates (the smallest ids) never settle the float top-k and the
/// second traversal (every document above the lowered floor, here every document) runs for
/// every algorithm; the float top-k comes out.
#[test]
fn equal_impacts_take_the_second_traversal_and_give_the_float_top_k() {
    let n = 300usize;
    let c = Corpus {
        indptr: (0..=n as u64).collect(),
        indices: vec![0; n],
        values: (0..n).map(|i| 1.0 + ((i * 37) % n) as f32 * 1e-6).collect(),
    };
    let ids: Vec<i64> = (0..n as i64).collect();
    let csr = CsrRef { indptr: &c.indptr, indices: &c.indices, values: &c.values };
    let opts = |quantization| BuildOptions { n_terms: None, quantization, store_vectors: true, reorder: Reorder::None };
    let u8ix = build(csr, IdsInput::Int(&ids), &opts(Quantization::U8 { scale: None })).unwrap().index;
    let fl = build(csr, IdsInput::Int(&ids), &opts(Quantization::F32)).unwrap().index;
    let raw = search_with_scores(
        &u8ix,
        QueryRef { terms: &[0], weights: &[1.0] },
        3,
        Algorithm::Exhaustive,
        None,
        None,
        Scores::Impacts,
    )
    .unwrap();
    assert_eq!(raw.iter().map(|h| h.doc).collect::<Vec<_>>(), vec![0, 1, 2], "one impact for all: ties by id");
    for k in [1, 3, 10] {
        run_float_exact(&u8ix, &fl, &[(0, 1.0)], k, None);
    }
    let hits = search(&u8ix, QueryRef { terms: &[0], weights: &[1.0] }, 1, Algorithm::Auto).unwrap();
    assert_eq!(c.values[hits[0].doc as usize], c.values.iter().copied().fold(0.0, f32::max));
}

/// Query weights far below the documents' (legal input: finite and positive): the u8 query
/// scale is capped so that the norm stays a finite f32, and the exact float top-k comes out for
/// every algorithm, with the float index's scores (newcomer11 M3: below about 1.6e-32 the norm
/// overflowed, every score read 0 and the search returned nothing). Some weights round to 0 on
/// the capped scale: the rerank scores those terms from the rows.
#[test]
fn tiny_query_weights_give_the_float_top_k() {
    let n = 300usize;
    let mut c = Corpus { indptr: vec![0], indices: Vec::new(), values: Vec::new() };
    for i in 0..n {
        for t in [i % 7, 7 + i % 5, 20] {
            c.indices.push(t as u32);
            c.values.push(0.01 + ((i * 31 + t * 17) % 97) as f32 * 0.03);
        }
        c.indptr.push(c.indices.len() as u64);
    }
    let ids: Vec<i64> = (0..n as i64).collect();
    let csr = CsrRef { indptr: &c.indptr, indices: &c.indices, values: &c.values };
    let opts = |quantization| BuildOptions { n_terms: None, quantization, store_vectors: true, reorder: Reorder::None };
    let u8ix = build(csr, IdsInput::Int(&ids), &opts(Quantization::U8 { scale: None })).unwrap().index;
    let fl = build(csr, IdsInput::Int(&ids), &opts(Quantization::F32)).unwrap().index;
    for w in [1e-20f32, 1e-32, 1e-34, 1e-36, 1e-38] {
        for q in [vec![(3u32, w)], vec![(3, w), (9, w * 0.5), (20, w * 1e-3)]] {
            let hits = search(&u8ix, QueryRef { terms: &[q[0].0], weights: &[q[0].1] }, 5, Algorithm::Auto).unwrap();
            assert!(!hits.is_empty(), "weight {w:e}: no hits");
            for k in [1, 5, 50] {
                run_float_exact(&u8ix, &fl, &q, k, None);
            }
        }
    }
}

/// helper-119: a document holding every term of a query of thousands of terms (a document
/// used as a query) moved thousands of WAND cursors in one step, re-sorted one at a time
/// (O(terms^2): 24 s for 150,000 terms, in a step no Ctrl-C could stop). Every algorithm
/// still equals the oracle on that shape, u8 and float, with the re-sort by merge.
#[test]
fn a_document_holding_every_term_of_a_long_query() {
    let (n, long, vocab) = (2_000usize, 3_000u32, 20_000u32);
    let mut c = Corpus { indptr: vec![0], indices: vec![], values: vec![] };
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    for _ in 0..n {
        let mut ts: Vec<u32> = (0..20).map(|_| (next() % vocab as u64) as u32).collect();
        ts.sort_unstable();
        ts.dedup();
        for t in ts {
            c.indices.push(t);
            c.values.push(0.1 + (next() % 900) as f32 / 1000.0);
        }
        c.indptr.push(c.indices.len() as u64);
    }
    for t in 0..long {
        c.indices.push(t * (vocab / long));
        c.values.push(0.5);
    }
    c.indptr.push(c.indices.len() as u64);
    let q: Vec<(u32, f32)> = (0..long).map(|t| (t * (vocab / long), 0.5)).collect();
    for quant in [Quantization::U8 { scale: None }, Quantization::F32] {
        let index = build_kind_with(&c, quant, true);
        for k in [1, 10, 100] {
            run_all(&index, &q, k);
        }
    }
}
