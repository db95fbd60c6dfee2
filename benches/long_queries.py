"""Long queries: what each exact algorithm costs as a query grows to thousands of terms, and
what `auto` costs on the first queries of a fresh segment (its race's warm-up), one thread,
k=10. The measurement behind auto's long-query class (`LONG_QUERY` in
rust/core/src/search/auto.rs) and behind block-max pruning's running bound sums.

Queries are unions of m real queries (weights summed: a document used as a query, or a
query expanded many times) and n random terms of weight 1 (the worst case: nothing prunes).
Per query and algorithm, the fastest of --rounds runs (ms). Then auto on --fresh new queries
of the longest random size, each timed once on a segment that has never seen a long query.

    python benches/long_queries.py --data ../shared/data/debian
    python benches/long_queries.py --docs 1000000
"""

import argparse
import time

import numpy as np

from sparsedex import _core
from sparsedex._segment import SegmentView


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", help="directory with scipy.sparse docs.npz / queries.npz (else synthetic)")
    ap.add_argument("--docs", type=int, default=100_000, help="synthetic corpus size")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--unions", default="1,4,16,64", help="m: unions of m real queries")
    ap.add_argument("--random", default="128,512,2048,8000", help="n: random terms of weight 1")
    ap.add_argument("--fresh", type=int, default=12, help="auto's first queries on a fresh segment")
    ap.add_argument("--algorithms", default="exhaustive,bmp,sp,bmt,maxscore")
    args = ap.parse_args()
    if args.data:
        import scipy.sparse as sps
        dm = sps.load_npz(f"{args.data}/docs.npz").tocsr()
        qm = sps.load_npz(f"{args.data}/queries.npz").tocsr()
        d, q = (dm.indptr, dm.indices, dm.data), (qm.indptr, qm.indices, qm.data)
        what = f"{args.data}, {dm.shape[0]:,} documents"
    else:
        z = _core.synthetic_corpus(args.docs, 1000, args.seed)
        d, q = z[:3], z[3:]
        what = f"synthetic {args.docs:,} documents, seed {args.seed}"
    d = (np.asarray(d[0], np.uint64), np.asarray(d[1], np.uint32), np.asarray(d[2], np.float32))
    vocab = int(max(d[1].max(), np.max(q[1]))) + 1

    def build():
        return SegmentView.build(d, quantization="u8", store_vectors=True)

    t = time.perf_counter()
    ix = build()
    print(f"# {what}; built in {time.perf_counter() - t:.1f}s; vocabulary {vocab:,}", flush=True)
    rng = np.random.default_rng(args.seed)
    qi, qx, qv = (np.asarray(a) for a in q)

    def union(m):
        acc = {}
        for r in rng.choice(len(qi) - 1, m, replace=False):
            for t_, w in zip(qx[qi[r]:qi[r + 1]], qv[qi[r]:qi[r + 1]]):
                acc[int(t_)] = acc.get(int(t_), 0.0) + float(w)
        ts = np.array(sorted(acc), np.uint32)
        return ts, np.array([acc[int(t_)] for t_ in ts], np.float32)

    def rand(n):
        ts = np.sort(rng.choice(vocab, n, replace=False)).astype(np.uint32)
        return ts, np.ones(n, np.float32)

    algos = args.algorithms.split(",")
    cases = [(f"union of {m}", union(m)) for m in map(int, args.unions.split(","))]
    cases += [(f"{n} random", rand(n)) for n in map(int, args.random.split(","))]
    print("| query | terms | " + " | ".join(algos) + " |")
    print("|---|---:|" + "---:|" * len(algos))
    for label, (ts, ws) in cases:
        cells = []
        for a in algos:
            best = np.inf
            for _ in range(args.rounds):
                s = time.perf_counter_ns()
                ix.search(ts, ws, k=10, algorithm=a)
                best = min(best, time.perf_counter_ns() - s)
            cells.append(f"{best / 1e6:.2f}")
        print(f"| {label} | {len(ts):,} | " + " | ".join(cells) + " |", flush=True)
    n = int(args.random.split(",")[-1])
    fresh = build()
    qs = [rand(n) for _ in range(args.fresh)]
    for a in ("exhaustive", "auto"):
        ms = []
        for ts, ws in qs:
            s = time.perf_counter_ns()
            (fresh if a == "auto" else ix).search(ts, ws, k=10, algorithm=a)
            ms.append((time.perf_counter_ns() - s) / 1e6)
        print(f"# {a}, {args.fresh} new queries of {n} random terms, ms each: " + " ".join(f"{x:.1f}" for x in ms))
    print(f"# auto's race on the fresh segment: {fresh._core.auto_standing()}")


if __name__ == "__main__":
    main()
