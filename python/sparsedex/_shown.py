"""Values cut for error messages (no imports: every module may use it)."""

from __future__ import annotations

from typing import Any


def shown(x: Any, limit: int = 120) -> str:
    """``repr(x)`` for a message, cut to about ``limit`` characters with its length said (an id
    of a million characters made a KeyError of a million, breaker34)."""
    if isinstance(x, int) and x.bit_length() > 10_000:  # repr() refuses ints past 4,300 digits
        return f"<an integer of about {round(x.bit_length() * 0.30103):,} digits>"
    r = repr(x)
    if len(r) <= limit:
        return r
    n = (
        f"{len(x):,} characters" if isinstance(x, str)
        else f"{len(x):,} bytes" if isinstance(x, (bytes, bytearray))
        else f"{len(r):,} characters as repr"
    )
    return f"{r[: limit - 20]}... ({n})"


def cut(s: str, limit: int = 120) -> str:
    """A text already written for a message (a field path, a label), cut likewise."""
    return s if len(s) <= limit else f"{s[: limit - 20]}... ({len(s):,} characters)"
