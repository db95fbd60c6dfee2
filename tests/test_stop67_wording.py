"""Stop 67: wording faults found by a tester, fixed by helper-162. A ``{term_id: weight}``
dict's bool weight is named by its key, and a tuple weight a tuple; ``get`` / ``explain`` /
``delete`` of a numpy scalar id show its Python value, not numpy's repr; HTTP ``/get`` and
``/explain`` of a non-id say so in JSON's words; a Qdrant ``has_id`` takes a 1-D numpy array as
``$ids`` does; a payload key that is pandas' NA is shown once; numpy's NaT in a payload is named
the missing value it is; a Qdrant range bound that is a list is named, not called a
DatetimeRange."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

from sparsedex import FilterError, SparseIndex
from sparsedex import _http
from sparsedex.vectors import validate_embedding


def _index(ids=None):
    ix = SparseIndex(encoder=None)
    ix.add([{1: 0.5}, {1: 1.0, 2: 0.5}, {2: 1.0}], ids=ids)
    return ix


# 1. a dict's bool weight by its key -----------------------------------------------------------
def test_dict_bool_weight_named_by_its_key() -> None:
    with pytest.raises(ValueError, match=r"^vector: the weight of term 2 is a bool \(False\), not a number$"):
        validate_embedding({1: 1.0, 2: False})
    # as np.bool_'s is; lists keep their positions
    with pytest.raises(ValueError, match=r"the weight of term 1 is a bool"):
        validate_embedding({1: np.bool_(True)})
    with pytest.raises(ValueError, match=r"values\[1\] is a bool \(False\), not a weight"):
        validate_embedding(([1, 2], [1.0, False]))


# 2. a tuple weight is a tuple -----------------------------------------------------------------
def test_tuple_weight_named_a_tuple() -> None:
    with pytest.raises(ValueError, match=r"the weight of term 1 is a tuple \(\(1\.0,\)\), not a number"):
        validate_embedding({1: (1.0,)})
    with pytest.raises(ValueError, match=r"the weight of term 1 is a list \(\[1\.0\]\), not a number"):
        validate_embedding({1: [1.0]})


# 3. numpy scalar ids shown as their Python value ----------------------------------------------
@pytest.mark.parametrize("call", ["get", "explain", "delete"])
def test_numpy_id_shown_as_python_value(call) -> None:
    ints, strs = _index(), _index(ids=["a", "b", "c"])

    def run(ix, x):
        if call == "get":
            ix.get(x)
        elif call == "explain":
            ix.explain({1: 1.0}, x)
        else:
            ix.delete([x])

    with pytest.raises(KeyError) as e:
        run(ints, np.str_("1"))
    assert e.value.args[0] == "no document with id '1' in the index (a str; the index's ids are ints)"
    with pytest.raises(KeyError) as e:
        run(ints, np.int64(7))
    assert e.value.args[0] == "no document with id 7 in the index"
    with pytest.raises(KeyError) as e:
        run(strs, np.int64(1))
    assert e.value.args[0] == "no document with id 1 in the index (an int; the index's ids are strings)"
    with pytest.raises(KeyError) as e:
        run(strs, np.str_("zz"))
    assert e.value.args[0] == "no document with id 'zz' in the index"


# 4. HTTP /get and /explain of a non-id, in JSON's words ---------------------------------------
@pytest.mark.parametrize(("given", "said"), [
    (None, "null"), (True, "true"), (1.5, "the number 1.5"), ([1], "a list"), ({}, "an object"),
])
def test_http_id_error_in_json_words(given, said) -> None:
    ix = _index()
    want = f'"id" must be an integer or a string, got {said}'
    assert _http.respond(ix, "/get", json.dumps({"id": given}).encode()) == (400, {"error": want})
    body = {"query": {"indices": [1], "values": [1.0]}, "id": given}
    assert _http.respond(ix, "/explain", json.dumps(body).encode()) == (400, {"error": want})
    # ids still answer
    assert _http.respond(ix, "/get", b'{"id": 1}')[0] == 200


# 5. a Qdrant has_id takes a 1-D numpy array, as $ids does -------------------------------------
def test_qdrant_has_id_takes_numpy_array() -> None:
    ix = _index()
    hits = ix.search({1: 1.0, 2: 1.0}, query_filter={"must": [{"has_id": np.array([1, 2])}]})
    assert sorted(h.id for h in hits) == [1, 2]
    assert sorted(h.id for h in ix.search({1: 1.0, 2: 1.0}, filter={"$ids": np.array([1, 2])})) == [1, 2]
    with pytest.raises(FilterError, match=r"has_id must be a list of ids, got ndarray"):
        ix.search({1: 1.0}, query_filter={"must": [{"has_id": np.array([[1, 2]])}]})


# 6. a payload key that is pandas' NA, shown once ----------------------------------------------
@pytest.mark.parametrize(("key", "said"), [(pd.NA, "pandas' <NA>"), (pd.NaT, "pandas' NaT")])
def test_payload_missing_key_shown_once(key, said) -> None:
    ix = SparseIndex(encoder=None)
    with pytest.raises(ValueError) as e:
        ix.add([{1: 1.0}], payloads=[{key: 1}])
    assert str(e.value).endswith(f"keys must be strings, got a missing value ({said})")
    with pytest.raises(ValueError, match=r"keys must be strings, got NoneType None$"):
        ix.add([{1: 1.0}], payloads=[{None: 1}])


# 7. numpy's NaT in a payload is a missing value -----------------------------------------------
@pytest.mark.parametrize("nat", [np.datetime64("NaT"), np.datetime64("NaT", "ns"), np.timedelta64("NaT")])
def test_payload_numpy_nat_named_missing(nat) -> None:
    ix = SparseIndex(encoder=None)
    with pytest.raises(ValueError) as e:
        ix.add([{1: 1.0}], payloads=[{"a": [nat]}])
    assert str(e.value).endswith(
        f"at a[0]: a missing value ({nat!r}) is not a JSON value (for null, store None)")
    # a datetime that is no missing value is still refused as before
    with pytest.raises(ValueError, match=r"at a: datetime64 is not a JSON value$"):
        ix.add([{1: 1.0}], payloads=[{"a": np.datetime64("2020-01-01")}])


# 8. a Qdrant range bound that is a list is named ----------------------------------------------
def test_qdrant_range_bound_of_other_type() -> None:
    ix = _index()

    def search(bound):
        ix.search({1: 1.0}, query_filter={"must": [{"key": "x", "range": {"gte": bound}}]})

    for bound, kind in (([1], "a list"), ({"a": 1}, "a dict"), (True, "a bool")):
        with pytest.raises(FilterError) as e:
            search(bound)
        assert str(e.value) == (f"query_filter at must[0].range: the gte bound of a range on 'x' must be "
                                f"a number, got {kind}")
    # a datetime-like bound is a DatetimeRange's, still named so
    for bound in ("2024-01-01T00:00:00Z", pd.Timestamp(0), np.datetime64("2020-01-01")):
        with pytest.raises(FilterError, match=re.escape("DatetimeRange is not supported")):
            search(bound)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_sharded_numpy_id_shown_as_python_value(tmp_path) -> None:
    ray = pytest.importorskip("ray", reason="the ray extra is not installed: pip install 'sparsedex[ray]'")
    import logging

    import sparsedex.ray as sdr

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True,
             logging_level=logging.WARNING)
    try:
        rows = [{"id": i, "indices": [1 + i % 5, 7], "values": [1.0, 0.5]} for i in range(10)]
        sdr.build_shards(ray.data.from_items(rows), tmp_path / "sh", num_shards=2)
        with sdr.ShardedIndex(tmp_path / "sh") as sh:
            msg = "no document with id '3' in the index (a str; the index's ids are ints)"
            for run in (lambda x: sh.get(x), lambda x: sh.explain({7: 1.0}, x), lambda x: sh.delete([x])):
                with pytest.raises(KeyError) as e:
                    run(np.str_("3"))
                assert e.value.args[0] == msg
                with pytest.raises(KeyError) as e:
                    run(np.int64(99))
                assert e.value.args[0] == "no document with id 99 in the index"
    finally:
        ray.shutdown()


# helper-163: numpy datetime64 / timedelta64 in payloads and filters ---------------------------


def test_numpy_timedelta_and_nat_in_payloads_and_filters_are_named():
    """np.timedelta64 is a numpy integer: int() of it raised Python's own TypeError in a payload
    and in a filter; a NaT in filter= read "datetime64 is not a JSON value", and in a Qdrant
    filter "got a NoneType" (its .item() is None), as if null were given."""
    from sparsedex.filters import FilterError, PayloadError

    ix = SparseIndex(encoder=None)
    ix.add([{1: 1.0}], payloads=[{"a": 1}])
    with pytest.raises(PayloadError, match=r"at a: timedelta64 is not a JSON value"):
        ix.add([{1: 1.0}], payloads=[{"a": np.timedelta64(1, "s")}])
    with pytest.raises(FilterError, match=r"^filter at a: timedelta64 is not a JSON value"):
        ix.search({1: 1.0}, filter={"a": np.timedelta64(1, "s")})
    for nat in (np.datetime64("NaT"), np.timedelta64("NaT")):
        for flt, at in (({"a": nat}, "a"), ({"a": {"$in": [1, nat]}}, r"a\.\$in\[1\]")):
            with pytest.raises(FilterError, match=rf"^filter at {at}: a missing value \(.*NaT.*\) is not a JSON "
                                                  r"value \(for null, use None\)$"):
                ix.search({1: 1.0}, filter=flt)
        for qf, at in (({"must": [{"key": "a", "range": {"gte": nat}}]}, r"must\[0\]\.range\.gte"),
                       ({"must": [{"key": "a", "match": {"value": nat}}]}, r"must\[0\]\.match"),
                       ({"must": [{"has_id": [1, nat]}]}, r"must\[0\]\.has_id\[1\]")):
            with pytest.raises(FilterError, match=rf"^query_filter at {at}: got a missing value \(.*NaT.*\)"):
                ix.search({1: 1.0}, query_filter=qf)
