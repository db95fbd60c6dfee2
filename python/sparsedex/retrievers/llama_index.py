"""A LlamaIndex retriever over a :class:`~sparsedex.SparseIndex` (``pip install 'sparsedex[llamaindex]'``).

>>> from sparsedex import SparseIndex
>>> from sparsedex.retrievers.llama_index import SparsedexRetriever
>>> retriever = SparsedexRetriever(SparseIndex.open("movies-index"), similarity_top_k=3)  # doctest: +SKIP
>>> retriever.retrieve("A movie about music")[0].node.metadata["title"]                     # doctest: +SKIP
'This Is Spinal Tap'

``retrieve`` runs synchronously; ``aretrieve`` runs the search in an executor thread (the
engine releases the GIL while it searches).
"""

from __future__ import annotations

import asyncio
from typing import Any

try:
    from llama_index.core.retrievers import BaseRetriever
    from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode
except ImportError as e:  # pragma: no cover - exercised when the extra is missing
    raise ImportError(
        "sparsedex.retrievers.llama_index needs llama-index-core: pip install 'sparsedex[llamaindex]'"
    ) from e

from . import hit_metadata, hit_text

__all__ = ["SparsedexRetriever"]


class SparsedexRetriever(BaseRetriever):
    """Nodes for a query from a sparsedex index, best first.

    Parameters
    ----------
    index:
        The :class:`~sparsedex.SparseIndex` (with an encoder: queries are texts).
    similarity_top_k:
        How many nodes (default 10).
    search_kwargs:
        More keywords for :meth:`SparseIndex.search <sparsedex.SparseIndex.search>`:
        ``filter``, ``query_filter``, ``score_threshold``, ``with_payload``, ``algorithm``.
    id_key:
        Metadata key for the hit's id (the node's ``id_`` is ``str(hit.id)``).
    **kwargs:
        ``callback_manager``, ``verbose``... for LlamaIndex's ``BaseRetriever``.

    Each ``NodeWithScore`` holds a ``TextNode`` (text = the stored text, "" if the index keeps
    no texts; metadata = the payload plus the id) and the hit's score.
    """

    def __init__(
        self,
        index: Any,
        similarity_top_k: int = 10,
        search_kwargs: dict[str, Any] | None = None,
        id_key: str = "id",
        **kwargs: Any,
    ) -> None:
        from ..index import SparseIndex

        if not isinstance(index, SparseIndex):
            raise TypeError(f"index must be a sparsedex.SparseIndex, got {type(index).__name__}")
        search_kwargs = dict(search_kwargs or {})
        for key in ("k", "limit"):
            if key in search_kwargs:
                raise ValueError(f"search_kwargs: set similarity_top_k, not {key!r}")
        self._index = index
        self._top_k = similarity_top_k
        self._search_kwargs = search_kwargs
        self._id_key = id_key
        super().__init__(**kwargs)

    def _search(self, query: str) -> list[NodeWithScore]:
        hits = self._index.search(query, limit=self._top_k, **self._search_kwargs)
        return [
            NodeWithScore(
                node=TextNode(
                    text=hit_text(self._index, h),
                    id_=str(h.id),
                    metadata=hit_metadata(h, self._id_key, None),
                ),
                score=h.score,
            )
            for h in hits
        ]

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        return self._search(query_bundle.query_str)

    async def _aretrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        return await asyncio.get_running_loop().run_in_executor(None, self._search, query_bundle.query_str)
