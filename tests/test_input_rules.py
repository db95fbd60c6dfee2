"""One reader rule for text files (UTF-8, a leading byte-order mark dropped), empty qrels and
runs, and the messages a newcomer found wrong or unhelpful (newcomer1 report, findings 3 and
5 to 9): each rule with the reported example and one more input of the same kind."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from sparsedex import SparseIndex, SparseTextEmbedding
from sparsedex.cli import main
from sparsedex.encoders import ModelNotAvailableError, SpladeEncoder, registry
from sparsedex.eval import evaluate, read_qrels, read_run

BOM = b"\xef\xbb\xbf"
PKG_MODEL = Path(__file__).resolve().parents[1] / "python" / "sparsedex" / "models" / "splade-tiny"

DOCS = [
    {"id": "1", "text": "a rock band on tour"},
    {"id": "2", "text": "jazz in the night club"},
    {"id": "3", "text": "a detective in the city"},
    {"id": "10", "text": "rock and jazz together"},
]
QUERIES = [{"id": "1", "text": "rock band"}, {"id": "2", "text": "jazz night"}]
QRELS = "1\t0\t1\t1\n1\t0\t10\t1\n2\t0\t2\t2\n2\t0\t10\t0\n"


def run_cli(capsys, *args):
    rc = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return rc, out, err


def one_line_error(err: str, *fragments: str) -> None:
    assert err.startswith("sparsedex: error: "), err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    for f in fragments:
        assert f in err, (f, err)


def jsonl(records) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in records).encode("utf-8")


@pytest.fixture
def ix(tmp_path, capsys):
    (tmp_path / "corpus.jsonl").write_bytes(jsonl(DOCS))
    rc, _, err = run_cli(capsys, "index", tmp_path / "corpus.jsonl", tmp_path / "ix", "--encoder", "bm25",
                         "--quantization", "float")
    assert rc == 0, err
    return tmp_path / "ix"


def eval_json(capsys, ix, queries, qrels):
    rc, out, err = run_cli(capsys, "eval", ix, queries, qrels, "--metrics", "ndcg@10,map,rr", "--json")
    assert rc == 0, err
    return json.loads(out), err


# finding 3 / 8a: a UTF-8 byte-order mark --------------------------------------------------------
@pytest.mark.parametrize("crlf", [False, True])
def test_bom_qrels_and_runs_read_as_without(tmp_path, crlf):
    text = QRELS.replace("\n", "\r\n") if crlf else QRELS
    (tmp_path / "q.tsv").write_bytes(text.encode())
    (tmp_path / "qbom.tsv").write_bytes(BOM + text.encode())
    assert read_qrels(tmp_path / "qbom.tsv") == read_qrels(tmp_path / "q.tsv")
    assert "1" in read_qrels(tmp_path / "qbom.tsv")  # not '\ufeff1'
    # one line, BOM + CRLF (the report's all-zero case)
    (tmp_path / "one.tsv").write_bytes(BOM + b"1 0 1 1\r\n")
    assert read_qrels(tmp_path / "one.tsv") == {"1": {"1": 1}}
    # a header line after the BOM is still a header
    (tmp_path / "h.tsv").write_bytes(BOM + b"query-id\tcorpus-id\tscore\n1\t1\t1\n")
    assert read_qrels(tmp_path / "h.tsv") == {"1": {"1": 1}}
    run = "1 Q0 1 1 2.5 t\n1 Q0 3 2 1.0 t\n"
    (tmp_path / "r.trec").write_bytes(run.encode())
    (tmp_path / "rbom.trec").write_bytes(BOM + run.encode())
    assert read_run(tmp_path / "rbom.trec") == read_run(tmp_path / "r.trec") == {"1": {"1": 2.5, "3": 1.0}}


def test_a_bom_elsewhere_than_the_start_is_not_dropped(tmp_path):
    # only the file's first bytes are a byte-order mark; U+FEFF later is text
    (tmp_path / "q.tsv").write_bytes(b"1 0 1 1\n" + BOM + b"2 0 2 1\n")
    assert set(read_qrels(tmp_path / "q.tsv")) == {"1", "\ufeff2"}


def test_cli_eval_with_bom_files_gives_the_same_metrics(capsys, tmp_path, ix):
    (tmp_path / "q.jsonl").write_bytes(jsonl(QUERIES))
    (tmp_path / "qrels.tsv").write_bytes(QRELS.encode())
    plain, _ = eval_json(capsys, ix, tmp_path / "q.jsonl", tmp_path / "qrels.tsv")
    assert plain["judged_queries"] == 2 and plain["metrics"]["map"] > 0
    (tmp_path / "qb.jsonl").write_bytes(BOM + jsonl(QUERIES))  # JSONL queries with a BOM: not taken for TSV
    (tmp_path / "qrelsb.tsv").write_bytes(BOM + QRELS.encode())
    bom, err = eval_json(capsys, ix, tmp_path / "qb.jsonl", tmp_path / "qrelsb.tsv")
    assert bom == plain and "warning" not in err
    # TSV queries with a BOM
    (tmp_path / "qb.tsv").write_bytes(BOM + b"1\trock band\r\n2\tjazz night\r\n")
    tsv, _ = eval_json(capsys, ix, tmp_path / "qb.tsv", tmp_path / "qrelsb.tsv")
    assert tsv == plain


def test_cli_corpus_with_a_bom(capsys, tmp_path):
    (tmp_path / "bom.jsonl").write_bytes(BOM + jsonl(DOCS))
    rc, _, err = run_cli(capsys, "index", tmp_path / "bom.jsonl", tmp_path / "ix", "--encoder", "bm25")
    assert rc == 0, err
    assert sorted(SparseIndex.open(tmp_path / "ix").ids()) == ["1", "10", "2", "3"]
    # add with a BOM, CRLF line ends
    (tmp_path / "more.jsonl").write_bytes(BOM + jsonl([{"id": "4", "text": "more rock"}]).replace(b"\n", b"\r\n"))
    rc, _, err = run_cli(capsys, "add", tmp_path / "ix", tmp_path / "more.jsonl")
    assert rc == 0, err
    assert "4" in SparseIndex.open(tmp_path / "ix").ids()


def test_not_utf8_after_a_bom_is_still_named(tmp_path, capsys):
    (tmp_path / "q.tsv").write_bytes(BOM + b"1 0 d\xff 1\n")
    with pytest.raises(ValueError, match=r"q.tsv:1: not UTF-8 text \(byte 0xff at column 6\)"):
        read_qrels(tmp_path / "q.tsv")
    (tmp_path / "c.jsonl").write_bytes(BOM + b'{"id": "a", "text": "\xfe"}\n')
    rc, _, err = run_cli(capsys, "index", tmp_path / "c.jsonl", tmp_path / "ix", "--encoder", "bm25")
    assert rc == 1
    one_line_error(err, "c.jsonl:1: not UTF-8 text (byte 0xfe")


# finding 6: empty qrels / run --------------------------------------------------------------------
@pytest.mark.parametrize("content", [b"", b"\n\n# only a comment\n", BOM, b"query-id corpus-id score\n"])
def test_empty_qrels_is_an_error_naming_the_file(capsys, tmp_path, ix, content):
    (tmp_path / "q.jsonl").write_bytes(jsonl(QUERIES))
    (tmp_path / "empty.tsv").write_bytes(content)
    with pytest.raises(ValueError, match="empty.tsv: no judgements"):
        read_qrels(tmp_path / "empty.tsv")
    rc, out, err = run_cli(capsys, "eval", ix, tmp_path / "q.jsonl", tmp_path / "empty.tsv")
    assert rc == 1 and out == ""
    one_line_error(err, "empty.tsv: no judgements")


@pytest.mark.parametrize("content", [b"", b"# nothing\n\n"])
def test_empty_run_is_an_error_naming_the_file(tmp_path, content):
    (tmp_path / "empty.trec").write_bytes(content)
    with pytest.raises(ValueError, match="empty.trec: no results"):
        read_run(tmp_path / "empty.trec")


@pytest.mark.parametrize("n_qrels", [1, 5])
def test_ids_do_not_match_warning_wording(capsys, tmp_path, ix, n_qrels):
    (tmp_path / "q.jsonl").write_bytes(jsonl(QUERIES))
    (tmp_path / "qrels.tsv").write_text("".join(f"1 0 other{i} 1\n" for i in range(n_qrels)))
    rc, _, err = run_cli(capsys, "eval", ix, tmp_path / "q.jsonl", tmp_path / "qrels.tsv", "-k", "1")
    assert rc == 0
    # -k 1 and two queries: 2 distinct documents retrieved, none judged
    assert "warning: none of the 2 documents retrieved appear in" in err, err
    assert "qrels: 'other0'" in err
    assert ("'other2', ..." in err) == (n_qrels > 3)


# finding 5: RR@k under ties ------------------------------------------------------------------------
def test_rr_under_ties_follows_trec_eval_as_ir_measures_pytrec_eval():
    ir_measures = pytest.importorskip("ir_measures")
    from ir_measures import RR

    qrels = {"q": {"a": 1, "c": 0}, "r": {"b": 1}, "s": {"m": 1}}
    run = {"q": {"a": 1.0, "b": 1.0, "z": 1.0}, "r": {"a": 2.0, "b": 2.0, "c": 1.0}, "s": {"m": 3.0, "n": 3.0}}
    ours = evaluate(run, qrels, ["rr", "rr@10", "mrr@10"])
    # ties: document id descending (z, b, a -> a at 3; b, a -> b at 1; n, m -> m at 2)
    assert ours["rr"] == ours["rr@10"] == ours["mrr@10"] == pytest.approx((1 / 3 + 1 + 1 / 2) / 3)
    # ir_measures' trec_eval engine (pytrec_eval) agrees; ask for RR alone (its RR@k has no cutoff)
    theirs = ir_measures.pytrec_eval.calc_aggregate([RR], qrels, run)[RR]
    assert ours["rr"] == pytest.approx(theirs, abs=1e-12)
    # its msmarco engine, ir_measures' default for RR@k, orders ties another way: the documented caveat
    msmarco = ir_measures.msmarco.calc_aggregate([RR @ 10], qrels, run)[RR @ 10]
    assert msmarco != pytest.approx(ours["rr@10"])


# finding 7: a broken tokenizer.json ----------------------------------------------------------------
@pytest.mark.parametrize("content", [b"", b'{"version": "1.0", "model": '])
def test_broken_tokenizer_json_is_named(tmp_path, capsys, content):
    m = tmp_path / "fakemodel"
    m.mkdir()
    shutil.copy(PKG_MODEL / "model.onnx", m / "model.onnx")
    (m / "tokenizer.json").write_bytes(content)
    with pytest.raises(ValueError, match=r"tokenizer.json of model '.*fakemodel' is not a readable"):
        SpladeEncoder(m)
    (tmp_path / "c.jsonl").write_bytes(jsonl(DOCS))
    rc, _, err = run_cli(capsys, "index", tmp_path / "c.jsonl", tmp_path / "ix", "--encoder", m)
    assert rc == 1
    one_line_error(err, "tokenizer.json of model", "not a readable Hugging Face tokenizer file")
    assert "internal error" not in err


# finding 8 -----------------------------------------------------------------------------------------
def test_add_new_ids_to_a_string_id_index_names_the_cli_way(capsys, tmp_path, ix):
    (tmp_path / "noid.jsonl").write_bytes(jsonl([{"text": "new one"}]))
    rc, _, err = run_cli(capsys, "add", ix, tmp_path / "noid.jsonl", "--new-ids")
    assert rc == 1
    one_line_error(err, "has string ids", "--id-field NAME", "without --new-ids")
    assert "ids=" not in err
    # the same kind: int ids into a string-id index, named with file and line, good grammar
    (tmp_path / "addint.jsonl").write_bytes(jsonl([{"id": 5, "text": "x"}]))
    rc, _, err = run_cli(capsys, "add", ix, tmp_path / "addint.jsonl")
    assert rc == 1
    one_line_error(err, "addint.jsonl:1: id 5 is an integer but the ids of", "are strings")
    assert len(SparseIndex.open(ix)) == 4


@pytest.mark.parametrize("bad,kind", [(5, "an int"), (b"abc", "a bytes"), (None, "None"), (2.5, "a float")])
def test_type_names_in_messages_take_the_right_article(bad, kind):
    enc = SparseTextEmbedding("Qdrant/bm25")
    with pytest.raises(TypeError, match=f"text 1 is {kind}, not a str" if bad is not None else r"text 1 is a missing value \(None\)"):
        list(enc.embed(["ok", bad]))


@pytest.mark.parametrize("field", ["id", "_id"])
def test_text_field_that_is_the_id_field(capsys, tmp_path, field):
    (tmp_path / "c.jsonl").write_bytes(jsonl([{field: "a", "text": "x"}]))
    rc, _, err = run_cli(capsys, "index", tmp_path / "c.jsonl", tmp_path / "ix", "--text-field", field,
                         "--encoder", "bm25")
    assert rc == 1
    one_line_error(err, f"field {field!r} is the id field, so it cannot also be the text", "--id-field NAME")


@pytest.mark.parametrize("query", ["\udcff\udcfe", "caf\udce9"])  # bytes ff fe; latin-1 "café"
def test_non_utf8_query_advice_is_for_shell_users(capsys, ix, query):
    for cmd in (["search", ix, query], ["explain", ix, query, "1"]):
        rc, _, err = run_cli(capsys, *cmd)
        assert rc == 1
        one_line_error(err, "the query is not UTF-8 text (byte 0x", "UTF-8 terminal")
        assert "errors='replace'" not in err
    rc, _, err = run_cli(capsys, "search", ix, "caf\udce9")
    assert "byte 0xe9 at character 4" in err


@pytest.mark.parametrize("hub_error", ["LocalEntryNotFoundError: ... pass 'local_files_only=False' ...", "timeout"])
def test_offline_splade_pp_error_is_short_and_fits_the_cli(monkeypatch, capsys, tmp_path, hub_error):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")

    def fail(*a, **kw):
        raise OSError(hub_error)

    monkeypatch.setattr(registry, "snapshot_download", fail)
    with pytest.raises(ModelNotAvailableError) as ei:
        SpladeEncoder("prithivida/Splade_PP_en_v1")
    msg = str(ei.value)
    assert "SpladeEncoder('DIR')" in msg and "hf download Qdrant/Splade_PP_en_v1" in msg
    assert "local_files_only=False" not in msg and "huggingface-cli" not in msg and len(msg) < 450
    (tmp_path / "c.jsonl").write_bytes(jsonl(DOCS))
    rc, _, err = run_cli(capsys, "index", tmp_path / "c.jsonl", tmp_path / "ix", "--encoder",
                         "prithivida/Splade_PP_en_v1")
    assert rc == 1
    one_line_error(err, "offline", "hf download Qdrant/Splade_PP_en_v1", "pass --encoder DIR")
    assert "SpladeEncoder(" not in err and "local_files_only=False" not in err and len(err) < 450


@pytest.mark.parametrize("model", ["splade-tiny", "Qdrant/bm25"])
@pytest.mark.parametrize("bad,message", [
    (5, "texts is an int: pass a text"),
    (b"abc", "texts is a bytes: pass a str"),
    (bytearray(b"abc"), "texts is a bytearray: pass a str"),
    (None, "texts is None: pass a text or a list of texts"),
])
def test_query_embed_of_a_non_text_is_a_clear_type_error(model, bad, message):
    enc = SparseTextEmbedding(model)
    with pytest.raises(TypeError, match=message):
        list(enc.query_embed(bad))
    with pytest.raises(TypeError, match=message):
        list(enc.embed(bad))


@pytest.mark.parametrize("args", [
    ["--algorithm", "nope"], ["--run-tag", "a b"], ["--run-tag", ""], ["--run-tag", "tab\there"],
])
def test_bad_algorithm_and_run_tag_are_usage_errors(capsys, tmp_path, args):
    cmd = ["run", "q.tsv", "ix", "-o", "r.trec"] if "--run-tag" in args else ["search", "ix", "q"]
    with pytest.raises(SystemExit) as e:
        main([*cmd, *args])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "unknown algorithm 'nope'" in err or "must be one non-empty word" in err
    if "--algorithm" in args:
        with pytest.raises(SystemExit) as e:
            main(["eval", "ix", "q.tsv", "qrels.tsv", *args])
        assert e.value.code == 2


@pytest.mark.parametrize("line,key", [
    ('{"id": "a", "text": "x", "id": "b"}', "id"),
    ('{"id": "a", "text": "x", "meta": {"lang": "en", "lang": "fr"}}', "lang"),
])
def test_duplicate_json_keys_are_refused(capsys, tmp_path, line, key):
    (tmp_path / "c.jsonl").write_text('{"id": "z", "text": "fine"}\n' + line + "\n")
    rc, _, err = run_cli(capsys, "index", tmp_path / "c.jsonl", tmp_path / "ix", "--encoder", "bm25")
    assert rc == 1
    one_line_error(err, f"c.jsonl:2: key {key!r} appears twice in one JSON object")
    assert not (tmp_path / "ix").exists()


# finding 9: encoders agree on lone surrogates and blank queries ----------------------------------
@pytest.mark.parametrize("model", ["splade-tiny", "Qdrant/bm25"])
@pytest.mark.parametrize("text", ["a\ud800b", "\udcff"])
def test_every_encoder_refuses_lone_surrogates_alike(model, text):
    enc = SparseTextEmbedding(model)
    at = text.index(next(c for c in text if "\ud800" <= c <= "\udfff"))
    pattern = rf"text 1 holds a lone surrogate \(U\+{ord(text[at]):04X} at character {at}\)"
    with pytest.raises(ValueError, match=pattern):
        list(enc.embed(["fine", text]))
    with pytest.raises(ValueError, match=pattern):
        list(enc.query_embed(["fine", text]))
    with pytest.raises(ValueError, match=pattern):
        list(enc.embed(["fine", text], parallel=2, batch_size=1))


@pytest.mark.parametrize("encoder", ["splade-tiny", "bm25", "Qdrant/bm25"])
@pytest.mark.parametrize("query", ["", "  \t\n", "\u200b", "\ufeff\x00", "\u00ad "])
def test_blank_queries_match_nothing_with_every_encoder(encoder, query):
    """A query without a token of its own (empty, whitespace, or only characters the
    tokenizer drops: a zero-width space, a byte-order mark, NUL, a soft hyphen) gets the empty
    vector and matches nothing; SPLADE used to rank by its special tokens' weights for the
    latter (breaker33 L1)."""
    enc = SparseTextEmbedding(encoder) if encoder != "bm25" else "bm25"
    ix = SparseIndex(enc)
    ix.add([d["text"] for d in DOCS], ids=[d["id"] for d in DOCS])
    assert ix.search(query) == []
    assert ix.search_batch([query, "rock band"])[0] == []
    assert ix.search("rock band")  # a real query still finds documents


def test_splade_query_embed_of_blank_text_stays_the_models(tmp_path):
    # fastembed-compatible API: query_embed returns what the model gives ([CLS]/[SEP] weights)
    enc = SparseTextEmbedding("splade-tiny")
    (v,) = list(enc.query_embed([""]))
    assert v.indices.size > 0
    vecs = enc.encode_queries(["", "rock", " ", "\u200b", "rock\u200b"])
    assert [x.indices.size == 0 for x in vecs] == [True, False, True, True, False]
    assert list(enc.query_embed(["\u200b"]))[0].indices.size > 0  # the model's, as fastembed
    assert np.array_equal(vecs[1].indices, list(enc.query_embed(["rock"]))[0].indices)


@pytest.mark.parametrize("query", ["", " ", "\u200b"])
def test_cli_blank_query_says_why_nothing_matches(capsys, ix, query):
    why = "an empty or blank query" if not query.strip() else "the encoder keeps no term of this query"
    rc, out, _ = run_cli(capsys, "search", ix, query)
    assert rc == 0 and out.startswith(f"no matching documents ({why}") and "matches no document)" in out
    rc, out, _ = run_cli(capsys, "demo", "--query", query)
    assert rc == 0 and f"no matching documents ({why}" in out and "Why" not in out
