"""Stop 64: faults found by helper-145's testers. ``-`` is standard input for the CLI's input
files; a SPLADE model's missing external data file and the same model saved in another
layout are named; evaluate() strips spaces around metric names and warns of an empty run;
a missing value as the query, a CJK id in the search table, a symlinked LOCK and a set of ids
given to SegmentView.build are named or handled."""

import io
import os
import sys
import unicodedata

import numpy as np
import pytest

from sparsedex import SparseIndex
from sparsedex.cli import main


def _stdin(monkeypatch, data: bytes) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))


def test_dash_reads_standard_input(monkeypatch, capsys, tmp_path):
    # "-" was taken for a file name ("-: no such corpus file"); /dev/stdin worked for a corpus
    # but not for queries, whose first line was read to tell JSONL from TSV
    ix = str(tmp_path / "ix")
    _stdin(monkeypatch, b'{"id": "a", "text": "hello world"}\n{"id": "b", "text": "good bye"}\n')
    assert main(["index", "-", ix, "--encoder", "bm25"]) == 0
    _stdin(monkeypatch, b'{"id": "c", "text": "hello again"}\n')
    assert main(["add", ix, "-"]) == 0
    capsys.readouterr()
    _stdin(monkeypatch, b"\n\nq1\thello\n")  # blank lines before the first query: read ahead, given back
    assert main(["run", "-", ix, "-o", "-"]) == 0
    assert capsys.readouterr().out.startswith("q1 Q0 ")
    (tmp_path / "q.jsonl").write_text('{"id": "q1", "text": "bye"}\n')
    _stdin(monkeypatch, b"q1 0 b 1\n")
    assert main(["eval", ix, str(tmp_path / "q.jsonl"), "-", "--metrics", "ndcg@10", "--json"]) == 0
    assert '"ndcg@10": 1.0' in capsys.readouterr().out
    _stdin(monkeypatch, b'{"id": "q1", "text": "bye"}\n')
    (tmp_path / "qrels").write_text("q1 0 b 1\n")
    assert main(["eval", ix, "-", str(tmp_path / "qrels"), "--metrics", "ndcg@10", "--json"]) == 0
    assert '"ndcg@10": 1.0' in capsys.readouterr().out
    assert main(["eval", ix, "-", "-"]) == 1
    assert "QUERIES and QRELS are both - (standard input)" in capsys.readouterr().err
    _stdin(monkeypatch, b'{"id": "q1", "text": "bye"}\n{bad\n')
    assert main(["run", "-", ix, "-o", "-"]) == 1
    assert "standard input:2: bad JSON line" in capsys.readouterr().err  # "-:2:" before stop 65
    # a file named "-" is ./-
    monkeypatch.chdir(tmp_path)
    (tmp_path / "-").write_text("q1\tbye\n")
    _stdin(monkeypatch, b"")
    assert main(["run", "./-", ix, "-o", "-"]) == 0
    assert "q1 Q0 b 1 " in capsys.readouterr().out
    for cmd in (["index"], ["add"], ["eval"], ["run"]):
        with pytest.raises(SystemExit):
            main([*cmd, "--help"])
        assert "(- for standard input)" in capsys.readouterr().out


def _splade_copy(tmp_path, name, external=False):
    import shutil
    from pathlib import Path

    import sparsedex

    out = tmp_path / name
    shutil.copytree(Path(sparsedex.__file__).parent / "models" / "splade-tiny", out)
    if external:
        onnx = pytest.importorskip("onnx")
        onnx.save(onnx.load(str(out / "model.onnx")), str(out / "model.onnx"), save_as_external_data=True,
                  location="model.onnx_data", size_threshold=0)
    return out


def test_a_missing_external_data_file_names_the_model_directory(tmp_path):
    # onnx's ValidationError ("Data of TensorProto ... should be stored in ..., but it is not
    # regular file") named neither the model directory nor what to do
    from sparsedex.encoders.registry import ModelNotAvailableError

    m = _splade_copy(tmp_path, "m", external=True)
    (m / "model.onnx_data").unlink()
    with pytest.raises(ModelNotAvailableError, match=(
            f"model directory {m.resolve()} lacks model.onnx_data: its model.onnx keeps its weights in external "
            r"data \(model.onnx_data\); copy it into the directory with model.onnx")):
        SparseIndex(str(m))


