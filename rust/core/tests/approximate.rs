//! Approximate search: hits carry the float dot product of the stored vectors (the score an f32
//! index gives, bit for bit, also over a u8 index), honour filters, and the recall target holds
//! against float scores on held-out queries (queries the calibration never saw).

use sparsedex_core::index::build::{build, BuildOptions, IdsInput, Quantization, Reorder};
use sparsedex_core::index::Index;
use sparsedex_core::search::approx::RecallTarget;
use sparsedex_core::search::{search, search_with, Algorithm, DocSet, QueryRef};
use sparsedex_core::synth::{generate, SynthParams};
use sparsedex_core::vectors::CsrRef;

fn corpus(n_docs: usize, seed: u64) -> (Index, sparsedex_core::synth::Csr, u32) {
    let (index, _, queries, v) = corpus_with_float(n_docs, seed);
    (index, queries, v)
}

/// A u8 index with stored vectors and an f32 index over the same documents, and queries.
fn corpus_with_float(n_docs: usize, seed: u64) -> (Index, Index, sparsedex_core::synth::Csr, u32) {
    let p = SynthParams { n_docs, n_queries: 200, seed, ..SynthParams::default() };
    let (docs, queries) = generate(&p);
    let make = |quantization| {
        build(
            CsrRef { indptr: &docs.indptr, indices: &docs.indices, values: &docs.values },
            IdsInput::None,
            &BuildOptions {
                n_terms: Some(p.vocab_size),
                quantization,
                store_vectors: true,
                reorder: Reorder::Signature,
            },
        )
        .unwrap()
        .index
    };
    (make(Quantization::U8 { scale: None }), make(Quantization::F32), queries, p.vocab_size)
}

/// recall@k of `got` against the exact `want`: a hit counts when its score reaches the exact
/// k-th score (ties at the k-th place are not held against it).
fn recall(got: &[sparsedex_core::search::Hit], want: &[sparsedex_core::search::Hit]) -> f64 {
    let Some(th) = want.last().map(|h| h.score) else { return 1.0 };
    got.iter().filter(|h| h.score >= th).count() as f64 / want.len() as f64
}

#[test]
fn approximate_meets_its_target_against_float_scores_on_held_out_queries() {
    let (index, float, queries, _) = corpus_with_float(30_000, 11);
    let targets = [0.9, 0.97, 0.99];
    let algos = targets.map(|t| Algorithm::Approximate(RecallTarget::new(t).unwrap()));
    let (mut sums, mut quantized, mut n) = ([0.0f64; 3], 0.0, 0usize);
    for i in 0..queries.indptr.len() - 1 {
        let (terms, weights) = queries.row(i);
        let q = QueryRef { terms, weights };
        let want = search(&float, q, 10, Algorithm::Exhaustive).unwrap();
        let all = search(&float, q, float.n_docs() as usize, Algorithm::Exhaustive).unwrap();
        let float_hit = |d: u32| *all.iter().find(|x| x.doc == d).expect("hit is a matching document");
        for (algo, sum) in algos.iter().zip(&mut sums) {
            let got = search(&index, q, 10, *algo).unwrap();
            assert_eq!(got.len(), want.len(), "query {i}: approximate returns as many hits as exact");
            // Every returned score is the document's float score, bit for bit, best first.
            for h in &got {
                assert_eq!(float_hit(h.doc).score.to_bits(), h.score.to_bits(), "query {i}: doc {} score", h.doc);
            }
            assert!(got.windows(2).all(|w| w[0].score >= w[1].score));
            *sum += recall(&got, &want);
        }
        let exact: Vec<_> =
            search(&index, q, 10, Algorithm::Exhaustive).unwrap().iter().map(|h| float_hit(h.doc)).collect();
        quantized += recall(&exact, &want);
        n += 1;
    }
    for (target, sum) in targets.iter().zip(sums) {
        let r = sum / n as f64;
        // The calibration holds the target on its own queries; on held-out queries allow the
        // sampling error of 200 queries.
        assert!(r >= target - 0.02, "target {target}: held-out recall {r}");
    }
    // The float rerank lifts recall past the quantized exact search's own recall against float
    // scores (the ceiling a rerank by quantized scores could never pass).
    let ceiling = quantized / n as f64;
    assert!(
        sums[2] / n as f64 >= ceiling.min(0.995) - 0.005,
        "target 0.99: recall {}, quantized exact {ceiling}",
        sums[2] / n as f64
    );
}

