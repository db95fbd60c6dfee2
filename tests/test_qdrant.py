"""Qdrant-shaped search against the real qdrant-client (local mode is the ground truth):
filters translated and applied inside the traversal, limit / with_payload / with_vectors /
score_threshold, Qdrant's scores with quantization="float", the IDF modifier of Qdrant/bm25."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sparsedex import SparseEmbedding, SparseIndex
from sparsedex._qdrant import translate_filter
from sparsedex.filters import FilterError, compile_filter

qdrant_client = pytest.importorskip("qdrant_client")
from qdrant_client import QdrantClient, models  # noqa: E402


# -- translation -------------------------------------------------------------------------------
def test_translation_table():
    f = models.Filter(
        must=[
            models.FieldCondition(key="genre", match=models.MatchValue(value="drama")),
            models.FieldCondition(key="year", range=models.Range(gte=1980, lt=1990)),
            models.Filter(should=[models.HasIdCondition(has_id=[1, 2])]),
        ],
        should=[models.FieldCondition(key="tags", match=models.MatchAny(any=["a", "b"]))],
        must_not=[
            models.FieldCondition(key="meta.lang", match=models.MatchExcept(**{"except": ["en"]})),
            models.IsNullCondition(is_null=models.PayloadField(key="x")),
        ],
    )
    want = {"$and": [
        {"genre": {"$eq": "drama"}},
        {"year": {"$elemMatch": {"$gte": 1980, "$lt": 1990}}},
        {"$ids": [1, 2]},
        {"$not": {"meta.lang": {"$elemMatch": {"$nin": ["en", None]}}}},
        {"$not": {"x": {"$eq": None}}},
        {"tags": {"$in": ["a", "b"]}},
    ]}
    assert translate_filter(f) == want
    assert translate_filter(f.model_dump(by_alias=True, exclude_none=True)) == want  # the dict form
    assert translate_filter(models.Filter()) == {} and translate_filter({"should": []}) == {}
    assert translate_filter({"must": {"key": "a", "range": {"gt": 1}}}) == {"a": {"$gt": 1}}


def test_min_should():
    c = [{"key": k, "match": {"value": 1}} for k in "abc"]
    got = translate_filter({"min_should": {"conditions": c, "min_count": 2}})
    assert got == {"$or": [{"$and": [{"a": {"$eq": 1}}, {"b": {"$eq": 1}}]},
                           {"$and": [{"a": {"$eq": 1}}, {"c": {"$eq": 1}}]},
                           {"$and": [{"b": {"$eq": 1}}, {"c": {"$eq": 1}}]}]}
    assert translate_filter({"min_should": {"conditions": c, "min_count": 4}}) == {"$ids": []}


@pytest.mark.parametrize(
    "cond, words",
    [
        (models.FieldCondition(key="t", match=models.MatchText(text="rock")), ["must[0]", "MatchText", "'t'"]),
        (models.FieldCondition(key="t", match=models.MatchPhrase(phrase="a b")), ["must[0]", "MatchPhrase"]),
        (models.FieldCondition(key="d", range=models.DatetimeRange(gte="2024-01-01T00:00:00Z")),
         ["must[0]", "DatetimeRange"]),
        (models.FieldCondition(key="g", geo_radius=models.GeoRadius(center=models.GeoPoint(lat=0, lon=0), radius=1.0)),
         ["must[0]", "geo radius"]),
        (models.FieldCondition(key="v", values_count=models.ValuesCount(gt=1)), ["must[0]", "values_count"]),
        (models.IsEmptyCondition(is_empty=models.PayloadField(key="e")), ["must[0]", "IsEmptyCondition"]),
        (models.NestedCondition(nested=models.Nested(key="n", filter=models.Filter())), ["NestedCondition"]),
        (models.HasVectorCondition(has_vector="v"), ["HasVectorCondition"]),
        (models.FieldCondition(key="a[].b", match=models.MatchValue(value=1)), ["'a[].b'", "array paths"]),
        ({"key": "y", "match": {"value": 1.5}}, ["must[0]", "range"]),
    ],
)
def test_untranslatable_conditions_are_named(cond, words):
    with pytest.raises(FilterError) as e:
        translate_filter(models.Filter(must=[cond]) if not isinstance(cond, dict) else {"must": [cond]})
    for w in words:
        assert w in str(e.value), (w, str(e.value))
    index = SparseIndex(None)
    index.add([{1: 1.0}])
    with pytest.raises(FilterError):
        index.search({1: 1.0}, query_filter={"must": [_dump(cond)]})


def _dump(c):
    return c if isinstance(c, dict) else c.model_dump(by_alias=True, exclude_none=True)


def test_malformed_filters_name_the_place():
    with pytest.raises(FilterError, match=r"query_filter at must\[1\].*exactly one of"):
        translate_filter({"must": [{"key": "a", "match": {"value": 1}}, {"key": "b"}]})
    with pytest.raises(FilterError, match="filter=, not query_filter="):
        translate_filter({"genre": "drama"})
    with pytest.raises(FilterError, match=r"should\[0\].*not a Qdrant condition"):
        translate_filter({"should": [{"foo": 1}]})


# -- the same filtered results as Qdrant on random payloads -------------------------------------
_KEYS = ["n", "s", "f", "m.x", "m", "missing"]
_num = st.integers(-3, 3)
_val = st.one_of(
    _num, st.integers(-3, 3).map(lambda x: x + 0.5), st.sampled_from(["a", "b", "c"]), st.booleans(), st.none(),
)
_field_value = st.one_of(_val, st.lists(_val, max_size=3))
_payload = st.fixed_dictionaries(
    {},
    optional={
        "n": _field_value,
        "s": _field_value,
        "f": _field_value,
        "m": st.one_of(st.fixed_dictionaries({}, optional={"x": _field_value}), _field_value),
    },
)
_operand = st.one_of(_num, st.sampled_from(["a", "b", "c"]), st.booleans())
_any_list = st.one_of(st.lists(_num, max_size=3), st.lists(st.sampled_from(["a", "b", "c"]), max_size=3))
_bound = st.one_of(st.none(), _num, _num.map(lambda x: x + 0.25))


def _range(b):
    gt, gte, lt, lte = b
    return models.Range(gt=gt, gte=gte, lt=lt, lte=lte)


_leaf = st.one_of(
    st.builds(lambda k, v: models.FieldCondition(key=k, match=models.MatchValue(value=v)), st.sampled_from(_KEYS), _operand),
    st.builds(lambda k, v: models.FieldCondition(key=k, match=models.MatchAny(any=v)), st.sampled_from(_KEYS), _any_list),
    st.builds(lambda k, v: models.FieldCondition(key=k, match=models.MatchExcept(**{"except": v})),
              st.sampled_from(_KEYS), _any_list),
    st.builds(lambda k, b: models.FieldCondition(key=k, range=_range(b)), st.sampled_from(_KEYS),
              st.tuples(_bound, _bound, _bound, _bound).filter(lambda b: any(x is not None for x in b))),
    st.builds(lambda k: models.IsNullCondition(is_null=models.PayloadField(key=k)), st.sampled_from(_KEYS)),
    st.builds(lambda k, v: models.FieldCondition(key=k, is_null=v), st.sampled_from(_KEYS), st.booleans()),
    st.builds(lambda ids: models.HasIdCondition(has_id=ids), st.lists(st.integers(0, 15), max_size=4)),
)
_clause = st.one_of(st.none(), st.lists(st.deferred(lambda: _cond), max_size=3))
_filter = st.builds(lambda a, b, c: models.Filter(must=a, should=b, must_not=c), _clause, _clause, _clause)
_cond = st.one_of(_leaf, _leaf, _leaf, _filter)


@pytest.fixture(scope="module")
def client():
    c = QdrantClient(":memory:")
    yield c
    c.close()


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(payloads=st.lists(_payload, min_size=1, max_size=16), qf=_filter, data=st.data())
def test_filters_equal_qdrant(client, payloads, qf, data):
    n = len(payloads)
    if client.collection_exists("p"):
        client.delete_collection("p")
    client.create_collection("p", vectors_config={}, sparse_vectors_config={"v": models.SparseVectorParams()})
    client.upsert("p", points=[
        models.PointStruct(id=i, payload=p, vector={"v": models.SparseVector(indices=[0], values=[1.0])})
        for i, p in enumerate(payloads)
    ])
    want = sorted(p.id for p in client.scroll("p", scroll_filter=qf, limit=100)[0])

    # several segments, some deleted and re-added: the filter is evaluated per segment
    index = SparseIndex(None, quantization="float")
    cut = data.draw(st.integers(0, n))
    index.add([{0: 1.0}] * cut, ids=list(range(cut)), payloads=payloads[:cut])
    index.search({0: 1.0})  # commits a first segment
    index.add([{0: 1.0}] * (n - cut), ids=list(range(cut, n)), payloads=payloads[cut:])
    form = data.draw(st.sampled_from(["model", "dict"]))
    qarg = qf if form == "model" else qf.model_dump(by_alias=True, exclude_none=True)
    got = sorted(h.id for h in index.search({0: 1.0}, limit=100, query_filter=qarg))
    assert got == want, (translate_filter(qf), payloads)
    # the reference semantics of the translated filter agree too
    ref = compile_filter(translate_filter(qf))
    assert sorted(i for i, p in enumerate(payloads) if ref.matches(p, id=i)) == want


# -- limit, payload selection, vectors, threshold -----------------------------------------------
@pytest.fixture
def small():
    index = SparseIndex(None, quantization="float")
    index.add(
        [{1: 1.0, 2: 0.5}, {1: 0.25}, {2: 2.0, 7: 1.0}],
        ids=["a", "b", "c"],
        payloads=[{"year": 1984, "meta": {"lang": "en", "n": 1}}, {"year": 1990}, None],
    )
    return index


def test_limit_and_k(small):
    assert [h.id for h in small.search({1: 1.0}, limit=1)] == ["a"]
    assert small.search({1: 1.0}, limit=2) == small.search({1: 1.0}, k=2)
    with pytest.raises(ValueError, match="not both"):
        small.search({1: 1.0}, k=3, limit=2)
    with pytest.raises(ValueError):
        small.search({1: 1.0}, limit=0)


def test_with_payload(small):
    (hit,) = small.search({1: 1.0}, limit=1, with_payload=False)
    assert hit.payload is None and hit.vector is None
    (hit,) = small.search({1: 1.0}, limit=1, with_payload=["year", "meta.lang", "nope"])
    assert hit.payload == {"year": 1984, "meta": {"lang": "en"}}
    (hit,) = small.search({1: 1.0}, limit=1, with_payload=models.PayloadSelectorExclude(exclude=["meta.n"]))
    assert hit.payload == {"year": 1984, "meta": {"lang": "en"}}
    (hit,) = small.search({1: 1.0}, limit=1, with_payload=models.PayloadSelectorInclude(include=["year"]))
    assert hit.payload == {"year": 1984}
    assert small.get("a").payload == {"year": 1984, "meta": {"lang": "en", "n": 1}}  # untouched
    with pytest.raises(TypeError, match="with_payload"):
        small.search({1: 1.0}, with_payload=3)
    with pytest.raises(ValueError, match=r"with_payload: 'a\[\]\.b' is not a payload key"):
        small.search({1: 1.0}, with_payload=["a[].b"])
    with pytest.raises(ValueError, match="with_payload"):
        small.search({1: 1.0}, with_payload=["a..b"])
    with pytest.raises(TypeError, match=r"with_payload='year': a bare string.*\['year'\]"):
        small.search({1: 1.0}, with_payload="year")  # Qdrant takes a bool, a list or a selector


def test_nan_range_bound_names_the_query_filter_clause(small):
    for bad in (float("nan"), float("inf")):
        flt = models.Filter(must=[models.FieldCondition(key="year", range=models.Range(lt=bad))])
        with pytest.raises(FilterError, match=r"query_filter at must\[0\]\.range: the lt bound of a range on 'year' must be a finite"):
            small.search({1: 1.0}, query_filter=flt)
    with pytest.raises(FilterError, match=r"query_filter at must\[0\]\.range: the gte bound"):
        small.search({1: 1.0}, query_filter={"must": [{"key": "year", "range": {"gte": float("nan")}}]})


def test_with_vectors(small):
    hits = small.search({2: 1.0}, with_vectors=True)
    assert [h.id for h in hits] == ["c", "a"]
    assert hits[0].vector.as_dict() == {2: 2.0, 7: 1.0} and hits[1].vector.as_dict() == {1: 1.0, 2: 0.5}
    assert "vector=<2 terms>" in repr(hits[0])
    with pytest.raises(TypeError, match="named vectors"):
        small.search({2: 1.0}, with_vectors=["v"])
    (batch,) = small.search_batch([{2: 1.0}], with_vectors=True, with_payload=False)
    assert [(h.id, h.vector.as_dict(), h.payload) for h in batch] == [(h.id, h.vector.as_dict(), None) for h in hits]


def test_score_threshold(small):
    assert [h.id for h in small.search({1: 1.0}, score_threshold=0.25)] == ["a"]  # strictly above, as Qdrant
    assert [h.id for h in small.search({1: 1.0}, score_threshold=0.2)] == ["a", "b"]
    assert [[h.id for h in r] for r in small.search_batch([{1: 1.0}, {2: 1.0}], score_threshold=1.0)] == [[], ["c"]]
    with pytest.raises(TypeError):
        small.search({1: 1.0}, score_threshold="high")


def test_filter_and_query_filter_and(small):
    hits = small.search({1: 1.0, 2: 1.0}, filter={"year": {"$gte": 1980}},
                        query_filter=models.Filter(must_not=[models.HasIdCondition(has_id=["b"])]))
    assert [h.id for h in hits] == ["a"]


# -- Qdrant's scores, with quantization="float" -------------------------------------------------
def _vaswani(shared, n_docs, n_queries):
    docs = [json.loads(x) for x in (shared / "data" / "vaswani" / "corpus.jsonl").read_text().splitlines()[:n_docs]]
    qs = [json.loads(x) for x in (shared / "data" / "vaswani" / "queries.jsonl").read_text().splitlines()[:n_queries]]
    return [d["text"] for d in docs], [q["text"] for q in qs]


def _to_qdrant_vec(v):
    return models.SparseVector(indices=[int(i) for i in v.indices], values=[float(x) for x in v.values])


def test_same_hits_and_scores_as_qdrant_on_vaswani(shared):
    """BM25 weights of vaswani documents (vectors you bring), searched by sparsedex (float) and
    by Qdrant: the same ids in the same order and the same scores (f32 sums: 1e-5 relative)."""
    texts, queries = _vaswani(shared, 2000, 40)
    ref = SparseIndex("bm25", quantization="float")
    ref.add(texts)
    dv = [ref.get(i).vector for i in range(len(texts))]  # BM25 document weights
    qv = [ref._query_vector(q, ref._snap()) for q in queries]  # idf * qtf
    index = SparseIndex(None, quantization="float")
    index.add(dv, payloads=[{"even": i % 2 == 0} for i in range(len(dv))])
    client = QdrantClient(":memory:")
    client.create_collection("v", vectors_config={}, sparse_vectors_config={"bm25": models.SparseVectorParams()})
    client.upload_points("v", [models.PointStruct(id=i, vector={"bm25": _to_qdrant_vec(v)}, payload={"even": i % 2 == 0})
                               for i, v in enumerate(dv)])
    flt = models.Filter(must=[models.FieldCondition(key="even", match=models.MatchValue(value=True))])
    compared = 0
    for q in qv:
        if q.nnz == 0:
            continue
        for qf in (None, flt):
            theirs = client.query_points("v", query=_to_qdrant_vec(q), using="bm25", limit=10, query_filter=qf).points
            ours = index.search(q, limit=10, query_filter=qf)
            assert len(ours) == len(theirs)
            for a, b in zip(ours, theirs):
                assert a.score == pytest.approx(b.score, rel=1e-5)
            # same ids, in the same order up to ties (equal scores in f32)
            assert _tie_groups(ours, lambda h: h.id) == _tie_groups(theirs, lambda p: p.id)
            compared += 1
    assert compared >= 70


def _tie_groups(hits, key):
    """Ids grouped by equal score (1e-5 relative: f32 vs f64 sums), best first; the last group
    is left out (the limit may cut it)."""
    out: list[set] = []
    last = None
    for h in hits:
        if last is not None and abs(h.score - last) <= 1e-5 * max(1.0, abs(last)):
            out[-1].add(key(h))
        else:
            out.append({key(h)})
        last = h.score
    return out[:-1]


def test_qdrant_bm25_index_applies_idf_as_qdrant(shared):
    """SparseIndex("Qdrant/bm25") scores as a Qdrant collection with Modifier.IDF fed fastembed's
    vectors: same ids and scores, for text queries and for query_embed vectors."""
    from sparsedex import SparseTextEmbedding

    texts, queries = _vaswani(shared, 300, 15)
    model = SparseTextEmbedding("Qdrant/bm25")
    index = SparseIndex("Qdrant/bm25", quantization="float")
    index.add(texts)
    index.delete([5, 17])
    client = QdrantClient(":memory:")
    client.create_collection("b", vectors_config={},
                             sparse_vectors_config={"bm25": models.SparseVectorParams(modifier=models.Modifier.IDF)})
    client.upload_points("b", [models.PointStruct(id=i, vector={"bm25": _to_qdrant_vec(v)})
                               for i, v in enumerate(model.embed(texts)) if i not in (5, 17)])
    for q, qv in zip(queries, model.query_embed(queries)):
        theirs = client.query_points("b", query=_to_qdrant_vec(qv), using="bm25", limit=5).points
        for ours in (index.search(q, limit=5), index.search(qv, limit=5)):
            assert [h.score for h in ours] == pytest.approx([p.score for p in theirs], rel=1e-5)
            assert _tie_groups(ours, lambda h: h.id) == _tie_groups(theirs, lambda p: p.id)


def test_qdrant_bm25_index_reopens_with_idf(tmp_path):
    index = SparseIndex("Qdrant/bm25", quantization="float", path=tmp_path / "i")
    index.add(["the quick brown fox", "a lazy dog", "the fox and the dog"])
    index.commit()
    before = index.search("fox", limit=3)
    again = SparseIndex.open(tmp_path / "i")
    assert again.search("fox", limit=3) == before
    # idf: 'fox' is in 2 of 3 documents
    idf = math.log(1 + (3 - 2 + 0.5) / (2 + 0.5))
    doc = again.get(before[0].id).vector.as_dict()
    (fox,) = [t for t in again.encoder.encode_queries(["fox"])[0].indices.tolist()]
    assert before[0].score == pytest.approx(idf * doc[fox], rel=1e-6)


# -- the README: the article's fastembed + Qdrant code and ours print the same ------------------
def test_readme_seed_code_and_ours_agree(capsys):
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", readme, flags=re.S)
    (seed,) = [b for b in blocks if "from fastembed import SparseTextEmbedding\nfrom qdrant_client" in b]
    (ours,) = [b for b in blocks if "index.search(\n    query,\n    query_filter=" in b]
    # the seed with its import changed to sparsedex (and the bundled model: no download here)
    ported = seed.replace("from fastembed import", "from sparsedex import").replace(
        'model_name="prithivida/Splade_PP_en_v1"', 'model_name="splade-tiny"')
    exec(compile(ported, "README seed", "exec"), {"__name__": "readme"})
    theirs = capsys.readouterr().out.split()
    exec(compile(ours, "README ours", "exec"), {"__name__": "readme"})
    mine = capsys.readouterr().out.split()
    assert " ".join(mine[:-1]) == " ".join(theirs[:-1]) == "This Is Spinal Tap"
    assert float(mine[-1]) == pytest.approx(float(theirs[-1]), rel=1e-6)


def test_with_vectors_of_a_bm25_index_are_its_weights():
    index = SparseIndex("bm25", quantization="float")
    index.add(["the quick brown fox", "a lazy dog", "the fox and the dog"], payloads=[{"n": 1}, None, {"n": 3}])
    for h in index.search("fox dog", with_vectors=True, query_filter={"must": [{"key": "n", "range": {"gte": 1}}]}):
        assert h.vector == index.get(h.id).vector and h.payload is not None


def test_hit_vector_is_the_stored_float_vector_and_u8_scores_are_its_dot_product():
    import numpy as np

    from sparsedex import SparseIndex

    for quant in ("u8", "float"):
        ix = SparseIndex(None, quantization=quant)
        ix.add([{1: 0.5, 7: 1.2}], ids=["d"])
        (h,) = ix.search({1: 1.0, 7: 1.0}, limit=1, with_vectors=True)
        assert h.vector.indices.tolist() == [1, 7]
        assert np.array_equal(h.vector.values, np.asarray([0.5, 1.2], np.float32))  # as added, both kinds
        assert np.array_equal(ix.get("d").vector.values, h.vector.values)
        # float32 dot product of the stored vector, both kinds (a u8 index reranks by it)
        dot = float(np.float32(0.5) + np.float32(1.2))
        assert h.score == dot
        (raw,) = ix.search({1: 1.0, 7: 1.0}, limit=1, scores="impacts")
        if quant == "float":
            assert raw.score == dot
        else:  # the raw 8-bit scoring: 0.5 is 0.502 on the grid max_weight=1.2
            assert raw.score != pytest.approx(dot, rel=1e-6)
            assert raw.score == pytest.approx(dot, abs=2 * 1.2 / 255)


def test_live_df_counts_like_the_stored_vectors(tmp_path):
    """The engine's per-term live document frequency (what Qdrant's IDF modifier is computed
    from) equals a count over the stored vectors of the live documents: every impact kind,
    several segments, deletions, weights that round to 0 on the u8 grid."""
    from sparsedex import _qdrant

    rng = np.random.default_rng(0)
    for quant in ("u8", "float"):
        ix = SparseIndex(None, quant, path=tmp_path / quant)
        for part in range(3):
            ix.add([(sorted(rng.choice(300, 8, replace=False).tolist()), rng.uniform(0.001, 3, 8).tolist()) for _ in range(700)])
            ix.commit()
        ix.delete(list(range(0, 2100, 7)))
        ix.commit()
        snap = ix._snap()
        parts = []
        for st in snap.states:
            ip, ind, val = st.segment.index.vectors()
            parts.append((ip, ind, val, None if st.live_set is None else st.live_mask()))
        terms, df, n = _qdrant.collection_df(parts)
        probe = np.concatenate([terms, np.array([301, 2**32 - 1], np.uint32)])
        n2, df2 = snap.core.live_df(probe)
        assert n2 == n == 1800 and len(snap.states) >= 2
        assert df2.tolist() == df.tolist() + [0, 0]
        ix.close()
