//! Tests of the reordering module: permutations on arbitrary input, determinism across thread
//! counts, and lower log-gap cost than a random order and the signature sort on a corpus with
//! planted clusters.

use super::bisect::split_point;
use super::*;
use crate::index::build::{similarity_order, CsrRef};
use proptest::prelude::*;

/// CSR rows: (indptr, terms, values).
type Rows = (Vec<u64>, Vec<u32>, Vec<f32>);

fn rows_from(docs: &[Vec<(u32, f32)>]) -> Rows {
    let mut r: Rows = (vec![0], vec![], vec![]);
    for d in docs {
        for &(t, w) in d {
            r.1.push(t);
            r.2.push(w);
        }
        r.0.push(r.1.len() as u64);
    }
    r
}

fn is_permutation(order: &[u32], n: usize) -> bool {
    let mut seen = vec![false; n];
    order.len() == n && order.iter().all(|&d| (d as usize) < n && !std::mem::replace(&mut seen[d as usize], true))
}

/// xorshift64: a tiny seeded generator for test corpora.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 24) as f32
    }
}

/// `n_clusters` planted topics of `topic_terms` terms each; a document draws `per_doc` terms
/// from its topic and `noise` from the whole vocabulary, all with weights from the same law
/// (so a document's heaviest, most distinctive terms are often noise, as rare expansion terms
/// are in real vectors); documents come in random order. Returns the rows, the vocabulary
/// size and each row's topic.
fn planted(n_docs: usize, n_clusters: usize, seed: u64) -> (Rows, u32, Vec<usize>) {
    let (topic_terms, per_doc, noise) = (40u32, 12usize, 6usize);
    let vocab = n_clusters as u32 * topic_terms + 500;
    let mut rng = Rng(seed | 1);
    let mut docs = Vec::with_capacity(n_docs);
    let mut topics = Vec::with_capacity(n_docs);
    for _ in 0..n_docs {
        let c = rng.below(n_clusters as u64) as u32;
        let mut row: Vec<(u32, f32)> = Vec::new();
        while row.len() < per_doc {
            let t = c * topic_terms + rng.below(topic_terms as u64) as u32;
            if !row.iter().any(|e| e.0 == t) {
                row.push((t, 0.5 + 2.0 * rng.unit()));
            }
        }
        while row.len() < per_doc + noise {
            let t = rng.below(vocab as u64) as u32;
            if !row.iter().any(|e| e.0 == t) {
                row.push((t, 0.5 + 2.0 * rng.unit()));
            }
        }
        row.sort_unstable_by_key(|e| e.0);
        docs.push(row);
        topics.push(c as usize);
    }
    (rows_from(&docs), vocab, topics)
}

fn in_pool<T: Send>(threads: usize, f: impl FnOnce() -> T + Send) -> T {
    rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap().install(f)
}

/// Options that run every code path on small inputs.
fn small_opts(v: u8) -> BpOptions {
    let mut o = BpOptions { leaf_size: 4, align: 8, ..BpOptions::default() };
    match v % 5 {
        0 => {}
        1 => o.weighting = BpWeighting::Impact,
        2 => o.weighting = BpWeighting::Levels(3),
        3 => {
            o.min_weight_ratio = 0.5;
            o.max_df_fraction = 0.3;
            o.align = 1;
            o.leaf_size = 1;
        }
        _ => {
            o.max_iterations = 3;
            o.deep_iterations = 1;
            o.deep_size = 32;
            o.min_swap_fraction = 0.0;
            o.min_df = 3;
            o.max_depth = 3;
        }
    }
    o
}

