"""Time the final concatenating merge alone: N segments (no merges, no reorder) of the synthetic corpus into one with merge(1); prints wall and process CPU seconds. Usage: python benches/merge_tail.py [docs=1000000] [segments=10] [repeats=1]."""
import sys, time, shutil, tempfile, os
from pathlib import Path
import numpy as np
os.environ.setdefault("RAYON_NUM_THREADS", "1")
import sparsedex
from sparsedex import SparseIndex, MergePolicy, _core
sys.path.insert(0, "benches")
from updates import rows
n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
nseg = int(sys.argv[2]) if len(sys.argv) > 2 else 10
reps = int(sys.argv[3]) if len(sys.argv) > 3 else 1
print(sparsedex.__file__)
dp, di, dv, qp, qi, qv = _core.synthetic_corpus(n, 10, 0)
docs = (dp, di, dv)
payloads = [None] * n
for r in range(reps):
    path = Path(tempfile.mkdtemp())
    ix = SparseIndex(None, "u8", path=path, merge_policy=MergePolicy(factor=0), store_texts=False, max_weight=float(dv.max()), reorder=False)
    bounds = np.linspace(0, n, nseg + 1).astype(int)
    for a, b in zip(bounds[:-1], bounds[1:]):
        ix.add(rows(docs, a, b), ids=list(range(a, b)), payloads=payloads[a:b])
        ix.commit()
    os.sync()
    time.sleep(1)
    t = time.perf_counter(); c = time.process_time()
    ix.merge(1)
    print(f"merge {nseg}->1 of {n}: {time.perf_counter()-t:.2f} s wall, {time.process_time()-c:.2f} s cpu, segs {len(ix.segments())}", flush=True)
    ix.close(); shutil.rmtree(path)
