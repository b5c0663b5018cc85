"""The audit log: one record per API request, with the fields an RBAC review needs.

A record holds when, who (the bearer token's user), the RBAC verb, the API group, version, resource,
subresource, namespace and name, and the response code. Non-resource requests (`/api`, `/version`) are recorded
with their path and an empty resource. The log keeps the last `capacity` records.
"""

from __future__ import annotations

from collections import deque
from dataclasses import asdict, dataclass
from typing import Any, Final

DEFAULT_CAPACITY: Final = 100_000
ANONYMOUS: Final = "system:anonymous"


@dataclass(frozen=True, slots=True)
class AuditRecord:
    sequence: int
    time: float
    user: str
    verb: str
    api_group: str
    api_version: str
    resource: str
    subresource: str
    namespace: str
    name: str
    code: int
    path: str

    def as_json(self) -> dict[str, Any]:
        """The record as the admin API sends it (camelCase keys)."""
        return {_CAMEL.get(key, key): value for key, value in asdict(self).items()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AuditRecord:
        return cls(**{_SNAKE.get(key, key): value for key, value in data.items()})


_CAMEL: Final = {"api_group": "apiGroup", "api_version": "apiVersion"}
_SNAKE: Final = {camel: snake for snake, camel in _CAMEL.items()}


class AuditLog:
    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        self._records: deque[AuditRecord] = deque(maxlen=capacity)
        self._sequence = 0

    @property
    def last_sequence(self) -> int:
        return self._sequence

    def append(self, **fields: Any) -> AuditRecord:
        self._sequence += 1
        record = AuditRecord(sequence=self._sequence, **fields)
        self._records.append(record)
        return record

    def records(self, since: int = 0, user: str | None = None) -> list[AuditRecord]:
        """Records after sequence number `since`, optionally of one user, oldest first."""
        return [r for r in self._records if r.sequence > since and (user is None or r.user == user)]

    def clear(self) -> None:
        self._records.clear()
