"""Stop 62: helper-133's findings. Query ids a TREC run cannot hold are refused when the
queries are read; qrels grades must be written as trec_eval reads them; fusion refuses bool
ids; hybrid search says its ``k`` is RRF's constant; the CLI's id flags that contradict each
other are a usage error."""

import json

import pytest

from sparsedex import SparseIndex, fusion
from sparsedex.cli import main
from sparsedex.eval import read_qrels, read_run, write_run


def run_cli(capsys, *args):
    rc = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.fixture
def bm25_index(tmp_path, capsys):
    corpus = tmp_path / "c.jsonl"
    corpus.write_text('{"id": "a", "text": "x"}\n{"id": "b", "text": "x y"}\n')
    ix = tmp_path / "ix"
    rc, _, err = run_cli(capsys, "index", corpus, ix, "--encoder", "bm25")
    assert rc == 0, err
    return ix


@pytest.mark.parametrize("qid, message", [
    ("", "q.jsonl:2: empty query id"),
    ("q 2", "q.jsonl:2: query id 'q 2' holds whitespace"),
    ("q\t2", "q.jsonl:2: query id 'q\\t2' holds whitespace"),
])
@pytest.mark.parametrize("out", ["-", "run.trec"])
def test_run_refuses_query_ids_a_run_cannot_hold(capsys, tmp_path, bm25_index, qid, message, out):
    # an empty query id wrote lines " Q0 b 1 ..." that read_run refused (5 fields); one with a
    # space wrote a query no reader could tell apart, and with -o - the queries before it
    # were printed before the error
    q = tmp_path / "q.jsonl"
    q.write_text(json.dumps({"id": "q1", "text": "x"}) + "\n" + json.dumps({"id": qid, "text": "x"}) + "\n")
    target = out if out == "-" else tmp_path / out
    rc, stdout, err = run_cli(capsys, "run", q, bm25_index, "-o", target)
    assert rc == 1 and message in err, err
    assert stdout == ""
    assert out == "-" or not target.exists()


def test_run_and_eval_read_tsv_query_ids_alike(capsys, tmp_path, bm25_index):
    q = tmp_path / "q.tsv"
    q.write_text("q1\tx\nq 2\tx y\n")
    qrels = tmp_path / "qrels"
    qrels.write_text("q1 0 a 1\n")
    rc, _, err = run_cli(capsys, "run", q, bm25_index, "-o", "-")
    assert rc == 1 and "q.tsv:2: query id 'q 2' holds whitespace" in err
    rc, _, err = run_cli(capsys, "eval", bm25_index, q, qrels)
    assert rc == 1 and "q.tsv:2: query id 'q 2' holds whitespace" in err
    # clean ids: the run reads back
    q.write_text("q1\tx\nq2\tx y\n")
    rc, _, err = run_cli(capsys, "run", q, bm25_index, "-o", tmp_path / "ok.trec")
    assert rc == 0, err
    assert set(read_run(tmp_path / "ok.trec")) == {"q1", "q2"}


def test_write_run_names_the_id_at_fault(tmp_path):
    with pytest.raises(ValueError, match=r"^query id '' is empty or holds whitespace"):
        write_run({"": {"d": 1.0}}, tmp_path / "r")
    with pytest.raises(ValueError, match=r"^query id 'q 1' is empty"):
        write_run({"q 1": {"d": 1.0}}, tmp_path / "r")
    # the doc id, not "query id 'q1' / doc id ..." (helper-133 found the query blamed)
    with pytest.raises(ValueError, match=r"^doc id 'd 1' of query 'q1' is empty or holds whitespace"):
        write_run({"q1": {"d 1": 1.0}}, tmp_path / "r")
    with pytest.raises(ValueError, match=r"^doc id '' of query 'q1'"):
        write_run({"q1": [("", 1.0)]}, tmp_path / "r")
    # a query without results writes nothing, whatever its id
    write_run({"q 1": {}, "q2": {"d": 1.0}}, tmp_path / "r")
    assert read_run(tmp_path / "r") == {"q2": {"d": 1.0}}


@pytest.mark.parametrize("grade", ["1e3", "1E0", "0x10", "99999999999999999999", "-2147483649", "2147483648"])
def test_qrels_grades_trec_eval_would_read_otherwise_are_refused(tmp_path, grade):
    # trec_eval's atol reads 1e3 as 1 (float() as 1000); grades past 32 bits overflow it
    p = tmp_path / "qrels"
    p.write_text(f"q1 0 d1 1\nq1 0 d2 {grade}\n")
    with pytest.raises(ValueError, match=rf"qrels:2: relevance '{grade}' (of document 'd2' for query 'q1' )?is"):
        read_qrels(p)


