//! Float scores do not depend on how an index numbers its terms or in which order its
//! documents came: the same documents give bit-identical f32 scores, the same ids and the same
//! tie order, whether in one index, in an index with another term numbering and another
//! document order, or split into shards that each number terms their own way (as each BM25
//! dictionary does) and are searched with the whole collection's statistics and merged by
//! (score descending, id ascending).

use proptest::prelude::*;
use sparsedex_core::index::build::{build, build_with, BuildOptions, CsrRef, IdsInput, Quantization, Reorder};
use sparsedex_core::index::{Bm25Params, Id, Index};
use sparsedex_core::search::{search_with, Algorithm, Bm25Stats, QueryRef};

/// Documents as (term, weight) rows (weights: term frequencies for BM25), with lengths.
#[derive(Debug, Clone)]
struct Docs {
    rows: Vec<Vec<(u32, f32)>>,
    len: Option<Vec<u32>>,
}

fn xorshift(seed: u64) -> impl FnMut() -> u64 {
    let mut r = seed | 1;
    move || {
        r ^= r << 13;
        r ^= r >> 7;
        r ^= r << 17;
        r
    }
}

/// `n` documents over `vocab` terms (a few frequent, many rare, as words are), weights from
/// `tf` (term frequencies) or continuous (vectors), lengths given or not.
fn docs(n: usize, vocab: u32, seed: u64, tf: bool, given_len: bool) -> Docs {
    let mut next = xorshift(seed);
    let mut rows = Vec::with_capacity(n);
    for _ in 0..n {
        let mut row = Vec::new();
        for t in 0..vocab {
            // term t appears with probability ~ 1 / (1 + t/2): a Zipf-like vocabulary
            if next() % (2 + t as u64) < 2 {
                let w = if tf {
                    match next() % 8 {
                        0..=4 => 1.0,
                        5 | 6 => 2.0,
                        _ => (3 + next() % 40) as f32,
                    }
                } else {
                    (next() % 100_000) as f32 / 7919.0 + 0.001
                };
                row.push((t, w));
            }
        }
        rows.push(row);
    }
    let len = given_len
        .then(|| rows.iter().map(|r| r.iter().map(|e| e.1).sum::<f32>() as u32 + (next() % 30) as u32).collect());
    Docs { rows, len }
}

/// A random permutation of `0..n`.
fn permutation(n: usize, seed: u64) -> Vec<usize> {
    let mut next = xorshift(seed);
    let mut p: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        p.swap(i, (next() % (i as u64 + 1)) as usize);
    }
    p
}

/// An index over the documents `which` (in that order) with term `t` numbered `terms[t]`.
fn build_part(d: &Docs, which: &[usize], terms: &[u32], quantization: Quantization, reorder: Reorder) -> Index {
    let (mut indptr, mut indices, mut values) = (vec![0u64], Vec::new(), Vec::new());
    for &i in which {
        for &(t, w) in &d.rows[i] {
            indices.push(terms[t as usize]);
            values.push(w);
        }
        indptr.push(indices.len() as u64);
    }
    let ids: Vec<i64> = which.iter().map(|&i| i as i64 * 31 - 500).collect();
    let len: Option<Vec<u32>> = d.len.as_ref().map(|l| which.iter().map(|&i| l[i]).collect());
    let csr = CsrRef { indptr: &indptr, indices: &indices, values: &values };
    let opts = BuildOptions { n_terms: None, quantization, store_vectors: true, reorder };
    match quantization {
        Quantization::Bm25(_) => build_with(csr, IdsInput::Int(&ids), len.as_deref(), &opts),
        _ => build(csr, IdsInput::Int(&ids), &opts),
    }
    .unwrap()
    .index
}

/// The collection statistics of a query in one index's term numbering: the whole
/// collection's N and total length, with each query term's document frequency.
fn stats_for(whole: &Bm25Stats, q: &[(u32, f32)], terms: &[u32]) -> Bm25Stats {
    let df = q.iter().map(|&(t, _)| whole.df_of(t).unwrap()).collect();
    Bm25Stats::new(whole.n_docs(), whole.total_len(), q.iter().map(|&(t, _)| terms[t as usize]).collect(), df).unwrap()
}

