"""Every input handled (issue 9, items 1-8; issue 11, item 9): each reported example, plus
further inputs of the same kind, refused at the door with an error that names what is wrong,
or kept exactly; a refused call changes nothing."""

from __future__ import annotations

import copy
import json
import math
import shutil
import unicodedata
from pathlib import Path

import numpy as np
import pytest

from sparsedex import FilterError, SparseIndex
from sparsedex._segment import SegmentView
from sparsedex._validate import MAX_K, max_threads
from sparsedex.encoders.analysis import Analyzer
from sparsedex.eval import evaluate, read_qrels, read_run

DATA = Path(__file__).resolve().parent / "data"
NFD = lambda s: unicodedata.normalize("NFD", s)  # noqa: E731


def staged(ix: SparseIndex) -> dict:
    """Everything a refused call must leave as it was: staged rows, deletions, ids, BM25 terms."""
    st = ix._store
    enc = ix._encoder
    return copy.deepcopy({
        **st.staged(),  # staged rows (ids, payloads, texts), deletions, next id, generation
        "terms": list(enc.vocabulary.terms) if getattr(enc, "kind", None) == "bm25" else None,
    })


# 1. text normalisation in BM25 ---------------------------------------------------------------
def test_nfc_and_nfd_forms_of_a_word_match():
    ix = SparseIndex("bm25", "float")
    ix.add([NFD("A résumé from Zürich"), "Résumé writing in Zürich", "nothing here"], ids=["nfd", "nfc", "x"])
    for q in ["résumé", NFD("résumé"), "Zürich", NFD("Zürich"), "RÉSUMÉ", NFD("ZÜRICH")]:
        assert {h.id for h in ix.search(q)} == {"nfd", "nfc"}, q
    an = ix.encoder.analyzer
    assert an(NFD("résumé Zürich")) == an("résumé Zürich") == ["résumé", "zürich"]


@pytest.mark.parametrize(
    "a, b",
    [
        ("Straße", "STRASSE"),              # full case folding: ß folds to ss
        ("ﬁle", "file"),                   # NFKC: the ligature is two letters
        ("Ｚürich", "zürich"),              # NFKC: full-width letters
        ("ΟΔΌΣ", "οδός"),                   # final sigma folds with sigma
        (NFD("Ångström"), "ångström"),      # two combining marks in one word
    ],
)
def test_more_forms_of_one_word_analyse_alike(a, b):
    an = Analyzer()
    assert an(a) == an(b) and len(an(a)) == 1


def test_combining_marks_stay_inside_their_word():
    an = Analyzer(stemming=False)
    assert an("नमस्ते दुनिया") == ["नमस्ते", "दुनिया"]  # Devanagari vowel signs and virama are marks
    assert an("Spın̈al Tap") == ["spın̈al", "tap"]   # n + combining diaeresis has no precomposed form
    assert an("x_1 foo-bar, 42") == ["x_1", "foo", "bar", "42"]  # ASCII: \w+ as before


def test_normalization_options_and_config():
    assert Analyzer(normalization="NFC", stemming=False)("Ｚürich") == ["ｚürich"]  # NFC keeps full-width letters
    assert Analyzer(normalization="NFC", stemming=False)(NFD("é")) == ["é"]
    legacy = Analyzer(normalization=None, token_pattern=r"\w+", stemming=False)
    assert legacy(NFD("Zürich")) == ["zu", "rich"]  # what sparsedex 0.1 did
    with pytest.raises(ValueError, match="normalization must be 'NFKC', 'NFC' or None"):
        Analyzer(normalization="NFD")
    cfg = Analyzer().config()
    assert cfg["normalization"] == "NFKC" and cfg["token_pattern"] is None
    assert Analyzer.from_config(json.loads(json.dumps(cfg))) == Analyzer()
    # a config written by sparsedex 0.1 has no "normalization": it keeps analysing as 0.1 did
    old = {"language": "english", "stemming": True, "stopwords": None, "lowercase": True, "token_pattern": r"\w+"}
    a = Analyzer.from_config(old)
    assert a.normalization is None and a(NFD("résumé")) == ["re", "sume"] and a("Straße") == ["straße"]


def test_stopwords_are_normalised_like_the_text():
    an = Analyzer(stopwords=["STRASSE", NFD("café")], stemming=False)
    assert an("die Straße am Café") == ["die", "am"]


def test_index_saved_before_normalisation_opens_and_searches_as_it_did(tmp_path):
    """tests/data/bm25-index-v0.1 was written by sparsedex 0.1 (tests/data/make_bm25_index_v0_1.py),
    with the hits that version returned."""
    src = DATA / "bm25-index-v0.1"
    expected = json.loads((DATA / "bm25-index-v0.1.expected.json").read_text())
    path = tmp_path / "old"
    shutil.copytree(src, path)
    ix = SparseIndex.open(path)
    assert ix.encoder.analyzer.normalization is None  # the saved analysis, not today's default
    for q in expected["queries"]:
        got = [[h.id, h.score] for h in ix.search(q, k=10)]
        want = expected["hits"][q]
        assert [g[0] for g in got] == [w[0] for w in want], q
        assert [g[1] for g in got] == pytest.approx([w[1] for w in want], rel=1e-6), q
    # adding to it keeps its analysis, so old and new documents stay comparable
    ix.add([NFD("Zürich again")], ids=["new"])
    ix.commit()
    assert {h.id for h in ix.search(NFD("Zürich"))} == {"d1", "new"}
    ix.close()
    again = SparseIndex.open(path)
    assert again.encoder.analyzer.normalization is None
    assert {h.id for h in again.search("rich")} == {"d1", "new"}


# 2. SPLADE window: see tests/test_text_window.py ----------------------------------------------