@pytest.mark.parametrize("grade, value", [("2", 2), ("+3", 3), ("-1", -1), ("2.0", 2), ("2.", 2), ("007", 7),
                                          ("2147483647", 2**31 - 1), ("-2147483648", -(2**31))])
def test_qrels_plain_grades_are_read(tmp_path, grade, value):
    p = tmp_path / "qrels"
    p.write_text(f"q1 0 d1 {grade}\n")
    assert read_qrels(p) == {"q1": {"d1": value}}


@pytest.mark.parametrize("header", ["query_id iter doc_id relevance", "query-id\tcorpus-id\tscore",
                                    "query-id\tcorpus-id\tscore2", "qid 0 docid relevance_1"])
def test_qrels_header_still_skipped(tmp_path, header):
    # a grade field with a letter names a column (score2 was refused for its digit, helper-136)
    p = tmp_path / "qrels"
    p.write_text(f"{header}\nq1 0 d1 1\n")
    assert read_qrels(p) == {"q1": {"d1": 1}}


def test_fusion_refuses_bool_ids():
    # True == 1 and hashes alike: it was merged with document 1
    with pytest.raises(TypeError, match=r"run 1, item 0: id True is a bool: document ids are ints or strings"):
        fusion.reciprocal_rank_fusion([[(1, 1.0)], [(True, 1.0)]])
    with pytest.raises(TypeError, match=r"run 0, item 1: id False is a bool"):
        fusion.fuse([[0, False]])
    assert [h.id for h in fusion.reciprocal_rank_fusion([[(1, 1.0)], [(1, 0.5)]])] == [1]


def test_hybrid_search_k_warns_that_it_is_the_rank_constant():
    ix = SparseIndex(encoder="bm25")
    ix.add(["a band on tour", "a quiet film", "band music"], ids=[1, 2, 3])
    with pytest.warns(UserWarning, match=r"k=1 is RRF's rank constant \(an alias of rrf_k\)"):
        hits = fusion.hybrid_search([ix], "band", k=1)
    assert len(hits) == 2  # every match (limit 10), not 1
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert fusion.hybrid_search([ix], "band", rrf_k=1, limit=1) == hits[:1]


@pytest.mark.parametrize("command, flags", [
    ("index", ["--id-field", "id", "--no-ids"]),
    ("add", ["--id-field", "id", "--new-ids"]),
])
def test_contradicting_id_flags_are_a_usage_error(capsys, tmp_path, bm25_index, command, flags):
    corpus = tmp_path / "more.jsonl"
    corpus.write_text('{"id": "c", "text": "z"}\n')
    target = tmp_path / "new" if command == "index" else bm25_index
    args = [corpus, target] if command == "index" else [target, corpus]
    with pytest.raises(SystemExit) as e:
        main([command, *map(str, args), *flags])
    assert e.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err
    assert command == "add" or not target.exists()
    # --id-field alone is taken
    rc, _, err = run_cli(capsys, command, *args, *flags[:2])
    assert rc == 0, err


# helper-134 -------------------------------------------------------------------------------------
@pytest.fixture
def durable(tmp_path):
    ix = SparseIndex.create(tmp_path / "ix", encoder=None)
    ix.add([{1: 1.0}, {2: 2.0}], ids=[10, 20], payloads=[{"x": 1}, None])
    ix.commit()
    yield ix
    ix.close()


@pytest.mark.parametrize("bad, exc", [("1", TypeError), (None, TypeError), (True, TypeError), (1.5, TypeError),
                                      (2**70, ValueError), (0, ValueError)])
def test_merge_checks_max_segments(durable, bad, exc):
    # "1" / None: a bare "'<' not supported"; 2**70: a bare OverflowError; True: taken as 1
    with pytest.raises(exc, match=r"^max_segments must be"):
        durable.merge(bad)
    assert durable.merge(1) >= 1


def test_flags_must_be_bools(durable):
    with pytest.raises(TypeError, match=r"^reorder must be True or False, got str 'x'"):
        durable.wait_for_merges("x")
    with pytest.raises(TypeError, match=r"^wait_for_merges must be True or False, got int 1"):
        durable.close(1)
    assert not durable.closed
    durable.wait_for_merges(reorder=False)


