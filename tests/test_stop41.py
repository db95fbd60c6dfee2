"""Reads racing refresh() across a symbolic link switched between two indexes (recheck40b H1,
H2): a search pairs one commit with its own encoder and its own documents, always."""

from __future__ import annotations

import os
import shutil
import threading
import time

import pytest

from sparsedex import SparseIndex


def _switch(link, target) -> None:
    tmp = f"{link}.tmp"
    if os.path.lexists(tmp):
        os.unlink(tmp)
    os.symlink(target, tmp)
    os.replace(tmp, link)  # atomic, as a blue/green deployment does


def _flipping(link, targets, reader, stop: threading.Event, errors: list) -> threading.Thread:
    def run() -> None:
        i = 0
        try:
            while not stop.is_set():
                i += 1
                _switch(link, targets[i % 2])
                reader.refresh()
        except BaseException as e:  # pragma: no cover - reported by the test
            errors.append(e)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def test_bm25_search_pairs_each_commit_with_its_dictionary(tmp_path):
    # two BM25 indexes whose dictionaries number "apple" differently (0 in blue, 2 in green):
    # a query encoded with one dictionary and scored on the other's postings finds "cherry"
    blue, green, link = tmp_path / "blue", tmp_path / "green", tmp_path / "current"
    with SparseIndex.create(blue, encoder="bm25") as ix:
        ix.add(["apple pie", "cherry tart"], ids=["blue apple pie", "blue cherry tart"])
        ix.commit()
    with SparseIndex.create(green, encoder="bm25") as ix:
        ix.add(["cherry cake", "apple juice"], ids=["green cherry cake", "green apple juice"])
        ix.commit()
    _switch(link, blue)
    reader = SparseIndex.open(link)
    stop, errors = threading.Event(), []
    t = _flipping(link, [blue, green], reader, stop, errors)
    wrong, searches, deadline = [], 0, time.monotonic() + 2.0
    try:
        while time.monotonic() < deadline and not errors:
            for hits in (reader.search("apple", k=2), *reader.search_batch(["apple"], k=2)):
                searches += 1
                wrong += [h.id for h in hits if "apple" not in h.id]
                assert len(hits) == 1
    finally:
        stop.set()
        t.join()
    assert not errors, errors
    assert searches > 50
    assert not wrong, f"{len(wrong)} hits without the query's word, e.g. {wrong[:3]}"
    reader.close()


def test_a_search_during_refresh_waits_for_the_dictionary(tmp_path, monkeypatch):
    # deterministic form of the race above: a search starts after the store moved to green's
    # commit and before the handle took green's dictionary
    from sparsedex.store import Store

    blue, green, link = tmp_path / "blue", tmp_path / "green", tmp_path / "current"
    with SparseIndex.create(blue, encoder="bm25") as ix:
        ix.add(["apple pie", "cherry tart"], ids=["blue apple pie", "blue cherry tart"])
        ix.commit()
    with SparseIndex.create(green, encoder="bm25") as ix:
        ix.add(["cherry cake", "apple juice"], ids=["green cherry cake", "green apple juice"])
        ix.commit()
    _switch(link, blue)
    reader = SparseIndex.open(link)
    assert [h.id for h in reader.search("apple")] == ["blue apple pie"]
    moved = Store.refresh
    found: list = []

    def refresh_with_a_search_in_between(self):
        out = moved(self)
        t = threading.Thread(target=lambda: found.extend(h.id for h in reader.search("apple")))
        t.start()
        t.join(0.5)  # the search waits for refresh() to finish (it would deadlock here if
        return out  # it held the lock this thread holds; it does not)

    monkeypatch.setattr(Store, "refresh", refresh_with_a_search_in_between)
    _switch(link, green)
    assert reader.refresh()
    deadline = time.monotonic() + 10
    while not found and time.monotonic() < deadline:
        time.sleep(0.01)
    assert found == ["green apple juice"]
    reader.close()


