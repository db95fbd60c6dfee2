"""The one rule for reading the text files sparsedex takes (corpus and queries JSONL / TSV,
qrels, runs): UTF-8, with an optional UTF-8 byte-order mark at the very start, which is
dropped (Python's ``utf-8-sig``), so a file saved by a Windows tool reads the same as one
without the mark. Any other byte that is not UTF-8 is an error naming the file, the line
and the byte. Line ends are kept (``\\n``, ``\\r\\n``); callers strip them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

BOM = b"\xef\xbb\xbf"


#: Magic numbers of compressed files, for the error on their first line (helper-137).
_COMPRESSED = ((b"\x1f\x8b", "gzip"), (b"BZh", "bzip2"), (b"\xfd7zXZ\x00", "xz"), (b"\x28\xb5\x2f\xfd", "zstd"))


def utf8_lines(path: str | Path) -> Iterator[tuple[int, str]]:
    """``(line number, line)`` of a UTF-8 text file, numbered from 1, a leading BOM dropped.

    Raises ``ValueError("FILE:LINE: not UTF-8 text (byte 0xNN at column C)")`` at the first
    line that is not UTF-8 (columns count bytes after the BOM), and ``OSError`` when the
    file cannot be opened.
    """
    p = Path(path)
    with p.open("rb") as f:
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


def first_content_bytes(path: str | Path) -> bytes:
    """The first non-blank line of a file, stripped, a leading BOM dropped (b"" if none)."""
    with Path(path).open("rb") as f:
        for lineno, raw in enumerate(f, 1):
            if lineno == 1 and raw.startswith(BOM):
                raw = raw[len(BOM):]
            if raw.strip():
                return raw.strip()
    return b""
