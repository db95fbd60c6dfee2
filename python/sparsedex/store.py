"""The storage under :class:`~sparsedex.SparseIndex`: immutable segments, deletes, payloads,
atomic commits and snapshots.

A store is a set of **segments**. Each segment is an immutable engine index (the Rust
container, memory-mapped, every section checksummed) plus a documents file (ids, payloads,
texts), both in the engine's internal document order. Adding documents never touches an
existing segment: a commit writes the added documents as a new segment. Deleting marks
documents in a per-segment deletion bitmap (a new small file per commit). A merge policy
keeps the number of segments bounded and drops deleted documents while it merges.

Searching covers every segment with one global top-k: each segment returns its exact top-k
of the documents that are live and pass the filter (deletions and filters are allowed-document
sets inside the traversal, so nothing is post-filtered away), and the lists are merged by
score, ties going to the earlier segment, then to the earlier internal document.

On disk (a directory)::

    CURRENT                  names the committed manifest (replaced atomically)
    manifest-000007.json     the committed state: segments, their files, settings
    seg-000003.sdx           engine index of segment 3
    seg-000003.docs          ids, payloads and texts of segment 3
    seg-000003.del-000007    segment 3's deleted documents as of commit 7
    LOCK                     held (flock) by the one writer

A commit writes the new segment and deletion files and the new manifest, fsyncs each, then
replaces ``CURRENT`` (write, fsync, rename, fsync the directory): the rename is the commit
point, so a crash at any moment leaves either the old or the new state, both complete. Every
file carries a format version and a checksum, and the manifest records each file's size and
checksum: opening verifies all of them, and a file from another store (each store has a
random id, written into its files) is an error.

Readers take no lock: a :class:`Store` opened on a directory sees the commit that was current
when it was opened (a snapshot) until :meth:`Store.refresh`. One writer at a time holds
``LOCK``; a second writer gets :class:`IndexLockedError`.
"""

from __future__ import annotations

import errno
import json
import math
import os
import struct
import threading
import uuid as _uuid
import zlib
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import _core
from ._core import CorruptIndexError, SparsedexError
from .filters import Filter, PayloadColumns, compile_filter

__all__ = ["Store", "Snapshot", "MergePolicy", "IndexLockedError", "StoreHit"]

FORMAT = "sparsedex-store"
VERSION = 1
_CURRENT = "CURRENT"
_LOCK = "LOCK"
_DOCS_MAGIC = b"SDXDOCS1"
_DEL_MAGIC = b"SDXDELS1"
_HEAD = 65536  # bytes of an engine file whose CRC identifies it (header + section table)


class IndexLockedError(SparsedexError):
    """Another writer holds the index's lock."""


