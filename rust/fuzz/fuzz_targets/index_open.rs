//! Any bytes given to `Index::from_image` yield `Ok` or a corruption error, never a panic,
//! hang or out-of-bounds read; an index that opens can be searched (every algorithm),
//! explained and read (stored vectors, ids) without a panic. Results on a corrupt index need
//! not be right, only safe.
//!
//! Inputs are resealed (every CRC recomputed) before parsing: a mutated index file would
//! otherwise almost never get past its checksums, and the point here is the validation of
//! what is inside. `container_parse` fuzzes the checksums themselves.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sparsedex_core::container::Image;
use sparsedex_core::index::{Id, Index};
use sparsedex_core::search::{explain::explain, search, Algorithm, QueryRef};
use sparsedex_core::Error;

#[path = "common.rs"]
mod common;

fn queries(index: &Index) -> Vec<(Vec<u32>, Vec<f32>)> {
    let v = index.view();
    let n = v.n_terms;
    // The terms with the most postings (the ones a traversal spends time in), the first
    // few terms, and one id the index does not hold (queries use external term ids).
    let mut by_df: Vec<u32> = (0..n.min(4096)).collect();
    by_df.sort_by_key(|&t| std::cmp::Reverse(v.df(t)));
    by_df.truncate(6);
    let by_df: Vec<u32> = by_df.into_iter().map(|t| v.external_term(t)).collect();
    let first: Vec<u32> = (0..n.min(3)).map(|t| v.external_term(t)).collect();
    let weights = |ts: &[u32]| ts.iter().enumerate().map(|(i, _)| 0.25 + i as f32).collect::<Vec<f32>>();
    let mut out = vec![(by_df.clone(), weights(&by_df)), (first.clone(), weights(&first))];
    out.push((vec![v.term_ids.last().map_or(0, |&t| t.wrapping_add(1))], vec![1.0]));
    out
}

fn exercise(index: &Index) {
    let v = index.view();
    let _ = index.stats();
    // Readers of the stored data, as the bindings use them (`get`, `id`, `locate`).
    for d in 0..v.n_docs.min(64) {
        let _ = index.vector(d);
        if let Some(id) = index.id(d) {
            assert_eq!(index.locate(id), Some(d), "an id does not locate its document");
        }
    }
    let _ = (index.locate(Id::Int(-1)), index.locate(Id::Str("")), index.vectors());
    for (terms, weights) in queries(index) {
        let q = QueryRef { terms: &terms, weights: &weights };
        let mut top = Vec::new();
        for algo in Algorithm::ALL {
            for k in [1, 10] {
                match search(index, q, k, algo) {
                    Ok(hits) => {
                        assert!(hits.len() <= k);
                        assert!(hits.iter().all(|h| h.doc < v.n_docs));
                        top.extend(hits.iter().map(|h| h.doc));
                    }
                    Err(Error::InvalidQuery { .. }) => {}
                    Err(e) => panic!("unexpected search error: {e:?}"),
                }
            }
        }
        top.extend(0..v.n_docs.min(3));
        top.push(v.n_docs.saturating_sub(1));
        top.push(v.n_docs);
        top.sort_unstable();
        top.dedup();
        for d in top {
            let _ = explain(index, q, d);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut bytes = data.to_vec();
    common::reseal(&mut bytes);
    match Index::from_image(Image::from_bytes(&bytes), true) {
        Ok(index) => exercise(&index),
        Err(Error::Corrupt(_) | Error::UnsupportedVersion { .. }) => {}
        Err(e) => panic!("unexpected error kind: {e:?}"),
    }
});
