"""The JSON search API shared by ``sparsedex serve`` (one index, standard library HTTP server)
and ``sparsedex serve --ray`` (a sharded index behind Ray Serve, :mod:`sparsedex._serve`).

Requests and responses are JSON shaped like the Python calls:

- ``POST /search``       ``{"query": "text" | {"indices": [...], "values": [...]}, "k": 10,
  "filter": {...}, "algorithm": "auto"}`` -> ``{"hits": [{"id", "score", "payload"}, ...]}``
- ``POST /search_batch`` ``{"queries": [...], "k", "filter", "algorithm"}`` -> ``{"hits": [[...], ...]}``
- ``POST /get``          ``{"id": ...}`` -> ``{"id", "text", "payload", "vector": {"indices", "values"}}``
- ``POST /explain``      ``{"query": ..., "id": ..., "top_terms": 30}`` -> ``{"id", "score", "matches": [...]}``
- ``GET /health``        -> ``{"documents": n}``

Bad input answers 400 ``{"error": message}``, an unknown id or endpoint 404, an unavailable
shard 503. Nothing here imports Ray.
"""

from __future__ import annotations

import json
from typing import Any

ENDPOINTS = ("search", "search_batch", "get", "explain", "health")


def _vector(v: Any) -> Any:
    if isinstance(v, dict) and set(v) == {"indices", "values"}:
        return (v["indices"], v["values"])
    return v


def _hit(h: Any) -> dict[str, Any]:
    return {"id": h.id, "score": h.score, "payload": h.payload}


def _need(body: dict[str, Any], *fields: str) -> None:
    for f in fields:
        if f not in body:
            raise ValueError(f'the request has no "{f}"')


def call(index: Any, op: str, body: dict[str, Any]) -> Any:
    """Run endpoint ``op`` with JSON ``body`` on ``index`` (a SparseIndex or a ShardedIndex)."""
    if op == "search":
        _need(body, "query")
        hits = index.search(_vector(body["query"]), k=body.get("k", 10), algorithm=body.get("algorithm", "auto"),
                            filter=body.get("filter"))
        return {"hits": [_hit(h) for h in hits]}
    if op == "search_batch":
        qs = body.get("queries")
        if not isinstance(qs, list):
            raise ValueError('the request has no "queries" list')
        res = index.search_batch([_vector(q) for q in qs], k=body.get("k", 10),
                                 algorithm=body.get("algorithm", "auto"), filter=body.get("filter"))
        return {"hits": [[_hit(h) for h in hs] for hs in res]}
    if op == "get":
        _need(body, "id")
        d = index.get(body["id"])
        v = d.vector
        return {"id": d.id, "text": d.text, "payload": d.payload,
                "vector": {"indices": [int(x) for x in v.indices], "values": [float(x) for x in v.values]}}
    if op == "explain":
        _need(body, "query", "id")
        e = index.explain(_vector(body["query"]), body["id"], top_terms=body.get("top_terms", 30))
        return {"id": e.id, "score": e.score,
                "matches": [{"term_id": m.term_id, "token": m.token, "query_weight": m.query_weight,
                             "doc_weight": m.doc_weight, "contribution": m.contribution} for m in e.matches]}
    if op == "health":
        return {"documents": len(index)}
    raise LookupError(f"unknown endpoint {op!r} (one of: {', '.join(ENDPOINTS)})")


def respond(index: Any, path: str, raw: bytes | None, unavailable: type[BaseException] | None = None) -> tuple[int, Any]:
    """(HTTP status, JSON object) for a request to ``path`` with body ``raw`` (None: GET)."""
    op = path.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]
    body: Any = {}
    if raw:
        try:
            body = json.loads(raw)
        except ValueError as e:
            return 400, {"error": f"the request body is not JSON ({e})"}
        if not isinstance(body, dict):
            return 400, {"error": "the request body must be a JSON object"}
    try:
        return 200, call(index, op, body)
    except KeyError as e:
        return 404, {"error": str(e.args[0]) if e.args else "not found"}
    except LookupError as e:
        return 404, {"error": str(e)}
    except (ValueError, TypeError) as e:
        return 400, {"error": str(e)}
    except Exception as e:  # noqa: BLE001 - a shard down, or a bug: an answer, not a dropped connection
        if unavailable is not None and isinstance(e, unavailable):
            return 503, {"error": str(e)}
        return 500, {"error": f"{type(e).__name__}: {e}"}


def serve_index(index: Any, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Serve one index with the standard library's threading HTTP server until interrupted."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        def _answer(self, raw: bytes | None) -> None:
            status, obj = respond(index, self.path, raw)
            data = json.dumps(obj).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:  # noqa: N802
            self._answer(None)

        def do_POST(self) -> None:  # noqa: N802
            n = int(self.headers.get("Content-Length") or 0)
            self._answer(self.rfile.read(n) if n else b"")

        def log_message(self, *args: Any) -> None:
            pass

    with ThreadingHTTPServer((host, port), Handler) as httpd:
        print(f"serving {host}:{port} (POST /search, /search_batch, /get, /explain; GET /health)", flush=True)
        httpd.serve_forever()
