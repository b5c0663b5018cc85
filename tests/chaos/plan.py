"""The load of a chaos run, decided up front from a seed: which RemediationRequests, when, and how each workflow ends.

A request's workflow outcome travels in its `spec.parameters` (SIM_OUTCOME, SIM_REASON, SIM_MESSAGE, SIM_DURATION)
through the WorkflowExecution to the Tekton simulator. Each outcome class names the failure reason and
`wasExecutionFailure` SPEC 5's classification must give it, written down here from the SPEC, not computed by the
executor's code, so the end-to-end run checks the classification too.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from tests import factories

DRY_RUN_ANNOTATION = "kubernaut.ai/dry-run"


@dataclass(frozen=True, slots=True)
class OutcomeClass:
    name: str
    parameters: dict[str, str]
    reason: str | None  # the WorkflowExecution's failureDetails.reason; None: it succeeds
    execution_failure: bool | None = None  # failureDetails.wasExecutionFailure


SUCCEEDED = OutcomeClass("Succeeded", {"SIM_OUTCOME": "Succeeded"}, None)
# Failures after the run started that may have changed the cluster (manual review for the target).
EXECUTION_FAILURES = (
    OutcomeClass(
        "OOMKilled",
        {"SIM_OUTCOME": "Failed", "SIM_MESSAGE": "step-run was OOMKilled (exit code 137)"},
        "OOMKilled",
        True,
    ),
    OutcomeClass(
        "DeadlineExceeded",
        {"SIM_OUTCOME": "Failed", "SIM_REASON": "PipelineRunTimeout", "SIM_MESSAGE": "the run failed to finish"},
        "DeadlineExceeded",
        True,
    ),
    OutcomeClass(
        "Forbidden",
        {"SIM_OUTCOME": "Failed", "SIM_MESSAGE": 'deployments.apps "web" is forbidden: cannot patch'},
        "Forbidden",
        True,
    ),
    OutcomeClass("TaskFailed", {"SIM_OUTCOME": "Failed"}, "TaskFailed", True),  # Tekton's "Tasks Completed" summary
    OutcomeClass("Unknown", {"SIM_OUTCOME": "Failed", "SIM_MESSAGE": "the node went away"}, "Unknown", True),
)
# Failures that changed nothing: a started run that could not do its work, or one that never started.
PRE_EXECUTION_FAILURES = (
    OutcomeClass(
        "ResourceExhausted",
        {"SIM_OUTCOME": "Failed", "SIM_MESSAGE": "exceeded quota: compute-resources"},
        "ResourceExhausted",
        False,
    ),
    OutcomeClass(
        "ImagePullBackOff",
        {"SIM_OUTCOME": "Failed", "SIM_MESSAGE": "step image pull failed: ImagePullBackOff"},
        "ImagePullBackOff",
        False,
    ),
    OutcomeClass(
        "ConfigurationError",
        {"SIM_OUTCOME": "Failed", "SIM_MESSAGE": "invalid configuration: missing parameter"},
        "ConfigurationError",
        False,
    ),
    OutcomeClass("FailBeforeStart", {"SIM_OUTCOME": "FailBeforeStart"}, "ConfigurationError", False),
    OutcomeClass(
        "FailBeforeStartImage",
        {"SIM_OUTCOME": "FailBeforeStart", "SIM_REASON": "CouldntGetTask", "SIM_MESSAGE": "image pull failed"},
        "ImagePullBackOff",
        False,
    ),
)
INVALID_SPEC = OutcomeClass("InvalidSpec", {}, None)  # the orchestrator refuses it: Failed, Routing, InvalidSpec
# A run Tekton never starts (the simulator leaves it alone, as if Tekton were down), with a short executing timeout:
# the request times out and the executor's own deadline cancels the run and fails the execution DeadlineExceeded
# (nothing ran), so the target is free for the requests after it (issue 18 item 3).
NEVER_STARTS = OutcomeClass("NeverStarts", {"SIM_OUTCOME": "Ignore"}, "DeadlineExceeded", False)
NEVER_STARTS_TIMEOUT = "4s"
OUTCOME_CLASSES = {
    c.name: c for c in (SUCCEEDED, *EXECUTION_FAILURES, *PRE_EXECUTION_FAILURES, INVALID_SPEC, NEVER_STARTS)
}

# What a signal (fingerprint) tends to do: weights of success, pre-execution failure, execution failure.
PROFILES = {
    "healthy": (0.9, 0.1, 0.0),
    "flaky": (0.5, 0.5, 0.0),
    "breaking": (0.6, 0.1, 0.3),
    "failing": (0.0, 1.0, 0.0),
}
PROFILE_MIX = ("healthy",) * 20 + ("flaky",) * 12 + ("breaking",) * 10 + ("failing",) * 8
WORKFLOWS = ("restart-pods", "scale-up")


@dataclass(frozen=True, slots=True)
class Signal:
    seed: str  # the fingerprint is sha256(seed)
    target: tuple[str, str, str]
    workflow_id: str
    profile: str


@dataclass(frozen=True, slots=True)
class Planned:
    """One RemediationRequest to create `at` seconds into the load."""

    name: str
    namespace: str
    at: float
    signal: Signal
    outcome: OutcomeClass
    duration: float  # SIM_DURATION, seconds
    dry_run: bool = False  # annotated kubernaut.ai/dry-run: "true" (SPEC 4.8): routed as usual, nothing runs

    def body(self) -> dict[str, Any]:
        parameters = {**self.outcome.parameters, "SIM_DURATION": f"{self.duration:.2f}"}
        bundle = f"registry.example.com/workflows/{self.signal.workflow_id}:v1"
        if self.outcome is INVALID_SPEC:
            bundle = "Not A Bundle"  # passes the schema, fails the orchestrator's semantic check
        extra: dict[str, Any] = {}
        if self.outcome is NEVER_STARTS:
            extra["timeouts"] = {"executing": NEVER_STARTS_TIMEOUT}
        body = factories.remediation_request(
            self.name,
            self.namespace,
            signal=f"Signal{self.signal.seed}",
            target=self.signal.target,
            workflow_id=self.signal.workflow_id,
            bundle=bundle,
            parameters=parameters,
            fingerprint_seed=self.signal.seed,
            **extra,
        )
        if self.dry_run:
            body["metadata"]["annotations"] = {DRY_RUN_ANNOTATION: "true"}
        return body


@dataclass(frozen=True, slots=True)
class Namesake:
    """Issue 17.1: `first` (in the plan's requests) ends, is deleted (`propagation`), and `second`, same name, another
    target and workflow, is created at once. It must get an execution of its own, never adopt the one left behind."""

    first: Planned
    second: Planned
    propagation: str  # "Orphan" leaves the first's WorkflowExecution behind; "Background" lets the GC take it


@dataclass(frozen=True)
class LoadPlan:
    signals: list[Signal]
    requests: list[Planned]
    namesakes: list[Namesake] = field(default_factory=list)
    same_second: list[tuple[str, str]] = field(default_factory=list)
    """Issue 17.2: keys of two requests of one signal created 0.3 s apart, the later one's name sorting first."""
    unblocked_duplicates: list[str] = field(default_factory=list)
    """Issue 17.3: keys of duplicates the operator annotates with kubernaut.ai/unblock while they wait."""

    @property
    def designs(self) -> dict[str, Planned]:
        """namespace/name -> the request the load creates there last (a namesake replaces the first)."""
        designs = {f"{p.namespace}/{p.name}": p for p in self.requests}
        designs.update({f"{n.second.namespace}/{n.second.name}": n.second for n in self.namesakes})
        return designs

    @property
    def targets(self) -> set[tuple[str, str, str]]:
        return {signal.target for signal in self.signals}


def plan_load(
    rng: random.Random,
    *,
    requests: int,
    duration: float,
    namespaces: tuple[str, ...],
    targets: int = 30,
    fingerprints: int = 50,
    bursts: int = 3,
    burst_size: int = 12,
    invalid_share: float = 0.02,
    dry_run_share: float = 0.05,
    edges: int = 2,
    loops: int = 1,
) -> LoadPlan:
    """`requests` RemediationRequests over `duration` seconds: each outcome class once at the start, then most as
    repeats of one signal a few seconds apart, and `bursts` of `burst_size` at one instant on one target (several
    signals of it: duplicates and a busy target at once)."""
    target_list = [("Deployment", f"app-{index:02d}", f"team-{index % 3}") for index in range(targets)]
    profiles = list(PROFILE_MIX)
    rng.shuffle(profiles)
    signals = [
        Signal(f"signal-{i:02d}", target_list[i % targets], rng.choice(WORKFLOWS), profiles[i % len(profiles)])
        for i in range(fingerprints)
    ]
    by_target: dict[tuple[str, str, str], list[Signal]] = {}
    for signal in signals:
        by_target.setdefault(signal.target, []).append(signal)
    burst_targets = [t for t in target_list if len(by_target[t]) > 1]
    # First, each outcome class once, on targets of their own: every class runs and is classified in every run.
    planned: list[tuple[float, Signal, OutcomeClass | None]] = [
        (0.05 * index, signals[index], outcome) for index, outcome in enumerate(OUTCOME_CLASSES.values())
    ]
    for _ in range(bursts):
        at = rng.uniform(0.1, 0.8) * duration
        target = rng.choice(burst_targets)
        planned += [(at, rng.choice(by_target[target]), None) for _ in range(burst_size)]
    while len(planned) < requests:
        # An alert that fires, clears and fires again: repeats of one signal a few seconds apart.
        signal, at = rng.choice(signals), rng.uniform(min(3.0, duration), duration)
        for _ in range(rng.choice((1, 1, 2, 3, 4, 6))):
            planned.append((min(at, duration), signal, None))
            at += rng.uniform(0.5, 6.0)
    planned.sort(key=lambda item: item[0])
    result = []
    for index, (at, signal, fixed) in enumerate(planned[: max(requests - EDGE_REQUESTS * edges - LOOP * loops, 0)]):
        outcome = fixed or _draw_outcome(rng, signal, invalid_share)
        namespace = namespaces[0] if fixed else rng.choice(namespaces)
        duration_s = round(rng.uniform(0.2, 1.5), 2)
        dry_run = not fixed and outcome is not INVALID_SPEC and rng.random() < dry_run_share
        result.append(Planned(f"rr-{index:04d}", namespace, at, signal, outcome, duration_s, dry_run))
    return _with_restart_loops(rng, _with_edges(rng, LoadPlan(signals, result), edges, duration, namespaces), loops)


LOOP = 6  # requests of one restart loop


def _with_restart_loops(rng: random.Random, plan: LoadPlan, loops: int) -> LoadPlan:
    """SPEC 4.9 in every run: a signal on a target of its own whose alert is back 5 s after each request (its run
    takes 0.3 s, the cooldown 3 s, the ineffective window 10 s): counts 0, 1, 2, then the chain trips and the
    rest are skipped on it - under whatever faults are being injected then."""
    requests = list(plan.requests)
    for index in range(loops):
        namespace = plan.requests[0].namespace if plan.requests else "default"
        signal = Signal(f"leak-{index}", ("Deployment", f"leak-{index}", namespace), WORKFLOWS[0], "healthy")
        start = rng.uniform(1.0, 5.0)
        requests += [
            Planned(f"leak-{index:02d}-{n}", namespace, start + 5.0 * n, signal, SUCCEEDED, 0.3) for n in range(LOOP)
        ]
    requests.sort(key=lambda p: p.at)
    return LoadPlan(plan.signals, requests, plan.namesakes, plan.same_second, plan.unblocked_duplicates)


EDGE_REQUESTS = 5  # keys each round of edges adds: a namesake, a same-second pair, an original and its duplicate


def _with_edges(
    rng: random.Random, plan: LoadPlan, edges: int, duration: float, namespaces: tuple[str, ...]
) -> LoadPlan:
    """Issue 17's cases, `edges` of each: namesakes, same-second duplicates, unblocked duplicates. Each on targets of
    its own, so what happens to it is decided by the case and the faults, not by the rest of the load."""
    requests = list(plan.requests)
    namesakes, same_second, unblocked = [], [], []

    def planned(name: str, at: float, seed: str, target: str, workflow: str, namespace: str) -> Planned:
        signal = Signal(seed, ("Deployment", target, namespace), workflow, "healthy")
        return Planned(name, namespace, at, signal, SUCCEEDED, round(rng.uniform(0.2, 1.0), 2))

    for index in range(edges):
        namespace = rng.choice(namespaces)
        at = rng.uniform(0.05, 0.5) * duration
        first = planned(f"namesake-{index:02d}", at, f"namesake-{index}-a", f"ns-{index}-a", WORKFLOWS[0], namespace)
        second = planned(first.name, at, f"namesake-{index}-b", f"ns-{index}-b", WORKFLOWS[1], namespace)
        requests.append(first)
        namesakes.append(Namesake(first, second, ("Orphan", "Background")[index % 2]))

        at = rng.uniform(0.1, 0.9) * duration
        seed, target, workflow = f"storm-{index}", f"storm-{index}", rng.choice(WORKFLOWS)
        later, earlier = f"storm-{index:02d}-a", f"storm-{index:02d}-z"
        # The first runs long enough to be live when the second comes: one that ended before (a 0.2 s run) leaves
        # no original to wait on, and the second rightly runs after the cooldown (seen: storm-01-a, seed 1).
        first_of_pair = planned(earlier, at, seed, target, workflow, namespace)
        requests.append(Planned(earlier, namespace, at, first_of_pair.signal, SUCCEEDED, 3.0))
        requests.append(planned(later, at + 0.3, seed, target, workflow, namespace))
        same_second.append((f"{namespace}/{earlier}", f"{namespace}/{later}"))

        at = rng.uniform(0.1, 0.8) * duration
        seed, target = f"unblock-{index}", f"unblock-{index}"
        original = planned(f"unblock-{index:02d}-original", at, seed, target, WORKFLOWS[0], namespace)
        duplicate = planned(f"unblock-{index:02d}-duplicate", at + 0.5, seed, target, WORKFLOWS[0], namespace)
        original = Planned(original.name, namespace, at, original.signal, SUCCEEDED, 3.0)  # long enough to wait on
        requests += [original, duplicate]
        unblocked.append(f"{namespace}/{duplicate.name}")
    requests.sort(key=lambda p: p.at)
    return LoadPlan(plan.signals, requests, namesakes, same_second, unblocked)


def _draw_outcome(rng: random.Random, signal: Signal, invalid_share: float) -> OutcomeClass:
    if rng.random() < invalid_share:
        return INVALID_SPEC
    success, pre, _ = PROFILES[signal.profile]
    draw = rng.random()
    if draw < success:
        return SUCCEEDED
    if draw < success + pre:
        return rng.choice(PRE_EXECUTION_FAILURES)
    return rng.choice(EXECUTION_FAILURES)
