"""recheck40b lows: Bm25Stats.sum checks its additions (a u64 overflow wrapped silently) and
takes any iterable (a generator was refused); Bm25Stats compares by value, and its words
follow their terms when the terms come unsorted; ``sparsedex serve`` answers an HTTP/0.9
request line at once (it waited for headers until the idle timeout)."""

from __future__ import annotations

import json
import socket
import threading
import time

import pytest

from sparsedex import Bm25Stats, SparseIndex
from sparsedex import _http

U64_MAX = 2**64 - 1


def test_sum_overflow_is_a_value_error() -> None:
    small = Bm25Stats(5, 10, [1, 2], [1, 0])
    cases = (
        (Bm25Stats(U64_MAX, 1, [1, 2], [0, 0]), "document count"),
        (Bm25Stats(1, U64_MAX, [1, 2], [0, 0]), "total length"),
    )
    for big, what in cases:
        with pytest.raises(ValueError, match=f"the summed {what} overflows 64 bits"):
            Bm25Stats.sum([big, small])
    # statistics with words add up by word: checked the same way
    w = Bm25Stats(U64_MAX, U64_MAX - 1, [0], [U64_MAX - 1], words=["fox"])
    with pytest.raises(ValueError, match="the summed document count overflows 64 bits"):
        Bm25Stats.sum([w, Bm25Stats(1, 1, [0], [1], words=["fox"])])
    with pytest.raises(ValueError, match="the summed total length overflows 64 bits"):
        Bm25Stats.sum([Bm25Stats(1, U64_MAX, [0], [0], words=["fox"]), Bm25Stats(1, 1, [0], [0], words=["dog"])])
    # up to the limit is fine
    top = Bm25Stats.sum([Bm25Stats(U64_MAX - 5, 0, [1, 2], [0, 0]), small])
    assert (top.n_docs, top.total_len, top.df.tolist()) == (U64_MAX, 10, [1, 0])


def test_sum_takes_any_iterable_and_names_a_bad_part() -> None:
    shards = [Bm25Stats(3, 9, [1, 2], [1, 2]), Bm25Stats(4, 8, [1, 2], [0, 3])]
    want = Bm25Stats.sum(shards)
    for parts in ((s for s in shards), tuple(shards), iter(shards), map(lambda s: s, shards)):
        got = Bm25Stats.sum(parts)
        assert (got.n_docs, got.total_len, got.terms.tolist(), got.df.tolist()) == (7, 17, [1, 2], [1, 5])
        assert got == want
    assert Bm25Stats.sum(x for x in []).n_docs == 0
    with pytest.raises(TypeError, match=r"part 1 is a tuple, not a Bm25Stats"):
        Bm25Stats.sum(p for p in [shards[0], (1, 2, 3), shards[1]])
    with pytest.raises(TypeError, match=r"part 0 is a str"):
        Bm25Stats.sum("ab")
    with pytest.raises(TypeError, match=r"iterable of Bm25Stats .*got int"):
        Bm25Stats.sum(3)

    def failing():
        yield shards[0]
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        Bm25Stats.sum(failing())


def test_stats_compare_by_value() -> None:
    a = Bm25Stats(10, 50, [9, 2], [1, 4])
    b = Bm25Stats(10, 50, [2, 9], [4, 1])  # same statistics, terms listed in another order
    assert a == b and not (a != b) and hash(a) == hash(b)
    assert len({a, b}) == 1
    for other in (Bm25Stats(11, 50, [2, 9], [4, 1]), Bm25Stats(10, 51, [2, 9], [4, 1]),
                  Bm25Stats(10, 50, [2, 9], [4, 2]), Bm25Stats(10, 50, [2, 8], [4, 1]),
                  Bm25Stats(10, 50, [2], [4]), Bm25Stats(10, 50, [9, 2], [1, 4], words=["x", "y"])):
        assert a != other and not (a == other)
    w = Bm25Stats(10, 50, [2, 9], [4, 1], words=["fox", "dog"])
    assert w == Bm25Stats(10, 50, [9, 2], [1, 4], words=["dog", "fox"])
    assert w != Bm25Stats(10, 50, [2, 9], [4, 1], words=["dog", "fox"])
    assert a != (10, 50, [2, 9], [4, 1]) and a != None  # noqa: E711
    assert a.__eq__(3) is NotImplemented
    # index statistics: the same documents, equal statistics; a pickled copy is equal
    import pickle

    docs = ["the quick brown fox", "the lazy dog", "a quick dog"]
    one, two = SparseIndex("bm25", "float"), SparseIndex("bm25", "float")
    one.add(docs)
    two.add(docs)
    assert one.collection_stats("quick dog") == two.collection_stats("quick dog")
    assert one.collection_stats("quick dog") != one.collection_stats("quick fox")
    s = one.collection_stats("quick dog")
    assert pickle.loads(pickle.dumps(s)) == s


