"""Directories written by sparsedex 0.1 (the Python store): read as they are, upgraded in place
by their first writer.

The 0.1 layout (JSON throughout, framed ``magic + crc32 + length + body``)::

    CURRENT                  SDXCURR1 {"manifest": "manifest-<G>.json", "store": uuid}
    manifest-<G>.json        SDXMANI1 {format "sparsedex-store", version 1, segments, settings, ...}
    seg-<N>.sdx              engine segment, format version 1 (read by ``_core.Index.open``)
    seg-<N>.docs             SDXDOCS1 {ids, payloads, texts} in the segment's internal order
    seg-<N>.del-<G>          SDXDELS1 "<uuid>/<segment>\\n" + deleted-document bits (little-endian)
    LOCK

**Readers** (``SparseIndex.open`` without writing) load it into an in-memory store: each
segment's vectors, ids and documents, minus its deleted documents, re-indexed in memory. The
directory is not touched. (0.1 read every text and payload at open too; these directories
are small or rare.)

**The first writer upgrades it in place**, under the writer lock: it writes the index in the
current layout beside the old files under *new* names (segment numbers above every old one,
``manifest-<G>`` without ``.json``), then replaces ``CURRENT`` atomically: that rename is the
commit point. A crash before it leaves the 0.1 index whole (the new files are leftovers the
next writer collects); a crash after it leaves the upgraded index, whose garbage collection
removes the old segment files; the old ``manifest-*.json`` files are removed after the switch.
So a kill at any moment leaves a directory that opens, as the old or the upgraded index.

**0.1's ``VectorIndex`` directories** (the second class 0.1 had, for vectors you bring)::

    sparsedex.json           {"format": "sparsedex-vector-index", "version": 1}
    vectors.sdx              one engine segment, format version 1 or 2, with its ids

are read and upgraded the same way, as an index of one segment without payloads or texts
(they kept none). Its vectors must have been stored (``store_vectors=True``, the default): an
index built without them cannot be rebuilt, and opening it is a :class:`CorruptIndexError`
that says so. After the switch the two old files are removed.
"""

from __future__ import annotations

import json
import os
import stat
import struct
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from . import _core
from ._core import CorruptIndexError

_CUR_MAGIC = b"SDXCURR1"
_MAN_MAGIC = b"SDXMANI1"
_DOCS_MAGIC = b"SDXDOCS1"
_DEL_MAGIC = b"SDXDELS1"
_SEGMENT_MAGIC = b"SPDXIDX\0"  # an engine segment file (the core's index::format::MAGIC)
_HEAD = 65536


def is_ours(name: str) -> bool:
    """A file name an index directory without a CURRENT may hold and still take a save (ours,
    any version, temporary ones too): the Rust core's rule, which its save applies too."""
    return _core.index_dir_may_hold(name)


def _current_bytes(p: Path) -> bytes | None:
    """CURRENT's first bytes: None without one (none, or a link to nothing), ``b""`` for one
    that is not a regular file (a directory, a FIFO: never opened, the open would block)."""
    try:
        st = os.stat(p / "CURRENT")
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError:  # a loop of links
        return b""
    if not stat.S_ISREG(st.st_mode):
        return b""
    try:
        with open(p / "CURRENT", "rb") as f:
            return f.read(1 << 16)
    except FileNotFoundError:
        return None


_VEC_META = "sparsedex.json"
_VEC_FILE = "vectors.sdx"
_VEC_FORMAT = "sparsedex-vector-index"


def is_vector_dir(p: Path) -> bool:
    """Whether ``p`` is a 0.1 ``VectorIndex`` directory (a ``sparsedex.json``, no CURRENT)."""
    return _current_bytes(p) is None and (p / _VEC_META).is_file()


