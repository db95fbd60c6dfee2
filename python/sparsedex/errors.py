"""The exceptions sparsedex raises, in one family.

Every error of our own derives from :class:`SparsedexError`, so ``except SparsedexError``
catches all of them; each also derives from the built-in exception a Python user would
expect for its kind, so ``except ValueError`` / ``except FileNotFoundError`` keep working:

====================================  ==========================================================
exception                             raised when
====================================  ==========================================================
:class:`SparsedexError`               base class (raised by the core for invalid arguments it
                                      finds, with a message naming the field)
:class:`CorruptIndexError`            an index file is truncated, damaged, of an unknown format
                                      version, or not an index file
:class:`ConflictError`                another writer changed the index meanwhile, or calls came
                                      in the wrong order
:class:`IndexLockedError`             another writer holds the index's ``LOCK``
:class:`FilterError` (``ValueError``)  a filter expression is malformed (names the clause)
:class:`PayloadError` (``ValueError``) a payload cannot be stored or filtered on
:class:`ModelNotAvailableError`       a model is neither bundled, cached nor downloadable
(``FileNotFoundError``)
:class:`ProviderNotAvailableError`    an ONNX Runtime execution provider (e.g. CUDA) was asked
(``RuntimeError``)                    for and is not available
====================================  ==========================================================

Input errors found at the door (a bad vector, id, payload or size) are plain
:class:`ValueError` / :class:`TypeError` naming the document and field, as numpy and the
standard library do.
"""

from __future__ import annotations

from ._core import ConflictError, CorruptIndexError, SparsedexError
from .encoders.providers import ProviderNotAvailableError
from .encoders.registry import ModelNotAvailableError
from .filters import FilterError, PayloadError
from .store import IndexLockedError

__all__ = [
    "SparsedexError",
    "CorruptIndexError",
    "ConflictError",
    "IndexLockedError",
    "FilterError",
    "PayloadError",
    "ModelNotAvailableError",
    "ProviderNotAvailableError",
]
