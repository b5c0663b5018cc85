"""A scenario of RemediationRequests (examples/demo/scenario.yaml): its model, the driver that plays it against an
API server, and the checks of what came out. The demo (sandbox/demo.py) and the end-to-end tests (tests/e2e) run
the same scenario through the same driver and the same checks.

    scenario = load_scenario(SCENARIO)
    observed = await play(kube, scenario, on_change=print_row)
    problems = check_requests(scenario, observed, notifications) + check_metrics(scenario, orchestrator.samples())

The driver creates each request when its `after` condition holds, as seen through a watch of the namespace's
requests (an Informer, no polling), and records every request's path: the phases it showed, with the block reason
while Blocked. It stops once every request it created is terminal, or at the scenario's timeout.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from executor.metrics import PREFIX as EXECUTOR_PREFIX
from orchestrator.metrics import PREFIX as ORCHESTRATOR_PREFIX
from shared.models import (
    BlockReason,
    FailurePhase,
    NotificationRequest,
    NotificationType,
    Outcome,
    RemediationPhase,
    RemediationRequest,
    SkipReason,
)
from shared.runtime.client import ApiError, KubeClient
from shared.runtime.informer import EventHandler, Informer
from shared.runtime.store import KubeDict, section

REPOSITORY: Final = Path(__file__).resolve().parents[1]
SCENARIO: Final = REPOSITORY / "examples" / "demo" / "scenario.yaml"
TIME_BASED: Final = frozenset(
    {BlockReason.CONSECUTIVE_FAILURES, BlockReason.RECENTLY_REMEDIATED, BlockReason.EXPONENTIAL_BACKOFF}
)
RR: Final = RemediationRequest.RESOURCE
NR: Final = NotificationRequest.RESOURCE
_NAME: Final = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


class ScenarioError(ValueError):
    """A scenario file that cannot be played; the message names the file and every bad field."""


# -- the model --------------------------------------------------------------------------------------------------
class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Step(_Strict):
    """A state of a request on its path: a phase, and the block reason while Blocked (`Blocked ResourceBusy`)."""

    phase: RemediationPhase
    reason: BlockReason | None = None

    @classmethod
    def parse(cls, text: str) -> Step:
        phase, _, reason = text.partition(" ")
        if phase == RemediationPhase.BLOCKED and not reason:
            raise ValueError(f"{text!r}: a Blocked step names its block reason, e.g. 'Blocked ResourceBusy'")
        if reason and phase != RemediationPhase.BLOCKED:
            raise ValueError(f"{text!r}: only a Blocked step has a reason")
        return cls(phase=RemediationPhase(phase), reason=BlockReason(reason) if reason else None)

    def __str__(self) -> str:
        return f"{self.phase} {self.reason}" if self.reason else str(self.phase)


class After(_Strict):
    request: str
    phase: RemediationPhase


class Expectation(_Strict):
    """How a request must go and end; a field left out must be absent from its status."""

    path: tuple[Step, ...] = Field(min_length=1)
    outcome: Outcome | None = None
    failure_phase: FailurePhase | None = Field(None, alias="failurePhase")
    failure_reason: str | None = Field(None, alias="failureReason")
    skip_reason: SkipReason | None = Field(None, alias="skipReason")
    ineffective_count: int | None = Field(None, ge=1, alias="ineffectiveCount")
    notifications: tuple[NotificationType, ...] = ()

    @field_validator("path", mode="before")
    @classmethod
    def _steps(cls, value: Any) -> Any:
        if not isinstance(value, list):
            return value
        return [Step.parse(item) if isinstance(item, str) else item for item in value]

    @field_validator("path")
    @classmethod
    def _ends_terminal(cls, value: tuple[Step, ...]) -> tuple[Step, ...]:
        if not value[-1].phase.terminal:
            raise ValueError(f"the path must end in a terminal phase, not {value[-1]}")
        if any(step.phase is RemediationPhase.PENDING for step in value):
            raise ValueError("Pending is written together with the first decision: leave it out of the path")
        return value

    @property
    def phase(self) -> RemediationPhase:
        return self.path[-1].phase


class Request(_Strict):
    name: str = Field(min_length=1, max_length=63)
    after: After | None = None
    note: str = ""
    signal: str = Field(min_length=1, max_length=253)
    severity: str = "warning"
    target: str = Field(description="Kind/name of the target, in the scenario's namespace")
    workflow: str = Field(min_length=1, max_length=253)
    parameters: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict, description="e.g. kubernaut.ai/dry-run: 'true'")
    expect: Expectation

    @field_validator("name")
    @classmethod
    def _dns_label(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError(f"{value!r} is not a DNS label (lower-case letters, digits and '-')")
        return value

    @field_validator("target")
    @classmethod
    def _kind_and_name(cls, value: str) -> str:
        kind, _, name = value.partition("/")
        if not kind or not name or "/" in name:
            raise ValueError(f"{value!r} is not Kind/name, e.g. Deployment/web")
        return value

    def body(self, namespace: str) -> KubeDict:
        """The RemediationRequest as an alerting adapter would create it."""
        kind, _, name = self.target.partition("/")
        fingerprint = hashlib.sha256(f"{self.signal}/{namespace}/{kind.lower()}/{name}".encode()).hexdigest()
        spec: KubeDict = {
            "signalFingerprint": fingerprint,
            "signalName": self.signal,
            "severity": self.severity,
            "signalType": "alert",
            "signalSource": "kubernaut-demo",
            "targetResource": {"kind": kind, "name": name, "namespace": namespace},
            "workflowRef": {
                "workflowId": self.workflow,
                "version": "1.0.0",
                "executionBundle": f"registry.example.com/kubernaut/workflows/{self.workflow}:1.0.0",
            },
        }
        if self.parameters:
            spec["parameters"] = dict(self.parameters)
        metadata: KubeDict = {"name": self.name, "namespace": namespace}
        if self.annotations:
            metadata["annotations"] = dict(self.annotations)
        return {"apiVersion": RR.api_version, "kind": RR.kind, "metadata": metadata, "spec": spec}


class Scenario(_Strict):
    namespace: str = "default"
    timeout: float = Field(90.0, gt=0, description="Seconds for the whole run")
    orchestrator: dict[str, str] = Field(default_factory=dict, description="KUBERNAUT_ORCHESTRATOR_<name> settings")
    notifications: dict[NotificationType, int] = Field(default_factory=dict)
    requests: tuple[Request, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _references(self) -> Scenario:
        seen: set[str] = set()
        for index, request in enumerate(self.requests):
            if request.name in seen:
                raise ValueError(f"requests[{index}]: the name {request.name!r} is used twice")
            if request.after is not None and request.after.request not in seen:
                raise ValueError(
                    f"requests[{index}] ({request.name}).after: {request.after.request!r} is not an earlier request"
                )
            seen.add(request.name)
        return self

    def request(self, name: str) -> Request:
        return next(r for r in self.requests if r.name == name)


def load_scenario(path: Path = SCENARIO) -> Scenario:
    """The scenario in `path`; ScenarioError naming the file and each bad field otherwise."""
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as error:
        raise ScenarioError(f"{path}: {error}") from None
    try:
        return Scenario.model_validate(data)
    except ValidationError as error:
        problems = [
            f"{'.'.join(str(part) for part in problem['loc']) or '(top level)'}: {problem['msg']}"
            for problem in error.errors(include_url=False)
        ]
        raise ScenarioError(f"{path}: " + "; ".join(problems)) from None


# -- the driver -------------------------------------------------------------------------------------------------
@dataclass
class Observed:
    """What a run showed: each request's path and last state, and what never happened."""

    paths: dict[str, list[Step]] = field(default_factory=dict)
    objects: dict[str, KubeDict] = field(default_factory=dict)
    not_created: dict[str, str] = field(default_factory=dict)  # request -> why
    seconds: float = 0.0

    def reached(self, name: str, phase: RemediationPhase) -> bool:
        return any(step.phase is phase for step in self.paths.get(name, []))

    def terminal(self, name: str) -> bool:
        path = self.paths.get(name)
        return bool(path) and path is not None and path[-1].phase.terminal


