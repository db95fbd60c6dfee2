#!/usr/bin/env python
"""What the storage engine costs as the collection grows (issue 8), through `SparseIndex`:

1. **BM25 commit** (``--bm25``): a durable BM25 index of N synthetic texts (words drawn from a
   Zipf vocabulary of 50,000, 40 words each, with a short payload), filled in commits of 10,000
   and merged into one segment; then one round = ``add`` 200 new texts + ``commit()`` +
   ``search`` (k=10) of a two-word query, timed ``--rounds`` times. Reported: the median round
   at each N and the ratio of the largest N to the smallest (issue 8: 3.6x on the Python store;
   target <= 2x).
2. **Open** (``--open N``): a durable index of N documents, closed; then, in a fresh process
   each time: ``SparseIndex.open`` + the first ``search`` (k=10) + one ``get``.
   ``--open-kind bm25`` (default, what issue 8 names): BM25 over synthetic texts (40 words
   each, kept by the index) with a short payload ``{"i": i, "tag": ...}``; ``vectors``: vectors
   you bring (~30 terms each) with the same payloads and no text.
   Reported: median wall time and the growth of anonymous memory (RssAnon, /proc/self/status)
   over the three calls (issue 8: 193 MB and 1.3 s on the Python store; target <= 64 MB, <= 1 s).

    python benches/store_costs.py --bm25 10000,100000 --rounds 15 --open 300000 --repeats 5 \\
        --out benches/results/store-costs.md
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from sparsedex import SparseIndex, _core
from sparsedex.index import MergePolicy


def texts(rng: np.random.Generator, n: int, vocab: int = 50_000, words: int = 40) -> list[str]:
    ranks = rng.zipf(1.2, size=(n, words))
    ranks = np.where(ranks > vocab, rng.integers(1, vocab, size=ranks.shape), ranks)
    return [" ".join(f"w{r}" for r in row) for row in ranks.tolist()]


def bm25_round_ms(n: int, rounds: int, tmp: Path) -> dict:
    rng = np.random.default_rng(n)
    ix = SparseIndex("bm25", "u8", path=tmp / f"bm25-{n}", merge_policy=MergePolicy(factor=0))
    for lo in range(0, n, 10_000):
        hi = min(n, lo + 10_000)
        ix.add(texts(rng, hi - lo), payloads=[{"i": i} for i in range(lo, hi)])
        ix.commit()
    ix.merge(1)
    new = texts(rng, 200 * rounds)
    qs = [" ".join(t.split()[:2]) for t in texts(rng, rounds)]
    times = []
    for r in range(rounds):
        t0 = time.perf_counter()
        ix.add(new[200 * r : 200 * (r + 1)], payloads=[{"round": r}] * 200)
        ix.commit()
        ix.search(qs[r], k=10)
        times.append(time.perf_counter() - t0)
    segs = len(ix.segments())
    ix.close()
    return {"n_docs": n, "median_ms": 1000 * statistics.median(times), "segments_at_end": segs}


def build_open_index(path: Path, n: int, kind: str = "bm25") -> None:
    if kind == "bm25":
        rng = np.random.default_rng(3)
        ix = SparseIndex("bm25", "u8", path=path, merge_policy=MergePolicy(factor=0))
        step = 50_000
        for lo in range(0, n, step):
            hi = min(n, lo + step)
            ix.add(texts(rng, hi - lo), ids=list(range(lo, hi)), payloads=[{"i": i, "tag": f"t{i % 97}"} for i in range(lo, hi)])
            ix.commit()
            print(f"  {hi:,} / {n:,} documents", flush=True)
        ix.merge(1)
        ix.close()
        return
    ip, ix_, v, *_ = _core.synthetic_corpus(n, 1, seed=3, doc_nnz=30.0, query_nnz=10.0)
    ix = SparseIndex(None, "u8", path=path, merge_policy=MergePolicy(factor=0))
    step = 50_000
    for lo in range(0, n, step):
        hi = min(n, lo + step)
        a, b = int(ip[lo]), int(ip[hi])
        csr = ((ip[lo : hi + 1] - ip[lo]).astype(np.uint64), ix_[a:b], v[a:b])
        ix.add(csr, payloads=[{"i": i, "tag": f"t{i % 97}"} for i in range(lo, hi)])
        ix.commit()
    ix.merge(1)
    ix.close()


_CHILD = r"""
import json, sys, time
def anon():
    for line in open("/proc/self/status"):
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) * 1024
import numpy as np
from sparsedex import SparseIndex
a0 = anon(); t0 = time.perf_counter()
ix = SparseIndex.open(sys.argv[1])
t1 = time.perf_counter()
hits = ix.search("w1 w7 w40" if ix.encoder is not None else {1: 1.0, 7: 0.5, 40: 2.0}, k=10)
t2 = time.perf_counter()
doc = ix.get(12345)
t3 = time.perf_counter()
assert hits and doc.payload["i"] == 12345, (hits, doc.payload)
print(json.dumps({"open_s": t1 - t0, "search_s": t2 - t1, "get_s": t3 - t2, "total_s": t3 - t0,
                  "anon_mb": (anon() - a0) / 2**20, "hits": len(hits), "payload": doc.payload,
                  "text_chars": len(doc.text or "")}))
