"""Document storage: each segment's payloads and texts, read lazily.

The engine (Rust) keeps what search needs: vectors, postings, ids and deletions. What a user
reads back with a hit or :meth:`~sparsedex.SparseIndex.get` (payloads, texts) lives beside
it, one store per segment, in the segment's internal document order:

- on disk, ``seg-N.docs`` is a SQLite database (Python's standard ``sqlite3``), written once
  when its segment is committed or merged and never modified, registered with the segment as
  an attachment (the manifest records its size and CRC32, and the store garbage-collects it
  with the segment);
- in memory (an index without a path), two Python lists.

Why SQLite: it is in the standard library, its file format is stable, documented and
crash-safe, and it reads one row by its rowid without reading the rest, so opening an index
costs nothing per document and memory does not grow with the collection. A database is opened
read-only with ``immutable=1`` (no locks, no journal: the file never changes) when the snapshot
that lists it is loaded, so a writer collecting the file afterwards cannot break a reader that
has not read from it yet (POSIX keeps an open file alive).

Schema (``PRAGMA application_id`` = 0x53445844, "SDXD"; ``user_version`` = 1)::

    CREATE TABLE docs (doc INTEGER PRIMARY KEY, payload TEXT, text TEXT)
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)   -- segment name, documents, format,
                                                           -- payloads (since stop 61)

``doc`` is the internal document number (0..n-1, every one present), ``payload`` the payload
as compact JSON (NULL for none), ``text`` the text (NULL when not kept). ``meta``'s
``payloads`` counts the documents with a payload, so that a search of a segment without any
reads no rows; a file without it (written before) is read row by row.

Payload columns for filters (:class:`~sparsedex.filters.PayloadColumns`) are built per field
path on first use: :meth:`SegmentDocs.path_values` asks SQLite's JSON functions for the
documents holding the path and their values, so evaluating a filter never loads whole payloads
into Python.
"""

from __future__ import annotations

import _thread
import contextlib
import errno
import json
import math
import os
import re
import signal
import sqlite3
import threading
import urllib.parse
import weakref
import zlib
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ._core import CorruptIndexError

__all__ = ["SegmentDocs", "MemoryDocs", "SqliteDocs", "write_docs", "merge_docs", "payload_json", "payloads_json"]

APPLICATION_ID = 0x53445844  # "SDXD"
SCHEMA_VERSION = 1
#: The ``format`` entry of a documents database's ``meta`` table.
DOCS_FORMAT = "sparsedex-docs"
_MISSING = object()
_CHUNK = 900  # rows per IN (...) query: below SQLite's default limit of 999 variables


_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def payload_json(p: dict[str, Any] | None) -> str | None:
    """The stored form of a payload: compact JSON (``None`` stays ``None``).

    Raises ``ValueError`` / ``TypeError`` for what JSON cannot hold exactly (validated at
    ``add`` time, so a commit never meets it)."""
    if p is None:
        return None
    return _ENCODER.encode(p)  # one encoder: json.dumps with options builds one per call


try:  # the C encoder of the json module, made once (JSONEncoder.encode makes one per call)
    from json.encoder import c_make_encoder as _c_make_encoder
except ImportError:  # pragma: no cover - interpreters without the C accelerator
    _c_make_encoder = None

_C_ENCODE = (
    _c_make_encoder(None, _ENCODER.default, json.encoder.encode_basestring, None, ":", ",", False, False, False)
    if _c_make_encoder is not None
    else None
)


def payloads_json(payloads: Iterable[dict[str, Any] | None]) -> list[str | None]:
    """:func:`payload_json` of each payload (the same strings), several times faster for a
    batch. The payloads are validated ones (``add`` checked them: no NaN, no cycle); without
    the C encoder this is :func:`payload_json` per payload."""
    enc = _C_ENCODE
    if enc is None:  # pragma: no cover
        return [payload_json(p) for p in payloads]
    join = "".join
    return [None if p is None else join(enc(p, 0)) for p in payloads]


def _no_constant(name: str) -> Any:
    """``NaN``, ``Infinity`` and ``-Infinity``, which Python's JSON reader takes and add()
    never stores (its payloads are standard JSON): a value edited into the file (helper-127)."""
    raise ValueError(f"{name} is not a JSON value")


def _finite_float(text: str) -> float:
    """A JSON number with a fraction or exponent, which must be a finite float: ``1e999``
    read as inf, a value add() never stores (helper-130)."""
    v = float(text)
    if not math.isfinite(v):
        raise ValueError(f"{text[:40]} is beyond the range of a float")
    return v


_raw_decode = json.JSONDecoder(parse_constant=_no_constant, parse_float=_finite_float).raw_decode


def _sqlite_uri(path: Path, query: str = "") -> str:
    """SQLite's ``file:`` URI of ``path``, percent-encoded: in a raw one, SQLite reads ``?`` as
    the start of the query, ``#`` as a fragment and ``%XX`` as an escape, so an index directory
    named ``data#1`` opened (and wrote tables into) a file ``data`` beside it (helper-109)."""
    uri = "file:" + urllib.parse.quote(path.as_posix(), safe="/")
    return f"{uri}?{query}" if query else uri


def _one_json_value(text: str) -> Any:
    """``json.loads(text)``, faster for the compact texts the store writes: the value must end
    where the text ends (ValueError otherwise, as json.loads raises)."""
    try:
        value, end = _raw_decode(text)
        if end == len(text):
            return value
    except (ValueError, TypeError):  # TypeError: bytes (a BLOB), which json.loads decodes
        pass
    try:
        # whitespace around the value, or an error naming the fault
        return json.loads(text, parse_constant=_no_constant, parse_float=_finite_float)
    except TypeError as e:  # not text at all (an integer column value)
        raise ValueError(str(e)) from None


