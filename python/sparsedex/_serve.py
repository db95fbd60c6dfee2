"""HTTP search through Ray Serve for a sharded index (see :meth:`sparsedex.ray.ShardedIndex.serve`);
the JSON API is :mod:`sparsedex._http`'s."""

from __future__ import annotations

import asyncio

import ray
from ray import serve
from starlette.requests import Request
from starlette.responses import JSONResponse

from . import _http


# num_cpus=0: the replica mostly waits on its shard actors, and a reservation could leave it
# unplaced (Serve then waits for CPUs forever) on a cluster whose CPUs the shard actors hold.
# max_ongoing_requests: Serve's default (5) let five clients that stall mid-body hold every
# slot of a replica, so that nothing else, /health included, was answered.
# health_check_period_s: check_health (every shard actor alive) every 2 s, a ping per actor.
@serve.deployment(ray_actor_options={"num_cpus": 0}, max_ongoing_requests=64, health_check_period_s=2)
class SearchDeployment:
    """A Serve replica holding one :class:`~sparsedex.ray.ShardedIndex` handle (its shard
    actors are shared by every request the replica answers; they reserve the CPUs free when
    it starts, up to 0.25 each, see ``ShardedIndex(num_cpus=None)``)."""

    def __init__(self, path: str, replicas: int, timeout_s: float, refresh_s: float = 1.0,
                 max_k: int = _http.DEFAULT_MAX_K, max_batch: int = _http.DEFAULT_MAX_BATCH,
                 encoder: dict | None = None) -> None:
        from .ray import ShardedIndex, ShardUnavailableError

        self.max_k, self.max_batch = max_k, max_batch  # checked by run(), before Ray starts
        self.index = ShardedIndex(path, replicas=replicas, timeout_s=timeout_s, encoder=encoder)
        # a refresh that finds a shard's actors dead is recorded (/health's refresh_error), and
        # the request goes on: the live shards answer what they can (every request was a 503)
        self.refresher = _http.Refresher(self.index.refresh, refresh_s, errors=(ShardUnavailableError,))

    def check_health(self) -> None:
        """Ray Serve's health check: fails once a shard actor of this replica has died, so
        that Serve replaces the replica, whose new index starts new shard actors (nothing
        restarts a dead one: a dead shard was a 503 for ever, a dead replica of a shard lost
        for good, helper-147). A shard actor that is only busy does not fail it."""
        dead = self.index._dead_replicas(timeout_s=5.0)
        if dead:
            from .ray import ShardUnavailableError, _shard_name

            raise ShardUnavailableError(
                "shard actor(s) died: " + ", ".join(f"{_shard_name(s)} replica {r}" for s, r in dead)
                + "; this Serve replica is replaced (its index reopens the shards)"
            )

    def __del__(self) -> None:
        index = getattr(self, "index", None)
        if index is not None:
            try:
                index.close(wait_for_merges=False)
            except Exception:  # noqa: BLE001 - shutting down: the actors go with this replica anyway
                pass

    async def __call__(self, request: Request) -> JSONResponse:
        from .ray import ShardUnavailableError

        raw = None
        if request.method == "POST":
            op = _http.endpoint(request.url.path, request.scope.get("root_path", ""), strict=True)
            if (op in _http.ENDPOINTS and op != "health" and "content-length" not in request.headers
                    and "transfer-encoding" not in request.headers):
                # as sparsedex serve answers (helper-116: "the request has no query", the bytes
                # after the headers dropped)
                return JSONResponse({"error": _http.NO_LENGTH}, status_code=411)
            raw = await _capped_body(request)
            if isinstance(raw, JSONResponse):
                return raw
        # the route prefix is the ASGI root_path; whether url.path starts with it has changed
        # between Starlette versions, and endpoint() takes it off only where it does
        status, obj = _http.respond(self.index, request.url.path, raw, ShardUnavailableError, self.refresher,
                                    root=request.scope.get("root_path", ""), max_k=self.max_k,
                                    max_batch=self.max_batch)
        return JSONResponse(obj, status_code=status)


async def _capped_body(request: Request) -> bytes | JSONResponse:
    """The request body, or a 413 once it is over :data:`sparsedex._http.MAX_BODY_BYTES`, as
    ``sparsedex serve`` answers: by its Content-Length before reading, else as it arrives
    (Starlette's ``request.body()`` would hold the whole of a body of any size); a 408 once the
    body has stopped arriving for :data:`sparsedex._http.IDLE_TIMEOUT_S` seconds, so that a
    stalled client does not hold one of the replica's request slots for ever."""
    cap = _http.MAX_BODY_BYTES
    length = request.headers.get("content-length", "").strip()
    if length.isdigit() and int(length) > cap:
        return JSONResponse({"error": _http.body_too_large(int(length))}, status_code=413)
    chunks, size = [], 0
    stream = request.stream().__aiter__()
    while True:
        try:
            chunk = await asyncio.wait_for(stream.__anext__(), _http.IDLE_TIMEOUT_S)
        except StopAsyncIteration:
            break
        except asyncio.TimeoutError:
            return JSONResponse({"error": f"the request body stopped arriving: {size} bytes came, then nothing "
                                          f"for {_http.IDLE_TIMEOUT_S:g} s"}, status_code=408)
        size += len(chunk)
        if size > cap:
            return JSONResponse({"error": _http.body_too_large(None)}, status_code=413)
        chunks.append(chunk)
    return b"".join(chunks)


def run(path: str, *, replicas: int = 1, host: str = "127.0.0.1", port: int = 8000, route_prefix: str = "/",
        name: str = "sparsedex", blocking: bool = False, timeout_s: float = 60.0, refresh_s: float = 1.0,
        max_k: int = _http.DEFAULT_MAX_K, max_batch: int = _http.DEFAULT_MAX_BATCH, encoder: dict | None = None) -> str:
    """Start (or update) the Serve application ``name`` for the sharded index at ``path``;
    returns its base URL. ``blocking`` waits until interrupted (the CLI). The index follows
    the directory's commits: checked at most every ``refresh_s`` seconds, before a request.
    ``max_k``, ``max_batch``: the most hits per query and queries per /search_batch a request
    may ask for (:func:`sparsedex._http.call`); ValueError unless integers >= 1. ``encoder``:
    the identity of the query encoder to open the index with (None: the index's own)."""
    max_k, max_batch = _http.check_caps(max_k, max_batch)
    if not ray.is_initialized():
        ray.init()
    serve.start(http_options={"host": host, "port": port})
    # Serve keeps the HTTP options it first started with (a later serve.start ignores them):
    # a URL built from other arguments would point where nothing listens.
    try:
        from ray.serve.context import _get_global_client

        cfg = _get_global_client().http_config
        have = (str(cfg.host), int(cfg.port))
    except Exception:  # noqa: BLE001 - a Ray without this (private) accessor: trust the arguments
        have = (host, port)
    if have != (host, port):
        raise ValueError(
            f"Ray Serve already listens on {have[0]}:{have[1]} in this cluster (it keeps the address it "
            f"started with): serve on port={have[1]}, host={have[0]!r} (under another name= to keep the "
            "application already there), or call ray.serve.shutdown() first"
        )
    app = SearchDeployment.bind(path, replicas, timeout_s, refresh_s, max_k, max_batch, encoder)
    serve.run(app, name=name, route_prefix=route_prefix, blocking=blocking)
    return f"http://{host}:{port}{route_prefix.rstrip('/')}/"
