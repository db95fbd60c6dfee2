"""sparsedex: learned sparse retrieval (SPLADE, BM25, your own vectors) with a Rust core.

Exact top-k search, fast, with every match explainable term by term.

>>> from sparsedex import SparseIndex
>>> index = SparseIndex("splade-tiny")        # bundled model, works offline  # doctest: +SKIP
>>> index.add(["Spinal Tap, one of England's loudest bands, ..."])            # doctest: +SKIP
>>> index.search("A movie about music")                                       # doctest: +SKIP
"""

from importlib.metadata import PackageNotFoundError, version as _version

import os as _os

from ._core import Bm25Stats, ConflictError, CorruptIndexError, SparsedexError
from ._core import _after_fork

# A fork()ed child (multiprocessing's default on Linux) has none of the parent's engine
# threads: tell the engine, so that its parallel work uses a pool of the child's own.
if hasattr(_os, "register_at_fork"):
    _os.register_at_fork(after_in_child=_after_fork)
from . import errors, fusion
from .embedding import SparseTextEmbedding
from .encoders import (
    Analyzer,
    Bm25Encoder,
    FastembedBm25Encoder,
    ModelNotAvailableError,
    ProviderNotAvailableError,
    SpladeEncoder,
    list_supported_models,
)
from .filters import FilterError, PayloadError
from .index import Document, Explanation, Hit, SparseIndex, TermMatch
from .store import ClosedIndexError, IndexLockedError, MergePolicy
from .vectors import SparseEmbedding

try:
    __version__ = _version("sparsedex")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0+unknown"

__all__ = [
    "SparseIndex",
    "Hit",
    "Document",
    "Explanation",
    "TermMatch",
    "SparseEmbedding",
    "SparseTextEmbedding",
    "SpladeEncoder",
    "Bm25Encoder",
    "FastembedBm25Encoder",
    "Analyzer",
    "list_supported_models",
    "ModelNotAvailableError",
    "ProviderNotAvailableError",
    "SparsedexError",
    "Bm25Stats",
    "CorruptIndexError",
    "ConflictError",
    "IndexLockedError",
    "ClosedIndexError",
    "PayloadError",
    "errors",
    "MergePolicy",
    "FilterError",
    "fusion",
    "__version__",
]


def __getattr__(name: str):  # noqa: ANN202 - module attribute hook (PEP 562)
    if name == "VectorIndex":
        raise AttributeError(
            "sparsedex.VectorIndex was removed in 0.2: there is one index class, SparseIndex. "
            "Build from vectors you bring with SparseIndex(None).add(vectors, ids=...) (CSR "
            "arrays and scipy matrices included), or SparseIndex.create(path) for a durable one; "
            "SparseIndex.open(path) opens a directory a VectorIndex saved."
        )
    raise AttributeError(f"module 'sparsedex' has no attribute {name!r}")