_PATH_CHUNK = 1 << 18  # documents per SQLite aggregate in path_values


class SegmentDocs(ABC):
    """The payloads and texts of one segment's documents, by internal document number."""

    n: int
    #: Whether a read found the file damaged (every later read raises the same error); a
    #: refresh opens such a segment's documents again.
    failed: bool = False

    def changed_on_disk(self) -> bool:
        """Whether the file under this segment's documents' name is no longer the one opened
        (another inode, size or modification time); False in memory and for a file gone."""
        return False

    def moved(self) -> bool:
        """Whether the file's stamp moved since it was opened (no read); False in memory."""
        return False

    #: Opened again by a refresh or a writer's catch-up because the file under its name had
    #: changed since the handle opened it (so it is checked before a commit carries it forward).
    reopened = False

    def differs_from_record(self) -> str | None:
        """Why the file under this segment's documents' name does not hold what the commit
        records, or None: before a commit carries the file forward. None in memory."""
        return None

    @abstractmethod
    def payloads(self, docs: Sequence[int]) -> list[dict[str, Any] | None]:
        """Payloads of ``docs`` (internal numbers, any order, repeats allowed), in that order."""

    @abstractmethod
    def texts(self, docs: Sequence[int]) -> list[str | None]:
        """Texts of ``docs`` (None where no text was kept), in that order."""

    @abstractmethod
    def path_values(self, path: str) -> tuple[np.ndarray, list[Any]]:
        """The documents whose payload holds the dotted ``path`` and the value found there
        (a JSON value: None, bool, int, float, str, list or dict), documents ascending."""

    def payload(self, doc: int) -> dict[str, Any] | None:
        return self.payloads([doc])[0]

    def text(self, doc: int) -> str | None:
        return self.texts([doc])[0]

    def all_payloads(self) -> list[dict[str, Any] | None]:
        return self.payloads(range(self.n))

    def stored_payloads(self, docs: Sequence[int]) -> list[dict[str, Any] | None]:
        """:meth:`payloads` for serializing them (read, never changed): the stored objects
        themselves where a store keeps objects, so that writing them copies nothing."""
        return self.payloads(docs)

    def all_texts(self) -> list[str | None]:
        return self.texts(range(self.n))

    def close(self) -> None:  # noqa: B027 - optional
        """Release what the store holds open."""


def _resolve(payload: Any, keys: Sequence[str]) -> Any:
    v = payload
    for k in keys:
        if not isinstance(v, dict):
            return _MISSING
        v = v.get(k, _MISSING)
        if v is _MISSING:
            return _MISSING
    return v


