"""Fault injection: request failures, latency and expired watches, armed by tests through the admin API.

Every armed fault matches requests by verb, API group, resource, subresource, namespace, name and user (each
optional) and counts how often it fired, so a chaos test can print what happened. Faults that act on listeners
and connections (drop watches, hang, restart, down) live in `sandbox.server`; this module only decides.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from itertools import count
from typing import Any, Final, Literal

from sandbox import status
from sandbox.requestinfo import RequestInfo
from sandbox.status import ApiError, GroupResource

When = Literal["before", "after"]
INJECTED_MESSAGE: Final = "fault injected by the sandbox"
_ids = count(1)


@dataclass(frozen=True, slots=True)
class RequestMatch:
    """Which requests a fault applies to; None matches anything."""

    verb: str | None = None
    group: str | None = None
    resource: str | None = None
    subresource: str | None = None
    namespace: str | None = None
    name: str | None = None
    user: str | None = None

    def matches(self, info: RequestInfo, user: str) -> bool:
        if not info.is_resource_request:
            return False
        return (
            (self.verb is None or self.verb == info.verb)
            and (self.group is None or self.group == info.api_group)
            and (self.resource is None or self.resource == info.resource)
            and (self.subresource is None or self.subresource == info.subresource)
            and (self.namespace is None or self.namespace == info.namespace)
            and (self.name is None or self.name == info.name)
            and (self.user is None or self.user == user)
        )

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RequestMatch:
        return cls(
            **{key: data.get(key) for key in ("verb", "group", "resource", "subresource", "namespace", "name", "user")}
        )

    def as_json(self) -> dict[str, Any]:
        return {key: getattr(self, key) for key in self.__slots__ if getattr(self, key) is not None}


@dataclass(slots=True)
class Fault:
    kind: str
    match: RequestMatch
    remaining: int | None = None  # requests left to affect; None: until cleared or expired
    until: float | None = None  # wall-clock time the fault expires
    code: int = 0
    retry_after: int = 1
    seconds: float = 0.0
    when: When = "before"
    message: str | None = None
    fired: int = 0
    id: int = field(default_factory=lambda: next(_ids))

    def active(self, now: float) -> bool:
        if self.remaining is not None and self.remaining <= 0:
            return False
        return self.until is None or now < self.until

    def fire(self) -> None:
        self.fired += 1
        if self.remaining is not None:
            self.remaining -= 1

    def as_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"id": self.id, "kind": self.kind, "match": self.match.as_json(), "fired": self.fired}
        if self.remaining is not None:
            data["remaining"] = self.remaining
        if self.until is not None:
            data["remainingSeconds"] = max(0.0, round(self.until - time.time(), 3))
        if self.kind == "fail":
            data.update(code=self.code, when=self.when)
            if self.code == 429:
                data["retryAfter"] = self.retry_after
        if self.kind == "latency":
            data["seconds"] = self.seconds
        return data


class Faults:
    """The armed request faults, and a record of the ones that are spent."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._spent: list[Fault] = []

    def arm(self, fault: Fault) -> Fault:
        self._faults.append(fault)
        return fault

    def clear(self) -> None:
        self._spent.extend(self._faults)
        self._faults.clear()

    def clear_kind(self, kind: str) -> None:
        kept: list[Fault] = []
        for fault in self._faults:
            (self._spent if fault.kind == kind else kept).append(fault)
        self._faults = kept

    def _first(self, kind: str, info: RequestInfo, user: str) -> Fault | None:
        now = time.time()
        self._retire(now)
        for fault in self._faults:
            if fault.kind == kind and fault.active(now) and fault.match.matches(info, user):
                return fault
        return None

    def _retire(self, now: float) -> None:
        if any(not fault.active(now) for fault in self._faults):
            self._spent.extend(fault for fault in self._faults if not fault.active(now))
            self._faults = [fault for fault in self._faults if fault.active(now)]

    def take_failure(self, info: RequestInfo, user: str) -> Fault | None:
        fault = self._first("fail", info, user)
        if fault is not None:
            fault.fire()
        return fault

    def take_watch_expiry(self, info: RequestInfo, user: str) -> bool:
        fault = self._first("expire-watch", info, user)
        if fault is None:
            return False
        fault.fire()
        return True

    def latency(self, info: RequestInfo, user: str) -> float:
        """The longest latency armed for a request (latencies do not add up)."""
        now = time.time()
        self._retire(now)
        longest = 0.0
        for fault in self._faults:
            if fault.kind == "latency" and fault.active(now) and fault.match.matches(info, user):
                fault.fire()
                longest = max(longest, fault.seconds)
        return longest

    def state(self) -> dict[str, Any]:
        self._retire(time.time())
        return {
            "armed": [fault.as_json() for fault in self._faults],
            "spent": [fault.as_json() for fault in self._spent],
        }


def injected_error(fault: Fault, info: RequestInfo) -> ApiError:
    """The Status an injected failure answers with, as the real server words that code."""
    resource = GroupResource(info.api_group, info.resource)
    if fault.code == 429:
        return status.too_many_requests(
            fault.message or "Too many requests, please try again later.", fault.retry_after
        )
    if fault.code == 409:
        if info.verb == "create":
            return status.already_exists(resource, info.name or "unknown")
        return status.conflict(resource, info.name, fault.message or status.OPTIMISTIC_LOCK_MESSAGE)
    if fault.code == 403:  # an RBAC denial or an admission refusal such as a quota; the message says why
        return status.forbidden(resource, info.name, fault.message or INJECTED_MESSAGE)
    if fault.code == 500:
        return status.internal_error(fault.message or INJECTED_MESSAGE)
    if fault.code == 503:
        return status.service_unavailable(fault.message or INJECTED_MESSAGE)
    if fault.code == 504:
        return status.ApiError(
            504, "Timeout", f"Timeout: {fault.message or INJECTED_MESSAGE}", {"retryAfterSeconds": fault.retry_after}
        )
    return status.ApiError(fault.code, "", fault.message or INJECTED_MESSAGE)


async def apply_latency(seconds: float) -> None:
    if seconds > 0:
        await asyncio.sleep(seconds)
