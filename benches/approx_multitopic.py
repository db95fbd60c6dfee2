"""Approximate search on queries unlike single documents: does calibration on pseudo-queries hold
its recall target on multi-topic long queries?

Builds an index with default settings (u8) from --data (a directory with scipy.sparse docs.npz
and queries.npz, e.g. ../shared/data/debian) or from the synthetic corpus (--docs N), calibrates
it on pseudo-queries (`calibrate()`, timed: the calibration time is reported), and measures, for
each recall target, the mean recall@10 of `algorithm="approximate"` against the exact float top
10 (computed here with scipy: a returned document counts when its dot product with the query
reaches the exact 10th score, so ties at the 10th place are not held against it, as
benches/harness.py counts) on --n queries of each kind:

- unions: sums of --union real queries drawn at random (several topics, about 300 terms on
  debian);
- random: --random-terms terms drawn uniformly among the terms of the corpus, weights uniform
  in [0.2, 1.0];
- unions-small, random-small: the same with --union-small queries and --random-small terms
  (about 80 and 50 terms: the query-length buckets of 33-64 and 65-128 terms);
- real: the first --n real queries;
- documents: the stored rows of --n random documents, whole (the document itself is not
  excluded: it is a hit like any other).

Also the median latency (ms, per query through `SparseIndex.search`, one call at a time) of
approximate search per kind and target (one run of each query), and on the real queries the
fastest of --rounds runs of each query, with the exact search (`algorithm="auto"`) as the
baseline measured in the same run. Run it
once per build to compare builds (e.g. with PYTHONPATH pointing at a copy of the old package).

    python benches/approx_multitopic.py --data ../shared/data/debian
    python benches/approx_multitopic.py --docs 100000
"""

import argparse
import json
import os
import time

import numpy as np
import scipy.sparse as sp

import sparsedex
from sparsedex import SparseIndex, _core

KINDS = ("unions", "random", "real", "documents", "unions-small", "random-small")


def load(args):
    if args.data:
        d = sp.load_npz(os.path.join(args.data, "docs.npz")).tocsr()
        q = sp.load_npz(os.path.join(args.data, "queries.npz")).tocsr()
        return d, q, f"{args.data}: {d.shape[0]:,} documents, {q.shape[0]:,} queries"
    di, dx, dv, qi, qx, qv = _core.synthetic_corpus(args.docs, max(2000, args.n * args.union), seed=args.seed)
    vocab = int(max(np.max(dx), np.max(qx))) + 1
    d = sp.csr_matrix((dv, dx, di), shape=(args.docs, vocab))
    q = sp.csr_matrix((qv, qx, qi), shape=(len(qi) - 1, vocab))
    return d, q, f"synthetic corpus, {args.docs:,} documents, seed {args.seed}"


def query_sets(d, q, args):
    rng = np.random.default_rng(args.seed)
    n, vocab = args.n, d.shape[1]
    present = np.flatnonzero(np.bincount(d.indices, minlength=vocab))

    def unions(m):
        # each query the sum of m distinct real queries
        rows = np.repeat(np.arange(n), m)
        cols = np.concatenate([rng.choice(q.shape[0], m, replace=False) for _ in range(n)])
        pick = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, q.shape[0]))
        return (pick @ q).tocsr().astype(np.float32)

    def random(t):
        # t random terms of the corpus, random weights
        ri = np.concatenate([np.sort(rng.choice(present, t, replace=False)) for _ in range(n)])
        rv = rng.uniform(0.2, 1.0, n * t).astype(np.float32)
        return sp.csr_matrix((rv, ri, np.arange(n + 1) * t), shape=(n, vocab))

    out = {"unions": unions(args.union), "random": random(args.random_terms), "real": q[:n].astype(np.float32),
           "documents": d[rng.choice(d.shape[0], n, replace=False)].astype(np.float32),
           "unions-small": unions(args.union_small), "random-small": random(args.random_small)}
    for m in out.values():
        m.sort_indices()
    return out


def truth_kth(d, qs, k):
    """The exact k-th dot product of each query (float64)."""
    s = (d.astype(np.float64) @ qs.astype(np.float64).T).toarray()
    return np.partition(s, s.shape[0] - k, axis=0)[s.shape[0] - k, :]


def recall(d, qs, kth, hits, k):
    rs = []
    for i, hs in enumerate(hits):
        ids = np.array([h.id for h in hs], dtype=np.int64)
        if len(ids) == 0:
            rs.append(0.0)
            continue
        s = (d[ids].astype(np.float64) @ qs[i].astype(np.float64).T).toarray().ravel()
        rs.append(min(k, int((s >= kth[i] - 1e-6 * abs(kth[i])).sum())) / k)
    return float(np.mean(rs))


