"""The admin API: fault injection and inspection over HTTP, on a port of its own.

Every endpoint takes and returns JSON. `sandbox.client.SandboxAdmin` wraps them; see sandbox/README.md for the
list. The admin port stays up while the API port is down.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web

from sandbox.faults import Fault, RequestMatch

if TYPE_CHECKING:
    from sandbox.server import Sandbox

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _ok(data: Any = None) -> web.Response:
    return web.Response(body=orjson.dumps({} if data is None else data), content_type="application/json")


def _bad(message: str) -> web.Response:
    return web.Response(body=orjson.dumps({"error": message}), status=400, content_type="application/json")


async def _json(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    if not raw.strip():
        return {}
    data = orjson.loads(raw)
    if not isinstance(data, dict):
        raise ValueError("the body must be a JSON object")
    return data


def _lifetime(body: dict[str, Any]) -> tuple[int | None, float | None]:
    """`count` requests, or `seconds` of wall-clock time, or (neither) until cleared."""
    count = body.get("count")
    seconds = body.get("seconds")
    return (int(count) if count is not None else None, time.time() + float(seconds) if seconds is not None else None)


def admin_application(sandbox: Sandbox) -> web.Application:
    """The admin app of one sandbox."""

    async def health(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def state(request: web.Request) -> web.Response:
        return _ok(sandbox.state())

    async def faults(request: web.Request) -> web.Response:
        return _ok(sandbox.faults.state())

    async def clear_faults(request: web.Request) -> web.Response:
        await sandbox.clear_faults()
        return _ok()

    async def fail(request: web.Request) -> web.Response:
        body = await _json(request)
        code = int(body.get("code", 500))
        if code < 400:
            return _bad("code must be an HTTP error code (>= 400)")
        remaining, until = _lifetime(body)
        if remaining is None and until is None:
            remaining = 1
        when = body.get("when", "before")
        if when not in ("before", "after"):
            return _bad("when must be 'before' or 'after'")
        fault = sandbox.faults.arm(
            Fault(
                "fail",
                RequestMatch.from_json(body),
                remaining=remaining,
                until=until,
                code=code,
                retry_after=int(body.get("retryAfter", 1)),
                when=when,
                message=body.get("message"),
            )
        )
        return _ok({"id": fault.id})

    async def latency(request: web.Request) -> web.Response:
        body = await _json(request)
        # `seconds` is the delay, not a lifetime: latency lasts until cleared (or for `count` requests, or for
        # `lasting` seconds).
        remaining, until = _lifetime({"count": body.get("count"), "seconds": body.get("lasting")})
        fault = sandbox.faults.arm(
            Fault(
                "latency",
                RequestMatch.from_json(body),
                remaining=remaining,
                until=until,
                seconds=float(body["seconds"]),
            )
        )
        return _ok({"id": fault.id})

    async def clear_latency(request: web.Request) -> web.Response:
        sandbox.faults.clear_kind("latency")
        return _ok()

    async def expire_watches(request: web.Request) -> web.Response:
        body = await _json(request)
        remaining, until = _lifetime(body)
        if remaining is None and until is None:
            remaining = 1
        match = RequestMatch.from_json({**body, "verb": "watch"})
        fault = sandbox.faults.arm(Fault("expire-watch", match, remaining=remaining, until=until))
        return _ok({"id": fault.id})

    async def drop_watches(request: web.Request) -> web.Response:
        body = await _json(request)
        return _ok({"dropped": sandbox.hub.close_all(graceful=bool(body.get("graceful", False)))})

    async def hang_watches(request: web.Request) -> web.Response:
        body = await _json(request)
        seconds = body.get("seconds")
        sandbox.hub.hang(float(seconds) if seconds is not None else None)
        return _ok()

    async def release_watches(request: web.Request) -> web.Response:
        sandbox.hub.release()
        return _ok()

    async def restart(request: web.Request) -> web.Response:
        await sandbox.restart()
        return _ok()

    async def down(request: web.Request) -> web.Response:
        body = await _json(request)
        await sandbox.go_down(float(body["seconds"]))
        return _ok()

    async def up(request: web.Request) -> web.Response:
        await sandbox.come_back_up()
        return _ok()

    async def get_validation(request: web.Request) -> web.Response:
        return _ok({"enabled": sandbox.validation.enabled})

    async def put_validation(request: web.Request) -> web.Response:
        body = await _json(request)
        sandbox.validation.enabled = bool(body["enabled"])
        return _ok({"enabled": sandbox.validation.enabled})

    async def audit(request: web.Request) -> web.Response:
        since = int(request.query.get("since", "0"))
        records = sandbox.audit.records(since=since, user=request.query.get("user"))
        return _ok({"records": [record.as_json() for record in records], "lastSequence": sandbox.audit.last_sequence})

    async def clear_audit(request: web.Request) -> web.Response:
        sandbox.audit.clear()
        return _ok()

    async def history(request: web.Request) -> web.Response:
        return _ok(sandbox.state()["history"])

    async def compact(request: web.Request) -> web.Response:
        body = await _json(request)
        revision = body.get("resourceVersion")
        target = sandbox.storage.revision if revision is None else int(revision)
        dropped = sandbox.storage.history.compact(target)
        return _ok({"dropped": dropped, "floor": sandbox.storage.history.floor})

    async def watches(request: web.Request) -> web.Response:
        return _ok([watcher.describe() for watcher in sandbox.hub.watchers()])

    async def get_tokens(request: web.Request) -> web.Response:
        return _ok({"tokens": sandbox.api.tokens})

    async def put_tokens(request: web.Request) -> web.Response:
        body = await _json(request)
        tokens = body["tokens"]
        if tokens is not None and not (
            isinstance(tokens, dict) and all(isinstance(v, str) and v for v in tokens.values())
        ):
            return _bad("tokens must be null or an object of token to user name")
        sandbox.api.tokens = None if tokens is None else dict(tokens)
        return _ok({"tokens": sandbox.api.tokens})

    async def ca(request: web.Request) -> web.Response:
        if sandbox.ca_pem is None:
            return _bad("the sandbox serves plain HTTP (no CA)")
        return web.Response(body=sandbox.ca_pem, content_type="application/x-pem-file")

    @web.middleware
    async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except (KeyError, TypeError, ValueError) as exc:
            return _bad(f"{type(exc).__name__}: {exc}")

    app = web.Application(middlewares=[errors])
    app.add_routes(
        [
            web.get("/healthz", health),
            web.get("/state", state),
            web.get("/faults", faults),
            web.delete("/faults", clear_faults),
            web.post("/faults/fail", fail),
            web.post("/faults/latency", latency),
            web.delete("/faults/latency", clear_latency),
            web.post("/faults/expire-watches", expire_watches),
            web.post("/faults/drop-watches", drop_watches),
            web.post("/faults/hang-watches", hang_watches),
            web.delete("/faults/hang-watches", release_watches),
            web.post("/restart", restart),
            web.post("/down", down),
            web.post("/up", up),
            web.get("/validation", get_validation),
            web.put("/validation", put_validation),
            web.get("/audit", audit),
            web.delete("/audit", clear_audit),
            web.get("/history", history),
            web.post("/history/compact", compact),
            web.get("/watches", watches),
            web.get("/tokens", get_tokens),
            web.put("/tokens", put_tokens),
            web.get("/ca", ca),
        ]
    )
    return app
