"""A Ctrl-C during a long engine call (a build with BP reordering, a commit that builds a large
segment, a calibration) stops it within a fraction of a second, instead of when the call ends
(newcomer16 M1: 45-90 s), and leaves the index as it was: the call runs on a thread of its own
while the main thread polls for signals, and cancels it (core `cancel`, bindings `enter_long`).

The signal is real (SIGINT raised in this process from a timer thread), as a terminal's Ctrl-C
is; the workloads are sized to take seconds here, and each test first measures its workload
uninterrupted so that it can tell an early stop from a call that simply ended.
"""

import os
import signal
import threading
import time

import numpy as np
import pytest

from sparsedex import MergePolicy, SparseIndex
from sparsedex import _core
from sparsedex._segment import SegmentView

pytestmark = pytest.mark.skipif(
    not hasattr(signal, "raise_signal") or os.name != "posix", reason="needs POSIX signals"
)


def _corpus(n):
    indptr, indices, values = _core.synthetic_corpus(n, 1, 7)[:3]
    return indptr, indices, values


def _interrupt_after(seconds):
    """Raise SIGINT in this process after `seconds`; returns a list that gets the time it did."""
    sent = []

    def fire():
        sent.append(time.perf_counter())
        signal.raise_signal(signal.SIGINT)

    t = threading.Timer(seconds, fire)
    t.daemon = True
    t.start()
    return sent, t


def _timed(f):
    t = time.perf_counter()
    f()
    return time.perf_counter() - t


@pytest.fixture(scope="module")
def big():
    return _corpus(400_000)


def test_ctrl_c_stops_a_build_with_bp_reordering_at_once(big):
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    full = _timed(lambda: SegmentView.build(big, quantization="u8", store_vectors=False, reorder="bp"))
    if full < 1.5:
        pytest.skip(f"the build takes {full:.2f} s here: too quick to interrupt half-way")
    sent, timer = _interrupt_after(0.3)
    t0 = time.perf_counter()
    with pytest.raises(KeyboardInterrupt):
        SegmentView.build(big, quantization="u8", store_vectors=False, reorder="bp")
    raised = time.perf_counter()
    timer.join()
    assert sent, "the signal was not sent"
    # raised soon after the signal, and well before the build would have ended
    assert raised - sent[0] < 0.5 + 0.1 * full, (raised - sent[0], full)
    assert raised - t0 < 0.6 * full, (raised - t0, full)
    # and the next call works
    ix = SegmentView.build(_corpus(1000), quantization="u8", store_vectors=False, reorder="bp")
    assert ix.stats()["documents"] == 1000


def test_ctrl_c_during_a_commit_leaves_nothing_committed_and_the_retry_commits(tmp_path, big):
    indptr, indices, values = big
    n = len(indptr) - 1
    path = tmp_path / "i"
    ix = SparseIndex.create(path, merge_policy=MergePolicy(factor=0))
    ix.add((indptr, indices, values))
    # how long the commit's segment build takes, measured on a twin
    twin = SparseIndex.create(tmp_path / "twin", merge_policy=MergePolicy(factor=0))
    twin.add((indptr, indices, values))
    full = _timed(twin.commit)
    twin.close()
    if full < 1.5:
        pytest.skip(f"the commit takes {full:.2f} s here: too quick to interrupt half-way")
    sent, timer = _interrupt_after(0.3)
    with pytest.raises(KeyboardInterrupt):
        ix.commit()
    raised = time.perf_counter()
    timer.join()
    assert raised - sent[0] < 0.5 + 0.1 * full, (raised - sent[0], full)
    other = SparseIndex.open(path)
    assert len(other) == 0  # nothing committed
    other.close()
    assert not [f for f in os.listdir(path) if ".tmp" in f]
    ix.commit()  # the retry commits the staged documents
    assert len(ix) == n
    q_idx, q_val = indices[:20], values[:20]
    hits = ix.search((np.unique(q_idx), np.ones(len(np.unique(q_idx)), np.float32)), k=5)
    assert len(hits) == 5
    ix.close()
    reopened = SparseIndex.open(path)
    assert len(reopened) == n
    reopened.close()


def test_ctrl_c_stops_a_calibration(big):
    a = _core.synthetic_corpus(len(big[0]) - 1, 400, 7)
    queries = (a[3], a[4], a[5])
    seg = SegmentView.build(big, quantization="u8", store_vectors=True, reorder=False)
    full = _timed(lambda: seg.calibrate(queries))
    if full < 1.0:
        pytest.skip(f"calibration takes {full:.2f} s here: too quick to interrupt half-way")
    seg = SegmentView.build(big, quantization="u8", store_vectors=True, reorder=False)
    sent, timer = _interrupt_after(0.3)
    with pytest.raises(KeyboardInterrupt):
        seg.calibrate(queries)
    raised = time.perf_counter()
    timer.join()
    assert raised - sent[0] < 0.5 + 0.1 * full, (raised - sent[0], full)
    assert seg.calibrate(queries)  # and the next one runs in full


def test_off_the_main_thread_a_long_call_runs_as_before():
    out = []
    t = threading.Thread(target=lambda: out.append(
        SegmentView.build(_corpus(2000), quantization="u8", store_vectors=False, reorder="bp")))
    t.start()
    t.join()
    assert out and out[0].stats()["documents"] == 2000
