"""Child process of the crash test: adds and commits batches in a loop until it is killed
(``crash_child.py PATH [bm25]``: vectors, or texts in a BM25 index whose every commit appends
new terms to its vocabulary file).

State after committing batch ``b`` (deterministic, see ``expected_ids``): documents
``0 .. (b+1)*B - 1`` were added; the ids of batch ``b - 2`` divisible by 5 (but never a batch's
last id) were deleted when batch ``b`` was committed. Prints ``b`` after each commit returns.
"""

from __future__ import annotations

import sys

import numpy as np

B = 7


def doc_vec(i: int, vocab: int = 60) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(10_000 + i)
    n = int(rng.integers(3, 12))
    idx = np.sort(rng.choice(vocab, size=n, replace=False)).astype(np.uint32)
    return idx, rng.uniform(0.05, 3.0, size=n).astype(np.float32)


def doc_text(i: int) -> str:
    """BM25 mode: every document brings new terms (w<i>, and t<i // 3> every third)."""
    return f"w{i} common{i % 4} t{i // 3} shared"


def deleted_by(b: int) -> list[int]:
    """Ids deleted by the commit of batch ``b``."""
    if b < 2:
        return []
    return [i for i in range((b - 2) * B, (b - 1) * B) if i % 5 == 0 and i % B != B - 1]


def expected_ids(b: int) -> set[int]:
    ids = set(range((b + 1) * B))
    for c in range(b + 1):
        ids -= set(deleted_by(c))
    return ids


def main(path: str, mode: str = "vectors") -> None:
    from pathlib import Path

    from sparsedex import SparseIndex
    from sparsedex.index import MergePolicy

    print("ready", file=sys.stderr, flush=True)  # imported: the parent's random wait starts now

    policy = MergePolicy(factor=3, floor_docs=B)
    if (Path(path) / "CURRENT").exists():
        ix = SparseIndex.open(path, merge_policy=policy)
    else:  # never committed (maybe killed while creating it): create it
        ix = SparseIndex("bm25" if mode == "bm25" else None, "float", path=path, merge_policy=policy)
    ids = ix.ids()
    b = max(ids) // B if ids else -1
    while True:
        b += 1
        new = list(range(b * B, (b + 1) * B))
        docs = [doc_text(i) for i in new] if mode == "bm25" else [doc_vec(i) for i in new]
        ix.add(docs, ids=new, payloads=[{"batch": b} for _ in new])
        ix.delete(deleted_by(b))
        ix.commit()
        print(b, flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:3])
