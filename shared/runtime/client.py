"""A thin client over kubernetes-asyncio's ApiClient: raw JSON in and out, errors checked by us.

kubernetes-asyncio does authentication (its auth settings, with their token refresh hooks) and TLS (its
connector); we do the rest. Requests go out through our own aiohttp session over kubernetes-asyncio's connector,
not through `ApiClient.call_api`: its session is made with `trust_env=True`, which costs two thread-pool hops per
request (a netrc read and the proxy environment), and it re-walks and re-encodes every body with the stdlib json
(issue 14, README "Design decisions"). The proxy from the environment is resolved once per client instead. Every
status code is checked here and turned into an `ApiError`. Bodies are encoded and decoded with orjson; objects stay
plain dicts.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlencode

import aiohttp
import orjson
import yarl
from aiohttp.helpers import get_env_proxy_for_url
from kubernetes_asyncio.client import ApiClient, Configuration
from kubernetes_asyncio.config import load_kube_config

from shared.apiresource import ApiResource
from shared.runtime.incluster import incluster_configuration
from shared.settings import in_cluster

KubeDict = dict[str, Any]
T = TypeVar("T")

MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
TRANSIENT_STATUSES = frozenset({429, 500, 502, 503, 504})
DEFAULT_TIMEOUT = aiohttp.ClientTimeout(total=30, sock_connect=10)
RESPONSE_TIMEOUT = "ResponseTimeout"  # the reason of an ApiError for a stream whose response never started
# TCP keepalive on a stream's connection: probes after 30 s of silence, every 10 s, 3 unanswered -> the kernel
# closes it. A half-open connection (a peer gone without FIN or RST) then fails in about a minute instead of
# the Linux default of over two hours; client-go's dialer keeps alive every 30 s too.
KEEPALIVE_IDLE, KEEPALIVE_INTERVAL, KEEPALIVE_COUNT = 30, 10, 3
# Whether a write may start now, for the task it is set in: a controller's workers set their leadership's
# `LeaderElector.may_write`; the client checks it after its last wait before sending anything but a GET, and refuses
# the write (ApiError reason FENCED) when it says no. Lease and Event writes run outside the workers: not fenced.
WRITE_FENCE: ContextVar[Callable[[], bool] | None] = ContextVar("kubernaut_write_fence", default=None)
FENCED = "LeadershipExpired"  # the reason of an ApiError for a write refused by WRITE_FENCE


class ApiError(Exception):
    """An error answer of the API server (a Status object), or no answer at all (status 0)."""

    def __init__(
        self,
        status: int,
        reason: str,
        message: str,
        *,
        body: KubeDict | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.status = status
        self.reason = reason
        self.message = message
        self.body = body
        self.retry_after = retry_after
        super().__init__(f"{status} {reason}: {message}")

    @property
    def not_found(self) -> bool:
        return self.status == 404

    @property
    def conflict(self) -> bool:
        """A resourceVersion precondition failed (409 Conflict)."""
        return self.status == 409 and self.reason != "AlreadyExists"

    @property
    def already_exists(self) -> bool:
        return self.status == 409 and self.reason == "AlreadyExists"

    @property
    def gone(self) -> bool:
        """410: the resourceVersion is older than the server's history (relist)."""
        return self.status == 410

    @property
    def transient(self) -> bool:
        """Worth retrying unchanged: no answer, throttling or a server-side failure."""
        return self.status == 0 or self.status in TRANSIENT_STATUSES


def error_from_response(status: int, data: bytes, headers: Any = None) -> ApiError:
    """Build an ApiError from an error response, using its Status body when there is one."""
    body: KubeDict | None = None
    try:
        parsed = orjson.loads(data) if data else None
        body = parsed if isinstance(parsed, dict) else None
    except orjson.JSONDecodeError:
        body = None
    reason = str((body or {}).get("reason") or _DEFAULT_REASONS.get(status, "Unknown"))
    message = str((body or {}).get("message") or data[:500].decode(errors="replace") or f"HTTP {status}")
    retry_after = None
    if headers is not None and headers.get("Retry-After"):
        try:
            retry_after = float(headers["Retry-After"])
        except ValueError:
            retry_after = None
    if retry_after is None and body:
        seconds = (body.get("details") or {}).get("retryAfterSeconds")
        retry_after = float(seconds) if isinstance(seconds, int | float) else None
    return ApiError(status, reason, message, body=body, retry_after=retry_after)


