"""What order-independent float sums cost: median ms/query of two builds, side by side.

Float BM25 sums a document's contributions exactly in fixed point (u64 units, see
``rust/core/src/search/fixed.rs``) instead of f32 additions in term-id order; float vectors
and the u8 kinds are unchanged. This bench times the same searches with two builds of the
package, alternated in one run (A B A B ...), so that the load of a shared machine falls on
both alike:

- debian (60,190 real splade-tiny documents, 2,000 queries): vectors, ``float`` and ``u8``;
- cranfield (1,400 documents, 225 queries) and vaswani (11,429 documents, 93 queries): BM25,
  ``float`` and ``u8``.

Each side builds the indexes in memory (default options), then times ``search_batch(k=10,
threads=1)`` over every query, ``--reps`` times per algorithm, and reports the median
ms/query. Usage::

    python benches/float_sum.py --ab A=/path/to/pkg_a B=/path/to/pkg_b --rounds 3

where each path is a directory holding a ``sparsedex`` package (its ``_core`` built from the
branch to compare). ``--one`` runs one side in this process (the package on ``sys.path``).

On a loaded machine the two sides of ``--ab`` see different loads. ``--pair OTHER`` loads
both builds in one process (the importable ``sparsedex`` and a copy of ``OTHER/sparsedex``
imported as ``sparsedex_other``), builds every index with each, and alternates the timed
passes query batch by query batch (other, this, other, this, ...), so that both see the same
load::

    python benches/float_sum.py --pair /path/to/main_pkg --reps 7
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

DATA = Path(os.environ.get("SPARSEDEX_DATA", "/work/shared/data"))
ALGOS = ("auto", "exhaustive", "maxscore", "bmp")


def _jsonl(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def one(reps: int, algos: tuple[str, ...]) -> dict[str, float]:
    import numpy as np
    import scipy.sparse as sp

    from sparsedex import SparseIndex

    out: dict[str, float] = {}

    def timed(name: str, ix: SparseIndex, queries) -> None:
        ix.search_batch(queries, k=10, threads=1)  # warm
        nq = queries.shape[0] if hasattr(queries, "shape") else len(queries)
        for algo in algos:
            ts = []
            for _ in range(reps):
                t = time.perf_counter()
                ix.search_batch(queries, k=10, algorithm=algo, threads=1)
                ts.append((time.perf_counter() - t) * 1000 / nq)
            out[f"{name} {algo}"] = statistics.median(ts)

    d = np.load(DATA / "debian" / "docs.npz")
    q = np.load(DATA / "debian" / "queries.npz")
    docs = sp.csr_matrix((d["data"], d["indices"], d["indptr"]), shape=tuple(d["shape"]))
    queries = sp.csr_matrix((q["data"], q["indices"], q["indptr"]), shape=tuple(q["shape"]))
    for quant in ("float", "u8"):
        ix = SparseIndex(None, quant, store_texts=False)
        ix.add(docs, ids=list(range(docs.shape[0])))
        ix.commit()
        timed(f"debian {quant}", ix, queries)
    for coll in ("cranfield", "vaswani"):
        corpus = _jsonl(DATA / coll / "corpus.jsonl")
        texts = [c["text"] for c in _jsonl(DATA / coll / "queries.jsonl")]
        for quant in ("float", "u8"):
            ix = SparseIndex("bm25", quant, store_texts=False)
            ix.add([c["text"] for c in corpus], ids=[c["id"] for c in corpus])
            ix.commit()
            timed(f"{coll} bm25 {quant}", ix, texts)
    return out


def _indexes(mod, which: set[str]):
    """The bench's indexes built with the package ``mod``: {name: (index, queries)}."""
    import numpy as np
    import scipy.sparse as sp

    out = {}
    if {"debian float", "debian u8"} & which:
        d = np.load(DATA / "debian" / "docs.npz")
        q = np.load(DATA / "debian" / "queries.npz")
        docs = sp.csr_matrix((d["data"], d["indices"], d["indptr"]), shape=tuple(d["shape"]))
        queries = sp.csr_matrix((q["data"], q["indices"], q["indptr"]), shape=tuple(q["shape"]))
        for quant in ("float", "u8"):
            if f"debian {quant}" in which:
                ix = mod.SparseIndex(None, quant, store_texts=False)
                ix.add(docs, ids=list(range(docs.shape[0])))
                ix.commit()
                out[f"debian {quant}"] = (ix, queries)
    for coll in ("cranfield", "vaswani"):
        for quant in ("float", "u8"):
            name = f"{coll} bm25 {quant}"
            if name not in which:
                continue
            corpus = _jsonl(DATA / coll / "corpus.jsonl")
            texts = [c["text"] for c in _jsonl(DATA / coll / "queries.jsonl")]
            ix = mod.SparseIndex("bm25", quant, store_texts=False)
            ix.add([c["text"] for c in corpus], ids=[c["id"] for c in corpus])
            ix.commit()
            out[name] = (ix, texts)
    return out


