"""Stop 65: faults found by helper-151. explain() agrees with search() on a document whose
float32 score underflows to 0; pandas' NA and numpy's NaT are named missing values
in queries, documents and ids; a dict's key that is no term id is named by the key; the CLI names an input file given as ``-``
"standard input"."""

import io
import json
import re
import sys

import numpy as np
import pytest

from sparsedex import SparseIndex
from sparsedex._segment import SegmentView
from sparsedex.cli import main


@pytest.mark.parametrize("quantization", ["float", "u8"])
def test_explain_underflow_is_no_match(quantization):
    # 1e-30 * 1e-30 is 0 in float32: search never returns "c", and explain called it matched
    # ("score 0.0000 from 1 matched terms"); a shared term that contributes 0 is no match
    ix = SparseIndex(encoder=None, quantization=quantization)
    ix.add([{1: 1e-30, 2: 1.0}, {2: 0.5}, {1: 1e-30}], ids=["a", "b", "c"])
    assert ix.search({1: 1e-30}, k=10) == []
    e = ix.explain({1: 1e-30}, "c")
    assert e.score == 0.0 and e.matches == []
    assert "from 0 matched terms" in str(e)
    e = ix.explain({1: 1e-30, 2: 1.0}, "a")
    assert [m.term_id for m in e.matches] == [2] and e.score == 1.0
    assert [h.id for h in ix.search({1: 1e-30, 2: 1.0}, k=10)] == ["a", "b"]


def test_segment_view_explain_underflow_is_no_match():
    ix = SegmentView.build([([1], [1e-30])], ids=[10], quantization="float")
    ids, _ = ix.search(([1], [1e-30]), k=5)
    assert ids.tolist() == []
    assert ix.explain(([1], [1e-30]), 10) == []


_MISSING = [
    (lambda: __import__("pandas").NA, "pandas' <NA>"),
    (lambda: __import__("pandas").NaT, "pandas' NaT"),
    (lambda: np.datetime64("NaT"), "np.datetime64('NaT"),
    (lambda: np.timedelta64("NaT"), "np.timedelta64('NaT')"),
]


@pytest.mark.parametrize("make, name", _MISSING)
def test_missing_values_are_named(make, name):
    # pd.NA read "<NA> (a NAType)", numpy's NaT "np.datetime64('NaT','generic') (a datetime64)"
    # and a timedelta64 NaT, an np.integer to numpy, "int() argument must be ... not 'NoneType'"
    if name.startswith("pandas"):
        pytest.importorskip("pandas")
    v = make()
    ix = SparseIndex(encoder=None)
    ix.add([{1: 1.0}], ids=["a"])
    cases = [
        (lambda: ix.search({1: v}), rf"query: the weight of term 1 is a missing value \({re.escape(name)}"),
        (lambda: ix.search({v: 1.0}), rf"query: a key is a missing value \({re.escape(name)}"),
        (lambda: ix.search(([1], [v])), rf"query: values\[0\] is a missing value \({re.escape(name)}"),
        (lambda: ix.search(v), rf"query is a missing value \({re.escape(name)}"),
        (lambda: ix.add([{2: v}], ids=["x"]), rf"document 0: the weight of term 2 is a missing value \({re.escape(name)}"),
        (lambda: ix.add([{v: 1.0}], ids=["x"]), rf"document 0: a key is a missing value \({re.escape(name)}"),
        (lambda: ix.add([([v], [1.0])], ids=["x"]), rf"document 0: indices\[0\] is a missing value \({re.escape(name)}"),
        (lambda: ix.add([v], ids=["x"]), rf"document 0 is a missing value \({re.escape(name)}"),
        (lambda: ix.add([{2: 1.0}], ids=[v]), rf"id of document 0 is a missing value \({re.escape(name)}"),
        (lambda: ix.get(v), rf"a document id is an int or a str, got a missing value \({re.escape(name)}"),
        (lambda: ix.delete(v), rf"ids is a missing value \({re.escape(name)}"),
        (lambda: ix.delete([v]), rf"a document id is an int or a str, got a missing value \({re.escape(name)}"),
    ]
    for call, message in cases:
        with pytest.raises((TypeError, ValueError), match=message):
            call()
    assert len(ix) == 1