_DEFAULT_REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    409: "Conflict",
    410: "Expired",
    415: "UnsupportedMediaType",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}


def _query(params: dict[str, Any] | None) -> list[tuple[str, str]]:
    if not params:
        return []
    result = []
    for name, value in params.items():
        if value is None:
            continue
        result.append((name, ("true" if value else "false") if isinstance(value, bool) else str(value)))
    return result


class KubeClient:
    def __init__(self, api_client: ApiClient, *, user_agent: str = "kubernaut") -> None:
        self._api = api_client
        self._api.user_agent = user_agent
        self._session: aiohttp.ClientSession | None = None
        self._proxy: dict[str, Any] = {}
        # Counted per verb for benchmarks and tests ("API writes per RR"); cheap enough to keep always.
        self.request_counts: dict[str, int] = {}

    @classmethod
    async def connect(cls, kubeconfig: Path | None = None, *, user_agent: str = "kubernaut") -> KubeClient:
        """In-cluster config when running in a pod (and no kubeconfig is given), else the kubeconfig."""
        if kubeconfig is None and in_cluster():
            configuration = incluster_configuration()
        else:
            configuration = Configuration()
            await load_kube_config(
                config_file=str(kubeconfig) if kubeconfig else None, client_configuration=configuration
            )
        return cls(ApiClient(configuration=configuration), user_agent=user_agent)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()  # not the connector: it is kubernetes-asyncio's, closed with its client
        await self._api.close()

    def _http(self) -> aiohttp.ClientSession:
        """Our session over kubernetes-asyncio's connector (its TLS context), made on first use (inside the loop).
        Proxy as kubernetes-asyncio would pick it: its configuration's, else the environment's, read once here."""
        if self._session is None:
            configuration = self._api.configuration
            rest = self._api.rest_client
            if configuration.proxy:
                self._proxy = {"proxy": configuration.proxy, "proxy_headers": configuration.proxy_headers}
            else:
                with contextlib.suppress(LookupError):
                    proxy, proxy_auth = get_env_proxy_for_url(yarl.URL(str(configuration.host)))
                    self._proxy = {"proxy": proxy, "proxy_auth": proxy_auth}
            if rest.server_hostname:
                self._proxy["server_hostname"] = rest.server_hostname
            self._session = aiohttp.ClientSession(
                connector=rest.pool_manager.connector,
                connector_owner=False,
                read_bufsize=2**21,  # as kubernetes-asyncio: one watch event may be a large object
            )
        return self._session

    async def __aenter__(self) -> KubeClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- raw requests ---------------------------------------------------------------------------------------
    async def _send(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, Any] | None,
        body: Any,
        content_type: str,
        timeout: aiohttp.ClientTimeout,
    ) -> aiohttp.ClientResponse:
        headers = {**self._api.default_headers, "Accept": "application/json", "Content-Type": content_type}
        params = _query(query)
        try:
            session = self._http()
            await self._api.update_params_for_auth(headers, params, ["BearerToken"])  # refreshes an expiring token
            url = f"{self._api.configuration.host}{path}"
            if params:
                url += "?" + urlencode(params)
            fence = WRITE_FENCE.get() if method != "GET" else None
            if fence is not None and not fence():
                raise ApiError(0, FENCED, f"{method} {path}: not sent: this process's leadership has run out")
            self.request_counts[method] = self.request_counts.get(method, 0) + 1
            response: aiohttp.ClientResponse = await session.request(
                method,
                url,
                data=None if body is None else orjson.dumps(body),
                headers=headers,
                timeout=timeout,
                **self._proxy,
            )
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise ApiError(0, "ConnectionFailed", f"{method} {path}: {type(exc).__name__}: {exc}") from exc
        return response

    async def request(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, Any] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        timeout: aiohttp.ClientTimeout = DEFAULT_TIMEOUT,
    ) -> KubeDict:
        """One request; the decoded JSON answer, or ApiError."""
        response = await self._send(method, path, query=query, body=body, content_type=content_type, timeout=timeout)
        try:
            data = await response.read()
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise ApiError(0, "ConnectionFailed", f"{method} {path}: reading the answer: {exc}") from exc
        finally:
            response.release()
        if not 200 <= response.status < 300:
            raise error_from_response(response.status, data, response.headers)
        decoded = orjson.loads(data) if data else {}
        return decoded if isinstance(decoded, dict) else {"items": decoded}

    @asynccontextmanager
    async def stream(
        self,
        path: str,
        *,
        query: dict[str, Any] | None = None,
        connect_timeout: float = 10.0,
        response_timeout: float = 30.0,
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """An open streaming response (a watch) whose status is already checked; closed on exit.

        The status line and headers must arrive within `response_timeout` seconds (an ApiError with status 0 and
        reason RESPONSE_TIMEOUT otherwise; a server that accepted the connection and never answers would hang the
        caller for good). The body has no client timeout: the caller guards its own inactivity. The connection
        gets TCP keepalive, so a peer that vanished is noticed even while the stream is legitimately quiet."""
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=connect_timeout, sock_read=None)
        try:
            async with asyncio.timeout(response_timeout):
                response = await self._send(
                    "GET", path, query=query, body=None, content_type="application/json", timeout=timeout
                )
        except TimeoutError as exc:
            raise ApiError(
                0, RESPONSE_TIMEOUT, f"GET {path}: no response within {response_timeout:g} s (headers never came)"
            ) from exc
        try:
            _keep_alive(response)
            if not 200 <= response.status < 300:
                raise error_from_response(response.status, await response.read(), response.headers)
            yield response
        finally:
            response.close()

    # -- typed helpers --------------------------------------------------------------------------------------
    async def get(self, resource: ApiResource, namespace: str | None, name: str) -> KubeDict:
        return await self.request("GET", resource.path(namespace, name))

    async def list(self, resource: ApiResource, namespace: str | None = None, **query: Any) -> KubeDict:
        """One page of a list; query keys use the API's names (labelSelector, fieldSelector, limit, continue)."""
        return await self.request("GET", resource.path(namespace), query=query)

    async def pages(
        self, resource: ApiResource, namespace: str | None, *, limit: int, **query: Any
    ) -> AsyncIterator[tuple[builtins.list[KubeDict], str | None]]:
        """One consistent list of `resource` in `namespace` (None: every namespace), `limit` objects a page: each
        page's objects with apiVersion and kind filled in (a list leaves them out of its items), and with the last
        page the list's resourceVersion (None with the others)."""
        token: str | None = None
        while True:
            page = await self.request(
                "GET", resource.path(namespace), query={**query, "limit": limit, "continue": token}
            )
            items: builtins.list[KubeDict] = page.get("items") or []
            for item in items:
                item.setdefault("apiVersion", resource.api_version)
                item.setdefault("kind", resource.kind)
            meta = page.get("metadata") or {}
            token = meta.get("continue") or None
            yield items, None if token else meta.get("resourceVersion")
            if not token:
                return

    async def create(self, resource: ApiResource, obj: KubeDict, namespace: str | None = None) -> KubeDict:
        namespace = namespace or obj.get("metadata", {}).get("namespace")
        return await self.request("POST", resource.path(namespace), body=obj)

    async def replace(self, resource: ApiResource, obj: KubeDict, *, subresource: str | None = None) -> KubeDict:
        meta = obj["metadata"]
        return await self.request("PUT", resource.path(meta.get("namespace"), meta["name"], subresource), body=obj)

    async def patch(
        self,
        resource: ApiResource,
        namespace: str | None,
        name: str,
        patch: Any,
        *,
        subresource: str | None = None,
        content_type: str = MERGE_PATCH,
    ) -> KubeDict:
        """PATCH (merge-patch unless told otherwise; kubernetes-asyncio would pick json-patch for a dict)."""
        return await self.request(
            "PATCH", resource.path(namespace, name, subresource), body=patch, content_type=content_type
        )

    async def patch_status(
        self,
        resource: ApiResource,
        namespace: str | None,
        name: str,
        status: KubeDict,
        *,
        resource_version: str | None = None,
    ) -> KubeDict:
        """Merge-patch the status subresource. With `resource_version`, the write only lands on that version
        (409 Conflict otherwise), so a decision made on a stale read never overwrites a newer state."""
        body: KubeDict = {"status": status}
        if resource_version is not None:
            body["metadata"] = {"resourceVersion": resource_version}
        return await self.patch(resource, namespace, name, body, subresource="status")

    async def delete(
        self,
        resource: ApiResource,
        namespace: str | None,
        name: str,
        *,
        uid: str | None = None,
        resource_version: str | None = None,
        propagation_policy: str | None = None,
    ) -> KubeDict:
        """DELETE with optional preconditions (uid, resourceVersion); 404 is the caller's to judge."""
        options: KubeDict = {"kind": "DeleteOptions", "apiVersion": "v1"}
        preconditions = {k: v for k, v in (("uid", uid), ("resourceVersion", resource_version)) if v}
        if preconditions:
            options["preconditions"] = preconditions
        if propagation_policy:
            options["propagationPolicy"] = propagation_policy
        return await self.request("DELETE", resource.path(namespace, name), body=options)

    async def create_or_get(self, resource: ApiResource, obj: KubeDict) -> tuple[KubeDict, bool]:
        """Create `obj`; if it already exists, read and return the existing one. Returns (object, created)."""
        try:
            return await self.create(resource, obj), True
        except ApiError as error:
            if not error.already_exists:
                raise
        meta = obj["metadata"]
        return await self.get(resource, meta.get("namespace"), meta["name"]), False


