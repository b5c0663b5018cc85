"""The orchestrator's settings as its Deployment gives them: the container's env and args, parsed by the
orchestrator's own settings class (so a value is read exactly as the orchestrator reads it), else the defaults.

Pure: the Deployment was read by `cluster`; nothing here touches the process environment.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, EnvSettingsSource, PydanticBaseSettingsSource, SettingsConfigDict

from orchestrator.settings import OrchestratorSettings
from shared.duration import format_duration
from shared.settings import SettingsProblem, load_settings

ORCHESTRATOR_COMMAND = "kubernaut-orchestrator"
DEFAULT_SOURCE = "kubernaut-system/kubernaut-orchestrator"


@dataclass(frozen=True, slots=True)
class SettingsOrigin:
    """The settings explain used, and where they came from."""

    settings: OrchestratorSettings
    source: str  # "deployment" or "defaults"
    deployment: str  # NS/NAME asked for
    note: str = ""
    """Why the defaults, or what of the Deployment could not be read."""
    unresolved: tuple[str, ...] = field(default=())
    """Variables set from a ConfigMap or Secret (valueFrom, envFrom): not read, their defaults used."""


def defaults(deployment: str, why: str) -> SettingsOrigin:
    return SettingsOrigin(_parse({}, []), "defaults", deployment, why)


def from_deployment(deployment_key: str, deployment: Mapping[str, Any]) -> SettingsOrigin:
    """The settings of the orchestrator container of `deployment` (the container whose command is
    kubernaut-orchestrator, as in every shape of manifests/; else a container named orchestrator)."""
    containers = ((deployment.get("spec") or {}).get("template") or {}).get("spec", {}).get("containers") or []
    container = next((c for c in containers if (c.get("command") or [""])[0] == ORCHESTRATOR_COMMAND), None)
    container = container or next((c for c in containers if c.get("name") == "orchestrator"), None)
    if container is None:
        return defaults(deployment_key, f"Deployment {deployment_key} has no container running {ORCHESTRATOR_COMMAND}")
    env: dict[str, str] = {}
    unresolved: list[str] = []
    for variable in container.get("env") or []:
        name = str(variable.get("name") or "")
        if "value" in variable or "valueFrom" not in variable:
            env[name] = str(variable.get("value") or "")
        elif name.startswith(str(OrchestratorSettings.model_config.get("env_prefix"))):
            unresolved.append(name)
    if container.get("envFrom"):
        unresolved.append("envFrom")
    command = [str(part) for part in container.get("command") or []]
    args = [*command[1:], *(str(arg) for arg in container.get("args") or [])]
    try:
        settings = _parse(env, args)
    except SettingsProblem as problem:
        return defaults(deployment_key, f"the orchestrator would refuse its settings: {problem}")
    note = ""
    if unresolved:
        note = f"not read (from a ConfigMap or Secret), defaults used: {', '.join(sorted(unresolved))}"
    return SettingsOrigin(settings, "deployment", deployment_key, note, tuple(sorted(unresolved)))


def _parse(env: Mapping[str, str], args: list[str]) -> OrchestratorSettings:
    """OrchestratorSettings from `env` and `args` instead of this process's environment and command line."""
    given = {name.lower(): value for name, value in env.items()}

    class GivenEnvironment(EnvSettingsSource):
        def _load_env_vars(self) -> Mapping[str, str | None]:
            return given

    class FromDeployment(OrchestratorSettings):
        model_config = SettingsConfigDict(cli_exit_on_error=False)

        @classmethod
        def settings_customise_sources(
            cls,
            settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            return (init_settings, GivenEnvironment(settings_cls))

    parsed = load_settings(FromDeployment, args, ORCHESTRATOR_COMMAND)
    return OrchestratorSettings.model_construct(**{name: getattr(parsed, name) for name in _fields()})


def _fields() -> dict[str, FieldInfo]:
    return OrchestratorSettings.model_fields


def shown(settings: OrchestratorSettings) -> dict[str, Any]:
    """The settings routing reads, JSON-ready: camelCase names, durations as the orchestrator's flags take them."""
    values: dict[str, Any] = {}
    for name in _fields():
        if name not in _ROUTING_FIELDS:
            continue
        value = getattr(settings, name)
        head, *rest = name.split("_")
        values[head + "".join(part.title() for part in rest)] = (
            format_duration(value) if isinstance(value, timedelta) else value
        )
    return values


_ROUTING_FIELDS = frozenset(
    {
        "consecutive_failure_threshold",
        "consecutive_failure_cooldown",
        "recently_remediated_cooldown",
        "backoff_base",
        "backoff_max",
        "backoff_multiplier",
        "backoff_jitter_percent",
        "ineffective_chain_threshold",
        "ineffective_window",
        "dry_run",
        "dry_run_namespaces",
    }
)
