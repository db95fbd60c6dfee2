"""The JSON API of ``sparsedex serve`` (sparsedex._http), without a server or Ray: request
fields checked by name, ``limit`` as ``k``'s Qdrant name, ``top_terms``, deep nesting, and the
refresher that makes a server follow later commits."""

from __future__ import annotations

import json
import time

import pytest

from sparsedex import SparseIndex
from sparsedex import _http


@pytest.fixture()
def index():
    idx = SparseIndex(None, "float")
    idx.add([([1, 2], [1.0, 2.0]), ([2], [3.0]), ([3], [1.0])], ids=["a", "b", "c"], payloads=[{"x": 1}, None, None])
    return idx


def _req(index, op: str, body) -> tuple[int, dict]:
    return _http.respond(index, "/" + op, json.dumps(body).encode())


Q = {"indices": [2], "values": [1.0]}


def test_unknown_fields_are_named(index) -> None:
    status, obj = _req(index, "search", {"query": Q, "k": 2, "fliter": {"x": 1}})
    assert status == 400 and obj["error"].startswith('unknown field "fliter" in a /search request')
    for op, body in (("search_batch", {"queries": [Q], "bogus": 1}), ("get", {"id": "a", "k": 1}),
                     ("explain", {"query": Q, "id": "a", "filter": {}})):
        status, obj = _req(index, op, body)
        assert status == 400 and "unknown field" in obj["error"], (op, obj)
    assert _req(index, "search", {"query": Q, "k": 2})[0] == 200


def test_query_vector_keys_and_duplicate_keys(index) -> None:
    status, obj = _req(index, "search", {"query": {"indices": [1], "values": [1.0], "extra": 1}})
    assert status == 400 and obj["error"].startswith('query: unknown key "extra"'), obj
    status, obj = _req(index, "search", {"query": {"indices": [1]}})
    assert status == 400 and obj["error"].startswith('query: "values" is missing'), obj
    status, obj = _req(index, "search", {"query": {"indices": None, "values": [1.0]}})
    assert status == 400 and obj["error"] == 'query: "indices" must be a JSON list, got null', obj
    status, obj = _req(index, "search_batch", {"queries": [Q, {"values": [1.0]}]})
    assert status == 400 and obj["error"].startswith('query 1: "indices" is missing'), obj
    status, obj = _http.respond(index, "/search", b'{"query": {"indices": [2], "values": [1.0]}, "k": 1, "k": 2}')
    assert status == 400 and 'the key "k" appears twice' in obj["error"], obj


def test_limit_is_k(index) -> None:
    status, obj = _req(index, "search", {"query": Q, "limit": 1})
    assert status == 200 and [h["id"] for h in obj["hits"]] == ["b"]
    status, obj = _req(index, "search_batch", {"queries": [Q, Q], "limit": 1})
    assert status == 200 and [len(h) for h in obj["hits"]] == [1, 1]
    status, obj = _req(index, "search", {"query": Q, "limit": 1, "k": 2})
    assert status == 400 and "not both" in obj["error"]
    assert _req(index, "search", {"query": Q, "limit": 1, "k": 1})[0] == 200
    # a null is a field not given (the Ray Serve path answers the same: test_ray.py::test_serve_http)
    status, obj = _req(index, "search", {"query": Q, "k": None})
    assert status == 200 and [h["id"] for h in obj["hits"]] == ["b", "a"]
    status, obj = _req(index, "search", {"query": Q, "k": 1, "limit": None})
    assert status == 200 and [h["id"] for h in obj["hits"]] == ["b"]
    status, obj = _req(index, "search_batch", {"queries": [Q], "k": None, "limit": 1})
    assert status == 200 and [len(h) for h in obj["hits"]] == [1]
    status, obj = _req(index, "search", {"query": Q, "algorithm": None})
    assert status == 200 and [h["id"] for h in obj["hits"]] == ["b", "a"]
    for k, limit in ((3, 3.0), (3.0, 3)):  # either order: both fields must agree, types too
        status, obj = _req(index, "search", {"query": Q, "k": k, "limit": limit})
        assert status == 400 and "not both" in obj["error"], (k, limit, obj)
    status, obj = _req(index, "search", {"query": Q, "limit": "x"})
    assert status == 400 and "k" in obj["error"]