"""


def open_costs(path: Path, repeats: int) -> dict:
    runs = []
    for _ in range(repeats):
        out = subprocess.run([sys.executable, "-c", _CHILD, str(path)], capture_output=True, text=True, check=True)
        runs.append(json.loads(out.stdout))
    med = {k: statistics.median(r[k] for r in runs) for k in ("open_s", "search_s", "get_s", "total_s", "anon_mb")}
    med["runs"] = runs
    return med


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bm25", default="10000,100000")
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--open", type=int, default=300_000)
    ap.add_argument("--open-kind", choices=("bm25", "vectors"), default="bm25")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", type=Path, default=None)
    a = ap.parse_args()
    res: dict = {}
    lines = ["# Storage costs through SparseIndex (issue 8)", ""]
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        if a.bm25:
            sizes = [int(x) for x in a.bm25.split(",")]
            rows = []
            for n in sizes:
                r = bm25_round_ms(n, a.rounds, tmp)
                print(json.dumps(r), flush=True)
                rows.append(r)
            base = rows[0]["median_ms"]
            lines += ["## BM25: add 200 texts + commit + search", "",
                      f"Median of {a.rounds} rounds; durable index (commits fsync), one merged segment plus the rounds' segments.", "",
                      "| documents | median ms | vs smallest |", "|---:|---:|---:|"]
            lines += [f"| {r['n_docs']:,} | {r['median_ms']:.1f} | {r['median_ms'] / base:.2f}x |" for r in rows]
            lines.append("")
            res["bm25"] = rows
        if a.open:
            p = tmp / "open"
            t0 = time.perf_counter()
            build_open_index(p, a.open, a.open_kind)
            print(f"built {a.open:,} documents in {time.perf_counter() - t0:.1f} s", flush=True)
            r = open_costs(p, a.repeats)
            print(json.dumps({k: v for k, v in r.items() if k != "runs"}), flush=True)
            what = "BM25 texts (kept) and short payloads" if a.open_kind == "bm25" else "vectors you bring and short payloads"
            r["kind"] = a.open_kind
            r["disk_mb"] = sum(f.stat().st_size for f in p.rglob("*") if f.is_file()) / 2**20
            lines += [f"## Open + first search + one get, {a.open:,} documents: {what}", "",
                      f"Index directory {r['disk_mb']:.0f} MB; text of the document read: {r['runs'][0]['text_chars']} characters.", "",
                      f"Fresh process each time, median of {a.repeats}; anonymous memory = growth of RssAnon over the three calls.", "",
                      "| open s | first search s | get s | total s | anonymous MB |", "|---:|---:|---:|---:|---:|",
                      f"| {r['open_s']:.3f} | {r['search_s']:.3f} | {r['get_s']:.4f} | {r['total_s']:.3f} | {r['anon_mb']:.1f} |", ""]
            res["open"] = r
    text = "\n".join(lines)
    print(text)
    if a.out:
        a.out.write_text(text)
        a.out.with_suffix(".json").write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
