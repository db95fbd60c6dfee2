//! The log-gap cost of a document order: how many bits the doc-id gaps of the posting lists
//! need, estimated as `log2(gap)` per posting (Dhulipala et al., KDD 2016, "LogGap"). The
//! objective that [`super::bp`] lowers, and a yardstick for any order.

/// Mean `log2` of the doc-id gaps over all postings when the documents are laid out in
/// `order` (`order[new_id] = input_row`): every posting list's first gap is its first doc id
/// + 1. Rows are CSR (`indptr`, `terms` below `n_terms`); 0.0 when there are no postings.
///
/// # Panics
/// If `order` indexes a row outside `indptr` or a term is `>= n_terms`.
pub fn log_gap_bits(indptr: &[u64], terms: &[u32], n_terms: u32, order: &[u32]) -> f64 {
    let mut last = vec![-1i64; n_terms as usize];
    let (mut bits, mut postings) = (0.0f64, 0u64);
    for (pos, &row) in order.iter().enumerate() {
        let (a, b) = (indptr[row as usize] as usize, indptr[row as usize + 1] as usize);
        for &t in &terms[a..b] {
            let gap = (pos as i64 - last[t as usize]).max(1); // a repeated term in a row: gap 0
            bits += (gap as f64).log2();
            postings += 1;
            last[t as usize] = pos as i64;
        }
    }
    if postings == 0 {
        0.0
    } else {
        bits / postings as f64
    }
}
