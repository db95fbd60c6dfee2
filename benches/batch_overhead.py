#!/usr/bin/env python
"""What ``SparseIndex.search_batch`` costs in Python per query, by the form the batch comes in
(a list of vectors, a scipy.sparse matrix, CSR arrays), on an index of 200 documents where the
engine's own work is a small part: the checks of the queries, the call, and making the hits.

    python benches/batch_overhead.py [--queries 4000] [--repeat 5]

Prints the fastest of ``--repeat`` calls, in microseconds per query, one thread. Stop 36
(Intel Xeon, 2 cores): CSR arrays 19.6 -> 12.3 us, scipy 16.9 -> 13.0, list 19.4 -> 18.4 when
well-formed CSR batches stopped making an object per query.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import scipy.sparse as sp

from sparsedex import SparseIndex


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--queries", type=int, default=4000)
    ap.add_argument("--repeat", type=int, default=5)
    a = ap.parse_args()
    rng = np.random.default_rng(0)
    ix = SparseIndex(None, "u8")
    ix.add([(np.sort(rng.choice(30000, 40, replace=False)).astype(np.uint32),
             rng.uniform(0.1, 2, 40).astype(np.float32)) for _ in range(200)])
    nq = a.queries
    qs = [(np.sort(rng.choice(30000, 30, replace=False)).astype(np.uint32),
           rng.uniform(0.1, 2, 30).astype(np.float32)) for _ in range(nq)]
    ind = np.concatenate([q[0] for q in qs])
    val = np.concatenate([q[1] for q in qs])
    ip = np.arange(nq + 1, dtype=np.int64) * 30
    forms = {"list": qs, "scipy": sp.csr_matrix((val, ind, ip), shape=(nq, 30522)), "csr arrays": (ip, ind, val)}
    for name, batch in forms.items():
        best = float("inf")
        for _ in range(a.repeat):
            t = time.perf_counter()
            ix.search_batch(batch, k=10, with_payload=False, threads=1)
            best = min(best, time.perf_counter() - t)
        print(f"{name:>10}: {best / nq * 1e6:.1f} us/query")


if __name__ == "__main__":
    main()
