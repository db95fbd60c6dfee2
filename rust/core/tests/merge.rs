//! Merging segments with deletions gives exactly the index built from the surviving documents:
//! the same results (ids and scores) for every query, with a shared u8 grid, floats and BM25.

use proptest::prelude::*;
use sparsedex_core::index::build::{build_with, BuildOptions, CsrRef, IdsInput, Quantization, Reorder};
use sparsedex_core::index::{merge, Bm25Params, Id, Index, MergeOptions};
use sparsedex_core::reorder::BpOptions;
use sparsedex_core::search::{search, Algorithm, DocSet, QueryRef};

#[derive(Debug, Clone)]
struct Corpus {
    indptr: Vec<u64>,
    indices: Vec<u32>,
    values: Vec<f32>,
}

fn corpus(n: usize, vocab: u32, seed: u64, tf: bool) -> Corpus {
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
            if next() % 100 < (5 + 40 * (t % 3) as u64) {
                // Spread-out term ids: the merged dictionary is rebuilt from external ids.
                c.indices.push(t.wrapping_mul(2_654_435_761));
                c.values.push(if tf { (1 + next() % 4) as f32 } else { (1 + next() % 1000) as f32 / 97.0 });
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

fn build(c: &Corpus, ids: &[i64], doc_len: Option<&[u32]>, quantization: Quantization) -> (Index, Vec<u32>) {
    build_ordered(c, ids, doc_len, quantization, Reorder::Signature)
}

fn build_ordered(
    c: &Corpus,
    ids: &[i64],
    doc_len: Option<&[u32]>,
    quantization: Quantization,
    reorder: Reorder,
) -> (Index, Vec<u32>) {
    let opts = BuildOptions { n_terms: None, quantization, store_vectors: true, reorder };
    let b = build_with(
        CsrRef { indptr: &c.indptr, indices: &c.indices, values: &c.values },
        IdsInput::Int(ids),
        doc_len,
        &opts,
    )
    .unwrap();
    (b.index, b.order)
}

fn hits_by_id(ix: &Index, q: &[(u32, f32)], k: usize, algo: Algorithm) -> Vec<(i64, f32)> {
    let terms: Vec<u32> = q.iter().map(|e| e.0).collect();
    let weights: Vec<f32> = q.iter().map(|e| e.1).collect();
    search(ix, QueryRef { terms: &terms, weights: &weights }, k, algo)
        .unwrap()
        .into_iter()
        .map(|h| match ix.id(h.doc) {
            Some(Id::Int(x)) => (x, h.score),
            other => panic!("{other:?}"),
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn merge_equals_a_fresh_index_of_the_survivors(
        n in 1usize..700,
        seed in any::<u64>(),
        cuts in proptest::collection::vec(0.0f64..1.0, 0..4),
        deleted in 0.0f64..0.9,
        kind in 0u8..4,
        k in 1usize..30,
        order in 0u8..4,
    ) {
        // Every document order, at build and at merge (BP with small leaves, so that it moves
        // documents even in small segments).
        let reorder = match order {
            0 => Reorder::None,
            1 => Reorder::Signature,
            2 => Reorder::bp(),
            _ => Reorder::Bp(BpOptions { leaf_size: 2, align: 4, ..BpOptions::default() }),
        };
        let tf = kind >= 2;
        let c = corpus(n, 12, seed, tf);
        let max_w = c.values.iter().copied().fold(0.0f32, f32::max).max(1.0);
        let quantization = match kind {
            0 => Quantization::U8 { scale: Some(255.0 / max_w) },
            1 => Quantization::F32,
            k => Quantization::Bm25(Bm25Params { k1: 1.2, b: 0.75, quantized: k == 3 }),
        };
        // Document lengths a bit above the tf sums (BM25), ids spread out.
        let doc_len: Vec<u32> = (0..n).map(|r| {
            let (a, b) = (c.indptr[r] as usize, c.indptr[r + 1] as usize);
            c.values[a..b].iter().sum::<f32>() as u32 + (r % 7) as u32
        }).collect();
        let ids: Vec<i64> = (0..n as i64).map(|r| r * 1_000_003 - 500).collect();
        let mut bounds: Vec<usize> = cuts.iter().map(|f| (f * n as f64) as usize).collect();
        bounds.extend([0, n]);
        bounds.sort_unstable();
        bounds.dedup();
        let mut rng = seed ^ 0x5555;
        let mut members = Vec::new();
        let mut survivors: Vec<usize> = Vec::new();
        for w in bounds.windows(2) {
            let part: Vec<usize> = (w[0]..w[1]).collect();
            let pc = rows(&c, &part);
            let pid: Vec<i64> = part.iter().map(|&r| ids[r]).collect();
            let plen: Vec<u32> = part.iter().map(|&r| doc_len[r]).collect();
            let (ix, order) = build_ordered(&pc, &pid, tf.then_some(&plen[..]), quantization, reorder);
            let live: Vec<u32> = (0..ix.n_docs()).filter(|_| {
                rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
                (rng % 1000) as f64 >= deleted * 1000.0
            }).collect();
            survivors.extend(live.iter().map(|&d| part[order[d as usize] as usize]));
            let set = DocSet::from_docs(live, ix.n_docs()).unwrap();
            members.push((ix, set));
        }
        let refs: Vec<(&Index, Option<&DocSet>)> = members.iter().map(|(ix, s)| (ix, Some(s))).collect();
        let opts = MergeOptions { quantization: if tf { None } else { Some(quantization) }, reorder };
        let merged = merge(&refs, &opts).unwrap();
        prop_assert_eq!(merged.index.n_docs() as usize, survivors.len());
        // Where each merged document came from: same id, same stored vector.
        for (d, &(m, od)) in merged.origin.iter().enumerate() {
            let member = &members[m as usize].0;
            prop_assert!(members[m as usize].1.contains(od));
            prop_assert_eq!(merged.index.id(d as u32), member.id(od));
            prop_assert_eq!(merged.index.vector(d as u32).unwrap(), member.vector(od).unwrap());
        }
        // The fresh index over the survivors, in the order the merge gathers them.
        let fc = rows(&c, &survivors);
        let fid: Vec<i64> = survivors.iter().map(|&r| ids[r]).collect();
        let flen: Vec<u32> = survivors.iter().map(|&r| doc_len[r]).collect();
        let (fresh, _) = build_ordered(&fc, &fid, tf.then_some(&flen[..]), quantization, reorder);
        prop_assert_eq!(fresh.stats().scale, merged.index.stats().scale);
        for qseed in 0..4u32 {
            let q: Vec<(u32, f32)> = (0..12u32).filter(|t| (t * 7 + qseed) % 3 == 0)
                .map(|t| (t.wrapping_mul(2_654_435_761), if tf { 1.0 } else { 0.5 + (t % 4) as f32 })).collect();
            for algo in [Algorithm::Exhaustive, Algorithm::Auto, Algorithm::BlockMaxWand] {
                prop_assert_eq!(hits_by_id(&merged.index, &q, k, algo), hits_by_id(&fresh, &q, k, algo));
            }
        }
    }
}

#[test]
fn merge_refuses_what_it_cannot_merge() {
    let c = corpus(20, 6, 1, true);
    let ids: Vec<i64> = (0..20).collect();
    let (bm, _) = build(&c, &ids, None, Quantization::Bm25(Bm25Params { k1: 1.2, b: 0.75, quantized: false }));
    let (other_bm, _) = build(
        &c,
        &(100..120).collect::<Vec<i64>>(),
        None,
        Quantization::Bm25(Bm25Params { k1: 0.9, b: 0.75, quantized: false }),
    );
    let (plain, _) = build(&c, &(200..220).collect::<Vec<i64>>(), None, Quantization::F32);
    let (dup, _) = build(&c, &ids, None, Quantization::Bm25(Bm25Params { k1: 1.2, b: 0.75, quantized: false }));
    let opts = MergeOptions::default();
    for (members, want) in [
        (vec![&bm, &other_bm], "different parameters"),
        (vec![&bm, &plain], "another kind"),
        (vec![&bm, &dup], "duplicate"),
    ] {
        let refs: Vec<(&Index, Option<&DocSet>)> = members.into_iter().map(|ix| (ix, None)).collect();
        let err = merge(&refs, &opts).unwrap_err().to_string();
        assert!(err.contains(want), "{err}");
    }
    let no_vectors = sparsedex_core::index::build::build(
        CsrRef { indptr: &c.indptr, indices: &c.indices, values: &c.values },
        IdsInput::None,
        &BuildOptions { store_vectors: false, ..BuildOptions::default() },
    )
    .unwrap()
    .index;
    let err = merge(&[(&no_vectors, None)], &opts).unwrap_err().to_string();
    assert!(err.contains("does not store its vectors"), "{err}");
    // Nothing live: an empty segment.
    let none = DocSet::from_docs([], 20).unwrap();
    let m = merge(&[(&bm, Some(&none))], &opts).unwrap();
    assert_eq!(m.index.n_docs(), 0);
    assert!(m.origin.is_empty());
}

/// The bytes of an index's file.
fn image(ix: &Index, dir: &std::path::Path, name: &str) -> Vec<u8> {
    let p = dir.join(name);
    ix.save(&p).unwrap();
    std::fs::read(p).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// A merge without reordering concatenates the members' postings when their impacts share
    /// a grid, and writes exactly the image a fresh build of the survivors (in member order,
    /// not reordered) writes: same bytes, hence same ids, scores and tie order. Members on
    /// another u8 grid make it fall back to the rebuild (same results).
    #[test]
    fn concatenation_writes_the_image_of_a_fresh_build(
        n in 1usize..600,
        seed in any::<u64>(),
        cuts in proptest::collection::vec(0.0f64..1.0, 0..5),
        deleted in 0.0f64..0.95,
        kind in 0u8..4,
        id_kind in 0u8..3,
        member_order in 0u8..3,
        own_grid in any::<bool>(),
        vocab in any::<bool>(),
        k in 1usize..40,
    ) {
        let tf = kind >= 2;
        let c = corpus(n, 14, seed, tf);
        let max_w = c.values.iter().copied().fold(0.0f32, f32::max).max(1.0);
        let shared = Quantization::U8 { scale: Some(255.0 / max_w) };
        let quantization = match kind {
            0 => shared,
            1 => Quantization::F32,
            k => Quantization::Bm25(Bm25Params { k1: 1.2, b: 0.75, quantized: k == 3 }),
        };
        let doc_len: Vec<u32> = (0..n).map(|r| {
            let (a, b) = (c.indptr[r] as usize, c.indptr[r + 1] as usize);
            c.values[a..b].iter().sum::<f32>() as u32 + (r % 5) as u32
        }).collect();
        let int_ids: Vec<i64> = (0..n as i64).map(|r| (r * 7_919) % 100_003 - 50_000).collect();
        let str_ids: Vec<String> = (0..n).map(|r| format!("doc-{}", (r * 31) % 1009 + 1009 * r)).collect();
        let n_terms = vocab.then_some(u32::MAX);
        let build_part = |rows_: &[usize], q: Quantization, order: Reorder| -> (Index, Vec<u32>) {
            let pc = rows(&c, rows_);
            let plen: Vec<u32> = rows_.iter().map(|&r| doc_len[r]).collect();
            let pint: Vec<i64> = rows_.iter().map(|&r| int_ids[r]).collect();
            let pstr: Vec<String> = rows_.iter().map(|&r| str_ids[r].clone()).collect();
            let ids = match id_kind {
                0 => IdsInput::Int(&pint),
                1 => IdsInput::Str(&pstr),
                _ => IdsInput::None,
            };
            let opts = BuildOptions { n_terms, quantization: q, store_vectors: true, reorder: order };
            let b = build_with(
                CsrRef { indptr: &pc.indptr, indices: &pc.indices, values: &pc.values },
                ids,
                tf.then_some(&plen[..]),
                &opts,
            )
            .unwrap();
            (b.index, b.order)
        };
        // Without ids a document's id is its row: only one member then keeps ids meaningful.
        let mut bounds: Vec<usize> = if id_kind == 2 { vec![] } else { cuts.iter().map(|f| (f * n as f64) as usize).collect() };
        bounds.extend([0, n]);
        bounds.sort_unstable();
        bounds.dedup();
        let mut rng = seed ^ 0xabcd;
        let mut members = Vec::new();
        let mut survivors: Vec<usize> = Vec::new();
        let mut grids_agree = true;
        for (i, w) in bounds.windows(2).enumerate() {
            let part: Vec<usize> = (w[0]..w[1]).collect();
            let order = match member_order { 0 => Reorder::None, 1 => Reorder::Signature, _ => Reorder::bp() };
            // The last member on its own grid (when asked): no concatenation.
            let q = if kind == 0 && own_grid && i + 1 == bounds.len() - 1 && i > 0 {
                grids_agree = false;
                Quantization::U8 { scale: Some(200.0 / max_w) }
            } else {
                quantization
            };
            let (ix, order) = build_part(&part, q, order);
            let live: Vec<u32> = (0..ix.n_docs()).filter(|_| {
                rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
                (rng % 1000) as f64 >= deleted * 1000.0
            }).collect();
            survivors.extend(live.iter().map(|&d| part[order[d as usize] as usize]));
            let set = DocSet::from_docs(live, ix.n_docs()).unwrap();
            members.push((ix, set));
        }
        let refs: Vec<(&Index, Option<&DocSet>)> = members.iter().map(|(ix, s)| (ix, Some(s))).collect();
        let opts = MergeOptions { quantization: if tf { None } else { Some(quantization) }, reorder: Reorder::None };
        let merged = merge(&refs, &opts).unwrap();
        prop_assert_eq!(merged.concatenated, grids_agree);
        prop_assert!(!merged.index.view().members_order);
        let (fresh, order) = build_part(&survivors, quantization, Reorder::None);
        prop_assert!(order.iter().enumerate().all(|(i, &r)| i as u32 == r));
        if grids_agree {
            let dir = tempfile::tempdir().unwrap();
            prop_assert!(image(&merged.index, dir.path(), "m") == image(&fresh, dir.path(), "f"));
        }
        for qseed in 0..3u32 {
            let q: Vec<(u32, f32)> = (0..14u32).filter(|t| (t * 5 + qseed) % 3 != 0)
                .map(|t| (t.wrapping_mul(2_654_435_761), if tf { 1.0 } else { 0.25 + (t % 5) as f32 })).collect();
            let terms: Vec<u32> = q.iter().map(|e| e.0).collect();
            let weights: Vec<f32> = q.iter().map(|e| e.1).collect();
            for algo in [Algorithm::Exhaustive, Algorithm::Auto, Algorithm::BlockMaxWand] {
                let got: Vec<(u32, f32)> = search(&merged.index, QueryRef { terms: &terms, weights: &weights }, k, algo)
                    .unwrap().into_iter().map(|h| (h.doc, h.score)).collect();
                let want: Vec<(u32, f32)> = search(&fresh, QueryRef { terms: &terms, weights: &weights }, k, algo)
                    .unwrap().into_iter().map(|h| (h.doc, h.score)).collect();
                if grids_agree {
                    prop_assert_eq!(got, want);
                } else {
                    prop_assert_eq!(got.len(), want.len());
                }
            }
        }
    }
}

/// A concatenation over more than 65,536 merged terms (stored term ids 32 bits wide), members
/// with and without deletions, ids interleaved across members (the merged `ids_sorted` comes
/// from the members' sorted runs) and the largest weight on impact 255 (its member's values
/// are scanned, the others' are not): the image of a fresh build of the survivors, byte for
/// byte.
#[test]
fn wide_concatenation_writes_the_image_of_a_fresh_build() {
    let n = 3_000usize;
    let (mut indptr, mut indices, mut values) = (vec![0u64], Vec::new(), Vec::new());
    for r in 0..n {
        // 30 distinct terms per row out of 90,000 (about 86k distinct in all).
        let mut t: Vec<u32> = (0..30u32).map(|j| ((r as u32 * 30 + j) * 7_919) % 90_000).collect();
        t.sort_unstable();
        t.dedup();
        for (j, &x) in t.iter().enumerate() {
            indices.push(x);
            values.push(0.5 + ((r * 31 + j * 7) % 97) as f32 / 10.0);
        }
        indptr.push(indices.len() as u64);
    }
    values[12_345] = 20.0; // the largest weight: impact 255 on the shared scale
    let c = Corpus { indptr, indices, values };
    let max_w = 20.0f32;
    let q = Quantization::U8 { scale: Some(255.0 / max_w) };
    // Ids interleave across members: member i holds rows i, i + 3, ... with id 3 * row.
    let ids: Vec<i64> = (0..n as i64).map(|r| 3 * r).collect();
    let parts: Vec<Vec<usize>> = (0..3).map(|i| (i..n).step_by(3).collect()).collect();
    let opts = BuildOptions { n_terms: None, quantization: q, store_vectors: true, reorder: Reorder::None };
    let build_rows = |rows_: &[usize]| -> Index {
        let pc = rows(&c, rows_);
        let pids: Vec<i64> = rows_.iter().map(|&r| ids[r]).collect();
        build_with(
            CsrRef { indptr: &pc.indptr, indices: &pc.indices, values: &pc.values },
            IdsInput::Int(&pids),
            None,
            &opts,
        )
        .unwrap()
        .index
    };
    let members: Vec<Index> = parts.iter().map(|p| build_rows(p)).collect();
    // Member 1 loses every fifth document; members 0 and 2 keep all of theirs.
    let live1: Vec<u32> = (0..members[1].n_docs()).filter(|d| d % 5 != 0).collect();
    let set1 = DocSet::from_docs(live1.clone(), members[1].n_docs()).unwrap();
    let refs: Vec<(&Index, Option<&DocSet>)> =
        vec![(&members[0], None), (&members[1], Some(&set1)), (&members[2], None)];
    let merged = merge(&refs, &MergeOptions { quantization: Some(q), reorder: Reorder::None }).unwrap();
    assert!(merged.concatenated);
    let mut survivors: Vec<usize> = parts[0].clone();
    survivors.extend(live1.iter().map(|&d| parts[1][d as usize]));
    survivors.extend(parts[2].iter().copied());
    let fresh = build_rows(&survivors);
    assert!(fresh.view().n_terms as usize > 65_536);
    let dir = tempfile::tempdir().unwrap();
    assert!(image(&merged.index, dir.path(), "m") == image(&fresh, dir.path(), "f"));
    // Every id found where it is.
    for (d, &r) in survivors.iter().enumerate().step_by(97) {
        assert_eq!(merged.index.view().ids.locate(Id::Int(ids[r]), merged.index.n_docs()), Some(d as u32));
    }
}
