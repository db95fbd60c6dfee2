"""Stop 66: faults found by testers, fixed by helper-155. An ``$ids`` filter id of the other
kind than the index's ids is an error naming it (it matched nothing without a word); a
``{term_id: weight}`` dict's key out of range is named by the key; pandas' NA in a nullable
array is named a missing value; refresh() says what its True means where it takes a
calibration file alone."""

import re

import numpy as np
import pytest

from sparsedex import FilterError, MergePolicy, SparseIndex


def _index(ids, path=None):
    ix = SparseIndex(encoder=None, path=path)
    ix.add([{1: 0.5}, {1: 1.0, 2: 0.5}, {2: 1.0}], ids=ids)
    if path is not None:
        ix.commit()
    return ix


@pytest.mark.parametrize(
    "ids, flt, where, shown, kind",
    [
        ([1, 2, 3], {"$ids": ["1"]}, "$ids[0]", "'1'", "a str but the index's ids are ints"),
        ([1, 2, 3], {"$ids": [2, "x"]}, "$ids[1]", "'x'", "a str but the index's ids are ints"),
        (["a", "b", "c"], {"$ids": [0]}, "$ids[0]", "0", "an int but the index's ids are strings"),
        (["a", "b", "c"], {"$ids": np.array([7])}, "$ids[0]", "7", "an int but the index's ids are strings"),
        (["a", "b", "c"], {"$or": [{"x": 1}, {"$not": {"$ids": ["a", 2**70]}}]}, "$or[1].$not.$ids[1]",
         str(2**70), "an int but the index's ids are strings"),
    ],
)
def test_ids_filter_of_the_other_kind_is_named(ids, flt, where, shown, kind):
    ix = _index(ids)
    msg = f"filter at {where}: id {shown} is {kind}"
    with pytest.raises(FilterError, match=re.escape(msg)):
        ix.search({1: 1.0}, filter=flt)
    with pytest.raises(FilterError, match=re.escape(msg)):
        ix.search_batch([{1: 1.0}, {2: 1.0}], filter=flt)
    with pytest.raises(ValueError, match=re.escape(msg)):  # a FilterError is a ValueError
        ix.search({1: 1.0}, query_filter=None, filter=flt)


def test_ids_filter_of_the_other_kind_from_qdrant_has_id_is_named():
    ix = _index(["a", "b", "c"])
    with pytest.raises(FilterError, match=r"id 3 is an int but the index's ids are strings"):
        ix.search({1: 1.0}, query_filter={"must": [{"has_id": [3]}]})


def test_ids_filter_of_the_right_kind_still_matches(tmp_path):
    ix = _index([1, 2, 3])
    assert {h.id for h in ix.search({1: 1.0, 2: 1.0}, filter={"$ids": [2, 3, 99]})} == {2, 3}
    assert [h.id for h in ix.search({1: 1.0}, filter={"$ids": []})] == []
    sx = _index(["a", "b", "c"], path=tmp_path / "ix")
    assert {h.id for h in sx.search({1: 1.0, 2: 1.0}, filter={"$ids": ["c", "zz"]})} == {"c"}
    sx.close()


def test_ids_filter_on_an_index_without_documents_matches_nothing(tmp_path):
    # no document yet: the index has no kind of ids, and either kind matches nothing
    for ix in (SparseIndex(encoder=None), SparseIndex(encoder=None, path=tmp_path / "e")):
        assert ix.search({1: 1.0}, filter={"$ids": [1]}) == []
        assert ix.search({1: 1.0}, filter={"$ids": ["a"]}) == []
        assert ix.search_batch([{1: 1.0}], filter={"$ids": ["a", 1]}) == [[]]
        ix.close()


def test_ids_filter_kind_is_the_searched_commits_on_a_durable_index(tmp_path):
    # the first ids staged, not committed: a search reads the commit, which has no document
    # (so matches nothing, whatever the filter); once committed, their kind is checked
    ix = SparseIndex(encoder=None, path=tmp_path / "ix")
    ix.add([{1: 1.0}], ids=["a"])
    assert ix.search({1: 1.0}, filter={"$ids": [5]}) == []
    ix.commit()
    with pytest.raises(FilterError, match=r"id 5 is an int but the index's ids are strings"):
        ix.search({1: 1.0}, filter={"$ids": [5]})
    reader = SparseIndex.open(tmp_path / "ix")
    with pytest.raises(FilterError, match=r"id 5 is an int but the index's ids are strings"):
        reader.search({1: 1.0}, filter={"$ids": [5]})
    reader.close()
    ix.close()


