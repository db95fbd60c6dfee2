"""Stop 56: fresh testers' findings (helper-114, helper-115)."""

from __future__ import annotations

import os

import numpy as np
import pytest

from sparsedex import SparseIndex
from sparsedex.errors import CorruptIndexError


def _vectors(n: int, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [(np.sort(rng.choice(3000, 20, replace=False)), rng.random(20).astype(np.float32) + 0.01) for _ in range(n)]


def test_a_documents_file_rewritten_in_place_is_named_kept_and_read_again_on_refresh(tmp_path):
    """helper-114 M: a .docs file rewritten in place (same size) under an open index gave
    "unreadable (database disk image is malformed)" once, then a later get() succeeded, and
    refresh() kept the damaged handle (reads still failed). Now the error names the file
    rewritten under the index, every later read raises it, refresh() checks the file against
    the manifest, and once the file is mended a refresh reads it again."""
    p = tmp_path / "ix"
    vecs = _vectors(3000)
    ix = SparseIndex.create(p)
    ix.add(vecs, ids=list(range(3000)), payloads=[{"g": i % 10, "pad": "x" * 40} for i in range(3000)])
    ix.commit()
    ix.close()
    r = SparseIndex.open(p)
    q = {int(vecs[0][0][0]): 1.0}
    assert len(r.search(q, k=1)) == 1
    docs = next(p.glob("*.docs"))
    orig = docs.read_bytes()
    with open(docs, "r+b") as fh:
        fh.seek(len(orig) // 2)
        fh.write(bytes(4096))  # zeros over the middle pages
    with pytest.raises(CorruptIndexError, match=r"\.docs was rewritten .* under this open index"):
        for i in range(3000):
            r.get(i)
    for read in (lambda: r.get(5), lambda: r.search(q, k=1)):  # sticks
        with pytest.raises(CorruptIndexError, match="under this open index"):
            read()
    r.refresh()  # opens the file again: its check against the manifest fails, and sticks
    for i in (5, 6):
        with pytest.raises(CorruptIndexError, match="checksum differs from the manifest's"):
            r.get(i)
    docs.write_bytes(orig)
    r.refresh()
    assert r.get(5).payload["g"] == 5
    assert sum(1 for i in range(3000) if r.get(i)) == 3000
    r.close()


_FSIZE_CHILD = r"""
import errno, resource, sys
import numpy as np
from sparsedex import SparseIndex
limit, what = int(sys.argv[2]), sys.argv[3]
rng = np.random.default_rng(0)
vecs = [(np.sort(rng.choice(30000, 50, replace=False)), rng.random(50).astype(np.float32) + 0.01) for _ in range(6000)]
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
ix = SparseIndex.open(sys.argv[1])
big = what == "docs"
ix.add(vecs[:300] if big else vecs, ids=list(range(100, 400 if big else 6100)),
       payloads=[{"pad": "x" * 2000} for _ in range(300)] if big else None)
try:
    ix.commit()
except OSError as e:
    print(e.errno, "|", e.strerror)
    sys.exit(0)
print("committed")
"""


@pytest.mark.parametrize("what,limit", [("engine", 200 * 1024), ("docs", 200 * 1024)])
def test_a_commit_past_the_file_size_limit_raises_efbig(tmp_path, what, limit):
    """helper-114: a commit past the file size limit (``ulimit -f``, as a full disk would) raised
    an OSError whose errno was None (the engine file: "File too large (os error 27)" only in its
    text), or EIO "disk I/O error" (the documents file, SQLite's words). Now both carry EFBIG,
    the documents' message names the limit, and the index reopens at its last commit."""
    import errno
    import subprocess
    import sys

    p = tmp_path / "ix"
    ix = SparseIndex.create(p)
    ix.add(_vectors(10), ids=list(range(10)))
    ix.commit()
    ix.close()
    script = tmp_path / "child.py"
    script.write_text(_FSIZE_CHILD)
    out = subprocess.run([sys.executable, str(script), str(p), str(limit), what], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    code, _, msg = out.stdout.strip().partition(" | ")
    assert int(code) == errno.EFBIG, out.stdout
    assert "file size limit" in msg and "ulimit -f" in msg, msg
    r = SparseIndex.open(p)
    assert sorted(r.ids()) == list(range(10))
    r.close()


def test_exponential_gains_refuse_grades_past_a_float_and_compute_in_floats(tmp_path):
    """helper-115 HIGH: ``2**rel - 1`` of a Python int built a number of ``rel`` bits (a grade of
    1e11 took 12.5 GB and minutes; 5000 raised OverflowError, an "internal error" in the CLI).
    Now gains are floats; a grade above 1000 is refused with exponential gains (named, with
    its query and document), and linear gains take any grade."""
    from sparsedex import eval as E
    from sparsedex.cli import main

    run = {"q1": [("d1", 2.0), ("d2", 1.0)]}
    for grade in (5000, 99_999_999_999):
        with pytest.raises(ValueError, match=rf"query 'q1' document 'd1': grade {grade} is too large for exponential"):
            E.evaluate(run, {"q1": {"d1": grade, "d2": 1}}, ["ndcg@10"], gains="exponential")
        assert E.evaluate(run, {"q1": {"d1": grade, "d2": 1}}, ["ndcg@10", "map"]) == {"ndcg@10": 1.0, "map": 1.0}
        # not an nDCG: gains do not matter
        assert E.evaluate(run, {"q1": {"d1": grade}}, ["map"], gains="exponential") == {"map": 1.0}
    assert E.evaluate(run, {"q1": {"d1": 1000, "d2": 1000}}, ["ndcg@10"], gains="exponential") == {"ndcg@10": 1.0}
    got = E.evaluate(run, {"q1": {"d1": 1, "d2": 3}}, ["ndcg@10"], gains="exponential")["ndcg@10"]
    want = (1 / 1 + 7 / np.log2(3)) / (7 / 1 + 1 / np.log2(3))
    assert got == pytest.approx(want, rel=1e-12)
    # the CLI refuses before searching, naming the qrels file
    (tmp_path / "c.jsonl").write_text('{"id": "d1", "text": "hello world"}\n{"id": "d2", "text": "bye"}\n')
    (tmp_path / "q.jsonl").write_text('{"id": "q1", "text": "hello"}\n')
    (tmp_path / "b.qrels").write_text("q1 0 d1 5000\n")
    assert main(["index", str(tmp_path / "c.jsonl"), str(tmp_path / "ix"), "--encoder", "bm25"]) == 0
    rc = main(["eval", str(tmp_path / "ix"), str(tmp_path / "q.jsonl"), str(tmp_path / "b.qrels"), "--gains", "exponential"])
    assert rc == 1


def test_helper115_messages(capsys):
    """helper-115 LOW: a query of None on an index that encodes texts names texts; a bool or
    string grade is not told about fractions; a batch_size of the wrong type is a TypeError
    everywhere."""
    from sparsedex import eval as E
    from sparsedex.embedding import SparseTextEmbedding

    ix = SparseIndex("bm25")
    ix.add(["hello world", "bye"])
    for call in (lambda: ix.search(None), lambda: ix.search_batch([None]), lambda: ix.search_batch(["a", None])):
        with pytest.raises(TypeError, match="is None: pass (a text|texts) .this index encodes them."):
            call()
    for g, why in ((True, "not a bool"), ("2", "not a str"), (1.5, "would truncate a fractional grade")):
        with pytest.raises(ValueError, match=why):
            E.evaluate({"q1": [("d1", 1.0)]}, {"q1": {"d1": g}}, ["map"])
    m = SparseTextEmbedding("splade-tiny")
    for bad in (1.5, True, None):
        with pytest.raises(TypeError, match="batch_size"):
            list(m.embed(["x"], batch_size=bad))


def test_run_and_qrels_numbers_take_no_underscores(tmp_path):
    """helper-115 LOW: a score or grade written "1_000" was read as 1000 (Python's syntax;
    trec_eval reads 1); now it is an error naming the file and line."""
    from sparsedex import eval as E

    (tmp_path / "r.run").write_text("q1 Q0 d1 1 1_000 t\n")
    with pytest.raises(ValueError, match=r"r.run:1: score '1_000' is not a number"):
        E.read_run(tmp_path / "r.run")
    (tmp_path / "q.qrels").write_text("q1 0 d1 1\nq1 0 d2 1_0\n")
    with pytest.raises(ValueError, match=r"q.qrels:2: relevance '1_0' is not an integer"):
        E.read_qrels(tmp_path / "q.qrels")


@pytest.mark.parametrize("kind", ["bm25-u8", "vectors-impacts"])
def test_explained_8bit_scores_multiply_out(kind):
    """helper-115 LOW: in 8-bit scores (a u8 BM25 index; scores="impacts" of a u8 index of
    vectors) the query weight shown was the one given, while the index scores it rounded to 16
    bits: query x document missed the contribution by up to 2% for light terms. Now the
    weight shown is the scored one: the product is the contribution, and they sum to the
    score search returns."""
    rng = np.random.default_rng(3)
    if kind == "bm25-u8":
        words = [f"w{i}" for i in range(300)]
        texts = [" ".join(rng.choice(words, size=rng.integers(5, 60), p=None)) for _ in range(400)]
        ix = SparseIndex("bm25", quantization="u8")
        ix.add(texts)
        queries = [" ".join(rng.choice(words, size=12)) for _ in range(10)]
        opts: dict = {}
    else:
        ix = SparseIndex(encoder=None, quantization="u8")
        ix.add(_vectors(400, seed=3))
        queries = [{int(t): float(w) for t, w in zip(rng.choice(3000, 40, replace=False), rng.random(40) * 3)}
                   for _ in range(10)]
        opts = {"scores": "impacts"}
    off = 0.0
    for q in queries:
        for hit in ix.search(q, k=3, **opts):
            e = ix.explain(q, hit.id, **opts)
            assert sum(m.contribution for m in e.matches) == pytest.approx(e.score, rel=1e-5)
            assert e.score == pytest.approx(hit.score, rel=1e-6)
            for m in e.matches:
                off = max(off, abs(m.query_weight * m.doc_weight - m.contribution) / m.contribution)
    assert off < 1e-5, off


def _two_indexes(tmp_path, kind):
    """Two indexes whose first segment's files have the same size and other contents."""
    n = 3000
    for name, word in (("a", "apple"), ("b", "mango")):
        if kind == "docs":
            ix = SparseIndex("bm25", path=tmp_path / name)
            ix.add([f"{word} number {i:05d} " + "filler text " * 10 for i in range(n)], ids=[f"d{i}" for i in range(n)],
                   payloads=[{"src": name, "i": i} for i in range(n)])
        else:
            off = 0 if name == "a" else 1000
            ix = SparseIndex(None, path=tmp_path / name)
            ix.add([([i % 50 + off, 900], [1.0 + (i % 13), 0.5]) for i in range(n)], ids=[f"d{i}" for i in range(n)])
        ix.commit()
        ix.close()
    ext = ".docs" if kind == "docs" else ".sdx"
    a, b = next((tmp_path / "a").glob("seg-*" + ext)), next((tmp_path / "b").glob("seg-*" + ext))
    assert a.stat().st_size == b.stat().st_size
    return a, b


def test_a_documents_file_rewritten_under_a_warm_handle_is_not_read_after_refresh(tmp_path):
    """helper-116 HIGH: a handle that had read seg-N.docs, then had it rewritten in place with
    another index's (valid, same size) file, read a mix of both after refresh() (SQLite keeps
    the pages it read of an immutable file), and refresh() said nothing. Now refresh() raises,
    naming the file, and every later read of the handle raises; a fresh open refuses it."""
    a, b = _two_indexes(tmp_path, "docs")
    r = SparseIndex.open(tmp_path / "a")
    assert r.get("d0").payload["src"] == "a"
    orig = a.read_bytes()
    a.write_bytes(b.read_bytes())
    r.refresh()  # opens the file again (SQLite kept pages of the old one)
    for read in (lambda: r.get("d0"), lambda: r.get("d2600"), lambda: r.search("filler", k=2, filter={"src": "b"})):
        with pytest.raises(CorruptIndexError, match="checksum differs from the manifest's"):
            read()
    with pytest.raises(CorruptIndexError, match="checksum differs"):
        SparseIndex.open(tmp_path / "a").get("d5")
    a.write_bytes(orig)  # mended in place: the handle reads it again
    r.refresh()
    assert r.get("d2600").payload == {"src": "a", "i": 2600}
    r.close()


def test_an_engine_file_rewritten_under_a_handle_is_not_searched_after_refresh(tmp_path):
    """helper-116: refresh() found seg-N.sdx rewritten (another index's bytes, same size) and
    raised, but later searches of the handle answered from the other index's postings. Now
    they raise too, also after the file is restored by rename (the handle's mapping is of the
    rewritten bytes): the handle must be opened again."""
    import os

    a, b = _two_indexes(tmp_path, "sdx")
    r = SparseIndex.open(tmp_path / "a")
    want = r.search({3: 1.0}, k=2)
    assert want
    orig = a.read_bytes()
    a.write_bytes(b.read_bytes())
    with pytest.raises(CorruptIndexError, match="checksum differs"):
        r.refresh()
    for q in ({3: 1.0}, {1003: 1.0}):
        with pytest.raises(CorruptIndexError, match=r"seg-000001\.sdx was rewritten"):
            r.search(q, k=2)
    tmp = a.with_name("restore.tmp")
    tmp.write_bytes(orig)
    os.replace(tmp, a)
    r.refresh()
    with pytest.raises(CorruptIndexError, match=r"seg-000001\.sdx was rewritten .* open it again"):
        r.search({3: 1.0}, k=2)
    r.close()
    assert SparseIndex.open(tmp_path / "a").search({3: 1.0}, k=2) == want
