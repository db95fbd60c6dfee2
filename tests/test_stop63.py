"""Stop 63: open items of earlier stops. The CLI refuses an empty field name as a usage error;
algorithm names are matched case-insensitively, as README says."""

import numpy as np
import pytest

from sparsedex import SparseIndex
from sparsedex.cli import main


@pytest.mark.parametrize("flag", ["--id-field=", "--text-field="])
def test_empty_field_name_is_a_usage_error(capsys, tmp_path, flag):
    # "--id-field=" exited 1 with "no '' field" after reading the corpus (stop 62's open item)
    corpus = tmp_path / "c.jsonl"
    corpus.write_text('{"id": "a", "text": "x"}\n')
    with pytest.raises(SystemExit) as e:
        main(["index", str(corpus), str(tmp_path / "ix"), "--encoder", "bm25", flag])
    assert e.value.code == 2
    assert f"argument {flag[:-1]}: empty: name a JSON field" in capsys.readouterr().err
    assert not (tmp_path / "ix").exists()


def test_algorithm_names_are_case_insensitive():
    ix = SparseIndex(encoder=None)
    ix.add([(np.array([1, 2], np.uint32), np.array([1.0, 2.0], np.float32))] * 3, ids=[1, 2, 3])
    want = ix.search(([2], [1.0]), k=2, algorithm="exhaustive")
    for name in ("AUTO", "Exhaustive", "BMP", "Taat-MaxScore"):
        assert ix.search(([2], [1.0]), k=2, algorithm=name) == want
    with pytest.raises(ValueError, match="algorithm"):
        ix.search(([2], [1.0]), k=2, algorithm="fastest")


def test_an_index_whose_model_moved_says_so_and_takes_another_copy(capsys, tmp_path):
    # helper-137: the CLI could not search an index once its model directory moved (no
    # --encoder on search/explain/eval/run/add/serve) and said only "unknown model '...'"
    import shutil
    from pathlib import Path

    import sparsedex
    from sparsedex.encoders.registry import ModelNotAvailableError

    bundled = Path(sparsedex.__file__).parent / "models" / "splade-tiny"
    model = tmp_path / "m"
    shutil.copytree(bundled, model)
    corpus = tmp_path / "c.jsonl"
    corpus.write_text('{"id": "a", "text": "a rock band on tour"}\n{"id": "b", "text": "a quiet library"}\n')
    ix = tmp_path / "ix"
    assert main(["index", str(corpus), str(ix), "--encoder", str(model)]) == 0
    moved = tmp_path / "moved"
    model.rename(moved)
    capsys.readouterr()
    assert main(["search", str(ix), "band"]) == 1
    err = capsys.readouterr().err
    assert "the encoder recorded with the index cannot be re-created" in err and "--encoder DIR" in err
    assert main(["search", str(ix), "band", "--encoder", str(moved), "--json"]) == 0
    assert '"a"' in capsys.readouterr().out
    q = tmp_path / "q.tsv"
    q.write_text("q1\tband\n")
    assert main(["run", str(q), str(ix), "-o", str(tmp_path / "run.trec"), "--encoder", str(moved)]) == 0
    opened = SparseIndex.open(ix)
    with pytest.raises(ModelNotAvailableError, match=r"SparseIndex.open\(path, encoder=DIR\)"):
        opened.search("band")
    assert SparseIndex.open(ix, encoder=str(moved)).search("band", k=1)[0].id == "a"


