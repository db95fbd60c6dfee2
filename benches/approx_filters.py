"""Approximate search under filters: does it hold its recall target when a filter leaves few
documents, or leaves out the documents a query ranks first, and what does the filter cost?

Builds an index with default settings (u8) from --data (a directory with scipy.sparse docs.npz
and queries.npz, e.g. ../shared/data/debian) or from the synthetic corpus (--docs N); every
document gets a payload {"g": 0..9} drawn at random (and {"n": its row}), so that a filter on "g" leaves out
documents at random with respect to the queries. The index is calibrated on pseudo-queries
(`calibrate()`). Recall@10 is counted against the exact float top 10 among the allowed
documents (computed here with scipy; a returned document counts when its dot product with the
query reaches the exact 10th score), mean over --n queries, at targets 0.90 / 0.95 / 0.97 /
0.99, for these filters:

- g10 / g20 / g40: "g" in the first 1 / 2 / 4 groups (10% / 20% / 40% of the documents);
- g20-nextN: g20 less its own exact first N hits (the next page of a filtered search), N = 10,
  20, 50;
- band: each query's exact ranks 50..3,000 of all documents (5% of debian, dense past a head);
- next50: all documents less the query's exact first 50 (the dense case).

Latency (ms per query, `search_batch(threads=1)`, median of --rounds runs) for g10 / g20 / g40
and no filter: approximate search at 0.90 and 0.97 and the exhaustive scorer, in the same run.

    python benches/approx_filters.py --data ../shared/data/debian
    python benches/approx_filters.py --docs 100000
"""

import argparse
import os
import time

import numpy as np
import scipy.sparse as sp

import sparsedex
from sparsedex import SparseIndex, _core

TARGETS = (0.90, 0.95, 0.97, 0.99)


def load(args):
    if args.data:
        d = sp.load_npz(os.path.join(args.data, "docs.npz")).tocsr()
        q = sp.load_npz(os.path.join(args.data, "queries.npz")).tocsr()
        return d, q[args.offset:args.offset + args.n], f"{args.data}: {d.shape[0]:,} documents"
    di, dx, dv, qi, qx, qv = _core.synthetic_corpus(args.docs, args.n, seed=args.seed)
    vocab = int(max(np.max(dx), np.max(qx))) + 1
    d = sp.csr_matrix((dv, dx, di), shape=(args.docs, vocab))
    q = sp.csr_matrix((qv, qx, qi), shape=(len(qi) - 1, vocab))
    return d, q, f"synthetic corpus, {args.docs:,} documents, seed {args.seed}"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data")
    ap.add_argument("--docs", type=int, default=100_000)
    ap.add_argument("--n", type=int, default=200, help="queries")
    ap.add_argument("--offset", type=int, default=1000, help="first query used (--data)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    d, q, what = load(args)
    n = d.shape[0]
    rng = np.random.default_rng(args.seed)
    g = rng.integers(0, 10, n)
    print(f"# approximate search under filters: {what}, {q.shape[0]} queries, k=10, "
          f"sparsedex {sparsedex.__version__}")
    ix = SparseIndex(encoder=None)
    ix.add(d, payloads=[{"g": int(x), "n": i} for i, x in enumerate(g)])
    ix.commit()
    t = time.perf_counter()
    ix.calibrate()
    print(f"calibration {time.perf_counter() - t:.1f} s")
    scores = (q @ d.T).toarray().astype(np.float64)  # exact float scores, queries x documents
    order = np.argsort(-scores, axis=1, kind="stable")

    def recall(filters, masks):
        out = []
        for target in TARGETS:
            rs = []
            for i in range(q.shape[0]):
                s = np.where(masks[i], scores[i], -np.inf)
                want = np.sort(s[s > 0])[::-1][:10]
                if len(want) == 0:
                    continue
                got = ix.search(q[i], k=10, algorithm="approximate", target_recall=target,
                                filter=filters[i], with_payload=False)
                rs.append(min(len(want), sum(scores[i, h.id] >= want[-1] * (1 - 1e-6) for h in got)) / len(want))
            out.append(float(np.mean(rs)))
        return out

    rows = {}
    groups = {"g10": [0], "g20": [0, 1], "g40": [0, 1, 2, 3]}
    for name, gs in groups.items():
        mask = np.isin(g, gs)
        rows[name] = (mask.mean(), recall([{"g": {"$in": gs}}] * q.shape[0], [mask] * q.shape[0]))
    g20 = np.isin(g, groups["g20"])
    for nx in (10, 20, 50):
        filters, masks = [], []
        for i in range(q.shape[0]):
            head = [int(x) for x in order[i][g20[order[i]]][:nx]]
            m = g20.copy()
            m[head] = False
            masks.append(m)
            filters.append({"$and": [{"g": {"$in": groups["g20"]}}, {"n": {"$nin": head}}]})
        rows[f"g20-next{nx}"] = (np.mean([m.mean() for m in masks]), recall(filters, masks))
    filters, masks = [], []
    for i in range(q.shape[0]):
        band = [int(x) for x in order[i][50:3000]]
        m = np.zeros(n, bool)
        m[band] = True
        masks.append(m)
        filters.append({"n": {"$in": band}})
    rows["band"] = (np.mean([m.mean() for m in masks]), recall(filters, masks))
    filters, masks = [], []
    for i in range(q.shape[0]):
        head = [int(x) for x in order[i][:50]]
        m = np.ones(n, bool)
        m[head] = False
        masks.append(m)
        filters.append({"n": {"$nin": head}})
    rows["next50"] = (np.mean([m.mean() for m in masks]), recall(filters, masks))

    print("\n| filter | allowed | " + " | ".join(f"recall at {t}" for t in TARGETS) + " |")
    print("|---|---:|" + "---:|" * len(TARGETS))
    for name, (share, rs) in rows.items():
        print(f"| {name} | {share:.1%} | " + " | ".join(
            f"{r:.4f}{'' if r >= t - 0.005 else ' (miss)'}" for r, t in zip(rs, TARGETS)) + " |")

    def ms(alg, f, target=None):
        runs = []
        for _ in range(args.rounds):
            t = time.perf_counter()
            ix.search_batch(q, k=10, algorithm=alg, target_recall=target, filter=f, with_payload=False, threads=1)
            runs.append((time.perf_counter() - t) / q.shape[0] * 1e3)
        return float(np.median(runs))

    print("\n| filter | approximate 0.90 ms | approximate 0.97 ms | exhaustive ms |")
    print("|---|---:|---:|---:|")
    for name, f in [("none", None)] + [(k, {"g": {"$in": v}}) for k, v in groups.items()]:
        print(f"| {name} | {ms('approximate', f, 0.90):.3f} | {ms('approximate', f, 0.97):.3f} | "
              f"{ms('exhaustive', f):.3f} |", flush=True)


if __name__ == "__main__":
    main()
