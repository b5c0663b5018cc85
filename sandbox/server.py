"""The sandbox: storage, registry, controllers and the two HTTP listeners (API and admin), wired together.

`Sandbox.start()` serves the Kubernetes API on one port and the admin API (fault injection, inspection) on
another, so a test can take the API down and still reach the admin port to bring it back.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import trustme
import yaml
from aiohttp import web

from sandbox.admin import admin_application
from sandbox.api import ApiServer, ApiSettings
from sandbox.audit import DEFAULT_CAPACITY, AuditLog
from sandbox.controllers import CustomResourceDefinitionController, NamespaceController
from sandbox.customresources import crd_resource
from sandbox.faults import Faults
from sandbox.gc import GarbageCollector
from sandbox.kinds import builtin_resources
from sandbox.registry import Registry, ValidationSwitch
from sandbox.resources import Catalog
from sandbox.status import ApiError
from sandbox.storage import DEFAULT_HISTORY_CAPACITY, Storage
from sandbox.watch import WatchHub

log = logging.getLogger(__name__)

REPOSITORY: Final = Path(__file__).resolve().parents[1]
DEFAULT_CRDS: Final = (REPOSITORY / "manifests" / "crds", REPOSITORY / "manifests" / "dev" / "tekton-crds.yaml")
INITIAL_NAMESPACES: Final = ("default", "kube-system", "kube-public", "kube-node-lease")
MAX_REQUEST_BODY: Final = 3 * 1024 * 1024  # the real server's limit on request bodies


@dataclass(frozen=True)
class SandboxConfig:
    host: str = "127.0.0.1"
    port: int = 0  # 0: any free port
    admin_port: int = 0
    crds: tuple[Path, ...] = DEFAULT_CRDS
    validation: bool = True
    bookmark_interval: float = 60.0
    history_capacity: int = DEFAULT_HISTORY_CAPACITY
    audit_capacity: int = DEFAULT_CAPACITY
    namespaces: tuple[str, ...] = ()  # created at start, besides the ones every cluster has
    # HTTPS with a certificate of a throw-away CA made at start (`Sandbox.ca_pem`), for 127.0.0.1, localhost and
    # the in-cluster names of the `kubernetes` Service.
    tls: bool = False
    # token -> user: only these bearer tokens are accepted (401 otherwise). None: any bearer token is its user.
    tokens: tuple[tuple[str, str], ...] | None = None
    api: ApiSettings = field(default_factory=ApiSettings)


def crd_documents(paths: Iterable[Path]) -> Iterator[dict[str, Any]]:
    """Every CustomResourceDefinition in the given YAML files and directories (`*.yaml`, `*.yml`)."""
    for path in paths:
        files = sorted([*path.glob("*.yaml"), *path.glob("*.yml")]) if path.is_dir() else [path]
        for file in files:
            for document in yaml.safe_load_all(file.read_text()):
                if isinstance(document, dict) and document.get("kind") == "CustomResourceDefinition":
                    yield document


class Sandbox:
    """A Kubernetes API server for tests and demos; start it inside a running event loop."""

    def __init__(self, config: SandboxConfig | None = None) -> None:
        self.config = config or SandboxConfig()
        self.storage = Storage(self.config.history_capacity)
        self.catalog = Catalog()
        for resource in builtin_resources():
            self.catalog.add(resource)
        self.crd_resource = crd_resource()
        self.catalog.add(self.crd_resource)
        self.validation = ValidationSwitch(self.config.validation)
        self.registry = Registry(self.storage, self.catalog, self.validation)
        self.hub = WatchHub(self.storage, self.config.bookmark_interval)
        self.faults = Faults()
        self.audit = AuditLog(self.config.audit_capacity)
        self.api = ApiServer(
            registry=self.registry,
            catalog=self.catalog,
            hub=self.hub,
            request_faults=self.faults,
            audit=self.audit,
            settings=self.config.api,
        )
        self.api.tokens = dict(self.config.tokens) if self.config.tokens is not None else None
        self.ca_pem: bytes | None = None  # the CA that signed the serving certificate, with tls
        self._ssl_context = self._make_tls() if self.config.tls else None
        self.port = self.config.port
        self.admin_port = self.config.admin_port
        self._api_runner: web.AppRunner | None = None
        self._api_site: web.TCPSite | None = None
        self._admin_runner: web.AppRunner | None = None
        self._back_up: asyncio.TimerHandle | None = None
        self._down_until: float | None = None

    def _make_tls(self) -> ssl.SSLContext:
        authority = trustme.CA(organization_name="kubernaut sandbox")
        names = (self.config.host, "localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc")
        certificate = authority.issue_cert(*dict.fromkeys(names))
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        certificate.configure_cert(context)
        self.ca_pem = authority.cert_pem.bytes()
        return context

    @property
    def url(self) -> str:
        scheme = "https" if self._ssl_context is not None else "http"
        return f"{scheme}://{self.config.host}:{self.port}"

    @property
    def admin_url(self) -> str:
        return f"http://{self.config.host}:{self.admin_port}"

    async def start(self) -> None:
        """Bootstrap the cluster's state (namespaces, CRDs) and start both listeners."""
        GarbageCollector(self.registry)
        NamespaceController(self.registry)
        CustomResourceDefinitionController(self.registry, self.crd_resource, self.hub)
        namespaces = self.catalog.lookup("", "v1", "namespaces")
        assert namespaces is not None
        for name in dict.fromkeys([*INITIAL_NAMESPACES, *self.config.namespaces]):
            self.registry.create(namespaces, "", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
        for document in crd_documents(self.config.crds):
            try:
                self.registry.create(self.crd_resource, "", document)
            except ApiError as exc:
                raise ValueError(
                    f"cannot serve CRD {document.get('metadata', {}).get('name')}: {exc.message}"
                ) from None
        await self.settle()
        api_app = web.Application(client_max_size=MAX_REQUEST_BODY)
        api_app.router.add_route("*", "/{path:.*}", self.api.handle)
        self._api_runner = web.AppRunner(api_app, handler_cancellation=True, access_log=None)
        await self._api_runner.setup()
        await self._listen()
        self._admin_runner = web.AppRunner(admin_application(self), access_log=None)
        await self._admin_runner.setup()
        admin_site = web.TCPSite(self._admin_runner, self.config.host, self.admin_port)
        await admin_site.start()
        self.admin_port = admin_site.port
        log.info("sandbox.started url=%s admin=%s", self.url, self.admin_url)

    async def settle(self) -> None:
        """Let the built-in controllers finish what they were told (a few loop turns)."""
        for _ in range(20):
            await asyncio.sleep(0)

    async def _listen(self) -> None:
        assert self._api_runner is not None
        site = web.TCPSite(self._api_runner, self.config.host, self.port, ssl_context=self._ssl_context)
        await site.start()
        self._api_site = site
        self.port = site.port
        self.api.server_address = f"{self.config.host}:{self.port}"

    async def _close_api(self) -> int:
        """Stop listening and drop every API connection (watches included); returns the watches dropped."""
        dropped = self.hub.close_all(graceful=False)
        if self._api_site is not None:
            await self._api_site.stop()
            self._api_site = None
        if self._api_runner is not None and self._api_runner.server is not None:
            for connection in self._api_runner.server.connections:
                connection.force_close()
        await asyncio.sleep(0)
        return dropped

    async def restart(self) -> None:
        """Close every connection and the listener, keep the state, listen again on the same port."""
        self._cancel_back_up()
        await self._close_api()
        await self._listen()
        log.info("sandbox.restarted url=%s", self.url)

    async def go_down(self, seconds: float) -> None:
        """Refuse connections for `seconds`, then serve again on the same port, with the same state."""
        self._cancel_back_up()
        if self._api_site is not None:
            await self._close_api()
        loop = asyncio.get_running_loop()
        self._down_until = loop.time() + seconds
        self._back_up = loop.call_later(seconds, lambda: asyncio.ensure_future(self.come_back_up()))
        log.info("sandbox.down seconds=%s", seconds)

    async def come_back_up(self) -> None:
        self._cancel_back_up()
        if self._api_site is None:
            await self._listen()
            log.info("sandbox.up url=%s", self.url)

    def _cancel_back_up(self) -> None:
        if self._back_up is not None:
            self._back_up.cancel()
            self._back_up = None
        self._down_until = None

    def down_remaining(self) -> float | None:
        if self._down_until is None:
            return None
        return max(0.0, self._down_until - asyncio.get_running_loop().time())

    async def clear_faults(self) -> None:
        """Disarm every fault: request faults, hung watches, and a listener that is down."""
        self.faults.clear()
        self.hub.release()
        await self.come_back_up()

    async def stop(self) -> None:
        self._cancel_back_up()
        self.hub.close_all(graceful=False)
        if self._api_runner is not None:
            await self._api_runner.cleanup()
        if self._admin_runner is not None:
            await self._admin_runner.cleanup()
        log.info("sandbox.stopped")

    def state(self) -> dict[str, Any]:
        """Everything a chaos test may want to print: revision, objects, watches, faults, switches."""
        connections = 0
        if self._api_runner is not None and self._api_runner.server is not None:
            connections = len(self._api_runner.server.connections)
        history = self.storage.history
        return {
            "url": self.url,
            "resourceVersion": self.storage.revision,
            "validation": self.validation.enabled,
            "objects": {name: self.storage.count(name) for name in sorted(self.storage.storages())},
            "watches": [watcher.describe() for watcher in self.hub.watchers()],
            "connections": connections,
            "listening": self._api_site is not None,
            "downRemainingSeconds": self.down_remaining(),
            "watchesHung": self.hub.hung(),
            "hangRemainingSeconds": _finite(self.hub.hang_remaining()),
            "faults": self.faults.state(),
            "history": {
                "floor": history.floor,
                "oldest": history.oldest,
                "newest": self.storage.revision,
                "size": len(history),
                "capacity": history.capacity,
            },
            "auditLastSequence": self.audit.last_sequence,
        }


def _finite(seconds: float | None) -> float | None:
    # JSON has no infinity: "until released" is reported as null next to watchesHung.
    return seconds if seconds is not None and seconds != float("inf") else None
