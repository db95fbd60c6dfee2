//! Merging segments with deletions gives exactly the index built from the surviving documents:
//! the same results (ids and scores) for every query, with a shared u8 grid, floats and BM25.

use proptest::prelude::*;
use sparsedex_core::index::build::{build_with, BuildOptions, CsrRef, IdsInput, Quantization, Reorder};
use sparsedex_core::index::{merge, Bm25Params, Id, Index, MergeOptions};
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
    let opts = BuildOptions { n_terms: None, quantization, store_vectors: true, reorder: Reorder::Signature };
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
    ) {
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
            let (ix, order) = build(&pc, &pid, tf.then_some(&plen[..]), quantization);
            let live: Vec<u32> = (0..ix.n_docs()).filter(|_| {
                rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
                (rng % 1000) as f64 >= deleted * 1000.0
            }).collect();
            survivors.extend(live.iter().map(|&d| part[order[d as usize] as usize]));
            let set = DocSet::from_docs(live, ix.n_docs()).unwrap();
            members.push((ix, set));
        }
        let refs: Vec<(&Index, Option<&DocSet>)> = members.iter().map(|(ix, s)| (ix, Some(s))).collect();
        let opts = MergeOptions { quantization: if tf { None } else { Some(quantization) }, reorder: Reorder::Signature };
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
        let (fresh, _) = build(&fc, &fid, tf.then_some(&flen[..]), quantization);
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