/// Top-`k` of one index as (id, score), best first.
fn top(
    ix: &Index,
    q: &[(u32, f32)],
    terms: &[u32],
    k: usize,
    algo: Algorithm,
    stats: Option<&Bm25Stats>,
) -> Vec<(i64, f32)> {
    let t: Vec<u32> = q.iter().map(|&(t, _)| terms[t as usize]).collect();
    let w: Vec<f32> = q.iter().map(|&(_, w)| w).collect();
    search_with(ix, QueryRef { terms: &t, weights: &w }, k, algo, None, stats)
        .unwrap()
        .into_iter()
        .map(|h| match ix.id(h.doc) {
            Some(Id::Int(x)) => (x, h.score),
            other => panic!("doc {} has id {other:?}", h.doc),
        })
        .collect()
}

/// The merge of per-shard top-k lists: score descending, then id ascending, first `k`.
fn merge(mut hits: Vec<(i64, f32)>, k: usize) -> Vec<(i64, f32)> {
    hits.sort_by(|a, b| b.1.partial_cmp(&a.1).unwrap().then(a.0.cmp(&b.0)));
    hits.truncate(k);
    hits
}

fn query(vocab: u32, seed: u64, tf: bool) -> Vec<(u32, f32)> {
    let mut next = xorshift(seed);
    let mut q: Vec<(u32, f32)> = Vec::new();
    for t in 0..vocab {
        if next().is_multiple_of(3) {
            q.push((t, if tf { (1 + next() % 3) as f32 } else { (next() % 1000) as f32 / 211.0 + 0.01 }));
        }
    }
    if q.is_empty() {
        q.push((0, 1.0));
    }
    q
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, ..ProptestConfig::default() })]

    /// Float BM25: another term numbering and another document order (one index), and shards
    /// that each number terms their own way, give bit-identical scores to one index, for every
    /// algorithm.
    #[test]
    fn bm25_float_scores_do_not_depend_on_term_numbering_or_document_order(
        n in 1usize..700,
        vocab in 2u32..40,
        seed in any::<u64>(),
        given_len in any::<bool>(),
        n_shards in 1usize..5,
        k1 in prop_oneof![Just(1.2f32), 0.0f32..3.0],
        b in prop_oneof![Just(0.75f32), 0.0f32..1.0],
        bp in any::<bool>(),
        kf in 0.0f64..1.0,
    ) {
        let d = docs(n, vocab, seed, true, given_len);
        let quantization = Quantization::Bm25(Bm25Params { k1, b, quantized: false });
        let reorder = if bp { Reorder::Signature } else { Reorder::None };
        let identity: Vec<u32> = (0..vocab).collect();
        let all: Vec<usize> = (0..n).collect();
        let single = build_part(&d, &all, &identity, quantization, Reorder::None);
        // another numbering (a dictionary that met the terms in another order), another order
        let renum: Vec<u32> = permutation(vocab as usize, seed ^ 1).into_iter().map(|t| t as u32).collect();
        let other = build_part(&d, &permutation(n, seed ^ 2), &renum, quantization, reorder);
        // shards: documents routed by a hash of their position, each shard its own numbering
        let mut parts: Vec<Vec<usize>> = vec![Vec::new(); n_shards];
        for i in permutation(n, seed ^ 3) {
            parts[(i.wrapping_mul(0x9E37_79B9) >> 7) % n_shards].push(i);
        }
        let shards: Vec<(Index, Vec<u32>)> = parts
            .iter()
            .enumerate()
            .map(|(s, p)| {
                let num: Vec<u32> = permutation(vocab as usize, seed ^ (10 + s as u64)).into_iter().map(|t| t as u32 * 3 + 7).collect();
                (build_part(&d, p, &num, quantization, reorder), num)
            })
            .collect();
        let everything = Bm25Stats::of_indexes(&[&single], &identity);
        let k = 1 + (kf * n as f64) as usize;
        for qs in 0..3u64 {
            let q = query(vocab, seed ^ (100 + qs), true);
            let st = stats_for(&everything, &q, &identity);
            let want = top(&single, &q, &identity, k, Algorithm::Exhaustive, Some(&st));
            let want_all = top(&single, &q, &identity, n, Algorithm::Exhaustive, Some(&st));
            for algo in Algorithm::ALL {
                let got = top(&other, &q, &renum, k, algo, Some(&stats_for(&everything, &q, &renum)));
                prop_assert_eq!(&got, &want, "renumbered and reordered, {}", algo);
                let mut hits = Vec::new();
                for (ix, num) in &shards {
                    if ix.n_docs() > 0 {
                        hits.extend(top(ix, &q, num, k, algo, Some(&stats_for(&everything, &q, num))));
                    }
                }
                prop_assert_eq!(&merge(hits, k), &want, "{} shards, {}", n_shards, algo);
            }
            // and the own statistics of the renumbered index are the same numbers
            prop_assert_eq!(top(&other, &q, &renum, n, Algorithm::Exhaustive, None), want_all);
        }
    }

    /// Float vectors: another document order and shards give bit-identical scores (their
    /// term ids are the caller's, the same everywhere).
    #[test]
    fn float_vector_scores_do_not_depend_on_document_order(
        n in 1usize..700,
        vocab in 2u32..40,
        seed in any::<u64>(),
        n_shards in 1usize..5,
        bp in any::<bool>(),
        kf in 0.0f64..1.0,
    ) {
        let d = docs(n, vocab, seed, false, false);
        let reorder = if bp { Reorder::Signature } else { Reorder::None };
        let identity: Vec<u32> = (0..vocab).collect();
        let all: Vec<usize> = (0..n).collect();
        let single = build_part(&d, &all, &identity, Quantization::F32, Reorder::None);
        let other = build_part(&d, &permutation(n, seed ^ 2), &identity, Quantization::F32, reorder);
        let mut parts: Vec<Vec<usize>> = vec![Vec::new(); n_shards];
        for i in permutation(n, seed ^ 3) {
            parts[(i.wrapping_mul(0x9E37_79B9) >> 7) % n_shards].push(i);
        }
        let shards: Vec<Index> = parts.iter().map(|p| build_part(&d, p, &identity, Quantization::F32, reorder)).collect();
        let k = 1 + (kf * n as f64) as usize;
        for qs in 0..3u64 {
            let q = query(vocab, seed ^ (100 + qs), false);
            let want = top(&single, &q, &identity, k, Algorithm::Exhaustive, None);
            for algo in Algorithm::ALL {
                prop_assert_eq!(&top(&other, &q, &identity, k, algo, None), &want, "reordered, {}", algo);
                let hits: Vec<(i64, f32)> = shards
                    .iter()
                    .filter(|ix| ix.n_docs() > 0)
                    .flat_map(|ix| top(ix, &q, &identity, k, algo, None))
                    .collect();
                prop_assert_eq!(&merge(hits, k), &want, "{} shards, {}", n_shards, algo);
            }
        }
    }
}

