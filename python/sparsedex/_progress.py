"""A small progress helper on top of tqdm.

``progress_bar(total, desc, enabled)`` returns a tqdm bar or a do-nothing stand-in with the
same ``update`` / ``close`` / context-manager surface. ``enabled=None`` (auto) shows a bar
only when stderr is a terminal, the job is long enough (``total >= min_total``, unknown
totals count as long) and ``SPARSEDEX_PROGRESS`` is not set to ``0``/``false``/``off``.
``enabled=True`` forces a bar (still written to stderr); ``False`` never shows one.
"""

from __future__ import annotations

import os
import sys
from typing import Any

__all__ = ["progress_bar", "progress_enabled"]

_OFF = {"0", "false", "no", "off"}


def progress_enabled(enabled: bool | None, total: int | None = None, min_total: int = 1) -> bool:
    """Decide whether to show a bar (see the module docstring)."""
    if enabled is not None:
        return bool(enabled)
    if os.environ.get("SPARSEDEX_PROGRESS", "").strip().lower() in _OFF:
        return False
    if total is not None and total < min_total:
        return False
    stream = sys.stderr
    try:
        return bool(stream is not None and stream.isatty())
    except (AttributeError, ValueError):
        return False


class _NullBar:
    """Stand-in for a disabled bar."""

    n = 0

    def update(self, n: int = 1) -> None:
        self.n += n

    def set_postfix_str(self, *args: Any, **kwargs: Any) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self) -> _NullBar:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def progress_bar(
    total: int | None,
    desc: str,
    enabled: bool | None = None,
    *,
    unit: str = "it",
    min_total: int = 1,
) -> Any:
    """A tqdm bar when :func:`progress_enabled` says so, else a silent stand-in."""
    if not progress_enabled(enabled, total, min_total):
        return _NullBar()
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, dynamic_ncols=True, leave=False)
