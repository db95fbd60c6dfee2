"""Stop 67: faults about document ids and filters found by testers, fixed by helper-160.
Errors from a Qdrant ``query_filter`` name the user's Qdrant place (``must_not[0].has_id[0]``),
not the translation's (``$not.$ids[0]``); pandas' NA in ``$ids``, filter values and payloads
is named a missing value, as elsewhere ("got NAType" before); ``get`` / ``delete`` / HTTP
``/get`` of an id of the other kind say that it is of the other kind; an ``$ids`` int outside
the signed 64-bit range is a FilterError (it matched nothing without a word); and the kind of
an index's ids no longer depends on whether a commit came between deleting every document
and the next add."""

from __future__ import annotations

import json
import re

import pytest

from sparsedex import FilterError, SparseIndex
from sparsedex import _http


def _index(ids, path=None):
    ix = SparseIndex(encoder=None, path=path)
    ix.add([{1: 0.5}, {1: 1.0, 2: 0.5}, {2: 1.0}], ids=ids, payloads=[{"x": 1}, {"x": 2}, {"x": 3}])
    if path is not None:
        ix.commit()
    return ix


# 1. a Qdrant filter's errors name its own places ----------------------------------------------
@pytest.mark.parametrize(
    "ids, qf, msg",
    [
        ([1, 2, 3], {"must_not": [{"has_id": ["1"]}]},
         "query_filter at must_not[0].has_id[0]: id '1' is a str but the index's ids are ints"),
        ([1, 2, 3], {"must": [{"key": "x", "match": {"value": 1}}], "should": [{"has_id": [2, "z"]}]},
         "query_filter at should[0].has_id[1]: id 'z' is a str but the index's ids are ints"),
        (["a", "b", "c"], {"must": [{"must_not": [{"has_id": ["a", 7]}]}]},
         "query_filter at must[0].must_not[0].has_id[1]: id 7 is an int but the index's ids are strings"),
        (["a", "b", "c"], {"min_should": {"conditions": [{"key": "x", "match": {"value": 1}}, {"has_id": [3]}],
                                          "min_count": 1}},
         "query_filter at min_should.conditions[1].has_id[0]: id 3 is an int but the index's ids are strings"),
    ],
)
def test_qdrant_has_id_of_the_other_kind_names_the_qdrant_place(ids, qf, msg):
    ix = _index(ids)
    with pytest.raises(FilterError, match="^" + re.escape(msg)):
        ix.search({1: 1.0}, query_filter=qf)
    with pytest.raises(FilterError, match="^" + re.escape(msg)):
        ix.search_batch([{1: 1.0}], query_filter=qf)
    # beside a sparsedex filter= too (the two are combined into one filter)
    with pytest.raises(FilterError, match="^" + re.escape(msg)):
        ix.search({1: 1.0}, filter={"x": {"$gte": 0}}, query_filter=qf)


def test_filter_beside_a_query_filter_names_its_own_place():
    """helper-161: with filter= and query_filter= both given, an $ids id of the other kind in
    filter= was named at "$and[0].$ids[0]", a place the user never wrote."""
    ix = _index([1, 2, 3])
    qf = {"must": [{"has_id": [1, 2]}]}
    want = "filter at $ids[0]: id 'y' is a str but the index's ids are ints"
    with pytest.raises(FilterError, match="^" + re.escape(want)):
        ix.search({1: 1.0}, filter={"$ids": ["y"]}, query_filter=qf)
    with pytest.raises(FilterError, match="^" + re.escape(want)):
        ix.search_batch([{1: 1.0}], filter={"$ids": ["y"]}, query_filter=qf)
    with pytest.raises(FilterError, match="^" + re.escape("query_filter at must[0].has_id[1]: id 'q' is a str")):
        ix.search({1: 1.0}, filter={"$ids": [1]}, query_filter={"must": [{"has_id": [1, "q"]}]})
    # the combination still filters by both
    assert [h.id for h in ix.search({1: 1.0}, filter={"$ids": [1, 3]}, query_filter=qf)] == [1]


