"""The one-writer lock of an index directory.

An index directory has at most one writer at a time. The first write (add, upsert, delete,
commit, merge) of a :class:`~sparsedex.SparseIndex` takes the lock on the directory's ``LOCK``
file; :meth:`~sparsedex.SparseIndex.close` releases it. Readers never lock.

The lock is the ``filelock`` package's (``fcntl.flock`` on POSIX, ``LockFileEx`` on Windows):
held by the open file, released when the process ends however it ends, and handled across
``fork``: a forked child (a ``multiprocessing`` worker) does not hold it and cannot release
the parent's hold, and the parent's release frees the directory even while such children live.

A lock file can be deleted while held (by hand, or by a tool cleaning a directory). A second
writer would then create a new ``LOCK`` and lock that. So the holder checks, before every
commit point, that ``LOCK`` is still the file it locked (same device and inode) and still holds
what it wrote there (a token of this hold: files copied into the directory overwrite it in
place); if not, the commit is refused with :class:`IndexLockedError` and nothing is published.

The holder's process id and host are written into ``LOCK`` for the error a second writer gets.

Calibrations of approximate search take a second lock, :func:`calibration_lock`, on the
directory's ``CALIBRATE.LOCK`` file: readers too. A calibration takes every core for seconds
(half a minute for a large BM25 segment) and is written to the segment's ``seg-<N>.cal`` file,
so processes that open a fresh index together (a server's workers) calibrate one after another
and all but the first read the first one's file, rather than each calibrating beside the others.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import shutil
import socket
import stat
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import filelock

from ._core import SparsedexError

__all__ = ["IndexLockedError", "WriterLock", "LOCK_FILE", "CALIBRATION_LOCK_FILE", "calibration_lock"]

LOCK_FILE = "LOCK"
CALIBRATION_LOCK_FILE = "CALIBRATE.LOCK"


class IndexLockedError(SparsedexError):
    """Another writer holds the index's writer lock (or took it over while we held it)."""