# files ----------------------------------------------------------------------------------
def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def _write_durably(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file: fsync, rename (no fsync of the dir)."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _framed(magic: bytes, body: bytes) -> bytes:
    return magic + struct.pack("<IQ", zlib.crc32(body), len(body)) + body


def _unframe(path: Path, magic: bytes, data: bytes) -> bytes:
    head = len(magic) + 12
    if len(data) < head or data[: len(magic)] != magic:
        raise CorruptIndexError(f"{path}: not a sparsedex {magic[3:7].decode().lower()} file (bad magic)")
    crc, n = struct.unpack("<IQ", data[len(magic) : head])
    body = data[head:]
    if len(body) != n:
        raise CorruptIndexError(f"{path}: truncated ({len(body)} of {n} bytes)")
    if zlib.crc32(body) != crc:
        raise CorruptIndexError(f"{path}: checksum mismatch (the file is corrupted)")
    return body


def _head_crc(path: Path) -> int:
    """CRC32 of the file (of its head for engine files, whose head holds the CRC32 of every
    section, which the engine verifies at open)."""
    with open(path, "rb") as f:
        return zlib.crc32(f.read(_HEAD) if path.suffix == ".sdx" else f.read())


def _file_record(path: Path) -> dict[str, Any]:
    """The manifest's record of a file: name, size and :func:`_head_crc`."""
    return {"file": path.name, "size": path.stat().st_size, "crc32": _head_crc(path)}


def _check_record(root: Path, rec: Any, what: str) -> Path:
    if not isinstance(rec, dict) or not isinstance(rec.get("file"), str) or "/" in rec["file"]:
        raise CorruptIndexError(f"{root}: manifest entry for {what} is malformed")
    p = root / rec["file"]
    try:
        size = p.stat().st_size
    except FileNotFoundError:
        raise CorruptIndexError(f"{p}: missing ({what} of the committed index)") from None
    if size != rec.get("size"):
        raise CorruptIndexError(
            f"{p}: size {size} bytes, the manifest records {rec.get('size')} (truncated, or from another index)"
        )
    return p


def _verify_head(p: Path, rec: dict[str, Any]) -> None:
    if _head_crc(p) != rec.get("crc32"):
        raise CorruptIndexError(f"{p}: checksum differs from the manifest's (corrupted, or from another index)")


def _read_recorded(root: Path, rec: Any, what: str, magic: bytes) -> tuple[Path, bytes]:
    """The body of a framed file the manifest records, its size and CRC checked."""
    p = _check_record(root, rec, what)
    data = p.read_bytes()
    if zlib.crc32(data) != rec.get("crc32"):
        raise CorruptIndexError(f"{p}: checksum differs from the manifest's (corrupted, or from another index)")
    return p, _unframe(p, magic, data)


# segments -------------------------------------------------------------------------------
class Segment:
    """One immutable segment: engine index and per-document data, all in internal order."""

    def __init__(
        self,
        name: str,
        index: _core.Index,
        ids: list[Any],
        payloads: list[dict[str, Any] | None],
        texts: list[str | None] | None,
    ) -> None:
        self.name = name
        self.index = index
        self.ids = ids
        self.payloads = payloads
        self.texts = texts
        self.n = len(ids)
        self.files: dict[str, Any] | None = None  # manifest records, once written
        self._columns: PayloadColumns | None = None
        self._lock = threading.Lock()

    @property
    def columns(self) -> PayloadColumns:
        if self._columns is None:
            with self._lock:
                if self._columns is None:
                    self._columns = PayloadColumns(self.payloads, ids=self.ids)
        return self._columns

    @classmethod
    def build(
        cls,
        name: str,
        csr: tuple[np.ndarray, np.ndarray, np.ndarray],
        ids: list[Any],
        payloads: list[dict[str, Any] | None],
        texts: list[str | None] | None,
        *,
        quantization: str,
        scale: float | None,
        vocab_size: int | None,
    ) -> "Segment":
        indptr, indices, values = csr
        n = len(indptr) - 1
        index = _core.Index.build(
            np.ascontiguousarray(indptr, dtype=np.uint64),
            np.ascontiguousarray(indices, dtype=np.uint32),
            np.ascontiguousarray(values, dtype=np.float32),
            n_terms=vocab_size,
            quantization=quantization,
            scale=scale,
            ids_int=np.arange(n, dtype=np.int64),
            store_vectors=True,
            reorder=True,
        )
        order = index.ids()
        assert isinstance(order, np.ndarray)
        perm = order.tolist()
        return cls(
            name,
            index,
            [ids[i] for i in perm],
            [payloads[i] for i in perm],
            None if texts is None else [texts[i] for i in perm],
        )

    def docs_bytes(self, store_id: str) -> bytes:
        body = json.dumps(
            {
                "format": FORMAT + "-docs",
                "version": VERSION,
                "store": store_id,
                "segment": self.name,
                "documents": self.n,
                "ids": self.ids,
                "payloads": self.payloads,
                "texts": self.texts,
            },
            ensure_ascii=False,
            allow_nan=False,
            separators=(",", ":"),
        ).encode("utf-8")
        return _framed(_DOCS_MAGIC, body)

    def write(self, root: Path, store_id: str) -> dict[str, Any]:
        """Write the segment's two files (fsynced) once; returns their manifest records."""
        if self.files is None:
            sdx = root / f"{self.name}.sdx"
            self.index.save(str(sdx))  # written beside, fsynced and renamed by the engine
            docs = root / f"{self.name}.docs"
            _write_durably(docs, self.docs_bytes(store_id))
            self.files = {"index": _file_record(sdx), "docs": _file_record(docs)}
        return self.files

    @classmethod
    def load(cls, root: Path, name: str, rec: dict[str, Any], store_id: str, n: int) -> "Segment":
        sdx = _check_record(root, rec.get("index"), f"segment {name}'s engine index")
        _verify_head(sdx, rec["index"])
        docs, body = _read_recorded(root, rec.get("docs"), f"segment {name}'s documents", _DOCS_MAGIC)
        try:
            d = json.loads(body.decode("utf-8"))
        except (ValueError, UnicodeDecodeError) as e:
            raise CorruptIndexError(f"{docs}: unreadable ({e})") from None
        if not isinstance(d, dict) or d.get("format") != FORMAT + "-docs":
            raise CorruptIndexError(f"{docs}: not a sparsedex documents file")
        if d.get("version") != VERSION:
            raise CorruptIndexError(f"{docs}: format version {d.get('version')} is not supported (this build reads {VERSION})")
        if d.get("store") != store_id or d.get("segment") != name:
            raise CorruptIndexError(f"{docs}: belongs to another index (store {d.get('store')}, segment {d.get('segment')})")
        ids, payloads, texts = d.get("ids"), d.get("payloads"), d.get("texts")
        if not (isinstance(ids, list) and isinstance(payloads, list) and len(ids) == len(payloads) == n):
            raise CorruptIndexError(f"{docs}: ids and payloads do not match the document count {n}")
        if texts is not None and (not isinstance(texts, list) or len(texts) != n):
            raise CorruptIndexError(f"{docs}: texts do not match the document count {n}")
        _check_docs(docs, ids, payloads, texts)
        index = _core.Index.open(str(sdx))
        if len(index) != n:
            raise CorruptIndexError(f"{sdx}: has {len(index)} documents, the manifest records {n}")
        seg = cls(name, index, ids, payloads, texts)
        seg.files = {"index": rec["index"], "docs": rec["docs"]}
        return seg


def _ours(name: str) -> bool:
    """A file name a store writes (left behind by a store that never committed)."""
    return name in (_CURRENT, _LOCK) or _collectable(name)


def _collectable(name: str) -> bool:
    """Segment and manifest files, and temporary files (``*.tmp``, and the engine's
    ``.seg-N.sdx.tmp<pid>``) a crash may leave behind."""
    return name.startswith(("seg-", "manifest-", ".seg-")) or name.endswith(".tmp")


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _check_manifest(path: Path, m: dict[str, Any]) -> None:
    """Every field of a manifest has the type and range the writer gives it."""
    def bad(what: str) -> CorruptIndexError:
        return CorruptIndexError(f"{path}: {what}")

    if not isinstance(m.get("uuid"), str):
        raise bad("no store id")
    if m.get("quantization") not in ("u8", "float"):
        raise bad(f"unknown quantization {m.get('quantization')!r}")
    v: Any = m.get("vocab_size")
    if v is not None and not (_is_int(v) and 0 < v <= 2**32):
        raise bad(f"bad vocab_size {v!r}")
    sc: Any = m.get("scale")
    if sc is not None and not (isinstance(sc, (int, float)) and not isinstance(sc, bool) and math.isfinite(sc) and sc > 0):
        raise bad(f"bad scale {sc!r}")
    for key in ("generation", "next_segment", "next_int_id"):
        if not _is_int(m.get(key)):
            raise bad(f"bad {key} {m.get(key)!r}")
    if not isinstance(m.get("store_texts"), bool) or not isinstance(m.get("settings"), dict):
        raise bad("bad settings")
    segs = m.get("segments")
    if not isinstance(segs, list):
        raise bad("no segment list")
    names = set()
    for rec in segs:
        if not isinstance(rec, dict) or not isinstance(rec.get("name"), str) or not rec["name"].startswith("seg-"):
            raise bad("malformed segment entry")
        if rec["name"] in names or "/" in rec["name"]:
            raise bad(f"segment {rec['name']!r} listed twice or misnamed")
        names.add(rec["name"])
        n: Any = rec.get("documents")
        if not (_is_int(n) and 0 <= n < 2**32):
            raise bad(f"segment {rec['name']}: bad document count {n!r}")
        if rec.get("deletes") is not None and not isinstance(rec["deletes"], dict):
            raise bad(f"segment {rec['name']}: malformed deletions entry")


def _check_docs(path: Path, ids: list[Any], payloads: list[Any], texts: list[Any] | None) -> None:
    """The documents file's lists hold what the index wrote: unique ids, all ints or all
    strings; dict (or null) payloads; string (or null) texts."""
    if ids:
        kind = str if isinstance(ids[0], str) else int
        for i, x in enumerate(ids):
            if isinstance(x, bool) or not isinstance(x, kind):
                raise CorruptIndexError(f"{path}: id of document {i} is {json.dumps(x)[:40]}, not a {kind.__name__}")
        if len(set(ids)) != len(ids):
            raise CorruptIndexError(f"{path}: duplicate document ids")
    for i, p in enumerate(payloads):
        if p is not None and not isinstance(p, dict):
            raise CorruptIndexError(f"{path}: payload of document {i} is not an object")
    if texts is not None:
        for i, t in enumerate(texts):
            if t is not None and not isinstance(t, str):
                raise CorruptIndexError(f"{path}: text of document {i} is not a string")


def _pack(mask: np.ndarray) -> np.ndarray:
    """A bool mask as the engine's allowed-document words (bit d%64 of word d//64)."""
    n = mask.shape[0]
    words = (n + 63) // 64
    b = np.packbits(mask, bitorder="little")
    out = np.zeros(words * 8, dtype=np.uint8)
    out[: b.shape[0]] = b
    return out.view("<u8").astype(np.uint64, copy=False)


@dataclass
class SegmentState:
    """A segment as of one commit: the segment and its deleted documents."""

    segment: Segment
    deleted: np.ndarray | None  # bool, internal order; None: nothing deleted
    deletes_record: dict[str, Any] | None = None
    _allowed: OrderedDict[str, Any] = field(default_factory=OrderedDict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    live: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        self.live = self.segment.n - (0 if self.deleted is None else int(self.deleted.sum()))

    def live_mask(self) -> np.ndarray:
        if self.deleted is None:
            return np.ones(self.segment.n, dtype=bool)
        return ~self.deleted

    def allowed(self, flt: Filter | None) -> "_core.DocSet | None | bool":
        """The engine's allowed-document set for ``flt`` over the live documents (None: every
        document; False: none). Cached per filter (the 32 most recent)."""
        key = "" if flt is None else flt.to_json()
        with self._lock:
            if key in self._allowed:
                self._allowed.move_to_end(key)
                return self._allowed[key]
        mask = None if self.deleted is None else ~self.deleted
        if flt is not None:
            m = flt.mask(self.segment.columns)
            mask = m if mask is None else (mask & m)
        out: _core.DocSet | None | bool
        if mask is None or mask.all():
            out = None
        elif not mask.any():
            out = False
        else:
            out = _core.DocSet(_pack(mask), self.segment.n)
        with self._lock:
            self._allowed[key] = out
            while len(self._allowed) > 32:
                self._allowed.popitem(last=False)
        return out


def _live_ids(st: SegmentState) -> list[Any]:
    ids = st.segment.ids
    if st.deleted is None:
        return ids
    return [ids[d] for d in np.flatnonzero(~st.deleted).tolist()]


def _add_live(w: dict[Any, tuple[str, int]], st: SegmentState) -> None:
    name, ids = st.segment.name, st.segment.ids
    if st.deleted is None:
        w.update(zip(ids, ((name, d) for d in range(len(ids)))))
    else:
        for d in np.flatnonzero(~st.deleted).tolist():
            w[ids[d]] = (name, d)


@dataclass(frozen=True)
class StoreHit:
    """A search result inside the store: segment position, internal doc and score."""

    segment: int
    doc: int
    score: float


class Snapshot:
    """The store as of one commit: immutable, safe to search from many threads."""

    def __init__(self, generation: int, states: list[SegmentState]) -> None:
        self.generation = generation
        self.states = states
        self._where: dict[Any, tuple[str, int]] | None = None
        self._pos = {st.segment.name: i for i, st in enumerate(states)}
        self._lock = threading.Lock()

    @property
    def live(self) -> int:
        return sum(s.live for s in self.states)

    def where(self) -> dict[Any, tuple[str, int]]:
        """Live id -> (segment name, internal doc)."""
        if self._where is None:
            with self._lock:
                if self._where is None:
                    w: dict[Any, tuple[str, int]] = {}
                    for st in self.states:
                        _add_live(w, st)
                    self._where = w
        return self._where

    def locate(self, id: Any) -> tuple[int, int]:
        """(segment position, internal doc) of a live id; KeyError if there is none."""
        name, d = self.where()[id]
        return self._pos[name], d

    def derive_where(self, old: "Snapshot") -> None:
        """Build this snapshot's id map from ``old``'s (if built): copy, then apply the
        segments that appeared, vanished or gained deletions."""
        if old._where is None:
            return
        w = dict(old._where)
        before = {st.segment.name: st for st in old.states}
        now = {st.segment.name: st for st in self.states}
        for name, st in before.items():
            if name not in now:
                for x in _live_ids(st):
                    if w.get(x, (None,))[0] == name:
                        del w[x]
        for name, st in now.items():
            prev = before.get(name)
            if prev is None:
                _add_live(w, st)
            elif prev.deleted is not st.deleted and st.deleted is not None:
                newly = st.deleted if prev.deleted is None else (st.deleted & ~prev.deleted)
                ids = st.segment.ids
                for d in np.flatnonzero(newly).tolist():
                    if w.get(ids[d]) == (name, d):
                        del w[ids[d]]
        self._where = w

    def ids(self) -> list[Any]:
        return [x for st in self.states for x in _live_ids(st)]

    def _plan(self, flt: Filter | None, engines: Sequence[_core.Index] | None):  # type: ignore[no-untyped-def]
        """Positions, engines and allowed sets of the segments that can hold hits."""
        pos, engs, sets = [], [], []
        for si, st in enumerate(self.states):
            if st.live == 0:
                continue
            allowed = st.allowed(flt)
            if allowed is False:
                continue
            pos.append(si)
            engs.append(st.segment.index if engines is None else engines[si])
            sets.append(allowed)
        return pos, engs, sets

    def search(
        self,
        indices: np.ndarray,
        values: np.ndarray,
        k: int,
        algorithm: str = "auto",
        flt: Filter | None = None,
        engines: Sequence[_core.Index] | None = None,
        target_recall: float | None = None,
    ) -> list[StoreHit]:
        """Global top-k over every segment's live documents passing ``flt`` (exact, or at
        ``target_recall`` with ``algorithm="approximate"``)."""
        pos, engs, sets = self._plan(flt, engines)
        if not engs:
            return []
        segs, docs, scores = _core.search_segments(
            engs, sets, indices, values, k=k, algorithm=algorithm, target_recall=target_recall
        )
        return [StoreHit(pos[a], d, s) for a, d, s in zip(segs.tolist(), docs.tolist(), scores.tolist())]

    def search_batch(
        self,
        csr: tuple[np.ndarray, np.ndarray, np.ndarray],
        k: int,
        algorithm: str = "auto",
        threads: int | None = None,
        flt: Filter | None = None,
        engines: Sequence[_core.Index] | None = None,
        target_recall: float | None = None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Global top-k of every query: (segment positions, internal docs, scores), each
        ``[nq, k']`` with -1 / NaN padding."""
        indptr, indices, values = csr
        nq = len(indptr) - 1
        pos, engs, sets = self._plan(flt, engines)
        if not engs:
            return (np.full((nq, 0), -1, np.int64), np.full((nq, 0), -1, np.int64), np.zeros((nq, 0), np.float32))
        S, D, V = _core.search_segments_batch(
            engs, sets, np.ascontiguousarray(indptr, dtype=np.uint64), np.ascontiguousarray(indices, dtype=np.uint32),
            np.ascontiguousarray(values, dtype=np.float32), k=k, algorithm=algorithm, threads=threads,
            target_recall=target_recall,
        )
        posa = np.asarray(pos, dtype=np.int64)
        S = np.where(S >= 0, posa[np.clip(S, 0, None)], -1)
        return S, D, V


# merge policy ---------------------------------------------------------------------------
@dataclass(frozen=True)
class MergePolicy:
    """Tiered merging: segments are grouped in levels by live size (level ``L`` holds
    ``floor_docs * factor**L`` up to ``floor_docs * factor**(L+1)`` documents); when a level
    holds ``factor`` segments they are merged into one (of the next level). A segment with
    more than ``max_deleted`` of its documents deleted is rewritten without them. So an index
    of N documents keeps at most about ``(factor - 1) * log_factor(N / floor_docs)`` segments.

    ``MergePolicy(factor=0)`` never merges (segments accumulate until :meth:`Store.merge`).
    With ``background=True`` (the default) merges run in a thread after a commit and are
    committed on their own when done, so a commit never waits for a merge; with ``False`` a
    commit performs the merges it triggers before it returns.
    """

    factor: int = 10
    floor_docs: int = 1000
    max_deleted: float = 0.5
    background: bool = True

    def plan(self, states: Sequence[SegmentState]) -> list[list[int]]:
        """Groups of segment positions to merge (each group into one segment)."""
        if self.factor < 2:
            return []
        groups: list[list[int]] = []
        used: set[int] = set()
        levels: dict[int, list[int]] = {}
        for i, st in enumerate(states):
            live = st.live
            if st.segment.n and st.segment.n - live > self.max_deleted * st.segment.n:
                groups.append([i])
                used.add(i)
                continue
            lvl = int(math.log(max(live, self.floor_docs) / self.floor_docs, self.factor) + 1e-9)
            levels.setdefault(lvl, []).append(i)
        for lvl in sorted(levels):
            members = [i for i in levels[lvl] if i not in used]
            while len(members) >= self.factor:
                g, members = members[: self.factor], members[self.factor :]
                groups.append(g)
        return groups


# the store ------------------------------------------------------------------------------
class Store:
    """Segments on disk (``path``) or in memory (``path=None``), with one writer."""

    _meta: dict[str, Any]  # the manifest's fields other than segments and generation

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        quantization: str = "u8",
        vocab_size: int | None = None,
        settings: dict[str, Any] | None = None,
        merge_policy: MergePolicy | None = None,
        store_texts: bool = True,
        max_weight: float | None = None,
    ) -> None:
        """A new, empty store (at ``path``, which must not hold an index already)."""
        if quantization not in ("u8", "float"):
            raise ValueError(f"quantization must be 'u8' or 'float', got {quantization!r}")
        if max_weight is not None:
            if quantization != "u8":
                raise ValueError("max_weight only applies to quantization='u8'")
            if not (isinstance(max_weight, (int, float)) and math.isfinite(max_weight) and max_weight > 0):
                raise ValueError(f"max_weight must be a positive number, got {max_weight!r}")
        self._init_runtime(None if path is None else Path(path), merge_policy)
        self._meta = {
            "uuid": _uuid.uuid4().hex,
            "quantization": quantization,
            "vocab_size": vocab_size,
            "scale": None if max_weight is None else 255.0 / float(max_weight),
            "store_texts": bool(store_texts),
            "next_segment": 1,
            "next_int_id": 0,
            "settings": dict(settings or {}),
        }
        if self.path is not None:
            if (self.path / _CURRENT).exists():
                raise FileExistsError(f"{self.path} already holds an index: open it with SparseIndex.open()")
            if self.path.exists() and not self.path.is_dir():
                raise FileExistsError(f"{self.path} exists and is not a directory")
            if self.path.is_dir():
                foreign = [f for f in os.listdir(self.path) if not _ours(f)]
                if foreign:
                    raise FileExistsError(
                        f"{self.path} is not empty and not a sparsedex index ({foreign[0]!r} is there): "
                        "choose an empty or new directory"
                    )
            self.path.mkdir(parents=True, exist_ok=True)
            self._acquire()
            self._write_commit([], generation=1)

    # opening ------------------------------------------------------------------------------
    @classmethod
    def open(cls, path: str | os.PathLike[str], *, merge_policy: MergePolicy | None = None) -> "Store":
        """Open the committed state of the store at ``path`` (no lock is taken until the
        first write)."""
        p = Path(path)
        if not p.is_dir():
            raise FileNotFoundError(f"{p}: no index directory there")
        self = cls.__new__(cls)
        self._init_runtime(p, merge_policy)
        self._load_current(None)
        return self

    def _init_runtime(self, path: Path | None, merge_policy: MergePolicy | None) -> None:
        """The state every store starts from: no lock, no merge, nothing staged, empty."""
        self.path = path
        self.merge_policy = merge_policy or MergePolicy()
        self._wlock = threading.RLock()
        self._lock_fd: int | None = None
        self._merger: threading.Thread | None = None
        self._merge_error: BaseException | None = None
        self._inflight: set[str] = set()  # segments a background merge is writing
        self._meta = {}
        self._snapshot = Snapshot(0, [])
        self._reset_pending()

    def _read_current(self, raw: bytes | None) -> tuple[str, dict[str, Any]]:
        """The manifest named by ``raw``, the bytes of CURRENT (None: missing)."""
        assert self.path is not None
        cur = self.path / _CURRENT
        if raw is None:
            raise CorruptIndexError(f"{self.path}: missing {_CURRENT} (not a sparsedex index directory)")
        body = _unframe(cur, b"SDXCURR1", raw)
        try:
            c = json.loads(body.decode("utf-8"))
            name = c["manifest"]
        except (ValueError, UnicodeDecodeError, KeyError, TypeError) as e:
            raise CorruptIndexError(f"{cur}: unreadable ({e})") from None
        if not isinstance(name, str) or "/" in name:
            raise CorruptIndexError(f"{cur}: names no manifest")
        mp = self.path / name
        try:
            m = json.loads(_unframe(mp, b"SDXMANI1", mp.read_bytes()).decode("utf-8"))
        except FileNotFoundError:
            raise CorruptIndexError(f"{mp}: missing (named by {_CURRENT})") from None
        except (ValueError, UnicodeDecodeError) as e:
            raise CorruptIndexError(f"{mp}: unreadable ({e})") from None
        if not isinstance(m, dict) or m.get("format") != FORMAT:
            raise CorruptIndexError(f"{mp}: not a {FORMAT} manifest")
        if m.get("version") != VERSION:
            raise CorruptIndexError(f"{mp}: format version {m.get('version')} is not supported (this build reads {VERSION})")
        if c.get("store") != m.get("uuid"):
            raise CorruptIndexError(f"{mp}: belongs to another index than {_CURRENT}")
        _check_manifest(mp, m)
        return name, m

    def _load_current(self, old: Snapshot | None) -> bool:
        """Load the committed state (reusing segments of ``old``); False if unchanged."""
        assert self.path is not None
        def current() -> bytes | None:
            try:
                return (self.path / _CURRENT).read_bytes()  # type: ignore[operator]
            except FileNotFoundError:
                return None

        raw = current()
        for attempt in range(50):
            try:
                name, m = self._read_current(raw)
                if old is not None and m.get("generation") == old.generation:
                    return False
                try:
                    snap = self._snapshot_from(m, old)
                except FileNotFoundError as e:
                    raise CorruptIndexError(f"{e.filename}: missing (named by the committed manifest)") from None
                break
            except CorruptIndexError:
                # A writer may have committed and collected files while we read: retry if
                # CURRENT moved on; otherwise the corruption is real.
                before, raw = raw, current()
                if raw == before or attempt == 49:
                    raise
        self._meta = {k: v for k, v in m.items() if k not in ("segments", "generation", "format", "version")}
        self._snapshot = snap
        return True

    def _snapshot_from(self, m: dict[str, Any], old: Snapshot | None) -> Snapshot:
        """The snapshot of a manifest (checked by :func:`_check_manifest`), reusing the
        segments and deletions ``old`` already loaded."""
        assert self.path is not None
        gen, store_id = m["generation"], m["uuid"]
        known = {} if old is None else {st.segment.name: st for st in old.states}
        states = []
        for rec in m["segments"]:
            name, n = rec["name"], rec["documents"]
            prev = known.get(name)
            seg = prev.segment if prev is not None else Segment.load(self.path, name, rec, store_id, n)
            drec = rec.get("deletes")
            if prev is not None and prev.deletes_record == drec:
                deleted = prev.deleted
            elif drec is None:
                deleted = None
            else:
                deleted = self._load_deletes(drec, store_id, name, n)
            states.append(SegmentState(seg, deleted, drec))
        return Snapshot(gen, states)

    def _load_deletes(self, rec: dict[str, Any], store_id: str, name: str, n: int) -> np.ndarray:
        assert self.path is not None
        p, body = _read_recorded(self.path, rec, f"segment {name}'s deletions", _DEL_MAGIC)
        tag = f"{store_id}/{name}".encode()
        if not body.startswith(tag + b"\n"):
            raise CorruptIndexError(f"{p}: belongs to another index or segment")
        bits = np.frombuffer(body[len(tag) + 1 :], dtype=np.uint8)
        if bits.shape[0] != (n + 7) // 8:
            raise CorruptIndexError(f"{p}: holds {bits.shape[0] * 8} bits for {n} documents")
        return np.unpackbits(bits, count=n, bitorder="little").astype(bool)

    # reading ------------------------------------------------------------------------------
    @property
    def snapshot(self) -> Snapshot:
        return self._snapshot

    @property
    def quantization(self) -> str:
        return str(self._meta.get("quantization", "u8"))

    @property
    def vocab_size(self) -> int | None:
        v = self._meta.get("vocab_size")
        return None if v is None else int(v)

    @property
    def store_texts(self) -> bool:
        return bool(self._meta.get("store_texts", True))

    @property
    def settings(self) -> dict[str, Any]:
        return self._meta.setdefault("settings", {})

    def refresh(self) -> bool:
        """Move to the newest commit; True if there was a newer one."""
        if self.path is None:
            return False
        with self._wlock:
            if self._pending_any():
                raise SparsedexError("refresh() with uncommitted changes: commit() or rollback() first")
            return self._load_current(self._snapshot)

    # writing ------------------------------------------------------------------------------
    def _reset_pending(self) -> None:
        self._p_vectors: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self._p_ids: list[Any] = []
        self._p_row: dict[Any, int] = {}
        self._p_payloads: list[dict[str, Any] | None] = []
        self._p_texts: list[str | None] = []
        self._p_dropped: set[int] = set()  # pending rows deleted again before the commit
        self._p_deletes: dict[str, set[int]] = {}  # segment name -> internal docs
        self._p_next_int: int | None = None

    def _pending_any(self) -> bool:
        return bool(self._p_ids or self._p_deletes)

    def _acquire(self) -> None:
        if self.path is None or self._lock_fd is not None:
            return
        import fcntl

        fd = os.open(self.path / _LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            try:
                holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
            except OSError:
                holder = "unknown"
            os.close(fd)
            if e.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise IndexLockedError(
                    f"{self.path} is being written by another writer ({holder}); one writer at a "
                    "time: close() the other index, or open this one only to read"
                ) from None
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()}".encode(), 0)
        self._lock_fd = fd

    def _begin_write(self) -> None:
        """Become the writer: take the lock, then catch up with commits made meanwhile."""
        if self.path is not None and self._lock_fd is None:
            self._acquire()
            self._load_current(self._snapshot)
            self._collect_garbage()

    def close(self, wait_for_merges: bool = True) -> None:
        """Drop uncommitted changes and release the writer lock (if held), after waiting for
        background merges (unless ``wait_for_merges=False``: a running merge is then
        abandoned; the next writer cleans up its files)."""
        try:
            if wait_for_merges:
                self.wait_for_merges()
        finally:
            with self._wlock:
                self._reset_pending()
                if self._lock_fd is not None:
                    os.close(self._lock_fd)
                    self._lock_fd = None

    def __del__(self) -> None:  # pragma: no cover - best effort
        fd = getattr(self, "_lock_fd", None)
        if fd is not None:
            try:
                os.close(fd)
            except OSError:
                pass

    def locate(self, id: Any) -> tuple[str, int, int] | None:
        """("pending", row, -1) or ("committed", segment position, internal doc), or None,
        for a live id as the writer sees it (committed minus pending deletes, plus pending adds)."""
        row = self._p_row.get(id)
        if row is not None:
            return ("pending", row, -1)
        snap = self._snapshot
        try:
            si, d = snap.locate(id)
        except KeyError:
            return None
        if d in self._p_deletes.get(snap.states[si].segment.name, ()):
            return None
        return ("committed", si, d)

    def next_int_id(self) -> int:
        if self._p_next_int is None:
            self._p_next_int = int(self._meta.get("next_int_id", 0))
        return self._p_next_int

    def add(
        self,
        csr: tuple[np.ndarray, np.ndarray, np.ndarray],
        ids: Sequence[Any],
        payloads: Sequence[dict[str, Any] | None],
        texts: Sequence[str | None] | None,
        *,
        replace: bool = False,
    ) -> None:
        """Stage documents (validated vectors; ids unique among themselves and, without
        ``replace``, not in the index: the caller checks that before encoding). With
        ``replace`` an existing document with the same id is deleted first (upsert)."""
        with self._wlock:
            self._begin_write()
            if replace:
                for x in ids:
                    loc = self.locate(x)
                    if loc is not None:
                        self._delete_at(x, loc)
            base = len(self._p_ids)
            self._p_vectors.append(csr)
            for j, x in enumerate(ids):
                self._p_row[x] = base + j
                if isinstance(x, int):
                    self._p_next_int = max(self.next_int_id(), x + 1)
            self._p_ids.extend(ids)
            self._p_payloads.extend(payloads)
            self._p_texts.extend(texts if texts is not None and self.store_texts else [None] * len(ids))

    def _delete_at(self, x: Any, loc: tuple[str, int, int]) -> None:
        """Stage the deletion of live id ``x`` found at ``loc`` (see :meth:`locate`)."""
        kind, a, b = loc
        if kind == "pending":
            del self._p_row[x]
            self._p_dropped.add(a)
        else:
            self._p_deletes.setdefault(self._snapshot.states[a].segment.name, set()).add(b)

    def delete(self, ids: Iterable[Any], *, missing_ok: bool = False) -> int:
        """Stage deletions; returns how many documents will be deleted."""
        with self._wlock:
            self._begin_write()
            found = []
            for x in dict.fromkeys(ids):  # an id listed twice is deleted once
                loc = self.locate(x)
                if loc is not None:
                    found.append((x, loc))
                elif not missing_ok:
                    raise KeyError(f"no document with id {x!r} in the index")
            for x, loc in found:
                self._delete_at(x, loc)
            return len(found)

    def rollback(self) -> None:
        """Forget uncommitted changes."""
        with self._wlock:
            self._reset_pending()

    def _new_name(self) -> str:
        n = int(self._meta["next_segment"])
        self._meta["next_segment"] = n + 1
        return f"seg-{n:06d}"

    def _segment_scale(self, values: np.ndarray) -> float | None:
        """The collection's u8 scale (``255 / max_weight``, or fixed by the first segment:
        255 / its largest weight); a segment with a weight beyond that range gets its own scale
        (None: the builder's 255 / max weight), so its scores are rounded on another grid."""
        if self.quantization != "u8":
            return None
        vmax = float(values.max()) if values.size else 0.0
        scale = self._meta.get("scale")
        if scale is None:
            if vmax <= 0:
                return None
            self._meta["scale"] = scale = 255.0 / vmax
        return float(scale) if vmax * float(scale) <= 255.0 else None

    def _build(self, csr, ids, payloads, texts) -> Segment:  # type: ignore[no-untyped-def]
        return Segment.build(
            self._new_name(), csr, ids, payloads, texts,
            quantization=self.quantization, scale=self._segment_scale(csr[2]), vocab_size=self.vocab_size,
        )

    def commit(self, *, merge: bool = True) -> int:
        """Make every staged change durable and visible at once; returns the new generation
        (unchanged if there was nothing to commit)."""
        with self._wlock:
            self._begin_write()
            if not self._pending_any():
                return self._snapshot.generation
            self._raise_merge_error()
            snap = self._snapshot
            states = list(snap.states)
            pos = {st.segment.name: i for i, st in enumerate(states)}
            # deletions: new bitmaps for the touched segments
            for name, docs in self._p_deletes.items():
                si = pos[name]
                st = states[si]
                deleted = np.zeros(st.segment.n, dtype=bool) if st.deleted is None else st.deleted.copy()
                deleted[list(docs)] = True
                states[si] = SegmentState(st.segment, deleted, None)
            # additions: one new segment
            keep = [r for r in range(len(self._p_ids)) if r not in self._p_dropped]
            if keep:
                csr = _stack(self._p_vectors)
                if len(keep) != len(self._p_ids):
                    csr = _take_rows(csr, np.asarray(keep, dtype=np.int64))
                texts = [self._p_texts[r] for r in keep] if self.store_texts else None
                seg = self._build(csr, [self._p_ids[r] for r in keep], [self._p_payloads[r] for r in keep], texts)
                states.append(SegmentState(seg, None, None))
            if self._p_next_int is not None:
                self._meta["next_int_id"] = self._p_next_int
            background = merge and self.merge_policy.background
            if merge and not background:
                # cascade: a merge can fill the next level
                for _ in range(64):
                    groups = self.merge_policy.plan(states)
                    if not groups:
                        break
                    states = self._merge(states, groups)
            states = [st for st in states if st.live > 0]
            self._write_commit(states, snap.generation + 1)
            self._reset_pending()
            generation = self._snapshot.generation
            if background:
                self._start_merger()
            return generation

    # background merges ------------------------------------------------------------------------
    def _start_merger(self) -> None:
        """Start the merge thread if the policy wants merges and none is running."""
        if self._merger is not None and self._merger.is_alive():
            return  # it plans again when it is done
        if not self.merge_policy.plan(self._snapshot.states):
            return
        self._merger = threading.Thread(target=self._merge_loop, name="sparsedex-merge", daemon=True)
        self._merger.start()

    def _merge_loop(self) -> None:
        """Merge what the policy plans, commit, plan again, until nothing is left to merge.
        Segments are built outside the writer's lock (adds, deletes and commits go on); the
        merge is committed under it, carrying over deletions made in the meantime."""
        try:
            while True:
                with self._wlock:
                    if self._lock_fd is None and self.path is not None:
                        return  # closed
                    base = self._snapshot
                    groups = self.merge_policy.plan(base.states)
                    if not groups:
                        return
                    names = [self._new_name() for _ in groups]
                    self._inflight.update(names)  # kept by the garbage collector meanwhile
                built = []
                for g, name in zip(groups, names):
                    members = [base.states[i] for i in g]
                    seg = self._merged_segment(members, name)
                    if seg is not None and self.path is not None:
                        seg.write(self.path, self._meta["uuid"])
                    built.append((members, seg))
                with self._wlock:
                    self._inflight.difference_update(names)
                    if self._lock_fd is None and self.path is not None:
                        return  # closed meanwhile: the files are collected by the next writer
                    self._install_merges(built)
        except BaseException as e:  # reported by the next commit or wait_for_merges()
            self._merge_error = e
            with self._wlock:
                self._inflight.clear()

    def _install_merges(self, built: list[tuple[list[SegmentState], "Segment | None"]]) -> None:
        """Replace merged segments by their merge in a new commit (under the writer lock)."""
        cur = self._snapshot
        by_name = {st.segment.name: st for st in cur.states}
        replace: dict[str, SegmentState | None] = {}
        for members, seg in built:
            if any(m.segment.name not in by_name for m in members):
                continue  # merged away meanwhile (an explicit merge()): drop this one
            doc_of = {} if seg is None else {x: d for d, x in enumerate(seg.ids)}
            newly: list[int] = []
            pending: set[int] = set()
            for m in members:
                now = by_name[m.segment.name]
                ids = m.segment.ids
                if now.deleted is not None:
                    gone = now.deleted if m.deleted is None else (now.deleted & ~m.deleted)
                    newly.extend(doc_of[ids[d]] for d in np.flatnonzero(gone).tolist() if ids[d] in doc_of)
                for d in self._p_deletes.pop(m.segment.name, ()):
                    if ids[d] in doc_of:
                        pending.add(doc_of[ids[d]])
            merged: SegmentState | None = None
            if seg is not None:
                deleted = None
                if newly:
                    deleted = np.zeros(seg.n, dtype=bool)
                    deleted[newly] = True
                merged = SegmentState(seg, deleted, None)
                if pending:
                    self._p_deletes.setdefault(seg.name, set()).update(pending)
            for i, m in enumerate(members):
                replace[m.segment.name] = merged if i == 0 else None
        if not replace:
            return
        states: list[SegmentState] = []
        for st in cur.states:
            if st.segment.name in replace:
                new = replace[st.segment.name]
                if new is not None and new.live > 0:
                    states.append(new)
            else:
                states.append(st)
        self._write_commit(states, cur.generation + 1)

    def _merged_segment(self, members: list[SegmentState], name: str) -> "Segment | None":
        """One segment of the members' live documents (None if there are none)."""
        parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        ids: list[Any] = []
        payloads: list[dict[str, Any] | None] = []
        texts: list[str | None] = []
        for st in members:
            seg = st.segment
            live = np.flatnonzero(st.live_mask())
            parts.append(_take_rows(seg.index.vectors(), live))
            ll = live.tolist()
            ids.extend(seg.ids[d] for d in ll)
            payloads.extend(seg.payloads[d] for d in ll)
            if seg.texts is not None:
                texts.extend(seg.texts[d] for d in ll)
            else:
                texts.extend([None] * len(ll))
        if not ids:
            return None
        csr = _stack(parts)
        return Segment.build(
            name, csr, ids, payloads, texts if self.store_texts else None,
            quantization=self.quantization, scale=self._segment_scale(csr[2]), vocab_size=self.vocab_size,
        )

    def wait_for_merges(self) -> None:
        """Block until background merges are done (and raise if one failed)."""
        while self._merger is not None and self._merger.is_alive():
            self._merger.join(0.1)
        self._raise_merge_error()

    def _raise_merge_error(self) -> None:
        e = self._merge_error
        if e is not None:
            self._merge_error = None
            raise SparsedexError(f"a background merge failed: {type(e).__name__}: {e}") from e

    def merge(self, max_segments: int = 1) -> int:
        """Merge segments (smallest first) until at most ``max_segments`` remain, dropping
        deleted documents; commits staged changes too. Returns the new generation."""
        if max_segments < 1:
            raise ValueError(f"max_segments must be at least 1, got {max_segments}")
        self.wait_for_merges()
        with self._wlock:
            self._begin_write()
            if self._pending_any():
                self.commit(merge=False)
            states = [st for st in self._snapshot.states if st.live > 0]
            groups: list[list[int]] = []
            if len(states) > max_segments:
                order = sorted(range(len(states)), key=lambda i: states[i].live)
                groups = [sorted(order[: len(states) - max_segments + 1])]
            elif any(st.deleted is not None for st in states) and max_segments == 1 and states:
                groups = [[0]]
            if not groups and len(states) == len(self._snapshot.states):
                return self._snapshot.generation
            states = self._merge(states, groups)
            self._write_commit(states, self._snapshot.generation + 1)
            return self._snapshot.generation

    def _merge(self, states: list[SegmentState], groups: list[list[int]]) -> list[SegmentState]:
        """``states`` with each group merged into one segment (at the group's first position)."""
        if not groups:
            return states
        merged_into: dict[int, SegmentState | None] = {}
        for g in groups:
            seg = self._merged_segment([states[i] for i in g], self._new_name())
            merged_into[g[0]] = None if seg is None else SegmentState(seg, None, None)
        grouped = {i for g in groups for i in g}
        out: list[SegmentState] = []
        for i, st in enumerate(states):
            if i in merged_into:
                m = merged_into[i]
                if m is not None:
                    out.append(m)
            elif i not in grouped:
                out.append(st)
        return out

    def _write_commit(self, states: list[SegmentState], generation: int) -> None:
        """Write every new file of ``states``, then the manifest, then switch CURRENT."""
        store_id = self._meta["uuid"]
        recs = []
        for st in states:
            rec: dict[str, Any] = {"name": st.segment.name, "documents": st.segment.n, "live": st.live}
            if self.path is not None:
                rec.update(st.segment.write(self.path, store_id))
                if st.deleted is not None and st.deletes_record is None:
                    p = self.path / f"{st.segment.name}.del-{generation:06d}"
                    body = f"{store_id}/{st.segment.name}\n".encode() + np.packbits(st.deleted, bitorder="little").tobytes()
                    _write_durably(p, _framed(_DEL_MAGIC, body))
                    st.deletes_record = _file_record(p)
                rec["deletes"] = st.deletes_record
            recs.append(rec)
        if self.path is not None:
            m = dict(self._meta)
            m.update({"format": FORMAT, "version": VERSION, "generation": generation, "segments": recs})
            name = f"manifest-{generation:06d}.json"
            body = json.dumps(m, ensure_ascii=False, allow_nan=False, indent=1).encode("utf-8")
            _write_durably(self.path / name, _framed(b"SDXMANI1", body))
            _fsync_dir(self.path)
            cur = json.dumps({"manifest": name, "store": store_id}).encode()
            _write_durably(self.path / _CURRENT, _framed(b"SDXCURR1", cur))  # the commit point
            _fsync_dir(self.path)
        snap = Snapshot(generation, states)
        snap.derive_where(self._snapshot)
        self._snapshot = snap
        if self.path is not None:
            self._collect_garbage()

    def _collect_garbage(self) -> None:
        """Remove files no longer named by the committed manifest (older manifests, merged
        segments, superseded deletions, leftovers of a crashed commit). Open readers keep
        what they mapped or loaded."""
        if self.path is None or self._lock_fd is None:
            return
        keep = {_CURRENT, _LOCK, f"manifest-{self._snapshot.generation:06d}.json"}
        for st in self._snapshot.states:
            keep.update({f"{st.segment.name}.sdx", f"{st.segment.name}.docs"})
            if st.deletes_record is not None:
                keep.add(st.deletes_record["file"])
        inflight = tuple(self._inflight) + tuple("." + n for n in self._inflight)
        for f in os.listdir(self.path):
            if f in keep or (inflight and f.startswith(inflight)):
                continue
            if _collectable(f):
                try:
                    os.unlink(self.path / f)
                except OSError:
                    pass

    def save_copy(self, dest: str | os.PathLike[str]) -> None:
        """Write the committed state as a new store at ``dest`` (a fresh store id)."""
        copy = Store.__new__(Store)
        copy._init_runtime(Path(dest), self.merge_policy)
        copy._meta = json.loads(json.dumps(self._meta))
        copy._meta["uuid"] = _uuid.uuid4().hex
        assert copy.path is not None
        copy.path.mkdir(parents=True, exist_ok=True)
        copy._acquire()
        try:
            # new Segment objects over the same engines: their files are written afresh
            fresh = [
                SegmentState(Segment(seg.name, seg.index, seg.ids, seg.payloads, seg.texts), st.deleted, None)
                for st in self._snapshot.states
                for seg in (st.segment,)
            ]
            copy._write_commit(fresh, max(1, self._snapshot.generation))
        finally:
            copy.close()


def _stack(parts: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if len(parts) == 1:
        ip, ix, v = parts[0]
        return np.asarray(ip, dtype=np.int64), ix, v
    lens = [np.diff(np.asarray(p[0], dtype=np.int64)) for p in parts]
    allens = np.concatenate(lens) if lens else np.zeros(0, np.int64)
    indptr = np.zeros(allens.shape[0] + 1, dtype=np.int64)
    np.cumsum(allens, out=indptr[1:])
    indices = np.concatenate([np.asarray(p[1], dtype=np.uint32)[: int(p[0][-1])] for p in parts]) if parts else np.zeros(0, np.uint32)
    values = np.concatenate([np.asarray(p[2], dtype=np.float32)[: int(p[0][-1])] for p in parts]) if parts else np.zeros(0, np.float32)
    return indptr, indices, values


def _take_rows(csr: tuple[np.ndarray, np.ndarray, np.ndarray], rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    indptr = np.asarray(csr[0], dtype=np.int64)
    lens = np.diff(indptr)[rows]
    out_ptr = np.zeros(rows.shape[0] + 1, dtype=np.int64)
    np.cumsum(lens, out=out_ptr[1:])
    total = int(out_ptr[-1])
    if total:
        starts = np.repeat(indptr[rows] - out_ptr[:-1], lens)
        pos = starts + np.arange(total, dtype=np.int64)
        return out_ptr, np.asarray(csr[1])[pos], np.asarray(csr[2])[pos]
    return out_ptr, np.zeros(0, np.uint32), np.zeros(0, np.float32)
