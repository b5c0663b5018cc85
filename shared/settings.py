"""Settings common to both controllers, and the loader that reads them from flags and the environment.

Each process subclasses `ControllerSettings` with its own env prefix. Every setting can be given as an environment
variable (`KUBERNAUT_ORCHESTRATOR_WORKERS=8`) or a flag (`--workers 8`); flags win. A bad value stops the process
with one line naming the setting, its environment variable and its flag.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import AfterValidator, BeforeValidator, Field, ValidationError
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict, SettingsError

from shared.duration import parse_duration

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")  # token, ca.crt, namespace
IN_CLUSTER_NAMESPACE_FILE = SERVICE_ACCOUNT_DIR / "namespace"


def _duration(value: Any) -> Any:
    return parse_duration(value) if isinstance(value, str) else value


def _positive(value: timedelta) -> timedelta:
    if value <= timedelta(0):
        raise ValueError(f"must be a positive duration (got {value})")
    return value


def _comma_list(value: Any) -> Any:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


PositiveDuration = Annotated[timedelta, BeforeValidator(_duration), AfterValidator(_positive)]
"""A duration written as seconds (`90`) or Go style (`90s`, `5m`, `1h30m`); must be > 0."""

Port = Annotated[int, Field(ge=0, le=65535)]  # 0 picks a free port (tests)
NamespaceList = Annotated[list[str], NoDecode, BeforeValidator(_comma_list)]


def in_cluster() -> bool:
    """True when running in a pod with a service account (the in-cluster config will work)."""
    return bool(os.environ.get("KUBERNETES_SERVICE_HOST")) and IN_CLUSTER_NAMESPACE_FILE.exists()


def pod_namespace(default: str = "kubernaut-system") -> str:
    try:
        return IN_CLUSTER_NAMESPACE_FILE.read_text().strip() or default
    except OSError:
        return default


class ControllerSettings(BaseSettings):
    """Settings shared by the orchestrator and the executor."""

    model_config = SettingsConfigDict(
        cli_kebab_case=True,
        cli_implicit_flags=True,
        cli_hide_none_type=True,
        cli_avoid_json=True,
        cli_exit_on_error=True,
        extra="ignore",
    )

    kubeconfig: Path | None = Field(
        None, description="Kubeconfig file; default: in-cluster config, else $KUBECONFIG or ~/.kube/config."
    )
    watched_namespaces: NamespaceList = Field(
        default_factory=list, description="Comma-separated namespaces to watch; empty watches all namespaces."
    )
    workers: int = Field(4, ge=1, le=256, description="Concurrent reconciles.")
    leader_election: bool | None = Field(
        None, description="Elect a leader through a Lease so replicas can run side by side; default: on in a cluster."
    )
    lease_namespace: str | None = Field(
        None, min_length=1, description="Namespace of the leader-election Lease; default: the pod's namespace."
    )
    bind_address: str = Field("0.0.0.0", description="Address the metrics and health servers listen on.")
    metrics_port: Port = Field(9090, description="Port of /metrics.")
    health_port: Port = Field(8081, description="Port of /healthz and /readyz.")
    log_format: Literal["auto", "json", "console"] = Field(
        "auto", description="Log format; auto: console on a terminal, JSON otherwise."
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field("info", description="Lowest level logged.")

    def leader_election_enabled(self) -> bool:
        return in_cluster() if self.leader_election is None else self.leader_election

    def resolved_lease_namespace(self) -> str:
        return self.lease_namespace or pod_namespace()


class SettingsProblem(Exception):
    """Configuration that cannot be used; the message is one line naming the setting."""


S = TypeVar("S", bound=ControllerSettings)


def load_settings(cls: type[S], argv: list[str], prog: str) -> S:
    """Read settings from `argv` and the environment; raise SettingsProblem with a one-line message."""
    try:
        return cls(_cli_parse_args=argv, _cli_prog_name=prog)
    except ValidationError as exc:
        raise SettingsProblem(_describe(cls, exc)) from None
    except SettingsError as exc:
        raise SettingsProblem(str(exc).replace("\n", " ")) from None


def setting_names(cls: type[ControllerSettings], name: str) -> str:
    """How a user sets field `name`: its environment variable and its flag."""
    env = f"{cls.model_config.get('env_prefix', '')}{name}".upper()
    return f"{env} (--{name.replace('_', '-')})"


def _describe(cls: type[ControllerSettings], exc: ValidationError) -> str:
    problems = []
    for error in exc.errors(include_url=False):
        if not error["loc"]:  # a check across several settings names them in its message
            problems.append(f"invalid settings: {error['msg']}")
            continue
        problems.append(
            f"invalid setting {setting_names(cls, str(error['loc'][0]))} = {error['input']!r}: {error['msg']}"
        )
    return "; ".join(problems)
