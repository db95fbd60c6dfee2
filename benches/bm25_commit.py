"""BM25 in the engine: what adding documents costs as the collection grows (issue 8), at the
level of the Rust store (`sparsedex._core.Store`; the full `SparseIndex` measurement, with
text analysis and the documents database, comes with the Python integration).

Corpus: `_core.synthetic_corpus` documents turned into term frequencies (`ceil(3 * weight)`,
whole numbers >= 1), lengths = sums of term frequencies. A BM25 store (k1 1.2, b 0.75) is filled
with N documents in commits of 10,000, merged into one segment (as background merges would do),
then one round = stage 200 new documents + commit + one search (k=10, auto; BM25 statistics of
the live documents computed for the query) is timed `--rounds` times. Reported: the median
round per N and the ratio of the largest N to the smallest, for a store in memory and on disk
(a temporary directory; commits fsync).

  python benches/bm25_commit.py --sizes 10000,100000 --rounds 15

`--level index` measures the same round through the public API instead: a durable
`SparseIndex("bm25", "float")` (texts analysed, the term dictionary and the documents database
included, no automatic merges) filled with N synthetic texts (30 words each drawn from a Zipf
law, exponent 1.2, over ten million words, so that the vocabulary grows with the collection as
real text does: about 0.3M distinct terms at 100k documents), merged into one segment, then
add 200 new texts + commit + one search. Also reported per N: the size of the last manifest and
of the vocabulary file. This level runs on any sparsedex with the BM25 encoder, to compare
builds in one session:

  python benches/bm25_commit.py --level index --sizes 10000,100000 --rounds 15
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from sparsedex import _core


def tf_docs(d_ptr, d_idx, d_val, lo: int, hi: int):
    a, b = int(d_ptr[lo]), int(d_ptr[hi])
    indptr = (d_ptr[lo : hi + 1] - d_ptr[lo]).astype(np.uint64)
    return indptr, d_idx[a:b].copy(), np.ceil(3.0 * d_val[a:b]).astype(np.float32)


def run(n: int, rounds: int, path: Path | None, corpus, queries) -> dict:
    d_ptr, d_idx, d_val = corpus
    st = _core.Store.create(path, quantization="u8", bm25=(1.2, 0.75))
    for lo in range(0, n, 10_000):
        hi = min(n, lo + 10_000)
        st.stage_add(*tf_docs(d_ptr, d_idx, d_val, lo, hi), ids_int=np.arange(lo, hi, dtype=np.int64))
        st.finish_commit()
    names = st.plan_merge_to(1)
    if len(names) > 1:
        st.finish_merge(st.merge(names))
    times = []
    q_ptr, q_idx, q_val = queries
    for r in range(rounds):
        lo = n + 200 * r
        docs = tf_docs(d_ptr, d_idx, d_val, lo, lo + 200)
        qt = q_idx[int(q_ptr[r]) : int(q_ptr[r + 1])]
        qw = np.ones(len(qt), dtype=np.float32)
        t0 = time.perf_counter()
        st.stage_add(*docs, ids_int=np.arange(lo, lo + 200, dtype=np.int64))
        st.finish_commit()
        segs, hits, scores = st.snapshot().search(qt, qw, k=10)
        times.append(time.perf_counter() - t0)
        assert len(hits) == 10
    return {"n_docs": n, "segments": len(st.snapshot().segments()), "median_ms": round(1000 * statistics.median(times), 3)}


def zipf_texts(n: int, seed: int) -> list[str]:
    """`n` texts of 30 words `w<k>`, k drawn from a Zipf law (exponent 1.2) below 10^7."""
    rng = np.random.default_rng(seed)
    words = rng.zipf(1.2, size=(n, 30))
    words[words >= 10_000_000] = 1
    return [" ".join(f"w{k}" for k in row) for row in words.tolist()]


def run_index(n: int, rounds: int, path: Path, texts: list[str], queries: list[str]) -> dict:
    from sparsedex import SparseIndex
    from sparsedex.index import MergePolicy

    ix = SparseIndex("bm25", "float", path=path, merge_policy=MergePolicy(factor=0))
    for lo in range(0, n, 10_000):
        ix.add(texts[lo : min(n, lo + 10_000)], ids=list(range(lo, min(n, lo + 10_000))))
        ix.commit()
    ix.merge(1)
    times = []
    for r in range(rounds):
        lo = n + 200 * r
        t0 = time.perf_counter()
        ix.add(texts[lo : lo + 200], ids=list(range(lo, lo + 200)))
        ix.commit()
        hits = ix.search(queries[r], k=10)
        times.append(time.perf_counter() - t0)
        assert len(hits) == 10
    manifest = max(path.glob("manifest-*"), key=lambda f: f.name)
    vocab = sorted(path.glob("vocab-*"))
    out = {
        "n_docs": n,
        "terms": len(ix.encoder.vocabulary),
        "median_ms": round(1000 * statistics.median(times), 3),
        "manifest_bytes": manifest.stat().st_size,
        "vocabulary_file_bytes": vocab[-1].stat().st_size if vocab else 0,
    }
    ix.close()
    return out


def main_index(sizes: list[int], rounds: int, seed: int) -> None:
    texts = zipf_texts(max(sizes) + 200 * rounds, seed)
    qrng = np.random.default_rng(seed + 1)
    queries = [" ".join(f"w{k}" for k in qrng.zipf(1.5, size=4).tolist()) + " w1" for _ in range(rounds)]
    res = []
    for n in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            r = run_index(n, rounds, Path(tmp) / "ix", texts, queries)
        print(f"index {r}", file=sys.stderr, flush=True)
        res.append(r)
    ratio = round(res[-1]["median_ms"] / res[0]["median_ms"], 3)
    print("| N | terms | add 200 + commit + search (ms, median) | manifest (bytes) | vocabulary file (bytes) |")
    print("|---|---|---|---|---|")
    for r in res:
        print(f"| {r['n_docs']:,} | {r['terms']:,} | {r['median_ms']:.2f} | {r['manifest_bytes']:,} | {r['vocabulary_file_bytes']:,} |")
    print(f"ratio largest / smallest: {ratio:.2f}")
    print(json.dumps({"level": "index", "runs": res, "ratio_largest_to_smallest": ratio}))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="10000,100000")
    p.add_argument("--rounds", type=int, default=15)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--level", choices=("core", "index"), default="core")
    a = p.parse_args()
    sizes = [int(s) for s in a.sizes.split(",")]
    if a.level == "index":
        main_index(sizes, a.rounds, a.seed)
        return
    d_ptr, d_idx, d_val, q_ptr, q_idx, q_val = _core.synthetic_corpus(max(sizes) + 200 * a.rounds, a.rounds, a.seed)
    out = {}
    for where in ("memory", "disk"):
        res = []
        for n in sizes:
            with tempfile.TemporaryDirectory() as tmp:
                path = None if where == "memory" else Path(tmp) / "ix"
                r = run(n, a.rounds, path, (d_ptr, d_idx, d_val), (q_ptr, q_idx, q_val))
            print(f"{where} {r}", file=sys.stderr, flush=True)
            res.append(r)
        out[where] = {"runs": res, "ratio_largest_to_smallest": round(res[-1]["median_ms"] / res[0]["median_ms"], 3)}
    print("| store | " + " | ".join(f"{n:,} docs (ms)" for n in sizes) + " | ratio |")
    print("|---|" + "---|" * (len(sizes) + 1))
    for where, o in out.items():
        print(f"| {where} | " + " | ".join(f"{r['median_ms']:.2f}" for r in o["runs"]) + f" | {o['ratio_largest_to_smallest']:.2f} |")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