def step_of(obj: KubeDict) -> Step | None:
    """The request's state as a path step (None before its first status)."""
    status = section(obj, "status")
    try:
        phase = RemediationPhase(str(status.get("phase")))
    except ValueError:
        return None
    reason = status.get("blockReason") if phase is RemediationPhase.BLOCKED else None
    try:
        return Step(phase=phase, reason=BlockReason(reason) if reason else None)
    except ValueError:
        return Step(phase=phase)


async def play(
    kube: KubeClient,
    scenario: Scenario,
    *,
    on_change: Callable[[KubeDict], None] = lambda obj: None,
    on_create: Callable[[Request], None] = lambda request: None,
) -> Observed:
    """Create the scenario's requests as their `after` conditions come true; return once all are terminal."""
    observed = Observed()
    names = {request.name for request in scenario.requests}
    changed = asyncio.Event()

    def record(obj: KubeDict) -> None:
        nonlocal changed
        name = obj["metadata"]["name"]
        if name not in names:
            return
        observed.objects[name] = obj
        step = step_of(obj)
        path = observed.paths.setdefault(name, [])
        if step is not None and (not path or path[-1] != step):
            path.append(step)
        on_change(obj)
        changed.set()
        changed = asyncio.Event()

    informer = Informer(kube, RR, namespaces=[scenario.namespace])
    informer.add_event_handler(EventHandler(on_add=record, on_update=lambda old, new: record(new)))
    loop = asyncio.get_running_loop()
    started = loop.time()
    deadline = started + scenario.timeout

    async def until(check: Callable[[], bool]) -> bool:
        while not check():
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            try:
                await asyncio.wait_for(changed.wait(), remaining)
            except TimeoutError:
                return False
        return True

    async def run(request: Request) -> None:
        after = request.after
        if after is not None and not await until(lambda: observed.reached(after.request, after.phase)):
            observed.not_created[request.name] = f"{after.request} never reached {after.phase}"
            return
        on_create(request)
        try:
            await kube.create(RR, request.body(scenario.namespace))
        except ApiError as error:  # e.g. 422 for a field the CRD's schema refuses: say so, play on
            observed.not_created[request.name] = f"the API server refused it: {error.message}"

    watching = asyncio.create_task(informer.run())
    try:
        await informer.wait_for_sync()
        async with asyncio.TaskGroup() as steps:
            for request in scenario.requests:
                steps.create_task(run(request))
        created = [r.name for r in scenario.requests if r.name not in observed.not_created]
        await until(lambda: all(observed.terminal(name) for name in created))
    finally:
        watching.cancel()
        await asyncio.gather(watching, return_exceptions=True)
    observed.seconds = loop.time() - started
    return observed


