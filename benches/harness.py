#!/usr/bin/env python
"""Side-by-side benchmark of sparsedex and its peers on one synthetic SPLADE-like corpus.

    python benches/harness.py --docs 100000 --queries 200 --k 10 --seed 0 --systems all \
        --out benches/results/

Every system is built and queried in the same process, on the same corpus and queries:
scipy (exhaustive float32 dot product, the baseline and, in float64, the ground truth), bmp,
PISA (pyterrier-pisa), Seismic (pyseismic-lsr) and every sparsedex algorithm. Per system:
build time, index bytes, median and p90 ms/query (k=10, one thread, after a warm-up, one
query per call), speedup against scipy measured in the same run, recall@10 against exact
float scoring. See benches/README.md for the peers' settings and traps.

Timing is fair to every row (each sparsedex algorithm, each peer setting): the queries are cut
into chunks of --chunk and each chunk is run by every row in a fresh seeded shuffled order
before the next chunk (``time_rows``), so load and drift over the run land on every row alike;
--control NAME,... times sparsedex algorithms twice (rows NAME-again) to show it (ratio ~1.00).
"""

from __future__ import annotations

import os

# One thread everywhere (before numpy/scipy load their BLAS). Rayon-based peers take
# num_threads explicitly; RAYON_NUM_THREADS is left alone so sparsedex's batch row can use
# all cores.
for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import argparse  # noqa: E402
import datetime  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import peers  # noqa: E402
from peers import log  # noqa: E402

BENCH_DIR = Path(__file__).resolve().parent
VOCAB = 30_522

# =========================================================================== corpus
# Fallback generator, used until sparsedex._core.synthetic_corpus exists. Parameters:
#   * 30,522 terms; term ids = a fixed random permutation of popularity ranks;
#   * global popularity p(rank) ∝ (rank + 10) ** -1.05 (heavy tail: the top term is in
#     ~60 % of documents, the median term in ~0.2 %);
#   * 1,000 topics × 400 terms drawn by popularity ** 0.5 (mid-frequency terms), Zipf
#     (rank + 5) ** -0.9 inside a topic; a document takes 60 % of its draws from one or two
#     topics, a query 70 % from one topic; the rest from the global distribution;
#   * draws per row log-normal (sigma 0.35) around 140 (docs) / 50 (queries), then
#     de-duplicated: ~126 unique terms per document, ~47 per query;
#   * weight = lognormal × topic boost (1.6 for topic terms) × an IDF-like factor
#     clip(0.45 + 0.22·log10(1 + popularity rank), 0.45, 1.5) (SPLADE gives frequent terms
#     low weights), clipped to [0.01, 3.5], float32. Documents: exp(N(-0.75, 0.6)); queries
#     are more skewed, exp(N(-0.9, 0.8)): a few heavy terms and many light expansions;
#   * documents in random order (no topical clustering of doc ids).
FALLBACK_VERSION = "fallback-v2"
_N_TOPICS = 1_000
_TOPIC_TERMS = 400


def _sample_ranks(rng, cdf, size):
    return np.minimum(np.searchsorted(cdf, rng.random(size), side="right"), len(cdf) - 1)


