"""Does a row's place in the run move its time? `auto` and the exact algorithms on one segment,
each row 200 queries x 2 rounds after 10 warm-up queries (as benches/harness.py timed a row until stop 18),
in the order given, with rows repeated: the same algorithm measured early and late in one run.

Stop 18 found the harness's auto row 1.24x the fastest exact algorithm on debian while
benches/auto_gap.py (rows interleaved in chunks of 10 queries) found 1.02x; this script
separates the two explanations (a wrong leader in some query-cost class, or the row's place).

usage: python benches/auto_row_order.py [--data DIR] [--order auto,exhaustive,bmt,auto,exhaustive]
"""
import argparse
import time

import numpy as np
import scipy.sparse as sps

from sparsedex._segment import SegmentView


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="../shared/data/debian")
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--order", default="auto,exhaustive,bmt,auto,exhaustive")
    args = ap.parse_args()
    dm = sps.load_npz(f"{args.data}/docs.npz")
    qm = sps.load_npz(f"{args.data}/queries.npz")[: args.queries]
    ix = SegmentView.build((dm.indptr.astype(np.uint64), dm.indices.astype(np.uint32), dm.data.astype(np.float32)),
                           quantization="u8", store_vectors=True)
    qs = [(np.ascontiguousarray(qm.indices[qm.indptr[i]:qm.indptr[i + 1]], np.uint32),
           np.ascontiguousarray(qm.data[qm.indptr[i]:qm.indptr[i + 1]], np.float32)) for i in range(qm.shape[0])]
    df = np.bincount(dm.indices, minlength=dm.shape[1])
    per_doc = np.array([df[x[0]].sum() for x in qs]) / dm.shape[0]
    cls = np.digitize(per_doc, [1, 2, 4])  # auto's query-cost classes
    rows = []
    for pos, a in enumerate(args.order.split(",")):
        for x in qs[:10]:
            ix.search(*x, k=10, algorithm=a)
        ns = np.full(len(qs), np.inf)
        for _ in range(2):
            for i, x in enumerate(qs):
                s = time.perf_counter_ns()
                ix.search(*x, k=10, algorithm=a)
                ns[i] = min(ns[i], time.perf_counter_ns() - s)
        rows.append((f"{pos + 1}. {a}", ns / 1e6))
    print(f"# {args.data}: {dm.shape[0]:,} documents, {len(qs)} queries; median ms per row, in run order")
    print("| row | all | " + " | ".join(f"class {c} ({(cls == c).sum()} q)" for c in range(4) if (cls == c).any()) + " |")
    print("|---|---:|" + "---:|" * len({*cls.tolist()}))
    for name, t in rows:
        print(f"| {name} | {np.median(t):.3f} | "
              + " | ".join(f"{np.median(t[cls == c]):.3f}" for c in range(4) if (cls == c).any()) + " |")
    lead, others = ix._core.auto_standing()
    print(f"# auto's leader (largest class): {lead}; " + ", ".join(f"{n} {r:.2f}" for n, r in others))


if __name__ == "__main__":
    main()