@pytest.mark.parametrize(
    "vec, msg",
    [
        ({1: 0.5, -1: 0.5}, "key -1 is negative"),
        ({np.int64(-3): 0.5}, "key -3 is negative"),
        ({1: 0.5, 2**32: 0.5}, "key 4294967296 is not below 2**32 = 4294967296 (term ids are 32-bit unsigned)"),
        ({2**70: 0.5, 1: 0.5}, f"key {2**70} is not below 2**32"),
        ({-(2**70): 0.5}, f"key {-(2**70)} is negative"),
    ],
)
def test_dict_key_out_of_range_is_named_by_the_key(vec, msg):
    # "indices[1] = -1 is negative" named a list the caller never wrote (stop 65 named a key
    # that is no integer by the key; one out of range was still named by position)
    ix = SparseIndex(encoder=None)
    ix.add([{1: 1.0}])
    with pytest.raises(ValueError, match="^" + re.escape(f"query: {msg}")):
        ix.search(vec)
    with pytest.raises(ValueError, match="^" + re.escape(f"query 1: {msg}")):
        ix.search_batch([{1: 1.0}, vec])
    with pytest.raises(ValueError, match="^" + re.escape(f"query: {msg}")):
        ix.explain(vec, 0)
    with pytest.raises(ValueError, match="^" + re.escape(f"document 1: {msg}")):
        ix.add([{2: 1.0}, vec])
    assert len(ix) == 1
    # lists and arrays are still named by position
    idx, val = list(vec), list(vec.values())
    with pytest.raises(ValueError, match=r"^query: indices\[\d\] = "):
        ix.search((idx, val))
    with pytest.raises(ValueError, match=r"^query: indices\[\d\] = "):
        ix.search({"indices": idx, "values": val})


def test_dict_key_past_the_vocabulary_is_named_by_the_key():
    ix = SparseIndex(encoder=None, vocab_size=100)
    ix.add([{1: 1.0}])
    with pytest.raises(ValueError, match=r"^query: key 100 is not below the vocabulary size \(100\)"):
        ix.search({5: 1.0, 100: 1.0})
    with pytest.raises(ValueError, match=r"^document 0: key 250 is not below the vocabulary size \(100\)"):
        ix.add([{250: 1.0}])


@pytest.mark.parametrize(
    "make, msg",
    [
        (lambda pd: ([1, 2], pd.array([0.5, pd.NA], dtype="Float64")),
         "values[1] is a missing value (pandas' <NA>), not a number (the weight of term 2)"),
        (lambda pd: (pd.array([1, 2], dtype="Int64"), pd.array([1, pd.NA], dtype="Int64")),
         "values[1] is a missing value (pandas' <NA>), not a number (the weight of term 2)"),
        (lambda pd: (pd.array([1, pd.NA], dtype="Int64"), [0.5, 0.5]),
         "indices[1] is a missing value (pandas' <NA>), not an integer"),
        (lambda pd: {"indices": pd.array([pd.NA, 2], dtype="Int64"), "values": [0.5, 0.5]},
         "indices[0] is a missing value (pandas' <NA>), not an integer"),
        (lambda pd: pd.Series([0.5, pd.NA], index=[1, 2], dtype="Float64"),
         "values[1] is a missing value (pandas' <NA>), not a number (the weight of term 2)"),
        (lambda pd: pd.Series([0.5, 0.7], index=pd.Index([1, pd.NA], dtype="Int64")),
         "indices[1] is a missing value (pandas' <NA>), not an integer"),
    ],
)
def test_pandas_nullable_missing_values_are_named(make, msg):
    # numpy makes NaN of a nullable array's pd.NA: it read "values[1] = nan is not finite" or
    # "indices must be integers, got dtype float64", where a list holding pd.NA is named a
    # missing value (stop 65)
    pd = pytest.importorskip("pandas")
    ix = SparseIndex(encoder=None)
    ix.add([{1: 1.0}])
    with pytest.raises(ValueError, match="^" + re.escape(f"query: {msg}")):
        ix.search(make(pd))
    with pytest.raises(ValueError, match="^" + re.escape(f"query 1: {msg}")):
        ix.search_batch([{1: 1.0}, make(pd)])
    with pytest.raises(ValueError, match="^" + re.escape(f"document 1: {msg}")):
        ix.add([{2: 1.0}, make(pd)])
    assert len(ix) == 1