def _copy_json(v: Any) -> Any:
    """A copy of a JSON-like value: its dicts and lists copied, all the way down."""
    if isinstance(v, dict):
        return {k: _copy_json(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_copy_json(x) for x in v]
    return v


class MemoryDocs(SegmentDocs):
    """Payloads and texts held in Python lists (an in-memory index)."""

    def __init__(self, payloads: Sequence[dict[str, Any] | None], texts: Sequence[str | None] | None) -> None:
        self._payloads = list(payloads)
        self._texts = None if texts is None else list(texts)
        if self._texts is not None and len(self._texts) != len(self._payloads):
            raise ValueError(f"{len(self._texts)} texts for {len(self._payloads)} payloads")
        self.n = len(self._payloads)

    def payloads(self, docs: Sequence[int]) -> list[dict[str, Any] | None]:
        # copies, as an index directory's are (decoded per read): changing a hit's or a
        # document's payload must not change the stored one, what filters match or what
        # save() writes
        p = self._payloads
        return [_copy_json(p[d]) for d in docs]

    def stored_payloads(self, docs: Sequence[int]) -> list[dict[str, Any] | None]:
        p = self._payloads
        return [p[d] for d in docs]

    def texts(self, docs: Sequence[int]) -> list[str | None]:
        if self._texts is None:
            return [None] * len(docs)
        t = self._texts
        return [t[d] for d in docs]

    def path_values(self, path: str) -> tuple[np.ndarray, list[Any]]:
        keys = path.split(".")
        docs: list[int] = []
        vals: list[Any] = []
        for i, p in enumerate(self._payloads):
            v = _resolve(p, keys)
            if v is not _MISSING:
                docs.append(i)
                vals.append(v)
        return np.asarray(docs, dtype=np.int64), vals

    def __repr__(self) -> str:
        return f"MemoryDocs({self.n} documents)"


# keys SQLite's JSON path can quote: no quote, backslash or control character (a payload stores
# those JSON-escaped, which `$."<key>"` does not match; NUL ends the path); others are resolved
# in Python
_SIMPLE_KEY = re.compile(r'^[^"\\\x00-\x1f]+$')


def _redeliver_interrupt() -> None:
    """Raise again, in the main thread, a Ctrl-C that a ``__del__`` caught.

    Only a real Ctrl-C: one caught on the main thread (signals are delivered there only) while
    Python's own SIGINT handler is installed (an application's handler already ran for that
    press and is not run twice). It is delivered from a new thread, which runs when the main
    thread next lets go of the GIL, by then out of ``__del__`` (interrupting from within
    raises at once, inside ``__del__`` again); so it lands a little later than the press. At
    interpreter shutdown no thread can start and the interrupt is dropped, as before.
    """
    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        return
    try:
        _thread.start_new_thread(_thread.interrupt_main, ())
    except RuntimeError:  # pragma: no cover - interpreter shutting down
        pass


def _raise_if_out_of_files(fh: Any, path: Path) -> None:
    """SQLite says only "unable to open database file" when the process is out of file
    descriptors: ask the system (one dup of an open file), and raise that as an OSError naming
    the limit, not a corrupt index (breaker39: 400 segments under a limit of 512 files were
    reported as a damaged documents file, a sound index)."""
    try:
        os.close(os.dup(fh.fileno()))
    except OSError as e:
        if e.errno in (errno.EMFILE, errno.ENFILE):
            raise OSError(
                e.errno,
                f"too many open files while opening {path} (an open index holds two per segment): raise the "
                "limit (ulimit -n), merge segments (merge()), or open fewer handles",
            ) from None


class _ForkGate:
    """Makes ``fork()`` wait until no thread of this process is inside SQLite.

    SQLite is not fork-safe: its global mutexes (memory statistics, the Unix VFS's list of
    open files) stay locked for ever in a child forked while another thread was inside any
    SQLite call, and the child's first SQLite call, even opening a new connection, hangs
    (helper-90: 1-4 of 20-30 children of a parent writing or merging). Every SQLite call of
    this module runs inside the gate (``with _GATE:``, one statement or a bounded chunk at a
    time, re-entrant per thread); ``os.register_at_fork(before=...)`` closes it and waits for
    the calls in progress to end (at most 30 s, then forks anyway), and it opens again after the
    fork, in the parent and, as a new gate, in the child."""

    def __init__(self) -> None:
        # re-entrant: a __del__ run by the garbage collector inside before_fork enters too
        self._lock = threading.RLock()
        self._cv = threading.Condition(self._lock)
        # Threads inside the gate, by thread id, with their depth of nested entries: each
        # change is one store or delete, so a fork from a signal handler that interrupts its
        # own thread in __enter__ or __exit__ always sees whether that thread is inside (a
        # count and a thread-local depth, changed one after the other, left a window in which
        # the fork waited for its own thread, 30 s; helper-131).
        self._members: dict[int, int] = {}
        self._forking = False
        self._forker = 0

    # Every payload read of a search passes here, so the way in and out is the C lock alone
    # (the Condition's own methods are Python calls: 2 us a pass); the Condition is waited on
    # and notified only while a fork is waiting.
    def __enter__(self) -> None:
        me = threading.get_ident()
        depth = self._members.get(me, 0)
        if depth:
            self._members[me] = depth + 1
            return
        with self._lock:
            while self._forking and self._forker != me:
                self._cv.wait()
            self._members[me] = 1

    def __exit__(self, *exc: Any) -> None:
        me = threading.get_ident()
        depth = self._members[me] - 1
        if depth:
            self._members[me] = depth
            return
        with self._lock:
            del self._members[me]
            if self._forking and not self._others(self._forker):
                self._cv.notify_all()

    def _others(self, me: int) -> bool:
        """Whether a thread other than ``me`` is inside the gate."""
        return any(t != me for t in list(self._members))

    def before_fork(self) -> None:
        self._cv.acquire()
        me = threading.get_ident()
        self._forking, self._forker = True, me
        # a fork from inside the gate (its own calls) waits for the other threads only
        self._cv.wait_for(lambda: not self._others(me), timeout=30)
        # the lock stays held across the fork: nothing enters meanwhile

    def after_fork_in_parent(self) -> None:
        self._forking = False
        self._cv.notify_all()
        self._cv.release()


_GATE = _ForkGate()


def _gate_before_fork() -> None:
    _GATE.before_fork()


def _gate_after_fork_in_parent() -> None:
    _GATE.after_fork_in_parent()


# Every open documents file of this process, and what a fork() child set aside: see
# SqliteDocs._reopen_in_child.
_OPEN_DOCS: "weakref.WeakSet[SqliteDocs]" = weakref.WeakSet()
_INHERITED: list[Any] = []


def _after_fork_in_child() -> None:
    """Each open documents file gets a fresh lock in a fork() child (a parent thread may have
    held the old one at the fork); its file handle is replaced on first use, and the fork gate
    is new."""
    global _GATE
    _GATE = _ForkGate()
    for d in list(_OPEN_DOCS):
        d._lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(
        before=_gate_before_fork, after_in_parent=_gate_after_fork_in_parent, after_in_child=_after_fork_in_child
    )


class SqliteDocs(SegmentDocs):
    """A segment's ``seg-N.docs`` database, opened read-only and immutable.

    ``crc32``/``size`` (from the manifest), when given, are checked on the first read (the
    whole file once, ~1 GB/s): a damaged or swapped file is a :class:`CorruptIndexError`
    naming it, not a wrong payload. ``n`` is the segment's document count (checked too)."""

    def __init__(self, path: str | os.PathLike[str], n: int, *, crc32: int | None = None,
                 segment: str | None = None, reopened: bool = False) -> None:
        self.path = Path(path)
        self.n = int(n)
        self.reopened = reopened
        self._crc32 = crc32
        self._segment = segment
        self._lock = threading.Lock()
        self._pid = os.getpid()  # the process the connection and handle belong to
        _OPEN_DOCS.add(self)
        self._verified = crc32 is None
        self._failed: str | None = None
        # whether any document has a payload: None until the first payload read asks the file
        self._any_payload: bool | None = None
        self._fh = None
        try:
            # the lazy checksum and copy_to() read this handle, not the name (a writer may
            # collect the file once a newer commit is current: an open file stays readable)
            self._fh = open(self.path, "rb")
        except FileNotFoundError:
            raise CorruptIndexError(f"{self.path}: missing (a documents file of the committed index)") from None
        self._stamp = _stamp(os.fstat(self._fh.fileno()))
        try:
            # Opening the connection opens the file: from here on a collected file stays readable.
            with _GATE:
                self._conn = sqlite3.connect(
                    _sqlite_uri(self.path, "mode=ro&immutable=1"), uri=True, check_same_thread=False
                )
                self._conn.execute("PRAGMA query_only = 1")
        except sqlite3.Error as e:
            _raise_if_out_of_files(self._fh, self.path)
            raise CorruptIndexError(f"{self.path}: cannot open the documents database ({e})") from None

    def __del__(self) -> None:
        # A sqlite3.Connection sits in a reference cycle with its statement cache, so it (and
        # the file it holds open) would live until the cycle collector runs; close it when the
        # segment's documents are dropped, so a merged-away file's disk space is freed now.
        if getattr(self, "_pid", None) not in (None, os.getpid()):
            return  # a fork() child's inherited connection and handle: never closed there
        try:
            # The file handle too: left to the garbage collector, each dropped segment's handle
            # printed a ResourceWarning (`python -X dev`, pytest), after every refresh() past a
            # merge or a replaced directory and at exit.
            with _GATE:
                for res in (getattr(self, "_conn", None), getattr(self, "_fh", None)):
                    if res is not None:
                        try:
                            res.close()
                        except Exception:  # pragma: no cover - best effort at teardown
                            pass
        except KeyboardInterrupt:
            # Python prints an exception raised in __del__ and drops it ("Exception ignored
            # in ..."): a Ctrl-C landing here (each merged-away segment runs this, so a bulk
            # load meets it often) was swallowed and the program ran on (newcomer11 L2).
            _redeliver_interrupt()

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Hold this file's lock (inside the fork gate), with a file handle of this process."""
        with self._lock, _GATE:
            if self._pid != os.getpid():
                self._reopen_in_child()
            yield

    def _reopen_in_child(self) -> None:
        """In a ``fork()`` child (the at-fork hook gave this file a fresh lock): the connection
        is kept, since no thread was inside SQLite at the fork (:class:`_ForkGate`) and it is
        read-only and immutable (no file locks, no journal, which is what SQLite's rule
        against carrying connections across fork() protects); reopening it failed for a file a
        merge had collected (SQLite resolves ``/proc/self/fd`` links to the deleted name). The
        file handle of the checksum pass and :meth:`copy_to` is replaced: a parent thread may
        have been reading it at the fork (its lock held for good), and the child must not move
        the parent's file offset. It is reopened through the inherited descriptor where the
        system allows (the name may be collected), else by name; the inherited one is kept,
        never used or closed (closing takes its lock)."""
        self._pid = os.getpid()
        old, self._fh = self._fh, None
        if old is None:
            return
        _INHERITED.append(old)
        proc = f"/proc/self/fd/{old.fileno()}"
        for src in (proc, str(self.path)):
            try:
                self._fh = open(src, "rb")
                return
            except OSError:
                continue

    def _corrupt(self, what: str) -> CorruptIndexError:
        return CorruptIndexError(f"corrupt index file: {self.path}: {what}")

    def moved(self) -> bool:
        """Whether the file's stamp differs from the one this handle opened (no read)."""
        try:
            return _stamp(os.stat(self.path)) != self._stamp
        except OSError:
            return False

    def differs_from_record(self) -> str | None:
        """Why the file does not hold what the commit records (found damaged by a read,
        rewritten since opened, or opened again after such a change and failing its checksum
        now), or None. A file never changed under the handle is not read (the first read of
        each checks it); one opened again after a change is read once, in full. A writer that
        carried such a file forward committed an index that failed its checksum at the next
        open (helper-118)."""
        if self.failed:
            if self.moved() and self._holds_record():
                return None  # put back since (the handle's reads open it again at the next refresh)
            return self._failed or "found damaged by a read"
        if self.changed_on_disk():
            return "rewritten since this handle opened it"
        if self.reopened and not self._verified:
            try:
                self._ensure_verified()
            except CorruptIndexError as e:
                return str(e)
        return None

    def changed_on_disk(self) -> bool:
        # SQLite reads the file as immutable (no change counter, a page cache kept across
        # reads): a file rewritten in place under the open handle was read half old, half new,
        # even after refresh() (helper-116), which now opens it again when this says so
        try:
            st = os.stat(self.path)
        except OSError:  # gone (collected after a newer commit): the open handle still reads
            return False
        now = _stamp(st)
        if now == self._stamp:
            return False
        # A stamp moved by something that left the bytes alone (chmod, touch, a hard link
        # made or removed, the same bytes copied in) is no change: the file still holds what
        # the manifest records (helper-118: refresh() said it moved to a newer commit). Reads
        # the file once.
        if st.st_size == self._stamp[2] and self._holds_record():
            self._stamp = now
            return False
        return True

    def _holds_record(self) -> bool:
        """Whether the file now under this segment's name has the CRC32 the manifest records
        (read once, in full, by name; False without a record or when it cannot be read)."""
        if self._crc32 is None:
            return False
        try:
            with open(self.path, "rb") as f:
                return _crc32_of(f, lambda block: None) == self._crc32
        except OSError:
            return False

    def _damaged(self, what: str) -> CorruptIndexError:
        """The error of a read that found the file itself damaged after its first check
        (SQLite cannot read it, or a document row is gone: its bytes changed since, as a file
        rewritten in place under an open index), kept: every later read of this handle raises
        it again, and a ``refresh()`` opens and checks the file anew (helper-114: a later read
        succeeded, and a refresh kept the damaged handle). A stored value that is not what
        ``add()`` stores (a payload that is not one JSON object) fails only the reads of it."""
        e = self._corrupt(what)
        self._failed = str(e)
        self.failed = True
        self._verified = False
        return e

    def _ensure_verified(self) -> None:
        """First read: the file's CRC32 against the manifest's, then the schema."""
        if self._verified:
            return
        with self._locked():
            if self._verified:
                return
            if self._failed is not None:  # found damaged before: the same error on every read
                raise CorruptIndexError(self._failed)
            try:
                crc = self._read_all(lambda block: None)
                if crc != self._crc32:
                    raise self._corrupt("checksum differs from the manifest's (corrupted, or from another index)")
                self._check_schema()
            except CorruptIndexError as e:
                self._failed = str(e)
                self.failed = True
                raise
            self._verified = True

    def _read_all(self, sink: Any) -> int:
        """Pass the whole file, through the handle opened with the segment, to ``sink`` in
        blocks of 1 MiB; returns its CRC32."""
        f = self._fh
        if f is None:
            raise self._corrupt("no open handle to read (closed)")
        f.seek(0)  # the callers hold self._lock: nothing else moves this handle meanwhile
        return _crc32_of(f, sink)

    def copy_to(self, dest: str | os.PathLike[str]) -> None:
        """Write this segment's documents file, byte for byte, to ``dest`` (a new file; the
        caller fsyncs it), from the handle opened with the segment, so that a snapshot whose
        file a newer commit has collected can still be saved. Raises
        :class:`CorruptIndexError` naming this file if its bytes no longer match the
        manifest's CRC32, ``OSError`` naming ``dest`` if it cannot be written."""
        with self._locked():
            try:
                with open(dest, "xb") as out:
                    crc = self._read_all(out.write)
            except CorruptIndexError:
                raise
            except OSError as e:
                raise type(e)(e.errno, f"copying {self.path.name} to {dest}: {e.strerror or e}") from None
        if self._crc32 is not None and crc != self._crc32:
            raise self._corrupt("checksum differs from the manifest's (corrupted, or from another index)")

    def _check_schema(self) -> None:
        try:
            app = self._conn.execute("PRAGMA application_id").fetchone()[0]
            ver = self._conn.execute("PRAGMA user_version").fetchone()[0]
            meta = dict(self._conn.execute("SELECT key, value FROM meta").fetchall())
        except sqlite3.Error as e:
            raise self._corrupt(f"not a sparsedex documents database ({e})") from None
        if app != APPLICATION_ID:
            raise self._corrupt("not a sparsedex documents database (application id)")
        if ver != SCHEMA_VERSION:
            raise self._corrupt(f"documents format version {ver} is not supported (this build reads {SCHEMA_VERSION})")
        if meta.get("format") != DOCS_FORMAT:
            raise self._corrupt(f"not a sparsedex documents database (format {meta.get('format')!r})")
        if meta.get("documents") != str(self.n):
            raise self._corrupt(f"holds {meta.get('documents')} documents, the manifest records {self.n}")
        if self._segment is not None and meta.get("segment") != self._segment:
            raise self._corrupt(f"belongs to segment {meta.get('segment')}, not {self._segment}")

    def _check_range(self, docs: Sequence[int]) -> list[int]:
        """``docs`` as sorted distinct ints, each checked to be a document of the segment."""
        wanted = sorted(set(map(int, docs)))
        for d in wanted[:1] + wanted[-1:]:
            if not 0 <= d < self.n:
                raise IndexError(f"document {d} is out of range ({self.n} documents)")
        return wanted

    def _rows(self, column: str, docs: Sequence[int]) -> dict[int, Any]:
        self._ensure_verified()
        wanted = self._check_range(docs)
        out: dict[int, Any] = {}
        try:
            # the lock and gate of `_locked`, without its generator (each search reads here)
            with self._lock, _GATE:
                if self._pid != os.getpid():
                    self._reopen_in_child()
                if len(wanted) * 4 >= self.n and self.n > _CHUNK:
                    cur = self._conn.execute(f"SELECT doc, {column} FROM docs ORDER BY doc")
                    want = set(wanted)
                    out = {d: v for d, v in cur if d in want}
                else:
                    for a in range(0, len(wanted), _CHUNK):
                        part = wanted[a : a + _CHUNK]
                        q = f"SELECT doc, {column} FROM docs WHERE doc IN ({','.join('?' * len(part))})"
                        out.update(self._conn.execute(q, part).fetchall())
        except sqlite3.Error as e:
            raise self._damaged(f"unreadable ({e})") from None
        if len(out) != len(wanted):
            missing = next(d for d in wanted if d not in out)
            raise self._damaged(f"document {missing} is missing")
        return out

    def _has_payloads(self) -> bool:
        """Whether any document of the file has a payload, from the count its writer recorded
        in ``meta`` (read once): a search of an index without payloads then reads no rows (a
        query of k rows cost about 60 us a search on a small index, `benches/call_overhead.py`).
        A file written before the count existed is read row by row, as before."""
        if self._any_payload is None:
            self._ensure_verified()
            try:
                with self._locked():
                    row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (PAYLOADS_KEY,)).fetchone()
            except sqlite3.Error as e:
                raise self._damaged(f"unreadable ({e})") from None
            if row is None:
                self._any_payload = True
            elif isinstance(row[0], str) and row[0].isascii() and row[0].isdigit() and int(row[0]) <= self.n:
                self._any_payload = int(row[0]) > 0
            else:
                raise self._corrupt(f"the count of payloads in meta is not one of 0..{self.n}: {row[0]!r:.40}")
        return self._any_payload

    def payloads(self, docs: Sequence[int]) -> list[dict[str, Any] | None]:
        if not self._has_payloads():
            self._check_range(docs)
            return [None] * len(docs)
        rows = self._rows("payload", docs)
        try:
            # each stored text must be exactly one JSON value; json.loads per text cost a Python
            # call and two regex matches each (a search reads k payloads), the decoder's
            # raw_decode with an end check a third of that. A text it refuses (whitespace
            # around a value, or damage) goes to json.loads, which names what is wrong.
            values = [None if t is None else _one_json_value(t) for t in rows.values()]
        except ValueError as e:
            raise self._corrupt(f"a payload is not JSON ({e})") from None
        for d, v in zip(rows.keys(), values):
            if v is not None and type(v) is not dict:  # add() stores dicts or None only
                raise self._corrupt(f"the payload of document {d} is not a JSON object: {v!r:.60}")
        cache = dict(zip(rows.keys(), values))
        return [cache[int(d)] for d in docs]

    def texts(self, docs: Sequence[int]) -> list[str | None]:
        rows = self._rows("text", docs)
        return [rows[int(d)] for d in docs]

    def path_values(self, path: str) -> tuple[np.ndarray, list[Any]]:
        keys = path.split(".")
        if not all(_SIMPLE_KEY.match(k) for k in keys):  # a key SQLite's JSON path cannot quote
            all_p = self.all_payloads()
            docs = [i for i, p in enumerate(all_p) if _resolve(p, keys) is not _MISSING]
            return np.asarray(docs, dtype=np.int64), [_resolve(all_p[i], keys) for i in docs]
        self._ensure_verified()
        jpath = "$" + "".join(f'."{k}"' for k in keys)
        # One aggregate row per range of documents: their numbers and the JSON text of their
        # values (``->`` gives a value's JSON text as stored, so numbers and big integers stay
        # exact; SQL NULL where the path is missing), parsed by json.loads over whole arrays
        # instead of a Python step per document. SQLite parses each payload once.
        docs_l: list[int] = []
        vals: list[Any] = []
        try:
            for lo in range(0, max(self.n, 1), _PATH_CHUNK):
                with self._locked():
                    row = self._conn.execute(
                        "SELECT json_group_array(doc), json_group_array(v) FROM "
                        "(SELECT doc, payload -> ?1 AS v FROM docs WHERE doc >= ?2 AND doc < ?3 ORDER BY doc)",
                        (jpath, lo, lo + _PATH_CHUNK),
                    ).fetchone()
                d = json.loads(row[0]) if row and row[0] else []
                texts = json.loads(row[1]) if row and row[1] else []
                if len(d) != len(texts):
                    raise ValueError(f"{len(d)} documents for {len(texts)} values at {path!r}")
                have = [i for i, t in enumerate(texts) if t is not None]
                if len(have) == len(texts):
                    docs_l += d
                else:
                    docs_l += [d[i] for i in have]
                    texts = [texts[i] for i in have]
                if texts:
                    got = json.loads("[" + ",".join(texts) + "]")
                    if len(got) != len(texts):
                        raise ValueError(f"{len(texts)} values at {path!r} read back as {len(got)}")
                    vals += got
        except sqlite3.Error as e:
            raise self._damaged(f"unreadable payloads ({e})") from None
        except (ValueError, TypeError) as e:  # a value's text, not the file: other reads go on
            raise self._corrupt(f"unreadable payloads ({e})") from None
        docs = np.asarray(docs_l, dtype=np.int64)
        if docs.size > 1 and not np.all(docs[1:] > docs[:-1]):  # SQLite gives them in order
            order = np.argsort(docs, kind="stable")
            docs = docs[order]
            vals = [vals[i] for i in order.tolist()]
        return docs, vals

    def close(self) -> None:
        with self._locked():
            self._conn.close()
            if self._fh is not None:
                self._fh.close()
                self._fh = None

    def __repr__(self) -> str:
        return f"SqliteDocs({str(self.path)!r}, {self.n} documents)"


