"""The sparsedex CLI, in-process (main(argv)) and as a subprocess."""

import json
import os
import re
import subprocess
import sys

import pytest

from sparsedex.cli import main

CORPUS = [
    {"id": "spinal", "text": "Spinal Tap, one of England's loudest bands, is chronicled on a fateful tour.", "year": 1984},
    {"id": "sherlock", "text": "A film projectionist longs to be a detective.", "year": 1924},
    {"id": "heat", "text": "Professional thieves feel the heat from the LAPD after a heist.", "year": 1995},
    {"id": "opera", "text": "An opera singer and her orchestra rehearse a symphony.", "tags": ["music"]},
]


@pytest.fixture
def corpus(tmp_path):
    p = tmp_path / "corpus.jsonl"
    p.write_text("\n".join(json.dumps(r) for r in CORPUS) + "\n")
    return p


def run_cli(capsys, *args):
    rc = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return rc, out, err


def test_index_search_explain_info_splade(capsys, corpus, tmp_path):
    ix = tmp_path / "ix"
    rc, out, err = run_cli(capsys, "index", corpus, ix)
    assert rc == 0, err
    assert "indexed 4 documents" in out and "splade-tiny" in out
    rc, out, err = run_cli(capsys, "search", ix, "A movie about music", "-k", "2")
    assert rc == 0, err
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["rank", "score", "id"]
    assert "spinal" in {line.split()[2] for line in lines[1:3]}
    rc, out, _ = run_cli(capsys, "search", ix, "A movie about music", "--json", "--explain")
    hits = json.loads(out)
    assert "spinal" in {h["id"] for h in hits}
    spinal = next(h for h in hits if h["id"] == "spinal")
    assert spinal["payload"] == {"year": 1984}
    assert sum(m["contribution"] for m in spinal["explanation"]["matches"]) == pytest.approx(spinal["score"], rel=1e-5)
    rc, out, _ = run_cli(capsys, "search", ix, "A movie about music", "--explain", "-k", "1")
    assert "contribution" in out and "total" in out
    rc, out, err = run_cli(capsys, "explain", ix, "A movie about music", "spinal")
    assert rc == 0, err
    assert "query terms:" in out and "music" in out and "contribution" in out
    rc, out, _ = run_cli(capsys, "explain", ix, "A movie about music", "spinal", "--json")
    assert json.loads(out)["id"] == "spinal"
    rc, out, err = run_cli(capsys, "info", ix)
    assert rc == 0, err
    assert re.search(r"^documents:\s+4$", out, flags=re.M) and "splade-tiny" in out and "u8" in out
    rc, out, _ = run_cli(capsys, "info", ix, "--json")
    assert json.loads(out)["documents"] == 4


def test_index_bm25_float_running_ids(capsys, tmp_path):
    p = tmp_path / "c.jsonl"
    p.write_text('{"body": "the quick brown fox"}\n\n{"body": "lazy dogs sleep"}\n')
    ix = tmp_path / "ix"
    rc, out, err = run_cli(capsys, "index", p, ix, "--encoder", "bm25", "--quantization", "float", "--text-field", "body")
    assert rc == 0, err
    rc, out, _ = run_cli(capsys, "search", ix, "dog", "--json")
    assert [h["id"] for h in json.loads(out)] == [1]
    rc, out, _ = run_cli(capsys, "search", ix, "dog", "--json", "--algorithm", "approximate", "--target-recall", "0.9")
    assert rc == 0 and [h["id"] for h in json.loads(out)] == [1]
    # A bad target is a usage error (exit 2, newcomer15 L3), as is a target without approximate.
    for bad, want in [(["--algorithm", "approximate", "--target-recall", "2"], "target_recall must be a number in (0, 1], got 2"),
                      (["--algorithm", "approximate", "--target-recall", "0"], "target_recall must be a number in (0, 1], got 0"),
                      (["--algorithm", "approximate", "--target-recall", "nan"], "target_recall must be a number in (0, 1], got nan"),
                      (["--target-recall", "0.9"], "--target-recall applies only with --algorithm approximate")]:
        with pytest.raises(SystemExit) as e:
            run_cli(capsys, "search", ix, "dog", *bad)
        assert e.value.code == 2
        assert want in capsys.readouterr().err
    # eval and run take the target too (helper-99 LOW: 'unrecognized arguments')
    (tmp_path / "q.jsonl").write_text('{"id": "q1", "text": "dog"}\n')
    (tmp_path / "qrels.tsv").write_text("q1 1 1\n")
    rc, out, err = run_cli(capsys, "eval", ix, tmp_path / "q.jsonl", tmp_path / "qrels.tsv", "--json",
                           "--algorithm", "approximate", "--target-recall", "0.9")
    assert rc == 0 and json.loads(out)["metrics"]["ndcg@10"] == 1.0, err
    rc, out, err = run_cli(capsys, "run", tmp_path / "q.jsonl", ix, "-o", tmp_path / "run.trec",
                           "--algorithm", "approximate", "--target-recall", "0.9")
    assert rc == 0 and (tmp_path / "run.trec").read_text().startswith("q1 Q0 1 1 "), err
    for cmd in (["eval", ix, tmp_path / "q.jsonl", tmp_path / "qrels.tsv"], ["run", tmp_path / "q.jsonl", ix, "-o", tmp_path / "r2"]):
        with pytest.raises(SystemExit) as e:
            run_cli(capsys, *cmd, "--target-recall", "0.9")
        assert e.value.code == 2 and "--target-recall applies only with --algorithm approximate" in capsys.readouterr().err
    rc, out, _ = run_cli(capsys, "explain", ix, "dogs", "1")
    assert "dog" in out
    rc, out, _ = run_cli(capsys, "search", ix, "unicorn")
    assert "no matching documents" in out
    rc, out, _ = run_cli(capsys, "info", ix)
    assert "BM25 k1=1.2 b=0.75" in out and "float" in out


