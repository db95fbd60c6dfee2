"""The JSON search API shared by ``sparsedex serve`` (one index, standard library HTTP server)
and ``sparsedex serve --ray`` (a sharded index behind Ray Serve, :mod:`sparsedex._serve`).

Requests and responses are JSON shaped like the Python calls:

- ``POST /search``       ``{"query": "text" | {"indices": [...], "values": [...]}, "k": 10,
  "filter": {...}, "algorithm": "auto", "target_recall": 0.97}`` -> ``{"hits": [{"id", "score",
  "payload"}, ...]}`` (``"limit"``, Qdrant's name for ``k``, is accepted too; ``"target_recall"``
  with ``"algorithm": "approximate"`` only); a vector with no terms, ``{"indices": [], "values": []}``,
  matches nothing (``{"hits": []}``, as ``SparseIndex.search({})`` returns ``[]``); ``{}`` is a 400 (a
  sparse vector here is the object with both keys: JSON keys are strings, not term ids)
- ``POST /search_batch`` ``{"queries": [...], "k", "filter", "algorithm", "target_recall"}`` ->
  ``{"hits": [[...], ...]}``
- ``POST /get``          ``{"id": ...}`` -> ``{"id", "text", "payload", "vector": {"indices", "values"}}``
- ``POST /explain``      ``{"query": ..., "id": ..., "top_terms": 30}`` -> ``{"id", "score", "matches": [...]}``
- ``GET /health``        -> ``{"documents": n}``

Bad input answers 400 ``{"error": message}`` (a field the endpoint does not take is an error
naming it, so that a typo such as ``"fliter"`` never silently returns unfiltered hits; a body
nested too deeply is a 400 too), an unknown id or endpoint 404, an unavailable shard 503.
Each request's work is capped before any search runs: a ``k`` (or ``limit``) over ``max_k``
(default :data:`DEFAULT_MAX_K`) is a 400 and a /search_batch of more than ``max_batch``
queries (default :data:`DEFAULT_MAX_BATCH`) a 413, each naming the field, its value, the cap
and ``sparsedex serve``'s flag that raises it (``--max-k``, ``--max-batch``).
``sparsedex serve`` speaks HTTP/1.1 (keep-alive), answers a body over :data:`MAX_BODY_BYTES`
413 (reading and dropping the rest for :data:`LINGER_S` seconds, so that the client sees it),
a malformed or repeated ``Content-Length`` (digits only) 400, ``Transfer-Encoding`` beside a
``Content-Length`` 400, a chunked body without one 411 and a POST with neither 411, a method other than GET, HEAD and
POST a JSON 405 (as are a POST to ``/health`` and a GET of another endpoint), a body that stops
arriving before its ``Content-Length`` a 408 once the connection has been silent for
:data:`IDLE_TIMEOUT_S` seconds, its own protocol errors (an unknown method, a malformed request line, HTTP/2)
as JSON too, an HTTP/0.9 request line (no version) a JSON 400 at once, closes the connection
after a GET that announces a body (it is not read), queues up to 1,024 connections while its
threads accept them, and closes a connection silent for :data:`IDLE_TIMEOUT_S` seconds.
Interrupted (Ctrl-C, or SIGTERM through the CLI), it stops accepting connections and waits
up to :data:`DRAIN_S` seconds for the requests being answered (their answers close their
connections). Nothing here imports Ray.
"""

from __future__ import annotations

import json
import re
import sys
import threading
import time
from typing import Any, Callable

from ._core import CorruptIndexError
from ._shown import cut, shown
from ._validate import a_type

ENDPOINTS = ("search", "search_batch", "get", "explain", "health")

#: seconds a refused request's body is still read and dropped after the 413, so that the
#: client sees the answer rather than a reset connection
LINGER_S = 2.0
_DIGITS = re.compile(r"[0-9]{1,20}")

#: the largest request body ``sparsedex serve`` reads (a larger one is answered 413)
MAX_BODY_BYTES = 64 << 20
#: seconds a connection to ``sparsedex serve`` may stay silent before it is closed
IDLE_TIMEOUT_S = 30.0
#: seconds ``sparsedex serve``, once interrupted (Ctrl-C, SIGTERM), waits for the requests
#: being answered to finish, after it stopped accepting connections
DRAIN_S = 5.0

