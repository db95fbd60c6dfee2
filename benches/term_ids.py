"""Any u32 term id: what the per-segment term dictionary costs (issue 8).

Corpus: `sparsedex._core.synthetic_corpus` (SPLADE-like: 30,522-term vocabulary, ~120 terms per
document, ~45 per query, topic-clustered), optionally with every term id mapped to a random
32-bit value (one-to-one; one of them 2^32 - 1), as hashed vocabularies (fastembed's
Qdrant/bm25, BM42, feature hashing) produce.

Subcommands (each prints one JSON object; `compare` also a markdown table):

  hashed     20k documents with hashed ids: every query's top-10 equals brute force (a float64
             dot product over the compacted columns), and the process's peak RSS.
  one        build time and per-query latency of one variant in this process:
             --variant dense|random|random-unsorted|random-monotone|permuted, --n documents,
             --queries, --seed. `random-monotone` maps ids to random values in the same order
             (the term dictionary's lookup cost alone); `permuted` keeps dense ids but puts the
             terms in the random ids' order (the cost of the order alone: its local ids, postings and BP order are those of `random`).
             `random` keeps each row sorted by (mapped) term id, the canonical CSR form of the
             mapped corpus; `random-unsorted` leaves the rows in the dense order, so that
             validation sorts them too.
  compare    `one` for dense ids, random ids (this package) and dense ids with a baseline
             package (--baseline DIR put first on PYTHONPATH, e.g. main's wheel installed with
             `pip install --no-deps --target DIR`), each in a fresh process, interleaved,
             --reps times; reports medians and the ratios to dense ids measured in the same run.

Build: `_core.Index.build(..., quantization="u8", reorder=True)` (the default a `SparseIndex`
gets; rayon uses every core), wall and CPU time (the CPU time suffers less from a shared
machine). Latency: k=10, one thread (a single search), algorithm "auto" and "exhaustive",
each query timed alone, its fastest of 3 rounds after one warm-up pass; the median over
queries.

  python benches/term_ids.py hashed
  python benches/term_ids.py compare --n 1000000 --queries 200 --reps 3 --baseline /tmp/base-pkg
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

import numpy as np


def core():  # imported late so that `--baseline` on PYTHONPATH decides which package loads
    from sparsedex import _core

    return _core


def random_ids(vocab: int, seed: int) -> np.ndarray:
    """`vocab` distinct random 32-bit ids, the first one 2^32 - 1."""
    rng = np.random.default_rng(seed)
    ids = np.unique(rng.integers(0, 2**32 - 1, size=2 * vocab, dtype=np.uint64))
    rng.shuffle(ids)
    out = np.empty(vocab, dtype=np.uint64)
    out[0] = 2**32 - 1
    out[1:] = ids[: vocab - 1]
    return out.astype(np.uint32)


def sort_rows(indptr: np.ndarray, indices: np.ndarray, values: np.ndarray):
    """Rows sorted by term id (the canonical CSR form of the mapped corpus)."""
    rows = np.repeat(np.arange(len(indptr) - 1), np.diff(indptr.astype(np.int64)))
    order = np.lexsort((indices, rows))
    return indices[order], values[order]


def corpus(n: int, queries: int, seed: int, variant: str):
    d_ptr, d_idx, d_val, q_ptr, q_idx, q_val = core().synthetic_corpus(n, queries, seed)
    if variant in ("random", "random-unsorted", "random-monotone", "permuted"):
        m = random_ids(30522, seed + 1)
        if variant == "random-monotone":
            m = np.sort(m)
        if variant == "permuted":  # dense ids, in the random ids' order: the order's cost alone
            m = np.argsort(np.argsort(m)).astype(np.uint32)
        d_idx, q_idx = m[d_idx], m[q_idx]
        if variant in ("random", "permuted"):
            d_idx, d_val = sort_rows(d_ptr, d_idx, d_val)
    return (d_ptr, d_idx, d_val), (q_ptr, q_idx, q_val)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def cmd_hashed(a: argparse.Namespace) -> dict:
    import scipy.sparse as sp

    docs, qs = corpus(a.n, a.queries, a.seed, "random")
    ix = core().Index.build(*docs, quantization="float")
    rows = ix.ids()
    cols, inv = np.unique(docs[1], return_inverse=True)
    m = sp.csr_matrix((docs[2].astype(np.float64), inv.ravel(), docs[0].astype(np.int64)), shape=(len(docs[0]) - 1, len(cols)))
    bad = 0
    worst = 0.0
    for i in range(len(qs[0]) - 1):
        a_, b_ = int(qs[0][i]), int(qs[0][i + 1])
        qt, qw = qs[1][a_:b_], qs[2][a_:b_]
        pos = np.searchsorted(cols, qt)
        known = (pos < len(cols)) & (cols[np.minimum(pos, len(cols) - 1)] == qt)
        qv = np.zeros(len(cols))
        qv[pos[known]] = qw[known]
        brute = m @ qv
        want = np.sort(brute)[::-1][:10]
        want = want[want > 0]
        got_docs, got = ix.search(qt, qw, k=10, algorithm="auto")
        rel = np.abs(got.astype(np.float64) - want) / np.maximum(want, 1e-30) if len(got) == len(want) else np.inf
        # Every returned document's brute-force score is its score; the scores are the top 10.
        mine = brute[rows[got_docs]] if len(got_docs) else np.zeros(0)
        err = max(np.max(rel, initial=0.0), np.max(np.abs(mine - got) / np.maximum(mine, 1e-30), initial=0.0))
        worst = max(worst, float(err))
        bad += int(err > 1e-5)
    return {
        "bench": "hashed",
        "n_docs": a.n,
        "queries": a.queries,
        "max_term_id": int(docs[1].max()),
        "distinct_terms": int(len(cols)),
        "queries_differing_from_brute_force": bad,
        "max_relative_error": worst,
        "index_bytes": int(ix.stats()["bytes"]),
        "peak_rss_mb": round(peak_rss_mb(), 1),
    }


def cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def cmd_one(a: argparse.Namespace) -> dict:
    docs, qs = corpus(a.n, a.queries, a.seed, a.variant)
    t0, c0 = time.perf_counter(), cpu_s()
    ix = core().Index.build(*docs, quantization="u8", reorder=True)
    build_s, build_cpu_s = time.perf_counter() - t0, cpu_s() - c0
    out = {
        "variant": a.variant,
        "n_docs": a.n,
        "build_s": round(build_s, 3),
        "build_cpu_s": round(build_cpu_s, 3),
        "bytes": int(ix.stats()["bytes"]),
    }
    q = [(qs[1][int(qs[0][i]) : int(qs[0][i + 1])], qs[2][int(qs[0][i]) : int(qs[0][i + 1])]) for i in range(len(qs[0]) - 1)]
    for algo in ("auto", "exhaustive"):
        for t, w in q:  # warm-up
            ix.search(t, w, k=10, algorithm=algo)
        # Each query's fastest of 3 rounds (a burst of load on the shared machine then hits no
        # query alone), the median over queries.
        best = [float("inf")] * len(q)
        for _ in range(3):
            for i, (t, w) in enumerate(q):
                t0 = time.perf_counter()
                ix.search(t, w, k=10, algorithm=algo)
                best[i] = min(best[i], time.perf_counter() - t0)
        out[f"{algo}_ms"] = round(1000 * statistics.median(best), 4)
    out["peak_rss_mb"] = round(peak_rss_mb(), 1)
    return out


def cmd_compare(a: argparse.Namespace) -> dict:
    runs = [("dense", None), ("random", None)]
    runs += [("random-unsorted", None)] * a.unsorted + [("random-monotone", None)] * a.monotone
    runs += [("permuted", None)] * a.permuted
    runs += [("dense", a.baseline)] if a.baseline else []
    results: dict[str, list[dict]] = {}
    for rep in range(a.reps):
        for variant, base in runs:
            env = dict(os.environ)
            name = variant if base is None else f"baseline-{variant}"
            if base is not None:
                env["PYTHONPATH"] = base + os.pathsep + env.get("PYTHONPATH", "")
            cmd = [sys.executable, __file__, "one", "--variant", variant, "--n", str(a.n), "--queries", str(a.queries), "--seed", str(a.seed)]
            r = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
            res = json.loads(r.stdout.strip().splitlines()[-1])
            print(f"rep {rep} {name}: {res}", file=sys.stderr, flush=True)
            results.setdefault(name, []).append(res)
    med = {
        name: {k: statistics.median(r[k] for r in rs) for k in ("build_s", "build_cpu_s", "auto_ms", "exhaustive_ms", "bytes", "peak_rss_mb")}
        for name, rs in results.items()
    }
    base = med["dense"]
    lines = [
        "| ids | build s (wall) | build s (CPU) | auto ms/q | exhaustive ms/q | index MB | peak RSS MB | build wall / dense | build CPU / dense | auto / dense | exhaustive / dense |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, m in med.items():
        lines.append(
            f"| {name} | {m['build_s']:.2f} | {m['build_cpu_s']:.2f} | {m['auto_ms']:.3f} | {m['exhaustive_ms']:.3f} | {m['bytes'] / 1e6:.0f} | {m['peak_rss_mb']:.0f} | "
            f"{m['build_s'] / base['build_s']:.3f} | {m['build_cpu_s'] / base['build_cpu_s']:.3f} | {m['auto_ms'] / base['auto_ms']:.3f} | {m['exhaustive_ms'] / base['exhaustive_ms']:.3f} |"
        )
    print("\n".join(lines))
    return {"bench": "compare", "n_docs": a.n, "queries": a.queries, "reps": a.reps, "medians": med, "runs": results}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    h = sub.add_parser("hashed")
    h.add_argument("--n", type=int, default=20_000)
    h.add_argument("--queries", type=int, default=200)
    h.add_argument("--seed", type=int, default=0)
    o = sub.add_parser("one")
    o.add_argument("--variant", choices=("dense", "random", "random-unsorted", "random-monotone", "permuted"), required=True)
    for q in (o, c := sub.add_parser("compare")):
        q.add_argument("--n", type=int, default=1_000_000)
        q.add_argument("--queries", type=int, default=200)
        q.add_argument("--seed", type=int, default=0)
    c.add_argument("--reps", type=int, default=3)
    c.add_argument("--unsorted", action="store_true", help="also random ids with rows left unsorted (validation sorts them)")
    c.add_argument("--monotone", action="store_true", help="also random ids that keep the order of terms (the dictionary's cost alone)")
    c.add_argument("--permuted", action="store_true", help="also dense ids permuted in the random ids' order (the order's cost alone)")
    c.add_argument("--baseline", default=None, help="a directory holding another sparsedex package (main's)")
    a = p.parse_args()
    out = {"hashed": cmd_hashed, "one": cmd_one, "compare": cmd_compare}[a.cmd](a)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
