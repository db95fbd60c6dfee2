"""Stop 59: helper-125's findings in the CLI, the evaluation and the HTTP server."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from sparsedex import SparseIndex, _http
from sparsedex.cli import main
from sparsedex.eval import evaluate, rank, write_run


def _cli(capsys, *args):
    try:
        rc = main([str(a) for a in args])
    except SystemExit as e:  # argparse usage errors
        rc = e.code
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.fixture
def small(tmp_path):
    (tmp_path / "c.jsonl").write_text('{"id":"a","text":"the cat sat"}\n{"id":"b","text":"a dog ran"}\n')
    (tmp_path / "q.jsonl").write_text('{"id":"q1","text":"cat"}\n')
    (tmp_path / "qrels.tsv").write_text("q1\ta\t1\n")
    assert main(["index", str(tmp_path / "c.jsonl"), str(tmp_path / "ix"), "--encoder", "bm25"]) == 0
    return tmp_path


def test_eval_run_out_does_not_replace_a_file_without_overwrite(capsys, small):
    """helper-125: `eval --run-out` replaced any file silently, even the qrels being read or
    the index's CURRENT; now it is refused before the search, as `run -o` refuses it."""
    t = small
    capsys.readouterr()
    for target in (t / "qrels.tsv", t / "ix" / "CURRENT"):
        before = target.read_bytes()
        rc, _, err = _cli(capsys, "eval", t / "ix", t / "q.jsonl", t / "qrels.tsv", "--run-out", target)
        assert rc == 1 and f"{target}: exists: pass --overwrite to replace it (--run-out)" in err
        assert target.read_bytes() == before
    rc, out, err = _cli(capsys, "search", t / "ix", "cat")
    assert rc == 0, err
    (t / "r.trec").write_text("old\n")
    rc, _, err = _cli(capsys, "eval", t / "ix", t / "q.jsonl", t / "qrels.tsv", "--run-out", t / "r.trec",
                      "--overwrite")
    assert rc == 0, err
    assert (t / "r.trec").read_text().startswith("q1 Q0 a 1 ")
    rc, _, err = _cli(capsys, "eval", t / "ix", t / "q.jsonl", t / "qrels.tsv", "--run-out", "-")
    assert rc == 1 and "--run-out -: the metrics are printed on stdout" in err
    if os.path.exists("/dev/full"):
        rc, _, err = _cli(capsys, "eval", t / "ix", t / "q.jsonl", t / "qrels.tsv", "--run-out", "/dev/full",
                          "--overwrite")
        assert rc == 1 and "/dev/full: cannot write the run: No space left on device" in err


def test_run_to_stdout(capsys, small):
    """`run -o -` prints the run (it wrote a file named "-")."""
    t = small
    capsys.readouterr()
    cwd = os.getcwd()
    os.chdir(t)
    try:
        rc, out, err = _cli(capsys, "run", t / "q.jsonl", t / "ix", "-o", "-")
    finally:
        os.chdir(cwd)
    assert rc == 0, err
    assert out.startswith("q1 Q0 a 1 ") and out.rstrip().endswith("sparsedex")
    assert "to stdout" in err and not (t / "-").exists()


def test_jsonl_errors_give_the_column_and_a_tsv_corpus_is_named(capsys, tmp_path):
    p = tmp_path / "t.jsonl"
    p.write_text('{"id":"1","text":"x"}\n{"id":"5","text":\n')
    rc, _, err = _cli(capsys, "index", p, tmp_path / "ix", "--encoder", "bm25")
    assert rc == 1 and "t.jsonl:2: bad JSON line (Expecting value at column 18)" in err, err
    p = tmp_path / "c.tsv"
    p.write_text("d1\tthe cat\n")
    rc, _, err = _cli(capsys, "index", p, tmp_path / "ix2", "--encoder", "bm25")
    assert rc == 1 and "c.tsv:1: bad JSON line" in err and "is JSONL, one JSON object a line, not TSV" in err


def test_a_bad_route_prefix_is_a_usage_error(capsys, small):
    rc, _, err = _cli(capsys, "serve", small / "ix", "--route-prefix", "api")
    assert rc == 2 and "argument --route-prefix: route prefix 'api' must be a path starting with /" in err


def test_http_queries_that_are_not_a_list():
    index = SparseIndex(None)
    index.add([([1], [1.0])], ids=["a"])
    status, obj = _http.respond(index, "/search_batch", json.dumps({"queries": "cat"}).encode())
    assert status == 400 and obj["error"] == '"queries" must be a list of queries, got a str'
    status, obj = _http.respond(index, "/search_batch", json.dumps({"k": 3}).encode())
    assert status == 400 and 'no "queries" list' in obj["error"]


def test_scores_tie_as_float32_as_in_trec_eval(tmp_path: Path):
    """helper-125: trec_eval (and so ir_measures) keeps scores as C floats: 1.00000001 and
    1.0 tie and the larger document id ranks first. Ranked by the float64 value, AP was 0.5
    where ir_measures gives 1.0. Values that differ in float32 still rank by score."""
    qrels = {"q1": {"b": 1}}
    assert evaluate({"q1": {"a": 1.00000001, "b": 1.0}}, qrels, ["map", "ndcg@10"]) == {"map": 1.0, "ndcg@10": 1.0}
    assert evaluate({"q1": {"a": 1.0000001, "b": 1.0}}, qrels, ["map"]) == {"map": 0.5}
    assert evaluate({"q1": [("a", 1.00000006), ("b", 1.0)]}, qrels, ["map"]) == {"map": 0.5}
    assert [d for d, _ in rank({"a": 1e-46, "b": 0.0, "c": 1e300, "d": -1e300})] == ["c", "b", "a", "d"]
    write_run({"q1": {"a": 1.00000001, "b": 1.0}}, tmp_path / "r.trec")
    lines = (tmp_path / "r.trec").read_text().splitlines()
    assert [ln.split()[2] for ln in lines] == ["b", "a"]
    assert lines[1].split()[4] == "1.00000001"  # the score as given