fn rows_strategy() -> impl Strategy<Value = (Vec<Vec<(u32, f32)>>, u32)> {
    // Vocabularies down to one term; rows may be empty; duplicated rows; weights may be zero.
    (1u32..40).prop_flat_map(|vocab| {
        let row = proptest::collection::btree_map(0..vocab, prop_oneof![Just(0.0f32), 0.01f32..3.0], 0..8)
            .prop_map(|m| m.into_iter().collect::<Vec<_>>());
        (proptest::collection::vec(row, 0..150), Just(vocab), any::<u64>()).prop_map(|(mut rows, vocab, seed)| {
            // Duplicate some rows, to exercise ties.
            let mut rng = Rng(seed | 1);
            let n = rows.len();
            for _ in 0..n / 3 {
                let (a, b) = (rng.below(n as u64) as usize, rng.below(n as u64) as usize);
                rows[a] = rows[b].clone();
            }
            (rows, vocab)
        })
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    /// The output is a permutation, and the same with 1 and 3 threads, for every variant.
    #[test]
    fn permutation_and_thread_independent((docs, vocab) in rows_strategy(), v in 0u8..5) {
        let (indptr, terms, values) = rows_from(&docs);
        let o = small_opts(v);
        let one = in_pool(1, || bp_order(&indptr, &terms, &values, vocab, &o));
        prop_assert!(is_permutation(&one, docs.len()), "not a permutation: {one:?}");
        let three = in_pool(3, || bp_order(&indptr, &terms, &values, vocab, &o));
        prop_assert_eq!(one, three);
    }
}

#[test]
fn zero_one_and_two_documents() {
    let o = BpOptions { leaf_size: 1, align: 1, ..BpOptions::default() };
    assert_eq!(bp_order(&[0], &[], &[], 0, &o), Vec::<u32>::new());
    assert_eq!(bp_order(&[0, 2], &[0, 1], &[1.0, 1.0], 2, &o), vec![0]);
    let two = bp_order(&[0, 1, 2], &[0, 0], &[1.0, 2.0], 1, &o);
    assert!(is_permutation(&two, 2));
    // Empty documents only.
    let empty = bp_order(&[0, 0, 0, 0], &[], &[], 5, &o);
    assert!(is_permutation(&empty, 3));
}

#[test]
fn leaf_at_least_n_keeps_the_start_order() {
    let (r, vocab, _) = planted(100, 4, 3);
    let o = BpOptions { leaf_size: 100, ..BpOptions::default() };
    let init: Vec<u32> = (0..100u32).rev().collect();
    assert_eq!(bp_refine(&r.0, &r.1, &r.2, vocab, &init, &o), init);
    let o = BpOptions { max_depth: 0, ..BpOptions::default() };
    assert_eq!(bp_order(&r.0, &r.1, &r.2, vocab, &o), (0..100).collect::<Vec<u32>>());
}

/// Large enough for every parallel path; 1, 2 and 4 threads give the same order.
#[test]
fn deterministic_across_thread_counts() {
    let (r, vocab, _) = planted(3000, 30, 11);
    for v in 0..5 {
        let o = BpOptions { leaf_size: 16, ..small_opts(v) };
        let base = in_pool(1, || bp_order(&r.0, &r.1, &r.2, vocab, &o));
        assert!(is_permutation(&base, 3000));
        for threads in [2, 4] {
            let again = in_pool(threads, || bp_order(&r.0, &r.1, &r.2, vocab, &o));
            assert_eq!(base, again, "variant {v}, {threads} threads");
        }
    }
}

/// Documents that share their 64-document block's majority topic.
fn block_purity(order: &[u32], topics: &[usize]) -> f64 {
    let n_topics = topics.iter().max().map_or(0, |&m| m + 1);
    let pure: usize = order
        .chunks(64)
        .map(|b| {
            let mut count = vec![0usize; n_topics];
            b.iter().for_each(|&d| count[topics[d as usize]] += 1);
            *count.iter().max().unwrap()
        })
        .sum();
    pure as f64 / order.len().max(1) as f64
}

#[test]
fn lowers_log_gap_cost_below_random_and_signature_on_planted_clusters() {
    let (r, vocab, topics) = planted(4000, 25, 5);
    let n = topics.len();
    let identity: Vec<u32> = (0..n as u32).collect(); // the rows are in random order
    let random = log_gap_bits(&r.0, &r.1, vocab, &identity);
    let sig_order = similarity_order(CsrRef { indptr: &r.0, indices: &r.1, values: &r.2 }, Some(vocab)).unwrap();
    let sig = log_gap_bits(&r.0, &r.1, vocab, &sig_order);
    let sig_purity = block_purity(&sig_order, &topics);
    assert!(sig < random);
    for v in 0..5 {
        let o = BpOptions { leaf_size: 64, align: 64, max_depth: 64, ..small_opts(v) };
        let order = bp_order(&r.0, &r.1, &r.2, vocab, &o);
        let bp = log_gap_bits(&r.0, &r.1, vocab, &order);
        assert!(bp < 0.9 * sig, "variant {v}: bp {bp:.3}, signature {sig:.3}, random {random:.3}");
        // Blocks of 64 neighbouring documents are mostly of one topic, more so than after the
        // signature sort.
        let purity = block_purity(&order, &topics);
        assert!(
            purity > 0.75 && purity > sig_purity,
            "variant {v}: block purity {purity:.3} (signature {sig_purity:.3})"
        );
    }
}

#[test]
fn refine_from_a_good_start_does_not_undo_it() {
    let (r, vocab, _) = planted(2000, 20, 9);
    let o = BpOptions::default();
    let first = bp_order(&r.0, &r.1, &r.2, vocab, &o);
    let again = bp_refine(&r.0, &r.1, &r.2, vocab, &first, &BpOptions { max_iterations: 4, ..o });
    let (a, b) = (log_gap_bits(&r.0, &r.1, vocab, &first), log_gap_bits(&r.0, &r.1, vocab, &again));
    assert!(b <= a * 1.01, "refining raised the cost from {a:.4} to {b:.4}");
}

#[test]
fn split_points_are_aligned() {
    for n in 2..2000 {
        let m = split_point(n, 64);
        assert!(m > 0 && m < n, "n={n} m={m}");
        if n > 128 {
            assert_eq!(m % 64, 0, "n={n} m={m}");
            assert!((m as i64 - (n / 2) as i64).abs() <= 32, "n={n} m={m}");
        }
    }
    assert_eq!(split_point(100, 1), 50);
}

#[test]
fn options_are_checked() {
    assert!(BpOptions::default().check().is_ok());
    for bad in [
        BpOptions { leaf_size: 0, ..BpOptions::default() },
        BpOptions { align: 0, ..BpOptions::default() },
        BpOptions { min_swap_fraction: 1.5, ..BpOptions::default() },
        BpOptions { max_df_fraction: 0.0, ..BpOptions::default() },
        BpOptions { min_weight_ratio: f32::NAN, ..BpOptions::default() },
    ] {
        let e = bad.check().unwrap_err().to_string();
        assert!(e.contains("BP "), "{e}");
    }
}

#[test]
#[should_panic(expected = "out of range")]
fn term_out_of_range_panics_with_a_message() {
    bp_order(&[0, 1], &[5], &[1.0], 3, &BpOptions::default());
}

#[test]
fn log_gap_bits_counts_gaps() {
    // Term 0 in docs 0 and 1 (gaps 1, 1), term 1 in doc 1 (gap 2): (0 + 0 + 1) / 3.
    let bits = log_gap_bits(&[0, 1, 3], &[0, 0, 1], 2, &[0, 1]);
    assert!((bits - 1.0 / 3.0).abs() < 1e-12);
    // Reversed: term 0 at 0 and 1, term 1 at 0: all gaps 1.
    assert_eq!(log_gap_bits(&[0, 1, 3], &[0, 0, 1], 2, &[1, 0]), 0.0);
    assert_eq!(log_gap_bits(&[0], &[], 0, &[]), 0.0);
}

#[test]
fn reorder_parses_names_and_bools() {
    assert_eq!("none".parse::<Reorder>().unwrap(), Reorder::None);
    assert_eq!("signature".parse::<Reorder>().unwrap(), Reorder::Signature);
    assert_eq!("bp".parse::<Reorder>().unwrap(), Reorder::bp());
    assert!("sorted".parse::<Reorder>().unwrap_err().to_string().contains("'sorted'"));
    assert_eq!(Reorder::from(false), Reorder::None);
    assert_eq!(Reorder::from(true), Reorder::default());
}

#[test]
fn fast_log2_is_close() {
    for i in 0..100_000 {
        let x = 1.0 + i as f32 * 0.37;
        let (a, b) = (super::bisect::fast_log2(x), x.log2());
        assert!((a - b).abs() < 1e-4, "log2({x}) = {b}, fast {a}");
    }
    assert_eq!(super::bisect::fast_log2(1.0), 0.0);
}
