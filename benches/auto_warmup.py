"""What `auto` costs on the first queries of a fresh segment: its race's warm-up, one thread,
k=10, against the exhaustive scorer on the same queries.

Each of --segments fresh segments (built anew, so its race starts empty) answers one mixed
stream of --queries queries under `auto`: real queries, documents used as queries, unions of 4
and of 20 real queries (weights summed), and 100 / 300 / 1,000 / 3,000 random terms of random
weight, in a random order. The same stream is answered by the exhaustive scorer on a segment
that has answered it before (warm caches, no race), then by `auto` again on the fresh segment
(its races settled: the steady state). Reported: the sums over the stream (ms) and their ratio
to the exhaustive scorer's, the median over the segments.

helper-101 measured the warm-up on debian at 756 ms against 122 ms exhaustive for 60 such
queries (6.2x), because superblock pruning (10-70x the exhaustive scorer on debian) ran on
each cost class's first seven queries.

    python benches/auto_warmup.py --data ../shared/data/debian
    python benches/auto_warmup.py --docs 100000
"""

import argparse
import statistics
import time

import numpy as np

from sparsedex import _core
from sparsedex._segment import SegmentView


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", help="directory with scipy.sparse docs.npz / queries.npz (else synthetic)")
    ap.add_argument("--docs", type=int, default=100_000, help="synthetic corpus size")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--queries", type=int, default=60, help="length of the stream")
    ap.add_argument("--segments", type=int, default=5, help="fresh segments (repetitions)")
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
    qi, qx, qv = (np.asarray(a) for a in q)
    vocab = int(max(d[1].max(), qx.max())) + 1
    rng = np.random.default_rng(args.seed)

    def row(ptr, ix, vs, r):
        return ix[ptr[r] : ptr[r + 1]], vs[ptr[r] : ptr[r + 1]]

    def union(m):
        acc = {}
        for r in rng.choice(len(qi) - 1, m, replace=False):
            for t_, w in zip(*row(qi, qx, qv, r)):
                acc[int(t_)] = acc.get(int(t_), 0.0) + float(w)
        ts = np.array(sorted(acc), np.uint32)
        return ts, np.array([acc[int(t_)] for t_ in ts], np.float32)

    def rand(n):
        ts = np.sort(rng.choice(vocab, n, replace=False)).astype(np.uint32)
        return ts, rng.uniform(0.05, 2.0, n).astype(np.float32)

    kinds = [
        lambda: row(qi, qx, qv, int(rng.integers(len(qi) - 1))),
        lambda: row(d[0], d[1], d[2], int(rng.integers(len(d[0]) - 1))),
        lambda: union(4),
        lambda: union(20),
        lambda: rand(100),
        lambda: rand(300),
        lambda: rand(1000),
        lambda: rand(3000),
    ]

    def build():
        return SegmentView.build(d, quantization="u8", store_vectors=True)

    t = time.perf_counter()
    warm = build()
    print(f"# {what}; built in {time.perf_counter() - t:.1f}s; {args.queries} queries a stream", flush=True)

    def run(ix, stream, algorithm):
        total = 0
        for ts, ws in stream:
            s = time.perf_counter_ns()
            ix.search(ts, ws, k=10, algorithm=algorithm)
            total += time.perf_counter_ns() - s
        return total / 1e6

    rows = []
    for _ in range(args.segments):
        stream = [kinds[int(rng.integers(len(kinds)))]() for _ in range(args.queries)]
        fresh = build()
        first = run(fresh, stream, "auto")
        run(warm, stream, "exhaustive")
        ex = run(warm, stream, "exhaustive")
        steady = run(fresh, stream, "auto")
        rows.append((first, ex, steady))
        print(f"auto first {first:8.1f} ms   exhaustive {ex:7.1f} ms   auto steady {steady:7.1f} ms   "
              f"first/ex {first / ex:5.2f}x   steady/ex {steady / ex:5.2f}x   race {fresh._core.auto_standing()}",
              flush=True)
    med = [statistics.median(c) for c in zip(*rows)]
    print(f"# median over {args.segments} fresh segments: auto's first stream {med[0]:.1f} ms, exhaustive "
          f"{med[1]:.1f} ms, auto steady {med[2]:.1f} ms; first/exhaustive "
          f"{statistics.median(r[0] / r[1] for r in rows):.2f}x, steady/exhaustive "
          f"{statistics.median(r[2] / r[1] for r in rows):.2f}x")


if __name__ == "__main__":
    main()
