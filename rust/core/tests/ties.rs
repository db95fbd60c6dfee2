//! The canonical order of results: score descending, then document id ascending, whatever the
//! layout. Random corpora with many ties (few distinct weights), random (non-monotone) ids,
//! every document order the builder offers (BP, signature), split into segments, some of
//! them merged, with deletions: every algorithm returns exactly the brute-force sort of every
//! live document by (score desc, id asc), cut at k.

use proptest::prelude::*;
use sparsedex_core::index::build::{build, BuildOptions, CsrRef, IdsInput, Quantization, Reorder};
use sparsedex_core::index::{merge, Id, Index, MergeOptions};
use sparsedex_core::reorder::BpOptions;
use sparsedex_core::search::{search_segments, Algorithm, DocSet, QueryRef, Segment};
use std::collections::HashMap;

#[derive(Debug, Clone)]
struct Corpus {
    indptr: Vec<u64>,
    indices: Vec<u32>,
    values: Vec<f32>,
}

/// `n` documents over `vocab` terms with weights among `levels` values: many equal scores.
fn corpus(n: usize, vocab: u32, levels: u32, seed: u64) -> Corpus {
    let mut rng = seed | 1;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut c = Corpus { indptr: vec![0], indices: vec![], values: vec![] };
    for _ in 0..n {
        for t in 0..vocab {
            // term t appears with probability ~ 1 / (1 + t / 2): long and short lists
            if next() % (2 + t as u64) < 2 {
                c.indices.push(t);
                c.values.push(1.0 + (next() % levels as u64) as f32 * 0.5);
            }
        }
        c.indptr.push(c.indices.len() as u64);
    }
    c
}

fn rows(c: &Corpus, rows: &[usize]) -> Corpus {
    let mut out = Corpus { indptr: vec![0], indices: vec![], values: vec![] };
    for &r in rows {
        let (a, b) = (c.indptr[r] as usize, c.indptr[r + 1] as usize);
        out.indices.extend_from_slice(&c.indices[a..b]);
        out.values.extend_from_slice(&c.values[a..b]);
        out.indptr.push(out.indices.len() as u64);
    }
    out
}

fn reorder_of(i: u8) -> Reorder {
    match i % 4 {
        0 => Reorder::None,
        1 => Reorder::Signature,
        2 => Reorder::bp(),
        _ => Reorder::Bp(BpOptions { leaf_size: 2, align: 1, ..BpOptions::default() }),
    }
}