def test_the_same_model_in_another_layout_is_refused_with_what_to_do(tmp_path):
    # refused as "another model, or one changed since": the re-saved copy of the very model
    # the index was built with hashes differently, and nothing said so
    m1 = _splade_copy(tmp_path, "m1")
    m2 = _splade_copy(tmp_path, "m2", external=True)
    ix = SparseIndex(str(m1))
    ix.add(["a rock band on tour", "a quiet library"])
    ix.save(tmp_path / "ix")
    with pytest.raises(ValueError, match=(
            r"another model, or one changed since; the same model saved in another file layout, its weights inline "
            r"or in an external data file or saved again by onnx.save, differs too: use the copy of the model the "
            r"index was built with, or re-index with this one\).*open it without encoder=")):
        SparseIndex.open(tmp_path / "ix", encoder=str(m2))
    assert SparseIndex.open(tmp_path / "ix", encoder=str(m1)).search("band", k=1)[0].id == 0


def test_evaluate_strips_spaces_around_metric_names():
    # "ndcg@10 " came back under a key with its space; --metrics "ndcg@10, map" strips them
    from sparsedex.eval import evaluate

    run, qrels = {"q1": {"a": 2.0, "b": 1.0}}, {"q1": {"b": 1}}
    got = evaluate(run, qrels, ["ndcg@10 ", " map", "mrr@10", "rr@10"])
    assert list(got) == ["ndcg@10", "map", "mrr@10", "rr@10"]
    assert got["map"] == got["mrr@10"] == got["rr@10"] == 0.5
    means, per_query = evaluate(run, qrels, "\tP@1 ", per_query=True)
    assert means == {"P@1": 0.0} and per_query == {"P@1": {"q1": 0.0}}


def test_an_empty_run_is_warned_of():
    # evaluate({}, qrels) gave 0 for every metric without a word (ir_measures gives 0 too)
    from sparsedex.eval import evaluate

    qrels = {"q1": {"a": 1}, "q2": {"b": 2}}
    with pytest.warns(UserWarning, match=r"the run holds no query: every metric is 0 \(qrels queries e.g. 'q1', 'q2'\)"):
        assert evaluate({}, qrels, ["ndcg@10", "map"]) == {"ndcg@10": 0.0, "map": 0.0}
    with pytest.warns(UserWarning, match="no query of the run is judged in the qrels: every metric is 0"):
        assert evaluate({"x": {"a": 1.0}}, qrels, ["map"]) == {"map": 0.0}
    with pytest.raises(ValueError, match="missing='skip': no query of the qrels is in the run"):
        evaluate({}, qrels, ["map"], missing="skip")


def test_a_missing_value_as_the_query_is_named():
    # "query: cannot interpret NAType as a sparse vector" named no missing value
    import pandas as pd

    ix = SparseIndex("bm25")
    ix.add(["hello world", "bye"])
    with pytest.raises(TypeError, match=r"^query is a missing value \(pandas' <NA>\): pass a text \(this index encodes"):
        ix.search(pd.NA)
    with pytest.raises(TypeError, match=r"^query is a missing value \(NaN\): pass a text"):
        ix.search(float("nan"))
    with pytest.raises(TypeError, match=r"^query 1 is a missing value \(pandas' <NA>\): pass texts"):
        ix.search_batch(["hello", pd.NA])
    with pytest.raises(TypeError, match="^query is None: pass a text"):
        ix.search(None)
    vx = SparseIndex(encoder=None)
    vx.add([{1: 1.0}])
    with pytest.raises(TypeError, match=r"^query is a missing value \(pandas' <NA>\), not a sparse vector"):
        vx.search(pd.NA)
    with pytest.raises(TypeError, match=r"^query 1 is a missing value \(NaN\), not a sparse vector"):
        vx.search_batch([{1: 1.0}, float("nan")])


def _columns(s):
    return sum(0 if unicodedata.combining(c) else 2 if unicodedata.east_asian_width(c) in ("W", "F") else 1 for c in s)


