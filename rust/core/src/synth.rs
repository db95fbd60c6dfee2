//! A seedable synthetic corpus that looks like SPLADE output on MS MARCO, for benches,
//! property tests and the Python benchmark harness.
//!
//! Real SPLADE++ vectors of MS MARCO passages have ~120 non-zeros (40..300 for most passages)
//! over the 30,522-token BERT vocabulary, queries ~45 (they are expanded too); a few terms
//! occur in a large share of documents while most occur rarely; terms co-occur because
//! passages are *about* something; weights are `log(1 + relu(logit))`, mostly 0.1..1.5 with a
//! tail to ~3 on the terms a passage is most about. Those are the properties that decide how
//! fast dynamic pruning is (list lengths, score skew, which lists overlap), so the model below
//! reproduces them, and nothing else.
//!
//! # Model
//!
//! 1. **Global popularity.** Term ranks `0..vocab_size` get Zipf–Mandelbrot weights
//!    `(r + 1 + q)^-s` ([`SynthParams::zipf_exponent`], [`SynthParams::zipf_offset`]); ranks map to term ids through a seeded permutation, so
//!    popular terms are spread over the id space as in a real vocabulary.
//! 2. **Topics.** [`SynthParams::n_topics`] topics, each a list of
//!    [`SynthParams::topic_size`] distinct terms. A share [`SynthParams::topic_shared_fraction`]
//!    of them is drawn from the global Zipf law (popular terms shared by many topics), the rest
//!    are topic-specific terms drawn from a flatter Zipf law (exponent
//!    [`SynthParams::topic_term_exponent`]) over ranks past the first 2% (mid- and low-frequency
//!    terms). Within a topic, the term at position `j` is drawn with probability
//!    `∝ (j + 1)^-0.9` and has centrality `c = (1 + j / 4)^-1/2` (shared terms: `0.3 c`).
//!    Topics themselves are Zipf-popular with exponent [`SynthParams::topic_zipf_exponent`].
//! 3. **Documents.** Length `L` is log-normal with mean [`SynthParams::doc_nnz`] and log-sd
//!    [`SynthParams::doc_nnz_sigma`], clamped to `1..=vocab_size / 2`. The document picks
//!    `1 + Poisson(topics_per_doc - 1)` topics (by topic popularity) with Dirichlet(1) mixture
//!    weights, then draws distinct terms until it has `L`: with probability
//!    [`SynthParams::background_fraction`] from the global Zipf law, otherwise from one of its
//!    topics. Should the draws stall (tiny vocabularies) the rest is filled uniformly.
//! 4. **Weights** are `softplus(z)` = `log(1 + e^z)` of a Gaussian logit `z ~ N(m, 0.8²)`
//!    (approximated by a sum of four uniforms, so bounded at ±3.5 sd), with
//!    `m = -1.2` for background terms and `m = -0.9 + 2.2 c` for topic terms (central terms
//!    weigh most), floored at 0.01. This gives mostly 0.1..1.5 with a tail up to ~3-4.
//! 5. **Queries** are drawn like documents of their topics (so the true top documents share
//!    topics with the query): `1 + Poisson(topics_per_query - 1)` topics, length mean
//!    [`SynthParams::query_nnz`], background share [`SynthParams::query_background_fraction`],
//!    topic terms taken as the more central of two draws, and logits shifted by +0.4 (query
//!    weights are a bit larger).
//!
//! Every row comes out sorted by term id, with unique ids below `vocab_size` and finite
//! positive weights. Generation is deterministic for a seed and independent of the number of
//! threads: rows are produced in fixed chunks of 1024, each with its own RNG derived from
//! `(seed, stream, chunk)`, in parallel with rayon. The RNG is xoshiro256++ seeded by
//! splitmix64 (Blackman & Vigna 2018); sampling from discrete laws uses Vose's alias method.
//!
//! ```
//! use sparsedex_core::synth::{generate, SynthParams};
//! let (docs, queries) = generate(&SynthParams { n_docs: 1000, n_queries: 10, ..Default::default() });
//! assert_eq!(docs.n_rows(), 1000);
//! assert_eq!(queries.indptr.len(), 11);
//! ```

use rayon::prelude::*;

use crate::error::{Error, Result};

