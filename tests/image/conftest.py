"""Fixtures of the image tests: a container engine, the image built once per session, an HTTPS sandbox.

In CI (CI=true) a missing or stopped container engine fails these tests: `.ci/run` installs and starts one, so
its absence is a broken CI, not a reason to skip. Elsewhere they are skipped, saying why, when no engine answers.

The image is built with `make image` on `$PYTHON_IMAGE` when set, else on the stand-in `make base-image` makes
(local/python:3.11-slim-bookworm) when present, else on the real python:3.11-slim-bookworm (pulled).
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from sandbox.stack import USERS
from sandbox.testing import SandboxHandle, running_sandbox
from tests.image.pod import REPOSITORY, docker

TEST_IMAGE = "kubernaut-controlplane:test"
STAND_IN_BASE = "local/python:3.11-slim-bookworm"
REAL_BASE = "python:3.11-slim-bookworm"
ADMIN = "system:admin"


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def engine_problem() -> str | None:
    """Why no container engine can be used here, or None when `docker info` answers."""
    if shutil.which("docker") is None:
        return "no docker client on PATH"
    try:
        result = subprocess.run(["docker", "info"], capture_output=True, text=True, timeout=30, check=False)
    except subprocess.TimeoutExpired:
        return "docker info did not answer within 30 s"
    if result.returncode != 0:
        lines = (result.stderr or result.stdout).strip().splitlines()
        return f"docker info failed: {lines[-1] if lines else f'exit {result.returncode}'}"
    return None


@pytest.fixture(scope="session")
def engine() -> None:
    problem = engine_problem()
    if problem is None:
        return
    if in_ci():
        pytest.fail(f"CI=true and no container engine: {problem} (.ci/run starts dockerd)", pytrace=False)
    pytest.skip(f"no container engine here ({problem}); CI runs these tests")


@dataclass(frozen=True)
class BuiltImage:
    tag: str
    base: str
    seconds: float
    output: str
    config: dict[str, Any]  # docker image inspect's .Config
    size: int

    @property
    def user(self) -> str:
        return str(self.config.get("User") or "")


def base_image() -> str:
    chosen = os.environ.get("PYTHON_IMAGE")
    if chosen:
        return chosen
    return STAND_IN_BASE if docker("image", "inspect", STAND_IN_BASE, check=False).returncode == 0 else REAL_BASE


@pytest.fixture(scope="session")
def image(engine: None) -> BuiltImage:
    """`make image` (the target users run), on the base chosen as the module docstring says."""
    base = base_image()
    started = time.monotonic()
    result = subprocess.run(
        ["make", "--no-print-directory", "image", f"IMAGE={TEST_IMAGE}", f"PYTHON_IMAGE={base}"],
        cwd=REPOSITORY,
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    seconds = time.monotonic() - started
    if result.returncode != 0:
        pytest.fail(f"make image on {base} failed (exit {result.returncode}):\n{result.stdout}\n{result.stderr}")
    inspected = yaml.safe_load(docker("image", "inspect", TEST_IMAGE).stdout)[0]
    print(
        f"\nimage: {TEST_IMAGE} on {base} built in {seconds:.1f} s, {inspected['Size'] / 1e6:.0f} MB", file=sys.stderr
    )
    return BuiltImage(TEST_IMAGE, base, seconds, result.stdout, inspected["Config"], int(inspected["Size"]))


def kustomize(overlay: str) -> list[dict[str, Any]]:
    """`kubectl kustomize manifests/overlays/OVERLAY`: the objects a user applies."""
    if shutil.which("kubectl") is None:
        pytest.fail("the image tests read the pod specs from `kubectl kustomize`; install kubectl", pytrace=False)
    output = subprocess.run(
        ["kubectl", "kustomize", str(REPOSITORY / "manifests" / "overlays" / overlay)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    return [doc for doc in yaml.safe_load_all(output) if isinstance(doc, dict)]


def service_account_user(namespace: str, name: str) -> str:
    return f"system:serviceaccount:{namespace}:{name}"


@dataclass
class Cluster:
    """An HTTPS sandbox that accepts only the tokens it was given, and a Unix socket reaching it for pods."""

    sandbox: SandboxHandle
    tokens: dict[str, str]  # user -> token
    api_socket: Path
    api_port: int

    def set_token(self, user: str, token: str) -> None:
        """Accept `token` for `user` from now on, and no longer the one before (a rotation that revokes)."""
        self.tokens[user] = token
        self.sandbox.admin.set_tokens({token: user for user, token in self.tokens.items()})


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, engine: None) -> Iterator[Cluster]:
    """The sandbox over HTTPS with every namespace and ServiceAccount the overlays use, each with a random token."""
    users = {ADMIN, USERS["tekton"]}
    namespaces = {"team-a"}
    for overlay in ("two-container", "kind"):
        for obj in kustomize(overlay):
            if obj["kind"] == "Namespace":
                namespaces.add(obj["metadata"]["name"])
            if obj["kind"] == "ServiceAccount":
                users.add(service_account_user(obj["metadata"]["namespace"], obj["metadata"]["name"]))
    users |= {service_account_user("team-a", "kubernaut-controlplane")}
    tokens = {user: secrets.token_urlsafe(24) for user in sorted(users)}
    directory = tmp_path_factory.mktemp("cluster")
    with running_sandbox(
        tls=True, tokens=tuple((token, user) for user, token in tokens.items()), namespaces=tuple(sorted(namespaces))
    ) as sandbox:
        port = int(sandbox.url.rsplit(":", 1)[1])
        socket_path = directory / "api.sock"
        bridge = subprocess.Popen(
            [sys.executable, "-m", "tests.image.bridge", f"unix:{socket_path}=tcp:127.0.0.1:{port}"],
            cwd=REPOSITORY,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert bridge.stdout is not None and bridge.stdout.readline().strip() == "ready"
            yield Cluster(sandbox, tokens, socket_path, port)
        finally:
            bridge.terminate()
            bridge.wait(10)
            if bridge.stdout is not None:
                bridge.stdout.close()
