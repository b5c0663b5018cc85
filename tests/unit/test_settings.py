import subprocess
import sys
from datetime import timedelta

import pytest

from executor.settings import ExecutorSettings
from orchestrator.settings import OrchestratorSettings
from shared.settings import SettingsProblem, load_settings


def load(cls, argv=(), **env):
    return load_settings(cls, list(argv), "test")


def test_defaults_follow_the_spec(monkeypatch):
    settings = load(OrchestratorSettings)
    assert settings.consecutive_failure_threshold == 3
    assert settings.consecutive_failure_cooldown == timedelta(hours=1)
    assert settings.recently_remediated_cooldown == timedelta(minutes=5)
    assert (settings.backoff_base, settings.backoff_max) == (timedelta(seconds=60), timedelta(seconds=600))
    assert (settings.backoff_multiplier, settings.backoff_jitter_percent) == (2.0, 10.0)
    assert settings.executing_timeout == timedelta(minutes=30)
    assert (settings.metrics_port, settings.health_port) == (9090, 8081)
    assert settings.watched_namespaces == []
    assert (settings.ineffective_chain_threshold, settings.ineffective_window) == (3, timedelta(minutes=30))
    assert (settings.dry_run, settings.dry_run_namespaces) == (False, [])
    executor = load(ExecutorSettings)
    assert executor.execution_namespace == "kubernaut-workflows"
    assert executor.default_service_account == "kubernaut-workflow-runner"


def test_environment_and_flags_are_read_and_flags_win(monkeypatch):
    monkeypatch.setenv("KUBERNAUT_ORCHESTRATOR_CONSECUTIVE_FAILURE_COOLDOWN", "1h30m")
    monkeypatch.setenv("KUBERNAUT_ORCHESTRATOR_WATCHED_NAMESPACES", "team-a, team-b")
    monkeypatch.setenv("KUBERNAUT_ORCHESTRATOR_WORKERS", "2")
    settings = load(OrchestratorSettings, ["--workers", "8", "--backoff-base", "500ms", "--backoff-max", "2"])
    assert settings.consecutive_failure_cooldown == timedelta(minutes=90)
    assert settings.watched_namespaces == ["team-a", "team-b"]
    assert settings.workers == 8
    assert settings.backoff().nominal(1) == timedelta(milliseconds=500)
    assert settings.backoff().nominal(5) == timedelta(seconds=2)


@pytest.mark.parametrize(
    ("env", "value", "named"),
    [
        (
            "KUBERNAUT_ORCHESTRATOR_CONSECUTIVE_FAILURE_THRESHOLD",
            "zero",
            "KUBERNAUT_ORCHESTRATOR_CONSECUTIVE_FAILURE_THRESHOLD",
        ),
        (
            "KUBERNAUT_ORCHESTRATOR_CONSECUTIVE_FAILURE_THRESHOLD",
            "0",
            "KUBERNAUT_ORCHESTRATOR_CONSECUTIVE_FAILURE_THRESHOLD",
        ),
        (
            "KUBERNAUT_ORCHESTRATOR_RECENTLY_REMEDIATED_COOLDOWN",
            "0s",
            "KUBERNAUT_ORCHESTRATOR_RECENTLY_REMEDIATED_COOLDOWN",
        ),
        ("KUBERNAUT_ORCHESTRATOR_EXECUTING_TIMEOUT", "soon", "KUBERNAUT_ORCHESTRATOR_EXECUTING_TIMEOUT"),
        ("KUBERNAUT_ORCHESTRATOR_METRICS_PORT", "70000", "KUBERNAUT_ORCHESTRATOR_METRICS_PORT"),
        ("KUBERNAUT_ORCHESTRATOR_LOG_FORMAT", "xml", "KUBERNAUT_ORCHESTRATOR_LOG_FORMAT"),
        ("KUBERNAUT_ORCHESTRATOR_BACKOFF_MAX", "10s", "backoff_max"),
        (
            "KUBERNAUT_ORCHESTRATOR_INEFFECTIVE_CHAIN_THRESHOLD",
            "-1",
            "KUBERNAUT_ORCHESTRATOR_INEFFECTIVE_CHAIN_THRESHOLD",
        ),
        (
            "KUBERNAUT_ORCHESTRATOR_INEFFECTIVE_CHAIN_THRESHOLD",
            "3.5",
            "KUBERNAUT_ORCHESTRATOR_INEFFECTIVE_CHAIN_THRESHOLD",
        ),
        ("KUBERNAUT_ORCHESTRATOR_INEFFECTIVE_WINDOW", "0", "KUBERNAUT_ORCHESTRATOR_INEFFECTIVE_WINDOW"),
        ("KUBERNAUT_ORCHESTRATOR_INEFFECTIVE_WINDOW", "half an hour", "KUBERNAUT_ORCHESTRATOR_INEFFECTIVE_WINDOW"),
        ("KUBERNAUT_ORCHESTRATOR_DRY_RUN", "maybe", "KUBERNAUT_ORCHESTRATOR_DRY_RUN"),
        ("KUBERNAUT_ORCHESTRATOR_DRY_RUN_NAMESPACES", "team-a,Team_B", "KUBERNAUT_ORCHESTRATOR_DRY_RUN_NAMESPACES"),
    ],
)
def test_bad_values_name_the_setting(monkeypatch, env, value, named):
    monkeypatch.setenv(env, value)
    with pytest.raises(SettingsProblem) as caught:
        load(OrchestratorSettings)
    assert named in str(caught.value)
    assert "\n" not in str(caught.value)


