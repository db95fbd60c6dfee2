"""Persisted calibration: a segment's approximate-search calibration is written to its
calibration file ``seg-<N>.cal`` and read back at open, so reopening an index does not
calibrate it again; a damaged or foreign file is ignored (the segment is calibrated again and
the file rewritten); a merge's new segment is calibrated fresh and the merged-away segments'
files are collected with them. Calibrations are counted through
``_core.calibration_counters()`` (computed, files written, files read), never by timing."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from sparsedex import MergePolicy, SparseIndex
from sparsedex import _core


def _corpus(n: int, seed: int = 0, vocab: int = 3000, nnz: int = 40):
    rng = np.random.default_rng(seed)
    p = 1.0 / np.arange(1, vocab + 1) ** 0.9
    p /= p.sum()
    docs = []
    for _ in range(n):
        t = np.unique(rng.choice(vocab, nnz, p=p))
        docs.append((t.tolist(), rng.gamma(1.5, 0.6, len(t)).round(3).tolist()))
    return docs


QUERIES = _corpus(40, seed=5, nnz=25)  # one query-length bucket of 40: enough to calibrate


def _approx(ix):
    return [[(h.id, round(h.score, 5)) for h in ix.search(q, k=10, algorithm="approximate", target_recall=0.95)]
            for q in QUERIES]


def _made():
    return _core.calibration_counters()[0]


def _cal_files(path):
    return sorted(p.name for p in path.iterdir() if p.name.endswith(".cal"))


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """An index directory with one large segment (approximate) and one small (exact)."""
    path = tmp_path_factory.mktemp("calfile") / "i"
    ix = SparseIndex.create(path, merge_policy=MergePolicy(factor=0))
    ix.add(_corpus(9000))
    ix.commit()
    ix.add(_corpus(300, seed=1))
    ix.commit()
    ix.close()
    return path


def _copy(built, tmp_path):
    dst = tmp_path / "i"
    shutil.copytree(built, dst)
    return dst


def test_reopen_does_not_recalibrate(built, tmp_path):
    path = _copy(built, tmp_path)
    assert _cal_files(path) == []
    ix = SparseIndex.open(path)
    m0, w0, _ = _core.calibration_counters()
    first = _approx(ix)
    m1, w1, _ = _core.calibration_counters()
    assert m1 == m0 + 1 and w1 == w0 + 1  # only the large segment is calibrated, and written
    large = [s["name"] for s in ix.segments() if s["documents"] >= 8192]
    assert _cal_files(path) == [f"{large[0]}.cal"]
    rep = ix.calibrate(target_recall=0.95)
    ix.close()
    assert _made() == m1  # calibrate() without queries keeps an existing calibration

    _, _, l0 = _core.calibration_counters()
    ix = SparseIndex.open(path)
    assert _core.calibration_counters()[2] == l0 + 1  # read at open
    assert _approx(ix) == first
    assert ix.calibrate(target_recall=0.95) == rep  # the same calibration, reported the same
    assert _made() == m1  # no calibration after reopening
    ix.close()


def test_calibrate_writes_the_file(built, tmp_path):
    path = _copy(built, tmp_path)
    ix = SparseIndex.open(path)
    m0 = _made()
    rep = ix.calibrate(QUERIES, target_recall=0.97)
    # one on the queries, and one on pseudo-queries of the buckets they leave (stop 66)
    pseudo = any(b["calibrated_on"] == "pseudo-queries" for r in rep for b in r["buckets"])
    assert pseudo and _made() == m0 + 2 and len(_cal_files(path)) == 1
    ix.close()
    ix = SparseIndex.open(path)
    again = ix.calibrate(target_recall=0.97)
    assert again == rep and any(r.get("calibrated_on") == "queries" for r in again)
    _approx(ix)
    assert _made() == m0 + 2
    ix.close()


def test_a_query_calibration_is_not_replaced_by_an_older_handle(built, tmp_path):
    """A handle opened before another one calibrated on queries takes that calibration file
    on its first approximate search, instead of calibrating on pseudo-queries and overwriting
    it (newcomer13 F4)."""
    path = _copy(built, tmp_path)
    older = SparseIndex.open(path)  # no calibration file yet when it opens
    other = SparseIndex.open(path)
    other.calibrate(QUERIES, target_recall=0.97)
    m0 = _made()
    _approx(older)
    assert _made() == m0  # it read the file rather than calibrate
    assert any(r.get("calibrated_on") == "queries" for r in older.calibrate(target_recall=0.97))
    older.close()
    other.close()
    again = SparseIndex.open(path)
    assert any(r.get("calibrated_on") == "queries" for r in again.calibrate(target_recall=0.97))
    again.close()


def test_calibrate_without_queries_takes_another_handles_query_calibration(built, tmp_path):
    """`calibrate()` without queries on a handle opened before another one calibrated on
    queries takes that calibration file, as a first approximate search does, instead of
    calibrating on pseudo-queries and overwriting it (newcomer15 L1)."""
    path = _copy(built, tmp_path)
    older = SparseIndex.open(path)
    other = SparseIndex.open(path)
    other.calibrate(QUERIES, target_recall=0.97)
    m0 = _made()
    rep = older.calibrate(target_recall=0.97)
    assert _made() == m0  # read the file, no calibration
    assert any(r.get("calibrated_on") == "queries" for r in rep)
    older.close()
    other.close()
    again = SparseIndex.open(path)
    assert any(r.get("calibrated_on") == "queries" for r in again.calibrate(target_recall=0.97))
    again.close()


@pytest.mark.parametrize("damage", ["flip", "truncate", "foreign", "empty"])
def test_damaged_file_is_recalibrated_and_rewritten(built, tmp_path, damage):
    path = _copy(built, tmp_path)
    ix = SparseIndex.open(path)
    want = _approx(ix)
    ix.close()
    (cal,) = _cal_files(path)
    f = path / cal
    data = bytearray(f.read_bytes())
    if damage == "flip":
        data[len(data) // 2] ^= 0x10
    elif damage == "truncate":
        data = data[: len(data) - 64]
    elif damage == "empty":
        data = bytearray()
    else:  # the file of another index's segment of the same name
        other = tmp_path / "other"
        o = SparseIndex.create(other)
        o.add(_corpus(9000, seed=3))
        o.commit()
        o.calibrate()
        o.close()
        data = bytearray((other / cal).read_bytes())
    f.write_bytes(bytes(data))

    m0, _, l0 = _core.calibration_counters()
    ix = SparseIndex.open(path)
    assert _core.calibration_counters()[2] == l0  # not used
    # Recalibrated: the same grid, seed and recalls, but costs are search times measured
    # again, so a point of nearly equal cost may be chosen instead: the results are approximate
    # results of the same target, not necessarily the same ones.
    got = _approx(ix)
    assert len(got) == len(want) and all(len(g) == len(w) for g, w in zip(got, want))
    assert _made() == m0 + 1
    ix.close()
    ix = SparseIndex.open(path)  # rewritten: read back now
    assert _core.calibration_counters()[2] == l0 + 1
    _approx(ix)
    assert _made() == m0 + 1
    ix.close()


def test_merge_calibrates_the_new_segment_and_collects_the_old_file(built, tmp_path):
    path = _copy(built, tmp_path)
    ix = SparseIndex.open(path)
    _approx(ix)
    (old,) = _cal_files(path)
    m0 = _made()
    ix.merge(1)
    (seg,) = ix.segments()
    assert seg["name"] != old[: -len(".cal")]
    assert old not in _cal_files(path)  # collected with its segment
    # Its members were calibrated, so the merge calibrated the merged segment and wrote its
    # file: the first approximate search after it does not wait for a calibration (7-15 s on
    # debian, helper-99)
    assert _made() == m0 + 1
    assert _cal_files(path) == [f"{seg['name']}.cal"]
    _approx(ix)
    assert _made() == m0 + 1
    ix.close()
    ix = SparseIndex.open(path)
    _approx(ix)
    assert _made() == m0 + 1
    ix.close()


def test_merge_of_segments_never_searched_approximately_does_not_calibrate(built, tmp_path):
    path = _copy(built, tmp_path)
    assert _cal_files(path) == []
    ix = SparseIndex.open(path)
    m0 = _made()
    ix.merge(1)
    assert _made() == m0 and _cal_files(path) == []
    ix.close()


def test_read_only_directory_still_searches(built, tmp_path):
    import os

    path = _copy(built, tmp_path)
    os.chmod(path, 0o555)
    try:
        if os.access(path, os.W_OK):
            pytest.skip("running with permissions that ignore a read-only directory")
        ix = SparseIndex.open(path)
        m0, w0, _ = _core.calibration_counters()
        assert len(_approx(ix)) == len(QUERIES)
        assert _core.calibration_counters()[:2] == (m0 + 1, w0)  # calibrated in memory only
        ix.close()
    finally:
        os.chmod(path, 0o755)


def test_segment_view_calibrate_on_queries():
    from sparsedex._segment import SegmentView

    docs = _corpus(9000, seed=11)
    sv = SegmentView.build(docs)
    m0 = _made()
    assert sv.calibrate(QUERIES) is True
    # one on the queries, and one on pseudo-queries of the buckets they leave (stop 66)
    assert _made() == m0 + 2
    for q in QUERIES[:5]:  # searches use it: no further calibration
        ids, scores = sv.search(q, k=10, algorithm="approximate", target_recall=0.97)
        assert len(ids) == 10 and np.all(np.diff(scores) <= 0)
    assert _made() == m0 + 2
    assert SegmentView.build(docs[:100]).calibrate(QUERIES) is False  # small: searched exactly
    assert SegmentView.build(docs, store_vectors=False).calibrate(QUERIES) is False
    with pytest.raises(ValueError, match="query 1"):
        sv.calibrate([([1], [1.0]), ([2], [-1.0])])


def test_save_carries_the_calibration(built, tmp_path):
    """save() writes each calibrated segment's file beside its copy, rebound to the copy: the
    saved index answers approximate searches without calibrating again, with the same hits."""
    path = _copy(built, tmp_path)
    ix = SparseIndex.open(path)
    first = _approx(ix)
    dest = tmp_path / "saved"
    ix.save(dest)
    ix.close()
    large = [s["name"] for s in SparseIndex.open(dest).segments() if s["documents"] >= 8192]
    assert _cal_files(dest) == [f"{large[0]}.cal"]
    m0, _, l0 = _core.calibration_counters()
    saved = SparseIndex.open(dest)
    assert _approx(saved) == first
    m1, _, l1 = _core.calibration_counters()
    assert m1 == m0 and l1 == l0 + 1  # read from the saved file, not computed
    saved.close()
    # saved over again (the destination's own counters, new names): still carried
    again = SparseIndex.open(path)
    _approx(again)
    again.save(dest)
    again.close()
    names = [s["name"] for s in SparseIndex.open(dest).segments() if s["documents"] >= 8192]
    assert _cal_files(dest) == [f"{names[0]}.cal"] and names != large


@pytest.mark.parametrize("kind", ["fifo", "devzero", "huge"])
def test_a_calibration_file_that_is_no_regular_small_file_is_ignored(built, tmp_path, kind):
    """A FIFO (whose open would block forever), a link to /dev/zero (which never ends) or a
    regular file above the size any calibration has are ignored without reading them: the
    index opens, searches and calibrates again (in a child process, so that a hang fails the
    test instead of stalling the suite)."""
    import os
    import subprocess
    import sys

    path = _copy(built, tmp_path)
    ix = SparseIndex.open(path)
    _approx(ix)  # calibrates and writes the file
    ix.close()
    (cal,) = _cal_files(path)
    f = path / cal
    f.unlink()
    if kind == "fifo":
        os.mkfifo(f)
    elif kind == "devzero":
        f.symlink_to("/dev/zero")
    else:
        f.write_bytes(b"\0" * (2 << 20))
    code = (
        "import sys; from sparsedex import SparseIndex, _core\n"
        f"ix = SparseIndex.open({str(path)!r})\n"
        "hits = ix.search(([1, 2, 3], [1.0, 0.5, 0.2]), k=10, algorithm='approximate')\n"
        "print(len(hits), _core.calibration_counters()[0])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    n_hits, made = map(int, out.stdout.split())
    assert n_hits == 10 and made == 1  # calibrated again, the file not used


def test_calibrate_after_open_is_the_warm_up(built, tmp_path):
    """`calibrate()` on a reopened index reads its calibration file without calibrating again
    and makes the high layer the first approximate search would otherwise make (stop 33: the
    first search after a reopen paid for it, 0.33 s at 1M documents)."""
    path = _copy(built, tmp_path)
    ix = SparseIndex.open(path)
    _approx(ix)  # calibrates and writes the file
    ix.close()
    ix = SparseIndex.open(path)
    big = ix._snap().states[0].segment.index
    before = big.stats()["derived_bytes"]
    m0 = _made()
    ix.calibrate()
    assert _made() == m0  # the file, not a new calibration
    made = big.stats()["derived_bytes"]
    assert made > before + 5 * 1_000, (before, made)  # the layer: 5 bytes per layered posting
    want = _approx(ix)
    assert big.stats()["derived_bytes"] == made  # searches made nothing more
    ix.close()
    fresh = SparseIndex.open(path)
    assert _approx(fresh) == want  # the same results as without the warm-up
    fresh.close()


def test_refresh_takes_a_calibration_file_another_handle_rewrote(built, tmp_path):
    """helper-152: a reader calibrated on pseudo-queries kept them after another process (here
    another handle) calibrated the index on queries and rewrote the segment's file, refresh()
    or not, until it reopened: a server's handle never took the new calibration. refresh()
    now takes a rewritten calibration file; a damaged rewrite leaves the calibration as it is."""
    path = _copy(built, tmp_path)
    reader = SparseIndex.open(path)
    first = reader.calibrate(target_recall=0.97)
    assert any(r["calibrated_on"] == "pseudo-queries" for r in first)
    other = SparseIndex.open(path)
    made = other.calibrate(QUERIES, target_recall=0.97)
    other.close()
    assert reader.calibrate(target_recall=0.97) == first  # no refresh yet: as it was
    reader.refresh()
    assert reader.calibrate(target_recall=0.97) == made
    fresh = SparseIndex.open(path)
    assert _approx(reader) == _approx(fresh)
    fresh.close()
    # a refresh with nothing rewritten reads nothing; a damaged file is not taken
    _, _, l0 = _core.calibration_counters()
    reader.refresh()
    assert _core.calibration_counters()[2] == l0
    (cal,) = [path / n for n in _cal_files(path)]
    cal.write_bytes(b"damaged")
    reader.refresh()
    assert reader.calibrate(target_recall=0.97) == made
    reader.close()