#: the most hits per query a server answers unless started with another ``max_k`` (``--max-k``)
DEFAULT_MAX_K = 1000
#: the most queries in one /search_batch request unless started with another ``max_batch``
#: (``--max-batch``); with :data:`DEFAULT_MAX_K`, at most about a million hits per response
DEFAULT_MAX_BATCH = 1024

#: the fields each endpoint takes (anything else is a 400 naming it)
FIELDS = {
    "search": ("query", "k", "limit", "filter", "algorithm", "target_recall"),
    "search_batch": ("queries", "k", "limit", "filter", "algorithm", "target_recall"),
    "get": ("id",),
    "explain": ("query", "id", "top_terms"),
    "health": (),
}


class OverCap(ValueError):
    """A request over one of the server's caps (``max_k``, ``max_batch``); ``status`` is
    its HTTP status (a ValueError, so anything catching those still answers 400)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def body_too_large(n: int | None) -> str:
    """The 413 message for a request body of ``n`` bytes (``None``: found over
    :data:`MAX_BODY_BYTES` as it arrived), the same from both servers."""
    size = f"more than {MAX_BODY_BYTES}" if n is None else str(n)
    return (f"the request body is {size} bytes; at most {MAX_BODY_BYTES} are read "
            "(split a large batch into several /search_batch requests)")


def check_caps(max_k: Any, max_batch: Any) -> tuple[int, int]:
    """``(max_k, max_batch)`` when both are integers >= 1; ValueError naming the one that is not."""
    for name, v in (("max_k", max_k), ("max_batch", max_batch)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {v!r}")
    return max_k, max_batch


def _vector(v: Any, what: str = "query") -> Any:
    """A JSON query: a text, or ``{"indices": [...], "values": [...]}`` (both keys, no other)."""
    if isinstance(v, dict):
        for key in v:
            if key not in ("indices", "values"):
                raise ValueError(f'{what}: unknown key "{key}" (a sparse vector is {{"indices": [...], "values": [...]}})')
        for key in ("indices", "values"):
            if key not in v:
                raise ValueError(f'{what}: "{key}" is missing (a sparse vector is {{"indices": [...], "values": [...]}})')
            if not isinstance(v[key], list):
                kind = "null" if v[key] is None else type(v[key]).__name__
                raise ValueError(f'{what}: "{key}" must be a JSON list, got {kind}')
        return (v["indices"], v["values"])
    if not isinstance(v, str):
        kind = {type(None): "null", bool: "true/false", int: "a number", float: "a number", list: "a list"}.get(
            type(v), type(v).__name__)
        raise ValueError(f'{what} must be a text (a JSON string) or a sparse vector {{"indices": [...], "values": '
                         f'[...]}}, got {kind}')
    return v


def _batch(qs: list[Any]) -> list[Any]:
    """The queries of /search_batch: all texts or all vectors (the index's error named the
    vectors' Python form, a tuple, helper-93)."""
    out = [_vector(q, f"query {i}") for i, q in enumerate(qs)]
    kinds = [isinstance(q, str) for q in out]
    if any(kinds) and not all(kinds):
        i = kinds.index(not kinds[0])
        name = lambda text: "a text" if text else 'a sparse vector {"indices", "values"}'  # noqa: E731
        raise ValueError(f"queries must be all texts or all sparse vectors: query 0 is {name(kinds[0])}, "
                         f"query {i} {name(kinds[i])}")
    return out


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """json.loads hook: a key given twice in one object is an error (the last would win
    silently: a repeated "filter" would drop the first)."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f'the key "{key}" appears twice in one JSON object')
        out[key] = value
    return out


def _hit(h: Any) -> dict[str, Any]:
    return {"id": h.id, "score": h.score, "payload": h.payload}


def _need(body: dict[str, Any], *fields: str) -> None:
    for f in fields:
        if f not in body:
            raise ValueError(f'the request has no "{f}"')


def _check_fields(op: str, body: dict[str, Any]) -> None:
    allowed = FIELDS.get(op)
    if allowed is None:
        return
    for f in body:
        if f not in allowed:
            raise ValueError(
                f'unknown field "{cut(f, 60)}" in a /{op} request (it takes: {", ".join(allowed) or "no fields"})'
            )


def _k(body: dict[str, Any]) -> Any:
    """``k``, or ``limit`` (Qdrant's name for it); both at once must agree. A null is a field
    not given (so ``"k": null`` is the default 10, on every server), as for ``algorithm``,
    ``filter`` and ``target_recall``."""
    k, limit = body.get("k"), body.get("limit")
    if limit is not None:
        if k is not None and (k != limit or type(k) is not type(limit)):  # 3 and 3.0: one would pass, one not
            raise ValueError(f'pass "k" or "limit" (its Qdrant name), not both: k={k!r}, limit={limit!r}')
        return limit
    return 10 if k is None else k


def _capped_k(body: dict[str, Any], max_k: int) -> Any:
    """:func:`_k`, refused (400) above ``max_k``; a ``k`` that is not an integer is left to the
    index to refuse, naming it."""
    k = _k(body)
    if isinstance(k, int) and not isinstance(k, bool) and k > max_k:
        field = "k" if body.get("limit") is None else "limit"
        from ._validate import MAX_K

        # the --max-k to suggest only where the command line takes it (helper-112: k=10**30
        # suggested a --max-k the CLI refuses)
        raise_it = (f", or start the server with sparsedex serve --max-k {k} to raise the cap" if k <= MAX_K
                    else f"; sparsedex serve --max-k raises the cap, up to {MAX_K}")
        raise OverCap(400, f'"{field}" is {shown(k, 40)}, over this server\'s cap of {max_k} hits per query (ask for '
                           f"at most {max_k}{raise_it})")
    return k


def _algorithm(body: dict[str, Any]) -> Any:
    """``algorithm``; null is not given (``"auto"``)."""
    a = body.get("algorithm")
    return "auto" if a is None else a


def _top_terms(body: dict[str, Any]) -> int | None:
    t = body.get("top_terms", 30)
    if t is None:
        return None
    if isinstance(t, bool) or not isinstance(t, int) or t < 0:
        raise ValueError(f'"top_terms" must be an integer >= 0 or null, got {t!r}')
    return None if t >= 2**63 else t  # more than any vector holds: all (the API caps it at 2**63 - 1)


def _id(body: dict[str, Any]) -> Any:
    """``id`` of /get and /explain: a JSON integer or string, else the error in JSON's words
    (the index's TypeError named Python's types: "got NoneType None" for null)."""
    v = body["id"]
    if isinstance(v, bool) or not isinstance(v, (int, str)):
        kind = ("null" if v is None else "true" if v is True else "false" if v is False
                else "a list" if isinstance(v, list) else "an object" if isinstance(v, dict)
                else f"the number {json.dumps(v)}" if isinstance(v, float) else type(v).__name__)
        raise ValueError(f'"id" must be an integer or a string, got {kind}')
    return v


def _target(body: dict[str, Any]) -> dict[str, Any]:
    """``target_recall`` as a keyword argument when the request gives one (the index checks it)."""
    t = body.get("target_recall")
    return {} if t is None else {"target_recall": t}


def call(index: Any, op: str, body: dict[str, Any], max_k: int = DEFAULT_MAX_K,
         max_batch: int = DEFAULT_MAX_BATCH) -> Any:
    """Run endpoint ``op`` with JSON ``body`` on ``index`` (a SparseIndex or a ShardedIndex);
    :class:`OverCap` before any search for a ``k`` over ``max_k`` or more than ``max_batch``
    queries."""
    if op not in ENDPOINTS:
        raise LookupError(f"unknown endpoint {op!r} (one of: {', '.join(ENDPOINTS)})")
    _check_fields(op, body)
    if op == "search":
        _need(body, "query")
        k = _capped_k(body, max_k)
        hits = index.search(_vector(body["query"]), k=k, algorithm=_algorithm(body),
                            filter=body.get("filter"), **_target(body))
        return {"hits": [_hit(h) for h in hits]}
    if op == "search_batch":
        if "queries" not in body:
            raise ValueError('the request has no "queries" list')
        qs = body["queries"]
        if not isinstance(qs, list):
            raise ValueError(f'"queries" must be a list of queries, got {a_type(qs)}')
        if len(qs) > max_batch:
            raise OverCap(413, f'"queries" has {len(qs)} queries, over this server\'s cap of {max_batch} per '
                               f"/search_batch request (send them in requests of at most {max_batch}, or start the "
                               f"server with sparsedex serve --max-batch {len(qs)} to raise the cap)")
        k = _capped_k(body, max_k)
        res = index.search_batch(_batch(qs), k=k,
                                 algorithm=_algorithm(body), filter=body.get("filter"),
                                 **_target(body))
        return {"hits": [[_hit(h) for h in hs] for hs in res]}
    if op == "get":
        _need(body, "id")
        d = index.get(_id(body))
        v = d.vector
        return {"id": d.id, "text": d.text, "payload": d.payload,
                "vector": {"indices": [int(x) for x in v.indices], "values": [float(x) for x in v.values]}}
    if op == "explain":
        _need(body, "query", "id")
        e = index.explain(_vector(body["query"]), _id(body), top_terms=_top_terms(body))
        return {"id": e.id, "score": e.score,
                "matches": [{"term_id": m.term_id, "token": m.token, "query_weight": m.query_weight,
                             "doc_weight": m.doc_weight, "contribution": m.contribution} for m in e.matches],
                # the two vectors decoded, heaviest first, at most top_terms each (helper-115:
                # top_terms was taken but changed nothing, as these were left out)
                "query_terms": [[t, float(w)] for t, w in e.query_terms],
                "document_terms": [[t, float(w)] for t, w in e.document_terms]}
    if op == "health":
        return {"documents": len(index)}
    raise LookupError(f"unknown endpoint {op!r} (one of: {', '.join(ENDPOINTS)})")


class Refresher:
    """Calls ``refresh`` (``SparseIndex.refresh`` / ``ShardedIndex.refresh``: move to the
    directory's newest commit) before a request when ``every_s`` seconds or more have passed
    since the last call, so that a server follows later commits (``sparsedex add``, another
    writer) at the cost of one cheap check per ``every_s``. One caller refreshes at a time;
    the others answer from the snapshot they have.

    While the directory holds no readable index (removed, a symbolic link switched to a
    missing or half-copied directory, a damaged commit), the server goes on answering from the
    index it has: the refresh's error is printed once to stderr, kept in :attr:`error` (shown
    by ``/health`` as ``refresh_error``), and the refresh is tried again every ``every_s``
    seconds (every request answered 500 before)."""

    def __init__(self, refresh: Callable[[], Any], every_s: float = 1.0,
                 errors: tuple[type[BaseException], ...] = ()) -> None:
        if not (isinstance(every_s, (int, float)) and every_s >= 0):
            raise ValueError(f"refresh_s must be a number >= 0, got {every_s!r}")
        self.refresh, self.every_s = refresh, float(every_s)
        # recorded as OSError is (Ray Serve: a shard whose actors died; the requests its live
        # shards can answer are answered, helper-147)
        self.errors: tuple[type[BaseException], ...] = (OSError, CorruptIndexError, *errors)
        self._last = time.monotonic()
        self._lock = threading.Lock()
        self.error: str | None = None

    def __call__(self) -> None:
        if time.monotonic() - self._last < self.every_s:
            return
        if not self._lock.acquire(blocking=False):
            return
        try:
            try:
                self.refresh()
            except self.errors as e:
                msg = f"{type(e).__name__}: {e}"
                if msg != self.error:
                    # The index opened before answers while its own files are intact; a file of
                    # it that was overwritten in place fails the requests that read it (500).
                    print(f"sparsedex serve: cannot follow the index directory ({msg}); answering from the "
                          "index opened before where its files are unchanged", file=sys.stderr, flush=True)
                self.error = msg
            else:
                self.error = None
            self._last = time.monotonic()
        finally:
            self._lock.release()


def endpoint(path: str, root: str = "", strict: bool = False) -> str:
    """The endpoint a request target names: ``/search`` (or ``/search/``, or with a query
    string) is ``"search"``; ``root`` is where the application is mounted (the route prefix),
    taken off first. Anything else (``/x/search``) is returned as the path below the root
    (``"x/search"``), not an endpoint: only the endpoints' own paths reach them. A path outside
    ``root`` is kept whole unless ``strict`` (then it is returned with its leading ``/``, never
    an endpoint's name): Ray Serve routes only paths under its prefix here, and whether the
    path it passes carries the prefix has changed between Starlette versions."""
    p = path.split("?", 1)[0]
    root = root.rstrip("/")
    if root and (p == root or p.startswith(root + "/")):
        p = p[len(root):]
    elif root and strict:
        return p
    # one leading and one trailing slash: "/search//" is not the endpoint's path (it reached it
    # while every slash was stripped). "//search" is, under the plain server: Python's
    # http.server collapses leading slashes of the request path to one before we see it.
    p = p[1:] if p.startswith("/") else p
    return p[:-1] if p.endswith("/") else p


#: The 411 of a POST to an endpoint without a Content-Length (nor chunked framing).
NO_LENGTH = ("send the request body with a Content-Length header: without one (or chunked framing) a POST has "
             "no body")


def served(base: str = "") -> str:
    """The endpoints served under route prefix ``base``, for messages."""
    return f"POST {base}/search, {base}/search_batch, {base}/get, {base}/explain; GET {base}/health"


def check_route_prefix(prefix: str) -> str:
    """``prefix`` normalised (``/api/v1/`` is ``/api/v1``; ``/`` is ``""``); ValueError naming
    it unless it is a path: starting with ``/``, without a query string, fragment or spaces."""
    if not isinstance(prefix, str) or not prefix.startswith("/") or any(c in prefix for c in "?# \t\r\n"):
        raise ValueError(f"route prefix {prefix!r} must be a path starting with / (e.g. /api/v1), "
                         "without ?, # or spaces")
    return prefix.rstrip("/")


def respond(index: Any, path: str, raw: bytes | None, unavailable: type[BaseException] | None = None,
            refresh: Callable[[], None] | None = None, root: str = "", strict: bool = False,
            max_k: int = DEFAULT_MAX_K, max_batch: int = DEFAULT_MAX_BATCH) -> tuple[int, Any]:
    """(HTTP status, JSON object) for a request to ``path`` with body ``raw`` (None: GET);
    ``refresh`` (a :class:`Refresher`) runs first; ``root`` and ``strict``: see :func:`endpoint`;
    ``max_k``, ``max_batch``: the caps of :func:`call`."""
    op = endpoint(path, root, strict)
    if op not in ENDPOINTS:
        return 404, {"error": f"no endpoint at {path.split('?', 1)[0]}: {served(root.rstrip('/'))}"}
    base = root.rstrip("/")
    if op == "health" and raw is not None:
        return 405, {"error": f"{base}/health takes GET (or HEAD), without a body"}
    if op != "health" and raw is None:
        return 405, {"error": f"{base}/{op} takes POST with a JSON body (GET serves {base}/health only)"}
    body: Any = {}
    if raw:
        try:
            body = json.loads(raw, object_pairs_hook=_no_duplicates)
        except ValueError as e:
            if "int_max_str_digits" in str(e) or "integer string conversion" in str(e):
                # Python's limit on digits, whose message names a Python call (helper-118)
                return 400, {"error": "the request body holds an integer with more than 4300 digits"}
            return 400, {"error": f"the request body is not JSON ({e})"}
        except RecursionError:
            return 400, {"error": "the request body is nested too deeply"}
        if not isinstance(body, dict):
            return 400, {"error": "the request body must be a JSON object"}
    try:
        if refresh is not None:
            refresh()
        out = call(index, op, body, max_k, max_batch)
        stale = getattr(refresh, "error", None)
        if op == "health" and stale is not None and isinstance(out, dict):
            out = {**out, "refresh_error": stale}
        return 200, out
    except KeyError as e:
        return 404, {"error": str(e.args[0]) if e.args else "not found"}
    except LookupError as e:
        return 404, {"error": str(e)}
    except OverCap as e:
        return e.status, {"error": str(e)}
    except (ValueError, TypeError) as e:
        return 400, {"error": str(e)}
    except RecursionError:
        return 400, {"error": "the request is nested too deeply (a filter or a query)"}
    except Exception as e:  # noqa: BLE001 - a shard down, or a bug: an answer, not a dropped connection
        if unavailable is not None and isinstance(e, unavailable):
            return 503, {"error": str(e)}
        return 500, {"error": f"{type(e).__name__}: {e}"}


def serve_index(index: Any, host: str = "127.0.0.1", port: int = 8000, refresh_s: float = 1.0,
                route_prefix: str = "/", max_k: int = DEFAULT_MAX_K, max_batch: int = DEFAULT_MAX_BATCH) -> None:
    """Serve one index with the standard library's threading HTTP server until interrupted.
    The index follows its directory's commits (``index.refresh()`` at most every
    ``refresh_s`` seconds, before a request). The endpoints are under ``route_prefix``
    (``/api`` serves ``/api/search``; any other path is a 404). A request asking for more
    than ``max_k`` hits per query is a 400, a /search_batch of more than ``max_batch``
    queries a 413. ValueError for a prefix that is not a path, or a cap that is not an
    integer >= 1. Interrupted (KeyboardInterrupt, or another exception raised in this
    thread, as the CLI's SIGTERM handler does), it stops accepting connections, waits up to
    :data:`DRAIN_S` seconds for the requests being answered, then lets the exception go on."""
    prefix = check_route_prefix(route_prefix)
    max_k, max_batch = check_caps(max_k, max_batch)
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    refresher = Refresher(index.refresh, refresh_s) if getattr(index, "path", None) is not None else None
    # requests read and not yet answered; once stopping, the server waits for them (up to
    # DRAIN_S) before returning, and every answer closes its connection (helper-147)
    busy = threading.Condition()
    in_flight = [0]
    stopping = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        # Seconds a connection may stay silent (mid-request, or idle between keep-alive
        # requests) before it is closed: each one holds a server thread.
        timeout = IDLE_TIMEOUT_S
        # TCP_NODELAY: an answer goes out as headers then body, two writes, and with Nagle's
        # algorithm the body waited for the client's delayed ACK: about 40 ms a request on a
        # kept-alive connection (helper-135), against 1-3 ms
        disable_nagle_algorithm = True
        # HTTP/1.1: a connection serves one request after another (keep-alive) unless the
        # client asks to close it; every answer carries its Content-Length.
        protocol_version = "HTTP/1.1"
        # a request line too malformed to name its version is answered with a status line and
        # headers too (as HTTP/0.9, the standard server sent a bare body)
        default_request_version = "HTTP/1.1"

        def handle_one_request(self) -> None:
            self._counted = False
            try:
                super().handle_one_request()
            finally:
                if self._counted:
                    with busy:
                        in_flight[0] -= 1
                        busy.notify_all()
                if stopping.is_set():
                    self.close_connection = True

        def end_headers(self) -> None:
            if stopping.is_set() and not self.close_connection:
                self.send_header("Connection", "close")  # (sets close_connection)
            super().end_headers()

        def _answer(self, raw: bytes | None, body: bool = True) -> None:
            status, obj = respond(index, self.path, raw, None, refresher, root=prefix, strict=True,
                                  max_k=max_k, max_batch=max_batch)
            data = json.dumps(obj).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            if self.close_connection:  # a GET with a body not read (or the client's own ask)
                self.send_header("Connection", "close")
            self.end_headers()
            if body:
                self.wfile.write(data)

        def _body_unread(self) -> None:
            """A GET or HEAD that announces a body: the body is not read, so the connection
            closes after the answer (read as the next request, it lost the framing)."""
            lengths = self.headers.get_all("Content-Length") or []
            # any length but 0 (helper-120: "0" then "N" ran the body as the next request)
            if any(v.strip() not in ("", "0") for v in lengths) or self.headers.get("Transfer-Encoding"):
                self.close_connection = True

        def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
            """The standard server's own errors (an unknown method, a malformed request line,
            HTTP/2, a line or header block too long) as JSON like every other answer (they
            were HTML pages), and the connection closed."""
            short, long = self.responses.get(code, ("Error", ""))
            text = message or short
            if explain and explain != long:
                text = f"{text}: {explain}"
            self.close_connection = True
            body = json.dumps({"error": text}).encode()
            self.send_response(code, short)
            self.send_header("Connection", "close")
            has_body = code >= 200 and code not in (204, 304) and self.command != "HEAD"
            if has_body:
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if has_body:
                self.wfile.write(body)

        def parse_request(self) -> bool:
            """The standard parsing, after empty lines, but an HTTP/0.9 request line (``GET /health``, no version)
            is a JSON 400 answered at once and the connection closed: the standard server
            went on to read header lines after it (the client sends none), so the client
            waited :data:`IDLE_TIMEOUT_S` for nothing."""
            # empty lines before a request line (a client's stray CRLF after a body) are skipped,
            # as RFC 9112 §2.2 asks (the standard server closed the connection without an answer)
            for _ in range(16):
                if self.raw_requestline not in (b"\r\n", b"\n"):
                    break
                self.raw_requestline = self.rfile.readline(65537)
            line = str(self.raw_requestline, "iso-8859-1").rstrip("\r\n")
            words = line.split()
            if not self.raw_requestline:
                return False  # the client closed the connection after empty lines
            if not words:
                # 17 empty lines or more (the standard server closed without an answer,
                # helper-120), or a line of blanks (helper-122): a 400 that says which
                self.command, self.request_version = None, self.default_request_version
                self.requestline = ""
                self.send_error(400, "more than 16 empty lines before the request line"
                                if self.raw_requestline in (b"\r\n", b"\n")
                                else "malformed request line (only blanks): send METHOD PATH HTTP/1.1, then headers")
                return False
            if len(words) == 2:
                # a method and a path is HTTP/0.9; anything else is no request line at all
                # (binary bytes, a TLS hello), not "HTTP/0.9" (helper-118)
                http09 = words[0].isalpha() and words[0].isupper() and words[1].startswith("/")
                self.command, self.request_version = None, self.default_request_version
                self.requestline = line
                self.send_error(400, ("HTTP/0.9 requests are not supported" if http09 else "malformed request line")
                                + ": send METHOD PATH HTTP/1.1, then headers")
                return False
            if not super().parse_request():
                return False
            if not self.path.startswith("/"):
                # RFC 9112 §3.2: the target of a request to a server is a path from "/" (or
                # "*" for OPTIONS, or an absolute URL for a proxy, which this is not); `GET
                # health` reached /health (helper-120)
                self.send_error(400, f"malformed request target {shown(self.path, 60)}: it must start with /")
                return False
            with busy:  # a request to answer: waited for when the server stops
                in_flight[0] += 1
                self._counted = True
            return True

        def handle_expect_100(self) -> bool:
            """``Expect: 100-continue``: invite the body only when it will be read; a body
            announced over :data:`MAX_BODY_BYTES` (or a malformed length) is refused at once,
            without a 100 Continue first (helper-118: the client was invited to upload, then
            told 413)."""
            lengths = {v.strip() for v in self.headers.get_all("Content-Length") or []}
            length = next(iter(lengths)) if len(lengths) == 1 else ""
            op = endpoint(self.path, prefix, strict=True)
            if (self.command != "POST" or self.headers.get("Transfer-Encoding") is not None
                    or not _DIGITS.fullmatch(length) or int(length) > MAX_BODY_BYTES
                    or op not in ENDPOINTS or op == "health"):
                # do_POST (or the method's handler) answers with its error, without inviting
                # the body (helper-120: 100 Continue, then 400 for conflicting lengths or 405)
                return True
            return super().handle_expect_100()

        def _get(self, body: bool) -> None:
            """GET, or HEAD (``body`` False: GET's status and headers only, RFC 9110 §9.3.2)."""
            self._body_unread()
            op = endpoint(self.path, prefix, strict=True)
            if op in ENDPOINTS and op != "health":
                self._error(405, f"{prefix}/{op} takes POST with a JSON body (GET serves {prefix}/health only)",
                            allow="POST", body=body)
                return
            self._answer(None, body=body)

        def do_GET(self) -> None:  # noqa: N802
            self._get(body=True)

        def do_HEAD(self) -> None:  # noqa: N802
            self._get(body=False)

        def _wrong_method(self) -> None:
            self._error(405, f"{self.command} is not served: {served(prefix)}", allow="GET, HEAD, POST")

        do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_TRACE = do_CONNECT = _wrong_method

        def _error(self, status: int, message: str, allow: str | None = None, body: bool = True,
                   linger: bool = False) -> None:
            """Answer ``status`` with a JSON error and close the connection (the rest of the
            request, if any, is not read). ``linger``: the client may still be sending a body
            this answer refuses; read and drop it for a moment after answering, so that the
            client reads the answer instead of a connection reset (nginx's lingering close)."""
            self.close_connection = True
            data = json.dumps({"error": message}).encode()
            self.send_response(status)
            if allow is not None:
                self.send_header("Allow", allow)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Connection", "close")
            self.end_headers()
            if body:
                self.wfile.write(data)
            if linger:
                self._linger()

        def _linger(self) -> None:
            import socket

            try:
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_WR)
                end = time.monotonic() + LINGER_S
                while (left := end - time.monotonic()) > 0:
                    self.connection.settimeout(left)
                    if not self.connection.recv(1 << 16):
                        break
            except OSError:
                pass

        def do_POST(self) -> None:  # noqa: N802
            lengths = self.headers.get_all("Content-Length") or []
            if self.headers.get("Transfer-Encoding"):
                if lengths:
                    # both framings at once: the way request smuggling starts (RFC 9112 §6.1)
                    self._error(400, "a request may not have both Transfer-Encoding and Content-Length")
                else:
                    self._error(411, "send the request body with a Content-Length (chunked bodies are not read)")
                return
            if endpoint(self.path, prefix, strict=True) == "health":
                self._error(405, f"{prefix}/health takes GET (or HEAD), without a body", allow="GET, HEAD",
                            linger=bool(lengths))
                return
            if not lengths:
                if endpoint(self.path, prefix, strict=True) not in ENDPOINTS:
                    self._answer(b"")  # an unknown path: its 404 (helper-116: a 411 said less)
                    return
                # HTTP/1.1 reads such a request as having no body (RFC 9112 §6.3), whatever the
                # client meant to send after its headers: say which header is missing rather
                # than that the (empty) body has no query
                self._error(411, NO_LENGTH, linger=True)
                return
            values = {v.strip() for v in lengths}
            length = lengths[0]
            if len(values) > 1:
                self._error(400, f"Content-Length is given {len(lengths)} times with different values {sorted(values)}")
                return
            if re.fullmatch(r"[0-9]{21,}", length.strip()):  # digits, only too many (helper-116)
                self._error(413, body_too_large(int(length.strip())), linger=True)
                return
            if not _DIGITS.fullmatch(length.strip()):
                self._error(400, f"Content-Length must be a whole number of bytes, got {length!r}")
                return
            n = int(length.strip())
            if n > MAX_BODY_BYTES:
                self._error(413, body_too_large(n), linger=True)
                return
            # Read as the bytes arrive, not all announced up front: rfile.read(n) allocates n
            # bytes at once, so a client announcing a huge body it never sends held that memory.
            chunks, left = [], n
            try:
                while left > 0:
                    chunk = self.rfile.read1(min(left, 1 << 20))  # what has come: counted if it stops
                    if not chunk:
                        break
                    chunks.append(chunk)
                    left -= len(chunk)
            except TimeoutError:
                # a client that stopped sending mid-body: say so before closing (it waited for
                # an answer that could never come)
                self._error(408, f"the request body stopped arriving: {n - left} of the {n} bytes its "
                                 f"Content-Length announced came before {self.timeout:g} s of silence")
                return
            except ConnectionError:
                self.close_connection = True  # the client is gone
                return
            if left > 0:
                self.close_connection = True  # the client closed before sending its whole body
                return
            self._answer(b"".join(chunks))

        def log_message(self, *args: Any) -> None:
            pass

    class Server(ThreadingHTTPServer):
        # Connections the kernel queues while every thread is busy accepting: the standard
        # server's 5 dropped the SYNs of a burst of clients, which retried after 1, 3, 7 s.
        request_queue_size = 1024
        daemon_threads = True

        def handle_error(self, request: Any, client_address: Any) -> None:
            exc = sys.exc_info()[1]
            if isinstance(exc, (ConnectionError, TimeoutError)):
                return  # a client that went away: nothing to report
            print(f"sparsedex serve: error answering {client_address}: {type(exc).__name__}: {exc}",
                  file=sys.stderr, flush=True)

    if ":" in host:  # an IPv6 address (e.g. ::1): the standard server binds IPv4 by default
        import socket

        Server.address_family = socket.AF_INET6
    with Server((host.strip("[]"), port), Handler) as httpd:
        print(f"serving {host}:{port} ({served(prefix)})", flush=True)
        try:
            httpd.serve_forever()
        finally:  # interrupted: stop accepting, then let the requests being answered finish
            stopping.set()
            httpd.socket.close()
            with busy:
                busy.wait_for(lambda: in_flight[0] == 0, DRAIN_S)
