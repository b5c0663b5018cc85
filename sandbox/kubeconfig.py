"""Kubeconfig files pointing at a sandbox; the bearer token names the user (the audit log records it)."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Final

import yaml

ADMIN_USER: Final = "sandbox-admin"


def kubeconfig(
    server: str,
    user: str = ADMIN_USER,
    namespace: str = "default",
    ca_pem: bytes | None = None,
    token: str | None = None,
) -> dict[str, object]:
    """A kubeconfig for `server` whose credentials identify `user` (`ca_pem`: the CA to trust, for https; `token`:
    the bearer token, by default the user's name, which a sandbox without a token list takes as the user)."""
    cluster: dict[str, str] = {"server": server}
    if ca_pem is not None:
        cluster["certificate-authority-data"] = base64.b64encode(ca_pem).decode()
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "sandbox", "cluster": cluster}],
        "users": [{"name": user, "user": {"token": token or user}}],
        "contexts": [{"name": "sandbox", "context": {"cluster": "sandbox", "user": user, "namespace": namespace}}],
        "current-context": "sandbox",
        "preferences": {},
    }


def write_kubeconfig(
    path: Path,
    server: str,
    user: str = ADMIN_USER,
    namespace: str = "default",
    ca_pem: bytes | None = None,
    token: str | None = None,
) -> Path:
    """Write a kubeconfig to `path` (parent directories created) and return the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(kubeconfig(server, user, namespace, ca_pem, token), sort_keys=False))
    return path