def test_search_table_measures_ids_in_terminal_columns(capsys, tmp_path):
    # an id of CJK characters was padded by its length, not its width: its row's document
    # column started further right than the others'
    corpus = tmp_path / "c.jsonl"
    corpus.write_text('{"id": "東京タワー", "text": "hello tower"}\n{"id": "ab", "text": "hello world"}\n'
                      '{"id": "e\\u0301x", "text": "hello there"}\n', encoding="utf-8")
    assert main(["index", str(corpus), str(tmp_path / "ix"), "--encoder", "bm25"]) == 0
    capsys.readouterr()
    assert main(["search", str(tmp_path / "ix"), "hello"]) == 0
    lines = capsys.readouterr().out.splitlines()
    starts = {_columns(line[: line.index("hello" if i else "document")]) for i, line in enumerate(lines)}
    assert len(lines) == 4 and "東京タワー" in lines[3] and len(starts) == 1


@pytest.mark.skipif(not hasattr(os, "symlink") or sys.platform == "win32", reason="POSIX symlinks")
def test_a_symlinked_writer_lock_is_named(tmp_path):
    # "the writer lock LOCK cannot be opened (Too many levels of symbolic links)" whatever it
    # pointed to (filelock opens it with O_NOFOLLOW)
    ix = SparseIndex(encoder=None)
    ix.add([{1: 1.0}])
    ix.save(tmp_path / "ix")
    ix.close()
    lock = tmp_path / "ix" / "LOCK"
    if os.path.lexists(lock):
        lock.unlink()
    (tmp_path / "elsewhere").write_text("")
    lock.symlink_to(tmp_path / "elsewhere")
    opened = SparseIndex.open(tmp_path / "ix")
    with pytest.raises(OSError, match=r"the writer lock LOCK is a symbolic link \(to .*elsewhere\), not a lock file: remove it"):
        opened.add([{2: 1.0}])
    opened.close()


def test_segment_view_refuses_a_set_of_ids():
    # the ids fell on the documents in hash order, as SparseIndex.add refuses them
    from sparsedex._segment import SegmentView

    docs = [([1], [1.0]), ([2], [1.0])]
    for ids in ({"a", "b"}, frozenset({1, 2})):
        with pytest.raises(TypeError, match=f"ids is a {type(ids).__name__}, which has no order: pass a list"):
            SegmentView.build(docs, ids=ids)
    assert SegmentView.build(docs, ids=["a", "b"]) is not None


def test_approximate_holds_its_target_deeper_than_the_calibration():
    """helper-146: the calibration measures how well a cut query finds the top 10 of all
    documents; 10 hits under a random filter of 10% of the documents stand near rank 100, where
    the cut query's order is looser, and on Zipf vectors the point calibrated for 0.90 reached
    0.87-0.89 (0.883 here before the fix), as did k = 100 unfiltered. A search deeper than the
    calibration now asks it for a stricter point (`approx::depth_target`)."""
    import scipy.sparse as sp

    rng = np.random.default_rng(21)
    n, v = 30000, 20000
    cdf = np.cumsum(1 / np.arange(1, v + 1) ** 0.9)
    cdf /= cdf[-1]

    def zipf(m):
        return np.minimum(np.searchsorted(cdf, rng.random(m)), v - 1)

    m = sp.coo_matrix((rng.lognormal(0, 0.7, n * 60).astype(np.float32),
                       (np.repeat(np.arange(n), 60), zipf(n * 60))), shape=(n, v)).tocsr()
    ix = SparseIndex(None, quantization="u8")
    ix.add(m, payloads=[{"g": i % 50} for i in range(n)])
    qs = [(t.tolist(), rng.lognormal(0, 0.7, len(t)).tolist()) for t in (np.unique(zipf(25)) for _ in range(400))]
    flt = {"g": {"$lt": 5}}
    exact = ix.search_batch(qs, k=10, algorithm="exhaustive", filter=flt)
    approx = ix.search_batch(qs, k=10, algorithm="approximate", target_recall=0.9, filter=flt)
    recall = np.mean([sum(h.score >= e[-1].score for h in a) / len(e) for a, e in zip(approx, exact) if e])
    assert recall >= 0.895, recall
