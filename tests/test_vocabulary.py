"""BM25's term dictionary on disk: the append-only vocabulary file ``vocab-<G>`` (issue 8).

A commit appends only its new terms (the manifest records the committed length and CRC32),
readers read exactly the committed prefix, a damaged file is a CorruptIndexError naming it,
save() and garbage collection handle it, and indexes that kept the dictionary in their
settings (sparsedex before the file) still open and are upgraded by their next writer."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from sparsedex import SparseIndex
from sparsedex._core import CorruptIndexError

DATA = Path(__file__).parent / "data"


def _texts(lo: int, hi: int) -> list[str]:
    """Documents whose words are shared (common) and new per document (uniq<i>)."""
    return [f"common words here uniq{i} alpha{i % 7} beta{i % 3}" for i in range(lo, hi)]


def _vocab_files(path: Path) -> list[str]:
    return sorted(p.name for p in path.iterdir() if p.name.startswith("vocab-"))


def _manifest_settings(ix: SparseIndex) -> dict:
    return json.loads(ix._store.snapshot.core.settings()["settings_json"])


def _hits(ix: SparseIndex, queries: list[str]) -> list[list[tuple[object, float]]]:
    return [[(h.id, h.score) for h in ix.search(q, k=5)] for q in queries]


QUERIES = ["uniq3", "uniq41 common", "alpha2 beta1", "uniq59 uniq0", "nothing-here"]


def test_commits_append_only_new_terms_and_reopen(tmp_path):
    path = tmp_path / "ix"
    ix = SparseIndex("bm25", "float", path=path)
    sizes = []
    for c in range(4):
        ix.add(_texts(20 * c, 20 * (c + 1)))
        ix.commit()
        core = ix._store.snapshot.core.settings()
        assert core["vocabulary_terms"] == len(ix.encoder.vocabulary)
        sizes.append((core["vocabulary_file"], (path / core["vocabulary_file"]).stat().st_size))
    # one file, growing by what each commit adds; the settings never hold the terms
    assert len({name for name, _ in sizes}) == 1 and sizes == sorted(sizes, key=lambda x: x[1])
    enc = _manifest_settings(ix)["encoder"]
    assert "vocabulary" not in enc and enc["kind"] == "bm25"
    want = _hits(ix, QUERIES)
    terms = ix.encoder.vocabulary.terms
    ix.close()
    back = SparseIndex.open(path)
    assert back.encoder.vocabulary.terms == terms
    assert _hits(back, QUERIES) == want
    # a reopened writer appends after the committed terms
    back.add(_texts(80, 90))
    back.commit()
    assert back.encoder.vocabulary.terms[: len(terms)] == terms
    assert SparseIndex.open(path).encoder.vocabulary.terms == back.encoder.vocabulary.terms
    assert _vocab_files(path) == [sizes[0][0]]
    back.close()


def test_a_writer_learns_terms_committed_by_another_handle(tmp_path):
    path = tmp_path / "ix"
    a = SparseIndex("bm25", "float", path=path)
    a.add(_texts(0, 10))
    a.commit()
    b = SparseIndex.open(path)  # a reader, loaded with a's 10 documents' terms
    a.add(_texts(10, 20))
    a.commit()
    a.close()
    b.add(_texts(20, 30))  # becomes the writer: must not reuse ids a gave to its new terms
    b.commit()
    fresh = SparseIndex("bm25", "float")
    fresh.add(_texts(0, 30))
    r = SparseIndex.open(path)
    assert sorted(r.encoder.vocabulary.terms) == sorted(fresh.encoder.vocabulary.terms)
    assert [[s for _, s in h] for h in _hits(r, QUERIES)] == [[s for _, s in h] for h in _hits(fresh, QUERIES)]
    for i in (3, 15, 27):
        assert r.search(f"uniq{i}", k=1)[0].id == i
    b.close()


def test_readers_see_the_committed_prefix_and_refresh(tmp_path):
    path = tmp_path / "ix"
    w = SparseIndex("bm25", "float", path=path)
    w.add(_texts(0, 10))
    w.commit()
    r = SparseIndex.open(path)
    w.add(_texts(10, 20))  # staged, not committed: nothing of it is visible
    assert SparseIndex.open(path).encoder.vocabulary.terms == r.encoder.vocabulary.terms
    w.commit()
    assert r.search("uniq15", k=1) == []
    assert r.refresh()
    assert r.search("uniq15", k=1)[0].id == 15
    assert r.encoder.vocabulary.terms == w.encoder.vocabulary.terms
    w.close()


@pytest.mark.parametrize("damage", ["truncate", "flip", "remove"])
def test_a_damaged_vocabulary_file_is_a_corrupt_index_error_naming_it(tmp_path, damage):
    path = tmp_path / "ix"
    ix = SparseIndex("bm25", "float", path=path)
    ix.add(_texts(0, 30))
    ix.commit()
    ix.add(_texts(30, 40))
    ix.commit()
    name = ix._store.snapshot.core.settings()["vocabulary_file"]
    ix.close()
    f = path / name
    data = f.read_bytes()
    if damage == "truncate":
        f.write_bytes(data[:-64])
    elif damage == "flip":
        b = bytearray(data)
        b[len(b) // 3] ^= 0x10
        f.write_bytes(bytes(b))
    else:
        f.unlink()
    with pytest.raises(CorruptIndexError, match=name):
        SparseIndex.open(path)


def test_bytes_past_the_committed_length_are_ignored_then_cut_off(tmp_path):
    """What a writer killed while appending leaves: the index opens as committed, and the
    next commit appends after the committed prefix."""
    path = tmp_path / "ix"
    ix = SparseIndex("bm25", "float", path=path)
    ix.add(_texts(0, 10))
    ix.commit()
    name = ix._store.snapshot.core.settings()["vocabulary_file"]
    terms = ix.encoder.vocabulary.terms
    ix.close()
    with open(path / name, "ab") as f:
        f.write(b"SPDXVOC1" + b"\x07" * 100)  # a torn chunk
    back = SparseIndex.open(path)
    assert back.encoder.vocabulary.terms == terms
    back.add(_texts(10, 12))
    back.commit()
    core = back._store.snapshot.core.settings()
    assert core["vocabulary_file"] == name and (path / name).stat().st_size == core["vocabulary_bytes"]
    again = SparseIndex.open(path)
    assert again.encoder.vocabulary.terms == back.encoder.vocabulary.terms
    assert again.search("uniq11", k=1)[0].id == 11
    back.close()


@pytest.mark.parametrize("where", ["memory", "disk"])
def test_save_writes_the_vocabulary_and_resaves_collect_the_old_file(tmp_path, where):
    src = SparseIndex("bm25", "float", path=None if where == "memory" else tmp_path / "src")
    src.add(_texts(0, 25))
    src.commit()
    dest = tmp_path / "saved"
    src.save(dest)
    first = _vocab_files(dest)
    assert len(first) == 1
    src.add(_texts(25, 40))
    src.commit()
    src.save(dest)
    assert len(_vocab_files(dest)) == 1 and _vocab_files(dest) != first
    back = SparseIndex.open(dest)
    assert back.encoder.vocabulary.terms == src.encoder.vocabulary.terms
    assert _hits(back, QUERIES) == _hits(src, QUERIES)
    back.close()
    src.close()


def test_an_index_with_the_dictionary_in_its_settings_opens_and_is_upgraded(tmp_path):
    """tests/data/bm25-index-manifest-v1: written by sparsedex at commit 525ae16 (the term
    dictionary in the manifest settings), see make_bm25_index_manifest_v1.py."""
    src = DATA / "bm25-index-manifest-v1"
    expected = json.loads((DATA / "bm25-index-manifest-v1.expected.json").read_text())
    path = tmp_path / "ix"
    shutil.copytree(src, path)
    ix = SparseIndex.open(path)
    assert ix.encoder.vocabulary.terms == expected["terms"]
    for q, hits in expected["hits"].items():
        assert [[h.id, h.score] for h in ix.search(q, k=10)] == hits
    assert _vocab_files(path) == []
    # the next writer moves the dictionary into a vocabulary file
    ix.add(["a new document about zebras"], ids=["new"])
    ix.commit()
    assert len(_vocab_files(path)) == 1
    assert "vocabulary" not in _manifest_settings(ix)["encoder"]
    ix.close()
    back = SparseIndex.open(path)
    assert back.encoder.vocabulary.terms[: len(expected["terms"])] == expected["terms"]
    assert back.search("zebras", k=1)[0].id == "new"
    fresh = SparseIndex("bm25", "float")
    fresh.add(expected["docs"] + ["a new document about zebras"], ids=expected["ids"] + ["new"])
    for q in expected["hits"]:
        got = [(h.id, h.score) for h in back.search(q, k=10)]
        assert sorted(got) == sorted((h.id, h.score) for h in fresh.search(q, k=10))
    back.close()