def foreign_reason(p: Path) -> str | None:
    """Why directory ``p`` holds another program's files, naming the file (for the message),
    or None when it does not: a LOCK that is not a regular file (a FIFO, a link); a CURRENT
    that is not a sparsedex one (LevelDB's, RocksDB's; a directory, a FIFO, a link to
    nothing); a ``sparsedex.json`` or ``vectors.sdx`` that is not a 0.1 ``VectorIndex``'s
    (newcomer36: a user's were taken for one and deleted by the upgrade); without a CURRENT
    (a 0.1 ``VectorIndex`` too), any name no index directory holds (:func:`is_ours`, the core's
    own rule). Files beside an index (with a CURRENT) are its user's and not a reason; a
    directory holding only what a killed save left is not foreign. ``save()`` and creating an
    index refuse a foreign directory."""
    lock = p / "LOCK"
    if os.path.lexists(lock) and (lock.is_symlink() or not lock.is_file()):
        return "its LOCK is not a regular file"
    raw = _current_bytes(p)
    if raw is not None:
        return None if _core.is_our_current(raw[:8]) else "its CURRENT is not a sparsedex index's"
    if os.path.lexists(p / "CURRENT"):
        return "its CURRENT is a symbolic link to nothing"
    names = sorted(os.listdir(p))
    vector = is_vector_dir(p) and _vector_meta_ok(p)
    for n in names:
        if n in (_VEC_META, _VEC_FILE) and not vector:
            return f"{n!r} is not a sparsedex 0.1 VectorIndex's"
    # the core's rule for a directory without CURRENT (a 0.1 VectorIndex too): ours only
    return next((f"{n!r} is there" for n in names if not is_ours(n)), None)


def is_foreign_dir(p: Path) -> bool:
    """Whether directory ``p`` holds another program's files (:func:`foreign_reason`)."""
    return foreign_reason(p) is not None