def test_timedelta_is_not_an_integer():
    # np.timedelta64 is an np.integer subclass: timedelta64(5) was taken for the id 5
    ix = SparseIndex(encoder=None)
    with pytest.raises(TypeError, match="id of document 0 is a timedelta64"):
        ix.add([{2: 1.0}], ids=[np.timedelta64(5)])
    with pytest.raises(ValueError, match=r"values\[0\] is np.timedelta64\(5\) \(a timedelta64\), not a number"):
        ix.add([([2], [np.timedelta64(5)])], ids=[1])
    assert len(ix) == 0


@pytest.mark.parametrize(
    "key, shown",
    [("1", '"1" (a str)'), ("x", '"x" (a str)'), (1.0, "1.0 (a float)"), (True, "True (a bool)"),
     ((1, 2), "(1, 2) (a tuple)")],
)
def test_dict_key_is_named(key, shown):
    # {"1": 0.5} read 'indices[0] is a string ("1"), not an integer': no list was given
    ix = SparseIndex(encoder=None)
    ix.add([{1: 1.0}], ids=["a"])
    with pytest.raises(ValueError, match=rf"^query: key {re.escape(shown)} is not a term id$"):
        ix.search({2: 1.0, key: 0.5} if key is not True else {key: 0.5})
    with pytest.raises(ValueError, match=rf"^document 1: key {re.escape(shown)} is not a term id$"):
        ix.add([{3: 1.0}, {key: 0.5}], ids=["b", "c"])
    assert len(ix) == 1
    # a pair of lists is still named by position
    with pytest.raises(ValueError, match=r'^query: indices\[0\] is a string \("1"\), not an integer$'):
        ix.search((["1"], [0.5]))


def _stdin(monkeypatch, data: bytes) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))


def test_cli_names_standard_input(monkeypatch, capsys, tmp_path):
    # "-:2: bad JSON line", "-: no documents": "-" read as no file at all
    ix = str(tmp_path / "ix")
    cases = [
        (["index", "-", ix, "--encoder", "bm25"], b'{"id": "a", "text": "x"}\n{"id": "b"\n',
         "standard input:2: bad JSON line"),
        (["index", "-", ix, "--encoder", "bm25"], b'{"id": "a", "text": "x"}\n\xff\n', "standard input:2: not UTF-8 text"),
        (["index", "-", ix, "--encoder", "bm25"], b"", "standard input: no documents"),
        (["index", "-", ix, "--encoder", "bm25"], b'{"id": "a", "text": "x"}\n{"id": "a", "text": "y"}\n',
         "standard input:2: id 'a' repeats the id of line 1"),
    ]
    for argv, data, message in cases:
        _stdin(monkeypatch, data)
        assert main(argv) == 1
        assert f"error: {message}" in capsys.readouterr().err
    _stdin(monkeypatch, b'{"id": "a", "text": "hello"}\n{"id": "b", "text": "bye"}\n')
    assert main(["index", "-", ix, "--encoder", "bm25"]) == 0
    capsys.readouterr()
    (tmp_path / "q.tsv").write_text("q1\thello\n")
    (tmp_path / "qrels").write_text("q1 0 a 1\n")
    cases = [
        (["add", ix, "-"], b'{"text": "x"}\n', "standard input: no id field"),
        (["run", "-", ix, "-o", "-"], b"q 1\tx\n", "standard input:1: query id 'q 1' holds whitespace"),
        (["run", "-", ix, "-o", "-"], b"", "standard input: no queries"),
        (["eval", ix, str(tmp_path / "q.tsv"), "-"], b"q1 0 a x\n", "standard input: no judgements"),
        (["eval", ix, str(tmp_path / "q.tsv"), "-"], b"q1 0 a 1\nq1 0 a 1\n", "standard input:2: document 'a' is judged twice"),
        (["eval", ix, "-", str(tmp_path / "qrels")], b"q1\n", "standard input:1: expected 'qid<TAB>text'"),
    ]
    for argv, data, message in cases:
        _stdin(monkeypatch, data)
        assert main(argv) == 1
        assert f"error: {message}" in capsys.readouterr().err, argv
    # eval's warning and its grade check name qrels read from standard input too (helper-153)
    _stdin(monkeypatch, b"q1 0 zzz 1\n")
    assert main(["eval", ix, str(tmp_path / "q.tsv"), "-"]) == 0
    err = capsys.readouterr().err
    assert "appear in standard input" in err and "in -" not in err, err
    _stdin(monkeypatch, b"q1 0 a 1001\n")
    assert main(["eval", ix, str(tmp_path / "q.tsv"), "-", "--gains", "exponential"]) == 1
    err = capsys.readouterr().err
    assert "error: standard input: qrels: query 'q1'" in err, err
    # a file named "-" is named ./-
    monkeypatch.chdir(tmp_path)
    (tmp_path / "-").write_text("q1\n")
    assert main(["run", "./-", ix, "-o", "-"]) == 1
    assert "error: ./-:1: expected 'qid<TAB>text'" in capsys.readouterr().err