def test_documents_come_from_the_copy_the_commit_was_read_from(tmp_path, monkeypatch):
    # `cp -r` copies updated apart: their new segments share names and sizes but not bytes.
    # The link switched between the core reading a commit and the documents being opened
    # through it paired the commit with the other copy's file, which failed its checksum on
    # first read, for good (refresh() said False from then on)
    from sparsedex.store import Store

    blue, green, link = tmp_path / "blue", tmp_path / "green", tmp_path / "current"
    with SparseIndex.create(blue, encoder=None, vocab_size=100) as ix:
        ix.add([([1, 2], [1.0, 2.0])], ids=["base"], payloads=[{"c": "base"}])
        ix.commit()
    shutil.copytree(blue, green)
    _switch(link, blue)
    reader = SparseIndex.open(link)
    for where, colour in ((blue, "blue"), (green, "green")):
        with SparseIndex.open(where) as ix:
            ix.add([([3], [5.0])], ids=["new"], payloads=[{"c": colour}])
            ix.commit()
    names = {p.name: p.stat().st_size for p in blue.glob("*.docs")}
    assert names == {p.name: p.stat().st_size for p in green.glob("*.docs")}  # the trap is set

    opened = Store._open_docs

    def switch_then_open(self, *args, **kwargs):
        _switch(link, green)  # the deployment moves on just after the core read blue's commit
        return opened(self, *args, **kwargs)

    monkeypatch.setattr(Store, "_open_docs", switch_then_open)
    assert reader.refresh()
    monkeypatch.setattr(Store, "_open_docs", opened)
    (hit,) = reader.search(([3], [1.0]), k=1)
    assert hit.payload == {"c": "blue"}  # blue's commit, blue's documents
    reader.refresh()
    (hit,) = reader.search(([3], [1.0]), k=1)
    assert hit.payload == {"c": "green"}
    reader.close()


def test_documents_stay_right_while_a_link_flips(tmp_path):
    blue, green, link = tmp_path / "blue", tmp_path / "green", tmp_path / "current"
    with SparseIndex.create(blue, encoder=None, vocab_size=100) as ix:
        ix.add([([1, 2], [1.0, 2.0])], ids=["base"], payloads=[{"c": "base"}])
        ix.commit()
    shutil.copytree(blue, green)
    for where, colour in ((blue, "blue"), (green, "green")):
        with SparseIndex.open(where) as ix:
            ix.add([([3], [5.0])], ids=["new"], payloads=[{"c": colour}])
            ix.commit()
    _switch(link, blue)
    reader = SparseIndex.open(link)
    stop, errors = threading.Event(), []
    t = _flipping(link, [blue, green], reader, stop, errors)
    deadline = time.monotonic() + 1.5
    try:
        while time.monotonic() < deadline and not errors:
            (hit,) = reader.search(([3], [1.0]), k=1)
            assert hit.payload["c"] in ("blue", "green")
    finally:
        stop.set()
        t.join()
    assert not errors, errors
    for colour, where in (("green", green), ("blue", blue)):
        _switch(link, where)
        reader.refresh()
        (hit,) = reader.search(([3], [1.0]), k=1)
        assert hit.payload == {"c": colour}
    reader.close()


def test_a_damaged_documents_file_is_opened_again_once_mended(tmp_path):
    with SparseIndex.create(tmp_path / "ix", encoder=None, vocab_size=10) as ix:
        ix.add([([1], [1.0])], ids=["a"], payloads=[{"x": 1}])
        ix.commit()
    (docs,) = list((tmp_path / "ix").glob("*.docs"))
    good = docs.read_bytes()
    reader = SparseIndex.open(tmp_path / "ix")
    bad = bytearray(good)
    bad[-1] ^= 0xFF
    # the reader's open handle reads the file in place: damage it there
    with open(docs, "r+b") as f:
        f.write(bad)
    # named as rewritten under the open handle (stop 56), or by its checksum
    with pytest.raises(Exception, match=r"checksum|seg-000001\.docs was rewritten"):
        reader.get("a")
    with open(docs, "r+b") as f:
        f.write(good)
    reader.refresh()
    assert reader.get("a").payload == {"x": 1}
    reader.close()