/// Parameters of the synthetic corpus. [`Default`] gives MS MARCO / SPLADE++-like values.
#[derive(Clone, Debug)]
pub struct SynthParams {
    /// Number of documents (default 100,000).
    pub n_docs: usize,
    /// Number of queries (default 1,000).
    pub n_queries: usize,
    /// Vocabulary size; term ids are `0..vocab_size` (default 30,522, BERT's).
    pub vocab_size: u32,
    /// Mean non-zeros per document (default 120).
    pub doc_nnz: f64,
    /// Log-space standard deviation of document lengths (default 0.45: 5%..95% ≈ 55..230).
    pub doc_nnz_sigma: f64,
    /// Mean non-zeros per query (default 45).
    pub query_nnz: f64,
    /// Log-space standard deviation of query lengths (default 0.35).
    pub query_nnz_sigma: f64,
    /// Number of topics (default 1,000; at least 1).
    pub n_topics: usize,
    /// Mean number of topics a document mixes, at least 1 (default 2.0).
    pub topics_per_doc: f64,
    /// Mean number of topics a query mixes, at least 1 (default 1.3).
    pub topics_per_query: f64,
    /// Terms per topic (default 256; capped at `vocab_size / 2`).
    pub topic_size: usize,
    /// Share of each topic's terms drawn from the global popularity law (default 0.2).
    pub topic_shared_fraction: f64,
    /// Zipf exponent of topic-specific term ranks (default 0.5; flatter than the global law).
    pub topic_term_exponent: f64,
    /// Zipf exponent of topic popularity (default 0.7).
    pub topic_zipf_exponent: f64,
    /// Zipf exponent of global term popularity (default 1.0).
    pub zipf_exponent: f64,
    /// Zipf–Mandelbrot offset `q` of global popularity, weights `(r + 1 + q)^-s`: flattens
    /// the very top so that the longest posting list covers most but not nearly all
    /// documents (~70% at the defaults, rather than ~97% with a pure Zipf law) (default 4.0).
    pub zipf_offset: f64,
    /// Share of a document's terms drawn from global popularity rather than topics
    /// (default 0.3).
    pub background_fraction: f64,
    /// The same for queries (default 0.1).
    pub query_background_fraction: f64,
    /// Seed; equal seeds give identical corpora (default 42).
    pub seed: u64,
}

impl Default for SynthParams {
    fn default() -> Self {
        SynthParams {
            n_docs: 100_000,
            n_queries: 1_000,
            vocab_size: 30_522,
            doc_nnz: 120.0,
            doc_nnz_sigma: 0.45,
            query_nnz: 45.0,
            query_nnz_sigma: 0.35,
            n_topics: 1_000,
            topics_per_doc: 2.0,
            topics_per_query: 1.3,
            topic_size: 256,
            topic_shared_fraction: 0.2,
            topic_term_exponent: 0.5,
            topic_zipf_exponent: 0.7,
            zipf_exponent: 1.0,
            zipf_offset: 4.0,
            background_fraction: 0.3,
            query_background_fraction: 0.1,
            seed: 42,
        }
    }
}

impl SynthParams {
    /// Check that the parameters make sense (finite, positive where they must be, shares in
    /// `0..=1`).
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::InvalidArgument(format!("synth: {m}")));
        if self.vocab_size < 2 {
            return bad(format!("vocab_size must be at least 2, got {}", self.vocab_size));
        }
        if self.n_topics == 0 || self.topic_size == 0 {
            return bad("n_topics and topic_size must be at least 1".into());
        }
        for (name, v) in [("doc_nnz", self.doc_nnz), ("query_nnz", self.query_nnz)] {
            if !(v.is_finite() && v >= 1.0) {
                return bad(format!("{name} must be finite and at least 1, got {v}"));
            }
        }
        for (name, v) in [("topics_per_doc", self.topics_per_doc), ("topics_per_query", self.topics_per_query)] {
            if !(v.is_finite() && (1.0..=64.0).contains(&v)) {
                return bad(format!("{name} must be in 1..=64, got {v}"));
            }
        }
        for (name, v) in [
            ("doc_nnz_sigma", self.doc_nnz_sigma),
            ("query_nnz_sigma", self.query_nnz_sigma),
            ("topic_term_exponent", self.topic_term_exponent),
            ("topic_zipf_exponent", self.topic_zipf_exponent),
            ("zipf_exponent", self.zipf_exponent),
            ("zipf_offset", self.zipf_offset),
        ] {
            if !(v.is_finite() && (0.0..=10.0).contains(&v)) {
                return bad(format!("{name} must be in 0..=10, got {v}"));
            }
        }
        for (name, v) in [
            ("topic_shared_fraction", self.topic_shared_fraction),
            ("background_fraction", self.background_fraction),
            ("query_background_fraction", self.query_background_fraction),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return bad(format!("{name} must be in 0..=1, got {v}"));
            }
        }
        Ok(())
    }
}