def _rows(rng, n, mean_draws, topic_frac, two_topic_prob, weight_mu, weight_sigma, model):
    perm, gcdf, topic_terms, tcdf, idf = model
    max_draws = int(mean_draws * 3)
    chunk = max(1, 2_000_000 // max_draws)
    indptr = [np.zeros(1, dtype=np.uint64)]
    all_idx, all_val = [], []
    offset = 0
    for start in range(0, n, chunk):
        c = min(chunk, n - start)
        nd = np.clip(np.round(rng.lognormal(np.log(mean_draws), 0.35, c)), 4, max_draws).astype(np.int64)
        z1 = rng.integers(0, _N_TOPICS, c)
        z2 = np.where(rng.random(c) < two_topic_prob, rng.integers(0, _N_TOPICS, c), z1)
        from_topic = rng.random((c, max_draws)) < topic_frac
        which = np.where(rng.random((c, max_draws)) < 0.5, z1[:, None], z2[:, None])
        topic_term = topic_terms[which, _sample_ranks(rng, tcdf, (c, max_draws))]
        global_term = perm[_sample_ranks(rng, gcdf, (c, max_draws))]
        term = np.where(from_topic, topic_term, global_term).astype(np.int64)
        key = np.where(np.arange(max_draws)[None, :] < nd[:, None], term, VOCAB)  # VOCAB = unused
        order = np.argsort(key, axis=1, kind="stable")
        skey = np.take_along_axis(key, order, axis=1)
        stopic = np.take_along_axis(from_topic, order, axis=1)
        keep = (skey < VOCAB) & np.concatenate(
            [np.ones((c, 1), dtype=bool), skey[:, 1:] != skey[:, :-1]], axis=1)
        counts = keep.sum(axis=1)
        idx = skey[keep].astype(np.uint32)
        boost = np.where(stopic[keep], 1.6, 1.0) * idf[idx]
        val = np.clip(np.exp(rng.normal(weight_mu, weight_sigma, idx.shape[0])) * boost,
                      0.01, 3.5).astype(np.float32)
        all_idx.append(idx)
        all_val.append(val)
        indptr.append((offset + np.cumsum(counts)).astype(np.uint64))
        offset += int(counts.sum())
        if n > 200_000:
            log(f"  generated {start + c:,}/{n:,} rows")
    return np.concatenate(indptr), np.concatenate(all_idx), np.concatenate(all_val)


def fallback_corpus(n_docs: int, n_queries: int, seed: int = 0):
    """Deterministic SPLADE-like corpus, same 6-tuple layout as ``_core.synthetic_corpus``."""
    rng = np.random.default_rng([seed, 0x5EED])
    perm = rng.permutation(VOCAB)  # popularity rank -> term id
    gp = (np.arange(VOCAB) + 10.0) ** -1.05
    gcdf = np.cumsum(gp / gp.sum())
    gcdf[-1] = 1.0
    tp = gp ** 0.5
    tp /= tp.sum()
    topic_terms = np.stack([perm[rng.choice(VOCAB, _TOPIC_TERMS, replace=False, p=tp)]
                            for _ in range(_N_TOPICS)])
    tw = (np.arange(_TOPIC_TERMS) + 5.0) ** -0.9
    tcdf = np.cumsum(tw / tw.sum())
    tcdf[-1] = 1.0
    idf = np.empty(VOCAB)
    idf[perm] = np.clip(0.45 + 0.22 * np.log10(1.0 + np.arange(VOCAB)), 0.45, 1.5)  # by term id
    model = (perm, gcdf, topic_terms, tcdf, idf)
    docs = _rows(np.random.default_rng([seed, 1]), n_docs, 140, 0.6, 0.5, -0.75, 0.6, model)
    queries = _rows(np.random.default_rng([seed, 2]), n_queries, 50, 0.7, 0.0, -0.9, 0.8, model)
    return docs + queries


@dataclass
class Corpus:
    doc_indptr: np.ndarray   # u64
    doc_indices: np.ndarray  # u32, sorted and unique within a row
    doc_values: np.ndarray   # f32, > 0
    q_indptr: np.ndarray
    q_indices: np.ndarray
    q_values: np.ndarray
    vocab: int
    source: str

    @property
    def n_docs(self):
        return len(self.doc_indptr) - 1

    @property
    def n_queries(self):
        return len(self.q_indptr) - 1

    def query(self, i):
        s, e = int(self.q_indptr[i]), int(self.q_indptr[i + 1])
        return self.q_indices[s:e], self.q_values[s:e]

    def describe(self):
        dl = np.diff(self.doc_indptr.astype(np.int64))
        ql = np.diff(self.q_indptr.astype(np.int64))
        df = np.bincount(self.doc_indices, minlength=self.vocab)
        touched = np.array([df[self.query(i)[0]].sum() for i in range(self.n_queries)])
        return {
            "source": self.source, "docs": self.n_docs, "queries": self.n_queries,
            "vocab": self.vocab, "postings": int(len(self.doc_indices)),
            "doc_nnz_mean": float(dl.mean()), "query_nnz_mean": float(ql.mean()),
            "query_nnz_max": int(ql.max()),
            "max_doc_weight": float(self.doc_values.max()),
            "max_query_weight": float(self.q_values.max()),
            "top_term_doc_fraction": float(df.max() / self.n_docs),
            "postings_per_query_median": float(np.median(touched)),
        }


def _canonical(indptr, indices, values, what):
    indptr = np.ascontiguousarray(indptr, dtype=np.uint64)
    indices = np.ascontiguousarray(indices, dtype=np.uint32)
    values = np.ascontiguousarray(values, dtype=np.float32)
    if not np.all(np.isfinite(values)) or (values < 0).any():
        raise ValueError(f"{what}: weights must be finite and >= 0")
    lens = np.diff(indptr.astype(np.int64))
    row = np.repeat(np.arange(len(lens), dtype=np.int64), lens)
    order = np.lexsort((indices, row))  # Seismic wants sorted term ids per row
    if not np.array_equal(order, np.arange(len(order))):
        indices, values, row = indices[order], values[order], row[order]
    dup = (row[1:] == row[:-1]) & (indices[1:] == indices[:-1])
    if dup.any():
        raise ValueError(f"{what}: duplicate term id in row {int(row[1:][dup][0])}")
    if (values == 0).any():  # zeros are dropped, as every engine would
        keep = values != 0
        indices, values, row = indices[keep], values[keep], row[keep]
        indptr = np.concatenate([[0], np.cumsum(np.bincount(row, minlength=len(lens)))]).astype(np.uint64)
    return indptr, indices, values


def load_corpus(args) -> Corpus:
    """--data file.npz, else sparsedex._core.synthetic_corpus, else the numpy fallback.
    Generated corpora are cached under benches/data/ (git-ignored)."""
    names = ("doc_indptr", "doc_indices", "doc_values", "q_indptr", "q_indices", "q_values")
    cal = None  # calibration queries for sparsedex's approximate mode (disjoint from the timed ones)
    if args.data and Path(args.data).is_dir():
        # A directory with scipy.sparse docs.npz and queries.npz (e.g. ../shared/data/debian).
        import scipy.sparse as sps
        dm, qm = sps.load_npz(Path(args.data) / "docs.npz"), sps.load_npz(Path(args.data) / "queries.npz")
        ncal = getattr(args, "calibration_queries", 0)
        cal_m = qm[args.queries: args.queries + ncal] if ncal else None
        qm = qm[: args.queries]
        arrays = [dm.indptr, dm.indices, dm.data, qm.indptr, qm.indices, qm.data]
        source = f"directory {args.data} (docs.npz, queries.npz; first {qm.shape[0]} queries)"
        if cal_m is not None:
            cal = (cal_m.indptr, cal_m.indices, cal_m.data)
            source += f"; the next {cal_m.shape[0]} queries calibrate the sparsedex-qcal rows (and a float index)"
    elif args.data:
        z = np.load(args.data)
        arrays = [z[n] for n in names]
        source = f"file {args.data}"
    else:
        gen, fn = args.generator, None
        if gen in ("auto", "core"):
            try:
                from sparsedex import _core
                fn = _core.synthetic_corpus
                gen = "core"
            except (ImportError, AttributeError) as exc:
                if gen == "core":
                    raise SystemExit(f"--generator core: sparsedex._core.synthetic_corpus unavailable ({exc})")
                gen = "fallback"
        tag = FALLBACK_VERSION if gen == "fallback" else f"core-{_sparsedex_version()}"
        ncal = getattr(args, "calibration_queries", 0)
        if ncal and gen == "core":
            # the generator's queries for n + m queries start with its queries for n: the
            # timed queries stay the same, the next m calibrate
            full = fn(args.docs, args.queries + ncal, args.seed)
            qi = _canonical(*full[3:], "queries")
            lo, hi = int(qi[0][args.queries]), int(qi[0][-1])
            cal = (qi[0][args.queries:] - lo, qi[1][lo:hi], qi[2][lo:hi])
        cache = BENCH_DIR / "data" / f"{tag}-d{args.docs}-q{args.queries}-s{args.seed}.npz"
        if cache.exists() and not args.regen:
            log(f"corpus: cached {cache}")
            z = np.load(cache)
            arrays = [z[n] for n in names]
        else:
            log(f"corpus: generating {args.docs:,} docs, {args.queries:,} queries ({gen} generator)")
            t = time.perf_counter()
            arrays = list(fn(args.docs, args.queries, args.seed) if fn else
                          fallback_corpus(args.docs, args.queries, args.seed))
            log(f"corpus: generated in {time.perf_counter() - t:.1f}s; caching to {cache}")
            cache.parent.mkdir(parents=True, exist_ok=True)
            np.savez(cache, **dict(zip(names, arrays)))
        source = f"{tag} generator, seed {args.seed}"
        if cal is not None:
            source += (f"; the generator's next {len(cal[0]) - 1} queries calibrate the sparsedex-qcal rows "
                       "(and a float index)")
    d = _canonical(*arrays[:3], "documents")
    q = _canonical(*arrays[3:], "queries")
    if getattr(args, "doc_order", "input") == "similarity":
        from sparsedex import _core
        order = _core.similarity_order(np.ascontiguousarray(d[0], np.uint64), np.ascontiguousarray(d[1], np.uint32),
                                       np.ascontiguousarray(d[2], np.float32)).astype(np.int64)
        lens = np.diff(d[0].astype(np.int64))[order]
        indptr = np.zeros(len(order) + 1, np.int64)
        np.cumsum(lens, out=indptr[1:])
        starts = d[0].astype(np.int64)[order]
        gather = np.repeat(starts - indptr[:-1], lens) + np.arange(indptr[-1])
        d = (indptr.astype(d[0].dtype), d[1][gather], d[2][gather])
        source += "; documents given to every system in sparsedex's similarity order"
        log("corpus: documents permuted into sparsedex's similarity order for every system")
    vocab = max(VOCAB, int(d[1].max()) + 1, int(q[1].max()) + 1)
    c = Corpus(*d, *q, vocab=vocab, source=source)
    c.calibration = None if cal is None else _canonical(*cal, "calibration queries")
    return c


def _sparsedex_version():
    try:
        import importlib.metadata as md
        return md.version("sparsedex")
    except Exception:
        return "dev"


# ===================================================================== ground truth
class Scorer:
    """Exact scores of documents for a query under some weighting (float64 or integers)."""

    def __init__(self, c: Corpus, doc_values, dtype):
        import scipy.sparse as sp
        self.csc = sp.csr_matrix((doc_values.astype(dtype), c.doc_indices.astype(np.int64),
                                  c.doc_indptr.astype(np.int64)), shape=(c.n_docs, c.vocab)).tocsc()

    def all_scores(self, q_idx, q_val):
        return self.csc[:, q_idx.astype(np.int64)] @ q_val


def topk_truth(scorer: Scorer, c: Corpus, k: int, qweights):
    """Per query: (top-k ids by score desc / id asc, k-th score, max score)."""
    ids, kth, top = [], [], []
    for i in range(c.n_queries):
        qi, _ = c.query(i)
        s = scorer.all_scores(qi, qweights(i))
        kk = min(k, len(s))
        t = np.argpartition(-s, kk - 1)[:kk]
        t = t[np.lexsort((t, -s[t]))]
        ids.append(t)
        kth.append(s[t[-1]])
        top.append(s[t[0]])
        if i and i % 500 == 0:
            log(f"  truth: {i:,}/{c.n_queries:,} queries")
    return ids, np.array(kth), np.array(top)


def recall_at_k(scorer, c, kth, results, qweights, k, rel_eps=1e-9):
    """|returned ∩ truth| / k, where a returned doc counts if its exact score reaches the k-th
    exact score (so ties at the k-th place are not held against anyone)."""
    rec = []
    for i, got in enumerate(results):
        got = np.unique(np.asarray(got, dtype=np.int64))
        got = got[(got >= 0) & (got < c.n_docs)]  # ignore padding of short result lists
        if len(got) == 0:
            rec.append(0.0)
            continue
        qi, _ = c.query(i)
        s = scorer.csc[:, qi.astype(np.int64)][got] @ qweights(i)
        need = min(k, c.n_docs)
        rec.append(min(need, int((s >= kth[i] - rel_eps * abs(kth[i])).sum())) / need)
    return float(np.mean(rec))


# ======================================================================= bmp scale
def _int_max_score(csc, qterms, qints, scale):
    """max over queries and rows of sum(qint * rint(w * scale)): bmp's 16-bit quantity."""
    import scipy.sparse as sp
    m = sp.csc_matrix((np.rint(csc.data * scale), csc.indices, csc.indptr), shape=csc.shape)
    return max(float((m[:, t] @ q).max()) for t, q in zip(qterms, qints))


def _block_max_csc(c: Corpus, bsize):
    """(blocks × vocab) matrix of the largest float weight of each term in each doc block;
    rint is monotone, so rint(block max × s) is bmp's block max at scale s."""
    import scipy.sparse as sp
    row = np.repeat(np.arange(c.n_docs, dtype=np.int64) // bsize, np.diff(c.doc_indptr.astype(np.int64)))
    key = row * c.vocab + c.doc_indices
    order = np.argsort(key, kind="stable")
    key, val = key[order], c.doc_values[order].astype(np.float64)
    first = np.concatenate([[True], key[1:] != key[:-1]])
    starts = np.flatnonzero(first)
    bmax = np.maximum.reduceat(val, starts)
    k = key[starts]
    nb = (c.n_docs + bsize - 1) // bsize
    return sp.csr_matrix((bmax, (k // c.vocab, k % c.vocab)), shape=(nb, c.vocab)).tocsc()


def choose_bmp_scale(c: Corpus, rule="top", bsize=32, max_score=65_535):
    """Largest doc scale s (impact = round(w*s) <= 255) for bmp's 16-bit arithmetic.

    rule "top": no query's top document score (sum of ceil(q*32/max q) * impact) passes
    65,535 (PEERS.md's rule: scores accumulate in u16 and wrap).
    rule "blockmax": no query's block upper bound (the same sum over each term's block-max
    impact) passes 65,535 either. bmp's upper bounds saturate at 65,535 rather than wrap, so
    "top" is enough for exact scores, but saturated blocks all look alike and cannot be
    pruned; "blockmax" trades float recall (a smaller scale) for pruning power.
    Returns (scale, top document score, largest block upper bound, reason)."""
    from peers import Bmp
    qterms = [c.query(i)[0].astype(np.int64) for i in range(c.n_queries)]
    qints = [Bmp.quantize_query(c.query(i)[1]).astype(np.float64) for i in range(c.n_queries)]
    docs = Scorer(c, c.doc_values, np.float64).csc
    blocks = _block_max_csc(c, bsize)
    target = docs if rule == "top" else blocks
    s_hi = 255.0 / float(c.doc_values.max())
    f_top = max(float((target[:, t] @ q).max()) for t, q in zip(qterms, qints))
    slack = 0.5 * max(q.sum() for q in qints)  # rint adds at most 0.5 per term
    if f_top * s_hi + slack <= max_score:
        good, why = s_hi, "255 / max doc weight: the u8 impact limit binds first"
    else:
        why = ("16-bit limit on the top document score binds first" if rule == "top" else
               "16-bit limit on block upper bounds binds first")
        good = (max_score - slack) / f_top  # provably safe
        bad = min(s_hi, (max_score + 1) / f_top)  # provably unsafe unless capped by s_hi
        if _int_max_score(target, qterms, qints, bad) <= max_score:
            good = bad
        else:
            for _ in range(8):
                mid = 0.5 * (good + bad)
                if _int_max_score(target, qterms, qints, mid) <= max_score:
                    good = mid
                else:
                    bad = mid
        good = float(np.floor(good * 1e4) / 1e4)
    top = _int_max_score(docs, qterms, qints, good)
    ub = _int_max_score(blocks, qterms, qints, good)
    assert (top if rule == "top" else ub) <= max_score, (good, top, ub)
    return good, top, ub, why


# ========================================================================== timing
def row_orders(n_rows, n_chunks, rounds, seed):
    """The order in which the rows run each chunk of queries: ``orders[r][ci]`` is a permutation
    of ``range(n_rows)`` for chunk ``ci`` of round ``r``. Every chunk takes a fresh seeded shuffle,
    so no row is systematically first or last, nor always follows the same other row (whose
    cache footprint it would inherit)."""
    rng = np.random.default_rng([seed, 0x0DE5])
    return [[rng.permutation(n_rows) for _ in range(n_chunks)] for _ in range(rounds)]


def time_rows(entries, prepared, n_queries, args):
    """Time every row (Entry) on every query, one query per call, fair to every row.

    ``--rounds`` rounds; each round starts with ``--warmup`` untimed queries per row, then cuts
    the queries into chunks of ``--chunk`` (0: one chunk, i.e. whole rows) and runs each chunk
    by every row in a seeded shuffled order (``row_orders``) before the next chunk. Load on the
    shared machine and any drift over the run (the same algorithm measured ~14% slower late in
    a long run than early, benches/results/auto-row-order-stop18.md) then land on every row
    alike; stop 18's harness ran the rows in a fixed order, always auto last.

    Returns (ns per row: one array per round, process CPU / wall per row and round, the first
    round's (ids, scores) per row)."""
    n = len(entries)
    chunk = args.chunk if args.chunk > 0 else n_queries
    starts = list(range(0, n_queries, chunk))
    orders = row_orders(n, len(starts), args.rounds, args.order_seed)
    times = {e.name: [] for e in entries}
    cpu = {e.name: [] for e in entries}
    first = {e.name: ([None] * n_queries, [None] * n_queries) for e in entries}
    last = time.perf_counter()
    for rnd in range(args.rounds):
        ns = {e.name: np.zeros(n_queries, np.int64) for e in entries}
        busy = {e.name: [0.0, 0.0] for e in entries}  # process CPU s, wall s
        for j in orders[rnd][0]:
            e = entries[j]
            if e.setup:
                e.setup()
            for q in prepared[id(e.adapter)][: args.warmup]:
                e.adapter.search(q)
        for ci, lo in enumerate(starts):
            hi = min(lo + chunk, n_queries)
            for j in orders[rnd][ci]:
                e = entries[j]
                if e.setup:
                    e.setup()
                qs, out, res = prepared[id(e.adapter)], ns[e.name], first[e.name]
                cpu0, wall0 = time.process_time(), time.perf_counter()
                for i in range(lo, hi):
                    t = time.perf_counter_ns()
                    ids, sc = e.adapter.search(qs[i])
                    out[i] = time.perf_counter_ns() - t
                    if rnd == 0:
                        res[0][i] = np.asarray(ids, dtype=np.int64)
                        res[1][i] = np.asarray(sc, dtype=np.float64)
                busy[e.name][0] += time.process_time() - cpu0
                busy[e.name][1] += time.perf_counter() - wall0
            if time.perf_counter() - last > 10:
                last = time.perf_counter()
                log(f"  timing: round {rnd + 1}/{args.rounds}, queries {hi:,}/{n_queries:,}, {n} rows")
        for e in entries:
            times[e.name].append(ns[e.name])
            cpu[e.name].append(busy[e.name][0] / max(busy[e.name][1], 1e-9))
        log(f"timing: round {rnd + 1}/{args.rounds} done")
    return times, cpu, first


def _order_note(args):
    how = (f"chunks of {args.chunk} queries, each run by every row in a fresh shuffled order"
           if args.chunk > 0 else "whole rows, in a fresh shuffled order per round")
    return (f"timing order: {args.rounds} rounds, each after {args.warmup} warm-up queries per row; "
            f"{how} (seed {args.order_seed}); per query the fastest round")


@dataclass
class Entry:
    """One table row: a built adapter plus the setting (algorithm, knobs) the row uses."""
    name: str
    kind: str
    adapter: object
    build_s: float
    nbytes: int
    setup: object = None      # callable that switches the adapter to this row's setting
    own: object = None        # (scorer, query weights, k-th own score) for integer-exact peers
    ref: str = None           # row whose ids and scores this one must equal exactly
    extra: dict = None


def run(args):
    c = load_corpus(args)
    info = c.describe()
    log(f"corpus: {info}")
    k = args.k
    workdir = Path(args.workdir) / f"d{c.n_docs}-q{c.n_queries}-s{args.seed}"
    workdir.mkdir(parents=True, exist_ok=True)
    systems = _parse_systems(args.systems)

    log("ground truth: exact float64 top-k (scipy, exhaustive)")
    t = time.perf_counter()
    truth = Scorer(c, c.doc_values, np.float64)
    fw = lambda i: c.query(i)[1].astype(np.float64)  # noqa: E731
    _, gt_kth, _ = topk_truth(truth, c, k, fw)
    log(f"ground truth: {time.perf_counter() - t:.1f}s")

    entries, notes, skipped, batch = [], [], [], []

    def build(adapter, label):
        log(f"{label}: building")
        t0 = time.perf_counter()
        adapter.build(c)
        b = time.perf_counter() - t0
        nbytes = adapter.bytes()
        log(f"{label}: built in {b:.1f}s, {nbytes / 1e6:.1f} MB")
        return b, nbytes

    # ---------------------------------------------------------------- build phase
    a = peers.ScipyExhaustive(k)
    a.info["note"] = "float32 CSC matrix in memory; columns of the query terms times the weights"
    entries.append(Entry("scipy", "exact", a, *build(a, "scipy")))

    if "bmp" in systems:
        try:
            if args.bmp_scale:
                scale, top, ub, why = args.bmp_scale, None, None, "given on the command line"
            else:
                log(f"bmp: choosing the doc-impact scale (16-bit rule '{args.bmp_scale_rule}')")
                scale, top, ub, why = choose_bmp_scale(c, args.bmp_scale_rule, args.bmp_bsize)
            log(f"bmp: doc scale {scale:.4f} ({why}); largest top score {top}, "
                f"largest block upper bound {ub} (saturates at 65,535)")
            a = peers.Bmp(k, workdir, scale, bsize=args.bmp_bsize)
            a.info.update(scale_rule=args.bmp_scale_rule, scale_reason=why, max_top_score=top,
                          max_block_upper_bound=ub)
            b, nb = build(a, "bmp")
            own_sc = Scorer(c, peers.Bmp.quantize_docs(c.doc_values, scale), np.float64)
            ow = lambda i: peers.Bmp.quantize_query(c.query(i)[1]).astype(np.float64)  # noqa: E731
            _, own_kth, own_top = topk_truth(own_sc, c, k, ow)
            entries.append(Entry("bmp", "exact", a, b, nb, own=(own_sc, ow, own_kth)))
            ubtxt = "" if ub is None else f", largest block upper bound {ub:.0f}"
            notes.append(f"bmp: block {args.bmp_bsize}, alpha=beta=1 (exact over its own scores), "
                         f"doc impact = round(w x {scale:.4f}) ({why}; largest top score over these "
                         f"queries {own_top.max():.0f}{ubtxt}), query = ceil(q x 32 / max q) inside "
                         "bmp; no doc reordering")
        except Exception as exc:
            skipped.append(f"bmp: {type(exc).__name__}: {exc}")
            log(skipped[-1])

    if "pisa" in systems:
        try:
            a = peers.Pisa(k, workdir, algorithms=args.pisa_algorithms.split(","),
                           doc_scale=args.pisa_doc_scale, query_scale=args.pisa_query_scale)
            b, nb = build(a, "pisa")
            own_sc = Scorer(c, peers.Pisa.quantize_docs(c.doc_values, a.doc_scale), np.float64)
            ow = (lambda a_: lambda i: a_.quantize_query(c.query(i)[1]).astype(np.float64))(a)
            _, own_kth, _ = topk_truth(own_sc, c, k, ow)
            for alg in a.algorithms:
                entries.append(Entry(f"pisa-{alg}", "exact", a, b, nb,
                                     setup=(lambda a_, x: lambda: a_.set_algorithm(x))(a, alg),
                                     own=(own_sc, ow, own_kth), extra={"algorithm": alg}))
            notes.append(f"pisa: quantized scorer, block_simdbp, doc impact = int(w x {a.doc_scale:g}), "
                         f"query weight = floor(q x {a.query_scale:g}) sent as repeated terms; "
                         "native _pisathon.retrieve, one query per call")
        except Exception as exc:
            skipped.append(f"pisa: {type(exc).__name__}: {exc}")
            log(skipped[-1])

    if "seismic" in systems:
        try:
            configs = [tuple(float(x) for x in cfg.split(":")) for cfg in args.seismic_configs.split(",")]
            configs = [(int(qc), hf) for qc, hf in configs]
            a = peers.Seismic(k, workdir, configs=configs, build_threads=args.build_threads)
            b, nb = build(a, "seismic")
            for qc, hf in configs:
                entries.append(Entry(f"seismic-qc{qc}-hf{hf:g}", "approx", a, b, nb,
                                     setup=(lambda a_, x, y: lambda: a_.set_config(x, y))(a, qc, hf),
                                     extra={"query_cut": qc, "heap_factor": hf}))
            notes.append("seismic: n_postings=3500, centroid_fraction=0.1, summary_energy=0.4, "
                         f"built with {args.build_threads} thread(s), searched with 1; rows named by "
                         "query_cut (qc) and heap_factor (hf)")
        except Exception as exc:
            skipped.append(f"seismic: {type(exc).__name__}: {exc}")
            log(skipped[-1])

    if "kannolo" in systems:
        try:
            efs = [int(x) for x in args.kannolo_efs.split(",") if x]
            a = peers.Kannolo(k, workdir, efs=efs, m=args.kannolo_m, ef_construction=args.kannolo_efc)
            b, nb = build(a, "kannolo")
            for ef in efs:
                entries.append(Entry(f"kannolo-ef{ef}", "approx", a, b, nb,
                                     setup=(lambda a_, x: lambda: a_.set_ef(x))(a, ef),
                                     extra={"ef_search": ef}))
            notes.append(f"kannolo: SparsePlainHNSW, m={args.kannolo_m}, ef_construction={args.kannolo_efc} "
                         "(build uses its own threads), searched one query per call; rows named by ef_search")
        except Exception as exc:
            skipped.append(f"kannolo: {type(exc).__name__}: {exc}")
            log(skipped[-1])

    if "sparsedex" in systems:
        ok, why = peers.sparsedex_available()
        if not ok:
            skipped.append(f"sparsedex: not available ({why})")
            log(skipped[-1])
        else:
            for quant in args.sparsedex_quantizations.split(","):
                try:
                    # With calibration queries, the main u8 index keeps the default calibration
                    # (pseudo-queries) and a second build calibrated on the queries has rows of
                    # its own (sparsedex-qcal-approximate@T).
                    qcal = quant == "u8" and c.calibration is not None and bool(args.approx_targets)
                    a = peers.Sparsedex(k, workdir, quantization=quant, calibrate=not qcal)
                    label = "sparsedex" if quant == "u8" else f"sparsedex-{quant}"
                    b, nb = build(a, label)
                    algs = a.algorithms
                    if quant == "u8" and args.sparsedex_algorithms != "all":
                        algs = [x for x in args.sparsedex_algorithms.split(",") if x in algs]
                    if quant != "u8" and args.sparsedex_float_algorithms != "all":
                        algs = [x for x in args.sparsedex_float_algorithms.split(",") if x in algs]
                    ordered = (["exhaustive"] if "exhaustive" in algs else []) + \
                        [x for x in algs if x != "exhaustive"]
                    again = [x for x in args.control.split(",") if x] if quant == "u8" else []
                    bad = [x for x in again if x not in a.algorithms]
                    if bad:
                        raise SystemExit(f"--control: unknown sparsedex algorithms {bad}; choose from {a.algorithms}")
                    for alg, suffix in [(x, "") for x in ordered] + [(x, "-again") for x in again]:
                        ref = f"{label}-exhaustive" if "exhaustive" in ordered and f"{alg}{suffix}" != "exhaustive" else None
                        entries.append(Entry(f"{label}-{alg}{suffix}", "exact", a, b, nb, ref=ref,
                                             setup=(lambda a_, x: lambda: a_.set_algorithm(x))(a, alg),
                                             extra={"algorithm": alg}))
                    if quant == "u8":
                        # The raw 8-bit scoring (scores="impacts": no float rerank), checked
                        # against its own exhaustive row.
                        raw = [x for x in args.sparsedex_impacts.split(",") if x]
                        bad = [x for x in raw if x not in a.algorithms]
                        if bad:
                            raise SystemExit(f"--sparsedex-impacts: unknown algorithms {bad}; choose from {a.algorithms}")
                        raw = (["exhaustive"] if "exhaustive" in raw else []) + [x for x in raw if x != "exhaustive"]
                        for alg in raw:
                            ref = f"{label}-exhaustive-impacts" if "exhaustive" in raw and alg != "exhaustive" else None
                            entries.append(Entry(f"{label}-{alg}-impacts", "exact", a, b, nb, ref=ref,
                                                 setup=(lambda a_, x: lambda: a_.set_algorithm(x))(a, f"{alg}:impacts"),
                                                 extra={"algorithm": alg, "scores": "impacts"}))
                        for t in [x for x in args.approx_targets.split(",") if x]:
                            entries.append(Entry(f"{label}-approximate@{t}", "approx", a, b, nb,
                                                 setup=(lambda a_, x: lambda: a_.set_algorithm(x))(a, f"approximate@{t}"),
                                                 extra={"algorithm": "approximate", "target_recall": float(t)}))
                        if qcal:
                            aq = peers.Sparsedex(k, workdir, quantization=quant, calibrate=True, tag="-qcal")
                            bq, nbq = build(aq, f"{label}-qcal")
                            for t in [x for x in args.approx_targets.split(",") if x]:
                                entries.append(Entry(
                                    f"{label}-qcal-approximate@{t}", "approx", aq, bq, nbq,
                                    setup=(lambda a_, x: lambda: a_.set_algorithm(x))(aq, f"approximate@{t}"),
                                    extra={"algorithm": "approximate", "target_recall": float(t),
                                           "calibration": "queries"}))
                            notes.append(f"{label}-qcal: the same index built again and calibrated on the "
                                         f"{len(c.calibration[0]) - 1} calibration queries (`calibrate(queries)`, "
                                         "counted in its build time); the sparsedex-approximate rows keep the "
                                         "default calibration, on pseudo-queries (stored rows)")
                    batch.append((label, a, b, nb))
                    notes.append(f"{label}: quantization={quant}, store_vectors=True; one row per algorithm in "
                                 "SparseIndex.algorithms; batch row = search_batch over all queries, "
                                 f"threads=None ({os.cpu_count()} cores)")
                except Exception as exc:
                    skipped.append(f"sparsedex ({quant}): {type(exc).__name__}: {exc}")
                    log(skipped[-1])

    # ---------------------------------------------------------------- timing phase
    prepared = {}
    for e in entries:
        if id(e.adapter) not in prepared:
            prepared[id(e.adapter)] = [e.adapter.prepare(*c.query(i)) for i in range(c.n_queries)]
    times, cpu, first = time_rows(entries, prepared, c.n_queries, args)
    notes.append(_order_note(args))

    rows = []
    for e in entries:
        ms = np.min(np.stack(times[e.name]), axis=0) / 1e6
        res, sc = first[e.name]
        row = {"system": e.name, "kind": e.kind, "version": e.adapter.version,
               "build_s": e.build_s, "index_bytes": int(e.nbytes),
               "postings_bytes": _postings_bytes(e.adapter),
               "median_ms": float(np.median(ms)), "p90_ms": float(np.percentile(ms, 90)),
               "mean_ms": float(ms.mean()), "cpu_per_wall": float(np.mean(cpu[e.name])),
               "rounds": args.rounds, "recall": recall_at_k(truth, c, gt_kth, res, fw, k)}
        if e.own is not None:  # exactness over the system's own integer scores
            own_sc, ow, own_kth = e.own
            row["recall_own_scores"] = recall_at_k(own_sc, c, own_kth, res, ow, k)
            agree = [np.allclose(own_sc.csc[:, c.query(i)[0].astype(np.int64)][ids] @ ow(i), s_,
                                 rtol=1e-6, atol=1e-6) for i, (ids, s_) in enumerate(zip(res, sc)) if len(ids)]
            row["reported_scores_match_model"] = float(np.mean(agree))
        if e.ref is not None:  # the contract: every algorithm returns exactly the oracle's top-k
            rres, rsc = first[e.ref]
            same = float(np.mean([np.array_equal(x, y) and np.array_equal(s_, t_)
                                  for x, y, s_, t_ in zip(res, rres, sc, rsc)]))
            row["matches_exhaustive"] = same
            if same < 1:
                log(f"WARNING: {e.name} differs from {e.ref} on {(1 - same) * 100:.1f}% of queries")
        row.update(e.extra or {})
        row["settings"] = dict(e.adapter.info)
        rows.append(row)
        log(f"{e.name}: median {row['median_ms']:.3f} ms, p90 {row['p90_ms']:.3f} ms, "
            f"recall@{k} {row['recall']:.4f}" +
            (f", own-score recall {row['recall_own_scores']:.4f}" if e.own else ""))

    for label, a, b, nb in batch:  # which candidate auto's race settled on (before the batch row)
        standing = getattr(getattr(getattr(a, "ix", None), "_core", None), "auto_standing", None)
        if standing is not None:
            lead, others = standing()
            notes.append(f"{label}-auto: the race's leader after the timed rounds: {lead}; median time ratio "
                         "of each other candidate to it on the same queries: " +
                         (", ".join(f"{n} {r:.2f}" for n, r in others) or "none"))
            for r in rows:
                if r["system"] == f"{label}-auto":
                    r["auto_leader"], r["auto_ratios"] = lead, dict(others)
    for label, a, b, nb in batch:
        try:
            rows.append(_batch_row(c, label, a, b, nb))
        except Exception as exc:
            skipped.append(f"{label} batch: {type(exc).__name__}: {exc}")
            log(skipped[-1])

    base = next(r for r in rows if r["system"] == "scipy")
    for r in rows:
        if r.get("median_ms"):
            r["speedup_vs_scipy"] = base["median_ms"] / r["median_ms"]
    notes.extend(_ratio_notes(rows, [label for label, *_ in batch]))
    return c, info, rows, notes, skipped


def _ratio_notes(rows, labels):
    """auto against the fastest exact algorithm of the same index, scoring and run (the float
    scores of a u8 index, and its raw 8-bit -impacts rows apart), each -impacts row against its
    float twin (the cost of the float rerank), and each control row (NAME-again) against its
    twin."""
    med = {r["system"]: r["median_ms"] for r in rows if r.get("median_ms")}
    out = []
    for label in labels:
        for tail in ("", "-impacts"):
            exact = {n: m for n, m in med.items() if n.startswith(f"{label}-") and n.endswith(tail)
                     and not n.endswith("-again") and (tail or not n.endswith("-impacts"))
                     and n[len(label) + 1:] != f"auto{tail}" and "approximate" not in n
                     and n[len(label) + 1:].split("-")[0] != "float"}
            auto = f"{label}-auto{tail}"
            if auto in med and exact:
                best = min(exact, key=exact.get)
                out.append(f"{auto} / fastest exact algorithm ({best}): "
                           f"{med[auto]:.3f} / {exact[best]:.3f} ms = {med[auto] / exact[best]:.3f}x")
    for n, m in med.items():
        if n.endswith("-impacts") and n[: -len("-impacts")] in med:
            twin = n[: -len("-impacts")]
            out.append(f"float rerank: {twin} / {n} = {med[twin]:.3f} / {m:.3f} ms = {med[twin] / m:.3f}x")
    for n, m in med.items():
        if n.endswith("-again") and n[: -len("-again")] in med:
            out.append(f"control: {n} / {n[: -len('-again')]} = {m:.3f} / {med[n[: -len('-again')]]:.3f} ms "
                       f"= {m / med[n[: -len('-again')]]:.3f}x (same algorithm, two rows)")
    return out


def _batch_row(c, label, a, b, nb):
    """Throughput of search_batch over all queries on all cores, and its agreement with
    one-query-at-a-time search."""
    log(f"{label}: batch search on all cores")
    a.search_batch(c, algorithm="auto", threads=None)  # warm-up
    t0 = time.perf_counter()
    b_ids, _ = a.search_batch(c, algorithm="auto", threads=None)
    wall = time.perf_counter() - t0
    a.set_algorithm("auto")
    same = np.mean([np.array_equal(np.asarray(b_ids[i])[:len(s_ids)], np.asarray(s_ids))
                    for i, (s_ids, _) in enumerate(a.search(a.prepare(*c.query(i)))
                                                   for i in range(c.n_queries))])
    if same < 1:
        log(f"WARNING: {label} search_batch differs from search on {(1 - same) * 100:.1f}% of queries")
    return {"system": f"{label}-batch-auto", "kind": "exact", "version": a.version,
            "build_s": b, "index_bytes": int(nb), "batch": True,
            "threads": os.cpu_count(), "queries_per_s": c.n_queries / wall,
            "matches_single_query": float(same), "settings": dict(a.info)}


def _parse_systems(s):
    allowed = ["scipy", "bmp", "pisa", "seismic", "kannolo", "sparsedex"]
    if s == "all":
        return allowed
    out = [x.strip() for x in s.split(",") if x.strip()]
    bad = [x for x in out if x not in allowed + ["peers"]]
    if bad:
        raise SystemExit(f"unknown systems {bad}; choose from {allowed}, 'peers' or 'all'")
    if "peers" in out:
        out += ["bmp", "pisa", "seismic", "kannolo"]
    return out


# ========================================================================== output
def _fmt(x, nd=2):
    if x is None:
        return "—"
    if x >= 100:
        return f"{x:,.0f}"
    if x >= 10:
        return f"{x:.1f}"
    return f"{x:.{nd}f}"


def markdown(c, info, rows, notes, skipped, args, cmd):
    k = args.k
    lines = [
        f"# {c.n_docs:,} documents × {c.n_queries:,} queries, top-{k}",
        "",
        f"Corpus: {info['source']}; {info['postings']:,} postings, "
        f"{info['doc_nnz_mean']:.1f} terms/doc, {info['query_nnz_mean']:.1f} terms/query "
        f"(max {info['query_nnz_max']}), vocabulary {info['vocab']:,}; median "
        f"{info['postings_per_query_median']:,.0f} postings per query.",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores ({_cpu_name()}), Python "
        f"{platform.python_version()}; {datetime.datetime.now().strftime('%Y-%m-%d %H:%M')}.",
        f"Command: `{cmd}`",
        "",
        f"Latency: one query per call, single thread; {args.rounds} rounds, each after {args.warmup} "
        "warm-up queries per system, "
        + (f"interleaving the systems chunk by chunk of {args.chunk} queries in a fresh seeded shuffled "
           "order per chunk (no system is systematically first or last)" if args.chunk > 0 else
           "one system after another in a fresh seeded shuffled order per round")
        + "; per query the fastest round, then median and p90 over queries. Query conversion to each peer's input format is not timed. "
        f"Recall@{k}: returned docs whose exact float score reaches the {k}th exact float score, / {k}. "
        "Speedup: scipy's median / the system's median, same run.",
        "",
        "Index MB: *postings* = the inverted index a query reads (doc ids, impacts, block-max and "
        "term metadata; PISA: its compressed `quantized.*` files and lexicons, scipy: the CSC "
        "matrix); *all* = everything the system keeps (sparsedex: postings + the stored vectors, "
        "explain/get/forward scoring, + ids: `stats()['bytes']`); — where a system has no "
        "separable postings part.",
        "",
        f"| system | kind | build s | postings MB | all MB | median ms | p90 ms | speedup vs scipy | recall@{k} |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        if r.get("batch"):
            continue
        lines.append(
            f"| {r['system']} | {r['kind']} | {_fmt(r['build_s'])} | "
            f"{'—' if r.get('postings_bytes') is None else _fmt(r['postings_bytes'] / 1e6, 1)} | "
            f"{_fmt(r['index_bytes'] / 1e6, 1)} | "
            f"{_fmt(r['median_ms'], 3)} | {_fmt(r['p90_ms'], 3)} | {_fmt(r['speedup_vs_scipy'])}× | "
            f"{r['recall']:.4f} |")
    batch = [r for r in rows if r.get("batch")]
    if batch:
        lines += ["", "Batch throughput (all cores):", "",
                  "| system | threads | queries/s | same ids as one-by-one |", "|---|---:|---:|---:|"]
        lines += [f"| {r['system']} | {r['threads']} | {r['queries_per_s']:,.0f} | "
                  f"{r['matches_single_query'] * 100:.0f}% |" for r in batch]
    checks = [r for r in rows if "recall_own_scores" in r or "matches_exhaustive" in r]
    if checks:
        lines += ["", "Exactness checks (each exact system against an exhaustive oracle over its own "
                  "integer scores; sparsedex algorithms against sparsedex-exhaustive, whose u8 rows "
                  "return the float32 top-k; -impacts rows, the raw 8-bit scoring, against "
                  "sparsedex-exhaustive-impacts):", ""]
        for r in checks:
            bits = []
            if "recall_own_scores" in r:
                bits.append(f"recall vs own-score oracle {r['recall_own_scores']:.4f}")
                bits.append(f"reported scores match the model on {r['reported_scores_match_model'] * 100:.0f}% of queries")
            if "matches_exhaustive" in r:
                bits.append(f"identical ids and scores to exhaustive on {r['matches_exhaustive'] * 100:.1f}% of queries")
            lines.append(f"- {r['system']}: " + "; ".join(bits))
    cw = [r for r in rows if "cpu_per_wall" in r]
    if cw:
        lines += ["", "Process CPU time / wall time while timing (1.0 = one core, undisturbed; well "
                  "below 1 = the shared machine was busy): " +
                  ", ".join(f"{r['system']} {r['cpu_per_wall']:.2f}" for r in cw) + "."]
    lines += ["", "Settings:", ""] + [f"- {n}" for n in notes]
    pkg = {"pisa": "pyterrier-pisa", "seismic": "pyseismic-lsr", "kannolo": "kannolo"}
    vers = sorted({f"{pkg.get(r['system'].split('-')[0], r['system'].split('-')[0])} {r['version']}"
                   for r in rows if r.get("version")})
    lines += ["", "Versions: " + ", ".join(vers) + "."]
    if skipped:
        lines += ["", "Not run:", ""] + [f"- {s}" for s in skipped]
    return "\n".join(lines) + "\n"


def _postings_bytes(adapter):
    """The adapter's postings-only bytes, or None where it has no separable postings part."""
    f = getattr(adapter, "postings_bytes", None)
    try:
        return None if f is None else f()
    except Exception:
        return None


def _cpu_name():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--docs", type=int, default=100_000)
    p.add_argument("--queries", type=int, default=200)
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--systems", default="all",
                   help="'all' or a comma list of scipy,bmp,pisa,seismic,kannolo,sparsedex ('peers' = bmp,pisa,seismic,kannolo); scipy always runs")
    p.add_argument("--out", default=str(BENCH_DIR / "results"))
    p.add_argument("--data", help=".npz with doc_indptr, doc_indices, doc_values, q_indptr, q_indices, q_values, "
                   "or a directory with scipy.sparse docs.npz and queries.npz")
    p.add_argument("--generator", choices=["auto", "core", "fallback"], default="auto",
                   help="auto = sparsedex._core.synthetic_corpus when importable, else the numpy fallback")
    p.add_argument("--regen", action="store_true", help="ignore the cached corpus")
    p.add_argument("--doc-order", choices=["input", "similarity"], default="input",
                   help="give every system the documents in input order (default) or in sparsedex's "
                        "similarity order (what the engine's build with reorder=True uses), so that peers "
                        "with block-max pruning get the same doc-id locality")
    p.add_argument("--workdir", default=str(BENCH_DIR / "data" / "indexes"), help="where peers write their indexes")
    p.add_argument("--name", help="output file stem (default: number of documents)")
    p.add_argument("--warmup", type=int, default=20, help="warm-up queries per system and round (untimed)")
    p.add_argument("--rounds", type=int, default=3,
                   help="timing rounds, interleaving systems; per query the fastest round counts")
    p.add_argument("--chunk", type=int, default=10,
                   help="queries per row turn: every chunk is run by every row, in a fresh shuffled order, "
                        "before the next chunk (0: whole rows, shuffled per round)")
    p.add_argument("--order-seed", type=int, default=0, help="seed of the row order shuffles")
    p.add_argument("--control", default="",
                   help="sparsedex (u8) algorithms to time twice, as a second row NAME-again: a control "
                        "for the fairness of the timing order (the ratio of the two rows should be ~1.00)")
    p.add_argument("--bmp-scale", type=float, help="override the chosen bmp doc scale")
    p.add_argument("--bmp-bsize", type=int, default=32)
    p.add_argument("--bmp-scale-rule", choices=["top", "blockmax"], default="top",
                   help="top: no top doc score passes 65,535; blockmax: no block upper bound does")
    p.add_argument("--pisa-algorithms", default="maxscore,block_max_wand",
                   help="any of maxscore,wand,block_max_wand,block_max_maxscore,ranked_or")
    p.add_argument("--pisa-doc-scale", type=float, default=100.0)
    p.add_argument("--pisa-query-scale", type=float, default=100.0)
    p.add_argument("--seismic-configs", default="10:0.9,20:0.9", help="query_cut:heap_factor,...")
    p.add_argument("--kannolo-efs", default="50,100,200", help="kannolo ef_search values, one row each")
    p.add_argument("--kannolo-m", type=int, default=32)
    p.add_argument("--kannolo-efc", type=int, default=200, help="kannolo ef_construction")
    p.add_argument("--build-threads", type=int, default=1,
                   help="threads for Seismic's build only (slow at 1M docs); queries always use 1")
    p.add_argument("--sparsedex-quantizations", default="u8,float")
    p.add_argument("--sparsedex-algorithms", default="all",
                   help="algorithms to run on the u8 index ('all' for every one)")
    p.add_argument("--sparsedex-impacts", default="",
                   help="algorithms of the u8 index also timed with the raw 8-bit scoring (scores='impacts', "
                        "no float rerank), one row each named NAME-impacts; empty: none")
    p.add_argument("--sparsedex-float-algorithms", default="exhaustive,auto",
                   help="algorithms to run on the float index ('all' for every one)")
    p.add_argument("--calibration-queries", type=int, default=0,
                   help="also time sparsedex's approximate mode calibrated on this many other queries of the "
                        "corpus (the ones after the timed ones): a second u8 build, calibrate(queries) counted "
                        "in its build time, rows sparsedex-qcal-approximate@T; the sparsedex-approximate rows "
                        "keep the default calibration (pseudo-queries); 0: none")
    p.add_argument("--approx-targets", default="0.95,0.97,0.99",
                   help="recall targets of sparsedex's approximate rows (u8 only; empty: none)")
    p.add_argument("--no-plot", action="store_true")
    args = p.parse_args(argv)
    cmd = "python benches/harness.py " + " ".join(argv if argv is not None else sys.argv[1:])

    c, info, rows, notes, skipped = run(args)
    md = markdown(c, info, rows, notes, skipped, args, cmd)
    print(md)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = args.name or (str(c.n_docs) if not args.data else f"{Path(args.data).stem}-{c.n_docs}")
    (out / f"{stem}.md").write_text(md)
    payload = {"corpus": info, "k": args.k, "seed": args.seed, "command": cmd,
               "machine": {"cpu": _cpu_name(), "cores": os.cpu_count(), "python": platform.python_version()},
               "date": datetime.datetime.now().isoformat(timespec="seconds"),
               "rows": rows, "notes": notes, "skipped": skipped}
    (out / f"{stem}.json").write_text(json.dumps(payload, indent=1, default=_json_default))
    log(f"wrote {out / (stem + '.md')} and .json")
    if not args.no_plot:
        try:
            import plot
            png = plot.plot(out / f"{stem}.json", out / f"{stem}.png")
            log(f"wrote {png}")
        except Exception as exc:
            log(f"plot failed: {type(exc).__name__}: {exc}")


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)


if __name__ == "__main__":
    main()
