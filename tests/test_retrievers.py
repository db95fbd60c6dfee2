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
    assert [(d.metadata["id"], d.metadata["score"]) for d in docs] == [(h.id, h.score) for h in hits]
    assert docs[0].page_content == ms[hits[0].id]["movie_description"] and docs[0].id == str(hits[0].id)
    assert asyncio.run(r.ainvoke("A movie about music")) == docs
    assert r.batch(["A movie about music", "detective"])[0] == docs
    short = SparsedexRetriever(index=index, k=5, search_kwargs={"filter": {"minutes": {"$lt": 90}}}, score_key=None)
    got = short.invoke("A movie about music")
    assert got and all(d.metadata["minutes"] < 90 and "score" not in d.metadata for d in got)
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
    assert [(n.node.metadata["id"], n.score) for n in nodes] == [(h.id, h.score) for h in hits]
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