/// Compressed sparse rows: row `i` is `indices[indptr[i]..indptr[i+1]]` with the matching
/// `values`. Rows are sorted by term id, ids unique, values finite and `> 0`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Csr {
    /// Row boundaries, `n_rows + 1` entries starting at 0.
    pub indptr: Vec<u64>,
    /// Term ids.
    pub indices: Vec<u32>,
    /// Weights.
    pub values: Vec<f32>,
}

impl Csr {
    /// Number of rows.
    pub fn n_rows(&self) -> usize {
        self.indptr.len().saturating_sub(1)
    }

    /// Total non-zeros.
    pub fn nnz(&self) -> usize {
        self.indices.len()
    }

    /// Row `i` as (term ids, weights). Panics if `i >= n_rows()`.
    pub fn row(&self, i: usize) -> (&[u32], &[f32]) {
        let (a, b) = (self.indptr[i] as usize, self.indptr[i + 1] as usize);
        (&self.indices[a..b], &self.values[a..b])
    }
}

/// Generate `(documents, queries)`.
///
/// # Panics
/// If the parameters are invalid (see [`SynthParams::validate`]); use [`try_generate`] where
/// they come from a user.
pub fn generate(params: &SynthParams) -> (Csr, Csr) {
    match try_generate(params) {
        Ok(x) => x,
        Err(e) => panic!("{e}"),
    }
}

/// Generate `(documents, queries)`, or [`Error::InvalidArgument`] for invalid parameters.
pub fn try_generate(params: &SynthParams) -> Result<(Csr, Csr)> {
    params.validate()?;
    let model = Model::new(params);
    let docs = model.rows(&RowKind::docs(params), params.n_docs, STREAM_DOCS);
    let queries = model.rows(&RowKind::queries(params), params.n_queries, STREAM_QUERIES);
    Ok((docs, queries))
}

// ---------------------------------------------------------------------------------------
// Model

const CHUNK: usize = 1024;
const STREAM_TOPICS: u64 = 1;
const STREAM_DOCS: u64 = 2;
const STREAM_QUERIES: u64 = 3;
const LOGIT_SD: f64 = 0.8;
const BACKGROUND_LOGIT: f64 = -1.2;
const TOPIC_LOGIT: f64 = -0.9;
const CENTRALITY_LOGIT: f64 = 2.2;
const QUERY_LOGIT_SHIFT: f64 = 0.4;
const IN_TOPIC_EXPONENT: f64 = 0.9;
const MIN_WEIGHT: f32 = 0.01;

struct Topic {
    terms: Vec<u32>,
    /// Mean logit of each term (from its centrality).
    logit: Vec<f32>,
}

struct Model {
    seed: u64,
    vocab: u32,
    /// Global popularity law, over term ids (not ranks).
    global: Alias,
    topic_pop: Alias,
    /// Law of positions within a topic (shared by all topics).
    in_topic: Alias,
    topics: Vec<Topic>,
    softplus: Softplus,
}

struct RowKind {
    mean_len: f64,
    sigma_len: f64,
    topics_mean: f64,
    background: f64,
    logit_shift: f64,
    /// Take the more central of two in-topic draws.
    focused: bool,
}

impl RowKind {
    fn docs(p: &SynthParams) -> Self {
        RowKind {
            mean_len: p.doc_nnz,
            sigma_len: p.doc_nnz_sigma,
            topics_mean: p.topics_per_doc,
            background: p.background_fraction,
            logit_shift: 0.0,
            focused: false,
        }
    }
    fn queries(p: &SynthParams) -> Self {
        RowKind {
            mean_len: p.query_nnz,
            sigma_len: p.query_nnz_sigma,
            topics_mean: p.topics_per_query,
            background: p.query_background_fraction,
            logit_shift: QUERY_LOGIT_SHIFT,
            focused: true,
        }
    }
}

fn zipf_weights(n: usize, s: f64, offset: f64) -> Vec<f64> {
    (0..n).map(|r| ((r + 1) as f64 + offset).powf(-s)).collect()
}