@pytest.mark.parametrize("how", ["save", "link"])
def test_a_handle_opened_before_the_index_was_replaced_cannot_write_into_the_new_one(tmp_path, how) -> None:
    """A handle that had not written yet (no lock) when another index was saved at its path,
    or its symbolic link switched to another index, is refused its first write with a
    ConflictError, before encoding: it used to commit its own BM25 dictionary and encoder
    settings into the other index (unopenable: "term appears twice"; or a SPLADE index
    relabelled BM25, whose searches found nothing). After refresh() it writes to the new index
    with the new index's encoder."""
    from sparsedex.errors import ConflictError

    a = SparseIndex("bm25")
    a.add(["alpha bravo charlie delta echo"], ids=["a"])
    b = SparseIndex("bm25")
    b.add(["echo foxtrot golf hotel india juliet kilo lima"], ids=["b"])
    if how == "save":
        a.save(tmp_path / "ix")
        path = tmp_path / "ix"
    else:
        a.save(tmp_path / "blue")
        b.save(tmp_path / "green")
        path = tmp_path / "live"
        os.symlink("blue", path)
    w = SparseIndex.open(path)
    if how == "save":
        b.save(path)
    else:
        _switch(path, "green")
    with pytest.raises(ConflictError, match="another index was saved there"):
        w.add(["mike november"], ids=["late"])
    with pytest.raises(ConflictError, match="another index was saved there"):
        w.delete(["a"], missing_ok=True)
    target = path if how == "save" else tmp_path / "green"
    fresh = SparseIndex.open(target)
    assert fresh.ids() == ["b"] and [h.id for h in fresh.search("echo golf", k=5)] == ["b"]
    assert w.refresh()
    w.add(["mike november echo"], ids=["late"])
    w.commit()
    w.close()
    again = SparseIndex.open(target)
    assert sorted(again.ids()) == ["b", "late"]
    assert [h.id for h in again.search("november", k=5)] == ["late"]
    assert [h.id for h in again.search("golf", k=5)] == ["b"]


def test_info_and_encoder_identity_during_refresh_wait_for_the_encoder(tmp_path, monkeypatch):
    # helper-85 M1: info() paired the new commit's documents with the old index's encoder, and
    # encoder_identity could read None in between; both now read the pair refresh() leaves
    from sparsedex.store import Store

    blue, green, link = tmp_path / "blue", tmp_path / "green", tmp_path / "current"
    with SparseIndex.create(blue, encoder="bm25") as ix:
        ix.add(["apple pie", "cherry tart"], ids=["a", "b"])
        ix.commit()
    with SparseIndex.create(green, encoder=None, vocab_size=100) as ix:
        ix.add([([1], [1.0]), ([2], [1.0]), ([3], [1.0])], ids=["x", "y", "z"])
        ix.commit()
    _switch(link, blue)
    reader = SparseIndex.open(link)
    assert (reader.info()["documents"], reader.info()["encoder"]["kind"]) == (2, "bm25")
    moved = Store.refresh
    seen: list = []

    def refresh_with_reads_in_between(self):
        out = moved(self)

        def read() -> None:
            i = reader.info()
            seen.append((i["documents"], i["encoder"], reader.encoder_identity, reader.encoder))

        t = threading.Thread(target=read)
        t.start()
        t.join(0.5)
        return out

    monkeypatch.setattr(Store, "refresh", refresh_with_reads_in_between)
    _switch(link, green)
    assert reader.refresh()
    deadline = time.monotonic() + 10
    while not seen and time.monotonic() < deadline:
        time.sleep(0.01)
    assert seen == [(3, None, None, None)]
    reader.close()