def _create(path: Path, segment: str, n: int) -> sqlite3.Connection:
    with _GATE:
        return _create_in_gate(path, segment, n)


def _create_in_gate(path: Path, segment: str, n: int) -> sqlite3.Connection:
    conn = sqlite3.connect(_sqlite_uri(path), uri=True, isolation_level=None)
    conn.executescript(
        f"""
        PRAGMA journal_mode = OFF;
        PRAGMA synchronous = OFF;
        PRAGMA application_id = {APPLICATION_ID};
        PRAGMA user_version = {SCHEMA_VERSION};
        CREATE TABLE docs (doc INTEGER PRIMARY KEY, payload TEXT, text TEXT);
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT);
        """
    )
    conn.executemany(
        "INSERT INTO meta VALUES (?, ?)",
        [("format", DOCS_FORMAT), ("segment", segment), ("documents", str(n))],
    )
    return conn


#: The ``meta`` entry counting the documents that have a payload (written since stop 61; a file
#: without it is read as before, row by row).
PAYLOADS_KEY = "payloads"


def _record_payloads(conn: sqlite3.Connection, count: int) -> None:
    """Write how many documents of the new database have a payload (``PAYLOADS_KEY``)."""
    with _GATE:
        conn.execute("INSERT INTO meta VALUES (?, ?)", (PAYLOADS_KEY, str(int(count))))