def test_the_chain_check_can_be_turned_off_and_dry_run_set_per_namespace(monkeypatch):
    monkeypatch.setenv("KUBERNAUT_ORCHESTRATOR_INEFFECTIVE_CHAIN_THRESHOLD", "0")
    monkeypatch.setenv("KUBERNAUT_ORCHESTRATOR_DRY_RUN_NAMESPACES", "team-a, team-b")
    settings = load(OrchestratorSettings, ["--ineffective-window", "1h", "--dry-run"])
    assert settings.ineffective_chain_threshold == 0
    assert settings.ineffective_window == timedelta(hours=1)
    assert settings.dry_run is True
    assert settings.dry_run_namespaces == ["team-a", "team-b"]


def run(module, *argv, env=None):
    import os

    full_env = {k: v for k, v in os.environ.items() if not k.startswith("KUBERNAUT_")}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", module, *argv], check=False, capture_output=True, text=True, env=full_env, timeout=60
    )


@pytest.mark.parametrize("module", ["orchestrator", "executor"])
def test_help_lists_the_settings(module):
    result = run(module, "--help")
    assert result.returncode == 0
    assert "--workers" in result.stdout and "--metrics-port" in result.stdout
    if module == "orchestrator":
        for flag in ("--ineffective-chain-threshold", "--ineffective-window", "--dry-run", "--dry-run-namespaces"):
            assert flag in result.stdout, flag


def test_bad_setting_exits_non_zero_with_one_line_naming_it():
    result = run("orchestrator", env={"KUBERNAUT_ORCHESTRATOR_CONSECUTIVE_FAILURE_THRESHOLD": "zero"})
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "KUBERNAUT_ORCHESTRATOR_CONSECUTIVE_FAILURE_THRESHOLD" in lines[0] and "'zero'" in lines[0]


@pytest.mark.parametrize(
    ("name", "value"),
    [("INEFFECTIVE_CHAIN_THRESHOLD", "many"), ("INEFFECTIVE_WINDOW", "-5m"), ("DRY_RUN", "perhaps")],
)
def test_a_bad_chain_or_dry_run_setting_stops_the_process_with_one_line(name, value):
    result = run("orchestrator", env={f"KUBERNAUT_ORCHESTRATOR_{name}": value})
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and f"KUBERNAUT_ORCHESTRATOR_{name}" in lines[0], lines


def test_executor_bad_setting_exits_non_zero():
    result = run("executor", env={"KUBERNAUT_EXECUTOR_EXECUTION_NAMESPACE": ""})
    assert result.returncode == 2
    assert "KUBERNAUT_EXECUTOR_EXECUTION_NAMESPACE" in result.stderr