# 3. validate at the door ----------------------------------------------------------------------
SURROGATE_CASES = [
    # (index kwargs, add kwargs, message fragment)
    (dict(encoder=None), dict(documents=[{1: 1.0}, {2: 1.0}], payloads=[{"a": "ok"}, {"a": "\ud800"}]),
     "payload of document 1 at a: the string holds a lone surrogate (U+D800 at character 0)"),
    (dict(encoder=None), dict(documents=[{1: 1.0}], ids=["ok\udfffx"]),
     "id of document 0 holds a lone surrogate (U+DFFF at character 2)"),
    (dict(encoder="bm25"), dict(documents=["good text", "bad \ud800 text"]),
     "document 1 holds a lone surrogate (U+D800 at character 4)"),
    # further inputs of the kind: a surrogate in a payload key, deep in a list, a non-finite number
    (dict(encoder=None), dict(documents=[{1: 1.0}], payloads=[{"k\udc00": 1}]), "payload of document 0: key 'k\\udc00'"),
    (dict(encoder=None), dict(documents=[{1: 1.0}], payloads=[{"a": [{"b": ["x", "\ud83d"]}]}]),
     "payload of document 0 at a[0].b[1]: the string holds a lone surrogate"),
    (dict(encoder=None), dict(documents=[{1: 1.0}], payloads=[{"a": {"b": math.inf}}]),
     "payload of document 0 at a.b: expected a finite number, got inf"),
    (dict(encoder=None), dict(documents=[{1: 1.0}], payloads=[{"n": 10**5000}]),
     "payload of document 0 at n: the integer has too many digits"),
]


@pytest.mark.parametrize("on_disk", [False, True])
@pytest.mark.parametrize("index_kw, add_kw, message", SURROGATE_CASES)
def test_content_that_cannot_be_stored_is_refused_by_add(tmp_path, on_disk, index_kw, add_kw, message):
    ix = SparseIndex(index_kw["encoder"], path=tmp_path / "ix" if on_disk else None)
    good = ["first good document"] if index_kw["encoder"] else [{9: 1.0}]
    ix.add(good, ids=["g"] if "ids" in add_kw else None)
    before = staged(ix)
    with pytest.raises(ValueError) as e:
        ix.add(**add_kw)
    assert message in str(e.value)
    assert staged(ix) == before  # a failed add changes nothing
    n = len(add_kw["documents"])
    with pytest.raises(ValueError):
        ix.upsert(**{**add_kw, "ids": add_kw.get("ids", list(range(100, 100 + n)))})
    assert staged(ix) == before
    assert ix.commit() >= 0  # the good document commits: nothing unstorable was staged
    assert len(ix) == 1
    if on_disk:
        ix.close()
        assert len(SparseIndex.open(tmp_path / "ix")) == 1


def test_a_refused_add_leaves_bm25_terms_as_they_were(tmp_path):
    from sparsedex import IndexLockedError

    ix = SparseIndex("bm25", path=tmp_path / "ix")
    ix.add(["hello world"])
    ix.commit()
    ix.close()
    writer = SparseIndex.open(tmp_path / "ix")
    writer.add(["the writer holds the lock"])
    other = SparseIndex.open(tmp_path / "ix")
    terms = list(other.encoder.vocabulary.terms)
    with pytest.raises(IndexLockedError):
        other.add(["brand new vocabulary zyzzyva"])  # encoded, then refused by the lock
    assert other.encoder.vocabulary.terms == terms
    writer.close()


def test_a_surrogate_query_is_named():
    ix = SparseIndex("bm25")
    ix.add(["some text"])
    with pytest.raises(ValueError, match="query holds a lone surrogate"):
        ix.search("bad \ud800")
    with pytest.raises(ValueError, match="query 1 holds a lone surrogate"):
        ix.search_batch(["fine", "bad \udc00"])


# 4. silent rewrites: refused, or kept exactly ------------------------------------------------
@pytest.mark.parametrize(
    "payload, message",
    [
        ({1: "a", 2.5: "b"}, "payload of document 0: keys must be strings, got int 1"),
        ({"t": (1, 2)}, "payload of document 0 at t: tuple is not a JSON value (JSON would store a list"),
        ({"a": {True: 1}}, "payload of document 0 at a: keys must be strings, got bool True"),
        ({"s": {1, 2}}, "payload of document 0 at s: set is not a JSON value"),
        ({"b": b"bytes"}, "payload of document 0 at b: bytes is not a JSON value"),
        ({"x": np.array([1.0, 2.0])}, "payload of document 0 at x: a numpy array is not a JSON value"),
        ({"n": float("nan")}, "payload of document 0 at n: expected a finite number, got nan"),
    ],
)
def test_payloads_that_would_be_rewritten_are_refused(payload, message):
    ix = SparseIndex(None)
    with pytest.raises(ValueError) as e:
        ix.add([{1: 1.0}], payloads=[payload])
    assert message in str(e.value)
    assert len(ix) == 0


@pytest.mark.parametrize(
    "vector, message",
    [
        # a dict's bool weight by its key, as an np.bool_ one (helper-162)
        ({1: True, 2: False}, "document 0: the weight of term 1 is a bool (True), not a number"),
        (([1, 2], [0.5, True]), "document 0: values[1] is a bool (True), not a weight"),
        ((np.array([1, 2]), np.array([True, False])), "document 0: values are booleans (dtype bool)"),
        (([True, 2], [0.5, 0.5]), "document 0: indices[0] is a bool (True), not a term id"),
    ],
)
def test_bools_are_not_weights_or_term_ids(vector, message):
    ix = SparseIndex(None)
    with pytest.raises(ValueError) as e:
        ix.add([vector])
    assert message in str(e.value)


@pytest.mark.parametrize("weight", [3e38, 1e20, float(np.finfo(np.float32).max), 1.5e14])
def test_weights_that_could_overflow_scores_are_refused(weight):
    ix = SparseIndex(None, "float")
    with pytest.raises(ValueError, match=r"document 0: values\[0\] = .* is above the largest weight sparsedex accepts \(1e14\)"):
        ix.add([{1: weight}])
    with pytest.raises(ValueError, match=r"query: values\[0\] = .* is above the largest weight"):
        ix.search({1: weight})
    import scipy.sparse as sp

    with pytest.raises(ValueError, match="document 1: weight .* is above the largest weight"):
        ix.add(sp.csr_matrix(np.array([[0.0, 1.0], [weight, 0.0]])))
    with pytest.raises(ValueError, match="document 0: weight .* is above the largest weight"):
        SegmentView.build([([1], [weight])])