def _publish(tmp: Path, dest: Path, new: bool = False) -> None:
    """fsync ``tmp`` and rename it to ``dest`` (the store fsyncs the directory at commit).
    ``new``: ``dest`` must not exist (a merge's documents: a merge that outlived its writer
    must never replace a file a newer writer committed under the name it had reserved), so
    ``tmp`` is hard-linked to ``dest`` (``FileExistsError`` naming it if it exists) and
    unlinked."""
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    if not new:
        os.replace(tmp, dest)
        return
    taken = FileExistsError(errno.EEXIST, f"{dest} exists already (its name was taken by another writer)", str(dest))
    try:
        os.link(tmp, dest)
    except FileExistsError:
        raise taken from None
    except OSError:  # no hard links on this file system: a rename that checks first
        if dest.exists():
            raise taken from None
        os.replace(tmp, dest)
        return
    os.unlink(tmp)


def _tmp_name(dest: Path) -> Path:
    return dest.with_name(f".{dest.name}.tmp-{os.getpid()}-{threading.get_ident()}")


def _crc32_of(f: Any, sink: Any) -> int:
    """The CRC32 of what is left to read of the binary file ``f``, read in blocks of 1 MiB,
    each passed to ``sink`` too."""
    crc = 0
    for block in iter(lambda: f.read(1 << 20), b""):
        crc = zlib.crc32(block, crc)
        sink(block)
    return crc


