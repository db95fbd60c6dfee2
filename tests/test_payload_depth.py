"""Payload nesting on add's fast path: a bound from character counts stands in for the exact
depth scan when it is at most the limit, so the limit must hold exactly as before: 64 levels
accepted, 65 refused naming the document, whatever else is in the batch."""

from __future__ import annotations

import json
import random

import pytest

from sparsedex import SparseIndex
from sparsedex import _validate
from sparsedex.docs import payloads_json
from sparsedex.filters import MAX_DEPTH, PayloadError

V = ([1], [1.0])


def deep(n: int, leaf: object = 1) -> dict:
    d: dict = {"x": leaf}
    for _ in range(n - 1):
        d = {"a": d}
    return d


def deep_list(n: int) -> dict:
    d: object = 1
    for _ in range(n - 1):
        d = [d]
    return {"x": d}


@pytest.mark.parametrize("make", [deep, deep_list])
def test_depth_limit_in_a_batch_of_flat_payloads(make) -> None:
    ix = SparseIndex(None)
    flat = [{"b": i, "s": "{[{[" * 30} for i in range(50)]  # brackets inside strings only raise the bound
    ix.add([V] * 51, ids=list(range(51)), payloads=[*flat, make(MAX_DEPTH)])
    assert ix.get(50).payload == make(MAX_DEPTH)
    with pytest.raises(PayloadError, match=f"document 50 .*nested more than {MAX_DEPTH} levels deep"):
        ix.add([V] * 51, ids=list(range(100, 151)), payloads=[*flat, None, make(MAX_DEPTH + 1)][1:])
    assert len(ix) == 51  # the refused add changed nothing


def test_bound_agrees_with_the_exact_depth() -> None:
    rng = random.Random(0)

    def value(d: int) -> object:
        r = rng.random()
        if d > 0 and r < 0.3:
            return {f"k{i}": value(d - 1) for i in range(rng.randint(0, 3))}
        if d > 0 and r < 0.5:
            return [value(d - 1) for _ in range(rng.randint(0, 3))]
        return rng.choice([1, "x{", "]", None, 2.5, True])

    for _ in range(300):
        items = [None if rng.random() < 0.2 else {"p": value(rng.randint(0, 70))} for _ in range(rng.randint(0, 6))]
        stored = payloads_json(items)
        text = "[" + ",".join("null" if p is None else p for p in stored) + "]"
        assert _validate._depth_ok(text, items) == (_validate._json_depth(text) - 1 <= MAX_DEPTH), text[:200]
        assert json.loads(text) == items


@pytest.mark.parametrize("items, ok", [
    ([deep(MAX_DEPTH)], True),  # bound exactly the limit: the fast path answers
    ([deep(MAX_DEPTH + 1)], False),
    ([None] * 3 + [deep_list(MAX_DEPTH + 1)], False),
    ([{}] * 3 + [deep(MAX_DEPTH + 1)], False),
    ([{}] * 3 + [deep(MAX_DEPTH)], True),
    ([deep_list(MAX_DEPTH)], True),
])
def test_bound_at_the_limit_without_bracket_strings(items, ok) -> None:
    """Payloads whose only brackets are their structure: the character-count bound is tight,
    so the limit is decided on the fast path itself, and must still be exact."""
    stored = payloads_json(items)
    text = "[" + ",".join("null" if p is None else p for p in stored) + "]"
    assert _validate._depth_ok(text, items) is ok
    ix = SparseIndex(None)
    if ok:
        ix.add([V] * len(items), payloads=items)
    else:
        with pytest.raises(PayloadError, match=f"document {len(items) - 1} .*nested more than {MAX_DEPTH} levels"):
            ix.add([V] * len(items), payloads=items)


def test_bound_never_below_the_exact_depth_near_the_limit() -> None:
    """Chains of depth 60..70 mixed with shallow payloads: the bound is never below the exact
    depth (else a too-deep payload would pass), and the answer equals the exact scan's."""
    rng = random.Random(1)
    for _ in range(200):
        items: list = []
        for _ in range(rng.randint(1, 5)):
            r = rng.random()
            if r < 0.2:
                items.append(None)
            elif r < 0.5:
                items.append({"s": rng.randint(0, 9)})
            else:
                items.append((deep if rng.random() < 0.5 else deep_list)(rng.randint(60, 70)))
        if all(p is None for p in items):
            continue
        stored = payloads_json(items)
        text = "[" + ",".join("null" if p is None else p for p in stored) + "]"
        exact = _validate._json_depth(text) - 1
        dicts = len(items) - items.count(None)
        assert text.count("{") + text.count("[") - dicts >= exact
        assert _validate._depth_ok(text, items) == (exact <= MAX_DEPTH)
