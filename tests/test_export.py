"""sparsedex.export.to_qdrant against QdrantClient(":memory:"): the collection answers with
sparsedex's top-k (quantization="float"): vectors you bring, BM25 (IDF modifier), Qdrant/bm25."""

from __future__ import annotations

import json

import numpy as np
import pytest

from sparsedex import SparseIndex, SparseTextEmbedding
from sparsedex.export import to_qdrant

pytest.importorskip("qdrant_client")
from qdrant_client import QdrantClient, models  # noqa: E402


def _texts(shared, n_docs, n_queries):
    base = shared / "data" / "vaswani"
    docs = [json.loads(x)["text"] for x in (base / "corpus.jsonl").read_text().splitlines()[:n_docs]]
    qs = [json.loads(x)["text"] for x in (base / "queries.jsonl").read_text().splitlines()[:n_queries]]
    return docs, qs


def _sv(v):
    return models.SparseVector(indices=[int(i) for i in v.indices], values=[float(x) for x in v.values])


def _same(ours, theirs):
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs):
        assert a.score == pytest.approx(b.score, rel=1e-5, abs=1e-6)
    # ids in the same order, except among equal scores (f32 vs f64 sums: 1e-5 relative)
    assert _groups(ours) == _groups(theirs)


def _groups(hits):
    out: list[set] = []
    last = None
    for h in hits:
        if last is not None and abs(h.score - last) <= 1e-5 * max(1.0, abs(last)):
            out[-1].add(h.id)
        else:
            out.append({h.id})
        last = h.score
    return out[:-1]  # the last group may be cut by the limit


def test_vectors_you_bring_and_payloads(shared):
    rng = np.random.default_rng(3)
    index = SparseIndex(None, quantization="float")
    vecs = [{int(t): float(w) for t, w in zip(rng.choice(500, 20, replace=False), rng.random(20) + 0.01)}
            for _ in range(700)]
    index.add(vecs, payloads=[{"i": i, "odd": i % 2 == 1} if i % 5 else None for i in range(700)])
    index.delete([3, 4])
    client = QdrantClient(":memory:")
    n = to_qdrant(index, client, "c", vector_name="v", batch_size=64)
    assert n == 698 == client.count("c").count
    info = client.get_collection("c").config.params.sparse_vectors["v"]
    assert info.modifier in (None, models.Modifier.NONE)
    (p,) = client.retrieve("c", [7], with_payload=True, with_vectors=True)
    assert p.payload == {"i": 7, "odd": True} and p.vector["v"].indices == sorted(vecs[7])
    assert client.retrieve("c", [10], with_payload=True)[0].payload == {}
    flt = models.Filter(must=[models.FieldCondition(key="odd", match=models.MatchValue(value=True))])
    for qi in range(20):
        q = {int(t): 1.0 for t in rng.choice(500, 5, replace=False)}
        qv = models.SparseVector(indices=list(q), values=list(q.values()))
        for f in (None, flt):
            _same(index.search(q, limit=10, query_filter=f), client.query_points("c", query=qv, using="v", limit=10,
                                                                                   query_filter=f).points)


def test_bm25_index_with_idf_modifier(shared):
    docs, queries = _texts(shared, 1500, 30)
    index = SparseIndex("bm25", quantization="float")
    index.add(docs, payloads=[{"n": i} for i in range(len(docs))])
    index.delete([0, 1, 2])
    client = QdrantClient(":memory:")
    to_qdrant(index, client, "bm25", vector_name="bm25", text_key="text")
    assert client.get_collection("bm25").config.params.sparse_vectors["bm25"].modifier == models.Modifier.IDF
    assert client.retrieve("bm25", [5], with_payload=True)[0].payload == {"n": 5, "text": docs[5]}
    for q in queries:
        qtf = index.encoder.encode_queries([q])[0]  # term counts: Qdrant applies IDF
        if qtf.nnz == 0:
            continue
        _same(index.search(q, limit=10), client.query_points("bm25", query=_sv(qtf), using="bm25", limit=10).points)


