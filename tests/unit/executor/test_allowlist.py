"""Who may run what (SPEC 5): bundle patterns and ServiceAccounts, and their settings."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from executor.allowlist import allowlist_problems, bundle_allowed
from executor.settings import ExecutorSettings
from shared.settings import SettingsProblem, load_settings

PATTERN = "registry.example.com/kubernaut/*"


@pytest.mark.parametrize(
    ("bundle", "allowed"),
    [
        ("registry.example.com/kubernaut/restart:v1", True),
        ("registry.example.com/kubernaut/restart@sha256:" + "a" * 64, True),
        ("registry.example.com/kubernaut/restart", True),
        ("registry.example.com/kubernaut/a/b:1", False),  # '*' stays within one path segment
        ("registry.example.com/kubernaut-evil/x:1", False),
        ("registry.example.com/kubernaut", False),
        ("evil.com/registry.example.com/kubernaut/x:1", False),  # anchored at the start
        ("registry.example.com/kubernaut/x:1 ghcr.io/attacker/y", False),
        ("registry.example.com/kubernaut/x:1\nghcr.io/attacker/y", False),  # anchored at the very end
        ("registryXexample.com/kubernaut/x:1", False),  # '.' is a dot
        ("ghcr.io/attacker/anything:latest", False),
    ],
)
def test_a_bundle_pattern_matches_within_a_path_segment(bundle, allowed):
    assert bundle_allowed(bundle, [PATTERN]) is allowed


def test_double_star_crosses_segments_and_question_mark_is_one_character():
    assert bundle_allowed("registry.example.com/kubernaut/a/b:1", ["registry.example.com/kubernaut/**"])
    assert bundle_allowed("r.io/w1:1", ["r.io/w?:1"]) and not bundle_allowed("r.io/w/:1", ["r.io/w?:1"])


@given(st.text(max_size=60))
def test_only_bundles_under_the_prefix_are_allowed(bundle):
    if bundle_allowed(bundle, [PATTERN]):
        rest = bundle.removeprefix("registry.example.com/kubernaut/")
        assert rest != bundle and "/" not in rest


def test_the_problems_name_the_value_and_the_setting():
    problems = allowlist_problems(
        "ghcr.io/attacker/x:1", "default", bundles=[PATTERN], service_accounts=["kubernaut-workflow-runner"]
    )
    assert problems == [
        "spec.workflowRef.executionBundle 'ghcr.io/attacker/x:1' is not allowed by KUBERNAUT_EXECUTOR_ALLOWED_BUNDLES "
        f"({PATTERN})",
        "ServiceAccount 'default' is not allowed by KUBERNAUT_EXECUTOR_ALLOWED_SERVICE_ACCOUNTS "
        "(kubernaut-workflow-runner)",
    ]
    assert (
        allowlist_problems(
            "anything", "kubernaut-workflow-runner", bundles=None, service_accounts=["kubernaut-workflow-runner"]
        )
        == []
    )


def test_the_settings_default_to_any_bundle_and_only_the_default_runner(monkeypatch):
    settings = load_settings(ExecutorSettings, [], "test")
    assert settings.allowed_bundles is None
    assert settings.service_accounts() == ["kubernaut-workflow-runner"]
    monkeypatch.setenv("KUBERNAUT_EXECUTOR_DEFAULT_SERVICE_ACCOUNT", "runner")
    assert load_settings(ExecutorSettings, [], "test").service_accounts() == ["runner"]


def test_the_settings_are_comma_separated(monkeypatch):
    monkeypatch.setenv("KUBERNAUT_EXECUTOR_ALLOWED_BUNDLES", "registry.example.com/kubernaut/*, r.io/w/**")
    monkeypatch.setenv("KUBERNAUT_EXECUTOR_ALLOWED_SERVICE_ACCOUNTS", "kubernaut-workflow-runner,restarter")
    settings = load_settings(ExecutorSettings, [], "test")
    assert settings.allowed_bundles == ["registry.example.com/kubernaut/*", "r.io/w/**"]
    assert settings.service_accounts() == ["kubernaut-workflow-runner", "restarter"]


@pytest.mark.parametrize(
    ("env", "value", "words"),
    [
        ("KUBERNAUT_EXECUTOR_ALLOWED_BUNDLES", "*", "must name a registry"),
        ("KUBERNAUT_EXECUTOR_ALLOWED_BUNDLES", "**/x", "must name a registry"),
        ("KUBERNAUT_EXECUTOR_ALLOWED_BUNDLES", "r.io/[a-z]*", "may contain only"),
        ("KUBERNAUT_EXECUTOR_ALLOWED_BUNDLES", " , ", "empty"),
        ("KUBERNAUT_EXECUTOR_ALLOWED_SERVICE_ACCOUNTS", "Not_A_Name", "not a valid ServiceAccount name"),
        ("KUBERNAUT_EXECUTOR_ALLOWED_SERVICE_ACCOUNTS", ",", "empty"),
    ],
)
def test_bad_allowlists_are_refused_naming_the_setting(monkeypatch, env, value, words):
    monkeypatch.setenv(env, value)
    with pytest.raises(SettingsProblem) as raised:
        load_settings(ExecutorSettings, [], "test")
    assert env in str(raised.value) and words in str(raised.value)
