"""The CLI keeps every id and never prints a traceback (issue 9 item 7, issue 11 items 6, 7, 10):
BEIR and other id / text fields, joined text fields, overwrite and add without ids refused,
eval warnings, `sparsedex run`, progress per encoding batch, --help with examples, and one-line
errors naming the file, line and field."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from sparsedex import SparseIndex
from sparsedex.cli import build_parser, main


def run_cli(capsys, *args):
    rc = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return rc, out, err


def write_jsonl(path, records):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


def one_line_error(err: str, *fragments: str) -> None:
    assert err.startswith("sparsedex: error: "), err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    for f in fragments:
        assert f in err, (f, err)


BEIR = [
    {"_id": "doc-a", "title": "Spinal Tap", "text": "A heavy metal band on a fateful tour.", "metadata": {"year": 1984}},
    {"_id": "doc-b", "title": "", "text": "A projectionist dreams of being a detective.", "metadata": {}},
    {"_id": "doc-c", "title": "Heat", "text": "Thieves and a heist in Los Angeles.", "metadata": {"year": 1995}},
]


# ids and text fields ---------------------------------------------------------------------------
def test_beir_corpus_keeps_ids_and_joins_title_and_text(capsys, tmp_path):
    corpus = write_jsonl(tmp_path / "corpus.jsonl", BEIR)
    ix = tmp_path / "ix"
    rc, out, err = run_cli(capsys, "index", corpus, ix, "--encoder", "bm25")
    assert rc == 0, err
    assert "warning" not in err
    index = SparseIndex.open(ix)
    assert sorted(index.ids()) == ["doc-a", "doc-b", "doc-c"]
    assert index.get("doc-a").text == "Spinal Tap A heavy metal band on a fateful tour."
    assert index.get("doc-b").text == "A projectionist dreams of being a detective."  # empty title skipped
    assert index.get("doc-a").payload == {"metadata": {"year": 1984}}
    rc, out, _ = run_cli(capsys, "search", ix, "spinal tap", "--json")
    assert json.loads(out)[0]["id"] == "doc-a"  # found by its title


@pytest.mark.parametrize("field", ["docid", "pid", "doc_id", "docno", "id"])
def test_other_id_fields_are_recognised(capsys, tmp_path, field):
    corpus = write_jsonl(tmp_path / "c.jsonl", [{field: "x1", "text": "alpha"}, {field: "x2", "text": "beta"}])
    assert run_cli(capsys, "index", corpus, tmp_path / "ix", "--encoder", "bm25")[0] == 0
    assert sorted(SparseIndex.open(tmp_path / "ix").ids()) == ["x1", "x2"]


@pytest.mark.parametrize("field", ["doc_uuid", "DocID", "uuid", "passage-no", "key"])
def test_an_unrecognised_id_field_stops_the_command_naming_it(capsys, tmp_path, field):
    corpus = write_jsonl(tmp_path / "c.jsonl", [{field: "x1", "text": "alpha"}, {field: "x2", "text": "beta"}])
    rc, out, err = run_cli(capsys, "index", corpus, tmp_path / "ix", "--encoder", "bm25")
    assert rc == 1
    one_line_error(err, "c.jsonl:1: no id field", f"field {field!r} looks like one: pass --id-field {field}",
                   "--no-ids")
    assert not (tmp_path / "ix").exists()
    assert run_cli(capsys, "index", corpus, tmp_path / "ix", "--encoder", "bm25", "--id-field", field)[0] == 0
    assert sorted(SparseIndex.open(tmp_path / "ix").ids()) == ["x1", "x2"]
    rc, out, err = run_cli(capsys, "index", corpus, tmp_path / "ix2", "--encoder", "bm25", "--no-ids")
    assert rc == 0 and SparseIndex.open(tmp_path / "ix2").ids() == [0, 1]
    assert SparseIndex.open(tmp_path / "ix2").get(0).payload == {field: "x1"}


def test_no_id_field_numbers_documents_and_says_so(capsys, tmp_path):
    corpus = write_jsonl(tmp_path / "c.jsonl", [{"text": "alpha", "lang": "en"}, {"text": "beta", "lang": "de"}])
    rc, out, err = run_cli(capsys, "index", corpus, tmp_path / "ix", "--encoder", "bm25")
    assert rc == 0
    assert "warning: " in err and "no id field: documents are numbered 0 to 1 in file order" in err
    assert SparseIndex.open(tmp_path / "ix").ids() == [0, 1]


def test_text_fields_join_and_are_checked(capsys, tmp_path):
    corpus = write_jsonl(tmp_path / "c.jsonl", [
        {"id": 1, "headline": "Mars rover", "body": "finds water", "summary": None},
        {"id": 2, "body": "no headline here"},
    ])
    ix = tmp_path / "ix"
    rc, out, err = run_cli(capsys, "index", corpus, ix, "--encoder", "bm25", "--text-field", "headline,summary,body")
    assert rc == 0, err
    index = SparseIndex.open(ix)
    assert index.get(1).text == "Mars rover finds water" and index.get(2).text == "no headline here"
    assert index.get(1).payload is None  # the joined fields are the text, not the payload
    bad = write_jsonl(tmp_path / "bad.jsonl", [{"id": 1, "headline": "ok", "body": "ok"}, {"id": 2, "headline": 7}])
    rc, out, err = run_cli(capsys, "index", bad, tmp_path / "ix2", "--encoder", "bm25", "--text-field", "headline,body")
    assert rc == 1
    one_line_error(err, "bad.jsonl:2: field 'headline' is a number, not a string")
    nulls = write_jsonl(tmp_path / "nulls.jsonl", [{"id": 1, "headline": "ok"}, {"id": 2, "headline": None, "body": None}])
    rc, out, err = run_cli(capsys, "index", nulls, tmp_path / "ix3", "--encoder", "bm25", "--text-field", "headline,body")
    assert rc == 1
    one_line_error(err, "nulls.jsonl:2: none of the fields 'headline', 'body' (all null)")
    rc, out, err = run_cli(capsys, "index", bad, tmp_path / "ix3", "--encoder", "bm25", "--text-field", "nothere")
    one_line_error(err, "bad.jsonl:1: no 'nothere' field")


# every problem named by file, line and field --------------------------------------------------------
def test_a_duplicate_id_on_line_2000_names_line_2000(capsys, tmp_path):
    recs = [{"id": f"d{i}", "text": f"document number {i}"} for i in range(1999)]
    recs.append({"id": "d16", "text": "the same id again"})
    corpus = write_jsonl(tmp_path / "c.jsonl", recs)
    rc, out, err = run_cli(capsys, "index", corpus, tmp_path / "ix", "--encoder", "bm25")
    assert rc == 1
    one_line_error(err, "c.jsonl:2000: id 'd16' repeats the id of line 17")
    assert not (tmp_path / "ix").exists()


@pytest.mark.parametrize(
    "line, message",
    [
        ('{"id": "a\\ud800b", "text": "x"}', "c.jsonl:2: field 'id' holds a lone surrogate (U+D800 at character 1)"),
        ('{"id": "b", "text": "bad \\udc00"}', "c.jsonl:2: field 'text' holds a lone surrogate (U+DC00 at character 4)"),
        ('{"id": "b", "text": "x", "note": "\\ud83d"}', "c.jsonl:2: field 'note': the string holds a lone surrogate"),
        ('{"id": "b", "text": "x", "meta": {"score": NaN}}', "c.jsonl:2: field 'meta.score': expected a finite number, got nan"),
        ('{"id": 7, "text": "x"}', "c.jsonl:2: id 7 is an integer but the id on line 1 is a string"),
        ('{"id": true, "text": "x"}', "c.jsonl:2: field 'id' must be a string or an integer, got true"),
        ('{"id": 99999999999999999999, "text": "x"}', "c.jsonl:2: field 'id': integer id 99999999999999999999 is outside"),
        ('{"id": "b", "text": ["x"]}', "c.jsonl:2: field 'text' is a list, not a string"),
        ('{"id": "b"}', "c.jsonl:2: no 'text' field"),
        # was indexed as an empty document (helper-101)
        ('{"id": "b", "text": null}', "c.jsonl:2: field 'text' is null, not a string"),
        ('{"id": "b", "title": "t", "text": null}', "c.jsonl:2: field 'text' is null, not a string"),
        ("[" * 100_000 + "]" * 100_000, "c.jsonl:2: bad JSON line (nested too deeply)"),
        ('{"id": "b", "text": "x", "deep": ' + "[" * 80 + "]" * 80 + "}", "c.jsonl:2: field 'deep", ),
    ],
)
def test_bad_records_are_named_by_file_line_and_field(capsys, tmp_path, line, message):
    corpus = tmp_path / "c.jsonl"
    corpus.write_text('{"id": "a", "text": "fine"}\n' + line + "\n", encoding="utf-8")
    rc, out, err = run_cli(capsys, "index", corpus, tmp_path / "ix", "--encoder", "bm25")
    assert rc == 1
    one_line_error(err, message)
    assert not (tmp_path / "ix").exists()


def test_not_utf8_corpus_is_named(capsys, tmp_path):
    corpus = tmp_path / "c.jsonl"
    corpus.write_bytes(b'{"id": "a", "text": "fine"}\n{"id": "b", "text": "caf\xe9"}\n')
    rc, out, err = run_cli(capsys, "index", corpus, tmp_path / "ix", "--encoder", "bm25")
    one_line_error(err, "c.jsonl:2: not UTF-8 text (byte 0xe9 at column 25)")


# index / add -----------------------------------------------------------------------------------
def test_index_does_not_replace_an_index_without_overwrite(capsys, tmp_path):
    corpus = write_jsonl(tmp_path / "c.jsonl", BEIR)
    ix = tmp_path / "ix"
    assert run_cli(capsys, "index", corpus, ix, "--encoder", "bm25")[0] == 0
    other = write_jsonl(tmp_path / "other.jsonl", [{"id": "z", "text": "something else"}])
    rc, out, err = run_cli(capsys, "index", other, ix, "--encoder", "bm25")
    assert rc == 1
    one_line_error(err, "holds an index already: pass --overwrite to replace it")
    assert sorted(SparseIndex.open(ix).ids()) == ["doc-a", "doc-b", "doc-c"]  # untouched
    rc, out, err = run_cli(capsys, "index", other, ix, "--encoder", "bm25", "--overwrite")
    assert rc == 0, err
    assert SparseIndex.open(ix).ids() == ["z"]
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("keep me")
    rc, out, err = run_cli(capsys, "index", other, tmp_path / "notes", "--encoder", "bm25", "--overwrite")
    one_line_error(err, "exists, is not empty and is not a sparsedex index: choose another directory "
                        "(--overwrite replaces only a sparsedex index)")
    assert (tmp_path / "notes" / "todo.txt").read_text() == "keep me"


def test_add_without_ids_refuses_instead_of_duplicating(capsys, tmp_path):
    corpus = write_jsonl(tmp_path / "c.jsonl", [{"text": "alpha"}, {"text": "beta"}])
    ix = tmp_path / "ix"
    assert run_cli(capsys, "index", corpus, ix, "--encoder", "bm25")[0] == 0
    rc, out, err = run_cli(capsys, "add", ix, corpus)
    assert rc == 1
    one_line_error(err, "c.jsonl: no id field: `add` replaces documents by id", "--new-ids")
    assert len(SparseIndex.open(ix)) == 2
    rc, out, err = run_cli(capsys, "add", ix, corpus, "--new-ids")
    assert rc == 0 and "2 -> 4 documents" in out, err
    assert SparseIndex.open(ix).ids() == [0, 1, 2, 3]
    uuid = write_jsonl(tmp_path / "u.jsonl", [{"uuid": "q", "text": "gamma"}])
    rc, out, err = run_cli(capsys, "add", ix, uuid)
    one_line_error(err, "field 'uuid' looks like one: pass --id-field uuid, or --new-ids")


def test_add_with_beir_ids_replaces(capsys, tmp_path):
    ix = tmp_path / "ix"
    assert run_cli(capsys, "index", write_jsonl(tmp_path / "c.jsonl", BEIR), ix, "--encoder", "bm25")[0] == 0
    again = write_jsonl(tmp_path / "again.jsonl", [{"_id": "doc-a", "title": "Spinal Tap", "text": "Now a jazz trio."}])
    rc, out, err = run_cli(capsys, "add", ix, again)
    assert rc == 0 and "3 -> 3 documents" in out, err
    assert SparseIndex.open(ix).get("doc-a").text == "Spinal Tap Now a jazz trio."


# eval and run -----------------------------------------------------------------------------------
@pytest.fixture
def beir_ix(capsys, tmp_path):
    ix = tmp_path / "ix"
    assert run_cli(capsys, "index", write_jsonl(tmp_path / "corpus.jsonl", BEIR), ix, "--encoder", "bm25")[0] == 0
    write_jsonl(tmp_path / "queries.jsonl", [{"_id": "q1", "text": "metal band tour"}, {"_id": "q2", "text": "heist thieves"}])
    (tmp_path / "qrels.tsv").write_text("query-id\tcorpus-id\tscore\nq1\tdoc-a\t2\nq2\tdoc-c\t1\n")
    return ix


def test_eval_with_beir_files_and_gains_printed(capsys, tmp_path, beir_ix):
    rc, out, err = run_cli(capsys, "eval", beir_ix, tmp_path / "queries.jsonl", tmp_path / "qrels.tsv", "-k", "10",
                           "--metrics", "ndcg@10,mrr@10")
    assert rc == 0, err
    assert "warning" not in err
    assert "ndcg@10  1.0000" in out and "nDCG gains: linear (rel), as trec_eval and ir_measures" in out
    rc, out, err = run_cli(capsys, "eval", beir_ix, tmp_path / "queries.jsonl", tmp_path / "qrels.tsv", "--json")
    assert json.loads(out)["gains"] == "linear"


def test_eval_warns_about_ids_and_cutoffs(capsys, tmp_path, beir_ix):
    (tmp_path / "other.tsv").write_text("q1\t17\t1\nq2\t23\t1\n")
    rc, out, err = run_cli(capsys, "eval", beir_ix, tmp_path / "queries.jsonl", tmp_path / "other.tsv", "-k", "10",
                           "--metrics", "map,r@100,p@5")
    assert rc == 0
    assert "warning: none of the 2 documents retrieved appear in" in err and "index: 'doc-a', 'doc-c'" in err
    assert "warning: r@100 looks at the top 100 but -k 10 retrieves only 10 documents a query" in err
    assert "p@5 looks" not in err


def test_eval_input_errors_are_named(capsys, tmp_path, beir_ix):
    (tmp_path / "dup.tsv").write_text("q1\tdoc-a\t1\nq1\tdoc-a\t2\n")
    rc, out, err = run_cli(capsys, "eval", beir_ix, tmp_path / "queries.jsonl", tmp_path / "dup.tsv")
    one_line_error(err, "dup.tsv:2: document 'doc-a' is judged twice for query 'q1' (first on line 1)")
    (tmp_path / "frac.tsv").write_text("q1\tdoc-a\t1.5\n")
    rc, out, err = run_cli(capsys, "eval", beir_ix, tmp_path / "queries.jsonl", tmp_path / "frac.tsv")
    one_line_error(err, "frac.tsv:1: relevance '1.5' of document 'doc-a' for query 'q1' is not an integer")
    (tmp_path / "latin.tsv").write_bytes("q1\tdoc-\u00e9\t1\n".encode("latin-1"))
    rc, out, err = run_cli(capsys, "eval", beir_ix, tmp_path / "queries.jsonl", tmp_path / "latin.tsv")
    one_line_error(err, "latin.tsv:1: not UTF-8 text")


def test_run_writes_a_trec_run_without_qrels(capsys, tmp_path, beir_ix):
    out_file = tmp_path / "run.trec"
    rc, out, err = run_cli(capsys, "run", tmp_path / "queries.jsonl", beir_ix, "-o", out_file, "-k", "2", "--run-tag", "bm25")
    assert rc == 0, err
    lines = [line.split() for line in out_file.read_text().splitlines()]
    assert lines[0] == ["q1", "Q0", "doc-a", "1", lines[0][4], "bm25"] and float(lines[0][4]) > 0
    assert {(x[0], x[2]) for x in lines} >= {("q1", "doc-a"), ("q2", "doc-c")}
    assert all(len(x) == 6 for x in lines) and max(int(x[3]) for x in lines) <= 2
    from sparsedex.eval import evaluate

    assert evaluate(out_file, tmp_path / "qrels.tsv", ["rr"])["rr"] == 1.0
    rc, out, err = run_cli(capsys, "run", tmp_path / "queries.jsonl", beir_ix, "-o", out_file)
    one_line_error(err, "run.trec: exists: pass --overwrite to replace it")
    (tmp_path / "topics.tsv").write_text("q1\tmetal band\nq2\theist\n")
    rc, out, err = run_cli(capsys, "run", tmp_path / "topics.tsv", beir_ix, "-o", out_file, "--overwrite")
    assert rc == 0 and "wrote" in out and "2 queries" in out, err
    (tmp_path / "dupq.tsv").write_text("q1\tmetal\nq1\theist\n")
    rc, out, err = run_cli(capsys, "run", tmp_path / "dupq.tsv", beir_ix, "-o", tmp_path / "x.trec")
    one_line_error(err, "dupq.tsv:2: query id 'q1' repeats the id of line 1")


# usage, limits, tracebacks ---------------------------------------------------------------------------
@pytest.mark.parametrize("k", ["0", "-3", "99999999999999999999", "ten"])
def test_bad_k_is_a_usage_error(capsys, k, beir_ix):
    with pytest.raises(SystemExit) as e:
        main(["search", str(beir_ix), "q", "-k", k])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "-k" in err


def test_deep_and_bad_filters_are_one_line(capsys, beir_ix):
    deep = "{" + '"$not": {' * 3000 + '"x": 1' + "}" * 3001
    rc, out, err = run_cli(capsys, "search", beir_ix, "band", "--filter", deep)
    assert rc == 1
    one_line_error(err, "filter")
    deeper = "[" * 100_000 + "]" * 100_000
    rc, out, err = run_cli(capsys, "search", beir_ix, "band", "--filter", deeper)
    one_line_error(err, "--filter is nested too deeply")
    rc, out, err = run_cli(capsys, "search", beir_ix, "band", "--filter", '{"year": NaN}')
    one_line_error(err, "filter at year: expected a finite number, got nan")


def test_every_subcommand_help_has_a_description_and_an_example():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    assert set(sub.choices) == {"demo", "index", "search", "add", "delete", "merge", "explain", "eval", "run", "info", "serve"}
    for name, p in sub.choices.items():
        text = p.format_help()
        assert p.description and len(p.description) > 40, name
        assert "examples:\n  sparsedex " + name in text, name


def test_no_failure_prints_a_traceback_in_a_subprocess(tmp_path):
    env = dict(os.environ, SPARSEDEX_PROGRESS="0")
    (tmp_path / "deep.jsonl").write_text("[" * 200_000 + "]" * 200_000 + "\n")
    cases = [
        ["index", str(tmp_path / "deep.jsonl"), str(tmp_path / "ix"), "--encoder", "bm25"],
        ["search", str(tmp_path), "q", "-k", "99999999999999999999"],
        ["search", str(tmp_path / "missing"), "q"],
        ["run", str(tmp_path / "deep.jsonl"), str(tmp_path / "missing"), "-o", str(tmp_path / "r.trec")],
    ]
    for args in cases:
        r = subprocess.run([sys.executable, "-m", "sparsedex", *args], capture_output=True, text=True, env=env)
        assert r.returncode in (1, 2), (args, r.stderr)
        assert "Traceback" not in r.stderr and r.stderr.strip(), (args, r.stderr)


# progress ---------------------------------------------------------------------------------------------
class RecordingBar:
    def __init__(self, *a, **k):
        self.updates: list[int] = []

    def update(self, n=1):
        self.updates.append(n)

    def close(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pass


@pytest.mark.model
def test_progress_advances_per_encoding_batch(capsys, tmp_path, monkeypatch):
    from sparsedex import cli
    from sparsedex.encoders import SpladeEncoder

    bar = RecordingBar()
    enc = SpladeEncoder("splade-tiny", batch_size=2, progress=bar)
    enc.encode_documents(["one", "two", "three", "four", "five"])
    assert bar.updates == [2, 2, 1]  # one step per ONNX batch, never closed by the encoder
    bars: list[RecordingBar] = []
    monkeypatch.setattr(cli, "_progress", lambda total, desc, unit="doc": bars.append(RecordingBar()) or bars[-1])
    corpus = write_jsonl(tmp_path / "c.jsonl", [{"id": i, "text": f"document {i} " * (1 + i % 40)} for i in range(150)])
    rc, out, err = run_cli(capsys, "index", corpus, tmp_path / "ix")
    assert rc == 0, err
    ups = bars[0].updates
    assert sum(ups) == 150 and len(ups) > 2 and max(ups) <= 64  # per encoding batch, not per 1,024-document chunk


def test_index_overwrite_holds_the_writer_lock_while_encoding(capsys, tmp_path, monkeypatch):
    """``index --overwrite`` takes the old index's writer lock before encoding and keeps it
    until its save (a writer starting meanwhile used to commit into an index about to be
    replaced); given through a symbolic link, the save uses the same hold; the lock is free
    afterwards, and after a refused corpus."""
    from sparsedex import cli
    from sparsedex.lock import IndexLockedError

    corpus = write_jsonl(tmp_path / "c.jsonl", BEIR)
    ix = tmp_path / "ix"
    assert run_cli(capsys, "index", corpus, ix, "--encoder", "bm25")[0] == 0
    (tmp_path / "link").symlink_to(ix)
    other = write_jsonl(tmp_path / "other.jsonl", [{"id": "z", "text": "something else"}])
    real = cli._add_in_chunks
    refused = []

    def add_and_try_a_writer(index, recs, **kw):
        w = SparseIndex.open(ix)
        try:
            w.delete(["doc-a"])
        except IndexLockedError as e:
            refused.append(str(e))
        finally:
            w.close()
        return real(index, recs, **kw)

    monkeypatch.setattr(cli, "_add_in_chunks", add_and_try_a_writer)
    for target in (ix, tmp_path / "link"):
        refused.clear()
        rc, out, err = run_cli(capsys, "index", other, target, "--encoder", "bm25", "--overwrite")
        assert rc == 0, err
        assert len(refused) == 1 and "being written by another writer" in refused[0], refused
        assert SparseIndex.open(ix).ids() == ["z"]
    monkeypatch.setattr(cli, "_add_in_chunks", real)
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    assert run_cli(capsys, "index", empty, ix, "--encoder", "bm25", "--overwrite")[0] == 1
    w = SparseIndex.open(ix)  # the lock is free again
    w.delete(["z"])
    w.commit()
    w.close()


@pytest.mark.parametrize("start", ["missing", "empty"])
def test_index_does_not_replace_an_index_saved_there_while_it_encoded(capsys, tmp_path, monkeypatch, start):
    """Two ``sparsedex index`` runs into one new directory (helper-111): both found it missing
    or empty at start, both said they had indexed, and the later save replaced the earlier
    index. Now the later run fails, naming the index saved meanwhile, and leaves it whole."""
    from sparsedex import cli

    corpus = write_jsonl(tmp_path / "c.jsonl", BEIR)
    other = write_jsonl(tmp_path / "other.jsonl", [{"id": "z", "text": "something else"}])
    ix = tmp_path / "ix"
    if start == "empty":
        ix.mkdir()
    real = cli._add_in_chunks

    def another_run_saves_first(index, recs, **kw):
        monkeypatch.setattr(cli, "_add_in_chunks", real)
        assert run_cli(capsys, "index", other, ix, "--encoder", "bm25")[0] == 0  # the other run, quicker
        return real(index, recs, **kw)

    monkeypatch.setattr(cli, "_add_in_chunks", another_run_saves_first)
    rc, out, err = run_cli(capsys, "index", corpus, ix, "--encoder", "bm25")
    assert rc == 1
    one_line_error(err, "holds an index already, saved there by another process while this one was indexing")
    assert SparseIndex.open(ix).ids() == ["z"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".ix")]  # no staging folder left
    # With --overwrite the same race replaces it (as --overwrite says; helper-113: it was refused,
    # the message asking for the --overwrite given). Replaced again by a run that saves last.
    again = tmp_path / "again"
    if start == "empty":
        again.mkdir()
    ix = again
    monkeypatch.setattr(cli, "_add_in_chunks", another_run_saves_first)
    rc, out, err = run_cli(capsys, "index", corpus, ix, "--encoder", "bm25", "--overwrite")
    assert rc == 0, err
    assert sorted(SparseIndex.open(ix).ids()) == ["doc-a", "doc-b", "doc-c"]


def test_index_into_a_directory_an_index_is_being_saved_into(capsys, tmp_path, monkeypatch):
    """helper-112 LOW: a run that started while another's save was writing into the directory
    (its LOCK and segment files there, no CURRENT yet) said "is not a sparsedex index"; one
    whose save met the other's writer lock said "close() the other index" (Python's advice).
    Both now say another process is writing an index there."""
    from sparsedex import cli
    from sparsedex.lock import WriterLock

    corpus = write_jsonl(tmp_path / "c.jsonl", BEIR)
    mid = tmp_path / "mid"
    mid.mkdir()
    (mid / "LOCK").write_text("")
    (mid / "seg-000001.sdx").write_bytes(b"\0" * 16)
    rc, out, err = run_cli(capsys, "index", corpus, mid, "--encoder", "bm25")
    assert rc == 1
    one_line_error(err, "holds the files of an index but not its CURRENT yet: another process is writing")
    ix = tmp_path / "ix"
    ix.mkdir()
    real = cli._add_in_chunks
    other = WriterLock(ix)

    def another_writer_takes_the_lock(index, recs, **kw):
        other.acquire()
        return real(index, recs, **kw)

    monkeypatch.setattr(cli, "_add_in_chunks", another_writer_takes_the_lock)
    try:
        rc, out, err = run_cli(capsys, "index", corpus, ix, "--encoder", "bm25")
    finally:
        other.release()
    assert rc == 1
    one_line_error(err, "another process is writing an index into it: wait for it to finish")
    assert "close()" not in err


def test_index_overwrite_meeting_another_writer_speaks_the_cli(capsys, tmp_path, monkeypatch):
    """With ``--overwrite``, an index another process is writing (its writer lock held at the
    start, or taken while this run encoded) is refused in the CLI's words, naming the holder:
    not the library's "close() the other index", which speaks to Python code (stop 55's
    leftover)."""
    from sparsedex import cli
    from sparsedex.lock import WriterLock

    corpus = write_jsonl(tmp_path / "c.jsonl", BEIR)
    ix = tmp_path / "ix"
    assert run_cli(capsys, "index", corpus, ix, "--encoder", "bm25")[0] == 0
    w = SparseIndex.open(ix)
    w.delete(["doc-a"])  # takes the writer lock
    try:
        rc, out, err = run_cli(capsys, "index", corpus, ix, "--encoder", "bm25", "--overwrite")
    finally:
        w.close()
    assert rc == 1
    one_line_error(err, "another process is writing this index (pid ")
    assert "--overwrite replaces an index no one is writing" in err and "close()" not in err
    fresh = tmp_path / "fresh"
    real = cli._add_in_chunks
    other = WriterLock(fresh)

    def another_writer_takes_the_lock(index, recs, **kw):
        fresh.mkdir()
        other.acquire()
        return real(index, recs, **kw)

    monkeypatch.setattr(cli, "_add_in_chunks", another_writer_takes_the_lock)
    try:
        rc, out, err = run_cli(capsys, "index", corpus, fresh, "--encoder", "bm25", "--overwrite")
    finally:
        other.release()
    assert rc == 1
    one_line_error(err, "another process is writing an index into it: wait for it to finish, then run again")
    assert "close()" not in err