def test_top_terms(index) -> None:
    for bad in ("x", -1, 1.5, True):
        status, obj = _req(index, "explain", {"query": Q, "id": "a", "top_terms": bad})
        assert status == 400 and '"top_terms" must be an integer >= 0' in obj["error"], bad
    for ok in (0, 1, None):
        assert _req(index, "explain", {"query": Q, "id": "a", "top_terms": ok})[0] == 200
    # top_terms bounds the decoded vectors the answer carries (helper-115: it changed nothing)
    got = {n: _req(index, "explain", {"query": Q, "id": "a", "top_terms": n})[1] for n in (0, 1, None)}
    assert got[0]["document_terms"] == [] and got[0]["query_terms"] == []
    assert got[1]["document_terms"] == [["2", 2.0]] and len(got[1]["query_terms"]) == 1
    assert len(got[None]["document_terms"]) == 2 and len(got[None]["matches"]) == 1


def test_deeply_nested_body_is_400(index) -> None:
    deep = '{"query": {"indices": [2], "values": [1.0]}, "filter": ' + '{"$and": [' * 5000 + "{}" + "]}" * 5000 + "}"
    status, obj = _http.respond(index, "/search", deep.encode())
    assert status == 400 and "nested too deeply" in obj["error"]


def test_refresher_follows_commits(tmp_path) -> None:
    w = SparseIndex(None, "float", path=tmp_path / "i")
    w.add([([1], [1.0])], ids=["a"])
    w.commit()
    r = SparseIndex.open(tmp_path / "i")
    refresh = _http.Refresher(r.refresh, 0.0)
    w.add([([1], [2.0])], ids=["b"])
    w.delete(["a"])
    w.commit()
    status, obj = _http.respond(r, "/search", json.dumps({"query": {"indices": [1], "values": [1.0]}}).encode(),
                                None, refresh)
    assert status == 200 and [h["id"] for h in obj["hits"]] == ["b"]
    # at most one check per every_s seconds
    calls = []
    slow = _http.Refresher(lambda: calls.append(1), 3600)
    slow()
    slow()
    assert calls == []
    slow._last = time.monotonic() - 3601
    slow()
    slow()
    assert calls == [1]
    with pytest.raises(ValueError, match="refresh_s"):
        _http.Refresher(r.refresh, -1)
    w.close()
    r.close()


def test_target_recall(index) -> None:
    """Passed through with algorithm "approximate"; checked by the index (a 400 naming it)."""
    status, obj = _req(index, "search", {"query": Q, "k": 2, "algorithm": "approximate", "target_recall": 0.9})
    assert status == 200 and [h["id"] for h in obj["hits"]] == ["b", "a"]
    status, obj = _req(index, "search_batch", {"queries": [Q], "algorithm": "approximate", "target_recall": 0.99})
    assert status == 200 and len(obj["hits"]) == 1
    status, obj = _req(index, "search", {"query": Q, "algorithm": "approximate", "target_recall": 1.5})
    assert status == 400 and "target_recall must be a number in (0, 1]" in obj["error"], obj
    status, obj = _req(index, "search", {"query": Q, "target_recall": 0.9})
    assert status == 400 and "target_recall applies to algorithm='approximate' only" in obj["error"], obj


# ``sparsedex serve``'s own HTTP server (the standard library's), on a real socket -------------

def _serve(index, monkeypatch, idle_s: float = 30.0) -> int:
    import socket
    import threading

    monkeypatch.setattr(_http, "IDLE_TIMEOUT_S", idle_s)
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


def _raw(port: int, head: bytes, body: bytes = b"", wait_s: float = 10.0) -> tuple[int, dict]:
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=wait_s) as s:
        s.sendall(head + body)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
            if b"\r\n\r\n" in data:
                hdr, _, rest = data.partition(b"\r\n\r\n")
                n = int(next(line.split(b":")[1] for line in hdr.split(b"\r\n")
                             if line.lower().startswith(b"content-length")))
                if len(rest) >= n:
                    break
    hdr, _, rest = data.partition(b"\r\n\r\n")
    return int(hdr.split()[1]), json.loads(rest)


