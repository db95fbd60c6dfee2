"""Approximate search at small k and under sparse filters: does the next page of a search for
1-3 hits hold its recall target, and does approximate search ever cost more than the exact
search under a filter?

Builds an index with default settings (u8) from --data (a directory with scipy.sparse docs.npz
and queries.npz, e.g. ../shared/data/debian), every document with a payload {"g": 0..9} and
{"p": 0..999} drawn at random (filters on them leave out documents at random with respect to
the queries), calibrated on pseudo-queries (`calibrate()`).

--part recall: recall@k (k = 1, 2, 3) against the exact float top k among the allowed
documents (scipy; a returned document counts when its dot product reaches the exact k-th
score), mean over --n queries, at targets 0.90 / 0.95 / 0.97 / 0.99, for "g20 less first N"
(g in 0..1, 20% of the documents, less its own exact first N hits: the next page of a filtered
search) and "all less first N" (no filter less the exact first N), N = 0, 1, 2, 5, 10.

--part speed: ms per query (`search_batch(threads=1)`, median of --rounds interleaved runs) of
approximate search at 0.90, `auto` and `exhaustive` under filters p < share x 1000, at
k = 10, 30, 100.

    python benches/approx_pages.py --data ../shared/data/debian --part recall
    python benches/approx_pages.py --data ../shared/data/debian --part speed
"""

import argparse
import os
import time

import numpy as np
import scipy.sparse as sp

from sparsedex import SparseIndex

TARGETS = (0.90, 0.95, 0.97, 0.99)
SHARES = (0.001, 0.005, 0.01, 0.015, 0.02, 0.03, 0.05, 0.1, 0.2, 0.3)


def recall(hits, srow, mask, k):
    s = np.where(mask, srow, -np.inf)
    want = np.sort(s[s > 0])[::-1][:k]
    if len(want) == 0:
        return None
    thr = want[-1] * (1 - 1e-6)
    return min(len(want), sum(1 for h in hits if mask[h.id] and srow[h.id] >= thr)) / len(want)


def part_recall(ix, q, S, g, args):
    n, nq = len(g), q.shape[0]
    order = np.argsort(-S, axis=1, kind="stable")
    print("| filter | k | " + " | ".join(f"{t:.2f}" for t in TARGETS) + " |")
    print("|---|---:|" + "---:|" * len(TARGETS))
    for base, m0, f0 in (("g20", np.isin(g, [0, 1]), {"g": {"$in": [0, 1]}}), ("all", np.ones(n, bool), None)):
        for k in (1, 2, 3):
            for N in (0, 1, 2, 5, 10):
                if base == "all" and N == 0:
                    continue
                masks, filters = [], []
                for i in range(nq):
                    head = [int(x) for x in order[i][m0[order[i]]][:N]]
                    m = m0.copy()
                    m[head] = False
                    masks.append(m)
                    fl = ([f0] if f0 else []) + ([{"$not": {"$ids": head}}] if N else [])
                    filters.append(None if not fl else fl[0] if len(fl) == 1 else {"$and": fl})
                row = []
                for t in TARGETS:
                    rs = []
                    for i in range(nq):
                        hits = ix.search(q[i], k=k, algorithm="approximate", target_recall=t, filter=filters[i],
                                         with_payload=False)
                        r = recall(hits, S[i], masks[i], k)
                        if r is not None:
                            rs.append(r)
                    mean = float(np.mean(rs))
                    row.append(f"{mean:.4f}" + (" **miss**" if mean < t - 0.005 else ""))
                print(f"| {base} less first {N} | {k} | " + " | ".join(row) + " |", flush=True)


def part_speed(ix, q, args):
    nq = q.shape[0]

    def one(alg, f, t, k):
        t0 = time.perf_counter()
        ix.search_batch(q, k=k, algorithm=alg, target_recall=t, filter=f, with_payload=False, threads=1)
        return (time.perf_counter() - t0) / nq * 1e3

    print("| k | filter share | approximate 0.90 | auto | exhaustive | approximate / auto |")
    print("|---:|---:|---:|---:|---:|---:|")
    for k in (10, 30, 100):
        for share in SHARES:
            f = {"p": {"$lt": int(round(share * 1000))}}
            runs = {"approximate": [], "auto": [], "exhaustive": []}
            order = [("approximate", 0.9), ("auto", None), ("exhaustive", None)]
            for r in range(args.rounds):
                for alg, t in order[:: 1 if r % 2 else -1]:
                    runs[alg].append(one(alg, f, t, k))
            m = {a: float(np.median(v)) for a, v in runs.items()}
            print(f"| {k} | {share:.3f} | {m['approximate']:.3f} | {m['auto']:.3f} | {m['exhaustive']:.3f} | "
                  f"{m['approximate'] / m['auto']:.2f} |", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True)
    ap.add_argument("--part", choices=["recall", "speed"], required=True)
    ap.add_argument("--n", type=int, default=None, help="queries (recall: 400, speed: 200)")
    ap.add_argument("--offset", type=int, default=1000, help="first query used")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    nq = args.n or (400 if args.part == "recall" else 200)
    d = sp.load_npz(os.path.join(args.data, "docs.npz")).tocsr()
    q = sp.load_npz(os.path.join(args.data, "queries.npz")).tocsr()[args.offset:args.offset + nq]
    n = d.shape[0]
    rng = np.random.default_rng(args.seed)
    g, p = rng.integers(0, 10, n), rng.integers(0, 1000, n)
    ix = SparseIndex(encoder=None)
    ix.add(d, payloads=[{"g": int(g[i]), "p": int(p[i])} for i in range(n)])
    ix.commit()
    ix.calibrate()
    print(f"{args.data}: {n:,} documents, {q.shape[0]} queries from {args.offset}\n")
    if args.part == "recall":
        S = (q.astype(np.float64) @ d.T.astype(np.float64)).toarray()
        part_recall(ix, q, S, g, args)
    else:
        part_speed(ix, q, args)


if __name__ == "__main__":
    main()