class WriterLock:
    """The writer lock of ``directory`` (not taken until :meth:`acquire`)."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)
        self.path = self.directory / LOCK_FILE
        self._lock: filelock.BaseFileLock | None = None
        self._identity: tuple[int, int] | None = None
        self._content = b""
        self._pid = os.getpid()

    @property
    def held(self) -> bool:
        """Whether this process holds the lock through this object."""
        return self._lock is not None and self._pid == os.getpid() and self._lock.is_locked

    def _holder(self) -> str:
        # A writer takes the lock, then writes who it is: a loser reading in between finds the
        # file empty, so it looks again for up to 0.1 s (helper-92: "unknown holder" in races)
        raw = b""
        for attempt in range(21):
            if attempt:
                time.sleep(0.005)
            try:
                with open(self.path, "rb") as f:
                    raw = f.read(200)
            except OSError:
                raw = b""
            if raw.strip():
                break
        # what a writer wrote there ("pid N on host"); anything else is shown only in part
        text = "".join(c if c.isprintable() else "?" for c in raw.decode("utf-8", errors="replace")).strip()
        return (text[:100] + "…" if len(text) > 100 else text) or "unknown holder"

    def acquire(self) -> None:
        """Take the lock now, or raise :class:`IndexLockedError` naming the holder."""
        if self.held:
            return
        try:
            mode = os.lstat(self.path).st_mode
        except OSError:
            mode = None  # missing: filelock creates it (other errors: its open names them below)
        if mode is not None and stat.S_ISLNK(mode):
            # refused: filelock opens with O_NOFOLLOW, and said only "Too many levels of symbolic
            # links" (helper-145); a lock taken through a link would lock the file it names
            try:
                target = os.readlink(self.path)
            except OSError:
                target = "?"
            raise OSError(
                errno.ELOOP,
                f"the writer lock {self.path.name} is a symbolic link (to {target}), not a lock file: remove it",
                str(self.path),
            )
        if mode is not None and not stat.S_ISREG(mode):
            # a FIFO or a device: filelock opened it, and the holder line's write failed with a
            # bare "File or stream is not seekable" (helper-139)
            is_dir = stat.S_ISDIR(mode)
            raise (IsADirectoryError if is_dir else OSError)(
                errno.EISDIR if is_dir else errno.EINVAL,
                f"the writer lock {self.path.name} is {'a directory' if is_dir else 'not a regular file'}, "
                "not a lock file: remove it",
                str(self.path),
            )
        lock = filelock.FileLock(str(self.path), timeout=0, thread_local=False, is_singleton=False)
        try:
            lock.acquire()
        except filelock.Timeout:
            raise IndexLockedError(
                f"{self.directory} is being written by another writer ({self._holder()}); one "
                "writer at a time: close() the other index, or open this one only to read"
            ) from None
        except OSError as e:  # not a lock we could take at all
            raise type(e)(e.errno, f"the writer lock {self.path.name} cannot be opened ({e.strerror or e})",
                          str(self.path)) from None
        try:
            st = os.stat(self.path)
            # who holds it, for a second writer's error, and a token of this hold: a copy into
            # the directory (`cp -r backup/. ix/`) overwrites the file in place, keeping its
            # inode, and only its content tells (helper-87)
            content = f"pid {os.getpid()} on {socket.gethostname()} (hold {secrets.token_hex(8)})".encode()
            with open(self.path, "r+b") as f:
                f.truncate(0)
                f.write(content)
                f.flush()
        except OSError:
            lock.release()
            raise
        self._lock = lock
        self._identity = (st.st_dev, st.st_ino)
        self._content = content
        self._pid = os.getpid()

    def check_process(self) -> None:
        """Raise :class:`IndexLockedError` in a ``fork()``ed child of the process that took the
        lock: the child does not hold it, and must open the index itself to write."""
        if self._lock is not None and self._pid != os.getpid():
            raise IndexLockedError(
                f"{self.directory}: this writer was opened in process {self._pid}; a fork()ed child "
                f"(process {os.getpid()}) cannot write through it: open the index again in the child"
            )

    def check(self) -> None:
        """Raise :class:`IndexLockedError` unless the lock is held and ``LOCK`` is still the
        file that was locked (it was not deleted or replaced meanwhile)."""
        self.check_process()
        if not self.held:
            raise IndexLockedError(f"{self.directory}: this index does not hold the writer lock")
        try:
            st = os.stat(self.path)
            same = (st.st_dev, st.st_ino) == self._identity
        except FileNotFoundError:
            same = False
        if not same:
            raise IndexLockedError(
                f"{self.path} was deleted or replaced while this writer held it: another writer may "
                "have taken the index over; nothing was committed. close() and open the index again"
            )
        try:
            with open(self.path, "rb") as f:
                content = f.read(len(self._content) + 64).strip()
        except OSError:
            content = b""
        # empty: truncated by another process's attempt to take the lock (filelock 3.x opened
        # the file with O_TRUNC), not a copy; a copy brings another hold's non-empty text.
        # Whitespace around the text (an editor's final newline) is not another hold.
        if content and content != self._content:
            raise IndexLockedError(
                f"{self.path} was overwritten while this writer held it (files copied into the index "
                "directory, such as a backup restored with cp): the directory may no longer hold what this "
                "writer knows; nothing was committed. close() and open the index again"
            )

    def release(self) -> None:
        """Release the lock (no-op if not held, or in a forked child)."""
        lock, self._lock = self._lock, None
        self._identity = None
        if lock is not None and self._pid == os.getpid():
            lock.release(force=True)

    def __repr__(self) -> str:
        return f"WriterLock({str(self.path)!r}, held={self.held})"


@contextlib.contextmanager
def calibration_lock(directory: str | os.PathLike[str] | None, step: float = 0.05) -> Iterator[bool]:
    """Hold the calibration lock of index ``directory`` (``CALIBRATE.LOCK``, ``filelock``)
    across processes while the body runs; yields whether it is held. Waited for in ``step``
    second tries, so that Ctrl-C (KeyboardInterrupt) stops the wait. Best effort: without a
    directory (an index in memory), or where the file cannot be made or opened (a read-only
    directory, a directory in its place), the body runs without it, as the calibration then
    runs in memory only anyway (a RuntimeWarning, once per directory, says so when the path is
    unusable); nor where calibrations could not be written for others to read (a read-only
    directory, under :data:`MIN_FREE_FOR_CALIBRATION` free bytes). Released when the process
    ends, however it ends."""
    lock = None
    if directory is not None and _calibrations_persist(Path(directory)):
        candidate = filelock.FileLock(
            str(Path(directory) / CALIBRATION_LOCK_FILE), thread_local=False, is_singleton=False
        )
        try:
            start, told = time.monotonic(), False
            while True:
                try:
                    candidate.acquire(timeout=step, poll_interval=min(step, 0.01))
                    break
                except filelock.Timeout:
                    if not told and time.monotonic() - start >= WAIT_MESSAGE_AFTER:
                        _tell_waiting(directory)
                        told = True
                    continue
            lock = candidate
        except OSError as e:
            _warn_once(
                Path(directory),
                f"{directory}: the calibration lock {CALIBRATION_LOCK_FILE} cannot be used "
                f"({e.strerror or e}); processes calibrate this index side by side. Remove what is in its place",
            )
    try:
        yield lock is not None
    finally:
        if lock is not None:
            lock.release(force=True)


#: Free bytes below which calibration files are not expected to be written (a segment's
#: ``seg-<N>.cal`` is tens of KB): processes then calibrate side by side, not one after another.
MIN_FREE_FOR_CALIBRATION = 4 << 20

_warned: set[Path] = set()

#: Seconds of waiting for another process's calibration after which a terminal is told so.
WAIT_MESSAGE_AFTER = 1.0


def _tell_waiting(directory: str | os.PathLike[str]) -> None:
    """One line on a terminal's stderr while this process waits for another's calibration
    (a stopped calibrator would otherwise keep it waiting without a word: helper-110)."""
    err = sys.stderr
    try:
        if err is None or not err.isatty():
            return
        print(
            f"sparsedex: waiting for another process's calibration of {directory} "
            f"({CALIBRATION_LOCK_FILE}); it is read when done",
            file=err,
            flush=True,
        )
    except (OSError, ValueError):  # a closed or broken stderr
        pass


def _calibrations_persist(directory: Path) -> bool:
    """Whether a calibration made now is likely to reach its ``.cal`` file in ``directory``,
    so that processes waiting for it can read it. Otherwise (a read-only directory, a full
    disk) each of N waiting processes would calibrate in turn, the last after N calibrations
    (helper-110: 9 / 18 / 28 s for three processes on a full disk), so the lock is not taken."""
    try:
        if not os.access(directory, os.W_OK):
            return False
        return shutil.disk_usage(directory).free >= MIN_FREE_FOR_CALIBRATION
    except OSError:
        return False


def _warn_once(directory: Path, message: str) -> None:
    key = directory.resolve()
    if key not in _warned:
        _warned.add(key)
        warnings.warn(message, RuntimeWarning, stacklevel=4)
