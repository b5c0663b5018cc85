"""The API-server fixtures of tests/integration (a client, a fresh namespace), for tests that drive the sandbox."""

from tests.integration.conftest import kube, namespace

__all__ = ["kube", "namespace"]