def test_largest_weights_give_finite_scores_in_the_right_order():
    ix = SparseIndex(None, "float")
    ix.add([{1: 1e14, 2: 1e14}, {1: 1e14}, {1: 1.0}], ids=["both", "one", "small"])
    hits = ix.search({1: 1e14, 2: 1e14}, k=3)
    assert [h.id for h in hits] == ["both", "one", "small"]
    assert all(math.isfinite(h.score) for h in hits)


def test_numpy_scalars_in_payloads_round_trip_exactly(tmp_path):
    payload = {
        "i64": np.int64(2**62 + 1), "u8": np.uint8(200), "f32": np.float32(0.1), "f64": np.float64(1 / 3),
        "b": np.bool_(True), "s": np.str_("naïve"), "nested": [np.int32(-7), {"f": np.float16(0.5)}],
        "big": 2**80, "neg0": -0.0,
    }
    ix = SparseIndex(None, path=tmp_path / "ix")
    ix.add([{1: 1.0}], ids=["a"], payloads=[payload])
    ix.commit()
    ix.close()
    got = SparseIndex.open(tmp_path / "ix").get("a").payload
    for k, v in payload.items():
        if k == "nested":
            assert got[k][0] == -7 and type(got[k][0]) is int
            assert got[k][1]["f"] == 0.5 and type(got[k][1]["f"]) is float
            continue
        assert got[k] == v, k
    assert type(got["i64"]) is int and type(got["b"]) is bool and type(got["f32"]) is float
    assert got["f32"] == float(np.float32(0.1)) == 0.10000000149011612
    assert math.copysign(1.0, got["neg0"]) == -1.0
    if np.finfo(np.longdouble).eps < np.finfo(np.float64).eps:  # x86-64: 80-bit long double
        with pytest.raises(ValueError, match="at x: longdouble .* has no exact float64 value"):
            SparseIndex(None).add([{1: 1.0}], payloads=[{"x": np.longdouble(1) / 3}])


def test_numpy_scalars_in_filters():
    ix = SparseIndex(None)
    ix.add([{1: 1.0}] * 3, ids=[1, 2, 3], payloads=[{"y": 1990, "g": "a"}, {"y": 2000, "g": "b"}, {"y": 2010, "g": "a"}])
    q = {1: 1.0}
    assert {h.id for h in ix.search(q, filter={"y": np.int64(2000)})} == {2}
    assert {h.id for h in ix.search(q, filter={"y": {"$gte": np.float32(2000)}})} == {2, 3}
    assert {h.id for h in ix.search(q, filter={"y": {"$in": np.array([1990, 2010])}})} == {1, 3}
    assert {h.id for h in ix.search(q, filter={"g": {"$nin": (np.str_("a"),)}})} == {2}
    with pytest.raises(FilterError, match="filter at y: expected a finite number, got nan"):
        ix.search(q, filter={"y": np.float64("nan")})


def test_scipy_rows_and_matrices_as_queries():
    sp = pytest.importorskip("scipy.sparse")
    ix = SparseIndex(None, "float")
    ix.add([{1: 1.0}, {2: 2.0}, {1: 0.5, 3: 1.0}], ids=["a", "b", "c"])
    m = sp.csr_matrix(np.array([[0, 1.0, 0, 0], [0, 0, 1.0, 0], [0, 0, 0, 2.0]]))
    want = [ix.search({1: 1.0}), ix.search({2: 1.0}), ix.search({3: 2.0})]
    assert ix.search(m[0]) == want[0]                       # a 1 x V matrix row
    assert ix.search(sp.csr_array(m)[1]) == want[1]         # a 1-D sparse array
    assert ix.search(sp.coo_matrix(m.getrow(2))) == want[2]
    for batch in (m, sp.csr_array(m), m.tocoo(), m.tocsc()):
        assert ix.search_batch(batch) == want
    dup = sp.coo_matrix(([0.25, 0.75], ([0, 0], [1, 1])), shape=(1, 4))  # repeated entries: their sum
    assert ix.search(dup) == ix.search({1: 1.0})
    with pytest.raises(TypeError, match="query: a sparse matrix with 3 rows is 3 vectors"):
        ix.search(m)
    assert ix.explain(m[0], "a").score == pytest.approx(1.0)
    # An n-D sparse array (scipy >= 1.15) is no vector: it was read as one query (breaker36).
    try:
        cube = sp.coo_array((np.array([1.0]), (np.array([0]), np.array([0]), np.array([1]))), shape=(1, 1, 4))
    except (TypeError, ValueError):  # an older scipy without n-D arrays
        cube = None
    if cube is not None:
        for call in (ix.search, ix.search_batch, lambda q: ix.explain(q, "a"), lambda q: ix.add([q], ids=["z"])):
            with pytest.raises(TypeError, match="shape \\(1, 1, 4\\) has 3 dimensions"):
                call(cube)
        assert len(ix) == 3


def test_csr_arrays_as_queries_in_search_batch_and_calibrate():
    """search_batch and calibrate take CSR arrays (indptr, indices, values), one query a row, as
    add does (breaker27 note: they refused them); a triple that is not a CSR matrix is a
    ValueError saying why, a bad row one naming the query."""
    ix = SparseIndex(None, "float")
    ix.add([{1: 1.0}, {2: 2.0}, {1: 0.5, 3: 1.0}], ids=["a", "b", "c"])
    want = [ix.search({1: 1.0}), ix.search({2: 1.0, 3: 0.5}), ix.search({3: 2.0})]
    csr = (np.array([0, 1, 3, 4]), np.array([1, 2, 3, 3], np.uint32), np.array([1.0, 1.0, 0.5, 2.0], np.float32))
    assert ix.search_batch(csr) == want
    assert ix.search_batch((csr[0].astype(np.uint64), csr[1].astype(np.int64), csr[2].astype(np.float64))) == want
    assert ix.search_batch((np.array([0]), np.array([], np.uint32), np.array([], np.float32))) == []
    assert [s["name"] for s in ix.calibrate(csr)] == [s["name"] for s in ix.calibrate()]
    bad_structure = [
        ((np.array([0, 1, 5]), csr[1][:3], csr[2][:3]), "end at the number of entries \\(3\\), got 5"),
        ((np.array([0, 3, 1, 4]), csr[1], csr[2]),
         "indptr decreases at query 1: indptr\\[1\\] = 3 > indptr\\[2\\] = 1"),
        ((np.array([1, 2, 4]), csr[1][:3], csr[2][:3]), "start at 0, got 1"),
        ((np.array([0.0, 1, 4]), csr[1], csr[2]), "indptr must have an integer dtype, got float64"),
        ((np.array([0, 1, 4]), csr[1], csr[2][:3]), "shapes \\(4,\\) and \\(3,\\)"),
    ]
    for q, msg in bad_structure:
        with pytest.raises(ValueError, match=msg):
            ix.search_batch(q)
        with pytest.raises(ValueError, match=msg):
            ix.calibrate(q)
    with pytest.raises(ValueError, match="query 1: values\\[0\\] = nan is not finite"):
        ix.search_batch((csr[0], csr[1], np.array([1.0, np.nan, 0.5, 2.0], np.float32)))
    with pytest.raises(ValueError, match="query 2: indices\\[0\\] = -3 is negative"):
        ix.search_batch((csr[0], np.array([1, 2, 3, -3]), csr[2]))


