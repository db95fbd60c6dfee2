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


def test_running_out_of_file_descriptors_is_not_a_corrupt_index(tmp_path):
    """An index of more segments than the process may open files is a sound index: opening it
    raises an OSError that says so (EMFILE), not a CorruptIndexError naming a documents file or
    CURRENT (breaker39)."""
    import subprocess
    import sys
    import textwrap

    from sparsedex import MergePolicy

    d = tmp_path / "many"
    w = SparseIndex(None, path=d, merge_policy=MergePolicy(factor=10**6))
    for s in range(60):
        w.add([{1: 1.0 + s}], ids=[s], payloads=[{"s": s}])
        w.commit()
    assert len(w.segments()) == 60
    w.close()
    code = textwrap.dedent(f"""
        import errno, os, resource, sys
        from sparsedex import SparseIndex, CorruptIndexError
        open_now = len(os.listdir("/proc/self/fd"))
        resource.setrlimit(resource.RLIMIT_NOFILE, (open_now + 40, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
        try:
            SparseIndex.open({str(d)!r})
        except CorruptIndexError as e:
            print("CORRUPT", e); sys.exit(1)
        except OSError as e:
            assert e.errno == errno.EMFILE, e
            print("OSERROR", e); sys.exit(0)
        print("OPENED"); sys.exit(2)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "too many open files" in out.stdout
    with SparseIndex.open(d) as r:  # and the index is sound
        assert len(r) == 60


def test_cli_serve_names_a_busy_port(tmp_path, capsys):
    """`sparsedex serve --port P` where P is taken: a one-line error naming --port (was the bare
    "[Errno 98] Address already in use")."""
    import socket

    from sparsedex import cli

    with SparseIndex.create(tmp_path / "ix") as ix:
        ix.add([{1: 1.0}])
        ix.commit()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        rc = cli.main(["serve", str(tmp_path / "ix"), "--port", str(port)])
    err = capsys.readouterr().err
    assert rc != 0 and f"--port {port}" in err and "in use" in err, err


def test_bm25_stats_missing_a_query_term_name_the_word():
    """collection_stats= made for other words than the query's: the error names the query's
    missing words (it named a term id, while the user passed words), in search, search_batch
    (with the query's position) and explain."""
    import pytest

    ix = SparseIndex("bm25")
    ix.add(["measuring the band", "music band", "a measured tempo"])
    st = ix.collection_stats(["measur"])
    with pytest.raises(ValueError, match=r"no document frequency for 'band', 'music' of the query"):
        ix.search("measure music band", collection_stats=st)
    with pytest.raises(ValueError, match=r"'band', 'music' of query 1:"):
        ix.search_batch(["measure", "music band"], collection_stats=st)
    with pytest.raises(ValueError, match=r"'music' of the query"):
        ix.explain("music measure", 0, collection_stats=st)
    assert [h.id for h in ix.search("measure", collection_stats=st)] == [0, 2]


def test_refresh_follows_a_symbolic_link_switched_to_an_updated_copy(tmp_path):
    """Blue/green with `cp -r`: green is a copy of blue (the same index uuid) and each takes
    its own commit (the same generation, the same new segment name): refresh() said nothing
    changed, and with generations apart it mixed green's engine segment with blue's ids and
    payloads (recheck39). Segments are now reused only where their files are the same."""
    import os
    import shutil

    blue, green, live = tmp_path / "blue", tmp_path / "green", tmp_path / "live"
    _build(blue, ["a0", "a1"], [1.0, 2.0], "base")
    shutil.copytree(blue, green)
    for d, i, tag in ((blue, "x", "blue"), (green, "y", "green")):
        with SparseIndex.open(d) as w:
            w.add([{1: 5.0}], ids=[i], payloads=[{"v": tag}])
            w.commit()
    os.symlink("blue", live)
    r = SparseIndex.open(live)
    assert sorted(r.ids()) == ["a0", "a1", "x"]
    os.symlink("green", tmp_path / "t")
    os.replace(tmp_path / "t", live)
    assert r.refresh() is True
    assert sorted(r.ids()) == ["a0", "a1", "y"]
    assert [(h.id, h.payload) for h in r.search({1: 1.0}, k=1)] == [("y", {"v": "green"})]
    # generations apart: green one commit further, switched back and forth
    with SparseIndex.open(green) as w:
        w.add([{1: 9.0}], ids=["z"], payloads=[{"v": "green2"}])
        w.commit()
    os.symlink("blue", tmp_path / "t")
    os.replace(tmp_path / "t", live)
    assert r.refresh() is True and sorted(r.ids()) == ["a0", "a1", "x"]
    os.symlink("green", tmp_path / "t")
    os.replace(tmp_path / "t", live)
    assert r.refresh() is True
    assert [(h.id, h.payload["v"]) for h in r.search({1: 1.0}, k=2)] == [("z", "green2"), ("y", "green")]
    assert r.get("y").payload == {"v": "green"} and sorted(r.ids()) == ["a0", "a1", "y", "z"]
    r.close()
