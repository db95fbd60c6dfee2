"""Stop 39: leftovers of earlier attacks (each test fails on the code before its fix)."""

import gc
import warnings

from sparsedex import SparseIndex


def _resource_warnings(fn):
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        fn()
        gc.collect()
    return [str(w.message) for w in got if issubclass(w.category, ResourceWarning)]


def test_refresh_past_a_replaced_directory_leaves_no_file_open(tmp_path):
    """A handle moved by refresh() to a replaced index drops the old segments' documents
    files closed: before, each dropped file handle printed a ResourceWarning."""
    d = tmp_path / "ix"
    with SparseIndex.create(d) as a:
        a.add([{1: 1.0, 2: 0.5}, {2: 1.0}], payloads=[{"x": 1}, {"x": 2}])
        a.commit()
    r = SparseIndex.open(d)
    assert [h.payload for h in r.search({1: 1.0}, k=2)] == [{"x": 1}]
    b = SparseIndex.create()
    b.add([{3: 1.0}], payloads=[{"y": 1}])
    b.save(d)

    def move():
        assert r.refresh()
        assert [h.payload for h in r.search({3: 1.0}, k=2)] == [{"y": 1}]

    assert _resource_warnings(move) == []
    assert _resource_warnings(r.close) == []


def _build(path, ids, weights, tag):
    ix = SparseIndex(None, path=path)
    ix.add([{1: w} for w in weights], ids=ids, payloads=[{"src": tag}] * len(ids))
    ix.commit()
    ix.close()


def test_refresh_follows_a_directory_deleted_and_written_again(tmp_path):
    """Another index written where the old one was deleted has the same generation and
    segment names: refresh() used to report no change (and, past a later commit, mixed the old
    segments' ids and documents into the new index's results)."""
    import shutil

    d = tmp_path / "ix"
    _build(d, ["old-a", "old-b"], [1.0, 2.0], "old")
    r = SparseIndex.open(d)
    assert [h.id for h in r.search({1: 1.0})] == ["old-b", "old-a"]
    shutil.rmtree(d)
    _build(d, ["new-x", "new-y", "new-z"], [7.0, 8.0, 9.0], "new")
    assert r.refresh() is True
    hits = r.search({1: 1.0})
    assert [(h.id, h.payload) for h in hits] == [("new-z", {"src": "new"}), ("new-y", {"src": "new"}),
                                                 ("new-x", {"src": "new"})]
    assert len(r) == 3 and sorted(r.ids()) == ["new-x", "new-y", "new-z"]
    assert r.get("new-x").payload == {"src": "new"}
    assert r.refresh() is False
    r.close()


def test_refresh_follows_a_symbolic_link_switched_to_another_index(tmp_path):
    """Blue/green: the served path is a symbolic link switched atomically to an index built
    elsewhere (same generation and segment names)."""
    import os

    _build(tmp_path / "blue", ["blue-1", "blue-2"], [1.0, 2.0], "blue")
    _build(tmp_path / "green", ["green-1", "green-2", "green-3"], [7.0, 8.0, 9.0], "green")
    live = tmp_path / "live"
    os.symlink("blue", live)
    r = SparseIndex.open(live)
    assert [h.id for h in r.search({1: 1.0})] == ["blue-2", "blue-1"]
    os.symlink("green", tmp_path / "live.tmp")
    os.replace(tmp_path / "live.tmp", live)
    assert r.refresh() is True
    assert [(h.id, h.payload["src"]) for h in r.search({1: 1.0})] == [("green-3", "green"), ("green-2", "green"),
                                                                       ("green-1", "green")]
    r.close()