def test_qdrant_has_id_from_qdrant_client_models_names_the_qdrant_place():
    models = pytest.importorskip("qdrant_client.models")
    ix = _index([1, 2, 3])
    qf = models.Filter(must_not=[models.HasIdCondition(has_id=[1]), models.HasIdCondition(has_id=[2, "q"])])
    with pytest.raises(FilterError, match=re.escape("query_filter at must_not[1].has_id[1]: id 'q' is a str")):
        ix.search({1: 1.0}, query_filter=qf)


@pytest.mark.parametrize(
    "qf, msg",
    [
        ({"must": [{"key": "x", "match": {"value": "\ud800"}}]},
         "query_filter at must[0].match: the string holds a lone surrogate"),
        ({"should": [{"key": "x", "match": {"any": [1, "a\udc00"]}}]},
         "query_filter at should[0].match.any[1]: the string holds a lone surrogate"),
        ({"must_not": [{"has_id": [1, "\ud800"]}]},
         "query_filter at must_not[0].has_id[1]: the string holds a lone surrogate"),
        ({"must": [{"key": "x", "range": {"gte": 0, "lt": 10**5000}}]},
         "query_filter at must[0].range.lt: the integer has too many digits"),
        ({"must": [{"key": "a..b", "match": {"value": 1}}]},
         "query_filter at must[0]: invalid field path 'a..b' (empty segment)"),
        ({"must_not": [{"is_null": {"key": "$x"}}]},
         "query_filter at must_not[0].is_null: key '$x' cannot be translated into a sparsedex filter: a sparsedex "
         "filter cannot address a key beginning with $"),
    ],
)
def test_qdrant_filter_value_errors_name_the_qdrant_place(qf, msg):
    ix = _index([1, 2, 3])
    with pytest.raises(FilterError, match="^" + re.escape(msg)):
        ix.search({1: 1.0}, query_filter=qf)


def test_qdrant_has_id_still_matches():
    ix = _index([1, 2, 3])
    assert {h.id for h in ix.search({1: 1.0, 2: 1.0}, query_filter={"must_not": [{"has_id": [1]}]})} == {2, 3}
    assert {h.id for h in ix.search({1: 1.0, 2: 1.0}, filter={"x": {"$lte": 2}},
                                    query_filter={"must": [{"has_id": [2, 3]}]})} == {2}


# 2. pandas' NA is named a missing value ----------------------------------------------------------
def test_pandas_na_in_filters_and_payloads_is_named_a_missing_value():
    pd = pytest.importorskip("pandas")
    ix = _index([1, 2, 3])
    na = "a missing value (pandas' <NA>)"
    cases = [
        (dict(filter={"$ids": [1, pd.NA]}), f"filter at $ids[1]: an id is an int or a str, got {na}"),
        (dict(filter={"x": pd.NA}), f"filter at x: expected a scalar (null, bool, number or string), got {na}"),
        (dict(filter={"x": {"$in": [1, pd.NA]}}), f"filter at x.$in[1]: expected a scalar (null, bool, number or "
                                                  f"string), got {na}"),
        (dict(filter={"x": {"$gt": pd.NA}}), f"filter at x.$gt: expected a number, got {na}"),
        (dict(query_filter={"must": [{"has_id": [pd.NA]}]}),
         f"query_filter at must[0].has_id[0]: an id is an int or a str, got {na}"),
        (dict(query_filter={"must": [{"key": "x", "match": {"any": [1, pd.NA]}}]}),
         f"query_filter at must[0].match.any[1]: match values are str, int or bool, got {na}"),
        (dict(query_filter={"must": [{"key": "x", "range": {"gte": pd.NA}}]}),
         f"query_filter at must[0].range: the gte bound of a range on 'x' is {na}, not a number"),
    ]
    for kw, msg in cases:
        with pytest.raises(FilterError, match="^" + re.escape(msg)):
            ix.search({1: 1.0}, **kw)
    with pytest.raises(ValueError, match=re.escape(f"payload of document 1 at a.b: {na} is not a JSON value")):
        ix.add([{1: 1.0}, {1: 1.0}], ids=[8, 9], payloads=[None, {"a": {"b": pd.NA}}])
    with pytest.raises(ValueError, match=re.escape("payload of document 0 at t[1]: a missing value (pandas' NaT) is")):
        ix.add([{1: 1.0}], ids=[8], payloads=[{"t": [1, pd.NaT]}])
    assert len(ix) == 3