def test_pandas_inputs():
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame({"id": [10, 20, 30], "text": ["red apples", "green pears", "red cars"], "year": [1990, 2000, 2010]})
    ix = SparseIndex("bm25")
    ix.add(df["text"], ids=df["id"], payloads=df[["year"]].to_dict("records"))
    assert ix.ids() == [10, 20, 30] and ix.get(20).payload == {"year": 2000}
    assert [h.id for h in ix.search("red", filter={"year": {"$gt": df["year"].iloc[0]}})] == [30]
    assert [[h.id for h in hs] for hs in ix.search_batch(pd.Series(["pears", "cars"]))] == [[20], [30]]
    ix.delete(df["id"].iloc[:1])
    assert 10 not in ix
    v = SparseIndex(None, "float")
    v.add([pd.Series({3: 0.5, 7: 1.5})], ids=["s"])
    assert v.get("s").vector.as_dict() == {3: 0.5, 7: 1.5}
    assert v.search(pd.Series({7: 2.0}))[0].score == pytest.approx(3.0)
    with pytest.raises(TypeError, match=r"documents is a pandas DataFrame: pass one column, e.g. df\['text'\]"):
        ix.add(df)
    with pytest.raises(TypeError, match="DataFrame"):
        ix.search_batch(df[["text"]])
    with pytest.raises(ValueError, match="payload of document 1 at year: expected a finite number, got nan"):
        ix.add(["x", "y"], ids=[40, 41], payloads=pd.DataFrame({"year": [1.0, float("nan")]}).to_dict("records"))


# 5. evaluation inputs: trec_eval's rules --------------------------------------------------------
QRELS = {"q": {"d1": 1, "d2": 0}}


def test_a_document_twice_in_a_run_is_refused():
    with pytest.raises(ValueError, match="document 'd1' is listed twice for query 'q'"):
        evaluate({"q": [("d1", 2.0), ("d1", 1.0)]}, QRELS, ["map", "ndcg@10"])
    with pytest.raises(ValueError, match="document '1' is listed twice for query 'q'"):
        evaluate({"q": {1: 2.0, "1": 1.0}}, QRELS)  # two keys, one id
    with pytest.raises(ValueError, match="query '7' appears twice in the run"):
        evaluate({7: {"d1": 1.0}, "7": {"d2": 1.0}}, QRELS)


def test_repeated_lines_in_run_and_qrels_files_are_refused(tmp_path):
    (tmp_path / "run.trec").write_text("q Q0 d1 1 2.0 t\nq Q0 d2 2 1.0 t\nq Q0 d1 3 0.5 t\n")
    with pytest.raises(ValueError, match=r"run.trec:3: document 'd1' is listed twice for query 'q' \(first on line 1\)"):
        read_run(tmp_path / "run.trec")
    (tmp_path / "qrels.tsv").write_text("q\td1\t1\nq\td2\t0\nq\td1\t2\n")
    with pytest.raises(ValueError, match=r"qrels.tsv:3: document 'd1' is judged twice for query 'q' \(first on line 1\)"):
        read_qrels(tmp_path / "qrels.tsv")
    (tmp_path / "q4.txt").write_text("q 0 d1 1\nq 0 d1 1\n")
    with pytest.raises(ValueError, match="q4.txt:2: document 'd1' is judged twice"):
        read_qrels(tmp_path / "q4.txt")


@pytest.mark.parametrize("score", [float("nan"), np.float32("nan"), "1.0", True, None])
def test_scores_must_be_numbers_and_not_nan(score):
    with pytest.raises(ValueError, match="score of document 'd2' for query 'q' is"):
        evaluate({"q": {"d1": 1.0, "d2": score}}, QRELS)


def test_nan_in_a_run_file_and_infinities(tmp_path):
    (tmp_path / "r.trec").write_text("q Q0 d1 1 1.0 t\nq Q0 d2 2 nan t\n")
    with pytest.raises(ValueError, match="r.trec:2: score of document 'd2' for query 'q' is NaN"):
        read_run(tmp_path / "r.trec")
    # infinities are ordered: +inf first, -inf last, as trec_eval's sort puts them
    assert evaluate({"q": {"d2": math.inf, "d1": 1.0}}, QRELS, ["rr"])["rr"] == 0.5
    assert evaluate({"q": {"d2": -math.inf, "d1": 1.0}}, QRELS, ["rr"])["rr"] == 1.0


@pytest.mark.parametrize("grade", [1.5, 0.25, float("nan"), True, "1"])
def test_grades_must_be_integers(grade):
    with pytest.raises(ValueError, match="relevance of document 'd1' for query 'q' is"):
        evaluate({"q": {"d1": 1.0}}, {"q": {"d1": grade}})


def test_fractional_grades_in_a_file_and_integral_floats(tmp_path):
    (tmp_path / "q.tsv").write_text("q\td1\t1\nq\td2\t1.5\n")
    with pytest.raises(ValueError, match=r"q.tsv:2: relevance '1.5' of document 'd2' for query 'q' is not an integer"):
        read_qrels(tmp_path / "q.tsv")
    (tmp_path / "h.tsv").write_text("q\td1\t0.5\n")  # a fractional first line is not a header
    with pytest.raises(ValueError, match="h.tsv:1: relevance '0.5'"):
        read_qrels(tmp_path / "h.tsv")
    assert evaluate({"q": {"d1": 1.0}}, {"q": {"d1": 2.0}}, ["ndcg@1"]) == {"ndcg@1": 1.0}  # 2.0 is the grade 2


