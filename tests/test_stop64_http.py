"""Stop 64: helper-147's findings in ``sparsedex serve`` and the Qdrant export: a JSON query's
bad item named by its value (not the dtype numpy made of the list), SIGTERM stopping the
plain server as Ctrl-C does, and ``text_key`` on an index without texts."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from sparsedex import SparseIndex
from sparsedex import _http


@pytest.fixture()
def index():
    idx = SparseIndex(None, "float")
    idx.add([([1, 2], [1.0, 2.0]), ([2], [3.0])], ids=["a", "b"])
    return idx


def _req(index, op: str, body) -> tuple[int, dict]:
    return _http.respond(index, "/" + op, json.dumps(body).encode())


def test_json_query_items_are_named_by_value_not_dtype(index) -> None:
    """A JSON client never made a numpy array: "values must be numbers, got dtype <U1" and
    "indices must be integers, got dtype float64" named none of its values."""
    cases = [
        ({"indices": [1, 2], "values": ["a", 1.0]}, 'values[0] is a string ("a"), not a number'),
        ({"indices": [1, 1.5], "values": [1.0, 1.0]}, "indices[1] is 1.5, not an integer"),
        ({"indices": [1.0, 2.0], "values": [1.0, 1.0]}, "indices[0] is 1.0, not an integer"),
        ({"indices": [1, "2"], "values": [1.0, 1.0]}, 'indices[1] is a string ("2"), not an integer'),
        ({"indices": [1, None], "values": [1.0, 1.0]}, "indices[1] is null (None), not an integer"),
        ({"indices": [1, 2], "values": [1.0, None]}, "values[1] is null (None), not a number"),
        ({"indices": [1, 2], "values": [1.0, [1]]}, "values[1] is a list ([1]), not a number"),  # numpy: "inhomogeneous"
        ({"indices": [1, 2], "values": [1.0, {}]}, "values[1] is a dict ({}), not a number"),
    ]
    for q, message in cases:
        assert _req(index, "search", {"query": q}) == (400, {"error": f"query: {message}"}), q
        assert _req(index, "search_batch", {"queries": [{"indices": [1], "values": [1.0]}, q]}) == (
            400, {"error": f"query 1: {message}"}), q
        # Python users passing lists get the same message
        with pytest.raises(ValueError, match=f"^query: {re.escape(message)}$"):
            index.search((q["indices"], q["values"]))
    with pytest.raises(ValueError, match=r'^query: the weight of term 1 is a string \("x"\), not a number$'):
        index.search({1: "x"})
    # numpy arrays keep naming their dtype: that is what their owner chose
    with pytest.raises(ValueError, match=r"^query: values must be numbers, got dtype <U1$"):
        index.search((np.array([1, 2]), np.array(["a", "b"])))
    with pytest.raises(ValueError, match=r"^query: indices must be integers, got dtype float64$"):
        index.search((np.array([1, 1.5]), np.array([1.0, 1.0])))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_sigterm_stops_the_plain_server_as_ctrl_c_does(tmp_path) -> None:
    """``sparsedex serve INDEX`` on SIGTERM was killed by the signal (exit -15, no message, a
    request in progress cut). Now it stops accepting, answers the request in progress (with
    Connection: close), closes the index, says so on one line and exits 0."""
    idx = SparseIndex(None, "float", path=tmp_path / "p")
    idx.add([([1, 2], [1.0, 2.0]), ([2], [3.0])], ids=["a", "b"])
    idx.commit()
    idx.close()
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "sparsedex", "serve", str(tmp_path / "p"), "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                conn = socket.create_connection(("127.0.0.1", port), timeout=10)
                break
            except OSError:
                assert proc.poll() is None, proc.stderr.read()
                assert time.monotonic() < deadline
                time.sleep(0.1)
        with conn:
            body = json.dumps({"query": {"indices": [2], "values": [1.0]}, "k": 1}).encode()
            # a request in progress: headers and half its body sent when SIGTERM arrives
            conn.sendall(b"POST /search HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                         b"Content-Length: %d\r\n\r\n" % len(body) + body[:10])
            time.sleep(0.5)
            proc.send_signal(signal.SIGTERM)
            time.sleep(0.5)
            conn.sendall(body[10:])
            data = b""
            while chunk := conn.recv(65536):
                data += chunk
        head, _, rest = data.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200"), data
        assert b"connection: close" in head.lower(), data
        assert json.loads(rest) == {"hits": [{"id": "b", "score": 3.0, "payload": None}]}
        assert proc.wait(timeout=30) == 0
        err = proc.stderr.read()
        assert err.strip() == "sparsedex: terminated (SIGTERM): stopped serving", err
        with pytest.raises(OSError):  # no longer accepting
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        proc.stdout.close()
        proc.stderr.close()


def test_to_qdrant_text_key_without_texts() -> None:
    """``text_key`` on an index that holds no texts wrote ``"t": None`` into every payload: it
    is refused before the collection is created; a document without a text gets no key."""
    pytest.importorskip("qdrant_client")
    from qdrant_client import QdrantClient

    from sparsedex.export import to_qdrant

    client = QdrantClient(":memory:")
    vectors = SparseIndex(None)
    vectors.add([{1: 1.0}, {2: 1.0}], ids=["a", "b"], payloads=[{"x": 1}, None])
    with pytest.raises(ValueError, match=r"^text_key='t': no document of this index has a text"):
        to_qdrant(vectors, client, "c1", ids="uuid", text_key="t")
    assert not client.collection_exists("c1")
    assert to_qdrant(vectors, client, "c1", ids="uuid") == 2  # without text_key, as before
    # some documents without a text (not reachable through add(): their stored text removed)
    texts = SparseIndex("bm25")
    texts.add(["hello world", "bye world"], ids=[1, 2])
    texts._snap().states[0].segment.docs._texts[1] = None
    assert to_qdrant(texts, client, "c2", text_key="t") == 2
    got = {p.id: p.payload for p in client.scroll("c2", limit=10, with_payload=True)[0]}
    assert got == {1: {"t": "hello world"}, 2: {}}