#[test]
fn approximate_scores_of_a_small_segment_are_float_scores_too() {
    // Below MIN_DOCS the segment is not calibrated, but its hits still carry float scores
    // (so that they merge with other segments' float scores).
    let (index, float, queries, _) = corpus_with_float(3_000, 2);
    let algo = Algorithm::Approximate(RecallTarget::new(0.95).unwrap());
    for i in 0..30 {
        let (terms, weights) = queries.row(i);
        let q = QueryRef { terms, weights };
        let got = search(&index, q, 10, algo).unwrap();
        let all = search(&float, q, float.n_docs() as usize, Algorithm::Exhaustive).unwrap();
        for h in &got {
            let e = all.iter().find(|x| x.doc == h.doc).expect("hit is a matching document");
            assert_eq!(e.score.to_bits(), h.score.to_bits(), "query {i}: doc {} score", h.doc);
        }
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

/// A query whose heaviest term is rare (the cut keeps only it) among many light common terms:
/// approximate search still returns k hits, also when a filter excludes every document of the
/// rare term (it returned those few documents, and none under the filter: newcomer15 M1), and
/// each hit carries its float score, for u8 and f32 indexes.
#[test]
fn a_rare_heavy_term_does_not_cut_the_hits_short() {
    let (u8_index, f32_index, _, vocab) = corpus_with_float(12_000, 11);
    for index in [&u8_index, &f32_index] {
        let n = index.n_docs();
        let mut holders: Vec<Vec<u32>> = vec![Vec::new(); vocab as usize];
        for d in 0..n {
            for &t in index.vector(d).unwrap().0.iter() {
                holders[t as usize].push(d);
            }
        }
        let rare = (0..vocab).find(|&t| (2..=5).contains(&holders[t as usize].len())).expect("a rare term");
        let mut terms: Vec<u32> =
            (0..vocab).filter(|&t| holders[t as usize].len() > n as usize / 50).take(150).collect();
        terms.push(rare);
        terms.sort_unstable();
        let weights: Vec<f32> = terms.iter().map(|&t| if t == rare { 1.0 } else { 1e-3 }).collect();
        let q = QueryRef { terms: &terms, weights: &weights };
        let allowed = DocSet::from_docs((0..n).filter(|d| !holders[rare as usize].contains(d)), n).unwrap();
        for t in [0.9, 0.95, 0.99] {
            let algo = Algorithm::Approximate(RecallTarget::new(t).unwrap());
            for (filter, name) in [(None, "no filter"), (Some(&allowed), "filter")] {
                let exact = search_with(index, q, 10, Algorithm::Exhaustive, filter, None).unwrap();
                assert_eq!(exact.len(), 10, "{name}: the query matches many documents");
                let got = search_with(index, q, 10, algo, filter, None).unwrap();
                assert_eq!(got.len(), 10, "target {t}, {name}: {} hits", got.len());
                assert!(
                    got.iter().all(|h| filter.is_none_or(|f| f.contains(h.doc))),
                    "{name}: a hit outside the filter"
                );
            }
        }
    }
}

/// A calibration query is put in the bucket of its terms present in the segment, as a searched
/// query is, also when most of its weights quantize to 0 (calibration counted only the terms
/// left in its plan: 20-term queries went to the bucket of queries of at most 8, newcomer15 L2).
#[test]
fn calibration_buckets_queries_by_their_terms_as_search_does() {
    use sparsedex_core::search::approx::calibrate::calibrate_with;
    let (index, queries, _) = corpus(10_000, 12);
    let (mut indptr, mut terms, mut weights) = (vec![0u64], Vec::new(), Vec::new());
    for i in 0..40 {
        let (t, _) = queries.row(i);
        let t: Vec<u32> = t.iter().copied().take(20).collect();
        assert_eq!(t.len(), 20, "synthetic queries hold at least 20 terms");
        weights.extend((0..20).map(|j| if j == 0 { 1.0f32 } else { 1e-7 }));
        terms.extend(t);
        indptr.push(terms.len() as u64);
    }
    let cal = calibrate_with(&index, Some(CsrRef { indptr: &indptr, indices: &terms, values: &weights }), 3).unwrap();
    // 20 terms: the bucket of queries of 17..32 terms (some queries may lack 10 matches); the
    // other buckets are the pseudo-queries' (`calibrate_with` fills buckets the queries leave).
    assert!(cal.queries[2] >= 30 && !cal.from_pseudo[2], "{:?}", cal.queries);
    assert!((0..6).all(|b| b == 2 || cal.from_pseudo[b] || cal.queries[b] == 0), "{:?} {:?}", cal.queries, cal.from_pseudo);
}

/// helper-152 M2: queries given for one length leave the other query-length buckets to the
/// segment's calibration on pseudo-queries, which are of those buckets' lengths (they took the
/// parameters of the nearest bucket the queries filled: calibrated on 40 queries of 17-32
/// terms, held-out queries of 9-16 terms reached 0.878 at target 0.90 on debian). The
/// pseudo-query buckets the segment holds are kept as they are; a segment calibrated on
/// nothing yet has those buckets calibrated on pseudo-queries then. Buckets the queries fill
/// are theirs.
#[test]
fn buckets_the_queries_leave_keep_the_pseudo_query_calibration() {
    use sparsedex_core::search::approx::calibrate::{calibrate_with, peek, set, BUCKETS, MIN_BUCKET_QUERIES};
    let (index, queries, _) = corpus(12_000, 21);
    let (mut indptr, mut terms, mut weights) = (vec![0u64], Vec::new(), Vec::new());
    for i in 0..60 {
        let (t, w) = queries.row(i);
        terms.extend(t.iter().take(20));
        weights.extend(w.iter().take(20));
        indptr.push(terms.len() as u64);
    }
    let given = CsrRef { indptr: &indptr, indices: &terms, values: &weights };
    let n_terms = |b: usize| if b == 0 { 4 } else { BUCKETS[b - 1] + 1 };
    // A segment calibrated on nothing yet: the buckets the queries leave are calibrated on
    // pseudo-queries of their lengths.
    assert!(peek(&index).is_none());
    let fresh = calibrate_with(&index, Some(given), 3).unwrap();
    assert!(!fresh.pseudo && !fresh.from_pseudo[2] && fresh.queries[2] >= MIN_BUCKET_QUERIES, "{:?}", fresh.queries);
    let pseudo = calibrate_with(&index, None, 0x5eed).unwrap();
    let filled: Vec<usize> = (0..6).filter(|&b| b != 2 && pseudo.queries[b] >= MIN_BUCKET_QUERIES).collect();
    assert!(filled.contains(&1) && filled.contains(&0), "pseudo-queries fill the short buckets: {:?}", pseudo.queries);
    for &b in &filled {
        assert!(fresh.from_pseudo[b], "bucket {b}: {:?}", fresh.from_pseudo);
        assert_eq!(fresh.queries[b], pseudo.queries[b], "bucket {b}");
        assert!(fresh.points.iter().any(|p| p.bucket == b), "bucket {b}");
    }
    // A segment calibrated on pseudo-queries: those buckets are kept as they are.
    set(&index, pseudo.clone());
    let kept = calibrate_with(&index, Some(given), 3).unwrap();
    for &b in &filled {
        let of = |c: &sparsedex_core::search::approx::calibrate::Calibration| {
            c.points.iter().filter(|p| p.bucket == b).copied().collect::<Vec<_>>()
        };
        assert_eq!(of(&kept), of(&pseudo), "bucket {b}");
        for target in [0.9, 0.95, 0.97, 0.99] {
            assert_eq!(kept.choose(target, n_terms(b)), pseudo.choose(target, n_terms(b)), "bucket {b} at {target}");
        }
    }
    // the bucket of the queries is theirs: their points, not the pseudo-queries'
    assert!(!kept.from_pseudo[2]);
    assert_eq!(kept.queries[2], fresh.queries[2]);
    let of2 = |c: &sparsedex_core::search::approx::calibrate::Calibration| {
        c.points.iter().filter(|p| p.bucket == 2).map(|p| (p.params, p.recall)).collect::<Vec<_>>()
    };
    assert_eq!(of2(&kept), of2(&fresh));
    assert_ne!(of2(&kept), of2(&pseudo));
}

/// review25's adversarial corpus: the true top-10 hold one heavy term, half the documents hold
/// 150 light query terms whose weights requantized to 16 bits all round the same way. The
/// requantized cut reordered the candidates (recall 0.19-0.20 at target 0.97 where 32-bit scores
/// gave 1.00, and calibration, which did not requantize, did not see it): approximate search
/// calibrated on these queries must hold its target, and so must a small (uncalibrated)
/// segment, which keeps 32-bit scores.
/// breaker30 H1: one heavy common term beside many light rare ones. The top documents are
/// decided by the common term and hold few of the rare ones, while the rare terms' bounds add
/// up to most of the query's: a cut that prefers rare terms for their short lists (stop 30's
/// order by bound per sqrt(df), reverted) kept only rare terms and reached recall 0.05 at a
/// target of 0.95 on debian, 0.27 on this test's 60 queries (one of the 50 most common terms
/// at weight 3 beside 60 terms of 2-6 postings at 0.3-0.6), where the bound order reaches 1.0.
/// With the default (pseudo-query) calibration, the approximate search must keep the heavy
/// term and its recall.
#[test]
fn a_heavy_common_term_among_light_rare_ones_is_kept() {
    let (index, float, _, vocab) = corpus_with_float(30_000, 17);
    let n_postings_of = |t: u32| float.view().local_term(t).map_or(0, |l| float.view().df(l));
    let mut by_df: Vec<(u64, u32)> = (0..vocab).map(|t| (n_postings_of(t), t)).filter(|x| x.0 > 0).collect();
    by_df.sort_unstable_by(|a, b| b.cmp(a));
    let common: Vec<u32> = by_df.iter().take(50).map(|x| x.1).collect();
    let rare: Vec<u32> = by_df.iter().filter(|x| (2..=6).contains(&x.0)).map(|x| x.1).collect();
    assert!(rare.len() >= 100, "{} rare terms", rare.len());
    let mut seed = 0x9e37_79b9u64;
    let mut rnd = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let target = Algorithm::Approximate(RecallTarget::new(0.95).unwrap());
    let (mut sum, n) = (0.0, 60);
    for i in 0..n {
        let mut q: Vec<(u32, f32)> = vec![(common[i % common.len()], 3.0)];
        while q.len() < 61 {
            let t = rare[(rnd() % rare.len() as u64) as usize];
            if q.iter().all(|e| e.0 != t) {
                q.push((t, 0.3 + 0.3 * (rnd() % 1000) as f32 / 1000.0));
            }
        }
        q.sort_by_key(|e| e.0);
        let (terms, weights): (Vec<u32>, Vec<f32>) = q.into_iter().unzip();
        let q = QueryRef { terms: &terms, weights: &weights };
        let want = search(&float, q, 10, Algorithm::Exhaustive).unwrap();
        let got = search(&index, q, 10, target).unwrap();
        assert_eq!(got.len(), want.len(), "query {i}");
        sum += recall(&got, &want);
    }
    let r = sum / n as f64;
    assert!(r >= 0.9, "recall {r} at target 0.95");
}

#[test]
fn many_light_terms_rounding_alike_do_not_lose_recall() {
    let mut seed = 0x51ed_2701u64;
    let mut rnd = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed as f64 / u64::MAX as f64
    };
    let (ns, light) = (150u32, 3e-3f32);
    for n_docs in [12_000usize, 4_000] {
        let (mut indptr, mut terms, mut values) = (vec![0u64], Vec::new(), Vec::new());
        for d in 0..n_docs {
            let mut row: Vec<(u32, f32)> = Vec::new();
            if d % 10 == 0 {
                row.push((0, 0.2 + 0.3 * rnd() as f32));
            } else if d % 10 < 6 {
                row.extend((1..=ns).map(|t| (t, 0.9 + 0.1 * rnd() as f32)));
            }
            for _ in 0..5 {
                row.push((ns + 1 + (rnd() * 5_000.0) as u32, 0.1 + rnd() as f32));
            }
            row.sort_by_key(|e| e.0);
            row.dedup_by_key(|e| e.0);
            terms.extend(row.iter().map(|e| e.0));
            values.extend(row.iter().map(|e| e.1));
            indptr.push(terms.len() as u64);
        }
        let make = |quantization| {
            build(
                CsrRef { indptr: &indptr, indices: &terms, values: &values },
                IdsInput::None,
                &BuildOptions {
                    n_terms: Some(ns + 5_001),
                    quantization,
                    store_vectors: true,
                    reorder: Reorder::default(),
                },
            )
            .unwrap()
            .index
        };
        let (index, float) = (make(Quantization::U8 { scale: None }), make(Quantization::F32));
        // Within a query the light weights are equal (they round alike), between queries they
        // range over 1..1.195 x light: 40 distinct queries (they were 20, each twice, which
        // count once: too few for a bucket, so the calibration was the exact search).
        let queries: Vec<(Vec<u32>, Vec<f32>)> = (0..40)
            .map(|j| {
                let t: Vec<u32> = (0..=ns).collect();
                let w = t.iter().map(|&t| if t == 0 { 1.0 } else { light * (1.0 + 0.005 * j as f32) }).collect();
                (t, w)
            })
            .collect();
        let run = |index: &Index| {
            let mut r = 0.0;
            for (t, w) in &queries {
                let q = QueryRef { terms: t, weights: w };
                let want = search(&float, q, 10, Algorithm::Exhaustive).unwrap();
                let got = search(index, q, 10, Algorithm::Approximate(RecallTarget::new(0.97).unwrap())).unwrap();
                r += recall(&got, &want);
            }
            r / queries.len() as f64
        };
        // Pseudo-queries (documents' rows) do not stand for these queries (with 32-bit scores
        // too, their calibration reaches 0.75 here), so the large segment is calibrated on the
        // queries, as review25 did; the small one is not calibrated.
        if n_docs < 8_192 {
            let r = run(&index);
            assert!(r >= 0.965, "{n_docs} documents (uncalibrated): recall {r}");
        } else {
            use sparsedex_core::search::approx::calibrate::{calibrate_with, set};
            let ip: Vec<u64> = (0..=queries.len() as u64).map(|i| i * (ns as u64 + 1)).collect();
            let qt: Vec<u32> = queries.iter().flat_map(|q| q.0.clone()).collect();
            let qw: Vec<f32> = queries.iter().flat_map(|q| q.1.clone()).collect();
            set(&index, calibrate_with(&index, Some(CsrRef { indptr: &ip, indices: &qt, values: &qw }), 1).unwrap());
            let r = run(&index);
            assert!(r >= 0.965, "calibrated on the queries: recall {r}");
        }
    }
}

#[test]
fn target_recall_out_of_range_is_an_error() {
    for bad in [0.0, -0.5, 1.01, f64::NAN] {
        let e = RecallTarget::new(bad).unwrap_err().to_string();
        assert!(e.contains("target_recall"), "{e}");
    }
}

/// Calibrated on 200 queries of the workload (`calibrate_with`), approximate search holds each
/// target on 200 other queries of it, within their sampling error.
#[test]
fn calibrated_on_queries_it_holds_the_target_on_other_queries() {
    use sparsedex_core::search::approx::calibrate::{calibrate_with, set};
    let p = SynthParams { n_docs: 30_000, n_queries: 400, seed: 7, ..SynthParams::default() };
    let (docs, queries) = generate(&p);
    let csr = CsrRef { indptr: &docs.indptr, indices: &docs.indices, values: &docs.values };
    let opts = |quantization| BuildOptions {
        n_terms: Some(p.vocab_size),
        quantization,
        store_vectors: true,
        reorder: Reorder::bp(),
    };
    let index = build(csr, IdsInput::None, &opts(Quantization::U8 { scale: None })).unwrap().index;
    let float = build(csr, IdsInput::None, &opts(Quantization::F32)).unwrap().index;
    let base = queries.indptr[200];
    let ip: Vec<u64> = queries.indptr[200..].iter().map(|&x| x - base).collect();
    let cal =
        CsrRef { indptr: &ip, indices: &queries.indices[base as usize..], values: &queries.values[base as usize..] };
    set(&index, calibrate_with(&index, Some(cal), 1).unwrap());
    for target in [0.95, 0.97, 0.99] {
        let algo = Algorithm::Approximate(RecallTarget::new(target).unwrap());
        let mut sum = 0.0;
        for i in 0..200 {
            let (terms, weights) = queries.row(i);
            let q = QueryRef { terms, weights };
            let want = search(&float, q, 10, Algorithm::Exhaustive).unwrap();
            sum += recall(&search(&index, q, 10, algo).unwrap(), &want);
        }
        let r = sum / 200.0;
        assert!(r >= target - 0.01, "target {target}: recall {r} on queries the calibration did not see");
    }
}

/// Calibration queries too few for every bucket (fewer than `MIN_BUCKET_QUERIES` in each) are
/// refused, with the count per bucket, so the segment keeps its calibration (helper-146: 20
/// queries replaced a good pseudo-query calibration with the exact search). A calibration whose
/// buckets all hold too few queries (one read from an older file) gives the exact search: the
/// float top-k, not a cheap point that a handful of queries happened to pass. Queries that match
/// no document are refused, naming the problem.
#[test]
fn too_few_calibration_queries_are_refused_and_give_the_exact_search() {
    use sparsedex_core::search::approx::calibrate::{calibrate_with, set, MIN_BUCKET_QUERIES};
    let (index, float, queries, _) = corpus_with_float(12_000, 3);
    let rows = |n: usize| CsrRef {
        indptr: &queries.indptr[..=n],
        indices: &queries.indices[..queries.indptr[n] as usize],
        values: &queries.values[..queries.indptr[n] as usize],
    };
    let e = calibrate_with(&index, Some(rows(5)), 1).unwrap_err().to_string();
    assert!(e.contains("5 of the 5 queries have 10 matching documents"), "{e}");
    assert!(e.contains("no query-length bucket holds the 30 queries a calibration needs"), "{e}");
    assert!(e.contains("(by their terms present in the segment: 5 of ") && e.contains("keeps its calibration"), "{e}");
    // enough queries calibrate; the same calibration with every bucket below the minimum is exact
    let mut few = calibrate_with(&index, Some(rows(60)), 1).unwrap();
    assert!(few.queries.iter().any(|&n| n >= MIN_BUCKET_QUERIES), "{:?}", few.queries);
    few.queries = few.queries.map(|n| n.min(MIN_BUCKET_QUERIES - 1));
    set(&index, few);
    let algo = Algorithm::Approximate(RecallTarget::new(0.95).unwrap());
    for i in 60..100 {
        let (terms, weights) = queries.row(i);
        let q = QueryRef { terms, weights };
        let want = search(&float, q, 10, Algorithm::Exhaustive).unwrap();
        assert_eq!(search(&index, q, 10, algo).unwrap(), want, "query {i}");
    }
    let absent = (0..30_522u32).find(|&t| index.view().local_term(t).is_none()).expect("a term no document has");
    let none = CsrRef { indptr: &[0, 1], indices: &[absent], values: &[1.0] };
    let e = calibrate_with(&index, Some(none), 1).unwrap_err().to_string();
    assert!(e.contains("none of the 1 queries has 10 matching documents"), "{e}");
}

/// A target of 1 is the exact search: the float top-k on every query, in a calibrated segment
/// and in one too small to calibrate.
#[test]
fn target_one_is_the_exact_search() {
    for n in [12_000, 3_000] {
        let (index, float, queries, _) = corpus_with_float(n, 4);
        let algo = Algorithm::Approximate(RecallTarget::new(1.0).unwrap());
        for i in 0..40 {
            let (terms, weights) = queries.row(i);
            let q = QueryRef { terms, weights };
            let want = search(&float, q, 10, Algorithm::Exhaustive).unwrap();
            assert_eq!(search(&index, q, 10, algo).unwrap(), want, "{n} documents, query {i}");
        }
    }
}

/// Every bucket of a calibration holds the exact search (beta 1, rerank 1) at recall 1 with no
/// error and its measured cost, so every target below 1 is reached, and the point chosen for
/// it is never dearer than the exact search by the calibration's own measure.
#[test]
fn the_exact_search_is_a_calibration_point_and_bounds_the_cost() {
    use sparsedex_core::search::approx::calibrate::{calibrate_with, BUCKETS};
    use sparsedex_core::search::approx::ApproxParams;
    let (index, _, queries, _) = corpus_with_float(12_000, 5);
    let q = CsrRef { indptr: &queries.indptr, indices: &queries.indices, values: &queries.values };
    for cal in [calibrate_with(&index, None, 3).unwrap(), calibrate_with(&index, Some(q), 3).unwrap()] {
        for (b, &nq) in cal.queries.iter().enumerate() {
            let bucket: Vec<_> = cal.points.iter().filter(|p| p.bucket == b).collect();
            if nq == 0 {
                assert!(bucket.is_empty());
                continue;
            }
            let exact: Vec<_> = bucket.iter().filter(|p| p.params == ApproxParams::EXACT).collect();
            assert_eq!(exact.len(), 1, "bucket {b}");
            assert_eq!((exact[0].recall, exact[0].recall_se), (1.0, 0.0), "bucket {b}");
            assert!(exact[0].cost.is_finite() && exact[0].cost > 0.0, "bucket {b}: {}", exact[0].cost);
            if nq < 30 {
                continue; // too few queries: the bucket is not used
            }
            let n_terms = if b == 0 { 1 } else { BUCKETS[b - 1] + 1 };
            for target in [0.5, 0.9, 0.95, 0.99, 0.999] {
                let (p, r) = cal.choose(target, n_terms);
                let chosen = bucket.iter().find(|x| x.params == p).expect("a point of the bucket");
                assert!(chosen.cost <= exact[0].cost, "bucket {b} target {target}: {chosen:?} dearer than {exact:?}");
                assert!(r - 1.5 * chosen.recall_se >= target, "bucket {b} target {target}: {chosen:?}");
            }
        }
    }
}

#[test]
fn no_calibration_queries_is_an_error() {
    use sparsedex_core::search::approx::calibrate::calibrate_with;
    let (index, _, _, _) = corpus_with_float(9_000, 5);
    let e = calibrate_with(&index, Some(CsrRef { indptr: &[0], indices: &[], values: &[] }), 1).unwrap_err();
    assert!(e.to_string().contains("calibration queries: none given"), "{e}");
}

/// Queries of one common term: hundreds of documents share each 8-bit impact, and only the
/// float rerank tells them apart. A calibrated point reranking only k candidates (which
/// pseudo-queries of several terms, rarely tied, let through) reached 0.94 at target 0.95 on
/// debian; calibrations of quantized segments keep no such point (but the exact search's).
#[test]
fn one_common_term_queries_keep_their_recall() {
    use sparsedex_core::search::approx::calibrate::{cached, LAYERED};
    use sparsedex_core::search::approx::ApproxParams;
    let (index, float, _, vocab) = corpus_with_float(30_000, 23);
    let target = Algorithm::Approximate(RecallTarget::new(0.95).unwrap());
    let df = |t: u32| float.view().local_term(t).map_or(0, |l| float.view().df(l));
    let mut by_df: Vec<(u64, u32)> = (0..vocab).map(|t| (df(t), t)).filter(|x| x.0 > 0).collect();
    by_df.sort_unstable_by(|a, b| b.cmp(a));
    let (mut sum, n) = (0.0, 60);
    for &(_, t) in by_df.iter().take(n) {
        let q = QueryRef { terms: &[t], weights: &[1.7] };
        let want = search(&float, q, 10, Algorithm::Exhaustive).unwrap();
        sum += recall(&search(&index, q, 10, target).unwrap(), &want);
    }
    let r = sum / n as f64;
    assert!(r >= 0.945, "recall {r} at target 0.95");
    let c = cached(&index);
    assert!(!c.points.is_empty());
    for p in &c.points {
        assert!(p.params.rerank > 1.0 || p.params == ApproxParams::EXACT, "{:?}", p.params);
        assert!(LAYERED.contains(&(p.params.beta, p.params.gamma)), "{:?}", p.params);
    }
}

/// The high layers approximate search makes on its first layered search are memory the segment
/// keeps: `stats().derived_bytes` counts them from then on, and only then.
#[test]
fn stats_count_the_high_layers_once_made() {
    use sparsedex_core::search::approx::{search_with_params, ApproxParams};
    let (index, queries, _) = corpus(sparsedex_core::search::approx::MIN_DOCS as usize + 2_000, 7);
    let (terms, weights) = queries.row(0);
    let q = QueryRef { terms, weights };
    let before = index.stats().derived_bytes;
    search_with_params(&index, q, 10, ApproxParams { beta: 0.8, gamma: 0.0, rerank: 4.0 }).unwrap();
    assert_eq!(index.stats().derived_bytes, before, "a cut read whole makes no layer");
    search_with_params(&index, q, 10, ApproxParams { beta: 0.8, gamma: 0.1, rerank: 4.0 }).unwrap();
    let after = index.stats().derived_bytes;
    // 4 bytes of doc id and 1 of impact per layered posting, and more than a few postings
    assert!(after > before + 5 * 1_000, "{before} -> {after}");
    search_with_params(&index, q, 10, ApproxParams { beta: 0.8, gamma: 0.1, rerank: 4.0 }).unwrap();
    assert_eq!(index.stats().derived_bytes, after, "made once");
}

/// A segment's calibration counts the calibration queries it has evaluated, for a progress
/// display: nothing before, all of them after, the pseudo-queries of the buckets the queries
/// leave included (counted on, not from 0 again).
#[test]
fn calibration_progress_counts_the_queries_evaluated() {
    use sparsedex_core::search::approx::calibrate::{calibrate_with, set};
    let (index, queries, _) = corpus(sparsedex_core::search::approx::MIN_DOCS as usize + 1_000, 9);
    assert_eq!(index.calibration_progress(), (0, 0));
    let q = CsrRef { indptr: &queries.indptr, indices: &queries.indices, values: &queries.values };
    let c = calibrate_with(&index, Some(q), 1).unwrap();
    let n = queries.indptr.len() - 1;
    let (done, total) = index.calibration_progress();
    assert_eq!(done, total);
    // synthetic queries are of one length: the other buckets were filled by pseudo-queries
    assert!(c.from_pseudo.contains(&true), "{:?}", c.from_pseudo);
    let pseudo: usize = (0..6).filter(|&b| c.from_pseudo[b]).map(|b| c.queries[b]).sum();
    assert!(total >= n + pseudo, "{total} < {n} + {pseudo}");
    set(&index, c);
}

/// A u8 segment under `MIN_DOCS` is not calibrated: approximate search there is the exact
/// float search. Until stop 52 it reranked the segment's u8 top-4k by their float rows, which
/// misses the float top-k wherever more than 4k documents share its u8 score: here 200
/// weights within one 8-bit step, the best at the largest ids (the u8 top-4k, ties to the
/// smaller ids, held none of them).
#[test]
fn a_small_segment_is_searched_exactly() {
    let n = 200usize;
    let indptr: Vec<u64> = (0..=n as u64).collect();
    let indices = vec![7u32; n];
    let values: Vec<f32> = (0..n).map(|i| 100.0 + i as f32 * 1e-3).collect();
    let ix = build(
        CsrRef { indptr: &indptr, indices: &indices, values: &values },
        IdsInput::None,
        &BuildOptions {
            n_terms: None,
            quantization: Quantization::U8 { scale: None },
            store_vectors: true,
            reorder: Reorder::None,
        },
    )
    .unwrap()
    .index;
    let q = QueryRef { terms: &[7], weights: &[1.5] };
    for k in [1, 3, 10] {
        let exact = search(&ix, q, k, Algorithm::Exhaustive).unwrap();
        assert_eq!(exact[0].doc, n as u32 - 1, "the float top-1");
        for t in [0.5, 0.9, 0.99] {
            let got = search(&ix, q, k, Algorithm::Approximate(RecallTarget::new(t).unwrap())).unwrap();
            assert_eq!(got, exact, "k {k} target {t}");
        }
    }
}