def test_files_that_are_not_utf8_are_named(tmp_path):
    (tmp_path / "latin1.tsv").write_bytes("q\td\u00e9\t1\n".encode("latin-1"))
    with pytest.raises(ValueError, match=r"latin1.tsv:1: not UTF-8 text \(byte 0xe9 at column 4\)"):
        read_qrels(tmp_path / "latin1.tsv")
    (tmp_path / "run.trec").write_bytes(b"q Q0 d1 1 1.0 t\nq Q0 \xff 2 0.5 t\n")
    with pytest.raises(ValueError, match="run.trec:2: not UTF-8 text"):
        read_run(tmp_path / "run.trec")


def test_dict_runs_and_lists_still_equal():
    run = {"q": {"d1": 1.0, "d2": 2.0}}
    assert evaluate(run, QRELS) == evaluate({"q": [("d2", 2.0), ("d1", 1.0)]}, QRELS)
    assert evaluate({"q": {"d1": np.float32(1.0)}}, {"q": {"d1": np.int64(1)}}, ["p@1"]) == {"p@1": 1.0}


# 6. resource requests ---------------------------------------------------------------------------
def test_threads_are_bounded():
    ix = SparseIndex(None)
    ix.add([{1: 1.0}])
    with pytest.raises(ValueError, match=f"threads must be between 1 and {max_threads()}, got 100000"):
        ix.search_batch([{1: 1.0}], threads=100000)
    for bad in (0, -1):
        with pytest.raises(ValueError, match="threads must be between 1 and"):
            ix.search_batch([{1: 1.0}], threads=bad)
    with pytest.raises(TypeError, match="threads must be an integer"):
        ix.search_batch([{1: 1.0}], threads=2.5)
    assert ix.search_batch([{1: 1.0}], threads=max_threads())[0][0].id == 0
    v = SegmentView.build([([1], [1.0])])
    with pytest.raises(ValueError, match="threads must be between"):
        v.search_batch([([1], [1.0])], threads=10**6)


@pytest.mark.parametrize("vocab_size, error", [(0, ValueError), (-5, ValueError), (2**33, ValueError), (2**32, ValueError),
                                               (True, TypeError), (10.0, TypeError)])
def test_vocab_size_is_checked_at_creation(vocab_size, error):
    with pytest.raises(error, match="vocab_size must be"):
        SparseIndex(None, vocab_size=vocab_size)
    with pytest.raises(error, match="vocab_size must be"):
        SegmentView.build([([1], [1.0])], vocab_size=vocab_size)


def test_vocab_size_limits_are_usable(tmp_path):
    # each segment keeps a term dictionary: any 32-bit term id costs the same (issue 8)
    ix = SparseIndex(None, vocab_size=2**20, path=tmp_path / "ix")
    ix.add([{2**20 - 1: 1.0}])
    ix.commit()
    ix.close()
    assert SparseIndex.open(tmp_path / "ix").search({2**20 - 1: 1.0})[0].id == 0
    free = SparseIndex(None)
    big = (2**24, 2**32 - 1, 2**31)
    free.add([{t: 1.0, 7: 0.5} for t in big])
    free.add((np.array([0, 2]), np.array([1, 2**32 - 1], np.uint32), np.array([1.0, 2.0], np.float32)))
    assert [h.id for h in free.search({2**32 - 1: 1.0})] == [3, 1]
    assert [h.id for h in free.search({2**24: 1.0})] == [0]
    assert free.search({2**32 - 2: 1.0}) == []  # absent from the index: matches nothing
    v = SegmentView.build((np.array([0, 1]), np.array([2**32 - 1], np.uint32), np.array([1.0], np.float32)))
    assert v.search(([2**32 - 1], [1.0]))[0].tolist() == [0]
    for t in (2**32, 2**40):
        with pytest.raises(ValueError, match=rf"document 0: key {t} is not below 2\*\*32"):  # a dict: by key
            free.add([{t: 1.0}])
    assert len(free) == 4
    one = SparseIndex(None, vocab_size=1)
    one.add([{0: 1.0}])
    with pytest.raises(ValueError, match="is not below the vocabulary size"):
        one.add([{1: 1.0}])
    with pytest.raises(ValueError, match="vocab_size must be"):
        SparseIndex(None, vocab_size=2**32)


@pytest.mark.parametrize("k", [0, -1, 2**63, 10**30])
def test_k_out_of_range_is_a_value_error(k):
    ix = SparseIndex(None)
    ix.add([{1: 1.0}])
    with pytest.raises(ValueError, match=f"k must be between 1 and {MAX_K}"):
        ix.search({1: 1.0}, k=k)
    with pytest.raises(ValueError, match="k must be between"):
        ix.search_batch([{1: 1.0}], k=k)
    with pytest.raises(ValueError, match="k must be between"):
        SegmentView.build([([1], [1.0])]).search([1], [1.0], k=k)


def test_k_may_exceed_the_documents():
    ix = SparseIndex(None)
    ix.add([{1: 1.0}, {1: 2.0}])
    assert [h.id for h in ix.search({1: 1.0}, k=MAX_K)] == [1, 0]
    assert [h.id for h in ix.search({1: 1.0}, k=np.int64(3))] == [1, 0]
    with pytest.raises(TypeError, match="k must be an integer"):
        ix.search({1: 1.0}, k=2.0)


@pytest.mark.parametrize("bad_id", [2**63, -(2**63) - 1, 2**70])
def test_int_ids_are_signed_64_bit(bad_id):
    ix = SparseIndex(None)
    with pytest.raises(ValueError, match="integer ids are signed 64-bit"):
        ix.add([{1: 1.0}], ids=[bad_id])
    ix.add([{1: 1.0}], ids=[2**63 - 1])
    assert (2**63 - 1) in ix
    with pytest.raises(ValueError, match="cannot number 1 new documents from 9223372036854775808"):
        ix.add([{1: 1.0}])  # the next running id would not fit
    assert len(ix) == 1