def _stamp(st: os.stat_result) -> tuple[int, int, int, int, int]:
    """What tells one file's content from another's under the same name, short of reading it:
    the status-change time too, which a copy that keeps the modification time (``cp -p``,
    ``rsync -a``) still moves (helper-117)."""
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _failed_write(e: BaseException, tmp: Path, what: str) -> None:
    """After writing the documents file ``tmp`` of ``what`` failed with ``e``: remove ``tmp``,
    and raise an SQLite operational error (full disk, I/O error) as ``OSError`` (``ENOSPC`` or
    ``EIO``) naming the segment and the file; other errors return, for the caller to re-raise."""
    try:
        size: int | None = tmp.stat().st_size
    except OSError:
        size = None
    try:
        tmp.unlink()
    except OSError:
        pass
    if isinstance(e, sqlite3.OperationalError):
        full = "full" in str(e)
        code, why = (errno.ENOSPC if full else errno.EIO), ""
        limit = _file_size_limit()
        if not full and limit is not None and size is not None and size + (1 << 20) >= limit:
            # SQLite reports a write refused with EFBIG as "disk I/O error" (helper-114)
            code = errno.EFBIG
            why = f" (the file reached this process's file size limit, {limit:,} bytes: ulimit -f)"
        raise OSError(code, f"writing the documents of {what} ({tmp}): {e}{why}", str(tmp)) from e


