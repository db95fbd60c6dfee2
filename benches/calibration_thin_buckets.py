"""Calibration on your own queries of one length: do queries of the lengths it leaves hold their
recall target? (helper-152 M2, stop 66.)

Builds one segment (u8, default settings) from --data (scipy.sparse docs.npz and queries.npz,
e.g. ../shared/data/debian), calibrates it on --cal queries cut to their heaviest --cal-terms
terms (the first of queries 0-999 with at least 17 terms: one query-length bucket, 17-32
terms), and measures on --held queries of queries 1000-1999 cut to their heaviest --held-terms
(9-16 terms: a bucket the calibration queries leave) the mean recall@10 of
``algorithm="approximate"`` against the exact top 10 (a hit counts when its score reaches the
exact 10th score) and the median latency per query, at each target. Prints the calibration
report (per bucket: max terms, queries, source, beta, rerank, recall).

Until stop 66 a bucket with fewer than 30 calibration queries took the setting of the nearest
bucket they filled; since, it keeps the segment's pseudo-query calibration. Run it once per
build (PYTHONPATH at a copy of the old package for the old one):

    python benches/calibration_thin_buckets.py --data ../shared/data/debian
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from sparsedex import SparseIndex


def _cut(m: sp.csr_matrix, rows: list[int], n: int) -> sp.csr_matrix:
    """Rows ``rows`` of ``m``, each cut to its ``n`` heaviest entries."""
    out_i, out_v, ptr = [], [], [0]
    for r in rows:
        a, b = m.indptr[r], m.indptr[r + 1]
        o = np.argsort(-m.data[a:b], kind="stable")[:n]
        out_i.append(m.indices[a:b][o])
        out_v.append(m.data[a:b][o])
        ptr.append(ptr[-1] + len(o))
    return sp.csr_matrix((np.concatenate(out_v), np.concatenate(out_i), ptr), shape=(len(rows), m.shape[1]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--cal", type=int, default=40, help="calibration queries (default 40)")
    ap.add_argument("--cal-terms", type=int, default=24)
    ap.add_argument("--held", type=int, default=400, help="held-out queries (default 400)")
    ap.add_argument("--held-terms", type=int, default=12)
    ap.add_argument("--targets", default="0.9,0.95,0.97")
    a = ap.parse_args()
    docs = sp.load_npz(a.data / "docs.npz").tocsr()
    qs = sp.load_npz(a.data / "queries.npz").tocsr()
    nnz = np.diff(qs.indptr)
    cal_rows = [i for i in range(min(1000, qs.shape[0])) if nnz[i] > 16][: a.cal]
    held_rows = [i for i in range(1000, qs.shape[0]) if nnz[i] > 8][: a.held]
    cal, held = _cut(qs, cal_rows, a.cal_terms), _cut(qs, held_rows, a.held_terms)
    print(f"{len(cal_rows)} calibration queries of {a.cal_terms} terms at most, {len(held_rows)} held-out of {a.held_terms}")
    ix = SparseIndex(encoder=None)
    ix.add(docs)
    ix.commit()
    for r in ix.calibrate(cal, target_recall=0.9, progress=False):
        for b in r["buckets"]:
            print(f"  bucket <= {b['max_terms']}: {b['queries']} queries ({b.get('calibrated_on', 'source not reported')}), "
                  f"beta {b['beta']} rerank {b['rerank']} recall {b['recall']}")
    want = [ix.search(held[i], k=10, algorithm="exhaustive", with_payload=False) for i in range(held.shape[0])]
    for t in (float(x) for x in a.targets.split(",")):
        rs, times = [], []
        for i in range(held.shape[0]):
            t0 = time.perf_counter()
            got = ix.search(held[i], k=10, algorithm="approximate", target_recall=t, with_payload=False)
            times.append(time.perf_counter() - t0)
            w = want[i]
            kth = w[-1].score if len(w) == 10 else -np.inf
            rs.append(sum(1 for h in got if h.score >= kth) / max(1, len(w)))
        print(f"target {t}: recall@10 {np.mean(rs):.4f}, median {np.median(times) * 1e3:.3f} ms per query")


if __name__ == "__main__":
    main()
