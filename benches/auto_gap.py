"""auto against the exact algorithms it chooses from, under the same load: one thread, k=10.

Until stop 18 benches/harness.py timed each algorithm's row over all queries before the next
row started (it now interleaves chunks of queries in a shuffled row order, as here), so on a shared machine a burst of load lasting seconds lands on some rows and not others
(rows of the same algorithm differed by 20-40% between runs on the 2-core machine at load 8,
more than the 10% that auto is allowed). Here the rows are interleaved finely: the queries
are cut into chunks of --chunk, and each chunk is run by every algorithm in turn (the order
rotating from chunk to chunk) before the next chunk; --rounds such passes, per query the
fastest round, then the median over queries. Prints ms per algorithm, auto's ratio to the
fastest exact algorithm, and which candidate auto's race leads with (auto_standing).

    python benches/auto_gap.py --data ../shared/data/debian --queries 400
    python benches/auto_gap.py --docs 100000 --queries 400
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
    ap.add_argument("--queries", type=int, default=400)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--chunk", type=int, default=10, help="queries per algorithm turn")
    ap.add_argument("--warmup", type=int, default=10, help="warm-up queries per algorithm (untimed)")
    ap.add_argument("--algorithms", default="exhaustive,bmp,sp,bmt,auto")
    args = ap.parse_args()
    if args.data:
        import scipy.sparse as sps
        dm = sps.load_npz(f"{args.data}/docs.npz")
        qm = sps.load_npz(f"{args.data}/queries.npz")[: args.queries]
        d, q = (dm.indptr, dm.indices, dm.data), (qm.indptr, qm.indices, qm.data)
        what = f"{args.data}, {dm.shape[0]:,} documents"
    else:
        z = _core.synthetic_corpus(args.docs, args.queries, args.seed)
        d, q = z[:3], z[3:]
        what = f"synthetic {args.docs:,} documents, seed {args.seed}"
    t = time.perf_counter()
    ix = SegmentView.build((np.asarray(d[0], np.uint64), np.asarray(d[1], np.uint32), np.asarray(d[2], np.float32)),
                           quantization="u8", store_vectors=True)
    print(f"# {what}; {len(q[0]) - 1} queries; built in {time.perf_counter() - t:.1f}s", flush=True)
    qi, qx, qv = q
    qs = [(np.ascontiguousarray(qx[qi[i]:qi[i + 1]], np.uint32), np.ascontiguousarray(qv[qi[i]:qi[i + 1]], np.float32))
          for i in range(len(qi) - 1)]
    algos = args.algorithms.split(",")
    for a in algos:
        for x in qs[: args.warmup]:
            ix.search(*x, k=10, algorithm=a)
    ns = {a: np.full(len(qs), np.inf) for a in algos}
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for _ in range(args.rounds):
        for ci, lo in enumerate(range(0, len(qs), args.chunk)):
            for j in range(len(algos)):
                a = algos[(ci + j) % len(algos)]
                for i in range(lo, min(lo + args.chunk, len(qs))):
                    s = time.perf_counter_ns()
                    ix.search(*qs[i], k=10, algorithm=a)
                    ns[a][i] = min(ns[a][i], time.perf_counter_ns() - s)
    load = (time.process_time() - cpu0) / (time.perf_counter() - wall0)
    med = {a: float(np.median(ns[a])) / 1e6 for a in algos}
    best = min((a for a in algos if a != "auto"), key=med.get)
    print(f"# {args.rounds} rounds, chunks of {args.chunk}; process CPU / wall {load:.2f}")
    print("| algorithm | median ms | mean ms | / fastest exact |")
    print("|---|---:|---:|---:|")
    for a in algos:
        print(f"| {a} | {med[a]:.3f} | {ns[a].mean() / 1e6:.3f} | {med[a] / med[best]:.3f} |")
    # By query cost: the algorithms' medians in each third of the queries by total postings.
    df = np.bincount(np.asarray(d[1], np.int64), minlength=int(max(d[1].max(), qx.max())) + 1)
    post = np.array([df[x[0]].sum() for x in qs])
    cuts = np.quantile(post, [1 / 3, 2 / 3])
    third = np.searchsorted(cuts, post, side="right")
    print("\n| postings / query (third) | " + " | ".join(algos) + " |")
    print("|---|" + "---:|" * len(algos))
    for t in range(3):
        sel = third == t
        print(f"| {int(post[sel].min()):,}..{int(post[sel].max()):,} | "
              + " | ".join(f"{np.median(ns[a][sel]) / 1e6:.3f}" for a in algos) + " |")
    # By auto's query-cost classes (postings per document below 1, 1..2, 2..4, 4 or more), each
    # with its own race (rust/core/src/search/auto.rs).
    n_docs = len(d[0]) - 1
    cls = np.digitize(post / n_docs, [1, 2, 4])
    print("\n| auto's cost class (postings / doc) | queries | " + " | ".join(algos) + " |")
    print("|---|---:|" + "---:|" * len(algos))
    for c_, name in enumerate(["< 1", "1..2", "2..4", ">= 4"]):
        sel = cls == c_
        if sel.any():
            print(f"| {c_}: {name} | {int(sel.sum())} | "
                  + " | ".join(f"{np.median(ns[a][sel]) / 1e6:.3f}" for a in algos) + " |")
    lead, others = ix._core.auto_standing()
    print(f"# auto's leader: {lead}; median time ratio of the others to it: "
          + ", ".join(f"{n} {r:.2f}" for n, r in others), flush=True)


if __name__ == "__main__":
    main()