impl Model {
    fn new(p: &SynthParams) -> Model {
        let v = p.vocab_size as usize;
        let mut rng = Rng::derived(p.seed, STREAM_TOPICS, 0);
        let mut rank_to_term: Vec<u32> = (0..p.vocab_size).collect();
        for i in (1..v).rev() {
            let j = rng.below(i as u64 + 1) as usize;
            rank_to_term.swap(i, j);
        }
        let by_rank = zipf_weights(v, p.zipf_exponent, p.zipf_offset);
        let mut by_term = vec![0.0; v];
        for (r, &t) in rank_to_term.iter().enumerate() {
            by_term[t as usize] = by_rank[r];
        }
        let global = Alias::new(&by_term);
        let specific_start = v / 50;
        let specific = Alias::new(&zipf_weights(v - specific_start, p.topic_term_exponent, 0.0));
        let topic_pop = Alias::new(&zipf_weights(p.n_topics, p.topic_zipf_exponent, 0.0));
        let size = p.topic_size.min(v / 2).max(1);
        let in_topic = Alias::new(&zipf_weights(size, IN_TOPIC_EXPONENT, 0.0));
        let mut seen = Seen::new(v);
        let topics = (0..p.n_topics)
            .map(|_| {
                seen.next_row();
                let mut terms = Vec::with_capacity(size);
                let mut logit = Vec::with_capacity(size);
                for j in 0..size {
                    let shared = rng.f64() < p.topic_shared_fraction;
                    let mut term = None;
                    for _ in 0..32 {
                        let t = if shared {
                            global.sample(&mut rng) as u32
                        } else {
                            rank_to_term[specific_start + specific.sample(&mut rng)]
                        };
                        if seen.insert(t) {
                            term = Some(t);
                            break;
                        }
                    }
                    let t = term.unwrap_or_else(|| loop {
                        let t = rng.below(v as u64) as u32;
                        if seen.insert(t) {
                            break t;
                        }
                    });
                    let c = (1.0 + j as f64 / 4.0).powf(-0.5) * if shared { 0.3 } else { 1.0 };
                    terms.push(t);
                    logit.push((TOPIC_LOGIT + CENTRALITY_LOGIT * c) as f32);
                }
                Topic { terms, logit }
            })
            .collect();
        Model { seed: p.seed, vocab: p.vocab_size, global, topic_pop, in_topic, topics, softplus: Softplus::new() }
    }

    fn row_len(&self, kind: &RowKind, rng: &mut Rng) -> usize {
        let s = kind.sigma_len;
        let mu = kind.mean_len.ln() - s * s / 2.0;
        let l = (mu + s * rng.normal()).exp().round();
        (l as usize).clamp(1, self.vocab as usize / 2)
    }

    fn rows(&self, kind: &RowKind, n: usize, stream: u64) -> Csr {
        let n_chunks = n.div_ceil(CHUNK);
        // Pass 1: lengths, from their own stream so the buffers can be allocated exactly.
        let lens: Vec<Vec<u32>> = (0..n_chunks)
            .into_par_iter()
            .map(|c| {
                let mut rng = Rng::derived(self.seed, stream, 2 * c as u64);
                let rows = CHUNK.min(n - c * CHUNK);
                (0..rows).map(|_| self.row_len(kind, &mut rng) as u32).collect()
            })
            .collect();
        let mut indptr = Vec::with_capacity(n + 1);
        indptr.push(0u64);
        let mut total = 0u64;
        for l in lens.iter().flatten() {
            total += *l as u64;
            indptr.push(total);
        }
        let mut indices = vec![0u32; total as usize];
        let mut values = vec![0f32; total as usize];
        // Pass 2: fill each chunk's slice of the output in parallel.
        let mut jobs = Vec::with_capacity(n_chunks);
        let (mut ri, mut rv) = (&mut indices[..], &mut values[..]);
        for (c, l) in lens.iter().enumerate() {
            let sz: usize = l.iter().map(|&x| x as usize).sum();
            let (a, rest_i) = ri.split_at_mut(sz);
            let (b, rest_v) = rv.split_at_mut(sz);
            ri = rest_i;
            rv = rest_v;
            jobs.push((c, l, a, b));
        }
        jobs.into_par_iter().for_each(|(c, l, ind, val)| {
            let mut rng = Rng::derived(self.seed, stream, 2 * c as u64 + 1);
            let mut seen = Seen::new(self.vocab as usize);
            let mut row: Vec<u64> = Vec::new();
            let mut at = 0;
            for &len in l {
                let len = len as usize;
                self.row(kind, len, &mut rng, &mut seen, &mut row);
                for (k, &packed) in row.iter().enumerate() {
                    ind[at + k] = (packed >> 32) as u32;
                    val[at + k] = f32::from_bits(packed as u32);
                }
                at += len;
            }
        });
        Csr { indptr, indices, values }
    }