def pair(other: str, reps: int, algos: tuple[str, ...], cases: set[str]) -> None:
    import importlib
    import shutil
    import tempfile

    import sparsedex

    tmp = Path(tempfile.mkdtemp())
    shutil.copytree(Path(other) / "sparsedex", tmp / "sparsedex_other")
    sys.path.insert(0, str(tmp))
    other_mod = importlib.import_module("sparsedex_other")
    sides = {"other": _indexes(other_mod, cases), "this": _indexes(sparsedex, cases)}
    print(f"{'case':34s} {'other ms/q':>11s} {'this ms/q':>11s} {'this/other':>10s}")
    for name in sides["this"]:
        for algo in algos:
            ts: dict[str, list[float]] = {"other": [], "this": []}
            for r in range(reps + 1):
                for side in ("other", "this"):
                    ix, queries = sides[side][name]
                    nq = queries.shape[0] if hasattr(queries, "shape") else len(queries)
                    t = time.perf_counter()
                    ix.search_batch(queries, k=10, algorithm=algo, threads=1)
                    if r:  # the first pass warms
                        ts[side].append((time.perf_counter() - t) * 1000 / nq)
            mo, mt = statistics.median(ts["other"]), statistics.median(ts["this"])
            print(f"{name + ' ' + algo:34s} {mo:11.4f} {mt:11.4f} {mt / mo:10.3f}", flush=True)
    shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ab", nargs=2, metavar="NAME=PATH", help="two package directories to compare")
    ap.add_argument("--one", action="store_true", help="time the importable package, print JSON")
    ap.add_argument("--rounds", type=int, default=3, help="A/B alternations")
    ap.add_argument("--reps", type=int, default=5, help="timed passes per algorithm and side")
    ap.add_argument("--algos", default=",".join(ALGOS))
    ap.add_argument("--pair", metavar="DIR", help="the other build's package directory, timed in this process")
    ap.add_argument("--cases", default="debian float,debian u8,cranfield bm25 float,cranfield bm25 u8,"
                    "vaswani bm25 float,vaswani bm25 u8", help="comma list (--pair)")
    a = ap.parse_args()
    algos = tuple(a.algos.split(","))
    if a.pair:
        pair(a.pair, a.reps, algos, set(a.cases.split(",")))
        return
    if a.one:
        print(json.dumps(one(a.reps, algos)))
        return
    if not a.ab:
        ap.error("--ab NAME=PATH NAME=PATH or --one")
    sides = [s.split("=", 1) for s in a.ab]
    runs: dict[str, list[dict[str, float]]] = {name: [] for name, _ in sides}
    for r in range(a.rounds):
        for name, path in sides:
            env = dict(os.environ, PYTHONPATH=path)
            cmd = [sys.executable, __file__, "--one", "--reps", str(a.reps), "--algos", a.algos]
            res = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
            runs[name].append(json.loads(res.stdout.strip().splitlines()[-1]))
            print(f"round {r + 1}/{a.rounds} {name} done", file=sys.stderr, flush=True)
    (na, _), (nb, _) = sides
    keys = list(runs[na][0])
    print(f"{'case':34s} {na + ' ms/q':>12s} {nb + ' ms/q':>12s} {nb + '/' + na:>8s}")
    for key in keys:
        ma = statistics.median(x[key] for x in runs[na])
        mb = statistics.median(x[key] for x in runs[nb])
        print(f"{key:34s} {ma:12.4f} {mb:12.4f} {mb / ma:8.3f}")


if __name__ == "__main__":
    main()
