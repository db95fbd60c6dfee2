"""Stop 65: faults found by helper-151. explain() agrees with search() on a document whose
float32 score underflows to 0."""

import pytest

from sparsedex import SparseIndex
from sparsedex._segment import SegmentView


@pytest.mark.parametrize("quantization", ["float", "u8"])
def test_explain_underflow_is_no_match(quantization):
    # 1e-30 * 1e-30 is 0 in float32: search never returns "c", and explain called it matched
    # ("score 0.0000 from 1 matched terms"); a shared term that contributes 0 is no match
    ix = SparseIndex(encoder=None, quantization=quantization)
    ix.add([{1: 1e-30, 2: 1.0}, {2: 0.5}, {1: 1e-30}], ids=["a", "b", "c"])
    assert ix.search({1: 1e-30}, k=10) == []
    e = ix.explain({1: 1e-30}, "c")
    assert e.score == 0.0 and e.matches == []
    assert "from 0 matched terms" in str(e)
    e = ix.explain({1: 1e-30, 2: 1.0}, "a")
    assert [m.term_id for m in e.matches] == [2] and e.score == 1.0
    assert [h.id for h in ix.search({1: 1e-30, 2: 1.0}, k=10)] == ["a", "b"]


def test_segment_view_explain_underflow_is_no_match():
    ix = SegmentView.build([([1], [1e-30])], ids=[10], quantization="float")
    ids, _ = ix.search(([1], [1e-30]), k=5)
    assert ids.tolist() == []
    assert ix.explain(([1], [1e-30]), 10) == []
