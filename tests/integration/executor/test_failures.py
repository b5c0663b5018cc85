"""SPEC 5 failures over real HTTP: every failure class from a failed run, with the failed task, step and exit code
read from its TaskRun; a run that fails before it starts; the API refusing the PipelineRun; transient API errors
(retried, never a failure); and an execution whose spec cannot run."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from sandbox.testing import SandboxHandle
from tests.integration.executor.conftest import WFE, Scene
from tests.integration.inloop import InLoopController


@pytest.fixture(autouse=True)
def no_faults_left(sandbox: SandboxHandle) -> Iterator[None]:
    yield
    sandbox.admin.clear_faults()


def _failing(message: str | None = None, **sim: str) -> dict[str, str]:
    """SIM_ params of a run whose first task fails in step "apply" with exit code 2 (unless told otherwise)."""
    params = {"outcome": "Failed", "failed_task": "task-1", "failed_step": "apply", "exit_code": "2", **sim}
    if message is not None:
        params["message"] = message
    return params


# id, SIM_ params, execution spec extras, reason, wasExecutionFailure, (task, step, exit code)
CLASSES: list[tuple[str, dict[str, str], dict[str, Any], str, bool, tuple[str, str, int]]] = [
    (
        "OOMKilled",
        _failing('step "apply" was OOMKilled', exit_code="137"),
        {},
        "OOMKilled",
        True,
        ("task-1", "apply", 137),
    ),
    (
        "DeadlineExceeded",
        {"duration": "30", "failed_step": "wait", "exit_code": "143"},
        {"executionConfig": {"timeout": "300ms"}},
        "DeadlineExceeded",
        True,
        ("task-2", "wait", 143),
    ),
    (
        "Forbidden",
        _failing('deployments.apps "web" is forbidden: User "runner" cannot patch resource "deployments"'),
        {},
        "Forbidden",
        True,
        ("task-1", "apply", 2),
    ),
    (
        "ResourceExhausted",
        _failing("exceeded quota: compute-resources, requested: limits.memory=2Gi"),
        {},
        "ResourceExhausted",
        False,
        ("task-1", "apply", 2),
    ),
    (
        "ImagePullBackOff",
        _failing('step "apply" is waiting: ImagePullBackOff'),
        {},
        "ImagePullBackOff",
        False,
        ("task-1", "apply", 2),
    ),
    (
        "ConfigurationError",
        _failing("invalid input: REPLICAS must be a number"),
        {},
        "ConfigurationError",
        False,
        ("task-1", "apply", 2),
    ),
    ("TaskFailed", _failing(), {}, "TaskFailed", True, ("task-1", "apply", 2)),
    (
        "Unknown",
        _failing("the run was cancelled", reason="PipelineRunCancelled"),
        {},
        "Unknown",
        True,
        ("task-1", "apply", 2),
    ),
]


@pytest.mark.parametrize(
    ("sim", "spec", "reason", "was_execution_failure", "failed"), [c[1:] for c in CLASSES], ids=[c[0] for c in CLASSES]
)
async def test_a_failed_run_is_classified_with_the_failed_task(
    scene: Scene,
    executor: InLoopController,
    sim: dict[str, str],
    spec: dict[str, Any],
    reason: str,
    was_execution_failure: bool,
    failed: tuple[str, str, int],
):
    await scene.execution("web", sim=sim, **spec)
    status = await scene.phase("web", "Failed")
    run = await scene.run(scene.target("web"))
    condition = run["status"]["conditions"][0]
    details = status["failureDetails"]
    assert details["reason"] == reason
    assert details["wasExecutionFailure"] is was_execution_failure
    assert (details["failedTaskName"], details["failedStepName"], details["exitCode"]) == failed
    assert details["message"] == condition["message"]
    assert details["failedAt"] == status["completionTime"]
    assert status["completionTime"] == run["status"]["completionTime"]
    assert details["executionTimeBeforeFailure"] == status["duration"]
    assert status["pipelineRunStatus"]["status"] == "False"
    assert status["pipelineRunStatus"]["reason"] == condition["reason"]
    assert {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]}["Succeeded"] == ("False", reason)
    assert await scene.phases("web") == ["Running", "Failed"]
    await scene.has_events("web", "PipelineRunCreated", "WorkflowFailed")
    assert executor.metric("executions_total", outcome="Failed") == 1
    assert executor.metric("failures_total", reason=reason, was_execution_failure=str(was_execution_failure).lower())


@pytest.mark.parametrize(
    ("sim", "reason"),
    [
        ({"outcome": "FailBeforeStart"}, "ConfigurationError"),
        ({"outcome": "FailBeforeStart", "reason": "PipelineRunTimeout", "message": "timed out"}, "DeadlineExceeded"),
        (
            {
                "outcome": "FailBeforeStart",
                "reason": "CouldntGetPipeline",
                "message": "error requesting remote resource",
            },
            "Unknown",
        ),
        (
            {"outcome": "FailBeforeStart", "reason": "PipelineValidationFailed", "message": "task failed validation"},
            "TaskFailed",
        ),
    ],
    ids=["unresolvable bundle", "timed out before start", "resolver error", "validation mentions a failed task"],
)
async def test_a_run_that_fails_before_it_starts_is_never_an_execution_failure(
    scene: Scene, executor: InLoopController, sim: dict[str, str], reason: str
):
    """Real Tekton's shape: a start time (set before resolution), no child TaskRuns. Whatever the reason and message
    say, nothing ran (SPEC 5): wasExecutionFailure is false, so the next request is not sent to manual review."""
    await scene.execution("web", sim=sim)
    status = await scene.phase("web", "Failed")
    details = status["failureDetails"]
    assert (details["reason"], details["wasExecutionFailure"]) == (reason, False)
    assert "startTime" in status, "Tekton's start time is recorded; it proves nothing"
    assert "failedTaskName" not in details
    assert "Started" not in {c["type"] for c in status["conditions"]}
    assert not await scene.task_runs()
    assert executor.metric("failures_total", reason=reason, was_execution_failure="false") == 1


# What the API server says after "pipelineruns.tekton.dev is forbidden: " (the sandbox adds that part).
QUOTA = (
    "exceeded quota: workflows, requested: count/pipelineruns.tekton.dev=1, used: count/pipelineruns.tekton.dev=10,"
    " limited: count/pipelineruns.tekton.dev=10"
)
RBAC = (
    'User "system:serviceaccount:kubernaut-system:kubernaut-executor" cannot create resource "pipelineruns" '
    'in API group "tekton.dev" in the namespace "kubernaut-workflows"'
)


@pytest.mark.parametrize(
    ("message", "reason"), [(RBAC, "Forbidden"), (QUOTA, "ResourceExhausted")], ids=["rbac", "quota"]
)
async def test_a_refused_pipeline_run_fails_the_execution_before_it_ran(
    scene: Scene, sandbox: SandboxHandle, executor: InLoopController, message: str, reason: str
):
    sandbox.admin.fail_requests(
        code=403, count=1, verb="create", resource="pipelineruns", namespace=scene.runs_namespace, message=message
    )
    await scene.execution("web")
    status = await scene.phase("web", "Failed")
    details = status["failureDetails"]
    assert (details["reason"], details["wasExecutionFailure"]) == (reason, False)
    assert f"pipelineruns.tekton.dev is forbidden: {message}" in details["message"]
    assert [r.code for r in scene.creates()] == [403], "a refusal is final: not retried"
    assert not await scene.runs()
    assert executor.metric("failures_total", reason=reason, was_execution_failure="false") == 1
    assert executor.metric("pipelinerun_creations_total") == 0


@pytest.mark.parametrize(
    ("code", "when", "expected"),
    [
        (500, "before", [500, 500, 201]),
        (429, "before", [429, 429, 201]),
        (503, "before", [503, 503, 201]),
        (500, "after", [500, 409]),  # the first create landed, its answer was lost: the retry adopts it
    ],
    ids=["500", "429", "503", "500 after the write"],
)
async def test_transient_errors_on_create_are_retried_and_never_a_failure(
    scene: Scene, sandbox: SandboxHandle, executor: InLoopController, code: int, when: str, expected: list[int]
):
    sandbox.admin.fail_requests(
        code=code,
        count=len(expected) - 1 if when == "before" else 1,
        retry_after=0,
        when=when,  # type: ignore[arg-type]
        verb="create",
        resource="pipelineruns",
        namespace=scene.runs_namespace,
    )
    await scene.execution("web")
    status = await scene.phase("web", "Completed")
    assert "failureDetails" not in status
    assert "Failed" not in await scene.phases("web")
    assert [r.code for r in scene.creates()] == expected
    assert len(await scene.runs()) == 1


# Spec field, its bad value, and what the message names. The sandbox's schema validation is off for these: an
# execution the API server let through must still fail with a message naming the field.
BAD_SPECS: list[tuple[str, dict[str, Any], str]] = [
    ("target", {"targetResource": "web"}, "spec.targetResource"),
    ("target kind case", {"targetResource": "prod/Deployment/web"}, "spec.targetResource"),
    (
        "bundle",
        {"workflowRef": {"workflowId": "restart-pods", "executionBundle": "not a bundle"}},
        "spec.workflowRef.executionBundle",
    ),
    ("timeout", {"executionConfig": {"timeout": "0s"}}, "spec.executionConfig.timeout"),
    (
        "service account",
        {"executionConfig": {"serviceAccountName": "Not_A_Name"}},
        "spec.executionConfig.serviceAccountName",
    ),
    ("missing workflowRef", {"workflowRef": None}, "spec.workflowRef"),
    ("parameters", {"parameters": {"bad name!": "1"}}, "spec.parameters"),
]


@pytest.fixture
def no_validation(sandbox: SandboxHandle) -> Iterator[None]:
    sandbox.admin.set_validation(False)
    try:
        yield
    finally:
        sandbox.admin.set_validation(True)


@pytest.mark.usefixtures("no_validation")
@pytest.mark.parametrize(("change", "field"), [b[1:] for b in BAD_SPECS], ids=[b[0] for b in BAD_SPECS])
async def test_an_invalid_spec_fails_with_a_message_naming_the_field(
    scene: Scene, executor: InLoopController, change: dict[str, Any], field: str
):
    body = await scene.execution("good")  # created first, so the bad one is handled while this one runs
    bad = {**body["spec"], "targetResource": scene.target("bad"), **change}
    await scene.kube.create(
        WFE,
        {
            "apiVersion": body["apiVersion"],
            "kind": body["kind"],
            "metadata": {"name": "bad", "namespace": scene.namespace},
            "spec": {key: value for key, value in bad.items() if value is not None},
        },
    )
    status = await scene.phase("bad", "Failed")
    details = status["failureDetails"]
    assert (details["reason"], details["wasExecutionFailure"]) == ("ConfigurationError", False)
    assert field in details["message"]
    await scene.has_events("bad", "WorkflowFailed")
    assert executor.metric("failures_total", reason="ConfigurationError", was_execution_failure="false") == 1
    assert await scene.phase("good", "Completed"), "the executor keeps running"
    assert [r.code for r in scene.creates()] == [201], "only the good execution got a PipelineRun"


@pytest.mark.parametrize(
    ("code", "readable"), [(500, True), (503, True), (403, False), (404, False)], ids=["500", "503", "403", "404"]
)
async def test_the_failed_task_run_is_read_again_after_a_transient_error(
    scene: Scene, sandbox: SandboxHandle, executor: InLoopController, code: int, readable: bool
):
    """A transient error reading the TaskRun is retried; a TaskRun that cannot be read leaves the details out."""
    sandbox.admin.fail_requests(
        code=code, count=1 if readable else 100, verb="get", resource="taskruns", namespace=scene.runs_namespace
    )
    await scene.execution("web", sim=_failing())
    details = (await scene.phase("web", "Failed"))["failureDetails"]
    assert (details["reason"], details["wasExecutionFailure"]) == ("TaskFailed", True)
    if readable:
        assert (details["failedTaskName"], details["failedStepName"], details["exitCode"]) == ("task-1", "apply", 2)
    else:
        assert "failedTaskName" not in details and "exitCode" not in details


async def test_a_reason_longer_than_the_status_allows_is_cut_not_a_stuck_execution(
    scene: Scene, executor: InLoopController
):
    """The PipelineRun is Tekton's: its condition's reason has no length limit, pipelineRunStatus.reason has 1024."""
    await scene.execution("web", sim={"outcome": "Failed", "reason": "Custom" * 200, "message": "the task failed"})
    status = await scene.phase("web", "Failed")
    assert status["pipelineRunStatus"]["reason"] == ("Custom" * 200)[:1024]
    assert status["failureDetails"]["reason"] == "TaskFailed"
