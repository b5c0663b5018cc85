"""Where the manifests are, their builds by `kubectl kustomize` (cached), and the readers the deploy tests share."""

from __future__ import annotations

import functools
import subprocess
from pathlib import Path
from typing import Any

import yaml

from executor.settings import ExecutorSettings
from orchestrator.settings import OrchestratorSettings
from shared.settings import ControllerSettings
from tests.tools import require

KubeObject = dict[str, Any]
KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
CLUSTER_SCOPED_KINDS = {
    "Namespace",
    "CustomResourceDefinition",
    "ClusterRole",
    "ClusterRoleBinding",
    "PriorityClass",
    "StorageClass",
}

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = ROOT / "manifests"
OVERLAYS = ("kind", "production", "two-container")
SYSTEM_NAMESPACE = "kubernaut-system"
SETTINGS: dict[str, type[ControllerSettings]] = {
    "kubernaut-orchestrator": OrchestratorSettings,
    "kubernaut-executor": ExecutorSettings,
}


def kustomization_dirs() -> list[Path]:
    """Every directory under manifests/ with a kustomization, overlays first."""
    found = {path.parent for name in KUSTOMIZATION_FILES for path in MANIFESTS.rglob(name)}
    return sorted(found, key=lambda p: (not p.is_relative_to(MANIFESTS / "overlays"), str(p)))


def load_documents(path: Path) -> list[KubeObject]:
    """The non-empty YAML documents of a file."""
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def kustomize(directory: Path) -> tuple[KubeObject, ...]:
    """The objects `kubectl kustomize <directory>` builds (kubectl's own kustomize, so what `kubectl apply -k` applies).

    Fails the test with kubectl's error when the build fails; see tests/tools.py when kubectl is missing.
    """
    return _kustomize(directory.resolve(), require("kubectl"))


@functools.cache
def _kustomize(directory: Path, kubectl: str) -> tuple[KubeObject, ...]:
    result = subprocess.run(
        [kubectl, "kustomize", str(directory)], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, f"kubectl kustomize {directory} failed:\n{result.stderr}"
    return tuple(doc for doc in yaml.safe_load_all(result.stdout) if doc is not None)


def built(overlay: str) -> tuple[KubeObject, ...]:
    """The objects of an overlay, built by kubectl once per test session. Read them, do not change them."""
    return kustomize(MANIFESTS / "overlays" / overlay)


def of_kind(objects: tuple[KubeObject, ...] | list[KubeObject], kind: str) -> list[KubeObject]:
    return [obj for obj in objects if obj["kind"] == kind]


def named(objects: tuple[KubeObject, ...] | list[KubeObject], kind: str, name: str) -> KubeObject:
    matches = [obj for obj in of_kind(objects, kind) if obj["metadata"]["name"] == name]
    assert len(matches) == 1, f"expected one {kind} {name}, found {len(matches)}"
    return matches[0]


def selects(selector: dict[str, Any] | None, labels: dict[str, str]) -> bool:
    """A label selector (matchLabels and matchExpressions) against a set of labels; an empty selector selects all."""
    selector = selector or {}
    if any(labels.get(key) != value for key, value in (selector.get("matchLabels") or {}).items()):
        return False
    for expression in selector.get("matchExpressions") or []:
        key, operator, values = expression["key"], expression["operator"], expression.get("values") or []
        matched = {
            "In": key in labels and labels[key] in values,
            "NotIn": key not in labels or labels[key] not in values,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }[operator]
        if not matched:
            return False
    return True


def pod_labels(deployment: KubeObject) -> dict[str, str]:
    return dict(deployment["spec"]["template"]["metadata"]["labels"])


def containers(objects: tuple[KubeObject, ...]) -> list[tuple[KubeObject, dict[str, Any]]]:
    """(Deployment, container) for every container of every Deployment."""
    return [(dep, c) for dep in of_kind(objects, "Deployment") for c in dep["spec"]["template"]["spec"]["containers"]]


def command(container: dict[str, Any]) -> str:
    return str((container.get("command") or [""])[0])


def env(container: dict[str, Any]) -> dict[str, str]:
    """The container's environment; every value is literal (valueFrom would hide what the process reads)."""
    result = {}
    for variable in container.get("env") or []:
        assert "value" in variable, f"{container['name']}: {variable['name']} has no literal value"
        result[variable["name"]] = str(variable["value"])
    return result


def env_prefix(container: dict[str, Any]) -> str:
    return str(SETTINGS[command(container)].model_config.get("env_prefix", ""))


def settings(container: dict[str, Any]) -> ControllerSettings:
    """The settings the container's process starts with: its environment over the defaults (no flags are passed)."""
    cls = SETTINGS[command(container)]
    prefix = env_prefix(container)
    values = {name.removeprefix(prefix).lower(): value for name, value in env(container).items()}
    unknown = set(values) - set(cls.model_fields)
    assert not unknown, f"{container['name']}: {sorted(prefix + n.upper() for n in unknown)} name no setting"
    return _from_values_only(cls)(**values)


@functools.cache
def _from_values_only(cls: type[ControllerSettings]) -> type[ControllerSettings]:
    """`cls` reading only the values it is given, not this machine's environment or dotenv files."""

    class FromValues(cls):  # type: ignore[valid-type, misc]
        @classmethod
        def settings_customise_sources(cls, settings_cls: Any, init_settings: Any, *sources: Any, **more: Any) -> Any:
            return (init_settings,)

    return FromValues


def port_number(container: dict[str, Any], port: int | str) -> int:
    """A port given by number or by the name of one of the container's ports."""
    if isinstance(port, int):
        return port
    numbers = [p["containerPort"] for p in container.get("ports") or [] if p.get("name") == port]
    assert len(numbers) == 1, f"{container['name']} has no port named {port}"
    return int(numbers[0])
