"""sparsedex: learned sparse retrieval (SPLADE, BM25, your own vectors) with a Rust core.

Exact top-k search, fast, with every match explainable term by term.
"""

from ._core import CorruptIndexError, SparsedexError
from .vector_index import VectorIndex

__all__ = ["VectorIndex", "SparsedexError", "CorruptIndexError"]