# 8. messages that say what is wrong ------------------------------------------------------------
def test_none_and_other_non_lists():
    ix = SparseIndex(None)
    with pytest.raises(TypeError, match="documents is None: pass a list of texts"):
        ix.add(None)
    with pytest.raises(TypeError, match="documents is None"):
        ix.upsert(None, ids=[1])
    with pytest.raises(TypeError, match="ids is None: pass one id or a list of ids to delete"):
        ix.delete(None)
    with pytest.raises(TypeError, match="ids must be one id .* got float"):
        ix.delete(3.5)
    with pytest.raises(TypeError, match="documents must be a list of texts or vectors, got int"):
        ix.add(5)
    with pytest.raises(TypeError, match="queries is None"):
        ix.search_batch(None)
    # one vector query, bytes or a number where a batch goes: named, not iterated (review34)
    with pytest.raises(TypeError, match="queries is a dict, which is one vector query"):
        ix.search_batch({1: 1.0})
    for bad, name in ((b"ab", "bytes"), (5, "int")):
        with pytest.raises(TypeError, match=f"queries must be a list of texts or sparse vectors, got {name}"):
            ix.search_batch(bad)
    with pytest.raises(TypeError, match="query 0 is a dict, query 1 a str"):  # which one (breaker34b)
        ix.search_batch([{1: 1.0}, "text"])


def test_ids_out_of_range_and_huge_in_messages():
    # breaker34b: delete of an int outside 64 bits was an OverflowError; an int of more than
    # 4,300 digits could not even be shown
    ix = SparseIndex(None)
    ix.add([{1: 1.0}], ids=[7])
    ix.commit()
    for big in (2**64, -(2**63) - 1, 10**5000):
        with pytest.raises(KeyError, match="no document with id"):
            ix.delete(big)
        assert ix.delete([big, 7], missing_ok=True) == 1
        ix.rollback()
    with pytest.raises(KeyError, match="an integer of about 5,000 digits"):
        ix.get(10**5000)
    long = "k" * 10**6
    with pytest.raises(ValueError) as ei:  # a payload key path of a million characters
        ix.add([{1: 1.0}], payloads=[{long: {"x": object()}}])
    assert len(str(ei.value)) < 400 and "1,000,002 characters" in str(ei.value)
    with pytest.raises(TypeError, match="payloads must be a list"):
        ix.add([{1: 1.0}], payloads={"a": 1})


def test_lookups_do_not_convert_id_kinds():
    ix = SparseIndex(None)
    ix.add([{1: 1.0}, {2: 1.0}], ids=[0, 1])
    for bad in (True, 1.0, np.float64(1)):
        with pytest.raises(TypeError, match="a document id is an int or a str"):
            ix.get(bad)
        with pytest.raises(TypeError, match="a document id is an int or a str"):
            ix.delete([bad])
        assert bad not in ix
    assert ix.get(np.int64(1)).id == 1
    assert len(ix) == 2


def test_query_side_errors_say_query():
    ix = SparseIndex(None)
    ix.add([{1: 1.0}])
    with pytest.raises(ValueError, match=r"^query: values\[0\] = -1.0 is negative"):
        ix.search({1: -1.0})
    with pytest.raises(ValueError, match=r"^query 1: indices\[0\] = -3 is negative"):
        ix.search_batch([{1: 1.0}, ([-3], [1.0])])
    with pytest.raises(TypeError, match="^query 1: cannot interpret float as a sparse vector"):
        ix.search_batch([{1: 1.0}, 3.0])
    with pytest.raises(ValueError, match=r"^query: the weight of term 1 is a missing value \(NaN\)"):
        ix.explain({1: float("nan")}, 0)


def test_splade_texts_with_surrogates_are_named():
    from sparsedex.encoders import SpladeEncoder

    enc = SpladeEncoder("splade-tiny", progress=False)
    with pytest.raises(ValueError, match=r"text 1 holds a lone surrogate \(U\+D800 at character 3\)"):
        enc.encode_documents(["fine", "bad\ud800"])
    with pytest.raises(TypeError, match=r"text 0 is a missing value \(None\), not a str"):
        enc.encode_documents([None])
    with pytest.raises(TypeError, match="texts is None"):
        enc.encode_documents(None)
    ix = SparseIndex(enc)
    with pytest.raises(ValueError, match="document 0 holds a lone surrogate"):
        ix.add(["\udcff"])
    assert len(ix) == 0


def test_int_ids_checked_as_a_batch_keep_their_messages():
    """Plain int ids go through one numpy check; anything it does not accept is checked id
    by id, so the errors still name the document (and a refused add stages nothing)."""
    ix = SparseIndex(None)
    docs = [{1: 1.0}, {2: 1.0}, {3: 1.0}]
    with pytest.raises(ValueError, match=r"^id 5 of document 2 is a duplicate"):
        ix.add(docs, ids=[5, 6, 5])
    with pytest.raises(TypeError, match=r"id of document 1 is a bool"):
        ix.add(docs, ids=[1, True, 3])
    with pytest.raises(ValueError, match=r"^id of document 2 is 9223372036854775808: integer ids are signed 64-bit"):
        ix.add(docs, ids=[1, 2, 2**63])
    with pytest.raises(ValueError, match="2 ids given for 3 documents"):
        ix.add(docs, ids=[1, 2])
    assert len(ix) == 0
    assert ix.add(docs, ids=[np.int64(7), 8, 2**63 - 1]) == [7, 8, 2**63 - 1]
    assert all(type(i) is int for i in ix.ids())
    with pytest.raises(ValueError, match=r"document 0: id 8 is already in the index"):
        ix.add([{4: 1.0}], ids=[8])


