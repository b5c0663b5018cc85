import pytest

from tests.deploy.kustomize import KubeObject
from tests.deploy.manifests import OVERLAYS, built


@pytest.fixture(params=OVERLAYS)
def overlay(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def objects(overlay: str) -> tuple[KubeObject, ...]:
    """The overlay's objects from the Python builder, so every check runs with or without kubectl."""
    return built(overlay)