async def notifications(kube: KubeClient, namespace: str) -> list[KubeDict]:
    """The NotificationRequests of the namespace."""
    return list((await kube.list(NR, namespace))["items"])


# -- the checks -------------------------------------------------------------------------------------------------
def check_request(request: Request, observed: Observed, notices: dict[str, str]) -> list[str]:
    """How `request` went against what it expects; `notices` maps NotificationRequest names to their types."""
    if request.name in observed.not_created:
        return [f"not created: {observed.not_created[request.name]}"]
    obj = observed.objects.get(request.name)
    path = observed.paths.get(request.name, [])
    if obj is None or not path:
        return ["never seen with a status"]
    expect = request.expect
    status = section(obj, "status")
    problems = []
    if not path[-1].phase.terminal:
        problems.append(f"still {path[-1]}")
    if tuple(path) != expect.path:
        problems.append(f"path {_path(path)}, expected {_path(expect.path)}")
    wanted: dict[str, str | None] = {
        "outcome": expect.outcome,
        "failurePhase": expect.failure_phase,
        "failureReason": expect.failure_reason,
        "skipReason": expect.skip_reason,
    }
    for key, enum_value in wanted.items():
        value = None if enum_value is None else str(enum_value)
        if status.get(key) != value:
            problems.append(f"{key} {status.get(key)!r}, expected {value!r}")
    if status.get("ineffectiveCount") != expect.ineffective_count:
        problems.append(f"ineffectiveCount {status.get('ineffectiveCount')!r}, expected {expect.ineffective_count!r}")
    if bool(status.get("requiresManualReview")) != (expect.skip_reason is not None):
        problems.append(f"requiresManualReview {status.get('requiresManualReview')!r}")
    referenced = [notices.get(str(ref.get("name")), "missing") for ref in status.get("notificationRequestRefs") or []]
    if referenced != [str(kind) for kind in expect.notifications]:
        problems.append(f"notifications {referenced}, expected {[str(k) for k in expect.notifications]}")
    return problems


def check_requests(scenario: Scenario, observed: Observed, notification_requests: Iterable[KubeDict]) -> list[str]:
    """Every request against its expectation, and the NotificationRequests against the scenario's count."""
    items = list(notification_requests)
    notices = {item["metadata"]["name"]: str(section(item, "spec").get("type")) for item in items}
    problems = [
        f"{request.name}: {problem}"
        for request in scenario.requests
        for problem in check_request(request, observed, notices)
    ]
    counted = Counter(notices.values())
    wanted = {str(kind): count for kind, count in scenario.notifications.items()}
    if dict(counted) != wanted:
        problems.append(f"NotificationRequests by type {dict(counted)}, expected {wanted}")
    return problems