def test_scipy_and_csr_term_ids_beyond_u32_are_refused_not_wrapped():
    """A scipy matrix (int64 column ids) or CSR arrays with a term id >= 2**32 or < 0 is an
    error naming the document and position (newcomer7: 2**32 + 5 was stored as term 5), and
    the caller's matrix is never reordered in place."""
    import scipy.sparse as sp

    ix = SparseIndex(None, "u8")
    m = sp.csr_matrix((np.array([1.0, 2.0], np.float32), np.array([2**32 + 5, 3], np.int64), np.array([0, 1, 2])),
                      shape=(2, 2**33))
    with pytest.raises(ValueError, match=r"document 0: indices\[0\] = 4294967301 is not below 2\*\*32"):
        ix.add(m)
    m2 = sp.csr_matrix((np.array([1.0, 2.0, 3.0], np.float32), np.array([1, 7, 2**32 + 9], np.int64),
                        np.array([0, 1, 3])), shape=(2, 2**33))
    with pytest.raises(ValueError, match=r"document 1: indices\[1\] = 4294967305 is not below 2\*\*32"):
        ix.add(m2)
    csr = (np.array([0, 1, 3]), np.array([4, 9, -2]), np.array([1.0, 1.0, 1.0], np.float32))
    with pytest.raises(ValueError, match=r"document 1: indices\[1\] = -2 is negative"):
        ix.add(csr)
    with pytest.raises(ValueError, match="indptr must have an integer dtype"):
        ix.add((np.array([0.0, 1.0]), np.array([4]), np.array([1.0], np.float32)))
    assert len(ix) == 0
    unsorted = sp.csr_matrix((np.array([1.0, 2.0], np.float32), np.array([7, 3]), np.array([0, 2])), shape=(1, 10))
    unsorted.has_sorted_indices = False
    before = unsorted.indices.copy()
    ix.add(unsorted)
    assert unsorted.indices.tolist() == before.tolist()
    assert ix.get(0).vector.indices.tolist() == [3, 7]


def test_scipy_and_csr_weights_too_large_for_float32_are_named():
    """A finite float64 weight above float32's range in a scipy matrix or CSR arrays is
    refused as not finite in float32, naming the document and position, with no numpy
    overflow warning (newcomer7: it was reported as "inf" after a RuntimeWarning)."""
    import warnings

    import scipy.sparse as sp

    ix = SparseIndex(None, "float")
    csr = (np.array([0, 1, 3]), np.array([4, 2, 9]), np.array([1.0, 0.5, 1e39]))
    m = sp.csr_matrix((csr[2], csr[1], csr[0]), shape=(2, 10))
    for docs in (csr, m):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            with pytest.raises(ValueError, match=r"document 1: values\[1\] = 1e\+39 is not finite in float32"):
                ix.add(docs)
    assert len(ix) == 0


@pytest.mark.parametrize("values, msg", [
    (np.array(["a", "b"]), r"documents: CSR arrays: values must be real numbers, got an array of dtype <U1"),
    (np.array([True, False]), r"documents: CSR arrays: values are booleans \(dtype bool\)"),
    (np.array([1 + 2j, 3j]), r"documents: CSR arrays: values must be real numbers, got an array of dtype complex128"),
    (np.array([object(), 1.0], dtype=object), r"documents: CSR arrays: values must be real numbers, got an array of dtype object"),
])
def test_csr_values_of_a_wrong_dtype_are_named(values, msg):
    """newcomer9 L5: a CSR values array of strings, booleans or other non-numbers is refused
    naming the array (a bool is not a weight, as in a dict or pair row), and the index stays
    usable; integer and object-of-numbers arrays are weights."""
    ix = SparseIndex(None, "u8")
    csr = (np.array([0, 1, 2]), np.array([3, 4]), values)
    with pytest.raises(ValueError, match=msg):
        ix.add(csr, ids=[1, 2])
    ix.add((np.array([0, 1, 2]), np.array([3, 4]), np.array([1, 2])), ids=[1, 2])
    ix.add((np.array([0, 1]), np.array([5]), np.array([0.5], dtype=object)), ids=[3])
    assert ix.search({3: 1.0}, k=1)[0].id == 1


@pytest.mark.parametrize("call", ["add", "search_batch", "calibrate"])
def test_malformed_csr_arrays_are_named_as_such(call):
    """CSR arrays that are not a CSR matrix get a message about the arrays, for documents and
    queries alike (breaker28 L1: an indptr given as a bool, object or str array, a 2-d or 0-d
    one, an empty one, or four arrays fell through to "document 0 / query 0: cannot interpret
    ndarray as a sparse vector", and a decreasing indptr did not name the row)."""
    ix = SparseIndex(None, "float")
    ix.add([{1: 1.0}, {2: 2.0}])
    what = "documents" if call == "add" else "queries"
    row = "document" if call == "add" else "query"
    idx, val = np.array([1, 2, 3], np.uint32), np.array([1.0, 1.0, 1.0], np.float32)
    cases = [
        ((np.array([False, True, True]), idx[:1], val[:1]), "indptr must have an integer dtype, got bool"),
        ((np.array([0, 1], dtype=object), idx[:1], val[:1]), "indptr must have an integer dtype, got object"),
        ((np.array(["0", "1"]), idx[:1], val[:1]), "indptr must have an integer dtype, got <U1"),
        ((np.array([[0, 1]]), idx[:1], val[:1]), "indptr must be a 1-d array, got shape \\(1, 2\\)"),
        ((np.array(0), idx[:1], val[:1]), "indptr must be a 1-d array, got shape \\(\\)"),
        ((np.array([], np.int64), idx[:0], val[:0]), "indptr is empty"),
        ((np.array([0, 1]), idx[:1], val[:1], np.array([7])), "are \\(indptr, indices, values\\), got a tuple of 4"),
        ((np.array([0, 1]), idx[:1]), "are \\(indptr, indices, values\\), got a tuple of 2"),
        ((np.array([0, 2, 1, 3]), idx, val), f"indptr decreases at {row} 1: indptr\\[1\\] = 2 > indptr\\[2\\] = 1"),
        ((np.array([0, 2**63 + 5], np.uint64), idx[:1], val[:1]), "more than there can be entries"),
        # breaker29 L3: the arrays' dtypes, and a None indptr
        ((np.array([0, 1]), np.array([1.0]), val[:1]), "indices \\(term ids\\) must have an integer dtype, got float64"),
        ((np.array([0, 1]), idx[:1], np.array(["a"])), "values must be real numbers, got an array of dtype <U1"),
        ((np.array([0, 1]), idx[:1], np.array([True])), "values are booleans"),
        ((None, idx[:1], val[:1]), "indptr is None"),
    ]
    for arrays, msg in cases:
        with pytest.raises(ValueError, match=f"^{what}: CSR arrays.*{msg}"):
            getattr(ix, call)(arrays)
    assert len(ix) == 2


