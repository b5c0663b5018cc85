"""Errors as `Status` objects, built and worded like apimachinery's `k8s.io/apimachinery/pkg/api/errors`.

Every failure the sandbox answers is an `ApiError`; its body is the Status a real API server would send for the
same failure: kind, apiVersion, metadata, status Failure, message, reason, details (name, group, kind, uid, causes,
retryAfterSeconds, each left out when empty) and code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import orjson

from sandbox.fielderrors import FieldError, aggregate, go_quote

OPTIMISTIC_LOCK_MESSAGE: Final = (
    "the object has been modified; please apply your changes to the latest version and try again"
)
INCONSISTENT_CONTINUE_MESSAGE: Final = (
    "The provided continue parameter is too old to display a consistent list result. You can start a new list "
    "without the continue parameter, or use the continue token in this response to retrieve the remainder of the "
    "results. Continuing with the provided token results in an inconsistent list - objects that were created, "
    "modified, or deleted between the time the first chunk was returned and now may show up in the list."
)
EXPIRED_LIST_MESSAGE: Final = "The resourceVersion for the provided list is too old."


@dataclass(frozen=True, slots=True)
class GroupResource:
    """`schema.GroupResource`; prints as `plural.group`, or `plural` for the core group."""

    group: str
    resource: str

    def __str__(self) -> str:
        return f"{self.resource}.{self.group}" if self.group else self.resource


@dataclass(frozen=True, slots=True)
class GroupKind:
    """`schema.GroupKind`; prints as `Kind.group`, or `Kind` for the core group."""

    group: str
    kind: str

    def __str__(self) -> str:
        return f"{self.kind}.{self.group}" if self.group else self.kind


class ApiError(Exception):
    """A failed API request: HTTP code plus the Status body the real server sends for it."""

    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        details: dict[str, Any] | None = None,
        *,
        headers: dict[str, str] | None = None,
        continue_token: str | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details
        self.headers = headers or {}
        self.continue_token = continue_token

    def status(self) -> dict[str, Any]:
        """The Status object, fields in the order the real server writes them."""
        metadata: dict[str, Any] = {}
        if self.continue_token is not None:
            metadata["continue"] = self.continue_token
        status: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": metadata,
            "status": "Failure",
            "message": self.message,
        }
        if self.reason:
            status["reason"] = self.reason
        if self.details is not None:
            status["details"] = {key: value for key, value in self.details.items() if value}
        status["code"] = self.code
        return status

    def body(self) -> bytes:
        return orjson.dumps(self.status())

    def __repr__(self) -> str:
        return f"ApiError({self.code}, {self.reason!r}, {self.message!r})"


def _details(name: str = "", group: str = "", kind: str = "", **extra: Any) -> dict[str, Any]:
    return {"name": name, "group": group, "kind": kind, **extra}


def not_found(resource: GroupResource, name: str) -> ApiError:
    return ApiError(
        404, "NotFound", f"{resource} {_q(name)} not found", _details(name, resource.group, resource.resource)
    )


def already_exists(resource: GroupResource, name: str) -> ApiError:
    return ApiError(
        409,
        "AlreadyExists",
        f"{resource} {_q(name)} already exists",
        _details(name, resource.group, resource.resource),
    )


def conflict(resource: GroupResource, name: str, why: str) -> ApiError:
    return ApiError(
        409,
        "Conflict",
        f"Operation cannot be fulfilled on {resource} {_q(name)}: {why}",
        _details(name, resource.group, resource.resource),
    )


def invalid(kind: GroupKind, name: str, errors: list[FieldError]) -> ApiError:
    return ApiError(
        422,
        "Invalid",
        f"{kind} {_q(name)} is invalid: {aggregate(errors)}",
        _details(name, kind.group, kind.kind, causes=[error.as_cause() for error in errors]),
    )


def forbidden(resource: GroupResource, name: str, why: str, causes: list[dict[str, str]] | None = None) -> ApiError:
    message = f"{resource} {_q(name)} is forbidden: {why}" if name else f"{resource} is forbidden: {why}"
    return ApiError(403, "Forbidden", message, _details(name, resource.group, resource.resource, causes=causes))


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def method_not_supported(resource: GroupResource, action: str) -> ApiError:
    return ApiError(
        405,
        "MethodNotAllowed",
        f"{action} is not supported on resources of kind {_q(str(resource))}",
        _details("", resource.group, resource.resource),
    )


def unsupported_media_type(accepted: list[str]) -> ApiError:
    return ApiError(
        415,
        "UnsupportedMediaType",
        "the body of the request was in an unknown format - accepted media types include: " + ", ".join(accepted),
    )


def resource_expired(message: str, continue_token: str | None = None) -> ApiError:
    return ApiError(410, "Expired", message, continue_token=continue_token)


def too_old_resource_version(requested: int, oldest: int) -> ApiError:
    """The watch cache's answer to a watch that starts before its history."""
    return resource_expired(f"too old resource version: {requested} ({oldest})")


def too_large_resource_version(requested: int, current: int) -> ApiError:
    return ApiError(
        504,
        "Timeout",
        f"Timeout: Too large resource version: {requested}, current: {current}",
        {
            "causes": [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}],
            "retryAfterSeconds": 1,
        },
    )


def internal_error(why: str) -> ApiError:
    return ApiError(500, "InternalError", f"Internal error occurred: {why}", {"causes": [{"message": why}]})


def unknown_server_error(code: int, message: str) -> ApiError:
    """What the handler sends for a storage error that is not a Status: reason left empty."""
    return ApiError(code, "", message)


def too_many_requests(message: str, retry_after_seconds: int) -> ApiError:
    return ApiError(
        429,
        "TooManyRequests",
        message,
        {"retryAfterSeconds": retry_after_seconds},
        headers={"Retry-After": str(retry_after_seconds)},
    )


def service_unavailable(message: str) -> ApiError:
    return ApiError(503, "ServiceUnavailable", message)


def invalid_patch() -> ApiError:
    """A JSON patch that does not apply: the server keeps the reason to itself."""
    return ApiError(422, "Invalid", "the server rejected our request due to an error in our request", {})


def _q(text: str) -> str:
    return go_quote(text)


def success(name: str, group: str, resource: str, uid: str) -> bytes:
    """The Status a delete answers with when the object is gone at once (stores that do not return it)."""
    return orjson.dumps(
        {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Success",
            "details": {key: value for key, value in _details(name, group, resource, uid=uid).items() if value},
        }
    )
