"""atheris harness for the on-disk readers: mutated files must open cleanly or fail cleanly.

    python tests/fuzz/fuzz_open.py TARGET [libFuzzer flags] [corpus dirs]
    python tests/fuzz/fuzz_open.py segment -max_total_time=60

Contract checked for every input: opening raises only `CorruptIndexError` or
`FileNotFoundError`, or returns an index that can be searched (every algorithm, one query and
a batch), explained, read (`get`, `ids`, `stats`) without any other exception. A panic in the
core surfaces as `SparsedexError("internal error ...")`, which is not allowed, so it crashes
the run like any other exception.

Targets (`TARGETS`; add the next reader as one more entry):
- `segment`: the bytes are one engine segment file (`seg-N.sdx`), opened with the engine's
  one-segment view; each input is opened as given (checksums catch it) and resealed, every
  CRC recomputed, so that the structural validation behind the checksums is reached.
- `vector_index_meta`: the bytes are the `sparsedex.json` of a sparsedex 0.1 `VectorIndex`
  directory, next to a valid segment file, opened with `SparseIndex.open` (read in memory).
- `store`: a committed `SparseIndex` directory (two segments, deletions, payloads) with one of
  its files replaced: the first byte picks the file (`CURRENT`, the manifest, a documents file,
  a deletions file, an engine file) and, with its high bit set, reseals the rest (fixes the
  file's own checksum and its size and checksum in the manifest, so the parsers behind the
  checksums are reached); the other bytes are the file. Opening must raise only
  `CorruptIndexError`/`FileNotFoundError` or give an index that searches (with and without
  a filter), gets, explains and lists without any other exception.

The target's seed directory is always added after the given corpus directories (libFuzzer
writes new inputs to the first one; without any, a fresh temporary one is used). Note that
atheris only sees coverage of Python code; the Rust core is fuzzed with coverage by the
cargo-fuzz targets in rust/fuzz.
"""

from __future__ import annotations

import os
import struct
import sys
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import atheris

import numpy as np

# Only the package's own Python code is instrumented (numpy, onnxruntime... would make the
# start take a minute and add nothing).
with atheris.instrument_imports(include=["sparsedex"]):
    import sparsedex
    from sparsedex import CorruptIndexError, SparseIndex
    from sparsedex._segment import SegmentView
    from sparsedex.index import MergePolicy
    from sparsedex.store import _framed

ROOT = Path(__file__).resolve().parents[2]
INDEX_SEEDS = ROOT / "rust" / "fuzz" / "corpus" / "index_open"
META_SEEDS = Path(__file__).resolve().parent / "seeds" / "vector_index_meta"
INDEX_FILE = "vectors.sdx"
META_FILE = "sparsedex.json"
VALID_META = b'{"format": "sparsedex-vector-index", "version": 1}'

_workdir = Path(tempfile.mkdtemp(prefix="sparsedex-fuzz-"))