def test_pandas_nullable_vectors_without_missing_values_still_work():
    pd = pytest.importorskip("pandas")
    ix = SparseIndex(encoder=None)
    ix.add([(pd.array([1, 2], dtype="Int64"), pd.array([0.5, 1.0], dtype="Float64"))])
    ix.add([pd.Series([2.0], index=pd.Index([2], dtype="Int64"), dtype="Float64")])
    assert [(h.id, h.score) for h in ix.search(([2], pd.array([1.0], dtype="Float64")))] == [(1, 2.0), (0, 1.0)]
    # a NaN of a numpy-backed Series is no pandas missing value: still "not finite"
    with pytest.raises(ValueError, match=r"^query: values\[1\] = nan is not finite \(the weight of term 2\)"):
        ix.search(pd.Series([0.5, float("nan")], index=[1, 2]))


def test_refresh_taking_only_a_calibration_file_returns_false(tmp_path):
    """refresh() returns True for a newer commit only: a calibration file another process
    rewrote (stop 65 made refresh() take it) is taken, and refresh() returns False, as its
    docstring and the README now say (they left open whether True meant that too)."""
    from test_calibration_file import QUERIES, _corpus

    path = tmp_path / "i"
    ix = SparseIndex.create(path, merge_policy=MergePolicy(factor=0))
    ix.add(_corpus(9000))
    ix.commit()
    ix.close()
    reader = SparseIndex.open(path)
    first = reader.calibrate(target_recall=0.97)
    other = SparseIndex.open(path)
    made = other.calibrate(QUERIES, target_recall=0.97)
    other.close()
    assert made != first
    assert reader.refresh() is False  # no newer commit
    assert reader.calibrate(target_recall=0.97) == made  # the file was taken all the same
    reader.close()


def test_object_arrays_holding_a_missing_value_name_it():
    """helper-157 M1: an object array (numpy or pandas) holding ``None`` or ``pd.NA`` as a
    vector's indices or values named only its dtype ("indices must be integers, got dtype
    object"), where a list holding one names it by position."""
    pd = pytest.importorskip("pandas")
    ix = SparseIndex(None)
    ix.add([{1: 1.0, 2: 1.0}])
    cases = [
        ({"indices": np.array([1, None], dtype=object), "values": [1.0, 1.0]}, r"indices\[1\] is null \(None\), not an integer"),
        ((np.array([1, pd.NA], dtype=object), [1.0, 1.0]), r"indices\[1\] is a missing value \(pandas' <NA>\), not an integer"),
        ({"indices": [1, 2], "values": np.array([1.0, None], dtype=object)}, r"values\[1\] is null \(None\), not a number"),
        (pd.Series([1.0, None], index=[1, 2], dtype=object), r"values\[1\] is null \(None\), not a number"),
        (pd.Series([1.0, 2.0], index=pd.Index([1, None], dtype=object)), r"indices\[1\] is null \(None\), not an integer"),
    ]
    for q, msg in cases:
        with pytest.raises(ValueError, match="^query: " + msg):
            ix.search(q)
    with pytest.raises(ValueError, match=r"^document 0: indices\[1\] is null \(None\), not an integer"):
        ix.add([cases[0][0]])
    # an object array of valid numbers is still taken
    assert ix.search({"indices": np.array([1, 2], dtype=object), "values": [1.0, 1.0]})[0].id == 0


def test_ids_filter_on_an_emptied_index_matches_nothing_either_way():
    """helper-157 M2: with every document deleted, a ``$ids`` filter of the other kind raised
    or returned ``[]`` depending on whether a commit came between the add and the delete. A
    snapshot without live documents matches nothing whatever the filter: not checked."""
    for search_between in (False, True):
        ix = SparseIndex(None)
        ix.add([{1: 1.0}], ids=["s"])
        if search_between:
            ix.search({1: 1.0})  # commits the add
        ix.delete(["s"])
        assert ix.search({1: 1.0}, filter={"$ids": [1]}) == []
        assert ix.search_batch([{1: 1.0}], filter={"$ids": [1]}) == [[]]
    ix = SparseIndex(None)
    ix.add([{1: 1.0}, {1: 2.0}], ids=["s", "t"])
    ix.search({1: 1.0})
    ix.delete(["s"])
    with pytest.raises(FilterError, match=r"id 1 is an int but the index's ids are strings"):
        ix.search({1: 1.0}, filter={"$ids": [1]})