def test_eval_cranfield_bm25(capsys, shared, tmp_path):
    data = shared / "data" / "cranfield"
    ref = json.loads((shared / "data" / "REFERENCE_RESULTS.json").read_text())["cranfield"]["bm25_k1_1.2_b_0.75_snowball_nostop"]
    ix = tmp_path / "ix"
    assert run_cli(capsys, "index", data / "corpus.jsonl", ix, "--encoder", "bm25", "--quantization", "float")[0] == 0
    run = tmp_path / "run.trec"
    rc, out, err = run_cli(capsys, "eval", ix, data / "queries.jsonl", data / "qrels.tsv", "--run-out", run,
                           "--gains", "exponential")
    assert rc == 0, err
    table = dict(line.split()[:2] for line in out.splitlines()[1:4])
    assert float(table["ndcg@10"]) == pytest.approx(ref["ndcg10"], abs=0.005)  # the reference's 2^rel-1 gains
    assert "nDCG gains: exponential" in out
    assert float(table["map"]) == pytest.approx(ref["map"], abs=0.005)
    assert float(table["r@100"]) == pytest.approx(ref["r100"], abs=0.005)
    assert "225 judged queries" in out
    lines = run.read_text().splitlines()
    assert 200 * 1000 < len(lines) <= 225 * 1000 and lines[0].split()[1] == "Q0" and lines[0].split()[3] == "1"
    # default: linear gains, as trec_eval and ir_measures (0.3357: REFERENCE_RESULTS' _settings note)
    rc, out, _ = run_cli(capsys, "eval", ix, data / "queries.jsonl", data / "qrels.tsv", "--metrics", "ndcg@10")
    assert float(out.splitlines()[1].split()[1]) == pytest.approx(0.3357, abs=0.005)
    assert "nDCG gains: linear (rel), as trec_eval and ir_measures" in out
    rc, out, _ = run_cli(capsys, "eval", ix, data / "queries.jsonl", data / "qrels.tsv", "--metrics", "p@5,mrr@10", "--json", "-k", "10")
    res = json.loads(out)["metrics"]
    assert set(res) == {"p@5", "mrr@10"} and 0 < res["p@5"] < 1


def test_demo(capsys):
    rc, out, err = run_cli(capsys, "demo")
    assert rc == 0, err
    lines = out.splitlines()
    first = next(line for line in lines if line.strip().startswith("1 "))
    assert first.split(maxsplit=2)[2] == "This Is Spinal Tap"
    assert "query expanded to:" in out and "music" in out and "band" in out
    assert "total" in out


