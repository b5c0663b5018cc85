"""The in-cluster configuration: the pod's ServiceAccount token, the cluster's CA and the API server's address.

kubernetes-asyncio's `InClusterConfigLoader` builds the Configuration (`https://$KUBERNETES_SERVICE_HOST:PORT`,
bracketed for IPv6, the CA file); two things are ours:

- Files are checked first, so a missing, unreadable or empty token or CA file stops the process with one line
  naming the file (the library says "Service token file does not exist." without a path, and an unreadable CA
  would only fail at the first TLS handshake).
- The token is re-read when the file changes. kubelet rotates projected tokens (at 80 % of their lifetime, by
  swapping the directory's `..data` symlink, so the new file is a new inode) and the old token stops working when
  it expires; client-go re-reads the file too. kubernetes-asyncio 36.1's own hook re-reads it once a minute, keeps
  a trailing newline (which aiohttp refuses in a header), and raises from the request if the file is briefly
  unreadable. Ours does one `stat` per request, so a rotated token is used from the next request on, and a failed
  re-read keeps the token it has (logged once) instead of failing the request.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import structlog
from kubernetes_asyncio.client import Configuration
from kubernetes_asyncio.config.config_exception import ConfigException
from kubernetes_asyncio.config.incluster_config import InClusterConfigLoader

from shared.settings import SERVICE_ACCOUNT_DIR

log = structlog.get_logger("kubernaut.client")

HOST_ENV = "KUBERNETES_SERVICE_HOST"
PORT_ENV = "KUBERNETES_SERVICE_PORT"


class InClusterConfigError(Exception):
    """The in-cluster configuration cannot be used; the message is one line naming the file or variable."""


def _describe(error: OSError) -> str:
    return error.strerror or type(error).__name__


class ServiceAccountToken:
    """The token file's current content, re-read whenever the file is another file or has changed."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.value = ""
        self._stamp: tuple[int, int, int, int] | None = None
        self._failure: str | None = None

    def read(self) -> str:
        """Read the file now; InClusterConfigError if it is missing, unreadable or empty."""
        try:
            with self.path.open("rb") as file:
                stat = os.fstat(file.fileno())
                raw = file.read()
        except OSError as error:
            raise InClusterConfigError(
                f"cannot read the ServiceAccount token file {self.path}: {_describe(error)}"
            ) from None
        try:
            token = raw.decode("ascii").strip()
        except UnicodeDecodeError:
            raise InClusterConfigError(f"the ServiceAccount token file {self.path} is not ASCII text") from None
        if not token:
            raise InClusterConfigError(f"the ServiceAccount token file {self.path} is empty")
        if any(char in token for char in "\r\n"):
            raise InClusterConfigError(f"the ServiceAccount token file {self.path} holds more than one line")
        self.value = token
        self._stamp = (stat.st_dev, stat.st_ino, stat.st_mtime_ns, stat.st_size)
        return token

    def changed(self) -> bool:
        try:
            stat = self.path.stat()
        except OSError:
            return True  # read() says why
        return (stat.st_dev, stat.st_ino, stat.st_mtime_ns, stat.st_size) != self._stamp

    def refresh(self, configuration: Any) -> None:
        """kubernetes-asyncio's `refresh_api_key_hook`: called before every request."""
        if self.changed():
            try:
                self.read()
            except InClusterConfigError as error:
                if str(error) != self._failure:  # once per distinct problem, not once per request
                    log.warning("token.refresh_failed", error=str(error), kept="the last token read")
                self._failure = str(error)
            else:
                if self._failure is not None:
                    log.info("token.refreshed", path=str(self.path))
                self._failure = None
        configuration.api_key["BearerToken"] = f"Bearer {self.value}"


def _check_ca(path: Path) -> None:
    try:
        data = path.read_bytes()
    except OSError as error:
        raise InClusterConfigError(f"cannot read the ServiceAccount CA file {path}: {_describe(error)}") from None
    try:
        if not data.strip():  # ssl takes empty cadata without complaint
            raise ValueError("empty")
        ssl.create_default_context(cadata=data.decode("ascii"))
    except (ssl.SSLError, ValueError, UnicodeDecodeError):
        raise InClusterConfigError(f"the ServiceAccount CA file {path} holds no PEM certificate") from None


def incluster_configuration(
    directory: Path = SERVICE_ACCOUNT_DIR, environ: Mapping[str, str] = os.environ
) -> Configuration:
    """A Configuration for the API server the pod runs under, authenticated by its ServiceAccount token."""
    for name in (HOST_ENV, PORT_ENV):
        if not environ.get(name):
            raise InClusterConfigError(f"in-cluster configuration: {name} is not set")
    token = ServiceAccountToken(directory / "token")
    token.read()
    ca_file = directory / "ca.crt"
    _check_ca(ca_file)
    configuration = Configuration()
    loader = InClusterConfigLoader(
        token_filename=str(token.path), cert_filename=str(ca_file), try_refresh_token=False, environ=dict(environ)
    )
    try:
        loader.load_and_set(configuration)
    except (ConfigException, OSError) as error:  # a file changed under us between our check and the library's
        raise InClusterConfigError(f"in-cluster configuration: {error}") from None
    configuration.api_key["BearerToken"] = f"Bearer {token.value}"
    configuration.refresh_api_key_hook = token.refresh
    return configuration