def test_search_table_escapes_control_characters(capsys, tmp_path):
    # helper-137: NUL and ESC sequences of a stored text reached the terminal
    corpus = tmp_path / "c.jsonl"
    corpus.write_text('{"id": "a\\u001bx", "text": "line1\\nline2\\u0000nul\\u001b[31mRED\\u001b[0m end"}\n')
    assert main(["index", str(corpus), str(tmp_path / "ix"), "--encoder", "bm25"]) == 0
    capsys.readouterr()
    assert main(["search", str(tmp_path / "ix"), "line1 end"]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x00" not in out
    assert "a\\x1bx" in out and "line1 line2\\x00nul\\x1b[31mRED\\x1b[0m end" in out


def test_ids_a_run_cannot_hold_are_warned_at_index_time_and_named_with_their_query(capsys, tmp_path):
    # helper-137: index took them without a word; run then refused them without naming the query
    corpus = tmp_path / "w.jsonl"
    corpus.write_text('{"id": "a b", "text": "hello world"}\n{"id": "", "text": "hello there"}\n'
                      '{"id": "ok", "text": "hello"}\n')
    assert main(["index", str(corpus), str(tmp_path / "ix"), "--encoder", "bm25"]) == 0
    err = capsys.readouterr().err
    assert "w.jsonl:1: document id 'a b' is empty or holds whitespace (and 1 more): `sparsedex run`" in err
    (tmp_path / "q.tsv").write_text("q1\thello\n")
    assert main(["run", str(tmp_path / "q.tsv"), str(tmp_path / "ix"), "-o", "-"]) == 1
    assert "query 'q1': document id " in capsys.readouterr().err
    (tmp_path / "more.jsonl").write_text('{"id": "c d", "text": "x"}\n')
    assert main(["add", str(tmp_path / "ix"), str(tmp_path / "more.jsonl")]) == 0
    assert "more.jsonl:1: document id 'c d' is empty or holds whitespace:" in capsys.readouterr().err


def test_cli_wording(capsys, tmp_path):
    # helper-137: "starting at at column", "1 documents", "bm25: (1.2000000476837158, 0.75)", gzip
    import gzip

    (tmp_path / "t.jsonl").write_text('{"id": "a", "text": "abc\n')
    assert main(["index", str(tmp_path / "t.jsonl"), str(tmp_path / "tx"), "--encoder", "bm25"]) == 1
    assert "bad JSON line (Unterminated string starting at column 21)" in capsys.readouterr().err
    (tmp_path / "c.jsonl.gz").write_bytes(gzip.compress(b'{"id": "a", "text": "x"}\n'))
    assert main(["index", str(tmp_path / "c.jsonl.gz"), str(tmp_path / "gx"), "--encoder", "bm25"]) == 1
    assert "the file looks gzip-compressed: decompress it first" in capsys.readouterr().err
    (tmp_path / "c.jsonl").write_text('{"id": "a", "text": "x"}\n')
    assert main(["index", str(tmp_path / "c.jsonl"), str(tmp_path / "ix"), "--encoder", "bm25"]) == 0
    assert "indexed 1 document into" in capsys.readouterr().out
    assert main(["add", str(tmp_path / "ix"), str(tmp_path / "c.jsonl")]) == 0
    assert "added or replaced 1 document in" in capsys.readouterr().out
    assert main(["info", str(tmp_path / "ix")]) == 0
    assert "1.2, 0.75" in capsys.readouterr().out


def test_text_inputs_named_as_what_they_are():
    import pandas as pd

    from sparsedex import Bm25Encoder

    ix = SparseIndex("bm25")
    with pytest.raises(TypeError, match=r"document 1 is NaN \(a missing value\), not a str"):
        ix.add(pd.Series(["x", None]))
    with pytest.raises(TypeError, match="documents is a set, which has no order: pass a list"):
        ix.add({"a", "b"})
    assert len(ix) == 0
    for bad in ("1", True, None):
        with pytest.raises(TypeError, match="k1 must be a number"):
            Bm25Encoder(k1=bad)
    with pytest.raises(TypeError, match="b must be a number"):
        Bm25Encoder(b="0.5")


def test_a_directory_in_place_of_a_documents_file_is_named_so(tmp_path):
    # helper-138: it read as "4096 bytes, the manifest records N (truncated ...)"
    from sparsedex import CorruptIndexError

    ix = SparseIndex(encoder=None)
    ix.add([(np.array([1, 2], np.uint32), np.array([1.0, 2.0], np.float32))] * 3, ids=[1, 2, 3])
    ix.save(tmp_path / "ix")
    docs = next((tmp_path / "ix").glob("seg-*.docs"))
    docs.unlink()
    docs.mkdir()
    with pytest.raises(CorruptIndexError, match=r"\.docs: not a regular file \(an attachment of segment seg-"):
        SparseIndex.open(tmp_path / "ix").search(([1], [1.0]), k=3, with_payload=True)