def _keep_alive(response: aiohttp.ClientResponse) -> None:
    """Turn TCP keepalive on for the connection under `response` (the connector has no public option for it)."""
    connection = response.connection
    transport = connection.transport if connection is not None else None
    sock = transport.get_extra_info("socket") if transport is not None else None
    if sock is None or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        for option, value in (
            ("TCP_KEEPIDLE", KEEPALIVE_IDLE),
            ("TCP_KEEPINTVL", KEEPALIVE_INTERVAL),
            ("TCP_KEEPCNT", KEEPALIVE_COUNT),
        ):
            if hasattr(socket, option):  # Linux names; other systems keep their defaults
                sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, option), value)
    except OSError:
        pass  # the connection is already gone: reading it will say so


async def retry_on_conflict(
    attempt: Callable[[], Awaitable[T]], *, attempts: int = 5, delay: float = 0.01, max_delay: float = 1.0
) -> T:
    """Run `attempt` (which must re-read what it writes) again after each 409 Conflict, with a short backoff,
    as client-go's retry.RetryOnConflict does. The last Conflict is raised."""
    for number in range(1, attempts + 1):
        try:
            return await attempt()
        except ApiError as error:
            if not error.conflict or number == attempts:
                raise
        await asyncio.sleep(min(delay * 2 ** (number - 1), max_delay))
    raise AssertionError("unreachable")


def merge_patch(old: Any, new: Any) -> Any:
    """The RFC 7386 merge patch that turns `old` into `new` (None where a key must be removed); {} if equal."""
    if not isinstance(old, dict) or not isinstance(new, dict):
        return new
    patch: KubeDict = {}
    for key in old.keys() - new.keys():
        patch[key] = None
    for key, value in new.items():
        if key not in old:
            patch[key] = value
        elif old[key] != value:
            if isinstance(value, dict) and isinstance(old[key], dict):
                patch[key] = merge_patch(old[key], value)
            else:
                patch[key] = value
    return patch
