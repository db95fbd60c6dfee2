"""Where each algorithm wins, by query length: the measurement behind `algorithm="auto"`.

For the synthetic SPLADE-like corpus (sparsedex._core.synthetic_corpus), queries are cut to
their m heaviest terms (m = 1..all) and every algorithm runs on one thread at k=10. Prints,
per m, the median postings per document (sum of the query terms' document frequencies / N)
and the median ms of each algorithm. The count rules in rust/core/src/search/auto.rs are
read off this table: MaxScore below ~0.05 postings per document, block-max pruning (with its
fallback to the exhaustive scorer) above.

    python benches/auto_rule.py --docs 1000000 --queries 40
"""

import argparse
import time

import numpy as np

from sparsedex import _core
from sparsedex._segment import SegmentView


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", type=int, default=100_000)
    ap.add_argument("--queries", type=int, default=40)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--algorithms", default="exhaustive,maxscore,bmw,bmm,taat-maxscore,bmp,auto")
    args = ap.parse_args()
    di, dx, dv, qi, qx, qv = _core.synthetic_corpus(args.docs, args.queries, args.seed)
    ix = SegmentView.build((di, dx, dv), vocab_size=30522, store_vectors=False)
    df = np.bincount(dx, minlength=30522)
    del di, dx, dv
    algos = args.algorithms.split(",")
    print(f"| m | postings/doc | " + " | ".join(algos) + " |")
    print("|---|---|" + "---|" * len(algos))
    for m in [1, 2, 3, 5, 8, 12, 20, 1000]:
        cells = []
        post = []
        for name in algos:
            ts = []
            for i in range(args.queries):
                t, w = qx[qi[i] : qi[i + 1]], qv[qi[i] : qi[i + 1]]
                o = np.argsort(-w, kind="stable")[:m]
                q = (t[o], w[o])
                if name == algos[0]:
                    post.append(df[t[o]].sum() / args.docs)
                s = time.perf_counter()
                ix.search(q, k=10, algorithm=name)
                ts.append(time.perf_counter() - s)
            cells.append(f"{np.median(ts) * 1000:.3f}")
        label = "all" if m == 1000 else str(m)
        print(f"| {label} | {np.median(post):.3f} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
