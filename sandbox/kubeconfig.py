"""Kubeconfig files pointing at a sandbox; the bearer token names the user (the audit log records it)."""

from __future__ import annotations

from pathlib import Path
from typing import Final

import yaml

ADMIN_USER: Final = "sandbox-admin"


def kubeconfig(server: str, user: str = ADMIN_USER, namespace: str = "default") -> dict[str, object]:
    """A kubeconfig for `server` whose credentials identify `user`."""
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "sandbox", "cluster": {"server": server}}],
        "users": [{"name": user, "user": {"token": user}}],
        "contexts": [{"name": "sandbox", "context": {"cluster": "sandbox", "user": user, "namespace": namespace}}],
        "current-context": "sandbox",
        "preferences": {},
    }


def write_kubeconfig(path: Path, server: str, user: str = ADMIN_USER, namespace: str = "default") -> Path:
    """Write a kubeconfig to `path` (parent directories created) and return the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(kubeconfig(server, user, namespace), sort_keys=False))
    return path
