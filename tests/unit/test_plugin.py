"""The pure parts of `kubectl kubernaut`: settings from a Deployment, durations, colour, the annotation value, and the
command line's refusals (before any cluster is asked)."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kubectl_kubernaut import cli
from kubectl_kubernaut.render import Style, _strip, table
from kubectl_kubernaut.report import annotation_value, compare, human_duration, remaining
from kubectl_kubernaut.settings import from_deployment
from orchestrator.routing import Decision
from orchestrator.settings import OrchestratorSettings
from shared.models import BlockReason


def deployment(*containers: dict[str, Any]) -> dict[str, Any]:
    return {"spec": {"template": {"spec": {"containers": list(containers)}}}}


def orchestrator(**extra: Any) -> dict[str, Any]:
    return {"name": "main", "command": ["kubernaut-orchestrator"], **extra}


def test_settings_are_read_by_the_orchestrators_own_class_from_env_and_args():
    origin = from_deployment(
        "ns/d",
        deployment(
            {"name": "sidecar", "command": ["envoy"], "env": [{"name": "X", "value": "1"}]},
            orchestrator(
                env=[{"name": "KUBERNAUT_ORCHESTRATOR_RECENTLY_REMEDIATED_COOLDOWN", "value": "90"}],
                args=["--consecutive-failure-threshold", "7"],
            ),
        ),
    )
    assert origin.source == "deployment" and origin.note == ""
    assert origin.settings.recently_remediated_cooldown == timedelta(seconds=90)
    assert origin.settings.consecutive_failure_threshold == 7
    assert origin.settings.routing().consecutive_failure_threshold == 7


def test_settings_ignore_the_plugins_own_environment(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("KUBERNAUT_ORCHESTRATOR_CONSECUTIVE_FAILURE_THRESHOLD", "9")
    origin = from_deployment("ns/d", deployment(orchestrator()))
    default = OrchestratorSettings.model_fields["consecutive_failure_threshold"].default
    assert origin.settings.consecutive_failure_threshold == default == 3


@pytest.mark.parametrize(
    ("container", "source", "note"),
    [
        ({"name": "web", "command": ["nginx"]}, "defaults", "no container running kubernaut-orchestrator"),
        (
            orchestrator(env=[{"name": "KUBERNAUT_ORCHESTRATOR_BACKOFF_MAX", "value": "1s"}]),
            "defaults",
            "backoff_max",
        ),
        (
            orchestrator(env=[{"name": "KUBERNAUT_ORCHESTRATOR_WORKERS", "value": "many"}]),
            "defaults",
            "KUBERNAUT_ORCHESTRATOR_WORKERS",
        ),
        (orchestrator(args=["--no-such-flag"]), "defaults", "no-such-flag"),
        (orchestrator(envFrom=[{"configMapRef": {"name": "c"}}]), "deployment", "envFrom"),
    ],
)
def test_settings_that_cannot_be_used_are_said(container: dict[str, Any], source: str, note: str):
    origin = from_deployment("ns/d", deployment(container))
    assert origin.source == source
    assert note in origin.note


@given(st.integers(min_value=0, max_value=10**7))
def test_human_duration_is_kubectl_like_and_round_trips_to_the_minute(seconds: int):
    text = human_duration(seconds)
    units = {"d": 86400, "h": 3600, "m": 60, "s": 1}
    total, number = 0, ""
    for char in text:
        if char.isdigit():
            number += char
        else:
            total += int(number) * units[char]
            number = ""
    assert total <= seconds < total + (60 if seconds >= 3600 else 1) * (60 if seconds >= 86400 else 1)


def test_remaining_rounds_up_and_stops_at_zero():
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert remaining(now + timedelta(seconds=1.2), now) == 2
    assert remaining(now - timedelta(seconds=5), now) == 0
    assert remaining(None, now) is None


@given(st.text(), st.text(min_size=1))
def test_the_annotation_value_records_who_why_and_when_as_json(reason: str, who: str):
    value = json.loads(annotation_value(who, "kubeconfig", reason, datetime(2026, 1, 1, tzinfo=UTC)))
    assert value == {"by": who, "via": "kubeconfig", "at": "2026-01-01T00:00:00Z", "reason": reason}


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_colour_only_on_a_terminal(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    assert Style.for_stream(_Tty()).enabled
    assert not Style.for_stream(io.StringIO()).enabled
    monkeypatch.setenv("NO_COLOR", "1")
    assert not Style.for_stream(_Tty()).enabled


def test_tables_align_without_counting_colour_codes():
    coloured = table([["A", "B"], [Style(True).red("x"), "y"], ["longer", "z"]], Style(True))
    plain = table([["A", "B"], ["x", "y"], ["longer", "z"]], Style(False))
    assert [_strip(line) for line in coloured] == plain
    assert [line.index(c) for line, c in zip(plain, "Byz", strict=True)] == [9, 9, 9]
    assert coloured[1] != plain[1]


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["explain"], "the following arguments are required"),
        (["explain", "pod", "x"], "expected rr"),
        (["ack", "wfe", "x"], "--reason"),
        (["ack", "thing", "x", "--reason", "r"], "ack wfe NAME"),
        (["status", "-o", "yaml"], "invalid choice"),
        (["unblock", "rr", "x", "-A"], "applies to status only"),
    ],
)
def test_usage_errors_are_one_line_and_exit_2(argv: list[str], expected: str, capsys: pytest.CaptureFixture[str]):
    assert cli.main([*argv, "--kubeconfig", "/nonexistent/kubeconfig"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and len(err.splitlines()) == 1 and expected in err


# -- compare: the request's status against the decision -----------------------------------------------------------
NOW = datetime(2026, 1, 1, 12, tzinfo=UTC)


def request(status: dict[str, Any], annotations: dict[str, str] | None = None) -> dict[str, Any]:
    meta = {"name": "rr", "namespace": "ns", "annotations": annotations or {}}
    return {"metadata": meta, "spec": {}, "status": status}


BLOCK_UNTIL = Decision.blocked(BlockReason.RECENTLY_REMEDIATED, "m", until=NOW + timedelta(minutes=1))


@pytest.mark.parametrize(
    ("status", "annotations", "decision", "requests", "agrees", "says"),
    [
        ({}, None, Decision.execute(), {}, None, "not routed yet"),
        ({"phase": "Executing", "workflowExecutionRef": {"name": "w"}}, None, Decision.execute(), {}, None, "(w)"),
        ({"phase": "Completed"}, None, Decision.execute(), {}, None, "has ended (Completed)"),
        (
            {"phase": "Blocked", "blockReason": "ConsecutiveFailures", "blockedUntil": "2026-01-01T11:59:00Z"},
            None,
            Decision.execute(),
            {},
            False,
            "as Failed (outcome NotExecuted",
        ),
        (
            {"phase": "Blocked", "blockReason": "ConsecutiveFailures", "blockedUntil": "2026-01-01T11:59:00Z"},
            {"kubernaut.ai/unblock": "x"},
            Decision.execute(),
            {},
            False,
            "(1m ago): the orchestrator re-routes it at once",
        ),
        (
            {"phase": "Blocked", "blockReason": "DuplicateInProgress", "duplicateOf": "orig"},
            None,
            Decision.execute(),
            {"ns/orig": {"metadata": {"name": "orig"}, "status": {"phase": "Failed"}}},
            False,
            "has ended (Failed): the orchestrator gives this request the original's outcome",
        ),
        (
            {"phase": "Blocked", "blockReason": "DuplicateInProgress", "duplicateOf": "orig"},
            None,
            Decision.execute(),
            {},
            False,
            "is gone: the orchestrator routes it afresh",
        ),
        (
            {"phase": "Blocked", "blockReason": "RecentlyRemediated", "blockedUntil": "2026-01-01T12:01:00Z"},
            None,
            BLOCK_UNTIL,
            {},
            True,
            None,
        ),
        (
            {"phase": "Blocked", "blockReason": "RecentlyRemediated", "blockedUntil": "2026-01-01T12:00:30Z"},
            None,
            BLOCK_UNTIL,
            {},
            False,
            "has not acted on yet",
        ),
        (
            {"phase": "Blocked", "blockReason": "ResourceBusy", "blockingWorkflowExecution": "w"},
            None,
            Decision.blocked(BlockReason.RESOURCE_BUSY, "m", blocking_workflow_execution="ns/w"),
            {},
            True,
            None,
        ),
        (
            {"phase": "Blocked", "blockReason": "ResourceBusy", "blockingWorkflowExecution": "w"},
            None,
            Decision.blocked(BlockReason.RESOURCE_BUSY, "m", blocking_workflow_execution="other/w"),
            {},
            False,
            "status says Blocked (ResourceBusy) but routing decides Block (ResourceBusy)",
        ),
    ],
)
def test_compare_says_whether_the_status_agrees_and_what_the_orchestrator_does_next(
    status, annotations, decision, requests, agrees, says
):
    result, difference = compare(request(status, annotations), decision, requests, NOW, unblock_asked=False)
    assert result is agrees
    assert (difference is None) if says is None else (says in difference), difference


def test_a_chain_skipped_in_the_same_second_as_its_completion_is_still_the_newest():
    """Same-second creation (the timestamp's resolution): who was routed first is older, as check 2 orders them."""
    from kubectl_kubernaut.report import snapshot, status_report
    from kubectl_kubernaut.settings import defaults

    def rr(name: str, started: str, status: dict[str, Any]) -> dict[str, Any]:
        return {
            "metadata": {"name": name, "namespace": "ns", "creationTimestamp": "2026-01-01T00:00:04Z"},
            "spec": {"signalFingerprint": "f" * 64, "targetResource": {"kind": "Deployment", "name": "w"}},
            "status": {"startTime": started, **status},
        }

    requests = [
        rr("zz-first", "2026-01-01T00:00:04Z", {"phase": "Completed", "outcome": "Remediated"}),
        rr("aa-second", "2026-01-01T00:00:04.5Z", {"phase": "Failed", "skipReason": "IneffectiveChain"}),
    ]
    report = status_report(snapshot(requests, []), "ns", NOW, defaults("a/b", "test"))
    assert [item["request"] for item in report["manualReview"]] == ["aa-second"]
