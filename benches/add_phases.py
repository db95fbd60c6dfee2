#!/usr/bin/env python
"""Where the foreground add + commit time goes: per-phase wall and CPU (this thread's
``time.thread_time``) medians per batch, merges off, on the synthetic corpus of
``benches/updates.py`` (batches of 10,000 with a ``{"bucket": int}`` payload each, commit
after each).

    python benches/add_phases.py 300000

Phases: ``ADD`` (``SparseIndex.add``) = ``add.prepare_stored`` (id checks, CSR term/weight
checks, ``add.normalize_payloads``: payload validation + stored JSON) + ``add.store_add``
(``core.stage_add``: the engine's cleaning of the rows, id uniqueness, staging);
``COMMIT`` = ``core.prepare_commit`` (segment build in memory) + ``commit.write_docs``
(SQLite documents file, fsynced) + ``core.finish_commit`` (engine file written + fsynced,
mapped; manifest, CURRENT, directory syncs; garbage collection) + ``commit.load_snapshot``.
Timers wrap the functions (an instrumented run: a little slower than a plain one).
"""
import os, sys, time, tempfile, statistics, collections
for _v in ("RAYON_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_v, "1")
import numpy as np
from sparsedex import SparseIndex, _core
from sparsedex.index import MergePolicy
import sparsedex.store as st, sparsedex.index as ixm, sparsedex._validate as va

N = int(sys.argv[1]) if len(sys.argv) > 1 else 300_000
B = 10_000
T = collections.defaultdict(list)
C = collections.defaultdict(list)

def wrap(obj, name, label):
    f = getattr(obj, name)
    def g(*a, **k):
        t = time.perf_counter(); c = time.thread_time()
        try:
            return f(*a, **k)
        finally:
            T[label].append(time.perf_counter() - t); C[label].append(time.thread_time() - c)
    setattr(obj, name, g)

wrap(ixm.SparseIndex, "_prepare_stored", "add.prepare_stored")
wrap(va, "check_csr_terms", "add.check_csr_terms")
wrap(va, "check_csr_weights", "add.check_csr_weights")
wrap(va, "normalize_payloads_stored", "add.normalize_payloads")
wrap(ixm.SparseIndex, "_check_ids", "add.check_ids")
wrap(ixm.SparseIndex, "_warn_above_max_weight", "add.warn_max_weight")
wrap(st.Store, "add", "add.store_add")
wrap(st, "write_docs", "commit.write_docs")
wrap(st.Store, "_load_snapshot", "commit.load_snapshot")
wrap(ixm.SparseIndex, "add", "ADD")
wrap(ixm.SparseIndex, "commit", "COMMIT")

class CoreProxy:
    def __init__(self, c): self._c = c
    def __getattr__(self, n):
        f = getattr(self._c, n)
        if n in ("stage_add", "prepare_commit", "write_prepared", "finish_commit"):
            def g(*a, **k):
                t = time.perf_counter(); c = time.thread_time()
                try: return f(*a, **k)
                finally: T["core." + n].append(time.perf_counter() - t); C["core." + n].append(time.thread_time() - c)
            return g
        return f

dp, di, dv, qp, qi, qv = _core.synthetic_corpus(N, 10, 0)
rng = np.random.default_rng(0)
payloads = [{"bucket": int(b)} for b in rng.integers(0, 1000, N).tolist()]
def rows(a, b):
    lo, hi = int(dp[a]), int(dp[b])
    return (np.asarray(dp[a:b+1] - dp[a], dtype=np.int64), di[lo:hi], dv[lo:hi])

with tempfile.TemporaryDirectory(dir=os.environ.get("FG_TMP", "/tmp")) as d:
    ix = SparseIndex(None, "u8", path=d + "/ix", store_texts=False, max_weight=float(dv.max()),
                     merge_policy=MergePolicy(factor=0))
    ix._store._core = CoreProxy(ix._store._core)
    t0 = time.perf_counter(); c0 = time.process_time()
    for a in range(0, N, B):
        ix.add(rows(a, a + B), ids=list(range(a, a + B)), payloads=payloads[a:a + B])
        ix.commit()
    tot = time.perf_counter() - t0
    ix.close()
print(f"cpu {time.process_time()-c0:.2f}s N={N} total {tot:.2f}s  {N/tot:,.0f} docs/s  ({tot/(N/B)*1e3:.1f} ms/batch)")
for k in sorted(T, key=lambda k: (k.split('.')[0] if '.' in k else k.lower(), k)):
    v = T[k]
    print(f"  {k:28s} wall {statistics.median(v)*1e3:7.2f} ms  cpu {statistics.median(C[k])*1e3:7.2f} ms  n={len(v)}")
