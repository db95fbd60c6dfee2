"""LangChain and LlamaIndex retrievers against the real packages (skipped when absent)."""

from __future__ import annotations

import asyncio
import json
from importlib import resources

import pytest

from sparsedex import SparseIndex


@pytest.fixture(scope="module")
def movies():
    lines = (resources.files("sparsedex") / "data" / "movies.jsonl").read_text().splitlines()
    ms = [json.loads(x) for x in lines]
    index = SparseIndex("splade-tiny")
    index.add([m["movie_description"] for m in ms],
              payloads=[{"title": m["movie_name"], "minutes": m["movie_watch_time_min"]} for m in ms])
    return index, ms


def test_langchain(movies):
    pytest.importorskip("langchain_core")
    from langchain_core.documents import Document
    from langchain_core.retrievers import BaseRetriever

    from sparsedex.retrievers.langchain import SparsedexRetriever

    index, ms = movies
    r = SparsedexRetriever(index=index, k=3)
    assert isinstance(r, BaseRetriever)
    docs = r.invoke("A movie about music")
    hits = index.search("A movie about music", k=3)
    assert all(isinstance(d, Document) for d in docs)
    assert [d.metadata["title"] for d in docs][0] == "This Is Spinal Tap"
    assert [(d.metadata["sparsedex_id"], d.metadata["sparsedex_score"]) for d in docs] == [(h.id, h.score) for h in hits]
    assert docs[0].page_content == ms[hits[0].id]["movie_description"] and docs[0].id == str(hits[0].id)
    assert asyncio.run(r.ainvoke("A movie about music")) == docs
    assert r.batch(["A movie about music", "detective"])[0] == docs
    short = SparsedexRetriever(index=index, k=5, search_kwargs={"filter": {"minutes": {"$lt": 90}}}, score_key=None)
    got = short.invoke("A movie about music")
    assert got and all(d.metadata["minutes"] < 90 and "sparsedex_score" not in d.metadata for d in got)
    with pytest.raises(ValueError, match="set the retriever's k"):
        SparsedexRetriever(index=index, search_kwargs={"limit": 3})
    with pytest.raises(ValueError, match="SparseIndex"):
        SparsedexRetriever(index="not an index")


def test_llama_index(movies):
    pytest.importorskip("llama_index.core")
    from llama_index.core.retrievers import BaseRetriever
    from llama_index.core.schema import NodeWithScore

    from sparsedex.retrievers.llama_index import SparsedexRetriever

    index, ms = movies
    r = SparsedexRetriever(index, similarity_top_k=3)
    assert isinstance(r, BaseRetriever)
    nodes = r.retrieve("A movie about music")
    hits = index.search("A movie about music", k=3)
    assert all(isinstance(n, NodeWithScore) for n in nodes)
    assert [(n.node.metadata["sparsedex_id"], n.score) for n in nodes] == [(h.id, h.score) for h in hits]
    assert nodes[0].node.metadata["title"] == "This Is Spinal Tap"
    assert nodes[0].node.get_content() == ms[hits[0].id]["movie_description"]
    assert nodes[0].node.node_id == str(hits[0].id)
    again = asyncio.run(r.aretrieve("A movie about music"))
    assert [(n.node.node_id, n.score) for n in again] == [(n.node.node_id, n.score) for n in nodes]
    f = SparsedexRetriever(index, similarity_top_k=5, search_kwargs={"filter": {"minutes": {"$lt": 90}}})
    assert all(n.node.metadata["minutes"] < 90 for n in f.retrieve("A movie about music"))
    with pytest.raises(ValueError, match="similarity_top_k"):
        SparsedexRetriever(index, search_kwargs={"k": 3})
    with pytest.raises(TypeError, match="SparseIndex"):
        SparsedexRetriever(object())


def _clashing_index(store_texts=True):
    a = SparseIndex("bm25", store_texts=store_texts)
    a.add(["rock band", "jazz band"], ids=["r", "j"], payloads=[{"id": "mine", "score": 5}, {"sparsedex_id": 1}])
    return a


def test_langchain_keeps_payload_keys_and_checks_arguments():
    pytest.importorskip("langchain_core")
    from sparsedex.retrievers.langchain import SparsedexRetriever

    a = _clashing_index()
    (doc,) = SparsedexRetriever(index=a, k=1).invoke("rock")
    assert doc.metadata == {"id": "mine", "score": 5, "sparsedex_id": "r", "sparsedex_score": doc.metadata["sparsedex_score"]}
    with pytest.raises(ValueError, match=r"document 'j'.*'sparsedex_id'.*id_key"):
        SparsedexRetriever(index=a, k=2).invoke("jazz")
    with pytest.raises(ValueError, match=r"document 'r'.*'score'.*score_key"):
        SparsedexRetriever(index=a, k=1, id_key="doc", score_key="score").invoke("rock")
    with pytest.raises(ValueError, match="kk"):
        SparsedexRetriever(index=a, kk=3)
    for bad in (0, -1):
        with pytest.raises(ValueError, match="k"):
            SparsedexRetriever(index=a, k=bad)
    with pytest.raises((TypeError, ValueError), match="k"):
        SparsedexRetriever(index=a, k=2.5)
    with pytest.warns(UserWarning, match="store_texts=False"):
        r = SparsedexRetriever(index=_clashing_index(store_texts=False), k=1)
    assert r.invoke("rock")[0].page_content == ""


def test_llama_index_keeps_payload_keys_and_checks_arguments():
    pytest.importorskip("llama_index.core")
    from sparsedex.retrievers.llama_index import SparsedexRetriever

    a = _clashing_index()
    (n,) = SparsedexRetriever(a, similarity_top_k=1).retrieve("rock")
    assert n.node.metadata == {"id": "mine", "score": 5, "sparsedex_id": "r"}
    with pytest.raises(ValueError, match=r"document 'j'.*'sparsedex_id'"):
        SparsedexRetriever(a, similarity_top_k=2).retrieve("jazz")
    with pytest.raises(TypeError):
        SparsedexRetriever(a, kk=3)
    with pytest.raises(ValueError, match="similarity_top_k"):
        SparsedexRetriever(a, similarity_top_k=0)
    with pytest.warns(UserWarning, match="store_texts=False"):
        SparsedexRetriever(_clashing_index(store_texts=False))


def test_hit_metadata_rule():
    from types import SimpleNamespace

    from sparsedex.retrievers import hit_metadata

    h = SimpleNamespace(id=3, score=1.5, payload={"id": 9})
    assert hit_metadata(h, "sparsedex_id", "sparsedex_score") == {"id": 9, "sparsedex_id": 3, "sparsedex_score": 1.5}
    with pytest.raises(ValueError, match="document 3"):
        hit_metadata(h, "id", None)
