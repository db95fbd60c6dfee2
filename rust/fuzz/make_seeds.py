"""Write the seed corpus of the fuzz targets: a few tiny, valid index files.

    python rust/fuzz/make_seeds.py

Each seed is one engine segment file (`seg-N.sdx` of an index directory, the format
`Index::open` reads), written by the engine's one-segment view. They cover both impact kinds, int / str / no external ids, stored vectors or not, a
declared vocabulary, an empty row, a term long enough to span several 128-posting blocks, term
ids up to 2^32 - 1, and a BM25 segment (format version 2).
Seeds are deterministic; rerun after a format change and commit the result.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np

from sparsedex._segment import SegmentView

HERE = Path(__file__).resolve().parent
TARGETS = ("index_open", "container_parse")


def seeds() -> dict[str, SegmentView]:
    rng = np.random.default_rng(7)
    small = [([1, 7], [0.5, 1.2]), ([7, 9], [2.0, 0.1]), ([], []), ([0, 3, 9], [0.3, 0.3, 4.0])]
    # 300 documents, term 2 in every one of them (3 blocks), a few random others.
    wide = []
    for _ in range(300):
        extra = sorted(set(rng.integers(3, 24, size=3).tolist()))
        terms = [2, *extra]
        wide.append((terms, rng.uniform(0.05, 3.0, size=len(terms)).round(2).tolist()))
    return {
        "u8-int-ids": SegmentView.build(small, ids=[10, 20, 30, 40]),
        "u8-str-ids-vocab": SegmentView.build(small, ids=["a", "b", "c", "d"], vocab_size=12),
        "float-no-vectors": SegmentView.build(small, quantization="float", store_vectors=False, reorder=False),
        "u8-multiblock": SegmentView.build(wide, store_vectors=False),
        "float-multiblock": SegmentView.build(wide, quantization="float", store_vectors=False, reorder=False),
        "single-doc": SegmentView.build([([5], [1.0])]),
        # Term ids anywhere in 0..2^32-1 (no lookup table: ids far apart).
        "hashed-ids": SegmentView.build([([7, 2**32 - 1], [1.0, 2.0]), ([2**31, 12345], [0.5, 1.5])], ids=["x", "y"]),
    }


def bm25_seed() -> bytes:
    """A BM25 segment (term frequencies, document lengths, integer ids)."""
    from sparsedex import _core

    indptr = np.array([0, 2, 3, 6], dtype=np.uint64)
    indices = np.array([1, 4, 4, 1, 2, 9], dtype=np.uint32)
    values = np.array([2, 1, 3, 1, 1, 5], dtype=np.float32)
    ix = _core.Index.build(indptr, indices, values, bm25=(1.2, 0.75), ids_int=np.array([5, 6, 7], dtype=np.int64))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bm25.sdx"
        ix.save(path)
        return path.read_bytes()


def main() -> None:
    for target in TARGETS:
        out = HERE / "corpus" / target
        out.mkdir(parents=True, exist_ok=True)
        for old in out.glob("seed-*"):
            old.unlink()
    with tempfile.TemporaryDirectory() as tmp:
        for name, ix in seeds().items():
            f = Path(tmp) / f"{name}.sdx"
            ix.save(f)
            for target in TARGETS:
                shutil.copyfile(f, HERE / "corpus" / target / f"seed-{name}.sdx")
            print(f"seed-{name}.sdx: {f.stat().st_size} bytes")
    data = bm25_seed()
    for target in TARGETS:
        (HERE / "corpus" / target / "seed-bm25.sdx").write_bytes(data)
    print(f"seed-bm25.sdx: {len(data)} bytes")


if __name__ == "__main__":
    main()
