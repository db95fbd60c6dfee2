"""Retrievers for LLM frameworks, as optional extras.

- :mod:`sparsedex.retrievers.langchain` (``pip install 'sparsedex[langchain]'``):
  :class:`~sparsedex.retrievers.langchain.SparsedexRetriever`, a langchain-core
  ``BaseRetriever`` returning ``Document`` objects.
- :mod:`sparsedex.retrievers.llama_index` (``pip install 'sparsedex[llamaindex]'``):
  :class:`~sparsedex.retrievers.llama_index.SparsedexRetriever`, a llama-index-core
  ``BaseRetriever`` returning ``NodeWithScore`` objects.

Both run :meth:`SparseIndex.search <sparsedex.SparseIndex.search>` with the query text and any
search keywords given (``filter``, ``query_filter``, ``score_threshold``...), and put each
hit's stored text in the document's text, its payload in the metadata, and its id and score
beside them. Neither framework is imported by ``import sparsedex``.
"""

from __future__ import annotations

from typing import Any

__all__ = ["hit_text", "hit_metadata"]


def hit_text(index: Any, hit: Any) -> str:
    """The stored text of a hit's document ('' when the index keeps no texts)."""
    text = index.get(hit.id).text if index.store_texts else None
    return "" if text is None else text


def hit_metadata(hit: Any, id_key: str, score_key: str | None) -> dict[str, Any]:
    """The hit's payload, plus its id (and score) under ``id_key`` (``score_key``)."""
    meta = dict(hit.payload) if hit.payload else {}
    meta[id_key] = hit.id
    if score_key is not None:
        meta[score_key] = hit.score
    return meta
