#!/usr/bin/env python
"""Latency of one search over 50 segments (synthetic 1M split in 50 engine segments of 20k,
one shared 8-bit grid), paired between score modes, for A/B runs of two builds.

    python benches/segments_ab.py vectors impacts          # this build, both score modes
    PYTHONPATH=/path/to/other/python python benches/segments_ab.py   # a build without `scores=`

Per query the fastest of 3 rounds after 20 warm-up queries, modes alternating query by query;
k=10, one query per call (`_core.search_segments`). Prints median and p90 ms per mode.
"""

import os
import statistics
import sys
import time

import numpy as np

os.environ.setdefault("RAYON_NUM_THREADS", "2")
from sparsedex import _core  # noqa: E402

c = _core.synthetic_corpus(1_000_000, 200, 0)
ip, ii, iv = c[0], c[1], c[2]
mw = float(iv.max())
b = np.linspace(0, len(ip) - 1, 51).astype(int)
segs = []
for a, e in zip(b[:-1], b[1:]):
    lo, hi = int(ip[a]), int(ip[e])
    segs.append(_core.Index.build((ip[a : e + 1] - ip[a]).astype(np.uint64), ii[lo:hi], iv[lo:hi],
                                  quantization="u8", scale=255.0 / mw, ids_int=np.arange(a, e, dtype=np.int64)))
qp, qi, qv = c[3], c[4], c[5]
qs = [(qi[qp[i] : qp[i + 1]], qv[qp[i] : qp[i + 1]]) for i in range(200)]
al = [None] * len(segs)
modes = sys.argv[1:] or [None]


def kw(m):
    return {} if m is None else {"scores": m}


for q in qs[:20]:
    for m in modes:
        _core.search_segments(segs, al, *q, k=10, **kw(m))
best = {m: [1e9] * len(qs) for m in modes}
for r in range(3):
    for i, q in enumerate(qs):
        for m in modes if (i + r) % 2 == 0 else modes[::-1]:
            t = time.perf_counter()
            _core.search_segments(segs, al, *q, k=10, **kw(m))
            best[m][i] = min(best[m][i], (time.perf_counter() - t) * 1e3)
for m in best:
    s = sorted(best[m])
    print(f"{m or 'default'}: median {statistics.median(s):.3f} ms, p90 {s[int(0.9 * len(s))]:.3f} ms")