def test_words_follow_their_terms() -> None:
    """Terms given unsorted read back ascending, df with them, and the words too (they stayed
    in the order given: term 2 was named by term 9's word)."""
    s = Bm25Stats(10, 50, [9, 2, 5], [1, 4, 0], words=["nine", "two", "five"])
    assert (s.terms.tolist(), s.df.tolist(), s.words) == ([2, 5, 9], [4, 0, 1], ["two", "five", "nine"])
    import numpy as np

    a = Bm25Stats(10, 50, np.asarray([9, 2], np.uint32), np.asarray([1, 4], np.uint64), words=["nine", "two"])
    assert a.words == ["two", "nine"] and a == Bm25Stats(10, 50, [2, 9], [4, 1], words=["two", "nine"])
    # summed by word: each word keeps its own df
    t = Bm25Stats.sum([s, Bm25Stats(3, 6, [0, 1], [1, 3], words=["two", "nine"])])
    assert dict(zip(t.words, t.df.tolist())) == {"two": 5, "five": 0, "nine": 4}
    with pytest.raises(ValueError, match="words has 1 entries for 2 terms"):
        Bm25Stats(10, 50, [9, 2], [1, 4], words=["x"])
    with pytest.raises(ValueError, match="2 terms but 1 document frequencies"):
        Bm25Stats(10, 50, [9, 2], [1], words=["x", "y"])
    with pytest.raises(ValueError, match="appears twice"):
        Bm25Stats(10, 50, [9, 2], [1, 4], words=["x", "x"])


def _serve(index) -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    threading.Thread(target=_http.serve_index, args=(index, "127.0.0.1", port), daemon=True).start()
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return port
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def test_serve_answers_http09_at_once(monkeypatch) -> None:
    """``GET /health`` without a version and nothing after it: a JSON 400 at once, then the
    connection closes (the server waited for header lines until IDLE_TIMEOUT_S)."""
    monkeypatch.setattr(_http, "IDLE_TIMEOUT_S", 30.0)
    idx = SparseIndex(None, "float")
    idx.add([([1], [1.0])], ids=["a"])
    port = _serve(idx)
    for line in (b"GET /health\r\n", b"GET /health\n", b"POST /search\r\n"):
        with socket.create_connection(("127.0.0.1", port), timeout=10) as c:
            t = time.monotonic()
            c.sendall(line)
            got = b""
            while chunk := c.recv(65536):  # until the server closes
                got += chunk
            assert time.monotonic() - t < 5, line
        hdr, _, rest = got.partition(b"\r\n\r\n")
        assert hdr.startswith(b"HTTP/1.1 400") and b"application/json" in hdr, got
        assert "HTTP/0.9" in json.loads(rest)["error"], got
    # the server still answers a well-formed request
    with socket.create_connection(("127.0.0.1", port), timeout=10) as c:
        c.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        got = b""
        while chunk := c.recv(65536):
            got += chunk
    assert got.startswith(b"HTTP/1.1 200") and json.loads(got.partition(b"\r\n\r\n")[2]) == {"documents": 1}


def test_bm25stats_arguments_are_named() -> None:
    """helper-85 L2: a negative or too large n_docs / total_len was an OverflowError naming
    nothing, a bool was taken as 1, words given as one string or with a lone surrogate got
    library-internal messages."""
    import pickle

    import numpy as np

    cases = [((-1, 10, [1], [0]), ValueError, "n_docs = -1 is out of range"),
             ((2**64, 10, [1], [0]), ValueError, "n_docs = 18446744073709551616 is out of range"),
             ((5, -3, [1], [0]), ValueError, "total_len = -3 is out of range"),
             ((True, 10, [1], [1]), TypeError, "n_docs must be an integer >= 0, not a bool"),
             ((5, 2.5, [1], [1]), TypeError, "total_len must be an integer >= 0, not float"),
             ((10, 5, [1], [1], "a"), TypeError, "words must be a list of strings, one per term, not a str"),
             ((10, 5, [1], [1], ["\ud800"]), ValueError, r"words\[0\] is not valid Unicode"),
             ((10, 5, [1], [1], [3]), TypeError, r"words\[0\] must be a string, not int")]
    for args, exc, msg in cases:
        with pytest.raises(exc, match=msg):
            Bm25Stats(*args)
    s = Bm25Stats(np.int64(10), np.uint64(50), [3, 1], [2, 1], ("c", "a"))
    assert s == pickle.loads(pickle.dumps(s)) and s.n_docs == 10 and s.total_len == 50
    assert Bm25Stats(2**64 - 1, 0, [1], [0], words=None).n_docs == 2**64 - 1
