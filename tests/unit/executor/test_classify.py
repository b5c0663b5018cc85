"""Failure classification, rule by rule and in order (SPEC 5)."""

import pytest

from executor.classify import classify, failure_reason, started, was_execution_failure
from shared.models import FailureReason as F

RULES = [
    ("message oomkilled", "Failed", "step-x OOMKilled", F.OOM_KILLED),
    ("message oom", "Failed", "container oom", F.OOM_KILLED),
    ("reason timeout", "PipelineRunTimeout", "took too long", F.DEADLINE_EXCEEDED),
    ("message timeout", "Failed", "step timeout reached", F.DEADLINE_EXCEEDED),
    ("message deadline", "Failed", "deadline exceeded", F.DEADLINE_EXCEEDED),
    ("message forbidden", "Failed", "pods is forbidden", F.FORBIDDEN),
    ("message rbac", "Failed", "RBAC: access denied", F.FORBIDDEN),
    ("message permission denied", "Failed", "permission denied", F.FORBIDDEN),
    ("message quota", "Failed", "exceeded quota: compute", F.RESOURCE_EXHAUSTED),
    ("message resource exhausted", "Failed", "resource exhausted on node", F.RESOURCE_EXHAUSTED),
    ("message imagepullbackoff", "Failed", "ImagePullBackOff for step", F.IMAGE_PULL_BACK_OFF),
    ("message image pull", "Failed", "image pull failed", F.IMAGE_PULL_BACK_OFF),
    ("message invalid", "CouldntGetPipeline", "invalid bundle", F.CONFIGURATION_ERROR),
    ("message configuration", "Failed", "bad configuration", F.CONFIGURATION_ERROR),
    ("reason taskfailed", "TaskFailed", "something broke", F.TASK_FAILED),
    ("message task and failed", "Failed", "Task restart has failed", F.TASK_FAILED),
    ("nothing matches", "Failed", "something else", F.UNKNOWN),
    ("empty", None, None, F.UNKNOWN),
    ("case does not matter", "Failed", "OOMKILLED", F.OOM_KILLED),
]


@pytest.mark.parametrize(("reason", "message", "expected"), [r[1:] for r in RULES], ids=[r[0] for r in RULES])
def test_each_rule(reason, message, expected):
    assert failure_reason(reason, message) is expected


ORDER = [
    ("oom before timeout", "PipelineRunTimeout", "oomkilled", F.OOM_KILLED),
    ("timeout before forbidden", "Failed", "timeout: forbidden", F.DEADLINE_EXCEEDED),
    ("forbidden before quota", "Failed", "forbidden: exceeded quota", F.FORBIDDEN),
    ("quota before image pull", "Failed", "quota while image pull", F.RESOURCE_EXHAUSTED),
    ("image pull before invalid", "Failed", "image pull: invalid reference", F.IMAGE_PULL_BACK_OFF),
    ("invalid before task failed", "TaskFailed", "invalid input, task failed", F.CONFIGURATION_ERROR),
    ("reason timeout is enough", "PipelineRunTimeout", "task failed", F.DEADLINE_EXCEEDED),
    ("a reason only counts for timeout and taskfailed", "OOMKilled", "nothing", F.UNKNOWN),
]

# Words that count only in the message (or only in the reason) do not count elsewhere.
NOT_THERE = [
    ("oom in the reason", "OOMKilled", "step ended", F.UNKNOWN),
    ("deadline in the reason", "DeadlineExceeded", "step ended", F.UNKNOWN),
    ("forbidden in the reason", "Forbidden", "step ended", F.UNKNOWN),
    ("rbac in the reason", "RBACDenied", "step ended", F.UNKNOWN),
    ("quota in the reason", "ExceededQuota", "step ended", F.UNKNOWN),
    ("image pull in the reason", "ImagePullBackOff", "step ended", F.UNKNOWN),
    ("invalid in the reason", "InvalidParams", "step ended", F.UNKNOWN),
    ("configuration in the reason", "ConfigurationError", "step ended", F.UNKNOWN),
    ("task without failed", "Failed", "task restart ended", F.UNKNOWN),
    ("failed without task", "Failed", "step failed", F.UNKNOWN),
    ("taskfailed in the message counts as task and failed", "Failed", "TaskFailed", F.TASK_FAILED),
]


@pytest.mark.parametrize(("reason", "message", "expected"), [r[1:] for r in NOT_THERE], ids=[r[0] for r in NOT_THERE])
def test_each_rule_looks_only_where_the_spec_says(reason, message, expected):
    assert failure_reason(reason, message) is expected


# One message keyword per rule, in SPEC order; with the keywords of rules k..7 all present, rule k wins.
KEYWORDS = [
    (F.OOM_KILLED, "oomkilled"),
    (F.DEADLINE_EXCEEDED, "deadline"),
    (F.FORBIDDEN, "forbidden"),
    (F.RESOURCE_EXHAUSTED, "quota"),
    (F.IMAGE_PULL_BACK_OFF, "image pull"),
    (F.CONFIGURATION_ERROR, "invalid"),
    (F.TASK_FAILED, "task failed"),
]


@pytest.mark.parametrize("first", range(len(KEYWORDS)), ids=[k[0].value for k in KEYWORDS])
def test_the_rules_apply_in_spec_order(first):
    message = " ".join(word for _, word in reversed(KEYWORDS[first:]))
    assert failure_reason("Failed", message) is KEYWORDS[first][0]


@pytest.mark.parametrize(("reason", "message", "expected"), [r[1:] for r in ORDER], ids=[r[0] for r in ORDER])
def test_the_first_matching_rule_wins(reason, message, expected):
    assert failure_reason(reason, message) is expected


MATRIX = [
    # reason, started (child runs exist), was execution failure
    *[(r, True, r not in (F.IMAGE_PULL_BACK_OFF, F.CONFIGURATION_ERROR, F.RESOURCE_EXHAUSTED)) for r in F],
    *[(r, False, False) for r in F],  # nothing started: never, whatever the reason says (SPEC 5)
]


@pytest.mark.parametrize(("reason", "started", "expected"), MATRIX)
def test_was_execution_failure_matrix(reason, started, expected):
    assert was_execution_failure(reason, started=started) is expected


# Tekton's resolution and validation reasons come with a start time and no child runs: never an execution failure.
UNRESOLVED = [
    "CouldntGetPipeline",
    "PipelineRunResolutionFailed",
    "CouldntGetTask",
    "PipelineValidationFailed",
    "InvalidGraph",
    "ParameterMissing",
    "ParameterTypeMismatch",
    "ObjectParameterMissKeys",
    "ResourceVerificationFailed",
    "PipelineRunTimeout",
    "Cancelled",
]


@pytest.mark.parametrize("reason", UNRESOLVED)
def test_a_run_without_child_runs_never_counts_as_an_execution_failure(reason):
    assert classify(reason, "task x failed: deadline, oom", started=started([])).was_execution_failure is False
    assert classify(reason, "task x failed", started=started(None)).was_execution_failure is False


def test_started_means_a_child_run_exists():
    assert started([{"kind": "TaskRun", "name": "a"}])
    assert started([{"kind": "CustomRun", "name": "a"}])
    assert not started([]) and not started(None)


def test_classify_combines_both():
    result = classify("TaskFailed", "step failed", started=True)
    assert (result.reason, result.was_execution_failure) == (F.TASK_FAILED, True)
    result = classify("CouldntGetPipeline", "invalid bundle", started=False)
    assert (result.reason, result.was_execution_failure) == (F.CONFIGURATION_ERROR, False)
