"""Stop 67: vector input faults found by testers, fixed by helper-159. CSR arrays whose parts
are pandas objects (Series, nullable ``Int64`` / ``Float64`` arrays) are read as CSR arrays,
as numpy arrays are, their missing values named by position; a ``{term_id: weight}`` dict's
weight that is a list or a missing value is named by its key; empty object arrays are an
empty vector, as empty lists are; the command line says of a BM25 query none of whose words
occurs in the index that it is so, rather than blaming the encoder."""

import json
import re

import numpy as np
import pytest

from sparsedex import SparseIndex
from sparsedex.cli import main
from sparsedex.vectors import validate_embedding

# two rows: {1: 0.5, 3: 1.0} and {2: 2.0}
INDPTR, INDICES, VALUES = [0, 2, 3], [1, 3, 2], [0.5, 1.0, 2.0]


def _hits(results):
    return [[(h.id, h.score) for h in hits] for hits in results]


def _index():
    ix = SparseIndex(encoder=None)
    ix.add([{1: 1.0}, {2: 1.0, 3: 1.0}])
    return ix


def _pandas_triples(pd):
    return [
        (pd.array(INDPTR, dtype="Int64"), pd.array(INDICES, dtype="Int64"), pd.array(VALUES, dtype="Float64")),
        (pd.Index(INDPTR), pd.Series(INDICES, dtype="Int64"), pd.Series(VALUES, dtype="Float64")),
        (np.array(INDPTR), pd.Series(INDICES), pd.array(VALUES, dtype="Float64")),
        [pd.array(INDPTR, dtype="Int64"), pd.Series(INDICES), pd.Series(VALUES)],
    ]


def test_pandas_csr_parts_are_read_as_csr_arrays():
    """Int64 arrays got the advice "pass a Series {term_id: weight}": pandas arrays and Indexes
    (a Series first is a vector, below) now give what numpy arrays give."""
    pd = pytest.importorskip("pandas")
    ix = _index()
    want = _hits(ix.search_batch((np.array(INDPTR), np.array(INDICES), np.array(VALUES))))
    assert want == [[(1, 1.0), (0, 0.5)], [(1, 2.0)]]
    for triple in _pandas_triples(pd):
        assert _hits(ix.search_batch(triple)) == want, triple
        docs = SparseIndex(encoder=None)
        docs.add(triple)
        assert len(docs) == 2, triple
        assert docs.get(0).vector.as_dict() == {1: 0.5, 3: 1.0}
        assert docs.get(1).vector.as_dict() == {2: 2.0}


@pytest.mark.parametrize(
    "part, make, msg",
    [
        (0, lambda pd: pd.array([0, pd.NA, 3], dtype="Int64"), "indptr[1] is a missing value (pandas' <NA>), not an integer"),
        (1, lambda pd: pd.array([1, pd.NA, 2], dtype="Int64"), "indices[1] is a missing value (pandas' <NA>), not an integer"),
        (1, lambda pd: pd.Series([1, 3, pd.NA], dtype="Int64"), "indices[2] is a missing value (pandas' <NA>), not an integer"),
        (2, lambda pd: pd.array([0.5, 1.0, pd.NA], dtype="Float64"), "values[2] is a missing value (pandas' <NA>), not a number"),
    ],
)
def test_pandas_csr_parts_name_a_missing_value_by_position(part, make, msg):
    pd = pytest.importorskip("pandas")
    triple = [pd.array(INDPTR, dtype="Int64"), pd.array(INDICES, dtype="Int64"), pd.array(VALUES, dtype="Float64")]
    triple[part] = make(pd)
    with pytest.raises(ValueError, match="^" + re.escape(f"queries: CSR arrays: {msg}") + "$"):
        _index().search_batch(tuple(triple))
    ix = SparseIndex(encoder=None)
    with pytest.raises(ValueError, match="^" + re.escape(f"documents: CSR arrays: {msg}") + "$"):
        ix.add(tuple(triple))
    assert len(ix) == 0


def test_series_on_term_ids_are_still_vectors():
    # a Series of weights indexed by term id is one vector: three of them are three queries
    pd = pytest.importorskip("pandas")
    ix = _index()
    qs = (pd.Series([1, 2], index=[1, 2]), pd.Series([1.0], index=[3]), pd.Series([2], index=[2]))
    assert _hits(ix.search_batch(qs)) == _hits(ix.search_batch([{1: 1, 2: 2}, {3: 1.0}, {2: 2}]))


def test_integer_series_on_the_default_index_are_vectors():
    """helper-161: three integer Series on the default index (term frequencies,
    ``pd.Series(np.bincount(tokens))``) were read as CSR arrays: 2 result lists for 3 queries,
    and add() added 2 wrong documents or refused them. Each is one vector, as before stop 67."""
    pd = pytest.importorskip("pandas")
    ix = SparseIndex(encoder=None)
    ix.add([{0: 1.0, 1: 1.0, 2: 1.0, 3: 1.0, 4: 1.0, 5: 1.0}])
    for batch in ([pd.Series([0, 1, 2]), pd.Series([4, 5]), pd.Series([1.0, 1.0])],
                  (pd.Series([0, 1, 2]), pd.Series([4, 5]), pd.Series([1.0, 1.0]))):
        assert _hits(ix.search_batch(batch)) == [[(0, 3.0)], [(0, 9.0)], [(0, 2.0)]]
    docs = SparseIndex(encoder=None)
    series = [pd.Series(np.bincount(d)) for d in (np.array([1, 1, 2]), np.array([0, 2, 2, 2]), np.array([3]))]
    assert docs.add(series) == [0, 1, 2]
    assert docs.get(1).vector.as_dict() == {0: 1.0, 2: 3.0}


