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