def median_ms(ix, qs, rounds, **kw):
    best = np.full(qs.shape[0], np.inf)
    for _ in range(rounds):
        for i in range(qs.shape[0]):
            row = qs[i]
            t = time.perf_counter()
            ix.search(row, k=10, with_payload=False, **kw)
            best[i] = min(best[i], time.perf_counter() - t)
    return float(np.median(best) * 1e3)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", help="directory with scipy.sparse docs.npz and queries.npz (else synthetic)")
    ap.add_argument("--docs", type=int, default=100_000, help="synthetic corpus size (without --data)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n", type=int, default=200, help="queries of each kind")
    ap.add_argument("--union", type=int, default=20, help="real queries summed per union")
    ap.add_argument("--random-terms", type=int, default=200)
    ap.add_argument("--union-small", type=int, default=5)
    ap.add_argument("--random-small", type=int, default=50)
    ap.add_argument("--targets", default="0.90,0.95,0.97,0.99")
    ap.add_argument("--rounds", type=int, default=3, help="timing rounds of the real queries")
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args()
    k = 10
    targets = [float(t) for t in args.targets.split(",")]
    d, q, what = load(args)
    print(f"# {what}; sparsedex from {os.path.dirname(sparsedex.__file__)}", flush=True)
    t = time.perf_counter()
    ix = SparseIndex(encoder=None)
    ix.add(d)
    ix.commit()
    print(f"# built in {time.perf_counter() - t:.1f}s", flush=True)
    t = time.perf_counter()
    report = ix.calibrate(progress=False)
    cal_s = time.perf_counter() - t
    print(f"# calibrate(): {cal_s:.1f}s, {len(report)} segment(s)", flush=True)
    for seg in report:
        print("#   " + seg["name"] + ": " + ", ".join(
            f"<={b['max_terms'] or 'inf'}: {b['queries']}q beta {b['beta']} gamma {b['gamma']} "
            f"rerank {b['rerank']} recall {b['recall']:.3f}" for b in seg["buckets"]), flush=True)
    sets = query_sets(d, q, args)
    res = {"what": what, "calibrate_s": cal_s, "recall": {}, "median_ms": {}, "terms": {}}
    for kind in KINDS:
        qs = sets[kind]
        res["terms"][kind] = float(np.mean(np.diff(qs.indptr)))
        kth = truth_kth(d, qs, k)
        res["recall"][kind], res["median_ms"][kind] = {}, {}
        for tr in targets:
            hits, ms = [], []
            for i in range(qs.shape[0]):
                row = qs[i]
                t = time.perf_counter()
                hits.append(ix.search(row, k=k, algorithm="approximate", target_recall=tr, with_payload=False))
                ms.append((time.perf_counter() - t) * 1e3)
            res["recall"][kind][tr] = recall(d, qs, kth, hits, k)
            res["median_ms"][kind][tr] = float(np.median(ms))
    real = sets["real"]
    res["median_ms"]["real-exact"] = median_ms(ix, real, args.rounds, algorithm="auto")
    res["median_ms"]["real-rounds"] = {
        tr: median_ms(ix, real, args.rounds, algorithm="approximate", target_recall=tr) for tr in targets}
    print(f"\ncalibration {cal_s:.1f} s; recall@{k} of approximate search against the exact float top {k}")
    print("| kind (mean terms) | " + " | ".join(f"{t:.2f}" for t in targets) + " |")
    print("|---|" + "---|" * len(targets))
    for kind in KINDS:
        print(f"| {kind} ({res['terms'][kind]:.0f}) | "
              + " | ".join(f"{res['recall'][kind][t]:.3f}" for t in targets) + " |")
    print(f"\nmedian ms of approximate search (one run per query); real, best of {args.rounds}: "
          f"exact (auto) {res['median_ms']['real-exact']:.3f} ms")
    print("| kind | " + " | ".join(f"{t:.2f}" for t in targets) + " |")
    print("|---|" + "---|" * len(targets))
    print(f"| real, best of {args.rounds} | "
          + " | ".join(f"{res['median_ms']['real-rounds'][t]:.3f}" for t in targets) + " |")
    for kind in KINDS:
        print(f"| {kind} | " + " | ".join(f"{res['median_ms'][kind][t]:.3f}" for t in targets) + " |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
