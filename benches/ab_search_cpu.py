"""A/B of search latency between two builds of sparsedex on a busy machine: per-query *thread
CPU time* (time.thread_time_ns, not counting time the thread was descheduled), best of 5 reps
per query, median over the first 200 debian queries, for each algorithm named. Run it once per
build, alternating, e.g.:

    for i in 1 2 3; do /work/main/.venv/bin/python benches/ab_search_cpu.py sp,bmp,exhaustive,bmt main
                       .venv/bin/python benches/ab_search_cpu.py sp,bmp,exhaustive,bmt branch; done
"""
import sys, time, numpy as np, scipy.sparse as sp
from sparsedex._segment import SegmentView
d = sp.load_npz('/work/shared/data/debian/docs.npz'); q = sp.load_npz('/work/shared/data/debian/queries.npz')[:200]
ix = SegmentView.build((d.indptr.astype(np.uint64), d.indices.astype(np.uint32), d.data.astype(np.float32)), quantization="u8", store_vectors=True)
qs = [(q.indices[q.indptr[i]:q.indptr[i+1]].astype(np.uint32), q.data[q.indptr[i]:q.indptr[i+1]].astype(np.float32)) for i in range(q.shape[0])]
out = []
for alg in sys.argv[1].split(","):
    best = np.full(len(qs), np.inf)
    for r in range(5):
        for i, (a, b) in enumerate(qs):
            t = time.thread_time_ns(); ix.search(a, b, k=10, algorithm=alg); best[i] = min(best[i], time.thread_time_ns() - t)
    out.append(f"{alg} {np.median(best)/1e6:.3f}")
print(sys.argv[2], " ".join(out), flush=True)
