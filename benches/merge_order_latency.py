#!/usr/bin/env python
"""Usage: python benches/merge_order_latency.py 1000000

Query latency of the final 1M segment in the two BP starting orders: (a) this branch's bulk
load (100 commits of 10k, signature order each, merges concatenate, one reorder job with BP
from the members concatenated) and (b) main's (BP'd 100k segments concatenated, BP at the
merge): here ten 100k commits (BP each) merged with merge(). Same documents, same hits."""
import os, sys, time, tempfile, shutil, statistics
os.environ.setdefault("RAYON_NUM_THREADS", "1")
import numpy as np
from sparsedex import SparseIndex, _core
from sparsedex.index import MergePolicy
N = int(sys.argv[1]); Q = 200
dp, di, dv, qp, qi, qv = _core.synthetic_corpus(N, Q, 0)
qs = [(qi[qp[i]:qp[i + 1]], qv[qp[i]:qp[i + 1]]) for i in range(Q)]
tmp = tempfile.mkdtemp(prefix="sdx-ol-")
def build(batch, name):
    ix = SparseIndex(None, "u8", path=f"{tmp}/{name}", store_texts=False, max_weight=float(dv.max()),
                     merge_policy=MergePolicy(factor=0))
    for a in range(0, N, batch):
        b = min(N, a + batch); lo, hi = int(dp[a]), int(dp[b])
        ix.add((np.asarray(dp[a:b + 1] - dp[a], np.int64), di[lo:hi], dv[lo:hi]), ids=list(range(a, b)))
        ix.commit()
    t0 = time.perf_counter(); ix.merge(); print(f"{name}: merge() {time.perf_counter() - t0:.1f} s", flush=True)
    return ix
ixs = {"a: 10k commits (branch bulk load)": build(10_000, "a"), "b: 100k commits BP'd (main's merge input)": build(100_000, "b")}
ref = [[(h.id, h.score) for h in ixs["b: 100k commits BP'd (main's merge input)"].search(q, k=10)] for q in qs]
for name, ix in ixs.items():
    assert [[(h.id, h.score) for h in ix.search(q, k=10)] for q in qs] == ref, name
rounds = {n: [] for n in ixs}
for r in range(3):
    for n, ix in ixs.items():
        ts = []
        for q in qs:
            t0 = time.perf_counter(); ix.search(q, k=10); ts.append((time.perf_counter() - t0) * 1e3)
        rounds[n].append(statistics.median(ts))
for n, v in rounds.items():
    print(f"{n}: median ms per round {', '.join(f'{x:.3f}' for x in v)}; best {min(v):.3f}")
for ix in ixs.values(): ix.close()
shutil.rmtree(tmp)