def test_serve_refuses_bad_and_huge_bodies_without_reading_them(index, monkeypatch) -> None:
    """A body announced at 10 GB is a 413 answered at once (the server used to allocate the
    announced size up front, and was killed for memory); a malformed Content-Length is a 400,
    a chunked body a 411; a body sent in pieces is read whole."""
    port = _serve(index, monkeypatch)
    status, obj = _raw(port, b"POST /search HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000000\r\n\r\n", b'{"q')
    assert status == 413 and "10000000000 bytes" in obj["error"], obj
    for bad in (b"-5", b"abc", b"1e3"):
        status, obj = _raw(port, b"POST /search HTTP/1.1\r\nHost: x\r\nContent-Length: " + bad + b"\r\n\r\n")
        assert status == 400 and "Content-Length" in obj["error"], (bad, obj)
    status, obj = _raw(port, b"POST /search HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n", b"3\r\n{}\n\r\n0\r\n\r\n")
    assert status == 411, obj
    # no Content-Length at all: HTTP/1.1 reads no body; the answer names the header (it said
    # "the request has no query", stop 55's leftover)
    status, obj = _raw(port, b"POST /search HTTP/1.1\r\nHost: x\r\n\r\n", b'{"query": "x"}')
    assert status == 411 and "Content-Length header" in obj["error"], obj
    status, obj = _raw(port, b"POST /nope HTTP/1.1\r\nHost: x\r\n\r\n")  # the path first: a 404
    assert status == 404, obj
    # a whole number too large to hold: a 413, not "must be a whole number" (helper-116)
    status, obj = _raw(port, b"POST /search HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n")
    assert status == 413 and "99999999999999999999999 bytes" in obj["error"], obj
    body = json.dumps({"query": Q, "k": 1}).encode()
    status, obj = _raw(port, b"POST /search HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body), body)
    assert status == 200 and [h["id"] for h in obj["hits"]] == ["b"]


def test_serve_drops_a_client_that_stops_sending(index, monkeypatch) -> None:
    """A connection that announces a body and goes silent is answered 408 and closed after
    IDLE_TIMEOUT_S (each held a server thread for ever; then it was closed without an answer),
    and the server keeps answering others."""
    import socket

    port = _serve(index, monkeypatch, idle_s=0.5)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"POST /search HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"q")
        t = time.monotonic()
        data = b""
        while chunk := s.recv(1024):  # answered 408 (was closed without an answer), then closed
            data += chunk
        assert time.monotonic() - t < 5
        head, _, body = data.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 408"), data
        assert b"Connection: close" in head
        assert "3 of the 100 bytes" in json.loads(body)["error"]
    status, obj = _raw(port, b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status == 200 and obj == {"documents": 3}


def test_serve_answers_wrong_methods_405_and_listens_on_ipv6(index, monkeypatch) -> None:
    """GET on a POST endpoint and PUT/DELETE are JSON 405s naming what is served (were a 400
    "no query" and an HTML 501 page); an IPv6 --host such as ::1 binds."""
    import socket

    port = _serve(index, monkeypatch)
    status, obj = _raw(port, b"GET /search HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status == 405 and "POST" in obj["error"], obj
    for method in (b"PUT", b"DELETE"):
        status, obj = _raw(port, method + b" /search HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
        assert status == 405 and "GET /health" in obj["error"], (method, obj)
    if not socket.has_ipv6:
        return
    with socket.socket(socket.AF_INET6) as s:
        try:
            s.bind(("::1", 0))
        except OSError:
            return  # no IPv6 loopback on this machine
        port6 = s.getsockname()[1]
    import threading

    threading.Thread(target=_http.serve_index, args=(index, "::1", port6), daemon=True).start()
    deadline = time.monotonic() + 10
    while True:
        try:
            with socket.create_connection(("::1", port6), timeout=1) as c:
                c.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                data = b""
                while chunk := c.recv(4096):  # to the end: the head and body may come apart
                    data += chunk
                assert data.endswith(b'{"documents": 3}'), data
            break
        except ConnectionRefusedError:
            assert time.monotonic() < deadline
            time.sleep(0.02)


def _exchange(port: int, data: bytes, wait_s: float = 10.0) -> bytes:
    """Send ``data`` and read until the server closes the connection."""
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=wait_s) as s:
        s.sendall(data)
        got = b""
        while chunk := s.recv(65536):
            got += chunk
    return got


def test_serve_is_strict_about_framing_and_methods(index, monkeypatch) -> None:
    """Content-Length digits only (Python's int() took '+23', '2_3' and ' 2 '), repeated with
    different values or beside Transfer-Encoding a 400 (request smuggling starts there), HEAD
    answers GET's head without a body and TRACE is a JSON 405 (HTML 501 pages before), and a
    connection serves several HTTP/1.1 requests (each one closed it). From recheck39."""
    port = _serve(index, monkeypatch)
    body = json.dumps({"query": Q, "k": 1}).encode()
    for bad in (b"+%d" % len(body), b"%d_0" % len(body), b"\xd9\xa3"):
        status, obj = _raw(port, b"POST /search HTTP/1.1\r\nHost: x\r\nContent-Length: " + bad + b"\r\n\r\n", body)
        assert status == 400 and "Content-Length" in obj["error"], (bad, obj)
    status, obj = _raw(port, b"POST /search HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\nContent-Length: 3\r\n\r\n"
                       % len(body), body)
    assert status == 400 and "different values" in obj["error"], obj
    status, obj = _raw(port, b"POST /search HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n"
                       b"Transfer-Encoding: chunked\r\n\r\n" % len(body), body)
    assert status == 400 and "Transfer-Encoding" in obj["error"], obj
    got = _exchange(port, b"HEAD /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    head, _, rest = got.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200") and b"Content-Length: 16" in head and rest == b"", got
    status, obj = _raw(port, b"TRACE /health HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status == 405 and "GET /health" in obj["error"], obj
    # keep-alive: two searches on one connection, both answered
    req = b"POST /search HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body) + body
    got = _exchange(port, req + req[:-len(body)].replace(b"Host: x", b"Host: x\r\nConnection: close") + body)
    assert got.count(b"HTTP/1.1 200") == 2 and got.count(b'"id": "b"') == 2, got


def test_serve_413_reaches_a_client_still_sending(index, monkeypatch) -> None:
    """A client sending a body over the limit reads the 413: the server used to close with the
    body unread, and the client's next send or read met a connection reset instead."""
    import socket
    import threading

    port = _serve(index, monkeypatch)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"POST /search HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (100 << 20))

        def send() -> None:
            try:
                for _ in range(64):
                    s.sendall(b"x" * (64 << 10))
            except OSError:
                pass

        t = threading.Thread(target=send)
        t.start()
        got = b""
        while chunk := s.recv(65536):
            got += chunk
            if b"}" in got:
                break
        t.join()
    assert got.startswith(b"HTTP/1.1 413") and b"at most" in got, got[:200]


def test_serve_answers_its_own_errors_in_json_and_keeps_get_framing(index, monkeypatch) -> None:
    """The standard server's own errors (an unknown method, a malformed request line, HTTP/2)
    were HTML pages; a GET announcing a body left it unread, to be parsed as the next request
    (an HTML 501 for the client's next POST). From recheck40."""
    port = _serve(index, monkeypatch)
    for head, status in ((b"FOO /search HTTP/1.1\r\nHost: x\r\n\r\n", 501), (b"HELLO\r\n\r\n", 400),
                         (b"GET /health HTTP/2.0\r\nHost: x\r\n\r\n", 505)):
        got = _exchange(port, head)
        hdr, _, rest = got.partition(b"\r\n\r\n")
        assert hdr.split()[1] == str(status).encode() and b"application/json" in hdr, got
        assert "error" in json.loads(rest), got
    body = json.dumps({"query": Q, "k": 1}).encode()
    get = b"GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body) + body
    post = b"POST /search HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body) + body
    got = _exchange(port, get + post)
    assert got.startswith(b"HTTP/1.1 200") and b"501" not in got and b"<" not in got, got
    # ... and the answer says the connection closes (helper-117: it closed without a word)
    assert b"connection: close" in got.partition(b"\r\n\r\n")[0].lower(), got
    plain = _exchange(port, b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert plain.startswith(b"HTTP/1.1 200"), plain


def test_only_the_endpoints_own_paths_reach_them(index, monkeypatch) -> None:
    """``/x/search`` or ``/a/b/health`` is a 404 (any path ending in an endpoint's name used to
    reach it); ``/search/`` and a query string still do; Ray Serve's route prefix (the ASGI
    root_path) is taken off first, whether or not the path carries it."""
    assert _http.endpoint("/search") == _http.endpoint("/search/") == _http.endpoint("/search?x=1") == "search"
    assert _http.endpoint("/x/search") == "x/search"
    assert _http.endpoint("/api/v1/search", "/api/v1") == _http.endpoint("/search", "/api/v1/") == "search"
    assert _http.endpoint("/api/v1x/search", "/api/v1") == "api/v1x/search"
    body = json.dumps({"query": Q, "k": 1}).encode()
    status, obj = _http.respond(index, "/x/search", body)
    assert status == 404 and "x/search" in obj["error"], obj
    assert _http.respond(index, "/search/", body)[0] == 200
    port = _serve(index, monkeypatch)
    status, obj = _raw(port, b"GET /a/b/health HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status == 404 and "a/b/health" in obj["error"], obj
    status, obj = _raw(port, b"GET /x/search HTTP/1.1\r\nHost: x\r\n\r\n")  # not a 405 for /search
    assert status == 404, obj
    status, obj = _raw(port, b"POST /x/search HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body), body)
    assert status == 404, obj
    status, obj = _raw(port, b"POST /search?v=1 HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body), body)
    assert status == 200 and [h["id"] for h in obj["hits"]] == ["b"], obj
    assert _raw(port, b"GET /health/ HTTP/1.1\r\nHost: x\r\n\r\n") == (200, {"documents": 3})


def test_route_prefix(index, monkeypatch) -> None:
    """``serve_index(route_prefix=...)``: the endpoints under the prefix only; a prefix that is
    not a path is a ValueError naming it (``--route-prefix`` in the CLI: a one-line error)."""
    import socket
    import threading

    monkeypatch.setattr(_http, "IDLE_TIMEOUT_S", 30.0)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    threading.Thread(target=_http.serve_index, args=(index, "127.0.0.1", port), kwargs={"route_prefix": "/api/v1/"},
                     daemon=True).start()
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            assert time.monotonic() < deadline
            time.sleep(0.02)
    body = json.dumps({"query": Q, "k": 1}).encode()
    post = b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n"
    status, obj = _raw(port, post % (b"/api/v1/search", len(body)), body)
    assert status == 200 and [h["id"] for h in obj["hits"]] == ["b"], obj
    for path in (b"/search", b"/api/search", b"/api/v1x/search", b"/api/v1/x/search"):
        status, obj = _raw(port, post % (path, len(body)), body)
        assert status == 404 and "/api/v1/search" in obj["error"], (path, obj)
    assert _raw(port, b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n\r\n") == (200, {"documents": 3})
    status, obj = _raw(port, b"GET /api/v1/search HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status == 405 and "/api/v1/search takes POST" in obj["error"], obj
    for bad in ("api", "/a?b", "/a b", ""):
        with pytest.raises(ValueError, match="route prefix"):
            _http.serve_index(index, "127.0.0.1", 0, route_prefix=bad)


def test_cli_route_prefix_is_checked(tmp_path, capsys) -> None:
    from sparsedex.cli import main

    index = SparseIndex(None, "float")
    index.add([([1], [1.0])], ids=["a"])
    index.save(tmp_path / "ix")
    with pytest.raises(SystemExit) as e:  # a usage error, as other flags' (helper-125)
        main(["serve", str(tmp_path / "ix"), "--route-prefix", "api"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "--route-prefix" in err and "must be a path starting with /" in err, err


def test_a_server_keeps_its_index_while_the_directory_holds_none(tmp_path, capsys) -> None:
    """helper-85 M2: the served link switched to a missing directory, a file or a link loop
    made every request a 500 (/health too); the server now answers from the index it has,
    says why once on stderr and in /health's refresh_error, and follows the link again once
    it names an index."""
    import os

    SparseIndex.create(tmp_path / "blue", encoder=None, vocab_size=10).close()
    with SparseIndex.open(tmp_path / "blue") as ix:
        ix.add([([1], [1.0])], ids=["blue"])
        ix.commit()
    with SparseIndex.create(tmp_path / "green", encoder=None, vocab_size=10) as ix:
        ix.add([([1], [2.0]), ([1], [1.0])], ids=["green", "green2"])
        ix.commit()
    (tmp_path / "afile").write_text("x")
    link = tmp_path / "live"
    os.symlink(tmp_path / "blue", link)
    reader = SparseIndex.open(link)
    refresher = _http.Refresher(reader.refresh, 0)
    body = json.dumps({"query": {"indices": [1], "values": [1.0]}, "k": 5}).encode()

    def switch(target) -> None:
        os.symlink(target, str(link) + ".tmp")
        os.replace(str(link) + ".tmp", link)

    for bad in (tmp_path / "missing", tmp_path / "afile", link):
        switch(bad)
        status, obj = _http.respond(reader, "/search", body, None, refresher)
        assert status == 200 and [h["id"] for h in obj["hits"]] == ["blue"], (bad, obj)
        status, obj = _http.respond(reader, "/health", None, None, refresher)
        assert status == 200 and obj["documents"] == 1 and obj["refresh_error"], (bad, obj)
    err = capsys.readouterr().err
    assert err.count("cannot follow the index directory") == 3 and "answering from the index opened before" in err, err
    switch(tmp_path / "green")
    status, obj = _http.respond(reader, "/search", body, None, refresher)
    assert status == 200 and [h["id"] for h in obj["hits"]] == ["green", "green2"], obj
    assert _http.respond(reader, "/health", None, None, refresher) == (200, {"documents": 2})
    reader.close()


def test_empty_lines_before_a_request_line_are_skipped(index, monkeypatch) -> None:
    """helper-85 L1: a CRLF before the request line (RFC 9112 §2.2: SHOULD be ignored), or a
    stray CRLF after a body on a keep-alive connection, closed the connection unanswered."""
    import socket

    port = _serve(index, monkeypatch)
    assert _raw(port, b"\r\n\r\nGET /health HTTP/1.1\r\nHost: x\r\n\r\n") == (200, {"documents": 3})
    body = json.dumps({"query": Q, "k": 1}).encode()
    post = b"POST /search HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body) + body
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(post + b"\r\n" + b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    assert data.count(b"HTTP/1.1 200") == 2 and data.endswith(b'{"documents": 3}'), data


def test_only_one_slash_and_the_right_method_reach_an_endpoint(index, monkeypatch) -> None:
    """``//search`` and ``/search//`` are 404s (every slash was stripped: they reached
    /search), a POST to /health is a 405 with Allow: GET, HEAD (it was answered as a GET), and a
    GET of a POST endpoint is a 405 through respond() too (Ray Serve's path)."""
    for path in ("//search", "/search//", "//health"):
        status, obj = _http.respond(index, path, json.dumps({"query": Q}).encode())
        assert status == 404 and "no endpoint at" in obj["error"], (path, obj)
    assert _http.respond(index, "/search/", json.dumps({"query": Q, "k": 1}).encode())[0] == 200
    status, obj = _http.respond(index, "/health", b"")
    assert status == 405 and "takes GET" in obj["error"], obj
    status, obj = _http.respond(index, "/search", None)
    assert status == 405 and "takes POST" in obj["error"], obj
    port = _serve(index, monkeypatch)
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"POST /health HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}")
        data = b""
        while chunk := s.recv(1024):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 405") and b"Allow: GET, HEAD" in head, data
    assert "takes GET" in json.loads(body)["error"]
    # (a leading "//" is collapsed to "/" by the standard library's server itself, gh-87389)
    body = json.dumps({"query": Q}).encode()
    status, obj = _raw(port, b"POST /search// HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body), body)
    assert status == 404, obj
    status, obj = _raw(port, b"GET /health/ HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status == 200, obj


def test_queries_of_json_kinds_no_query_has_are_named_in_json_terms(index) -> None:
    """helper-93 LOW: {"query": 5} was refused with the Python types a vector may be (a
    SparseEmbedding, a scipy.sparse row, a pandas Series), and a batch mixing a text and a
    vector object called the object 'a tuple'."""
    for q, kind in ((5, "a number"), (None, "null"), (True, "true/false"), ([1, 2], "a list")):
        status, obj = _req(index, "search", {"query": q})
        assert status == 400 and obj["error"] == (
            'query must be a text (a JSON string) or a sparse vector {"indices": [...], "values": [...]}, '
            f"got {kind}"), obj
    status, obj = _req(index, "search_batch", {"queries": ["data", Q]})
    assert status == 400 and obj["error"] == (
        'queries must be all texts or all sparse vectors: query 0 is a text, query 1 a sparse vector '
        '{"indices", "values"}'), obj
    status, obj = _req(index, "search_batch", {"queries": [Q, 3]})
    assert status == 400 and obj["error"].startswith("query 1 must be a text"), obj


def test_k_and_batch_over_the_caps_are_refused_before_any_search(index, monkeypatch) -> None:
    """A tester's /search_batch of 20,000 queries at k=1000 ran 81 s and took 861 MB: a k (or
    limit) over max_k is a 400 and a batch over max_batch a 413, each naming the field, its
    value, the cap and the flag that raises it, answered before the index is asked anything."""
    calls = []
    monkeypatch.setattr(index, "search", lambda *a, **kw: calls.append("search"), raising=False)
    monkeypatch.setattr(index, "search_batch", lambda *a, **kw: calls.append("search_batch"), raising=False)
    status, obj = _req(index, "search", {"query": Q, "k": _http.DEFAULT_MAX_K + 1})
    assert status == 400 and obj == {"error": (
        f'"k" is {_http.DEFAULT_MAX_K + 1}, over this server\'s cap of {_http.DEFAULT_MAX_K} hits per query (ask for '
        f"at most {_http.DEFAULT_MAX_K}, or start the server with sparsedex serve --max-k {_http.DEFAULT_MAX_K + 1} "
        "to raise the cap)")}, obj
    status, obj = _req(index, "search_batch", {"queries": [Q], "limit": 5000})
    assert status == 400 and obj["error"].startswith('"limit" is 5000, over this server\'s cap of 1000'), obj
    status, obj = _req(index, "search_batch", {"queries": [Q] * 20_000, "k": 1000})
    assert status == 413 and obj == {"error": (
        f'"queries" has 20000 queries, over this server\'s cap of {_http.DEFAULT_MAX_BATCH} per /search_batch request '
        f"(send them in requests of at most {_http.DEFAULT_MAX_BATCH}, or start the server with sparsedex serve "
        "--max-batch 20000 to raise the cap)")}, obj
    assert calls == []
    monkeypatch.undo()
    # at the caps: answered
    status, obj = _req(index, "search", {"query": Q, "k": _http.DEFAULT_MAX_K})
    assert status == 200 and len(obj["hits"]) == 2, obj
    status, obj = _req(index, "search_batch", {"queries": [Q] * _http.DEFAULT_MAX_BATCH, "k": 1})
    assert status == 200 and len(obj["hits"]) == _http.DEFAULT_MAX_BATCH, obj
    # k that is not a positive integer is still the index's 400 (not the cap's)
    for bad in (0, -5, "x", True):
        status, obj = _req(index, "search", {"query": Q, "k": bad})
        assert status == 400 and "cap" not in obj["error"] and "k" in obj["error"], (bad, obj)
    # respond() with other caps (Ray Serve's path passes the deployment's)
    body = json.dumps({"queries": [Q] * 3, "k": 2}).encode()
    status, obj = _http.respond(index, "/search_batch", body, max_batch=2)
    assert status == 413 and "cap of 2 per /search_batch" in obj["error"], obj
    status, obj = _http.respond(index, "/search_batch", body, max_k=1)
    assert status == 400 and '"k" is 2, over this server\'s cap of 1' in obj["error"], obj


def _serve_kw(index, **kw) -> int:
    import socket
    import threading

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    threading.Thread(target=_http.serve_index, args=(index, "127.0.0.1", port), kwargs=kw, daemon=True).start()
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return port
        except OSError:
            assert time.monotonic() < deadline
            time.sleep(0.02)


def _post(port: int, op: str, obj) -> tuple[int, dict]:
    body = json.dumps(obj).encode()
    return _raw(port, b"POST /%s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (op.encode(), len(body)), body)


def test_serve_caps_default_and_raised_through_serve_index(index, monkeypatch) -> None:
    """``serve_index(max_k=..., max_batch=...)``: the server's caps, on a real socket; a cap
    that is not an integer >= 1 is a ValueError naming it."""
    port = _serve(index, monkeypatch)
    status, obj = _post(port, "search", {"query": Q, "k": 1001})
    assert status == 400 and "--max-k 1001" in obj["error"], obj
    status, obj = _post(port, "search_batch", {"queries": [Q] * 1025, "k": 1})
    assert status == 413 and "--max-batch 1025" in obj["error"], obj
    raised = _serve_kw(index, max_k=5000, max_batch=2000)
    status, obj = _post(raised, "search", {"query": Q, "k": 5000})
    assert status == 200 and len(obj["hits"]) == 2, obj
    status, obj = _post(raised, "search_batch", {"queries": [Q] * 2000, "k": 5000})
    assert status == 200 and len(obj["hits"]) == 2000, obj
    status, obj = _post(raised, "search", {"query": Q, "k": 5001})
    assert status == 400 and "cap of 5000" in obj["error"], obj
    lowered = _serve_kw(index, max_k=1, max_batch=1)
    status, obj = _post(lowered, "search_batch", {"queries": [Q, Q], "k": 1})
    assert status == 413 and "cap of 1 per /search_batch" in obj["error"], obj
    status, obj = _post(lowered, "search", {"query": Q, "k": 2})
    assert status == 400 and "cap of 1 hits" in obj["error"], obj
    for kw, name in (({"max_k": 0}, "max_k"), ({"max_batch": -1}, "max_batch"), ({"max_k": 1.5}, "max_k"),
                     ({"max_batch": True}, "max_batch")):
        with pytest.raises(ValueError, match=f"{name} must be an integer >= 1"):
            _http.serve_index(index, "127.0.0.1", 0, **kw)


def test_cli_max_k_and_max_batch(tmp_path, capsys, monkeypatch) -> None:
    """``sparsedex serve --max-k N --max-batch N`` reach the server; a value < 1 (or not an
    integer) is a usage error, exit code 2."""
    from sparsedex.cli import main

    index = SparseIndex(None, "float")
    index.add([([1], [1.0])], ids=["a"])
    index.save(tmp_path / "ix")
    seen = {}
    monkeypatch.setattr(_http, "serve_index", lambda index, **kw: seen.update(kw))
    assert main(["serve", str(tmp_path / "ix")]) == 0
    assert (seen["max_k"], seen["max_batch"]) == (_http.DEFAULT_MAX_K, _http.DEFAULT_MAX_BATCH)
    assert main(["serve", str(tmp_path / "ix"), "--max-k", "5000", "--max-batch", "7"]) == 0
    assert (seen["max_k"], seen["max_batch"]) == (5000, 7)
    capsys.readouterr()
    for flag in ("--max-k", "--max-batch"):
        for bad in ("0", "-3", "x", "1.5"):
            with pytest.raises(SystemExit) as e:
                main(["serve", str(tmp_path / "ix"), flag, bad])
            assert e.value.code == 2, (flag, bad)
            err = capsys.readouterr().err
            assert f"argument {flag}:" in err, err


def test_expect_continue_garbage_lines_and_long_integers(index, monkeypatch) -> None:
    """helper-118: ``Expect: 100-continue`` with a body over the limit got 100 Continue, then
    413 (the client was invited to upload first); bytes that are no request line were told
    "HTTP/0.9 requests are not supported"; an integer of 5000 digits was refused with a
    message naming sys.set_int_max_str_digits()."""
    import socket

    monkeypatch.setattr(_http, "LINGER_S", 0.2)
    port = _serve(index, monkeypatch)
    head = b"POST /search HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 999999999\r\n\r\n"
    got = _exchange(port, head)
    assert got.startswith(b"HTTP/1.1 413") and b"100 Continue" not in got, got
    # a body that will be read is still invited
    body = json.dumps({"query": Q, "k": 1}).encode()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"POST /search HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: %d\r\n\r\n" % len(body))
        first = s.recv(65536)
        assert first.startswith(b"HTTP/1.1 100"), first
        s.sendall(body)
        rest = first.partition(b"\r\n\r\n")[2] or s.recv(65536)
        assert rest.startswith(b"HTTP/1.1 200"), rest
    got = _exchange(port, b"\x00\x01\x02 garbage\r\n\r\n")
    assert got.startswith(b"HTTP/1.1 400") and b"malformed request line" in got and b"0.9" not in got, got
    big = b'{"query": {"1": 1.0}, "k": 1' + b"0" * 5000 + b"}"
    got = _exchange(port, b"POST /search HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: %d\r\n\r\n"
                    % len(big) + big)
    assert got.startswith(b"HTTP/1.1 400") and b"4300 digits" in got and b"sys." not in got, got


def test_get_with_conflicting_lengths_and_expect_only_for_readable_bodies(index, monkeypatch) -> None:
    """helper-120: a GET with Content-Length 0 and then N ran its body as a second request
    (smuggling past a proxy framing by the second header); Expect: 100-continue invited bodies
    then refused unread (conflicting lengths, Transfer-Encoding beside a length, POST /health)."""
    import socket

    monkeypatch.setattr(_http, "LINGER_S", 0.2)
    port = _serve(index, monkeypatch)
    body = json.dumps({"query": Q, "k": 1}).encode()
    inner = b"POST /search HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body) + body
    got = _exchange(port, b"GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: %d\r\n\r\n"
                    % len(inner) + inner)
    assert got.count(b"HTTP/1.1 ") == 1 and b"connection: close" in got.lower(), got
    for head in (b"POST /search HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
                 b"POST /search HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n"
                 b"Transfer-Encoding: chunked\r\n\r\n",
                 b"POST /health HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n"):
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(head)
            first = s.recv(65536)
        assert first.startswith(b"HTTP/1.1 4") and b"100 Continue" not in first, (head, first)