def _file_size_limit() -> int | None:
    """This process's file size limit in bytes (RLIMIT_FSIZE), None when unlimited."""
    try:
        import resource

        soft = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    except (ImportError, OSError, ValueError):
        return None
    return None if soft == resource.RLIM_INFINITY else int(soft)


_CHUNK_DOCS = 8192  # payloads per INSERT ... SELECT FROM json_each
_COPY_DOCS = 1 << 16  # documents per INSERT ... SELECT of a merge's copy (one call in the fork gate)
_CHUNK_CHARS = 1 << 26  # ... and at most this much JSON (SQLite's string limit is 1e9 bytes)


def _insert_payloads(conn: sqlite3.Connection, payloads: Sequence[str | None]) -> None:
    """Insert documents ``0..n`` with payloads (stored form) and no texts: the payloads of a
    chunk go to SQLite as one JSON array, unpacked by ``json_each`` (whose ``value`` of an
    object is the object's own JSON text, unchanged; ``null`` is SQL NULL), so a row costs no
    Python-level binding. Without SQLite's JSON functions, one row at a time."""
    n = len(payloads)
    start = 0
    while start < n:
        stop, size = start, 0
        while stop < n and stop - start < _CHUNK_DOCS and size < _CHUNK_CHARS:
            p = payloads[stop]
            size += 5 if p is None else len(p) + 1
            stop += 1
        chunk = payloads[start:stop]
        array = "[" + ",".join("null" if p is None else p for p in chunk) + "]"
        try:
            with _GATE:
                conn.execute(
                    "INSERT INTO docs SELECT ? + key, value, NULL FROM json_each(?)", (start, array)
                )
        except sqlite3.OperationalError as e:  # pragma: no cover - SQLite built without JSON
            if "json_each" not in str(e):
                raise
            with _GATE:
                conn.executemany(
                    "INSERT INTO docs VALUES (?, ?, NULL)", ((start + i, p) for i, p in enumerate(chunk))
                )
        start = stop


def write_docs(
    dest: str | os.PathLike[str],
    segment: str,
    payloads: Sequence[str | None],
    texts: Sequence[str | None] | None,
) -> None:
    """Write a new documents database at ``dest`` (a temporary file, fsynced, renamed).

    ``payloads`` are already in stored form (:func:`payload_json`), one per document in
    internal order; ``texts`` likewise (or None: no texts kept)."""
    dest = Path(dest)
    tmp = _tmp_name(dest)
    n = len(payloads)
    try:
        conn = _create(tmp, segment, n)
        try:
            with _GATE:
                conn.execute("BEGIN")
            if texts is None:
                _insert_payloads(conn, payloads)
            else:
                for a in range(0, n, _CHUNK_DOCS):
                    rows = zip(range(a, a + _CHUNK_DOCS), payloads[a : a + _CHUNK_DOCS], texts[a : a + _CHUNK_DOCS])
                    with _GATE:
                        conn.executemany("INSERT INTO docs VALUES (?, ?, ?)", rows)
            _record_payloads(conn, sum(p is not None for p in payloads))
            with _GATE:
                conn.execute("COMMIT")
        finally:
            with _GATE:
                conn.close()
        _publish(tmp, dest)
    except BaseException as e:
        _failed_write(e, tmp, f"segment {segment}")
        raise


def _fill_map(conn: sqlite3.Connection, new: np.ndarray, old: np.ndarray) -> None:
    """Replace the rows of ``temp.map`` by the pairs ``(new[i], old[i])``: one JSON array
    unpacked by ``json_each`` per chunk (no Python-level binding per row; without SQLite's
    JSON functions, one row at a time)."""
    with _GATE:
        conn.execute("BEGIN")
        conn.execute("DELETE FROM temp.map")
    for a in range(0, new.shape[0], _CHUNK_DOCS * 8):
        nw, ol = new[a : a + _CHUNK_DOCS * 8], old[a : a + _CHUNK_DOCS * 8]
        try:
            with _GATE:
                conn.execute(
                    "INSERT INTO temp.map SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]') "
                    "FROM json_each(?)",
                    (json.dumps(np.stack([nw, ol], axis=1).tolist()),),
                )
        except sqlite3.OperationalError as e:  # pragma: no cover - SQLite built without JSON
            if "json_each" not in str(e) and "json_extract" not in str(e):
                raise
            with _GATE:
                conn.executemany("INSERT INTO temp.map VALUES (?, ?)", zip(nw.tolist(), ol.tolist()))
    with _GATE:
        conn.execute("COMMIT")


