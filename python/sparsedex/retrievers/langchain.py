"""A LangChain retriever over a :class:`~sparsedex.SparseIndex` (``pip install 'sparsedex[langchain]'``).

>>> from sparsedex import SparseIndex
>>> from sparsedex.retrievers.langchain import SparsedexRetriever
>>> retriever = SparsedexRetriever(index=SparseIndex.open("movies-index"), k=3)  # doctest: +SKIP
>>> retriever.invoke("A movie about music")                                       # doctest: +SKIP
[Document(id='18', metadata={'title': 'This Is Spinal Tap', ..., 'id': 18, 'score': 12.72}, page_content='Spinal Tap, ...')]

``invoke`` / ``batch`` run synchronously; ``ainvoke`` / ``abatch`` run the search in an
executor thread (the engine releases the GIL while it searches).
"""

from __future__ import annotations

import asyncio
from typing import Any

try:
    from langchain_core.callbacks import AsyncCallbackManagerForRetrieverRun, CallbackManagerForRetrieverRun
    from langchain_core.documents import Document
    from langchain_core.retrievers import BaseRetriever
except ImportError as e:  # pragma: no cover - exercised when the extra is missing
    raise ImportError(
        "sparsedex.retrievers.langchain needs langchain-core: pip install 'sparsedex[langchain]'"
    ) from e
from pydantic import ConfigDict, Field, field_validator

from . import hit_metadata, hit_text

__all__ = ["SparsedexRetriever"]


class SparsedexRetriever(BaseRetriever):
    """Documents for a query from a sparsedex index, best first.

    Fields
    ------
    index:
        The :class:`~sparsedex.SparseIndex` (with an encoder: queries are texts).
    k:
        How many documents (default 4, LangChain's usual).
    search_kwargs:
        More keywords for :meth:`SparseIndex.search <sparsedex.SparseIndex.search>`:
        ``filter``, ``query_filter``, ``score_threshold``, ``with_payload``, ``algorithm``.
    id_key, score_key:
        Metadata keys for the hit's id and score (``score_key=None``: no score in metadata).

    Each ``Document`` has ``page_content`` = the stored text ("" if the index keeps no texts),
    ``metadata`` = the payload plus id and score, and ``id`` = ``str(hit.id)``.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    index: Any
    k: int = 4
    search_kwargs: dict[str, Any] = Field(default_factory=dict)
    id_key: str = "id"
    score_key: str | None = "score"

    @field_validator("index")
    @classmethod
    def _check_index(cls, v: Any) -> Any:
        from ..index import SparseIndex

        if not isinstance(v, SparseIndex):
            raise ValueError(f"index must be a sparsedex.SparseIndex, got {type(v).__name__}")
        return v

    @field_validator("search_kwargs")
    @classmethod
    def _check_kwargs(cls, v: dict[str, Any]) -> dict[str, Any]:
        for key in ("k", "limit"):
            if key in v:
                raise ValueError(f"search_kwargs: set the retriever's k, not {key!r}")
        return v

    def _search(self, query: str) -> list[Document]:
        hits = self.index.search(query, limit=self.k, **self.search_kwargs)
        return [
            Document(
                page_content=hit_text(self.index, h),
                metadata=hit_metadata(h, self.id_key, self.score_key),
                id=str(h.id),
            )
            for h in hits
        ]

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        return self._search(query)

    async def _aget_relevant_documents(
        self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun
    ) -> list[Document]:
        return await asyncio.get_running_loop().run_in_executor(None, self._search, query)