def test_empty_query_vector_is_no_hits_in_python_and_over_http():
    # documented now: a query with no terms is no hits, from Python and over HTTP alike
    import json

    from sparsedex._http import respond

    ix = SparseIndex(encoder=None)
    ix.add([{1: 1.0}], ids=["a"])
    assert ix.search({}) == [] and ix.search(([], [])) == [] and ix.search_batch([{}]) == [[]]
    empty = {"indices": [], "values": []}
    assert respond(ix, "/search", json.dumps({"query": empty}).encode()) == (200, {"hits": []})
    assert respond(ix, "/search_batch", json.dumps({"queries": [empty]}).encode()) == (200, {"hits": [[]]})
    status, out = respond(ix, "/search", json.dumps({"query": {}}).encode())
    assert status == 400 and '"indices" is missing' in out["error"]
    assert "matches no document" in SparseIndex.search.__doc__


@pytest.mark.parametrize("line", [b" q1\thello\n", b"q1 \thello\n", b"q1\t\n q2\thello\n"])
def test_tsv_query_id_is_taken_as_written(capsys, tmp_path, line):
    # " q1" was silently "q1" in a TSV queries file, while JSONL refused it
    ix = str(tmp_path / "ix")
    (tmp_path / "c.jsonl").write_text('{"id": "a", "text": "hello"}\n')
    assert main(["index", str(tmp_path / "c.jsonl"), ix, "--encoder", "bm25"]) == 0
    q = tmp_path / "q.tsv"
    q.write_bytes(line)
    capsys.readouterr()
    assert main(["run", str(q), ix, "-o", "-"]) == 1
    bad = line.splitlines()[-1].split(b"\t")[0].decode()
    n = len(line.splitlines())
    assert f"error: {q}:{n}: query id {bad!r} holds whitespace" in capsys.readouterr().err
    (tmp_path / "q.jsonl").write_text(json.dumps({"id": bad, "text": "hello"}) + "\n")
    assert main(["run", str(tmp_path / "q.jsonl"), ix, "-o", "-"]) == 1
    assert f"error: {tmp_path / 'q.jsonl'}:1: query id {bad!r} holds whitespace" in capsys.readouterr().err
    # a CRLF line end is no part of the id
    q.write_bytes(b"q1\thello\r\n")
    assert main(["run", str(q), ix, "-o", "-"]) == 0
    assert capsys.readouterr().out.startswith("q1 Q0 a 1 ")
