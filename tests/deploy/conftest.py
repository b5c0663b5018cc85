import pytest

from tests.deploy.manifests import OVERLAYS, KubeObject, built


@pytest.fixture(params=OVERLAYS)
def overlay(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def objects(overlay: str) -> tuple[KubeObject, ...]:
    """The overlay's objects as `kubectl kustomize` builds them."""
    return built(overlay)
