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
beside them under ``sparsedex_id`` / ``sparsedex_score`` (or the keys chosen with
``id_key`` / ``score_key``). A payload's own keys are never overwritten: a payload that holds
one of those keys is a ValueError naming the document (choose other keys). Both warn when
built over an index that keeps no texts (every document's text is then ""). Neither framework
is imported by ``import sparsedex``.
"""

from __future__ import annotations

from typing import Any

from .._validate import shown

__all__ = ["hit_text", "hit_metadata", "check_top_k", "warn_if_no_texts"]


def hit_text(index: Any, hit: Any) -> str:
    """The stored text of a hit's document ('' when the index keeps no texts)."""
    text = index.get(hit.id).text if index.store_texts else None
    return "" if text is None else text


def hit_metadata(hit: Any, id_key: str, score_key: str | None) -> dict[str, Any]:
    """The hit's payload, plus its id (and score) under ``id_key`` (``score_key``).

    Raises ValueError if the payload already holds ``id_key`` or ``score_key`` (its value is
    never overwritten silently)."""
    meta = dict(hit.payload) if hit.payload else {}
    for key in (id_key, score_key):
        if key is not None and key in meta:
            raise ValueError(
                f"document {shown(hit.id)}: its payload has a key {key!r}, the metadata key the retriever "
                f"puts the hit's {'id' if key == id_key else 'score'} under; pass another "
                f"{'id_key' if key == id_key else 'score_key'}= to the retriever"
            )
    meta[id_key] = hit.id
    if score_key is not None:
        meta[score_key] = hit.score
    return meta


def check_top_k(k: Any, name: str) -> int:
    """A retriever's number of hits: an integer in ``1 .. 2**63 - 1`` (ValueError/TypeError)."""
    from .. import _validate

    return _validate.check_int(k, name, 1, _validate.MAX_K)


def warn_if_no_texts(index: Any, stacklevel: int = 3) -> None:
    """Warn that an index keeping no texts gives documents with an empty text."""
    if not index.store_texts:
        import warnings

        warnings.warn(
            "this index keeps no texts (store_texts=False): every retrieved document's text will be ''",
            UserWarning,
            stacklevel=stacklevel,
        )