def test_qdrant_bm25_index(shared):
    docs, queries = _texts(shared, 500, 20)
    index = SparseIndex("Qdrant/bm25", quantization="float")
    index.add(docs)
    client = QdrantClient(":memory:")
    to_qdrant(index, client, "fb", vector_name="bm25")
    model = SparseTextEmbedding("Qdrant/bm25")
    for q, qv in zip(queries, model.query_embed(queries)):
        _same(index.search(q, limit=10), client.query_points("fb", query=_sv(qv), using="bm25", limit=10).points)


def test_ids_and_existing_collections():
    index = SparseIndex(None)
    index.add([{1: 1.0}, {2: 1.0}], ids=["a", "b"], payloads=[{"x": 1}, None])
    client = QdrantClient(":memory:")
    with pytest.raises(ValueError, match="document id 'a' is not a Qdrant point id"):
        to_qdrant(index, client, "s")
    assert to_qdrant(index, client, "s", ids="uuid") == 2
    got = {p.payload["sparsedex_id"]: p.payload for p in client.scroll("s", limit=10, with_payload=True)[0]}
    assert got == {"a": {"x": 1, "sparsedex_id": "a"}, "b": {"sparsedex_id": "b"}}
    assert to_qdrant(index, client, "s", ids="uuid") == 2 and client.count("s").count == 2  # overwrites
    with pytest.raises(ValueError, match="no sparse vector 'other'"):
        to_qdrant(index, client, "s", vector_name="other", ids="uuid")
    bm25 = SparseIndex("bm25")
    bm25.add(["a b"])
    with pytest.raises(ValueError, match="modifier"):
        to_qdrant(bm25, client, "s")
    with pytest.raises(ValueError, match="already holds 'x'"):
        to_qdrant(index, QdrantClient(":memory:"), "t", ids="uuid", id_key="x")
    with pytest.raises(ValueError, match="batch_size"):
        to_qdrant(index, client, "s", batch_size=0)
    with pytest.raises(ValueError, match="does not store texts"):
        nt = SparseIndex(None, store_texts=False)
        to_qdrant(nt, client, "u", text_key="text")


def test_uuid_ids_must_be_canonical():
    """Qdrant keeps a UUID's canonical spelling: another spelling would come back changed, and
    two spellings of one UUID would become one point."""
    upper, lower = "A1B2C3D4-0000-0000-0000-00000000000A", "a1b2c3d4-0000-0000-0000-00000000000a"
    index = SparseIndex(None, "float")
    index.add([{1: 1.0}, {2: 1.0}], ids=[upper, lower])
    client = QdrantClient(":memory:")
    with pytest.raises(ValueError, match=r"not in Qdrant's canonical form \('a1b2c3d4-0000-0000-0000-00000000000a'\)"):
        to_qdrant(index, client, "c")
    assert not client.collection_exists("c")
    assert to_qdrant(index, client, "c", ids="uuid") == 2 and client.count("c").count == 2
    ok = SparseIndex(None, "float")
    ok.add([{1: 1.0}], ids=[lower])
    assert to_qdrant(ok, client, "d") == 1
    assert [p.id for p in client.scroll("d", limit=10)[0]] == [lower]


def test_refused_export_leaves_no_collection():
    client = QdrantClient(":memory:")
    ix = SparseIndex(None)
    ix.add([{1: 1.0}, {2: 0.5}], ids=["a", "b"], payloads=[{"sparsedex_id": 1}, {"t": 2}])
    with pytest.raises(ValueError, match="not a Qdrant point id"):
        to_qdrant(ix, client, "v")
    assert not client.collection_exists("v")
    with pytest.raises(ValueError, match=r"document 'a' already holds 'sparsedex_id'"):
        to_qdrant(ix, client, "v", ids="uuid")
    assert not client.collection_exists("v")
    with pytest.raises(ValueError, match=r"document 'b' already holds 't'"):
        to_qdrant(ix, client, "v", ids="uuid", id_key="i", text_key="t")
    assert not client.collection_exists("v")
    with pytest.raises(ValueError, match="id_key"):
        to_qdrant(ix, client, "v", ids="uuid", id_key="")
    assert not client.collection_exists("v")
    assert to_qdrant(ix, client, "v", ids="uuid", id_key="i") == 2
    assert client.count("v").count == 2
