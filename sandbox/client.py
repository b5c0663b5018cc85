"""Typed clients of the admin API: `SandboxAdmin` (blocking) and `AsyncSandboxAdmin` (asyncio), same methods.

Request faults match requests by `verb` (RBAC verb: get, list, watch, create, update, patch, delete,
deletecollection), `group`, `resource`, `subresource`, `namespace`, `name` and `user`; each left out matches all.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Literal, TypedDict

import aiohttp

from sandbox.audit import AuditRecord

When = Literal["before", "after"]


class AdminError(RuntimeError):
    """The admin API refused a call (bad arguments) or could not be reached."""


class WatchInfo(TypedDict):
    id: int
    user: str
    group: str
    version: str
    resource: str
    namespace: str
    labelSelector: str
    since: float
    eventsSent: int
    backlog: int


class HistoryInfo(TypedDict):
    floor: int
    oldest: int | None
    newest: int
    size: int
    capacity: int


class FaultState(TypedDict):
    armed: list[dict[str, Any]]
    spent: list[dict[str, Any]]


class SandboxState(TypedDict):
    url: str
    resourceVersion: int
    validation: bool
    objects: dict[str, int]
    watches: list[WatchInfo]
    connections: int
    listening: bool
    downRemainingSeconds: float | None
    watchesHung: bool
    hangRemainingSeconds: float | None
    faults: FaultState
    history: HistoryInfo
    auditLastSequence: int


def _match(
    *,
    verb: str | None = None,
    group: str | None = None,
    resource: str | None = None,
    subresource: str | None = None,
    namespace: str | None = None,
    name: str | None = None,
    user: str | None = None,
) -> dict[str, Any]:
    fields = {
        "verb": verb,
        "group": group,
        "resource": resource,
        "subresource": subresource,
        "namespace": namespace,
        "name": name,
        "user": user,
    }
    return {key: value for key, value in fields.items() if value is not None}


def _fail_body(
    *, code: int, count: int | None, seconds: float | None, retry_after: int, when: When, message: str | None
) -> dict[str, Any]:
    body: dict[str, Any] = {"code": code, "retryAfter": retry_after, "when": when}
    if seconds is not None:
        body["seconds"] = seconds
    else:
        body["count"] = count if count is not None else 1
    if message is not None:
        body["message"] = message
    return body


def _records(data: dict[str, Any]) -> list[AuditRecord]:
    return [AuditRecord.from_json(record) for record in data["records"]]


class SandboxAdmin:
    """Blocking client of a sandbox's admin API (usable from any thread, including pytest's)."""

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout

    @property
    def aio(self) -> AsyncSandboxAdmin:
        """The same client for asyncio code."""
        return AsyncSandboxAdmin(self.url, self.timeout)

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None, query: str = "") -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            f"{self.url}{path}{query}", data=data, method=method, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            raise AdminError(f"{method} {path}: {exc.code} {exc.read().decode(errors='replace')}") from None
        except urllib.error.URLError as exc:
            raise AdminError(f"{method} {path}: {exc.reason}") from None

    # inspection

    def state(self) -> SandboxState:
        result: SandboxState = self._call("GET", "/state")
        return result

    def faults(self) -> FaultState:
        result: FaultState = self._call("GET", "/faults")
        return result

    def watches(self) -> list[WatchInfo]:
        result: list[WatchInfo] = self._call("GET", "/watches")
        return result

    def wait_for_watches(
        self, resource: str, *, user: str | None = None, count: int = 1, within: float = 10.0
    ) -> list[WatchInfo]:
        """Wait up to `within` seconds until `count` watches of `resource` (by `user`) are open, else AdminError."""
        deadline = time.monotonic() + within
        while True:
            found = [w for w in self.watches() if w["resource"] == resource and (user is None or w["user"] == user)]
            if len(found) >= count:
                return found
            if time.monotonic() > deadline:
                raise AdminError(f"{len(found)} of {count} watches of {resource} open after {within}s")
            time.sleep(0.02)

    def audit(self, since: int = 0, user: str | None = None) -> list[AuditRecord]:
        """Audit records after sequence number `since` (of one user), oldest first."""
        query = f"?since={since}" + (f"&user={urllib.parse.quote(user)}" if user else "")
        return _records(self._call("GET", "/audit", query=query))

    def clear_audit(self) -> None:
        self._call("DELETE", "/audit")

    def history(self) -> HistoryInfo:
        result: HistoryInfo = self._call("GET", "/history")
        return result

    def compact_history(self, resource_version: int | None = None) -> int:
        """Forget the watch history up to `resource_version` (default: all of it); returns the new floor."""
        body = {} if resource_version is None else {"resourceVersion": resource_version}
        return int(self._call("POST", "/history/compact", body)["floor"])

    def set_validation(self, enabled: bool) -> None:
        """Turn CRD schema validation (and pruning, and rules) on or off."""
        self._call("PUT", "/validation", {"enabled": enabled})

    def set_tokens(self, tokens: dict[str, str] | None) -> None:
        """Accept only these bearer tokens (token -> user; 401 for any other), or any token (None)."""
        self._call("PUT", "/tokens", {"tokens": tokens})

    # faults

    def clear_faults(self) -> None:
        """Disarm every fault: request faults, hung watches, and bring a downed API back up."""
        self._call("DELETE", "/faults")

    def fail_requests(
        self,
        *,
        code: int = 500,
        count: int | None = None,
        seconds: float | None = None,
        retry_after: int = 1,
        when: When = "before",
        message: str | None = None,
        verb: str | None = None,
        group: str | None = None,
        resource: str | None = None,
        subresource: str | None = None,
        namespace: str | None = None,
        name: str | None = None,
        user: str | None = None,
    ) -> int:
        """Fail the next `count` matching requests (or all for `seconds`) with `code` (500, 429, 409, ...).

        `when="after"` lets the request take effect and fails only its response. Returns the fault's id.
        """
        body = _fail_body(code=code, count=count, seconds=seconds, retry_after=retry_after, when=when, message=message)
        body.update(
            _match(
                verb=verb,
                group=group,
                resource=resource,
                subresource=subresource,
                namespace=namespace,
                name=name,
                user=user,
            )
        )
        return int(self._call("POST", "/faults/fail", body)["id"])

    def add_latency(
        self,
        seconds: float,
        *,
        verb: str | None = None,
        group: str | None = None,
        resource: str | None = None,
        subresource: str | None = None,
        namespace: str | None = None,
        name: str | None = None,
        user: str | None = None,
        lasting: float | None = None,
    ) -> int:
        """Delay every matching request by `seconds` until `clear_latency()` or `clear_faults()`, or for `lasting`
        seconds of wall-clock time."""
        body: dict[str, Any] = {
            "seconds": seconds,
            **({"lasting": lasting} if lasting is not None else {}),
            **_match(
                verb=verb,
                group=group,
                resource=resource,
                subresource=subresource,
                namespace=namespace,
                name=name,
                user=user,
            ),
        }
        return int(self._call("POST", "/faults/latency", body)["id"])

    def clear_latency(self) -> None:
        self._call("DELETE", "/faults/latency")

    def expire_next_watches(
        self, count: int = 1, *, group: str | None = None, resource: str | None = None, user: str | None = None
    ) -> int:
        """Answer the next `count` watches (of `user`) with one ERROR event (410 Expired), then close them."""
        body = {"count": count, **_match(group=group, resource=resource, user=user)}
        return int(self._call("POST", "/faults/expire-watches", body)["id"])

    def expire_watches_for(
        self, seconds: float, *, group: str | None = None, resource: str | None = None, user: str | None = None
    ) -> int:
        """Answer every watch (of `user`) started in the next `seconds` with a 410 Expired ERROR event."""
        body = {"seconds": seconds, **_match(group=group, resource=resource, user=user)}
        return int(self._call("POST", "/faults/expire-watches", body)["id"])

    def drop_watches(self, graceful: bool = False) -> int:
        """Close every open watch: drop the connection, or (`graceful`) end the stream as a timeout does."""
        return int(self._call("POST", "/faults/drop-watches", {"graceful": graceful})["dropped"])

    def hang_watches(self, seconds: float | None = None) -> None:
        """Stop writing to open and new watch streams, without closing them, for `seconds` or until released."""
        self._call("POST", "/faults/hang-watches", {"seconds": seconds})

    def release_watches(self) -> None:
        self._call("DELETE", "/faults/hang-watches")

    def restart(self) -> None:
        """Close every API connection and the listener, keep the state, listen again on the same port."""
        self._call("POST", "/restart")

    def down(self, seconds: float) -> None:
        """Refuse API connections for `seconds` (the admin port stays up), then serve again."""
        self._call("POST", "/down", {"seconds": seconds})

    def up(self) -> None:
        """End a `down()` early."""
        self._call("POST", "/up")


class AsyncSandboxAdmin:
    """The asyncio twin of SandboxAdmin: same methods, awaited."""

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout

    async def _call(
        self, method: str, path: str, body: dict[str, Any] | None = None, params: dict[str, str] | None = None
    ) -> Any:
        timeout = aiohttp.ClientTimeout(total=self.timeout)
        try:
            async with (
                aiohttp.ClientSession(timeout=timeout) as session,
                session.request(method, f"{self.url}{path}", json=body, params=params) as response,
            ):
                text = await response.text()
                if response.status >= 400:
                    raise AdminError(f"{method} {path}: {response.status} {text}")
                return json.loads(text or "{}")
        except aiohttp.ClientError as exc:
            raise AdminError(f"{method} {path}: {exc}") from None

    async def state(self) -> SandboxState:
        result: SandboxState = await self._call("GET", "/state")
        return result

    async def faults(self) -> FaultState:
        result: FaultState = await self._call("GET", "/faults")
        return result

    async def watches(self) -> list[WatchInfo]:
        result: list[WatchInfo] = await self._call("GET", "/watches")
        return result

    async def wait_for_watches(
        self, resource: str, *, user: str | None = None, count: int = 1, within: float = 10.0
    ) -> list[WatchInfo]:
        deadline = time.monotonic() + within
        while True:
            found = [
                w for w in await self.watches() if w["resource"] == resource and (user is None or w["user"] == user)
            ]
            if len(found) >= count:
                return found
            if time.monotonic() > deadline:
                raise AdminError(f"{len(found)} of {count} watches of {resource} open after {within}s")
            await asyncio.sleep(0.02)

    async def audit(self, since: int = 0, user: str | None = None) -> list[AuditRecord]:
        params = {"since": str(since)}
        if user:
            params["user"] = user
        return _records(await self._call("GET", "/audit", params=params))

    async def clear_audit(self) -> None:
        await self._call("DELETE", "/audit")

    async def history(self) -> HistoryInfo:
        result: HistoryInfo = await self._call("GET", "/history")
        return result

    async def compact_history(self, resource_version: int | None = None) -> int:
        body = {} if resource_version is None else {"resourceVersion": resource_version}
        return int((await self._call("POST", "/history/compact", body))["floor"])

    async def set_validation(self, enabled: bool) -> None:
        await self._call("PUT", "/validation", {"enabled": enabled})

    async def set_tokens(self, tokens: dict[str, str] | None) -> None:
        await self._call("PUT", "/tokens", {"tokens": tokens})

    async def clear_faults(self) -> None:
        await self._call("DELETE", "/faults")

    async def fail_requests(
        self,
        *,
        code: int = 500,
        count: int | None = None,
        seconds: float | None = None,
        retry_after: int = 1,
        when: When = "before",
        message: str | None = None,
        verb: str | None = None,
        group: str | None = None,
        resource: str | None = None,
        subresource: str | None = None,
        namespace: str | None = None,
        name: str | None = None,
        user: str | None = None,
    ) -> int:
        body = _fail_body(code=code, count=count, seconds=seconds, retry_after=retry_after, when=when, message=message)
        body.update(
            _match(
                verb=verb,
                group=group,
                resource=resource,
                subresource=subresource,
                namespace=namespace,
                name=name,
                user=user,
            )
        )
        return int((await self._call("POST", "/faults/fail", body))["id"])

    async def add_latency(
        self,
        seconds: float,
        *,
        verb: str | None = None,
        group: str | None = None,
        resource: str | None = None,
        subresource: str | None = None,
        namespace: str | None = None,
        name: str | None = None,
        user: str | None = None,
        lasting: float | None = None,
    ) -> int:
        body: dict[str, Any] = {
            "seconds": seconds,
            **({"lasting": lasting} if lasting is not None else {}),
            **_match(
                verb=verb,
                group=group,
                resource=resource,
                subresource=subresource,
                namespace=namespace,
                name=name,
                user=user,
            ),
        }
        return int((await self._call("POST", "/faults/latency", body))["id"])

    async def clear_latency(self) -> None:
        await self._call("DELETE", "/faults/latency")

    async def expire_next_watches(
        self, count: int = 1, *, group: str | None = None, resource: str | None = None, user: str | None = None
    ) -> int:
        body = {"count": count, **_match(group=group, resource=resource, user=user)}
        return int((await self._call("POST", "/faults/expire-watches", body))["id"])

    async def expire_watches_for(
        self, seconds: float, *, group: str | None = None, resource: str | None = None, user: str | None = None
    ) -> int:
        body = {"seconds": seconds, **_match(group=group, resource=resource, user=user)}
        return int((await self._call("POST", "/faults/expire-watches", body))["id"])

    async def drop_watches(self, graceful: bool = False) -> int:
        return int((await self._call("POST", "/faults/drop-watches", {"graceful": graceful}))["dropped"])

    async def hang_watches(self, seconds: float | None = None) -> None:
        await self._call("POST", "/faults/hang-watches", {"seconds": seconds})

    async def release_watches(self) -> None:
        await self._call("DELETE", "/faults/hang-watches")

    async def restart(self) -> None:
        await self._call("POST", "/restart")

    async def down(self, seconds: float) -> None:
        await self._call("POST", "/down", {"seconds": seconds})

    async def up(self) -> None:
        await self._call("POST", "/up")
