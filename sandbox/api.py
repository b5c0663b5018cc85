"""The HTTP face of the sandbox: routes, request decoding, responses, watches, audit and request faults.

One handler serves every path, as the real server's handler chain does: it authenticates (any bearer token is a
user), classifies the request (`RequestInfo`), applies armed faults, dispatches to discovery or to the registry,
writes the object or Status the real server would, and records the request in the audit log.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import orjson
import yaml
from aiohttp import web

from sandbox import discovery, faults, status
from sandbox.audit import ANONYMOUS, AuditLog
from sandbox.faults import Faults
from sandbox.fielderrors import FieldError, not_supported
from sandbox.fielderrors import forbidden as forbidden_field
from sandbox.registry import (
    PATCH_CONTENT_TYPES,
    DeleteOptions,
    ListQuery,
    ListResult,
    Registry,
    Written,
    parse_resource_version,
)
from sandbox.requestinfo import RequestInfo, parse_request_info
from sandbox.resources import Catalog, ResourceType
from sandbox.selectors import FieldSelector, LabelSelector, SelectorError
from sandbox.status import ApiError, GroupKind
from sandbox.storage import Change, RevisionExpiredError, StoredObject
from sandbox.watch import Watcher, WatchHub, WatchQuery, error_line

log = logging.getLogger(__name__)

JSON: Final = "application/json"
BODY_CONTENT_TYPES: Final = ("application/json", "application/yaml", "application/vnd.kubernetes.protobuf")
TOO_LARGE_WAIT: Final = 3.0  # how long a list or watch waits for a resourceVersion from the future
_NOT_FOUND_MESSAGE: Final = "the server could not find the requested resource"
_HEALTH_PATHS: Final = frozenset({"/healthz", "/livez", "/readyz"})


@dataclass(frozen=True, slots=True)
class ApiSettings:
    min_request_timeout: float = 1800.0  # watches without timeoutSeconds end after 1-2x this, as in a cluster


def _json_response(body: bytes, code: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.Response(body=body, status=code, content_type=JSON, headers=headers)


def error_response(error: ApiError) -> web.Response:
    return _json_response(error.body(), error.code, error.headers)


def _not_found() -> ApiError:
    return ApiError(404, "NotFound", _NOT_FOUND_MESSAGE, {})


def _method_not_allowed() -> ApiError:
    return ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource", {})


def authenticate(headers: Mapping[str, str], tokens: Mapping[str, str] | None = None) -> str | None:
    """The user of a request. Without `tokens`, a bearer token is the user's name and Basic credentials give their
    user name. With `tokens` (token -> user), only those bearer tokens are accepted; None means 401."""
    authorization = headers.get("Authorization", "")
    scheme, _, credentials = authorization.partition(" ")
    if tokens is not None:
        return tokens.get(credentials.strip()) if scheme.lower() == "bearer" else None
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    if scheme.lower() == "basic":
        try:
            return base64.b64decode(credentials).decode().partition(":")[0] or ANONYMOUS
        except (binascii.Error, UnicodeDecodeError):
            return ANONYMOUS
    return ANONYMOUS


def _truthy(value: str | None) -> bool:
    return value is not None and value.lower() in ("1", "true", "t", "yes", "y")


def _selectors(query: Mapping[str, str]) -> tuple[LabelSelector, FieldSelector]:
    try:
        return LabelSelector.parse(query.get("labelSelector", "")), FieldSelector.parse(query.get("fieldSelector", ""))
    except SelectorError as exc:
        raise status.bad_request(str(exc)) from None


def _list_options_errors(query: Mapping[str, str], watch: bool) -> list[FieldError]:
    """`ValidateListOptions`: the resourceVersionMatch and sendInitialEvents combinations the server refuses."""
    errors: list[FieldError] = []
    match = query.get("resourceVersionMatch", "")
    send_initial = query.get("sendInitialEvents")
    if watch:
        if send_initial is not None and match != "NotOlderThan":
            detail = "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan"
            errors.append(forbidden_field("resourceVersionMatch", detail))
        if match:
            if send_initial is None:
                detail = "resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided"
                errors.append(forbidden_field("resourceVersionMatch", detail))
            if match != "NotOlderThan":
                errors.append(not_supported("resourceVersionMatch", match, ["NotOlderThan"]))
            if query.get("continue"):
                detail = "resourceVersionMatch is forbidden when continue is provided"
                errors.append(forbidden_field("resourceVersionMatch", detail))
        return errors
    if match:
        if not query.get("resourceVersion"):
            detail = "resourceVersionMatch is forbidden unless resourceVersion is provided"
            errors.append(forbidden_field("resourceVersionMatch", detail))
        if query.get("continue"):
            detail = "resourceVersionMatch is forbidden when continue is provided"
            errors.append(forbidden_field("resourceVersionMatch", detail))
        if match not in ("Exact", "NotOlderThan"):
            errors.append(not_supported("resourceVersionMatch", match, ["Exact", "NotOlderThan", ""]))
        if match == "Exact" and query.get("resourceVersion") == "0":
            detail = 'resourceVersionMatch "exact" is forbidden for resourceVersion "0"'
            errors.append(forbidden_field("resourceVersionMatch", detail))
    if send_initial is not None:
        errors.append(forbidden_field("sendInitialEvents", "sendInitialEvents is forbidden for list"))
    return errors


class ApiServer:
    """Serves the Kubernetes API over aiohttp."""

    def __init__(
        self,
        *,
        registry: Registry,
        catalog: Catalog,
        hub: WatchHub,
        request_faults: Faults,
        audit: AuditLog,
        settings: ApiSettings | None = None,
    ) -> None:
        self.registry = registry
        self.catalog = catalog
        self.hub = hub
        self.faults = request_faults
        self.audit = audit
        self.settings = settings or ApiSettings()
        self.server_address = "127.0.0.1:0"
        self.tokens: dict[str, str] | None = None  # token -> user; None: any bearer token is its user

    # entry point

    async def handle(self, request: web.Request) -> web.StreamResponse:
        info = parse_request_info(request.method, request.path, request.query)
        authenticated = authenticate(request.headers, self.tokens)
        user = ANONYMOUS if authenticated is None else authenticated
        audited = False

        def record(code: int) -> None:
            nonlocal audited
            if not audited:
                audited = True
                self._audit(info, user, code)

        try:
            if authenticated is None:  # as kube-apiserver with --anonymous-auth=false
                raise ApiError(401, "Unauthorized", "Unauthorized")
            delay = self.faults.latency(info, user)
            if delay:
                await asyncio.sleep(delay)
            fault = self.faults.take_failure(info, user)
            if fault is not None and (fault.when == "before" or info.is_watch):
                raise faults.injected_error(fault, info)
            response = await self._serve(request, info, user, record)
            if fault is not None:
                raise faults.injected_error(fault, info)
        except ApiError as exc:
            record(exc.code)
            return error_response(exc)
        except asyncio.CancelledError:
            record(499)
            raise
        except Exception as exc:
            log.exception("sandbox.api.request_failed path=%s", request.path)
            error = status.internal_error(f"{type(exc).__name__}: {exc}")
            record(error.code)
            return error_response(error)
        record(response.status)
        return response

    def _audit(self, info: RequestInfo, user: str, code: int) -> None:
        self.audit.append(
            time=time.time(),
            user=user,
            verb=info.verb,
            api_group=info.api_group,
            api_version=info.api_version,
            resource=info.resource,
            subresource=info.subresource,
            namespace=info.namespace,
            name=info.name,
            code=code,
            path=info.path,
        )

    async def _serve(
        self, request: web.Request, info: RequestInfo, user: str, started: Callable[[int], None]
    ) -> web.StreamResponse:
        if not info.is_resource_request:
            return self._non_resource(request, info)
        if (info.api_group, info.resource) == ("authentication.k8s.io", "selfsubjectreviews"):
            return self._self_subject_review(info, user)
        resource = self.catalog.lookup(info.api_group, info.api_version, info.resource)
        if resource is None:
            raise _not_found()
        self._check_scope(resource, info)
        if info.subresource:
            return await self._subresource(request, info, resource)
        verb = info.verb
        namespace = info.namespace
        named = len(info.parts) >= 2  # the path names an object (not only a fieldSelector)
        if verb == "get" or (named and verb in ("list", "watch")):
            if request.method != "GET":
                raise _method_not_allowed()
            return self._object_response(resource, self.registry.get(resource, namespace, info.parts[1]))
        if verb == "list":
            return await self._list(request, resource, namespace)
        if verb == "watch":
            return await self._watch(request, info, resource, user=user, started=started)
        if verb == "create":
            if named:
                raise _method_not_allowed()
            body = await self._body(request)
            created = self.registry.create(resource, namespace, body)
            return _json_response(resource.served(created), 201)
        if verb == "update":
            body = await self._body(request)
            return self._written(resource, self.registry.update(resource, namespace, info.name, body))
        if verb == "patch":
            patch_type, patch = await self._patch_body(request, resource)
            return self._written(resource, self.registry.patch(resource, namespace, info.name, patch_type, patch))
        if verb == "delete":
            return await self._delete(request, resource, namespace, info.name)
        if verb == "deletecollection":
            return await self._delete_collection(request, resource, namespace)
        raise _method_not_allowed()

    @staticmethod
    def _self_subject_review(info: RequestInfo, user: str) -> web.Response:
        """`kubectl auth whoami`: who the credentials are (the bearer token's user). Create-only and not stored, as in
        a cluster; every user may create one there (system:basic-user)."""
        if info.api_version not in ("v1", "v1beta1", "v1alpha1") or info.namespace or len(info.parts) > 1:
            raise _not_found()
        if info.verb != "create":
            raise _method_not_allowed()
        body = {
            "kind": "SelfSubjectReview",
            "apiVersion": f"authentication.k8s.io/{info.api_version}",
            "metadata": {"creationTimestamp": None},
            "status": {"userInfo": {"username": user, "groups": ["system:authenticated"]}},
        }
        return _json_response(orjson.dumps(body), 201)

    def _check_scope(self, resource: ResourceType, info: RequestInfo) -> None:
        is_namespace = resource.plural == "namespaces" and not resource.group  # its name is its namespace
        if not resource.namespaced and info.namespace and not is_namespace:
            raise _not_found()
        if resource.namespaced and not info.namespace and len(info.parts) >= 2:
            raise _not_found()
        if resource.namespaced and not info.namespace and info.verb in ("create", "deletecollection"):
            raise _method_not_allowed()
        if info.verb in ("update", "patch") and len(info.parts) < 2:
            raise _method_not_allowed()
        if info.verb not in resource.verbs and not info.subresource:
            raise status.method_not_supported(resource.group_resource, info.verb)

    def _non_resource(self, request: web.Request, info: RequestInfo) -> web.StreamResponse:
        path = info.path.rstrip("/") or "/"
        if path in _HEALTH_PATHS or path.startswith(("/healthz/", "/livez/", "/readyz/")):
            return web.Response(text="ok", content_type="text/plain")
        document: dict[str, Any] | None = None
        if path == "/version":
            document = discovery.version_info()
        elif path == "/api":
            document = discovery.core_versions(self.server_address)
        elif path == "/apis":
            document = discovery.group_list(self.catalog)
        else:
            parts = path.strip("/").split("/")
            if parts[0] == "api" and len(parts) == 2:
                document = discovery.resource_list(self.catalog, "", parts[1])
            elif parts[0] == "apis" and len(parts) == 2:
                document = discovery.group(self.catalog, parts[1])
            elif parts[0] == "apis" and len(parts) == 3:
                document = discovery.resource_list(self.catalog, parts[1], parts[2])
        if document is None:
            raise _not_found()
        if request.method != "GET":
            raise _method_not_allowed()
        return _json_response(orjson.dumps(document))

    # bodies

    async def _body(self, request: web.Request) -> Any:
        content_type = request.content_type or JSON
        raw = await request.read()
        if content_type in ("application/json", "*/*", "application/octet-stream", "text/plain"):
            return self._parse_json(raw)
        if content_type in ("application/yaml", "application/x-yaml"):
            try:
                return yaml.safe_load(raw)
            except yaml.YAMLError as exc:
                raise status.bad_request(f"the body of the request could not be decoded: {exc}") from None
        raise status.unsupported_media_type(list(BODY_CONTENT_TYPES))

    @staticmethod
    def _parse_json(raw: bytes) -> Any:
        if not raw.strip():
            raise status.bad_request("the body of the request was empty")
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise status.bad_request(f"the body of the request could not be decoded: {exc}") from None

    async def _patch_body(self, request: web.Request, resource: ResourceType) -> tuple[Any, Any]:
        content_type = request.content_type
        patch_type = PATCH_CONTENT_TYPES.get(content_type)
        if patch_type is None:
            if content_type == "application/apply-patch+yaml":
                raise ApiError(
                    415,
                    "UnsupportedMediaType",
                    "server-side apply (application/apply-patch+yaml) is not supported by the sandbox",
                )
            raise status.unsupported_media_type(self._patch_types(resource))
        if patch_type == "strategic" and resource.strategy.merge_rules is None:
            raise status.unsupported_media_type(self._patch_types(resource))
        return patch_type, self._parse_json(await request.read())

    @staticmethod
    def _patch_types(resource: ResourceType) -> list[str]:
        types = ["application/json-patch+json", "application/merge-patch+json"]
        if resource.strategy.merge_rules is not None:
            types.append("application/strategic-merge-patch+json")
        return [*types, "application/apply-patch+yaml"]

    # responses

    def _object_response(self, resource: ResourceType, obj: StoredObject, code: int = 200) -> web.Response:
        return _json_response(resource.served(obj), code)

    def _written(self, resource: ResourceType, written: Written) -> web.Response:
        code = 201 if written.created else 200
        if written.obj is not None:
            return self._object_response(resource, written.obj, code)
        return _json_response(orjson.dumps(written.body), code)

    def _list_body(self, resource: ResourceType, result: ListResult) -> bytes:
        meta: dict[str, Any] = {"resourceVersion": str(result.resource_version)}
        if result.continue_token:
            meta["continue"] = result.continue_token
        if result.remaining is not None:
            meta["remainingItemCount"] = result.remaining
        return b"".join(
            (
                b'{"kind":"',
                resource.list_kind.encode(),
                b'","apiVersion":"',
                resource.api_version.encode(),
                b'","metadata":',
                orjson.dumps(meta),
                b',"items":[',
                b",".join(resource.list_item(obj) for obj in result.items),
                b"]}",
            )
        )

    # verbs

    def _list_query(self, request: web.Request, resource: ResourceType, namespace: str, watch: bool) -> ListQuery:
        query = request.query
        errors = _list_options_errors(query, watch)
        if errors:
            raise status.invalid(GroupKind("meta.k8s.io", "ListOptions"), "", errors)
        if "dryRun" in query:
            raise status.bad_request("dryRun is not supported by the sandbox")
        labels, fields = _selectors(query)
        self.registry.check_field_selector(resource, fields)
        limit_text = query.get("limit", "0") or "0"
        try:
            limit = int(limit_text)
        except ValueError:
            raise status.bad_request(f"invalid limit: {limit_text!r}") from None
        if limit < 0:
            raise status.bad_request("list limit must not be negative")
        return ListQuery(
            namespace=namespace or None,
            labels=labels,
            fields=fields,
            limit=limit,
            continue_token=query.get("continue") or None,
            resource_version=query.get("resourceVersion"),
            resource_version_match=query.get("resourceVersionMatch") or None,
        )

    async def _wait_for_revision(self, text: str | None) -> None:
        """A list or watch from a future resourceVersion waits a little for it, as the watch cache does."""
        if not text or text == "0":
            return
        wanted = parse_resource_version(text)
        if self.registry.storage.revision >= wanted:
            return
        reached = asyncio.Event()

        def check(change: Change) -> None:
            if change.rv >= wanted:
                reached.set()

        self.registry.storage.observe(check)
        try:
            async with asyncio.timeout(TOO_LARGE_WAIT):
                await reached.wait()
        except TimeoutError:
            pass
        finally:
            self.registry.storage.unobserve(check)

    async def _list(self, request: web.Request, resource: ResourceType, namespace: str) -> web.Response:
        list_query = self._list_query(request, resource, namespace, watch=False)
        if not list_query.continue_token:
            await self._wait_for_revision(list_query.resource_version)
        return _json_response(self._list_body(resource, self.registry.list(resource, list_query)))

    async def _watch(
        self,
        request: web.Request,
        info: RequestInfo,
        resource: ResourceType,
        *,
        user: str,
        started: Callable[[int], None],
    ) -> web.StreamResponse:
        namespace = info.namespace
        query = request.query
        list_query = self._list_query(request, resource, namespace, watch=True)
        timeout: float | None
        if query.get("timeoutSeconds"):
            try:
                timeout = float(int(query["timeoutSeconds"]))
            except ValueError:
                raise status.bad_request(f"invalid timeoutSeconds: {query['timeoutSeconds']!r}") from None
        else:
            timeout = self.settings.min_request_timeout * (1 + random.random())
        send_initial = _truthy(query.get("sendInitialEvents"))
        watch_query = WatchQuery(
            namespace=list_query.namespace if resource.namespaced else None,
            labels=list_query.labels,
            fields=list_query.fields,
            allow_bookmarks=_truthy(query.get("allowWatchBookmarks")),
            timeout=timeout,
            send_initial_events=send_initial,
        )
        version = list_query.resource_version or ""
        expired: ApiError | None = None
        watcher = Watcher(self.hub, resource, watch_query, user)
        storage = self.registry.storage
        if self.faults.take_watch_expiry(info, user):
            requested = int(version) if version.isdigit() else 0
            expired = status.too_old_resource_version(requested, max(storage.history.floor, storage.revision))
        elif version in ("", "0") or send_initial:
            await self._wait_for_revision(version if send_initial else None)
            watcher.offer_current(storage.items(resource.storage, watch_query.namespace))
            if send_initial:
                watcher.offer_bookmark(storage.revision, initial_events_end=True)
            self.hub.register(watcher)
        else:
            await self._wait_for_revision(version)
            requested = parse_resource_version(version)
            if requested > storage.revision:
                expired = status.too_large_resource_version(requested, storage.revision)
            else:
                try:
                    backlog = storage.history.since(requested)
                except RevisionExpiredError as exc:
                    expired = status.too_old_resource_version(requested, exc.floor)
                else:
                    for change in backlog:
                        if change.storage == resource.storage:
                            watcher.offer(change)
                    self.hub.register(watcher)
        response = web.StreamResponse(status=200, headers={"Content-Type": JSON, "Cache-Control": "no-cache, private"})
        response.enable_chunked_encoding()
        try:
            await response.prepare(request)
            started(200)
            if expired is not None:
                await response.write(error_line(expired))
                await response.write_eof()
                return response
            await watcher.stream(request, response)
        except (ConnectionResetError, ConnectionError):
            pass
        finally:
            self.hub.unregister(watcher)
        return response

    async def _delete(self, request: web.Request, resource: ResourceType, namespace: str, name: str) -> web.Response:
        if "dryRun" in request.query:
            raise status.bad_request("dryRun is not supported by the sandbox")
        raw = await request.read()
        body = self._parse_json(raw) if raw.strip() else None
        options = DeleteOptions.from_body(body, request.query.get("propagationPolicy"))
        outcome = self.registry.delete(resource, namespace, name, options)
        if outcome.obj is not None:
            return self._object_response(resource, outcome.obj, 202 if outcome.accepted else 200)
        assert outcome.final is not None
        if resource.strategy.returns_deleted_object:
            return self._object_response(resource, outcome.final)
        final = outcome.final
        return _json_response(status.success(final.name, resource.group, resource.plural, final.uid))

    async def _delete_collection(self, request: web.Request, resource: ResourceType, namespace: str) -> web.Response:
        list_query = self._list_query(request, resource, namespace, watch=False)
        raw = await request.read()
        body = self._parse_json(raw) if raw.strip() else None
        options = DeleteOptions.from_body(body, request.query.get("propagationPolicy"))
        result = self.registry.delete_collection(resource, list_query, options)
        return _json_response(self._list_body(resource, result))

    async def _subresource(self, request: web.Request, info: RequestInfo, resource: ResourceType) -> web.Response:
        subresource = info.subresource
        if subresource not in resource.subresources or len(info.parts) != 3:
            raise _not_found()
        method = request.method
        if subresource == "finalize" and method != "PUT":
            raise _method_not_allowed()
        if method == "GET":
            return self._object_response(resource, self.registry.get(resource, info.namespace, info.name))
        if method == "PUT":
            body = await self._body(request)
            written = self.registry.update(resource, info.namespace, info.name, body, subresource=subresource)
            return self._written(resource, written)
        if method == "PATCH":
            patch_type, patch = await self._patch_body(request, resource)
            written = self.registry.patch(
                resource, info.namespace, info.name, patch_type, patch, subresource=subresource
            )
            return self._written(resource, written)
        raise _method_not_allowed()