def _vector_meta_ok(p: Path) -> bool:
    """Whether ``p``'s ``sparsedex.json`` is a regular file naming the 0.1 VectorIndex format."""
    mp = p / _VEC_META
    if not mp.is_file():
        return False
    try:
        meta = json.loads(mp.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return False
    return isinstance(meta, dict) and meta.get("format") == _VEC_FORMAT


def is_legacy(p: Path) -> bool:
    """Whether ``p`` is in a sparsedex 0.1 layout (its CURRENT is 0.1's, or a VectorIndex's)."""
    raw = _current_bytes(p)
    if raw is None:
        return (p / _VEC_META).is_file()
    return raw.startswith(_CUR_MAGIC)


def _legacy_file(p: Path, n: str) -> bool:
    """Whether ``p / n`` is a sparsedex 0.1 file by its name *and* its content (a regular file
    with 0.1's magic, or a ``sparsedex.json`` naming the VectorIndex format): a user's file of
    the same name beside an index is not (recheck36: saving over an index deleted them)."""
    if n == _VEC_META:
        return _vector_meta_ok(p)
    if n == _VEC_FILE:
        magic = _SEGMENT_MAGIC
    elif n.startswith("manifest-") and n.endswith(".json") or n.startswith(".manifest-") and ".json" in n:
        magic = _MAN_MAGIC
    else:
        return False
    f = p / n
    if not f.is_file() or f.is_symlink():
        return False
    try:
        with open(f, "rb") as fh:
            return fh.read(len(magic)) == magic
    except OSError:
        return False


def is_legacy_leftover(p: Path) -> bool:
    """Whether ``p`` holds 0.1 files although its CURRENT is of today's layout."""
    if _current_bytes(p) is None or is_legacy(p):
        return False
    return any(_legacy_file(p, n) for n in os.listdir(p))


def remove_legacy_files(p: Path, keep_current: bool) -> None:
    """After the switch: remove the 0.1 manifests (our GC does not know their names). Before it
    (``keep_current``): nothing to do, the old files stay until CURRENT is replaced."""
    if keep_current:
        return
    for n in sorted(os.listdir(p), key=lambda n: n != _VEC_META):  # sparsedex.json first
        if _legacy_file(p, n):
            try:
                os.unlink(p / n)
            except OSError:
                pass


def _unframe(path: Path, magic: bytes, data: bytes) -> bytes:
    head = len(magic) + 12
    if len(data) < head or data[: len(magic)] != magic:
        raise CorruptIndexError(f"{path}: not a sparsedex 0.1 file (bad magic)")
    crc, n = struct.unpack("<IQ", data[len(magic):head])
    body = data[head:]
    if len(body) != n:
        raise CorruptIndexError(f"{path}: truncated ({len(body)} of {n} bytes)")
    if zlib.crc32(body) != crc:
        raise CorruptIndexError(f"{path}: checksum mismatch (the file is corrupted)")
    return body


def _json(path: Path, magic: bytes, data: bytes) -> Any:
    try:
        return json.loads(_unframe(path, magic, data).decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise CorruptIndexError(f"{path}: unreadable ({e})") from None


def _read_regular(path: Path, what: str) -> bytes:
    """The bytes of ``path``, a file a 0.1 index names; CorruptIndexError when it is missing or
    not a regular file (a directory, a FIFO: never opened, the open would block, recheck36)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise CorruptIndexError(f"{path}: missing ({what} of the committed index)") from None
    except OSError as e:
        raise CorruptIndexError(f"{path}: {e.strerror} ({what} of the committed index)") from None
    if not stat.S_ISREG(st.st_mode):
        raise CorruptIndexError(f"{path}: not a regular file ({what} of the committed index)")
    return path.read_bytes()


def _recorded(root: Path, rec: Any, what: str, head_only: bool = False) -> tuple[Path, bytes]:
    if not isinstance(rec, dict) or not isinstance(rec.get("file"), str) or "/" in rec["file"]:
        raise CorruptIndexError(f"{root}: manifest entry for {what} is malformed")
    p = root / rec["file"]
    data = _read_regular(p, what)
    if len(data) != rec.get("size"):
        raise CorruptIndexError(f"{p}: size {len(data)} bytes, the manifest records {rec.get('size')}")
    if zlib.crc32(data[:_HEAD] if head_only else data) != rec.get("crc32"):
        raise CorruptIndexError(f"{p}: checksum differs from the manifest's (corrupted, or from another index)")
    return p, data


class Legacy:
    """A 0.1 directory, read whole: settings and each segment's live documents."""

    def __init__(self, p: Path) -> None:
        self._vectors: Any = None
        if is_vector_dir(p):
            self._init_vector_dir(p)
            return
        raw = _current_bytes(p)
        if raw is None:
            raise CorruptIndexError(f"{p}: missing CURRENT (not a sparsedex index directory)")
        cur = _json(p / "CURRENT", _CUR_MAGIC, raw)
        name = cur.get("manifest") if isinstance(cur, dict) else None
        if not isinstance(name, str) or "/" in name:
            raise CorruptIndexError(f"{p / 'CURRENT'}: names no manifest")
        mp = p / name
        m = _json(mp, _MAN_MAGIC, _read_regular(mp, "the manifest CURRENT names"))
        if not isinstance(m, dict) or m.get("format") != "sparsedex-store" or m.get("version") != 1:
            raise CorruptIndexError(f"{mp}: not a sparsedex 0.1 manifest")
        if m.get("uuid") != cur.get("store"):
            raise CorruptIndexError(f"{mp}: belongs to another index than CURRENT")
        if m.get("quantization") not in ("u8", "float") or not isinstance(m.get("segments"), list):
            raise CorruptIndexError(f"{mp}: malformed manifest")
        self.path = p
        self.uuid: str = m["uuid"]
        self.quantization: str = m["quantization"]
        self.vocab_size: int | None = m.get("vocab_size")
        self.scale: float | None = m.get("scale")
        self.store_texts: bool = bool(m.get("store_texts", True))
        self.settings: dict[str, Any] = m.get("settings") or {}
        self.segments: list[dict[str, Any]] = m["segments"]
        nxt = m.get("next_int_id", 0)
        if not isinstance(nxt, int) or isinstance(nxt, bool) or nxt < 0:
            raise CorruptIndexError(f"{mp}: malformed next_int_id {nxt!r}")
        # ids below it were used, by live or deleted documents: never given again
        self.next_int_id: int = nxt

    def _init_vector_dir(self, p: Path) -> None:
        mp = p / _VEC_META
        try:
            meta = json.loads(_read_regular(mp, "the VectorIndex's metadata").decode("utf-8"))
        except (ValueError, UnicodeDecodeError) as e:
            raise CorruptIndexError(f"{mp}: unreadable ({e})") from None
        if not isinstance(meta, dict) or meta.get("format") != _VEC_FORMAT:
            raise CorruptIndexError(f"{mp}: not a {_VEC_FORMAT} directory")
        if meta.get("version") != 1:
            raise CorruptIndexError(f"{mp}: format version {meta.get('version')!r} is not supported (this build reads 1)")
        sdx = p / _VEC_FILE
        if not sdx.is_file():
            raise CorruptIndexError(f"{sdx}: missing (named by {_VEC_META})")
        index = _core.Index.open(str(sdx))
        st = index.stats()
        if len(index) and not st.get("vectors_bytes"):
            raise CorruptIndexError(
                f"{sdx}: built without its vectors (store_vectors=False), so it cannot be opened as a "
                "SparseIndex; rebuild it from the vectors with SparseIndex(None).add(...)")
        self._vectors = index
        self.path = p
        self.uuid = ""
        self.quantization = str(st["quantization"])
        self.vocab_size = None
        self.scale = float(st["scale"]) if st.get("scale") else None
        self.store_texts = False
        self.settings = {}
        self.segments = []
        self.next_int_id = 0  # a VectorIndex numbered nothing beyond its documents' own ids

    def bm25(self) -> tuple[float, float] | None:
        enc = self.settings.get("encoder")
        if isinstance(enc, dict) and enc.get("kind") == "bm25":
            return (float(enc.get("k1", 1.2)), float(enc.get("b", 0.75)))
        return None

    def documents(self) -> list[tuple[tuple[np.ndarray, np.ndarray, np.ndarray], list[Any], list[Any], list[Any]]]:
        """Per segment: the live documents' (CSR vectors, ids, payloads, texts)."""
        if self._vectors is not None:
            seg = self._vectors
            count = len(seg)
            raw = seg.ids()
            vids = list(range(count)) if raw is None else [x.item() if isinstance(x, np.generic) else x for x in raw]
            vptr, vind, vval = seg.vectors()
            vcsr = (np.asarray(vptr, dtype=np.uint64), np.asarray(vind, dtype=np.uint32), np.asarray(vval, dtype=np.float32))
            return [(vcsr, vids, [None] * count, [None] * count)]
        out = []
        for rec in self.segments:
            name = rec.get("name")
            if not isinstance(rec, dict) or not isinstance(name, str):
                raise CorruptIndexError(f"{self.path}: malformed segment entry")
            n = rec.get("documents")
            sdx, _ = _recorded(self.path, rec.get("index"), f"segment {name}'s engine index", head_only=True)
            dpath, ddata = _recorded(self.path, rec.get("docs"), f"segment {name}'s documents")
            d = _json(dpath, _DOCS_MAGIC, ddata)
            if not isinstance(d, dict) or d.get("store") != self.uuid or d.get("segment") != name:
                raise CorruptIndexError(f"{dpath}: belongs to another index")
            ids, pls, txs = d.get("ids"), d.get("payloads"), d.get("texts")
            if not (isinstance(ids, list) and isinstance(pls, list) and len(ids) == len(pls) == n):
                raise CorruptIndexError(f"{dpath}: ids and payloads do not match the document count {n}")
            if txs is None:
                txs = [None] * n
            if not isinstance(txs, list) or len(txs) != n:
                raise CorruptIndexError(f"{dpath}: texts do not match the document count {n}")
            index = _core.Index.open(str(sdx))
            if len(index) != n:
                raise CorruptIndexError(f"{sdx}: has {len(index)} documents, the manifest records {n}")
            indptr, indices, values = index.vectors()
            live = np.ones(n, dtype=bool)
            if rec.get("deletes") is not None:
                p, data = _recorded(self.path, rec["deletes"], f"segment {name}'s deletions")
                body = _unframe(p, _DEL_MAGIC, data)
                tag = f"{self.uuid}/{name}".encode()
                if not body.startswith(tag + b"\n"):
                    raise CorruptIndexError(f"{p}: belongs to another index or segment")
                bits = np.frombuffer(body[len(tag) + 1:], dtype=np.uint8)
                live = ~np.unpackbits(bits, count=n, bitorder="little").astype(bool)
            keep = np.flatnonzero(live)
            ip = np.asarray(indptr, dtype=np.int64)
            lens = np.diff(ip)[keep]
            optr = np.zeros(keep.shape[0] + 1, dtype=np.uint64)
            np.cumsum(lens, out=optr[1:])
            pos = np.concatenate([np.arange(ip[r], ip[r + 1]) for r in keep.tolist()]) if keep.size else np.zeros(0, np.int64)
            csr = (optr, np.asarray(indices)[pos].astype(np.uint32), np.asarray(values)[pos].astype(np.float32))
            kl = keep.tolist()
            out.append((csr, [ids[i] for i in kl], [pls[i] for i in kl], [txs[i] for i in kl]))
        return out


def _memory_store(store: Any, old: Legacy) -> None:
    """Fill ``store`` (a :class:`~sparsedex.store.Store` being opened) with ``old``'s live
    documents, in an in-memory core store."""
    from .docs import MemoryDocs
    from .store import SETTINGS_FORMAT, SETTINGS_VERSION, _settings_json

    settings = {"format": SETTINGS_FORMAT, "version": SETTINGS_VERSION, "store_texts": old.store_texts,
                **{k: v for k, v in old.settings.items() if k not in ("format", "version")}}
    store._settings = settings
    max_weight = None
    if old.quantization == "u8" and old.scale and old.bm25() is None:
        max_weight = 255.0 / float(old.scale)
    store._core = _core.Store.create(
        None, quantization=old.quantization, max_weight=max_weight, vocab_size=old.vocab_size, bm25=old.bm25(),
        settings_json=_settings_json(settings),
    )
    for csr, ids, pls, txs in old.documents():
        if not ids:
            continue
        kw: dict[str, Any] = {"ids_str": ids} if isinstance(ids[0], str) else {"ids_int": np.asarray(ids, dtype=np.int64)}
        store._core.stage_add(*csr, **kw)
        # one segment per old segment (search order kept)
        prepared = store._core.prepare_commit()
        if prepared is not None:
            name, order, _ = prepared
            rows = order.tolist()
            store._mem_docs[name] = MemoryDocs([pls[r] for r in rows], [txs[r] for r in rows] if old.store_texts else None)
        store._core.finish_commit([], None)
    store._core.reserve_int_ids(old.next_int_id)
    store._core.finish_commit([], None)


def open_legacy(cls: Any, p: Path, merge_policy: Any) -> Any:
    """A :class:`~sparsedex.store.Store` reading the 0.1 directory ``p`` (in memory)."""
    self = cls.__new__(cls)
    self._init_runtime(p, merge_policy)
    old = Legacy(p)
    _memory_store(self, old)
    self._legacy = old
    self._load_snapshot()
    return self


def upgrade(store: Any) -> None:
    """Upgrade ``store``'s 0.1 directory in place (the caller holds the writer lock): see the
    module doc. Afterwards ``store`` is a store of the directory in today's layout."""
    p = store.path
    if is_legacy(p):
        old = Legacy(p)  # as it is now, under the lock
        tmp = store.__class__.__new__(store.__class__)
        tmp._init_runtime(p, store.merge_policy)
        _memory_store(tmp, old)
        tmp._load_snapshot()
        prepared = tmp._core.prepare_save(p)
        from .docs import payloads_json, write_docs

        attachments = []
        for src, to in prepared.names():
            seg = tmp._segs[src]
            att = f"{to}.docs"
            write_docs(p / att, to, payloads_json(seg.docs.stored_payloads(range(seg.docs.n))),
                       seg.docs.all_texts() if old.store_texts else None)
            attachments.append(att)
        store._lock.check()
        from .store import _settings_json

        tmp._core.finish_save(prepared, attachments, _settings_json(tmp._settings))  # the commit point
    remove_legacy_files(p, keep_current=False)
    store._core = _core.Store.open(p)
    store._legacy = None
    store._segs = {}
    store._mem_docs = {}
    store._snapshot = None