def reseal(data: bytes) -> bytes:
    """Recompute every checksum of a container image (section CRCs, then the table CRC,
    then the header CRC) as far as the header and table can be located; the same as
    `reseal` in rust/fuzz/fuzz_targets/common.rs."""
    b = bytearray(data)
    if len(b) < 64:
        return bytes(b)
    count = struct.unpack_from("<I", b, 24)[0]
    table = struct.unpack_from("<Q", b, 32)[0]
    if 64 <= table <= len(b):
        for i in range(min(count, (len(b) - table) // 64)):
            e = table + 64 * i
            off, length = struct.unpack_from("<QQ", b, e + 32)
            if off + length <= table:
                struct.pack_into("<I", b, e + 48, zlib.crc32(b[off : off + length]))
        struct.pack_into("<I", b, 28, zlib.crc32(b[table:]))
    struct.pack_into("<I", b, 60, zlib.crc32(b[:60]))
    return bytes(b)


def _write(directory: Path, name: str, data: bytes) -> None:
    # Replace, never rewrite in place: a previous index may still map the old file.
    tmp = directory / (name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, directory / name)


def _index_dir(index_bytes: bytes, meta_bytes: bytes) -> Path:
    d = _workdir / "ix"
    d.mkdir(exist_ok=True)
    _write(d, INDEX_FILE, index_bytes)
    _write(d, META_FILE, meta_bytes)
    return d


def exercise(ix: SegmentView) -> None:
    """Use every reader of an index that opened; any exception is a bug."""
    n_docs = len(ix)
    n_terms = ix._core.n_terms
    ix.stats()
    repr(ix)
    ids = ix.ids()
    has_vectors = ix._core.has_vectors
    for row in range(min(n_docs, 16)):
        if has_vectors:
            ix.get(ids[row])
    if n_terms == 0:
        return
    terms = list(range(min(n_terms, 6)))
    weights = [0.25 + i for i in range(len(terms))]
    for algorithm in ix.algorithms:
        for k in (1, 10):
            hits, scores = ix.search(terms, weights, k=k, algorithm=algorithm)
            assert len(hits) == len(scores) <= k
    ix.search_batch([(terms, weights), (terms[:1], [1.0])], k=5, threads=1)
    for row in range(min(n_docs, 4)):
        ix.explain((terms, weights), ids[row])


def _open_segment(index_bytes: bytes) -> None:
    d = _workdir / "seg"
    d.mkdir(exist_ok=True)
    _write(d, INDEX_FILE, index_bytes)
    try:
        ix = SegmentView.open(d / INDEX_FILE)
    except (CorruptIndexError, FileNotFoundError):
        return
    exercise(ix)


def fuzz_segment(data: bytes) -> None:
    _open_segment(data)
    sealed = reseal(data)
    if sealed != data:
        _open_segment(sealed)


def fuzz_vector_index_meta(data: bytes) -> None:
    d = _index_dir(_valid_index_bytes(), data)
    try:
        ix = SparseIndex.open(d)
    except (CorruptIndexError, FileNotFoundError):
        return
    exercise_store(ix, filters=False)
    ix.close()


_valid_index: bytes | None = None


def _valid_index_bytes() -> bytes:
    global _valid_index
    if _valid_index is None:
        _valid_index = (INDEX_SEEDS / "seed-u8-int-ids.sdx").read_bytes()
    return _valid_index


# the store target ---------------------------------------------------------------------------
STORE_KINDS = ("CURRENT", "manifest", "docs", "deletes", "index")


def _store_template() -> Path:
    d = _workdir / "store-template"
    if (d / "CURRENT").exists():
        return d
    rng = np.random.default_rng(0)
    ix = SparseIndex(None, "u8", path=d, merge_policy=MergePolicy(factor=0))
    def vec() -> tuple[list[int], list[float]]:
        t = sorted(rng.choice(12, size=int(rng.integers(1, 6)), replace=False).tolist())
        return t, rng.uniform(0.1, 2.0, len(t)).round(3).tolist()
    ix.add([vec() for _ in range(20)], payloads=[{"n": i, "tag": ["a", "b"][i % 2]} for i in range(20)])
    ix.commit()
    ix.add([vec() for _ in range(10)], payloads=[None] * 10)
    ix.delete([3, 21])
    ix.commit()
    ix.close()
    return d


def _store_file(d: Path, kind: str) -> Path:
    names = sorted(p.name for p in d.iterdir())
    pick = {
        "CURRENT": lambda n: n == "CURRENT",
        "manifest": lambda n: n.startswith("manifest-"),
        "docs": lambda n: n.endswith(".docs"),
        "deletes": lambda n: ".del-" in n,
        "index": lambda n: n.endswith(".sdx"),
    }[kind]
    return d / next(n for n in names if pick(n))


def _reseal_store(d: Path, target: Path, data: bytes) -> None:
    """Write ``data`` as ``target`` with its frame fixed, and the manifest's record of it."""
    import json

    magic = {".docs": b"SDXDOCS1", "CURRENT": b"SDXCURR1"}.get(target.suffix or target.name)
    if ".del-" in target.name:
        magic = b"SDXDELS1"
    if target.name.startswith("manifest-"):
        magic = b"SDXMANI1"
    if target.suffix == ".sdx":
        data = reseal(data)
    elif magic is not None:
        data = _framed(magic, data)
    _write(d, target.name, data)
    if target.name.startswith("manifest-") or target.name == "CURRENT":
        return
    mp = _store_file(d, "manifest")
    raw = mp.read_bytes()
    m = json.loads(raw[20:])
    head = data[:65536] if target.suffix == ".sdx" else data
    for rec in m["segments"]:
        for key in ("index", "docs", "deletes"):
            r = rec.get(key)
            if isinstance(r, dict) and r.get("file") == target.name:
                r["size"], r["crc32"] = len(data), zlib.crc32(head)
    _write(d, mp.name, _framed(b"SDXMANI1", json.dumps(m).encode()))


def exercise_store(ix: SparseIndex, filters: bool = True) -> None:
    n = len(ix)
    ids = ix.ids()
    assert len(ids) == n
    ix.segments()
    ix.info()
    repr(ix)
    q = ([1, 3, 5], [1.0, 0.5, 2.0])
    for algorithm in ("auto", "exhaustive", "bmp", "maxscore"):
        hits = ix.search(q, k=5, algorithm=algorithm)
        assert len(hits) <= 5
    if filters:
        ix.search(q, k=3, filter={"n": {"$gte": 5}})
        ix.search(q, k=3, filter={"$or": [{"tag": "a"}, {"missing": {"$exists": False}}]})
    ix.search_batch([q, ([2], [1.0])], k=4, threads=1)
    for x in ids[:3]:
        ix.get(x)
        ix.explain(q, x)


def fuzz_store(data: bytes) -> None:
    if not data:
        return
    kind = STORE_KINDS[data[0] % len(STORE_KINDS)]
    d = _workdir / "store"
    if d.exists():
        for p in d.iterdir():
            p.unlink()
    else:
        d.mkdir()
    template = _store_template()
    for p in template.iterdir():
        if p.name != "LOCK":
            (d / p.name).write_bytes(p.read_bytes())
    target = _store_file(d, kind)
    if data[0] & 0x80:
        _reseal_store(d, target, data[1:])
    else:
        _write(d, target.name, data[1:])
    try:
        ix = SparseIndex.open(d)
    except (CorruptIndexError, FileNotFoundError):
        return
    exercise_store(ix)


def _store_seeds() -> Path:
    """One seed per file kind: the template's valid file (sealed as it is, and as resealable
    content without its frame)."""
    out = _workdir / "store-seeds"
    out.mkdir(exist_ok=True)
    template = _store_template()
    for i, kind in enumerate(STORE_KINDS):
        data = _store_file(template, kind).read_bytes()
        (out / f"seed-{kind}").write_bytes(bytes([i]) + data)
        inner = data if kind == "index" else data[20:]
        (out / f"seed-{kind}-resealed").write_bytes(bytes([i | 0x80]) + inner)
    return out


@dataclass(frozen=True)
class Target:
    run: Callable[[bytes], None]
    seeds: Path | Callable[[], Path]


TARGETS: dict[str, Target] = {
    "segment": Target(fuzz_segment, INDEX_SEEDS),
    "vector_index_meta": Target(fuzz_vector_index_meta, META_SEEDS),
    "store": Target(fuzz_store, _store_seeds),
}


def main(argv: list[str]) -> None:
    if len(argv) < 2 or argv[1] not in TARGETS:
        sys.exit(f"usage: {argv[0]} TARGET [libFuzzer flags] [corpus dirs]; targets: {', '.join(TARGETS)}")
    target = TARGETS[argv[1]]
    args = [argv[0], *argv[2:]]
    dirs = [a for a in args[1:] if not a.startswith("-")]
    if not dirs:
        # libFuzzer writes new inputs to the first directory: a scratch one, not the seeds.
        (_workdir / "corpus").mkdir(exist_ok=True)
        args.append(str(_workdir / "corpus"))
    seeds = target.seeds if isinstance(target.seeds, Path) else target.seeds()
    if str(seeds) not in dirs:
        args.append(str(seeds))
    np.seterr(all="ignore")
    print(f"sparsedex {sparsedex.__version__}: fuzzing target {argv[1]}", flush=True)
    atheris.Setup(args, target.run)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