# 3. get / delete / HTTP /get of an id of the other kind -----------------------------------------
@pytest.mark.parametrize("durable", [False, True])
def test_get_and_delete_of_an_id_of_the_other_kind_say_so(tmp_path, durable):
    for ids, other, says in (([1, 2, 3], "1", "(a str; the index's ids are ints)"),
                             (["a", "b", "c"], 7, "(an int; the index's ids are strings)")):
        ix = _index(ids, tmp_path / f"ix{ids[0]}" if durable else None)
        msg = f"no document with id {other!r} in the index {says}"
        with pytest.raises(KeyError, match=re.escape(msg)):
            ix.get(other)
        with pytest.raises(KeyError, match=re.escape(msg)):
            ix.delete(other)
        with pytest.raises(KeyError, match=re.escape(msg)):
            ix.delete([ids[0], other])
        assert ix.delete([ids[0], other], missing_ok=True) == 1
        # an id of the right kind that is not there says nothing about kinds
        with pytest.raises(KeyError) as e:
            ix.get(ids[1] * 5)
        assert "the index's ids are" not in str(e.value)
        ix.close()


def test_http_get_of_an_id_of_the_other_kind_says_so():
    ix = _index([1, 2, 3])
    status, obj = _http.respond(ix, "/get", json.dumps({"id": "2"}).encode())
    assert status == 404
    assert obj == {"error": "no document with id '2' in the index (a str; the index's ids are ints)"}
    sx = _index(["a", "b", "c"])
    status, obj = _http.respond(sx, "/get", json.dumps({"id": 0}).encode())
    assert status == 404
    assert obj == {"error": "no document with id 0 in the index (an int; the index's ids are strings)"}
    assert _http.respond(ix, "/get", json.dumps({"id": 2}).encode())[0] == 200


# 4. $ids ints outside the signed 64-bit range ---------------------------------------------------
@pytest.mark.parametrize(
    "flt, where, shown",
    [
        ({"$ids": [2**63]}, "filter at $ids[0]", str(2**63)),
        ({"$ids": [1, -(2**63) - 1]}, "filter at $ids[1]", str(-(2**63) - 1)),
        ({"$or": [{"x": 1}, {"$not": {"$ids": [2**64]}}]}, "filter at $or[1].$not.$ids[0]", str(2**64)),
    ],
)
def test_ids_filter_int_outside_int64_is_an_error(flt, where, shown):
    ix = _index([1, 2, 3])
    msg = f"{where}: id {shown} is outside the signed 64-bit range of integer ids (-2**63 .. 2**63 - 1)"
    with pytest.raises(FilterError, match="^" + re.escape(msg)):
        ix.search({1: 1.0}, filter=flt)
    with pytest.raises(FilterError, match="^" + re.escape(msg)):
        ix.search_batch([{1: 1.0}], filter=flt)


def test_has_id_int_outside_int64_is_an_error_naming_the_qdrant_place():
    ix = _index([1, 2, 3])
    with pytest.raises(FilterError, match=re.escape("query_filter at must[0].has_id[1]: id 18446744073709551616 "
                                                    "is outside the signed 64-bit range")):
        ix.search({1: 1.0}, query_filter={"must": [{"has_id": [1, 2**64]}]})


