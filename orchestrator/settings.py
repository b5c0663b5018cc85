"""Orchestrator settings (SPEC 4.7): env prefix KUBERNAUT_ORCHESTRATOR_, or the matching --flag."""

from __future__ import annotations

import re
from datetime import timedelta

from pydantic import Field, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from orchestrator.routing import RoutingSettings
from shared.backoff import Backoff
from shared.settings import ControllerSettings, NamespaceList, PositiveDuration

_NAMESPACE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


class OrchestratorSettings(ControllerSettings):
    """Routing thresholds, cooldowns and backoff, plus the common controller settings."""

    model_config = SettingsConfigDict(env_prefix="KUBERNAUT_ORCHESTRATOR_")

    consecutive_failure_threshold: int = Field(
        3, ge=1, description="Consecutive workflow failures of one fingerprint that block it (ConsecutiveFailures)."
    )
    consecutive_failure_cooldown: PositiveDuration = Field(
        timedelta(hours=1), description="How long a fingerprint stays blocked after its last failure."
    )
    recently_remediated_cooldown: PositiveDuration = Field(
        timedelta(minutes=5),
        description="How long after a successful run the same workflow may not run again on a target.",
    )
    backoff_base: PositiveDuration = Field(timedelta(seconds=60), description="Backoff after the first failure.")
    backoff_max: PositiveDuration = Field(timedelta(seconds=600), description="Longest backoff.")
    backoff_multiplier: float = Field(2.0, ge=1.0, le=100.0, description="Backoff growth per failure.")
    backoff_jitter_percent: float = Field(10.0, ge=0.0, le=100.0, description="Backoff jitter, +- percent.")
    executing_timeout: PositiveDuration = Field(
        timedelta(minutes=30), description="Default time a workflow may execute before its request times out."
    )
    ineffective_chain_threshold: int = Field(
        3,
        ge=0,
        le=1000,
        description="Ineffective remediations in a row (the alert back within the window) after which a signal goes "
        "to manual review instead (IneffectiveChain); 0 turns the check off.",
    )
    ineffective_window: PositiveDuration = Field(
        timedelta(minutes=30),
        description="A completed remediation is ineffective when the next request of its signal and target is "
        "created no later than this after it completed.",
    )
    dry_run: bool = Field(
        False, description="Route every request as in production but create no WorkflowExecution (outcome DryRun)."
    )
    dry_run_namespaces: NamespaceList = Field(
        default_factory=list, description="Comma-separated namespaces whose requests are dry runs (see --dry-run)."
    )
    lease_name: str = Field("kubernaut-orchestrator", min_length=1, description="Name of the leader-election Lease.")

    @field_validator("dry_run_namespaces")
    @classmethod
    def _namespaces_are_names(cls, value: list[str]) -> list[str]:
        bad = [name for name in value if not _NAMESPACE.match(name)]
        if bad:
            raise ValueError(f"not namespace names (lower-case DNS labels, at most 63 characters): {bad}")
        return value

    @model_validator(mode="after")
    def _backoff_is_consistent(self) -> OrchestratorSettings:
        if self.backoff_max < self.backoff_base:
            raise ValueError(f"backoff_max ({self.backoff_max}) must be at least backoff_base ({self.backoff_base})")
        return self

    def backoff(self) -> Backoff:
        return Backoff(self.backoff_base, self.backoff_max, self.backoff_multiplier, self.backoff_jitter_percent)

    def routing(self) -> RoutingSettings:
        """What routing reads; the reconciler and `kubectl kubernaut explain` both take it from here."""
        return RoutingSettings(
            consecutive_failure_threshold=self.consecutive_failure_threshold,
            consecutive_failure_cooldown=self.consecutive_failure_cooldown,
            recently_remediated_cooldown=self.recently_remediated_cooldown,
            backoff=self.backoff(),
            ineffective_chain_threshold=self.ineffective_chain_threshold,
            ineffective_window=self.ineffective_window,
        )