@pytest.mark.parametrize(
    "args, message",
    [
        (["index", "{tmp}/nope.jsonl", "{tmp}/ix"], "nope.jsonl: no such corpus file"),
        (["index", "{tmp}/bad.jsonl", "{tmp}/ix"], "bad.jsonl:2: bad JSON line"),
        (["index", "{tmp}/notext.jsonl", "{tmp}/ix"], "notext.jsonl:1: no text field (looked for text, contents; fields here: id, body)"),
        (["index", "{tmp}/good.jsonl", "{tmp}/ix", "--encoder", "/no/such/model"], "unknown model '/no/such/model'"),
        (["search", "{tmp}/missing", "q"], "missing: no such index directory"),
        (["search", "{tmp}", "q"], ": no sparsedex index there: no CURRENT file and no index files"),
        # an int id as an int (it was quoted, '42', as a string), and why none can have it
        (["explain", "{tmp}/good_ix", "fox", "42"], "no document with id 42 in"),
        (["explain", "{tmp}/good_ix", "fox", "99999999999999999999"],
         "no document with id 99999999999999999999 in {tmp}/good_ix (outside the signed 64-bit range of int ids)"),
        (["eval", "{tmp}/good_ix", "{tmp}/good.jsonl", "{tmp}/none.tsv"], "none.tsv: no such qrels file"),
    ],
)
def test_errors_are_one_line(capsys, tmp_path, args, message):
    (tmp_path / "bad.jsonl").write_text('{"id": 1, "text": "ok"}\n{"id": 2, "text": \n')
    (tmp_path / "notext.jsonl").write_text('{"id": 1, "body": "ok"}\n')
    (tmp_path / "good.jsonl").write_text('{"id": 1, "text": "the fox"}\n')
    assert main(["index", str(tmp_path / "good.jsonl"), str(tmp_path / "good_ix"), "--encoder", "bm25"]) == 0
    capsys.readouterr()
    rc, out, err = run_cli(capsys, *[a.format(tmp=tmp_path) for a in args])
    assert rc == 1
    assert err.startswith("sparsedex: error: ") and message.format(tmp=tmp_path) in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_usage_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as e:
        main([])
    assert e.value.code == 2
    with pytest.raises(SystemExit) as e:
        main(["search", "ix", "q", "-k", "0"])
    assert e.value.code == 2
    capsys.readouterr()
    # a metric name and an empty INDEX_DIR are arguments too (helper-92: exit 1 after loading
    # the index; '' was searched as '.')
    for args, message in [(["eval", "ix", "q.jsonl", "qrels.tsv", "--metrics", "foo"], "unknown metric 'foo'"),
                          (["eval", "ix", "q.jsonl", "qrels.tsv", "--metrics", "ndcg@10,p"], "precision needs a cutoff"),
                          (["search", "", "q"], "INDEX_DIR is empty")]:
        with pytest.raises(SystemExit) as e:
            main(args)
        assert e.value.code == 2, args
        assert message in capsys.readouterr().err, args


def cli(*args, **kw):
    env = dict(os.environ, SPARSEDEX_PROGRESS="0")
    return subprocess.run([sys.executable, "-m", "sparsedex", *map(str, args)], capture_output=True, text=True, env=env, **kw)


def test_subprocess_index_search_and_errors(corpus, tmp_path):
    ix = tmp_path / "ix"
    r = cli("index", corpus, ix, "--encoder", "bm25")
    assert r.returncode == 0, r.stderr
    r = cli("search", ix, "detective film", "-k", "1", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)[0]["id"] == "sherlock"
    r = cli("explain", ix, "detective", "nobody")
    assert r.returncode == 1
    assert r.stderr.strip() == f"sparsedex: error: no document with id 'nobody' in {ix}"
    r = cli("search", tmp_path / "nothing", "q")
    assert r.returncode == 1 and "Traceback" not in r.stderr and r.stderr.count("\n") == 1
    r = cli("info", ix)
    assert r.returncode == 0 and re.search(r"^documents:\s+4$", r.stdout, flags=re.M)


def test_console_script_demo():
    exe = os.path.join(os.path.dirname(sys.executable), "sparsedex")
    if not os.path.exists(exe):
        pytest.skip("the sparsedex console script is not installed")
    r = subprocess.run([exe, "demo", "-k", "3"], capture_output=True, text=True, env=dict(os.environ, HF_HUB_OFFLINE="1"))
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[5].split(maxsplit=2)[2] == "This Is Spinal Tap"


def test_add_delete_merge_and_filter(capsys, corpus, tmp_path):
    ix = tmp_path / "ix"
    assert run_cli(capsys, "index", corpus, ix, "--encoder", "bm25")[0] == 0
    more = tmp_path / "more.jsonl"
    more.write_text(json.dumps({"id": "jazz", "text": "a jazz band on tour", "year": 1990}) + "\n"
                    + json.dumps({"id": "heat", "text": "thieves and a heist in LA", "year": 1995}) + "\n")
    rc, out, err = run_cli(capsys, "add", ix, more)
    assert rc == 0 and "4 -> 5 documents" in out, err  # heat was replaced, jazz added
    rc, out, err = run_cli(capsys, "search", ix, "band tour", "--json", "--filter", '{"year": {"$gte": 1985}}')
    assert rc == 0, err
    assert [h["id"] for h in json.loads(out)] == ["jazz"]
    rc, out, err = run_cli(capsys, "search", ix, "heist", "--json")
    assert json.loads(out)[0]["payload"] == {"year": 1995}
    rc, out, err = run_cli(capsys, "delete", ix, "jazz", "spinal")
    assert rc == 0 and "deleted 2 documents" in out and "3 left" in out, err
    rc, out, err = run_cli(capsys, "delete", ix, "nope")
    assert rc == 1 and "no document with id 'nope'" in err
    rc, out, err = run_cli(capsys, "info", ix)
    assert "segments:       2 (3 deleted documents" in out, out
    rc, out, err = run_cli(capsys, "merge", ix)
    assert rc == 0 and "-> 1 segment (" in out, err
    rc, out, err = run_cli(capsys, "search", ix, "band", "--filter", "{bad json")
    assert rc == 1 and "--filter is not valid JSON" in err
    rc, out, err = run_cli(capsys, "search", ix, "band", "--filter", '{"year": {"$around": 3}}')
    assert rc == 1 and "unknown operator" in err
