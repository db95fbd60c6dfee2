"""The one rule for reading the text files sparsedex takes (corpus and queries JSONL / TSV,
qrels, runs): UTF-8, with an optional UTF-8 byte-order mark at the very start, which is
dropped (Python's ``utf-8-sig``), so a file saved by a Windows tool reads the same as one
without the mark. Any other byte that is not UTF-8 is an error naming the file, the line
and the byte. Line ends are kept (``\\n``, ``\\r\\n``); callers strip them.

The name ``-`` (the str, as the command line gives it) reads standard input, by the same
rule; a file named ``-`` is ``./-``.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

BOM = b"\xef\xbb\xbf"


#: Magic numbers of compressed files, for the error on their first line (helper-137).
_COMPRESSED = ((b"\x1f\x8b", "gzip"), (b"BZh", "bzip2"), (b"\xfd7zXZ\x00", "xz"), (b"\x28\xb5\x2f\xfd", "zstd"))


#: The input file name that means standard input (the command line's convention).
STDIN = "-"


def is_stdin(path: Any) -> bool:
    """Whether ``path`` names standard input: the str ``-`` (not ``Path("-")``, which is also
    what ``./-``, a file of that name, becomes)."""
    return isinstance(path, str) and path == STDIN


def file_name(path: Any) -> str:
    """How messages name an input file: ``standard input`` for ``-`` ("-:2: bad JSON line" read
    as no file at all), ``./-`` for a file of that name, else the path."""
    if is_stdin(path):
        return "standard input"
    name = str(Path(path))
    return "./-" if name == "-" else name


#: Lines of standard input that :func:`first_content_bytes` read ahead: ``[stream, lines]``,
#: given back to the next reader of that stream (a pipe cannot be read twice).
_read_ahead: list[Any] = [None, []]


def _stdin_lines(peek: bool) -> Iterator[bytes]:
    """The lines of standard input, those read ahead first; with ``peek`` the lines read are
    kept for the next reader."""
    stream = sys.stdin.buffer
    if _read_ahead[0] is not stream:
        _read_ahead[:] = [stream, []]
    ahead: list[bytes] = _read_ahead[1]
    if peek:
        yield from list(ahead)
        for raw in stream:
            ahead.append(raw)
            yield raw
        return
    while ahead:
        yield ahead.pop(0)
    yield from stream


@contextlib.contextmanager
def _raw_lines(path: Any, peek: bool = False) -> Iterator[Any]:
    """The byte lines of a file, or of standard input when ``path`` is ``-``."""
    if is_stdin(path):
        yield _stdin_lines(peek)
    else:
        with Path(path).open("rb") as f:
            yield f


def utf8_lines(path: str | os.PathLike[str]) -> Iterator[tuple[int, str]]:
    """``(line number, line)`` of a UTF-8 text file, numbered from 1, a leading BOM dropped.

    Raises ``ValueError("FILE:LINE: not UTF-8 text (byte 0xNN at column C)")`` at the first
    line that is not UTF-8 (columns count bytes after the BOM), and ``OSError`` when the
    file cannot be opened. ``-`` reads standard input.
    """
    p = file_name(path)
    with _raw_lines(path) as f:
        for lineno, raw in enumerate(f, 1):
            if lineno == 1 and raw.startswith(BOM):
                raw = raw[len(BOM):]
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                packed = next((k for m, k in _COMPRESSED if lineno == 1 and raw.startswith(m)), None)
                raise ValueError(
                    f"{p}:{lineno}: not UTF-8 text (byte 0x{raw[e.start]:02x} at column {e.start + 1})"
                    + (f"; the file looks {packed}-compressed: decompress it first" if packed else "")
                ) from None
            yield lineno, line


def first_content_bytes(path: str | os.PathLike[str]) -> bytes:
    """The first non-blank line of a file, stripped, a leading BOM dropped (b"" if none).
    Of standard input (``-``), the lines read are given back to the next reader."""
    with _raw_lines(path, peek=True) as f:
        for lineno, raw in enumerate(f, 1):
            if lineno == 1 and raw.startswith(BOM):
                raw = raw[len(BOM):]
            if raw.strip():
                return raw.strip()
    return b""