def _path(steps: Iterable[Step]) -> str:
    return "[" + ", ".join(str(step) for step in steps) + "]"


def _key(name: str, **labels: str) -> tuple[str, frozenset[tuple[str, str]]]:
    return name, frozenset((label, str(value)) for label, value in labels.items())


def expected_metrics(scenario: Scenario) -> Samples:
    """The counters the scenario must leave on the orchestrator's and the executor's /metrics (absent means 0)."""
    o, e, ns = ORCHESTRATOR_PREFIX, EXECUTOR_PREFIX, scenario.namespace
    expected: Counter[tuple[str, frozenset[tuple[str, str]]]] = Counter()
    for reason in BlockReason:
        expected[_key(f"{o}blocked_total", namespace=ns, reason=reason)] += 0
    for kind in NotificationType:
        expected[_key(f"{o}notification_requests_created_total", type=kind)] = scenario.notifications.get(kind, 0)
    expected[_key(f"{o}blocked_expiry_lag_seconds_count")] += 0
    for outcome in (RemediationPhase.COMPLETED, RemediationPhase.FAILED):
        expected[_key(f"{e}executions_total", outcome=outcome)] += 0
    expected[_key(f"{e}pipelinerun_creations_total")] += 0
    for request in scenario.requests:
        path = request.expect.path
        previous = RemediationPhase.PENDING
        expected[_key(f"{o}phase_transitions_total", namespace=ns, from_phase="", to_phase=previous)] += 1
        for index, step in enumerate(path):
            if step.phase is not previous:
                transition = _key(f"{o}phase_transitions_total", namespace=ns, from_phase=previous, to_phase=step.phase)
                expected[transition] += 1
            if step.reason is not None:
                expected[_key(f"{o}blocked_total", namespace=ns, reason=step.reason)] += 1
                if step.reason in TIME_BASED:  # in a scenario a time-based block ends at its expiry (no unblock)
                    expected[_key(f"{o}blocked_cooldown_expired_total", namespace=ns, reason=step.reason)] += 1
                    expected[_key(f"{o}blocked_expiry_lag_seconds_count")] += 1
            if step.phase is RemediationPhase.EXECUTING:
                expected[_key(f"{e}pipelinerun_creations_total")] += 1
                ended = path[index + 1].phase
                expected[_key(f"{e}executions_total", outcome=ended)] += 1
            previous = step.phase
    return dict(expected)


# Families whose every sample the scenario accounts for: a sample not in `expected_metrics` must be 0.
_ACCOUNTED: Final = tuple(
    f"{ORCHESTRATOR_PREFIX}{name}"
    for name in ("blocked_total", "blocked_cooldown_expired_total", "phase_transitions_total")
)


def check_metrics(scenario: Scenario, samples: Samples) -> list[str]:
    """The metrics against what the scenario caused; `current_blocked` must be 0 once every request ended."""
    expected = expected_metrics(scenario)
    problems = []
    for key, value in sorted(expected.items(), key=lambda item: (item[0][0], sorted(item[0][1]))):
        actual = samples.get(key, 0.0)
        if actual != value:
            problems.append(f"{describe(key)} = {actual:g}, expected {value:g}")
    for key, value in samples.items():
        if key[0] in _ACCOUNTED and key not in expected and value:
            problems.append(f"{describe(key)} = {value:g}, expected 0")
        if key[0] == f"{ORCHESTRATOR_PREFIX}current_blocked" and value:
            problems.append(f"{describe(key)} = {value:g} after every request ended")
    return problems


def describe(key: tuple[str, frozenset[tuple[str, str]]]) -> str:
    name, labels = key
    inside = ",".join(f'{k}="{v}"' for k, v in sorted(labels))
    return f"{name}{{{inside}}}" if inside else name


async def settled(
    scrape: Callable[[], Samples], check: Callable[[Samples], list[str]], timeout: float = 5.0
) -> tuple[Samples, list[str]]:
    """Scrape until `check` finds nothing or `timeout` passes: a counter moves just after the write it counts."""
    deadline = time.monotonic() + timeout
    while True:
        samples = await asyncio.to_thread(scrape)
        problems = check(samples)
        if not problems or time.monotonic() > deadline:
            return samples, problems
        await asyncio.sleep(0.1)
