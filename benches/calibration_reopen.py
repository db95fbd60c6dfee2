"""Calibration persistence on debian: the first approximate query of a fresh on-disk index
calibrates its segment (and writes seg-<N>.cal); after reopening, the first approximate query
reads nothing more and calibrates nothing (counted by _core.calibration_counters(): computed,
files written, files read). Run from the repository root: python benches/calibration_reopen.py
"""
import tempfile, time, shutil, scipy.sparse as sps, numpy as np
from sparsedex import SparseIndex, _core
d = sps.load_npz("../shared/data/debian/docs.npz"); q = sps.load_npz("../shared/data/debian/queries.npz")
p = tempfile.mkdtemp() + "/ix"; shutil.rmtree(p, ignore_errors=True)
ix = SparseIndex.create(p); ix.add(d); ix.commit()
qq = [(q.indices[q.indptr[i]:q.indptr[i+1]], q.data[q.indptr[i]:q.indptr[i+1]]) for i in range(20)]
def first():
    t = time.perf_counter(); ix.search(qq[0], k=10, algorithm="approximate", target_recall=0.97); a = time.perf_counter() - t
    t = time.perf_counter(); [ix.search(x, k=10, algorithm="approximate", target_recall=0.97) for x in qq[1:]]; b = (time.perf_counter() - t) / 19
    return a, b
print("segments", [s["documents"] for s in ix.segments()])
a, b = first(); print(f"fresh: first approximate query {a:.2f}s, next {b*1e3:.3f} ms; counters {_core.calibration_counters()}")
ix.close()
t = time.perf_counter(); ix = SparseIndex.open(p); o = time.perf_counter() - t
a, b = first(); print(f"reopened: open {o:.2f}s, first approximate query {a*1e3:.1f} ms, next {b*1e3:.3f} ms; counters {_core.calibration_counters()}")
import os; print("cal files", [(f, os.path.getsize(os.path.join(p, f))) for f in os.listdir(p) if f.endswith(".cal")])
ix.close(); shutil.rmtree(p)
