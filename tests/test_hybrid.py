"""fusion.hybrid_search: a BM25 and a SPLADE index fused in one call equals searching each and
fusing the runs with fusion.fuse."""

from __future__ import annotations

import json
from importlib import resources

import pytest

from sparsedex import SparseIndex, fusion


@pytest.fixture(scope="module")
def pair():
    lines = (resources.files("sparsedex") / "data" / "movies.jsonl").read_text().splitlines()
    movies = [json.loads(x) for x in lines]
    texts = [m["movie_description"] for m in movies]
    ids = [m["movie_name"] for m in movies]
    payloads = [{"minutes": m["movie_watch_time_min"]} for m in movies]
    bm25, splade = SparseIndex("bm25"), SparseIndex("splade-tiny")
    bm25.add(texts, ids=ids, payloads=payloads)
    splade.add(texts, ids=ids, payloads=payloads)
    return bm25, splade


@pytest.mark.parametrize("method", ["rrf", "dbsf"])
def test_one_call_equals_fuse(pair, method):
    bm25, splade = pair
    for q in ["a band on tour", "A movie about music", "detective"]:
        want = fusion.fuse([bm25.search(q, k=100), splade.search(q, k=100)], method, limit=5)
        got = fusion.hybrid_search([bm25, splade], q, method=method, limit=5)
        assert got == want
        (batch,) = fusion.hybrid_search_batch([bm25, splade], [q], method=method, limit=5)
        assert batch == want
        # a bare text is one query, not one per character (breaker34)
        assert fusion.hybrid_search_batch([bm25, splade], q, method=method, limit=5) == [want]
        # a generator is read once for both indexes (review34)
        assert fusion.hybrid_search_batch([bm25, splade], (x for x in [q]), method=method, limit=5) == [want]


def test_weights_filters_and_depth(pair):
    bm25, splade = pair
    q = "a band on tour"
    flt = {"minutes": {"$lt": 100}}
    want = fusion.fuse([bm25.search(q, k=7, filter=flt), splade.search(q, k=7, filter=flt)], "rrf",
                       weights=[2.0, 1.0], k=10, limit=3)
    got = fusion.hybrid_search([bm25, splade], q, limit=3, depth=7, weights=[2.0, 1.0], rrf_k=10, filter=flt)
    assert got == want and all(h.payload["minutes"] < 100 for h in got)
    hits = fusion.hybrid_search([bm25, splade], q, limit=2, with_vectors=True, with_payload=False)
    assert all(h.vector is not None and h.payload is None for h in hits)


def test_bad_arguments(pair):
    bm25, splade = pair
    with pytest.raises(TypeError, match="list of SparseIndex"):
        fusion.hybrid_search(bm25, "q")
    with pytest.raises(TypeError, match=r"indexes\[1\]"):
        fusion.hybrid_search([bm25, "x"], "q")
    with pytest.raises(ValueError, match="weights"):
        fusion.hybrid_search([bm25, splade], "q", weights=[1.0])
    with pytest.raises(ValueError, match="depth"):
        fusion.hybrid_search([bm25, splade], "q", limit=10, depth=5)
    with pytest.raises(TypeError):
        fusion.hybrid_search([bm25, splade], "q", limit=3, nope=1)  # passed on to search()
    with pytest.raises(ValueError, match="unknown fusion method"):
        fusion.hybrid_search([bm25, splade], "q", method="max")
    with pytest.raises(ValueError, match="weights are all 0"):
        fusion.hybrid_search([bm25, splade], "q", weights=[0, 0.0])
    # weights as a generator: read once (the early check used it up, breaker34b)
    assert fusion.hybrid_search([bm25, splade], "q", weights=(w for w in [2.0, 1.0])) == fusion.hybrid_search(
        [bm25, splade], "q", weights=[2.0, 1.0])


def test_rrf_constant_only_where_it_applies():
    a = SparseIndex("bm25")
    a.add(["rock band", "jazz band", "band on tour"], ids=["r", "j", "t"])
    for kw in ({"k": 1}, {"rrf_k": 1}):
        with pytest.raises(ValueError, match="does not apply to method='dbsf'"):
            fusion.hybrid_search([a], "band", method="dbsf", **kw)
        with pytest.raises(ValueError, match="does not apply"):
            fusion.hybrid_search_batch([a], ["band"], method="dbsf", **kw)
        with pytest.raises(ValueError, match="does not apply"):
            fusion.fuse([["r"]], "dbsf", **kw)
    with pytest.raises(ValueError, match="not both"):
        fusion.hybrid_search([a], "band", rrf_k=1, k=1)
    assert len(fusion.hybrid_search([a], "band", method="dbsf", limit=1)) == 1
    # rrf_k and its alias k are the same constant; k says it is not the number of hits (helper-133)
    with pytest.warns(UserWarning, match="k=1 is RRF's rank constant"):
        aliased = fusion.hybrid_search([a], "band", k=1)
    with pytest.warns(UserWarning, match="not the number of hits: pass limit="):
        fusion.hybrid_search_batch([a], ["band"], k=1)
    assert fusion.hybrid_search([a], "band", rrf_k=1) == aliased
    assert fusion.fuse([["r", "j"]], rrf_k=1)[0].score == pytest.approx(1 / 2)


def test_batch_of_csr_arrays():
    # CSR arrays (indptr, indices, values) are one query a row, as search_batch takes them; the
    # fused batch had one result per array (3) and failed with an IndexError (review34)
    import numpy as np

    a, b = SparseIndex(None), SparseIndex(None, "float")
    docs = [{1: 1.0, 2: 0.5}, {2: 1.0}, {3: 2.0, 1: 0.1}]
    a.add(docs)
    b.add(docs)
    csr = (np.array([0, 2, 3]), np.array([1, 2, 3], dtype=np.uint32), np.array([1.0, 0.5, 1.0], np.float32))
    got = fusion.hybrid_search_batch([a, b], csr, limit=3)
    assert got == [fusion.hybrid_search([a, b], {1: 1.0, 2: 0.5}, limit=3), fusion.hybrid_search([a, b], {3: 1.0}, limit=3)]