class CopyCancelled(Exception):
    """A documents copy stopped by :meth:`CopyCancel.cancel`."""


class CopyCancel:
    """Lets another thread stop a documents copy (:func:`merge_docs`): :meth:`cancel`
    interrupts the SQLite statement it runs (``sqlite3.Connection.interrupt``, made to be
    called from another thread) and makes it stop before its next step, raising
    :class:`CopyCancelled`; its temporary file is removed and nothing is published."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self.cancelled = False

    def cancel(self) -> None:
        with self._lock:
            self.cancelled = True
            if self._conn is not None:
                self._conn.interrupt()

    def check(self) -> None:
        if self.cancelled:
            raise CopyCancelled("documents copy cancelled")

    def attach(self, conn: sqlite3.Connection) -> None:
        """Make ``cancel`` interrupt ``conn`` (raises :class:`CopyCancelled` if it was
        cancelled already)."""
        with self._lock:
            self._conn = conn
        self.check()

    def detach(self) -> None:
        """Before the connection closes: ``cancel`` no longer touches it."""
        with self._lock:
            self._conn = None


def merge_docs(
    dest: str | os.PathLike[str],
    segment: str,
    members: Sequence[SegmentDocs],
    origin_member: np.ndarray,
    origin_doc: np.ndarray,
    keep_texts: bool,
    cancel: CopyCancel | None = None,
) -> None:
    """Write the documents database of a merged segment: document ``j`` of the new segment is
    document ``origin_doc[j]`` of ``members[origin_member[j]]`` (as the engine's merge reports
    it). SQLite members are copied inside SQLite (attached, joined on a mapping table).
    ``cancel``: stops the copy from another thread (:class:`CopyCancel`; raises
    :class:`CopyCancelled`, nothing written)."""
    dest = Path(dest)
    cancel = cancel or CopyCancel()
    tmp = _tmp_name(dest)
    om = np.asarray(origin_member, dtype=np.int64)
    od = np.asarray(origin_doc, dtype=np.int64)
    if om.shape != od.shape:
        raise ValueError("origin arrays differ in length")
    n = int(om.shape[0])
    try:
        cancel.check()
        conn = _create(tmp, segment, n)
        try:
            cancel.attach(conn)
            with _GATE:
                conn.execute("CREATE TEMP TABLE map (new INTEGER PRIMARY KEY, old INTEGER NOT NULL)")
            for i, m in enumerate(members):
                cancel.check()
                new = np.flatnonzero(om == i)
                if new.size == 0:
                    continue
                old = od[new]
                # a run of consecutive documents landing on consecutive new numbers (a merge
                # that concatenates members, no deletions in between) needs no mapping table
                run = bool(np.all(np.diff(new) == 1) and np.all(np.diff(old) == 1))
                if isinstance(m, SqliteDocs):
                    m._ensure_verified()
                    if not run:
                        _fill_map(conn, new, old)
                    cancel.check()
                    with _GATE:
                        conn.execute("ATTACH DATABASE ? AS src", (_sqlite_uri(m.path, "mode=ro&immutable=1"),))
                    try:
                        text = "s.text" if keep_texts else "NULL"
                        with _GATE:
                            conn.execute("BEGIN")
                        # in bounded ranges of documents, each one call inside the fork gate
                        for a in range(0, new.size, _COPY_DOCS):
                            lo, hi = a, min(a + _COPY_DOCS, new.size) - 1
                            with _GATE:
                                if run:
                                    conn.execute(
                                        f"INSERT INTO main.docs SELECT s.doc + ?, s.payload, {text} "
                                        "FROM src.docs AS s WHERE s.doc BETWEEN ? AND ? ORDER BY s.doc",
                                        (int(new[0] - old[0]), int(old[lo]), int(old[hi])),
                                    )
                                else:
                                    conn.execute(
                                        f"INSERT INTO main.docs SELECT map.new, s.payload, {text} "
                                        "FROM temp.map AS map JOIN src.docs AS s ON s.doc = map.old "
                                        "WHERE map.new BETWEEN ? AND ? ORDER BY map.new",
                                        (int(new[lo]), int(new[hi])),
                                    )
                        with _GATE:
                            conn.execute("COMMIT")
                    finally:
                        with _GATE:
                            conn.execute("DETACH DATABASE src")
                else:
                    ol = old.tolist()
                    pls = payloads_json(m.stored_payloads(ol))
                    txs = m.texts(ol) if keep_texts else [None] * len(ol)
                    with _GATE:
                        conn.execute("BEGIN")
                        conn.executemany("INSERT INTO docs VALUES (?, ?, ?)", zip(new.tolist(), pls, txs))
                        conn.execute("COMMIT")
            with _GATE:
                count, with_payload = conn.execute("SELECT count(*), count(payload) FROM docs").fetchone()
            if count != n:
                raise CorruptIndexError(f"merging documents into {dest.name}: {count} rows copied, expected {n}")
            _record_payloads(conn, with_payload)
        finally:
            cancel.detach()
            with _GATE:
                conn.close()
        cancel.check()
        _publish(tmp, dest, new=True)
    except BaseException as e:
        if cancel.cancelled:
            try:
                tmp.unlink()
            except OSError:
                pass
            raise CopyCancelled(f"documents copy of merged segment {segment} cancelled") from None
        _failed_write(e, tmp, f"merged segment {segment}")
        raise