@pytest.mark.parametrize("weight", [[1.0], [1.0, 2.0], (1.0,)])
def test_dict_weight_that_is_a_list_is_named_by_its_key(weight):
    # it read "values must be 1-D, got shape (1, 1)"
    shown = "[1.0]" if weight == [1.0] else ("[1.0, 2.0]" if len(weight) == 2 else "(1.0,)")
    kind = "a tuple" if isinstance(weight, tuple) else "a list"  # a tuple was called a list (helper-162)
    msg = f"the weight of term 1 is {kind} ({shown}), not a number"
    with pytest.raises(ValueError, match="^" + re.escape(f"query: {msg}") + "$"):
        _index().search({1: weight})
    with pytest.raises(ValueError, match="^" + re.escape(f"document 1: {msg}") + "$"):
        SparseIndex(encoder=None).add([{2: 1.0}, {1: weight}])


def test_empty_object_arrays_are_an_empty_vector():
    # it read "values must be numbers, got dtype object", where empty lists give an empty vector
    ix = _index()
    empty = {"indices": np.array([], dtype=object), "values": np.array([], dtype=object)}
    assert ix.search(empty) == ix.search({"indices": [], "values": []}) == []
    assert ix.search((np.array([], dtype=np.int64), np.array([], dtype=object))) == []
    v = validate_embedding(empty)
    assert v.indices.dtype == np.uint32 and v.values.dtype == np.float32 and v.nnz == 0
    ix.add([empty])
    assert len(ix) == 3 and ix.get(2).vector.nnz == 0


def test_dict_missing_weight_is_named_by_its_key():
    # it read "values[0] is null (None), not a number (the weight of term 1)": a position in
    # a list the caller never wrote
    pd = pytest.importorskip("pandas")
    cases = [
        ({1: None}, "the weight of term 1 is null (None), not a number"),
        ({2: 1.0, 1: pd.NA}, "the weight of term 1 is a missing value (pandas' <NA>), not a number"),
        ({1: float("nan")}, "the weight of term 1 is a missing value (NaN), not a number"),
        ({2: 1.0, 5: np.float64("nan")}, "the weight of term 5 is a missing value (NaN), not a number"),
        ({1: "x"}, 'the weight of term 1 is a string ("x"), not a number'),
    ]
    for q, msg in cases:
        with pytest.raises(ValueError, match="^" + re.escape(f"query: {msg}") + "$"):
            _index().search(q)
        with pytest.raises(ValueError, match="^" + re.escape(f"document 1: {msg}") + "$"):
            SparseIndex(encoder=None).add([{2: 1.0}, q])
    # a weight that is a number out of range keeps its position and term; lists and arrays
    # are still named by position, with the term
    with pytest.raises(ValueError, match=r"^query: values\[0\] = -1.0 is negative \(the weight of term 2\)$"):
        _index().search({2: -1.0})
    with pytest.raises(ValueError, match=r"^query: values\[0\] = nan is not finite \(the weight of term 1\)$"):
        _index().search(([1], [float("nan")]))
    with pytest.raises(ValueError, match=r"^query: values\[1\] is null \(None\), not a number$"):
        _index().search(([1, 2], [1.0, None]))


@pytest.mark.parametrize("encoder", ["bm25", "Qdrant/bm25"])
def test_cli_bm25_query_without_a_known_word_says_so(capsys, tmp_path, encoder):
    # it read "the encoder keeps no term of this query": the encoder kept the words, the
    # index's documents hold none of them (helper-161: Qdrant/bm25's hashed terms too)
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(json.dumps(d) + "\n" for d in [
        {"id": "1", "text": "a rock band on tour"}, {"id": "2", "text": "jazz in the night club"}]))
    ix = tmp_path / "ix"
    assert main(["index", str(corpus), str(ix), "--encoder", encoder]) == 0
    capsys.readouterr()
    assert main(["search", str(ix), "zebra crossing"]) == 0
    out = capsys.readouterr().out
    assert out == ("no matching documents (none of this query's terms occurs in the index's documents, "
                   "so it matches no document)\n")
    # a query with no word at all is still the encoder's
    assert main(["search", str(ix), "\u200b"]) == 0
    assert "the encoder keeps no term of this query" in capsys.readouterr().out
    assert main(["search", str(ix), "rock"]) == 0
    assert "no matching documents" not in capsys.readouterr().out


def test_pandas_string_arrays_on_a_text_index_are_not_csr():
    """helper-163: a tuple of pandas string arrays given to a text index read "CSR arrays:
    indptr must have an integer dtype"; only integer pandas arrays and Indexes are an indptr."""
    pd = pytest.importorskip("pandas")
    ix = SparseIndex("bm25")
    triple = tuple(pd.array([t], dtype="string") for t in "pqr")
    with pytest.raises(TypeError, match="this index encodes texts"):
        ix.add(triple, ids=[1, 2, 3])