def test_ids_filter_at_the_int64_bounds_still_works():
    ix = SparseIndex(encoder=None)
    ix.add([{1: 1.0}, {1: 2.0}, {1: 3.0}], ids=[2**63 - 1, -(2**63), 0])
    assert {h.id for h in ix.search({1: 1.0}, filter={"$ids": [2**63 - 1, -(2**63)]})} == {2**63 - 1, -(2**63)}
    # on an index of str ids an int is named as the other kind, whatever its size
    sx = _index(["a", "b", "c"])
    with pytest.raises(FilterError, match=r"id 36893488147419103232 is an int but the index's ids are strings"):
        sx.search({1: 1.0}, filter={"$ids": [2**65]})


# 5. the kind of an emptied index's ids does not depend on a commit -----------------------------
def _add_delete(path, kind_ids, commit_after_add, commit_after_delete):
    ix = SparseIndex(encoder=None, path=path)
    ix.add([{1: 1.0}], ids=kind_ids)
    if commit_after_add:
        _commit(ix)
    ix.delete(kind_ids)
    if commit_after_delete:
        _commit(ix)
    return ix


def _commit(ix):
    if ix.path is not None:
        ix.commit()
    else:
        len(ix)  # an in-memory index commits before a read


@pytest.mark.parametrize("durable", [False, True])
@pytest.mark.parametrize("commit_after_add", [False, True])
@pytest.mark.parametrize("commit_after_delete", [False, True])
def test_emptied_index_keeps_its_id_kind_with_or_without_a_commit(tmp_path, durable, commit_after_add,
                                                                   commit_after_delete):
    for first, other, says in (([1], ["a"], "is a str but the index's ids are ints"),
                               (["a"], [1], "is an int but the index's ids are strings")):
        ix = _add_delete(tmp_path / f"ix{first[0]}" if durable else None, first, commit_after_add,
                         commit_after_delete)
        with pytest.raises(TypeError, match=re.escape(says)):
            ix.add([{1: 1.0}], ids=other)
        ix.add([{1: 1.0}], ids=[first[0]])  # the same kind is taken
        if durable:
            ix.commit()
        assert ix.ids() == first
        ix.close()


def test_emptied_index_keeps_its_id_kind_when_opened_again(tmp_path):
    ix = _add_delete(tmp_path / "ix", ["a"], False, True)
    ix.close()
    r = SparseIndex.open(tmp_path / "ix")
    with pytest.raises(TypeError, match="is an int but the index's ids are strings"):
        r.add([{1: 1.0}], ids=[1])
    with pytest.raises(ValueError, match="this index has string ids"):
        r.add([{1: 1.0}])
    r.add([{1: 1.0}], ids=["b"])
    r.commit()
    assert r.ids() == ["b"]
    r.close()


def test_rollback_of_the_first_add_still_forgets_the_kind(tmp_path):
    ix = SparseIndex(encoder=None, path=tmp_path / "ix")
    ix.add([{1: 1.0}], ids=["a"])
    ix.rollback()
    ix.add([{1: 1.0}], ids=[1])
    ix.commit()
    assert ix.ids() == [1]
    ix.close()


@pytest.mark.parametrize("durable", [False, True])
def test_lookup_of_an_int_outside_int64_says_so(tmp_path, durable):
    """helper-161: $ids said an int outside the signed 64-bit range can be no document's id;
    get / delete / explain said only "no document with id ... in the index"."""
    ix = _index([1, 2, 3], tmp_path / "ix" if durable else None)
    for big in (2**64, -(2**63) - 1):
        why = f"no document with id {big} in the index (outside the signed 64-bit range of int ids)"
        for call in (lambda: ix.get(big), lambda: ix.delete(big), lambda: ix.delete([1, big]),
                     lambda: ix.explain({1: 1.0}, big)):
            with pytest.raises(KeyError, match="^" + re.escape(repr(why)) + "$"):
                call()
    assert ix.delete([1, 2**64], missing_ok=True) == 1