/// The regression the fixed-point sum fixes: three contributions whose f32 sum depends on the
/// order, in two indexes that number the terms in opposite orders.
#[test]
fn bm25_float_sum_is_the_same_in_both_term_orders() {
    // doc 0 holds terms a, b, c with tf 1, 3, 40; docs 1..=40 make df and lengths differ.
    let mut rows = vec![vec![(0u32, 1.0f32), (1, 3.0), (2, 40.0)]];
    for i in 1..40u32 {
        rows.push(vec![((i % 3), (1 + i % 5) as f32)]);
    }
    let d = Docs { rows, len: None };
    let quantization = Quantization::Bm25(Bm25Params { k1: 1.2, b: 0.75, quantized: false });
    let all: Vec<usize> = (0..d.rows.len()).collect();
    let fwd = build_part(&d, &all, &[0, 1, 2], quantization, Reorder::None);
    let rev = build_part(&d, &all, &[2, 1, 0], quantization, Reorder::None);
    let q = [(0u32, 1.0f32), (1, 1.0), (2, 1.0)];
    let a = top(&fwd, &q, &[0, 1, 2], 40, Algorithm::Exhaustive, None);
    let b = top(&rev, &q, &[2, 1, 0], 40, Algorithm::Exhaustive, None);
    assert_eq!(a, b);
}