    /// One row of exactly `len` distinct terms, packed `term << 32 | weight bits`, sorted.
    fn row(&self, kind: &RowKind, len: usize, rng: &mut Rng, seen: &mut Seen, out: &mut Vec<u64>) {
        out.clear();
        seen.next_row();
        // Topic mixture: 1 + Poisson(mean - 1) topics, Dirichlet(1) weights.
        let k = (1 + rng.poisson(kind.topics_mean - 1.0)).min(16);
        let mut mix: [(usize, f64); 16] = [(0, 0.0); 16];
        let mut acc = 0.0;
        for m in mix.iter_mut().take(k) {
            acc += -(1.0 - rng.f64()).ln();
            *m = (self.topic_pop.sample(rng), acc);
        }
        let mut push = |term: u32, logit: f64, rng: &mut Rng, out: &mut Vec<u64>| {
            if seen.insert(term) {
                let z = logit + kind.logit_shift + LOGIT_SD * rng.normal();
                let w = self.softplus.eval(z).max(MIN_WEIGHT);
                out.push((term as u64) << 32 | w.to_bits() as u64);
            }
        };
        let mut attempts = 0;
        while out.len() < len && attempts < 8 * len + 64 {
            attempts += 1;
            if rng.f64() < kind.background {
                let term = self.global.sample(rng) as u32;
                push(term, BACKGROUND_LOGIT, rng, out);
            } else {
                let u = rng.f64() * acc;
                let t = mix[..k].iter().find(|m| u < m.1).unwrap_or(&mix[k - 1]).0;
                let topic = &self.topics[t];
                let mut j = self.in_topic.sample(rng);
                if kind.focused {
                    j = j.min(self.in_topic.sample(rng));
                }
                push(topic.terms[j], topic.logit[j] as f64, rng, out);
            }
        }
        while out.len() < len {
            let term = rng.below(self.vocab as u64) as u32;
            push(term, BACKGROUND_LOGIT, rng, out);
        }
        out.sort_unstable();
    }
}

/// `softplus(z) = ln(1 + e^z)` by linear interpolation in a table (error below 1e-6 over
/// the range; libm's `exp`/`log1p` dominated generation time).
struct Softplus {
    table: Vec<f32>,
}

impl Softplus {
    const LO: f64 = -12.0;
    const HI: f64 = 12.0;
    const STEPS: usize = 4096;

    fn new() -> Self {
        let h = (Self::HI - Self::LO) / Self::STEPS as f64;
        let table = (0..=Self::STEPS + 1).map(|i| (Self::LO + i as f64 * h).exp().ln_1p() as f32).collect();
        Softplus { table }
    }

    fn eval(&self, z: f64) -> f32 {
        if z >= Self::HI {
            return z as f32;
        }
        if z <= Self::LO {
            return 0.0;
        }
        let x = (z - Self::LO) * (Self::STEPS as f64 / (Self::HI - Self::LO));
        let i = x as usize; // 0..STEPS
        let f = (x - i as f64) as f32;
        self.table[i] + f * (self.table[i + 1] - self.table[i])
    }
}

// ---------------------------------------------------------------------------------------
// Sampling primitives

/// Per-row "already drawn" set over the vocabulary: a stamp per term, no clearing.
struct Seen {
    stamp: Vec<u32>,
    row: u32,
}

impl Seen {
    fn new(n: usize) -> Self {
        Seen { stamp: vec![0; n], row: 0 }
    }
    fn next_row(&mut self) {
        self.row = self.row.wrapping_add(1);
        if self.row == 0 {
            self.stamp.fill(0);
            self.row = 1;
        }
    }
    /// Mark `t`; false if it was already marked in this row.
    fn insert(&mut self, t: u32) -> bool {
        let s = &mut self.stamp[t as usize];
        if *s == self.row {
            false
        } else {
            *s = self.row;
            true
        }
    }
}