def test_an_indices_values_mapping_with_another_key_is_named(durable):
    with pytest.raises(TypeError, match=r"""^query: a \{"indices": \.\.\., "values": \.\.\.\} vector holds no other key, got 'x'"""):
        durable.search({"indices": [1, 2], "values": [1.0, 1.0], "x": 1})
    assert [h.id for h in durable.search({"indices": [1, 2], "values": [1.0, 1.0]})] == [20, 10]


def test_with_payload_dict_errors_name_the_keys(durable):
    with pytest.raises(TypeError, match=r"\{'include': \[keys\]\}.*got a dict with keys 'includ'$"):
        durable.search({1: 1.0}, with_payload={"includ": ["x"]})
    with pytest.raises(TypeError, match=r"got a dict with keys 'exclude', 'include'$"):
        durable.search({1: 1.0}, with_payload={"include": ["x"], "exclude": ["y"]})
    assert durable.search({1: 1.0}, with_payload={"include": ["x"]})[0].payload == {"x": 1}


def test_get_of_a_staged_id_says_reads_see_the_last_commit(durable):
    durable.add([{3: 3.0}], ids=[30])
    with pytest.raises(KeyError, match="no document with id 30 in the index .reads see the last commit; this handle has uncommitted"):
        durable.get(30)
    with pytest.raises(ValueError, match="already in the index"):
        durable.add([{3: 1.0}], ids=[30])
    durable.commit()
    assert durable.get(30).id == 30
    with pytest.raises(KeyError) as e:
        durable.get(31)
    assert "uncommitted" not in str(e.value)


# helper-135 -------------------------------------------------------------------------------------
def test_query_ids_starting_with_a_hash_are_refused(capsys, tmp_path, bm25_index):
    # run wrote "#q1 Q0 ..." lines, which read_run (and a qrels reader) skip as comments (in a
    # TSV topics file such a line is a comment itself: test_tsv_topics_skip_comment_lines)
    q = tmp_path / "q.jsonl"
    q.write_text('{"id": "q0", "text": "x"}\n{"id": "#q1", "text": "x y"}\n')
    rc, out, err = run_cli(capsys, "run", q, bm25_index, "-o", "-")
    assert rc == 1 and "q.jsonl:2: query id '#q1' starts with '#'" in err, err
    assert out == ""


def test_write_run_refuses_hash_ids_and_ids_that_are_not_words(tmp_path):
    with pytest.raises(ValueError, match=r"^query id '#q' starts with '#'"):
        write_run({"#q": {"d": 1.0}}, tmp_path / "r")
    write_run({"q": {"#d": 1.0}}, tmp_path / "r")  # a doc id never starts a line
    assert read_run(tmp_path / "r") == {"q": {"#d": 1.0}}
    for bad in (None, True, b"q", ("a", "b"), 1.5):
        with pytest.raises(TypeError, match=r"^doc id .* for query .q. is .*: ids are strings or integers"):
            write_run({"q": [(bad, 1.0)]}, tmp_path / "r")
    with pytest.raises(TypeError, match=r"^query id None is"):
        write_run({None: {"d": 1.0}}, tmp_path / "r")
    write_run({1: {2: 1.0}}, tmp_path / "r")
    assert read_run(tmp_path / "r") == {"1": {"2": 1.0}}


@pytest.mark.parametrize("k, exc", [(0, ValueError), (-1, ValueError), (True, TypeError), (1.5, TypeError)])
def test_write_run_checks_k(tmp_path, k, exc):
    # -1 dropped the last hit of every query, 0 wrote nothing (and skipped the id checks)
    with pytest.raises(exc, match=r"^k must be"):
        write_run({"q": {"a": 2.0, "b": 1.0}}, tmp_path / "r", k=k)
    write_run({"q": {"a": 2.0, "b": 1.0}}, tmp_path / "r", k=1)
    assert read_run(tmp_path / "r") == {"q": {"a": 2.0}}


@pytest.mark.parametrize("grade", ["١", "２", "²"])
def test_qrels_grades_in_other_digits_are_refused(tmp_path, grade):
    # trec_eval's atol reads them as 0; float() and \d took them as numbers
    p = tmp_path / "qrels"
    p.write_text(f"q1 0 d1 1\nq1 0 d2 {grade}\n")
    with pytest.raises(ValueError, match=r"qrels:2: relevance"):
        read_qrels(p)


@pytest.mark.parametrize("first", ["1_0", "²", "١"])
def test_a_first_line_with_a_digit_in_its_grade_is_not_a_header(tmp_path, first):
    # it was skipped as a header, dropping a judgement without a word
    p = tmp_path / "qrels"
    p.write_text(f"q1 0 d1 {first}\nq1 0 d2 1\n")
    with pytest.raises(ValueError, match=r"qrels:1: relevance"):
        read_qrels(p)


