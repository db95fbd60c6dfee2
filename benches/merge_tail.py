"""The final concatenating merge alone, the tail of issue #8's 1M adds benchmark.

What it measures: ``segments`` segments of the synthetic SPLADE-like corpus
(``sparsedex._core.synthetic_corpus``, the harness's: Zipf-like term draws, gamma weights), built
with merges off and no reordering, then ``merge(1)`` into one segment (a concatenation: postings
re-blocked, stored vectors remapped, documents copied in SQLite alongside); prints wall and
process CPU seconds per repeat. RAYON_NUM_THREADS=1 as in benches/updates.py.

    python benches/merge_tail.py [docs=1000000] [segments=10] [repeats=1]
"""
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("RAYON_NUM_THREADS", "1")

import numpy as np  # noqa: E402

import sparsedex  # noqa: E402
from sparsedex import MergePolicy, SparseIndex, _core  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from updates import rows  # noqa: E402

n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
nseg = int(sys.argv[2]) if len(sys.argv) > 2 else 10
reps = int(sys.argv[3]) if len(sys.argv) > 3 else 1
print(f"build: {sparsedex.__file__}")
dp, di, dv, qp, qi, qv = _core.synthetic_corpus(n, 10, 0)
docs = (dp, di, dv)
payloads = [None] * n
for r in range(reps):
    path = Path(tempfile.mkdtemp(prefix="sdx-merge-tail-"))
    try:
        ix = SparseIndex(None, "u8", path=path, merge_policy=MergePolicy(factor=0), store_texts=False,
                         max_weight=float(dv.max()), reorder=False)
        bounds = np.linspace(0, n, nseg + 1).astype(int)
        for a, b in zip(bounds[:-1], bounds[1:]):
            ix.add(rows(docs, a, b), ids=list(range(a, b)), payloads=payloads[a:b])
            ix.commit()
        os.sync()
        time.sleep(1)
        t = time.perf_counter()
        c = time.process_time()
        ix.merge(1)
        print(f"merge {nseg}->1 of {n}: {time.perf_counter() - t:.2f} s wall, {time.process_time() - c:.2f} s cpu, "
              f"segments {len(ix.segments())}", flush=True)
        ix.close()
    finally:
        shutil.rmtree(path, ignore_errors=True)