def test_csr_arrays_as_a_list_of_three_or_with_a_list_indptr():
    """A list of three arrays, and an indptr given as a list of ints, are CSR arrays for add
    and search_batch alike (search_batch refused both)."""
    ix = SparseIndex(None, "float")
    idx, val = np.array([1, 2, 3], np.uint32), np.array([1.0, 2.0, 0.5], np.float32)
    assert ix.add([np.array([0, 1, 3]), idx, val], ids=["a", "b"]) == ["a", "b"]
    assert ix.add(([0, 1], idx[2:], val[2:]), ids=["c"]) == ["c"]
    want = [ix.search({1: 1.0}), ix.search({2: 1.0, 3: 1.0})]
    assert ix.search_batch([np.array([0, 1, 3]), np.array([1, 2, 3]), np.array([1.0, 1.0, 1.0])]) == want
    assert ix.search_batch(([0, 1, 3], np.array([1, 2, 3]), np.array([1.0, 1.0, 1.0]))) == want
    assert ix.search_batch((np.array([0, 1, 3]), np.array([1, 2, 3]), np.array([1.0, 1, 1], dtype=object))) == want


def test_query_term_ids_beyond_the_vocabulary_are_refused(tmp_path):
    """A query vector with a term id no document can hold (at or above a SPLADE encoder's
    vocabulary, or the declared vocab_size) is a ValueError naming the query and the id, in
    search, search_batch, explain and decode, also for an index opened from disk (breaker28
    L2: it matched nothing, silently, where add refuses such ids). BM25's dictionary grows, so
    its ids are not bounded."""
    ix = SparseIndex("splade-tiny", path=tmp_path / "s")
    ix.add(["music band", "a red car"], ids=["m", "c"])
    ix.commit()
    n = ix.encoder.vocab_size
    assert n == 30522
    for index in (ix, SparseIndex.open(tmp_path / "s")):
        assert index.search({n - 1: 1.0}) == []
        bad = {n: 1.0, 5: 1.0}
        msg = f"key {n} is not below the encoder's vocabulary size \\({n}\\)"  # a dict: by key
        with pytest.raises(ValueError, match=f"^query: {msg}"):
            index.search(bad)
        with pytest.raises(ValueError, match=f"^query 1: {msg}"):
            index.search_batch([{5: 1.0}, bad])
        with pytest.raises(ValueError, match=f"^query 0: indices\\[0\\] = {2**31}"):
            index.search_batch((np.array([0, 1]), np.array([2**31]), np.array([1.0])))
        with pytest.raises(ValueError, match=f"^query: {msg}"):
            index.explain(bad, "m")
        with pytest.raises(ValueError, match=f"^vector: {msg}"):
            index.decode(bad)
    ix.close()
    v = SparseIndex(None, vocab_size=100)
    v.add([{1: 1.0}])
    with pytest.raises(ValueError, match="query: key 100 is not below the vocabulary size \\(100\\)"):
        v.search({100: 1.0})
    assert [h.id for h in v.search({99: 1.0, 1: 1.0})] == [0]
    b = SparseIndex("bm25")
    b.add(["a b c"])
    assert b.search({10_000: 1.0}) == []


def test_search_batch_takes_every_form_of_a_batch_alike():
    """A scipy.sparse matrix or CSR arrays whose entries all pass the batch checks skip the
    per-query objects (stop 36); the results must equal those of a list of vectors and of
    search() one query at a time, with repeated entries (summed), explicit zeros (dropped),
    unsorted rows and empty rows among the queries."""
    sp = pytest.importorskip("scipy.sparse")
    rng = np.random.default_rng(36)
    ix = SparseIndex(None, "u8")
    ix.add([(np.sort(rng.choice(500, 20, replace=False)).astype(np.uint32),
             rng.uniform(0.1, 2, 20).astype(np.float32)) for _ in range(300)])
    rows, cols, vals = [], [], []
    for r in range(60):
        n = 0 if r % 17 == 3 else int(rng.integers(1, 12))
        c = rng.choice(500, n, replace=True)  # repeats: summed by the matrix
        rows += [r] * n
        cols += c.tolist()
        vals += np.where(rng.random(n) < 0.1, 0.0, rng.uniform(0.05, 2, n)).tolist()
    indptr = np.searchsorted(np.array(rows), np.arange(61), side="left")
    m = sp.csr_matrix((np.array(vals), np.array(cols), indptr), shape=(60, 500))  # as given
    assert not m.has_canonical_format
    want = [ix.search(m[r], k=7) for r in range(60)]
    assert ix.search_batch(m, k=7) == want
    m.sum_duplicates()
    assert ix.search_batch((m.indptr, m.indices, m.data), k=7) == want
    assert ix.search_batch([m[r] for r in range(60)], k=7) == want
    # a fault anywhere still names its query, found by the per-query checks
    bad = m.copy()
    bad.data[bad.indptr[41]] = -1.0
    with pytest.raises(ValueError, match="query 41"):
        ix.search_batch(bad, k=7)
    with pytest.raises(ValueError, match="query 41"):
        ix.search_batch((bad.indptr, bad.indices, bad.data), k=7)



def test_repeated_entries_of_a_scipy_query_sum_alike_in_search_and_search_batch():
    """breaker36: a float index scored a scipy query with repeated entries 0.6333333253 in
    search_batch (float32 sums in CSR order) and 0.6333333850 in search (COO order)."""
    sp = pytest.importorskip("scipy.sparse")
    ix = SparseIndex(None, "float")
    ix.add([{3: 1.0}])
    q = sp.coo_matrix((np.array([0.1, 0.2, 1e-8, 1 / 3], np.float32), ([0] * 4, [3] * 4)), shape=(1, 10))
    one = ix.search(q)
    assert ix.search_batch(q) == [one] == ix.search_batch([q])
    unsummed = sp.csr_matrix((q.data, q.col, np.array([0, 4])), shape=(1, 10))  # duplicates kept
    assert ix.search_batch(unsummed) == [one] == [ix.search(unsummed)]
