"""Index directories whose names hold characters a URI gives meaning to (``#``, ``?``, ``%XX``,
spaces): the document store is SQLite opened by ``file:`` URI, which must be percent-encoded.
Raw, ``data#1`` opened the file ``data`` beside it and wrote its tables there (helper-109
HIGH), ``a%41b`` opened ``aAb``, and ``q?x`` failed to commit."""

from __future__ import annotations

import sqlite3

import pytest

from sparsedex import SparseIndex

NAMES = ["data#1", "a%41b", "q?x", "sp ace", "pct%", "uni-é"]


@pytest.mark.parametrize("name", NAMES)
def test_an_index_whose_path_holds_uri_characters_works_and_touches_nothing_beside_it(tmp_path, name):
    # files a raw URI would have opened instead
    decoy = tmp_path / "data"
    con = sqlite3.connect(decoy)
    con.execute("CREATE TABLE mine (x)")
    con.commit()
    con.close()
    (tmp_path / "aAb").mkdir()
    path = tmp_path / name
    ix = SparseIndex.create(path)
    ix.add([{1: 1.0, 2: 0.5}, {2: 1.0}], ids=["a", "b"], payloads=[{"t": "x"}, {"t": "y"}])
    ix.commit()
    ix.add([{3: 1.0}] * 3, ids=["c", "d", "e"])
    ix.commit()
    ix.merge()
    assert [h.id for h in ix.search({2: 1.0}, k=2)] == ["b", "a"]
    ix.close()
    ix = SparseIndex.open(path)
    assert ix.get("a").payload == {"t": "x"} and len(ix) == 5
    copy = tmp_path / f"copy-{name}"
    ix.save(copy)
    ix.close()
    other = SparseIndex.open(copy)
    assert other.get("b").payload == {"t": "y"}
    other.close()
    con = sqlite3.connect(decoy)
    assert [r[0] for r in con.execute("SELECT name FROM sqlite_master")] == ["mine"]
    con.close()
    assert list((tmp_path / "aAb").iterdir()) == []