/// Integer id of a hit.
fn int_id(ix: &Index, doc: u32) -> i64 {
    match ix.id(doc) {
        Some(Id::Int(x)) => x,
        other => panic!("doc {doc} has id {other:?}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn ties_are_ordered_by_id_across_layouts(
        n in 1usize..700,
        vocab in 2u32..10,
        levels in 1u32..4,
        seed in any::<u64>(),
        n_segs in 1usize..5,
        merged in any::<bool>(),
        reorders in proptest::collection::vec(0u8..4, 5),
        del_every in prop_oneof![Just(0usize), 2usize..9],
        float in any::<bool>(),
        qs in proptest::collection::vec(proptest::collection::btree_map(0u32..12, prop_oneof![Just(1.0f32), Just(2.0f32), 0.5f32..3.0], 1..6), 1..4),
        k in 1usize..60,
    ) {
        let c = corpus(n, vocab, levels, seed);
        // Random distinct ids, unrelated to the input order.
        let mut rng = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let mut ids: Vec<i64> = (0..n as i64).map(|r| r * 3 - 500).collect();
        for i in (1..n).rev() {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            ids.swap(i, (rng % (i as u64 + 1)) as usize);
        }
        let max_w = c.values.iter().copied().fold(0.0f32, f32::max);
        let quantization = if float || max_w <= 0.0 { Quantization::F32 } else { Quantization::U8 { scale: Some(255.0 / max_w) } };
        // Split the rows round-robin into segments, each with its own document order.
        let mut parts: Vec<(Index, Option<DocSet>)> = Vec::new();
        for s in 0..n_segs {
            let rs: Vec<usize> = (s..n).step_by(n_segs).collect();
            if rs.is_empty() {
                continue;
            }
            let sc = rows(&c, &rs);
            let sids: Vec<i64> = rs.iter().map(|&r| ids[r]).collect();
            let opts = BuildOptions { n_terms: None, quantization, store_vectors: true, reorder: reorder_of(reorders[s]) };
            let ix = build(CsrRef { indptr: &sc.indptr, indices: &sc.indices, values: &sc.values }, IdsInput::Int(&sids), &opts).unwrap().index;
            // Delete every `del_every`-th document by id.
            let del = if del_every == 0 {
                None
            } else {
                let nd = ix.n_docs();
                let live: Vec<u32> = (0..nd).filter(|&d| int_id(&ix, d).rem_euclid(del_every as i64) != 0).collect();
                Some(DocSet::from_docs(live, nd).unwrap())
            };
            parts.push((ix, del));
        }
        if merged && parts.len() > 1 {
            // Merge the first two segments (dropping their deleted documents).
            let (a, b) = (parts.remove(0), parts.remove(0));
            let opts = MergeOptions { quantization: Some(quantization), reorder: reorder_of(reorders[4]) };
            let m = merge(&[(&a.0, a.1.as_ref()), (&b.0, b.1.as_ref())], &opts).unwrap().index;
            parts.insert(0, (m, None));
        }
        let segs: Vec<Segment<'_>> = parts.iter().map(|(ix, al)| Segment { index: ix, allowed: al.as_ref() }).collect();
        for q in &qs {
            let terms: Vec<u32> = q.keys().copied().collect();
            let weights: Vec<f32> = q.values().copied().collect();
            let qr = QueryRef { terms: &terms, weights: &weights };
            // Brute force: every live document's score (the exhaustive scorer's, per segment),
            // sorted by (score desc, id asc).
            let mut all: Vec<(f32, i64)> = Vec::new();
            for s in &segs {
                let one = [*s];
                for h in search_segments(&one, qr, s.index.n_docs().max(1) as usize, Algorithm::Exhaustive, None).unwrap() {
                    all.push((h.score, int_id(s.index, h.doc)));
                }
            }
            all.sort_by(|a, b| b.0.partial_cmp(&a.0).unwrap().then(a.1.cmp(&b.1)));
            all.truncate(k);
            let ties = all.windows(2).filter(|w| w[0].0 == w[1].0).count();
            for algo in Algorithm::ALL {
                let got: Vec<(f32, i64)> = search_segments(&segs, qr, k, algo, None)
                    .unwrap()
                    .into_iter()
                    .map(|h| (h.score, int_id(segs[h.segment as usize].index, h.doc)))
                    .collect();
                prop_assert_eq!(&got, &all, "{} over {} segments, k={}, {} ties", algo, segs.len(), k, ties);
            }
        }
    }
}

/// The same corpus as one segment in input order, one BP-reordered segment, and ten
/// BP-reordered segments: identical results, ids and order, for every algorithm.
#[test]
fn one_segment_or_many_any_order_same_ranking() {
    let c = corpus(3000, 8, 2, 7);
    let n = c.indptr.len() - 1;
    let ids: Vec<i64> = (0..n as i64).map(|r| (r * 7_919) % 10_007).collect();
    let q = QueryRef { terms: &[0, 1, 2, 5], weights: &[1.0, 1.0, 2.0, 1.0] };
    let scale = Some(255.0 / c.values.iter().copied().fold(0.0f32, f32::max));
    let build_rows = |rs: &[usize], reorder: Reorder| {
        let sc = rows(&c, rs);
        let sids: Vec<i64> = rs.iter().map(|&r| ids[r]).collect();
        let opts =
            BuildOptions { n_terms: None, quantization: Quantization::U8 { scale }, store_vectors: true, reorder };
        build(CsrRef { indptr: &sc.indptr, indices: &sc.indices, values: &sc.values }, IdsInput::Int(&sids), &opts)
            .unwrap()
            .index
    };
    let all: Vec<usize> = (0..n).collect();
    let plain = build_rows(&all, Reorder::None);
    let bp = build_rows(&all, Reorder::bp());
    let tens: Vec<Index> =
        (0..10).map(|s| build_rows(&(s..n).step_by(10).collect::<Vec<_>>(), Reorder::bp())).collect();
    let run = |ixs: &[&Index], algo: Algorithm| -> Vec<(f32, i64)> {
        let segs: Vec<Segment<'_>> = ixs.iter().map(|ix| Segment { index: ix, allowed: None }).collect();
        search_segments(&segs, q, 100, algo, None)
            .unwrap()
            .into_iter()
            .map(|h| (h.score, int_id(ixs[h.segment as usize], h.doc)))
            .collect()
    };
    let want = run(&[&plain], Algorithm::Exhaustive);
    let scores: HashMap<i64, f32> = want.iter().map(|&(s, id)| (id, s)).collect();
    assert!(want.windows(2).filter(|w| w[0].0 == w[1].0).count() > 50, "the query should tie a lot");
    assert_eq!(scores.len(), 100);
    let ten_refs: Vec<&Index> = tens.iter().collect();
    for algo in Algorithm::ALL {
        assert_eq!(run(&[&plain], algo), want, "{algo}: one segment, input order");
        assert_eq!(run(&[&bp], algo), want, "{algo}: one segment, BP order");
        assert_eq!(run(&ten_refs, algo), want, "{algo}: ten segments, BP order");
    }
}
