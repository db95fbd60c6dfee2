"""Approximate search cost and recall with random deletions (5%, 30%) against none, debian
(issue #10, filters and deletions honoured): `python benches/approx_allowed_cost.py`."""
import sys, time, numpy as np, scipy.sparse as sp
from sparsedex import SparseIndex
D = "/work/shared/data/debian"
docs = sp.load_npz(f"{D}/docs.npz").tocsr(); Q = sp.load_npz(f"{D}/queries.npz").tocsr()
qs = [Q[i] for i in range(200)]
def build(delete_frac, seed=0):
    ix = SparseIndex(None); ix.add(docs)
    if delete_frac:
        rng = np.random.default_rng(seed)
        ix.delete(sorted(rng.choice(docs.shape[0], int(delete_frac * docs.shape[0]), replace=False).tolist()))
    ix.search(qs[0], k=10, algorithm="approximate", target_recall=0.97)  # calibrate
    return ix
def med(ix, tr, rounds=5):
    best = np.full(len(qs), np.inf)
    for _ in range(rounds):
        for i, q in enumerate(qs):
            t = time.perf_counter(); ix.search(q, k=10, algorithm="approximate", target_recall=tr, with_payload=False)
            best[i] = min(best[i], time.perf_counter() - t)
    return np.median(best) * 1e3
def recall(ix, tr):
    r = []
    for q in qs:
        e = ix.search(q, k=10, algorithm="exhaustive", with_payload=False); a = ix.search(q, k=10, algorithm="approximate", target_recall=tr, with_payload=False)
        r.append(sum(h.score >= e[-1].score for h in a) / len(e))
    return np.mean(r)
ixs = {f: build(f) for f in (0.0, 0.05, 0.3)}
for tr in (0.95, 0.97, 0.99):
    row = []
    for f, ix in ixs.items():
        row.append(f"del {f:.2f}: {med(ix, tr):.3f} ms r={recall(ix, tr):.4f}")
    print(f"target {tr}: " + " | ".join(row), flush=True)
