"""Export an index to the engines people already run.

:func:`to_qdrant` writes every live document of a :class:`~sparsedex.SparseIndex` (its
vector, as :meth:`~sparsedex.SparseIndex.get` returns it, and its payload) into a Qdrant
collection with qdrant-client (``pip install qdrant-client``; sparsedex does not depend on it).

>>> from qdrant_client import QdrantClient                  # doctest: +SKIP
>>> from sparsedex.export import to_qdrant
>>> to_qdrant(index, QdrantClient(":memory:"), "movies", vector_name="splade")  # doctest: +SKIP
20

The vectors written are the stored float vectors (as added; BM25 indexes: document weights,
below), never a ``u8`` index's 8-bit impacts. Searching the collection then gives sparsedex's
hits: with ``quantization="float"`` the same ids and scores (f32 rounding aside); from a ``u8``
index, Qdrant's scores are the unrounded ones (2.2 where sparsedex says 2.2039, as 0.5 is
stored as the impact 0.502), and ranks can differ where that rounding ties or swaps documents. For BM25 indexes the collection gets Qdrant's IDF
modifier, so Qdrant applies IDF at query time as sparsedex does:

- ``SparseIndex("bm25")``: the exported vectors are the BM25 document weights under the
  collection's current statistics (N, average length); query Qdrant with the query's term
  counts, ``index.encoder.encode_queries([text])[0]`` (Qdrant multiplies by IDF).
- ``SparseIndex("Qdrant/bm25")``: fastembed's vectors as they were added; query with
  ``SparseTextEmbedding("Qdrant/bm25").query_embed(text)``, as with fastembed.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import numpy as np

from ._progress import progress_bar
from ._validate import shown

__all__ = ["to_qdrant"]


def _qdrant_id(x: Any, uuid_ids: bool) -> int | str:
    if uuid_ids:
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"sparsedex:{type(x).__name__}:{x}"))
    if isinstance(x, int) and 0 <= x < 2**64:
        return x
    if isinstance(x, str):
        try:
            canonical = str(uuid.UUID(x))
        except ValueError:
            pass
        else:
            if canonical == x:
                return x
            # Qdrant keeps the canonical spelling: the point would come back under another id,
            # and two spellings of one UUID would overwrite each other.
            raise ValueError(
                f"document id {shown(x)} spells a UUID but not in Qdrant's canonical form ({canonical!r}): "
                "Qdrant would return it changed, and ids that spell the same UUID would become one "
                "point; pass ids='uuid' (the id itself goes into the payload)"
            )
    raise ValueError(
        f"document id {shown(x)} is not a Qdrant point id (an unsigned integer or a UUID): pass "
        "ids='uuid' to write UUIDs derived from the ids, with the id itself in the payload"
    )


def _documents(index: Any) -> Iterator[tuple[Any, np.ndarray, np.ndarray, dict[str, Any] | None, str | None]]:
    """Live documents of the index's last commit: (id, indices, values, payload, text). A BM25
    index stores term frequencies: its documents go out as BM25 document weights
    ``tf * (k1 + 1) / (tf + k1 * (1 - b + b * dl / avgdl))`` under the live statistics, the
    engine's own, as :meth:`SparseIndex.explain` gives them (the IDF part is Qdrant's IDF
    modifier)."""
    snap = index._snap()
    bm25 = bool(index._bm25)
    for si, st in enumerate(snap.states):
        seg = st.segment
        eng = seg.index
        indptr, indices, values = eng.vectors()
        live = np.flatnonzero(st.live_mask()).tolist()
        for at in range(0, len(live), 1024):
            chunk = live[at:at + 1024]
            for d, payload, text in zip(chunk, seg.docs.payloads(chunk), seg.docs.texts(chunk)):
                a, b = int(indptr[d]), int(indptr[d + 1])
                idx, val = indices[a:b], values[a:b]
                if bm25 and len(idx):
                    parts = snap.core.explain(
                        np.ascontiguousarray(idx, dtype=np.uint32), np.ones(len(idx), np.float32), si, d, None
                    )
                    dw = {int(t): float(w) for t, _, w, _ in parts}
                    val = np.asarray([dw[int(t)] for t in idx.tolist()], dtype=np.float32)
                yield eng.id(d), idx, val, payload, text


def _check_documents(index: Any, uuid_ids: bool, id_key: str, text_key: str | None) -> None:
    """Everything about the documents that would make the export fail, found before Qdrant is
    touched: ids that are not point ids (``ids="same"``), payloads already holding ``id_key``
    (``ids="uuid"``) or ``text_key``, a ``text_key`` where no live document has a text (every
    payload would get ``text_key: null``, helper-147). Payloads are read only when a key is to be
    added, texts only until one is found."""
    snap = index._snap()
    keys = [k for k in ((id_key if uuid_ids else None), text_key) if k is not None]
    text_seen = text_key is None
    n_live = 0
    for st in snap.states:
        seg = st.segment
        eng = seg.index
        live = np.flatnonzero(st.live_mask()).tolist()
        for at in range(0, len(live), 1024):
            chunk = live[at:at + 1024]
            doc_ids = [eng.id(d) for d in chunk]
            n_live += len(chunk)
            if not text_seen:
                text_seen = any(t is not None for t in seg.docs.texts(chunk))
            if not uuid_ids:
                for x in doc_ids:
                    _qdrant_id(x, False)
            if keys:
                for x, payload in zip(doc_ids, seg.docs.payloads(chunk)):
                    for key in keys:
                        if payload and key in payload:
                            raise ValueError(f"payload of document {shown(x)} already holds {key!r}: choose another key")
    if n_live and not text_seen:
        raise ValueError(
            f"text_key={text_key!r}: no document of this index has a text (added as vectors, or "
            "without texts), so there is nothing to write under it: leave text_key out"
        )


def to_qdrant(
    index: Any,
    client: Any,
    collection_name: str,
    vector_name: str = "sparse",
    *,
    batch_size: int = 256,
    ids: str = "same",
    id_key: str = "sparsedex_id",
    text_key: str | None = None,
    progress: bool | None = None,
) -> int:
    """Write the live documents of ``index`` into Qdrant collection ``collection_name``.

    Parameters
    ----------
    index:
        A :class:`~sparsedex.SparseIndex` (its last commit; an in-memory index commits what is
        staged first).
    client:
        A ``qdrant_client.QdrantClient`` (a server, or ``QdrantClient(":memory:")``).
    collection_name, vector_name:
        The collection and the name of its sparse vector. A missing collection is created with
        ``sparse_vectors_config={vector_name: SparseVectorParams(modifier=...)}`` (IDF for BM25
        indexes, none otherwise) and no dense vectors. An existing one must already have that
        sparse vector with the same modifier; points with the same ids are overwritten.
    batch_size:
        Points per ``upsert`` call (1 .. 65536).
    ids:
        ``"same"``: the documents' ids are the point ids (they must be unsigned integers or UUID
        strings in canonical form, lower-case with hyphens: Qdrant returns other spellings
        changed); ``"uuid"``: point ids are UUIDs derived from the ids (uuid5, stable), and the
        id itself goes into the payload under ``id_key``.
    text_key:
        Also write each stored text into the payload under this key (None: no texts). A
        document without a text gets no such key (not a null); an index none of whose
        documents has a text is refused.
    progress:
        Show a progress bar (None: when stderr is a terminal and there are many documents).

    Returns
    -------
    int
        The number of points written.

    Raises
    ------
    TypeError
        ``index`` is not a SparseIndex, or ``client`` has no ``upsert`` (not a Qdrant client).
    ValueError
        An id that is not a Qdrant point id (with ``ids="same"``), an existing collection
        without the sparse vector or with another modifier, a payload that already holds
        ``id_key`` or ``text_key``, a ``text_key`` for an index that keeps no texts or none of
        whose documents has one, bad arguments. All of these are found before the
        collection is created or any point written: a refused export leaves Qdrant as it was.
    ImportError
        qdrant-client is not installed.
    """
    try:
        from qdrant_client import models
    except ImportError:
        raise ImportError("to_qdrant needs qdrant-client: pip install qdrant-client") from None
    from .index import SparseIndex

    if not isinstance(index, SparseIndex):  # said "'str' object has no attribute '_snap'" (helper-129)
        raise TypeError(f"index must be a SparseIndex, got {type(index).__name__}")
    if not callable(getattr(client, "upsert", None)):
        raise TypeError(f"client must be a qdrant_client.QdrantClient, got {type(client).__name__}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or not 1 <= batch_size <= 65536:
        raise ValueError(f"batch_size must be an integer in 1 .. 65536, got {batch_size!r}")
    if ids not in ("same", "uuid"):
        raise ValueError(f"ids must be 'same' or 'uuid', got {ids!r}")
    if not isinstance(collection_name, str) or not collection_name:
        raise ValueError(f"collection_name must be a non-empty string, got {collection_name!r}")
    if not isinstance(vector_name, str) or not vector_name:
        raise ValueError(f"vector_name must be a non-empty string, got {vector_name!r}")
    if text_key is not None and (not isinstance(text_key, str) or not text_key):
        raise ValueError(f"text_key must be None or a non-empty string, got {text_key!r}")
    if text_key is not None and not index.store_texts:
        raise ValueError(f"text_key={text_key!r}: this index does not store texts")
    if ids == "uuid" and (not isinstance(id_key, str) or not id_key):
        raise ValueError(f"id_key must be a non-empty string, got {id_key!r}")
    if ids == "uuid" and id_key == text_key:
        raise ValueError(f"id_key and text_key are both {id_key!r}: choose two keys")
    # every check on the documents before the collection is created or written to, so that a
    # refused export leaves nothing behind
    _check_documents(index, ids == "uuid", id_key, text_key)
    bm25 = bool(index._bm25 or index._idf)
    modifier = models.Modifier.IDF if bm25 else None
    _ensure_collection(client, models, collection_name, vector_name, modifier)

    total = len(index)
    bar = progress_bar(total, f"to Qdrant {collection_name}", progress, unit="doc", min_total=10_000)
    written = 0
    batch: list[Any] = []
    uuid_ids = ids == "uuid"
    try:
        for doc_id, idx, val, payload, text in _documents(index):
            out = dict(payload) if payload else {}
            # a document without a text gets no text_key (it got a null, helper-147)
            for key, value in ((id_key if uuid_ids else None, doc_id), (text_key if text is not None else None, text)):
                if key is None:
                    continue
                if key in out:
                    raise ValueError(f"payload of document {doc_id!r} already holds {key!r}: choose another key")
                out[key] = value
            batch.append(
                models.PointStruct(
                    id=_qdrant_id(doc_id, uuid_ids),
                    vector={vector_name: models.SparseVector(indices=idx.tolist(), values=val.tolist())},
                    payload=out,
                )
            )
            if len(batch) == batch_size:
                client.upsert(collection_name=collection_name, points=batch, wait=True)
                written += len(batch)
                bar.update(len(batch))
                batch = []
        if batch:
            client.upsert(collection_name=collection_name, points=batch, wait=True)
            written += len(batch)
            bar.update(len(batch))
    finally:
        bar.close()
    return written


def _ensure_collection(client: Any, models: Any, name: str, vector_name: str, modifier: Any) -> None:
    if not client.collection_exists(name):
        client.create_collection(
            collection_name=name,
            vectors_config={},
            sparse_vectors_config={vector_name: models.SparseVectorParams(modifier=modifier)},
        )
        return
    params = client.get_collection(name).config.params
    sparse = params.sparse_vectors or {}
    if vector_name not in sparse:
        raise ValueError(
            f"Qdrant collection {name!r} has no sparse vector {vector_name!r} (it has: "
            f"{', '.join(sparse) or 'none'}): pass vector_name=, or a new collection name"
        )
    have = sparse[vector_name].modifier
    have = None if have in (None, models.Modifier.NONE) else have
    if have != modifier:
        raise ValueError(
            f"sparse vector {vector_name!r} of Qdrant collection {name!r} has modifier {have}, this "
            f"index needs {modifier} (IDF for BM25 indexes, none otherwise)"
        )