/// One step of Marsaglia's xorshift64 (shifts 13, 7, 17): the new state, which is also the
/// value drawn. For cheap, reproducible draws inside the engine (calibration pseudo-queries,
/// the kernel measurement); `state` must not be 0.
pub(crate) fn xorshift64(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

/// xoshiro256++ (Blackman & Vigna), seeded with splitmix64.
struct Rng {
    s: [u64; 4],
}

fn splitmix64(x: &mut u64) -> u64 {
    *x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *x;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Rng {
    /// An independent generator for `(seed, stream, index)`.
    fn derived(seed: u64, stream: u64, index: u64) -> Rng {
        let mut x = seed;
        let a = splitmix64(&mut x);
        let mut x = a ^ stream.wrapping_mul(0xD1B5_4A32_D192_ED03);
        let b = splitmix64(&mut x);
        let mut x = b ^ index.wrapping_mul(0x8CB9_2BA7_2F3D_8DD7);
        let s = [splitmix64(&mut x), splitmix64(&mut x), splitmix64(&mut x), splitmix64(&mut x)];
        Rng { s }
    }

    fn next_u64(&mut self) -> u64 {
        let s = &mut self.s;
        let result = s[0].wrapping_add(s[3]).rotate_left(23).wrapping_add(s[0]);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// Uniform in `[0, 1)`.
    fn f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in `0..n` (Lemire's multiply-shift; bias below 2^-32 for our sizes).
    fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }

    /// Approximately standard normal: the Irwin–Hall sum of four uniforms, centred and
    /// scaled to unit variance (support ±3.46). Pure arithmetic, so it is fast and identical
    /// on every platform; the model needs a bell shape, not exact Gaussian tails.
    fn normal(&mut self) -> f64 {
        let (a, b) = (self.next_u64(), self.next_u64());
        let sum = (a >> 32) + (a & 0xFFFF_FFFF) + (b >> 32) + (b & 0xFFFF_FFFF);
        (sum as f64 * (1.0 / 4_294_967_296.0) - 2.0) * 3f64.sqrt()
    }

    /// Poisson(lambda) by Knuth's product method (lambda here is small).
    fn poisson(&mut self, lambda: f64) -> usize {
        if lambda <= 0.0 {
            return 0;
        }
        let limit = (-lambda).exp();
        let mut k = 0;
        let mut p = self.f64();
        while p > limit && k < 1000 {
            k += 1;
            p *= self.f64();
        }
        k
    }
}

/// Vose's alias table: O(1) sampling from a discrete law.
struct Alias {
    /// Per cell: acceptance threshold (a fraction of 2^32) and alias, side by side so that a
    /// draw touches one cache line.
    cells: Vec<(u32, u32)>,
}

impl Alias {
    fn new(weights: &[f64]) -> Alias {
        let n = weights.len();
        let sum: f64 = weights.iter().sum();
        let mut scaled: Vec<f64> = weights.iter().map(|w| w * n as f64 / sum).collect();
        let mut threshold = vec![u32::MAX; n];
        let mut alias: Vec<u32> = (0..n as u32).collect();
        let (mut small, mut large): (Vec<usize>, Vec<usize>) = (0..n).partition(|&i| scaled[i] < 1.0);
        while let (Some(s), Some(&l)) = (small.pop(), large.last()) {
            threshold[s] = (scaled[s] * 4_294_967_296.0).min(u32::MAX as f64) as u32;
            alias[s] = l as u32;
            scaled[l] -= 1.0 - scaled[s];
            if scaled[l] < 1.0 {
                large.pop();
                small.push(l);
            }
        }
        Alias { cells: threshold.into_iter().zip(alias).collect() }
    }

    fn sample(&self, rng: &mut Rng) -> usize {
        let r = rng.next_u64();
        let i = (((r >> 32) * self.cells.len() as u64) >> 32) as usize;
        let (threshold, alias) = self.cells[i];
        if (r as u32) < threshold {
            i
        } else {
            alias as usize
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> SynthParams {
        SynthParams { n_docs: 5_000, n_queries: 50, ..Default::default() }
    }

    fn check_contract(m: &Csr, vocab: u32, n: usize) {
        assert_eq!(m.indptr.len(), n + 1);
        assert_eq!(m.indptr[0], 0);
        assert_eq!(*m.indptr.last().unwrap() as usize, m.indices.len());
        assert_eq!(m.indices.len(), m.values.len());
        for i in 0..m.n_rows() {
            let (ids, vals) = m.row(i);
            assert!(!ids.is_empty(), "row {i} empty");
            assert!(ids.windows(2).all(|w| w[0] < w[1]), "row {i} not sorted/unique");
            assert!(ids.iter().all(|&t| t < vocab), "row {i} id out of range");
            assert!(vals.iter().all(|v| v.is_finite() && *v > 0.0), "row {i} bad value");
        }
    }

    #[test]
    fn contract() {
        let p = small();
        let (d, q) = generate(&p);
        check_contract(&d, p.vocab_size, p.n_docs);
        check_contract(&q, p.vocab_size, p.n_queries);
        // Tiny vocabulary: draws stall, the uniform fill still gives valid rows.
        let p = SynthParams { vocab_size: 50, n_docs: 300, n_queries: 10, ..Default::default() };
        let (d, q) = generate(&p);
        check_contract(&d, 50, 300);
        check_contract(&q, 50, 10);
        // Zero rows.
        let (d, q) = generate(&SynthParams { n_docs: 0, n_queries: 0, ..Default::default() });
        assert_eq!((d.n_rows(), q.n_rows(), d.indptr.len()), (0, 0, 1));
    }

    #[test]
    fn deterministic_and_thread_independent() {
        let p = SynthParams { n_docs: 3_000, n_queries: 20, ..Default::default() };
        let a = generate(&p);
        let pool = |n| rayon::ThreadPoolBuilder::new().num_threads(n).build().unwrap();
        let b = pool(1).install(|| generate(&p));
        let c = pool(3).install(|| generate(&p));
        assert_eq!(a, b);
        assert_eq!(a, c);
        let other = generate(&SynthParams { seed: 7, ..p.clone() });
        assert_ne!(a.0, other.0);
        // A prefix of rows does not depend on how many rows follow.
        let shorter = generate(&SynthParams { n_docs: 1_500, ..p });
        assert_eq!(shorter.0.indptr[..], a.0.indptr[..1501]);
        assert_eq!(shorter.0.indices[..], a.0.indices[..shorter.0.nnz()]);
    }

    #[test]
    fn mean_nnz_matches_parameters() {
        let p = small();
        let (d, q) = generate(&p);
        let dm = d.nnz() as f64 / d.n_rows() as f64;
        let qm = q.nnz() as f64 / q.n_rows() as f64;
        assert!((dm / p.doc_nnz - 1.0).abs() < 0.1, "doc mean {dm}");
        assert!((qm / p.query_nnz - 1.0).abs() < 0.1, "query mean {qm}");
        // Lengths vary (SPLADE: roughly 40..300).
        let lens: Vec<u64> = d.indptr.windows(2).map(|w| w[1] - w[0]).collect();
        let (lo, hi) = (*lens.iter().min().unwrap(), *lens.iter().max().unwrap());
        assert!(lo < 50 && hi > 250, "lengths {lo}..{hi}");
    }

    #[test]
    fn popularity_is_heavy_tailed() {
        let p = small();
        let (d, _) = generate(&p);
        let mut df = vec![0u64; p.vocab_size as usize];
        for &t in &d.indices {
            df[t as usize] += 1;
        }
        df.sort_unstable_by(|a, b| b.cmp(a));
        let top: u64 = df[..df.len() / 100].iter().sum();
        let share = top as f64 / d.nnz() as f64;
        assert!(share > 0.2, "top 1% of terms hold {share:.3} of postings");
        // The longest list covers a large share of documents, and many terms are rare.
        assert!(df[0] as f64 > 0.3 * p.n_docs as f64, "longest list {}", df[0]);
        let used = df.iter().filter(|&&x| x > 0).count();
        assert!(used > p.vocab_size as usize / 3, "only {used} terms used");
    }

    #[test]
    fn weights_look_like_splade() {
        let (d, q) = generate(&small());
        let frac =
            |v: &[f32], lo: f32, hi: f32| v.iter().filter(|&&x| x >= lo && x <= hi).count() as f64 / v.len() as f64;
        assert!(frac(&d.values, 0.1, 1.5) > 0.7, "{}", frac(&d.values, 0.1, 1.5));
        let max = d.values.iter().cloned().fold(0f32, f32::max);
        assert!((2.0..6.0).contains(&max), "max {max}");
        let mean = |v: &[f32]| v.iter().map(|&x| x as f64).sum::<f64>() / v.len() as f64;
        assert!(mean(&q.values) > mean(&d.values));
    }

    #[test]
    fn queries_share_terms_with_their_best_documents() {
        let (d, q) = generate(&small());
        let overlap = |a: &[u32], b: &[u32]| {
            let (mut i, mut j, mut n) = (0, 0, 0);
            while i < a.len() && j < b.len() {
                match a[i].cmp(&b[j]) {
                    std::cmp::Ordering::Less => i += 1,
                    std::cmp::Ordering::Greater => j += 1,
                    std::cmp::Ordering::Equal => (i, j, n) = (i + 1, j + 1, n + 1),
                }
            }
            n
        };
        let mut dense = vec![0f32; 30_522];
        let (mut best_overlap, mut random_overlap) = (0.0, 0.0);
        for qi in 0..q.n_rows() {
            let (qt, qv) = q.row(qi);
            for (&t, &v) in qt.iter().zip(qv) {
                dense[t as usize] = v;
            }
            let score = |di: usize| {
                let (dt, dv) = d.row(di);
                dt.iter().zip(dv).map(|(&t, &v)| dense[t as usize] * v).sum::<f32>()
            };
            let best = (0..d.n_rows()).max_by(|&a, &b| score(a).total_cmp(&score(b))).unwrap();
            best_overlap += overlap(qt, d.row(best).0) as f64;
            let random: usize = (0..100).map(|k| overlap(qt, d.row((qi * 97 + k * 31) % d.n_rows()).0)).sum();
            random_overlap += random as f64 / 100.0;
            for &t in qt {
                dense[t as usize] = 0.0;
            }
        }
        assert!(best_overlap > 3.0 * random_overlap, "best {best_overlap}, random {random_overlap}");
    }

    #[test]
    fn invalid_parameters_are_errors() {
        for p in [
            SynthParams { vocab_size: 1, ..Default::default() },
            SynthParams { doc_nnz: f64::NAN, ..Default::default() },
            SynthParams { n_topics: 0, ..Default::default() },
            SynthParams { topics_per_doc: 0.5, ..Default::default() },
            SynthParams { background_fraction: 1.5, ..Default::default() },
        ] {
            assert!(matches!(try_generate(&p), Err(Error::InvalidArgument(_))), "{p:?}");
        }
    }

    /// Timing of the default model at 1M documents (`--release --ignored --nocapture`).
    #[test]
    #[ignore]
    fn time_1m_docs() {
        let p = SynthParams { n_docs: 1_000_000, n_queries: 1_000, ..Default::default() };
        // CPU time of the process (utime + stime, in clock ticks of 10 ms), as the machines
        // here are shared and wall time says little.
        let cpu = || {
            let s = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
            let f: Vec<&str> = s.rsplit(')').next().unwrap_or("").split_whitespace().collect();
            let tick = |i: usize| f.get(i).and_then(|x| x.parse::<f64>().ok()).unwrap_or(0.0);
            (tick(11) + tick(12)) / 100.0
        };
        let (t, c) = (std::time::Instant::now(), cpu());
        let (d, q) = generate(&p);
        println!(
            "1M docs ({} postings) + {} queries: wall {:?}, cpu {:.2} s, {} threads",
            d.nnz(),
            q.n_rows(),
            t.elapsed(),
            cpu() - c,
            rayon::current_num_threads()
        );
    }

    /// Not a check: prints the shape of the default corpus (`--ignored --nocapture`).
    #[test]
    #[ignore]
    fn print_stats() {
        let p = SynthParams { n_docs: 20_000, ..Default::default() };
        let t = std::time::Instant::now();
        let (d, q) = generate(&p);
        println!("generated in {:?}", t.elapsed());
        let mut v = d.values.clone();
        v.sort_by(f32::total_cmp);
        let pct = |v: &[f32], x: f64| v[((v.len() - 1) as f64 * x) as usize];
        println!(
            "doc weights p1 {} p10 {} p50 {} p90 {} p99 {} p99.9 {} max {}",
            pct(&v, 0.01),
            pct(&v, 0.1),
            pct(&v, 0.5),
            pct(&v, 0.9),
            pct(&v, 0.99),
            pct(&v, 0.999),
            v[v.len() - 1]
        );
        let mut v = q.values.clone();
        v.sort_by(f32::total_cmp);
        println!(
            "query weights p10 {} p50 {} p90 {} p99 {} max {}",
            pct(&v, 0.1),
            pct(&v, 0.5),
            pct(&v, 0.9),
            pct(&v, 0.99),
            v[v.len() - 1]
        );
        let mut lens: Vec<u64> = d.indptr.windows(2).map(|w| w[1] - w[0]).collect();
        lens.sort();
        println!(
            "doc lens p1 {} p5 {} p50 {} p95 {} p99 {} max {} mean {}",
            lens[lens.len() / 100],
            lens[lens.len() / 20],
            lens[lens.len() / 2],
            lens[lens.len() * 95 / 100],
            lens[lens.len() * 99 / 100],
            lens[lens.len() - 1],
            d.nnz() as f64 / d.n_rows() as f64
        );
        let mut df = vec![0u64; p.vocab_size as usize];
        for &t in &d.indices {
            df[t as usize] += 1;
        }
        df.sort_unstable_by(|a, b| b.cmp(a));
        let share = |k: usize| df[..k].iter().sum::<u64>() as f64 / d.nnz() as f64;
        println!("df top {:?}", &df[..10]);
        println!(
            "share top1% {:.3} top10% {:.3}; used terms {}",
            share(305),
            share(3052),
            df.iter().filter(|&&x| x > 0).count()
        );
    }
}