def test_fusion_refuses_ids_that_are_numbers_but_not_ints():
    import decimal
    import fractions

    import numpy as np

    for other in (1.0, np.float64(1.0), decimal.Decimal(1), fractions.Fraction(1), 1 + 0j):
        with pytest.raises(TypeError, match=r"run 1, item 0: id .* is an? .*: document ids are ints or strings"):
            fusion.reciprocal_rank_fusion([[(1, 1.0)], [(other, 1.0)]])
    assert [h.id for h in fusion.reciprocal_rank_fusion([[(np.int64(1), 1.0)], [(1, 0.5)]])] == [1]


def test_vector_mappings_missing_a_key_name_it(durable):
    with pytest.raises(TypeError, match=r"""^query: a \{"indices": \.\.\., "values": \.\.\.\} vector has no 'values' key"""):
        durable.search({"indices": [1, 2]})
    with pytest.raises(TypeError, match=r"has no 'indices' key"):
        durable.search({"values": [1.0]})
    with pytest.raises(TypeError, match=r"got an empty dict$"):
        durable.search({1: 1.0}, with_payload={})


def test_serve_answers_kept_alive_requests_without_the_delayed_ack_stall(tmp_path):
    # headers and body go out in two writes; with Nagle's algorithm the body waited for the
    # client's delayed ACK, about 40 ms per request on one connection (0.4 s for 10 here)
    import http.client
    import socket
    import threading
    import time

    from sparsedex import _http

    ix = SparseIndex(None, "float")
    ix.add([{1: 1.0}, {2: 2.0}], ids=["a", "b"])
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    threading.Thread(target=_http.serve_index, args=(ix, "127.0.0.1", port), daemon=True).start()
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            assert time.monotonic() < deadline
            time.sleep(0.02)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    body = json.dumps({"query": {"indices": [2], "values": [1.0]}, "k": 1})
    times = []
    for _ in range(12):
        t = time.perf_counter()
        conn.request("POST", "/search", body, {"Content-Type": "application/json"})
        r = conn.getresponse()
        assert r.status == 200 and json.loads(r.read())["hits"][0]["id"] == "b"
        times.append(time.perf_counter() - t)
    conn.close()
    times.sort()
    assert times[len(times) // 2] < 0.02, times  # the median request: 1-3 ms, not 40


# helper-136 -------------------------------------------------------------------------------------
def test_evaluate_refuses_ids_that_are_not_strings_or_ints():
    from sparsedex.eval import evaluate

    # a qrels doc id read as a float by pandas (10.0) never matched the run's "10": map 0.0
    with pytest.raises(TypeError, match=r"^doc id 1\.0 for query 'q' in the qrels is a float: ids are strings or integers"):
        evaluate({"q": {"1": 1.0}}, {"q": {1.0: 1}}, ["map"])
    with pytest.raises(TypeError, match=r"^doc id None for query 'q' in the qrels is"):
        evaluate({"q": {"1": 1.0}}, {"q": {None: 1}}, ["map"])
    with pytest.raises(TypeError, match=r"^query id None of the run is"):
        evaluate({None: {"1": 1.0}}, {"None": {"1": 1}}, ["map"])
    with pytest.raises(TypeError, match=r"^query id True of the qrels is a bool"):
        evaluate({"True": {"1": 1.0}}, {True: {"1": 1}}, ["map"])
    import numpy as np

    got = evaluate({np.int64(1): {np.int32(7): 1.0}}, {"1": {"7": 1}}, ["map"])
    assert got["map"] == 1.0


def test_fusion_refuses_none_and_bytes_ids():
    with pytest.raises(TypeError, match=r"run 0, item 0: id None is"):
        fusion.reciprocal_rank_fusion([[None], [1]])
    with pytest.raises(TypeError, match=r"run 0, item 0: id b'a' is a bytes"):
        fusion.reciprocal_rank_fusion([[b"a"], ["a"]])


def test_tsv_topics_skip_comment_lines(capsys, tmp_path, bm25_index):
    # the run and qrels readers skip '#' lines; the TSV topics reader refused them
    q = tmp_path / "q.tsv"
    q.write_text("# topics of stop 62\nq1\tx\n#q2\tx y\n")
    rc, out, err = run_cli(capsys, "run", q, bm25_index, "-o", tmp_path / "r.trec")
    assert rc == 0, err
    assert set(read_run(tmp_path / "r.trec")) == {"q1"}
