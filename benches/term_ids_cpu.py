"""Per-algorithm query cost of term-id layouts in one process (issue 8: where `auto`'s gap
between dense and random 32-bit ids comes from).

Builds `benches/term_ids.py`'s corpus once per variant (dense, permuted, random, ...: see its
doc) in this process (u8, BP), then times every query with each algorithm on every variant,
interleaved query by query (the order of variants alternating), as *thread CPU time*
(`time.thread_time`: a single search runs on the calling thread), fastest of 3 rounds after a
warm-up pass, median over queries, and ratios to the first variant. CPU time and interleaving
make it usable on a loaded machine, where wall times per process (`term_ids.py compare`) are
not.

  python benches/term_ids_cpu.py 1000000 200 dense,permuted,random
"""
import sys, time, statistics, numpy as np
sys.path.insert(0, __import__("os").path.dirname(__import__("os").path.abspath(__file__)))
import term_ids as T
from sparsedex import _core
n = int(sys.argv[1]); nq = int(sys.argv[2]); variants = sys.argv[3].split(",")
algos = sys.argv[4].split(",") if len(sys.argv) > 4 else ["auto", "bmp", "superblock", "exhaustive"]
ix = {}; qs = {}
for v in variants:
    docs, q = T.corpus(n, nq, 0, v)
    t0 = time.process_time()
    ix[v] = _core.Index.build(*docs, quantization="u8", reorder=True)
    print(v, "build cpu", round(time.process_time() - t0, 2), ix[v].stats().get("bytes"), flush=True)
    qs[v] = [(q[1][int(q[0][i]):int(q[0][i+1])], q[2][int(q[0][i]):int(q[0][i+1])]) for i in range(len(q[0]) - 1)]
res = {}
for a in algos:
    for v in variants:  # warm-up (and auto's race)
        for t, w in qs[v]:
            ix[v].search(t, w, k=10, algorithm=a)
    best = {v: [float("inf")] * nq for v in variants}
    for r in range(3):
        for i in range(nq):
            for v in (variants if (i + r) % 2 == 0 else variants[::-1]):
                t, w = qs[v][i]
                c0 = time.thread_time()
                ix[v].search(t, w, k=10, algorithm=a)
                best[v][i] = min(best[v][i], time.thread_time() - c0)
    for v in variants:
        res[(a, v)] = statistics.median(best[v]) * 1000
    base = res[(a, variants[0])]
    print(a, " ".join(f"{v}={res[(a, v)]:.4f}ms({res[(a, v)] / base:.3f})" for v in variants), flush=True)
