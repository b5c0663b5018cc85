"""The faults of a chaos run: what each does, and a seeded schedule that plays each alone, then several at once.

API faults go through the sandbox's admin API; request faults (errors, throttling, conflicts, lost answers, 410s)
are aimed at the controllers' ServiceAccount users, so the suite's own recorder and load keep a clear view.
Connection faults (drops, hangs, restart, down) hit everyone, the recorder included; it re-watches.
Process faults SIGKILL or SIGTERM replicas (the leader, or any) and start them again; one at a time per kind, so
there is always a replica to fail over to.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from executor.pipelinerun import pipeline_run_name
from sandbox.client import AsyncSandboxAdmin
from sandbox.stack import EXECUTION_NAMESPACE, USERS, Component
from shared.models import PipelineRun
from shared.runtime.client import ApiError, KubeClient
from shared.runtime.informer import WATCH_RESPONSE_TIMEOUT
from shared.target import canonical_target
from tests.chaos.plan import INVALID_SPEC, LoadPlan
from tests.chaos.system import System

PR = PipelineRun.RESOURCE

CONTROLLER_USERS = (USERS["orchestrator"], USERS["executor"])
STALLED_RESPONSE = WATCH_RESPONSE_TIMEOUT * 1.5  # how long a stalled watch would wait for headers: past the bound
REQUEST_FAULTS = (
    "watch-drops",
    "watch-410",
    "errors-500",
    "throttle-429",
    "conflicts-409",
    "lost-create-answers",
    "hung-watches",
    "latency",
    "lease-latency",
    "header-stalls",
)
SERVER_FAULTS = ("api-restart", "api-down")
# Someone else's PipelineRun at a target's lock name (issue 18 item 5): the executor must never touch it.
FOREIGN_FAULTS = ("foreign-run",)
INTRUDER = "chaos-intruder"  # the user creating it; invariants allow it to write PipelineRuns, nobody else
FOREIGN_LABELS = {"app.kubernetes.io/managed-by": INTRUDER}
PROCESS_FAULTS = (
    "kill-random",
    "kill-orchestrator-leader",
    "kill-executor-leader",
    "terminate-orchestrator-leader",
    "terminate-executor-leader",
    "kill-tekton",
)
ALL_FAULTS = (*REQUEST_FAULTS, *SERVER_FAULTS, *FOREIGN_FAULTS, *PROCESS_FAULTS)


@dataclass
class FaultRecord:
    kind: str
    started: float  # wall clock
    ended: float = 0.0
    detail: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    def overlaps(self, other: FaultRecord) -> bool:
        return self is not other and self.started < other.ended and other.started < self.ended


@dataclass
class Shutdown:
    """What a SIGTERM of a leader did."""

    kind: str
    component: str
    lease: str
    before_revision: int  # the sandbox's revision just before the signal
    signalled: float
    exit_code: int
    exit_seconds: float
    log: str  # what the process logged from the signal on
    new_leader: str | None = None
    takeover_seconds: float | None = None


class FaultInjector:
    def __init__(
        self, system: System, rng: random.Random, log: Callable[[str], None], plan: LoadPlan | None = None
    ) -> None:
        self.system = system
        self.plan = plan  # the load's, for faults aimed at a target about to be remediated
        self._began = time.monotonic()  # when the load began (play() starts with it)
        self.admin: AsyncSandboxAdmin = system.sandbox.admin.aio
        self.rng = rng
        self.say = log
        self.records: list[FaultRecord] = []
        self.shutdowns: list[Shutdown] = []
        self._restarts: set[asyncio.Task[None]] = set()
        self._process_locks = {"orchestrator": asyncio.Lock(), "executor": asyncio.Lock(), "tekton": asyncio.Lock()}
        self._actions: dict[str, Callable[[FaultRecord], Awaitable[None]]] = {
            "watch-drops": self._watch_drops,
            "watch-410": self._watch_410,
            "errors-500": self._errors_500,
            "throttle-429": self._throttle_429,
            "conflicts-409": self._conflicts_409,
            "lost-create-answers": self._lost_create_answers,
            "hung-watches": self._hung_watches,
            "latency": self._latency,
            "lease-latency": self._lease_latency,
            "header-stalls": self._header_stalls,
            "api-restart": self._api_restart,
            "api-down": self._api_down,
            "kill-random": self._kill_random,
            "kill-orchestrator-leader": lambda r: self._kill_leader(r, "orchestrator"),
            "kill-executor-leader": lambda r: self._kill_leader(r, "executor"),
            "terminate-orchestrator-leader": lambda r: self._terminate_leader(r, "orchestrator"),
            "terminate-executor-leader": lambda r: self._terminate_leader(r, "executor"),
            "kill-tekton": self._kill_tekton,
            "foreign-run": self._foreign_run,
        }

    # -- the schedule ---------------------------------------------------------------------------------------
    async def play(self, kinds: tuple[str, ...], duration: float, solo: tuple[str, ...] = ALL_FAULTS) -> None:
        """The `solo` kinds one at a time in a seeded order; then overlapping faults (the other kinds first) until
        `duration` has passed and each kind has been injected: API faults every few seconds, process faults every
        15-40 s (a leader change every few seconds would leave no steady state to judge)."""
        self._began = time.monotonic()
        deadline = self._began + duration
        alone = [kind for kind in kinds if kind in solo]
        self.rng.shuffle(alone)
        for kind in alone:
            await self.inject(kind)
            await asyncio.sleep(self.rng.uniform(0.5, 1.5))
        processes = [kind for kind in kinds if kind in PROCESS_FAULTS]
        others = [kind for kind in kinds if kind not in PROCESS_FAULTS]
        await asyncio.gather(
            self._stream(others, [k for k in others if k not in solo], deadline, (0.5, 3.0), at_once=3),
            self._stream(processes, [k for k in processes if k not in solo], deadline, (15.0, 40.0), at_once=2),
        )

    async def _stream(
        self, kinds: list[str], first: list[str], deadline: float, spacing: tuple[float, float], at_once: int
    ) -> None:
        """Faults of `kinds` started every `spacing` seconds (at most `at_once` under way), `first` first."""
        pending = list(first)
        self.rng.shuffle(pending)
        running: set[asyncio.Task[None]] = set()
        while kinds and (time.monotonic() < deadline or pending):
            if len(running) < at_once:
                task = asyncio.create_task(self.inject(pending.pop() if pending else self.rng.choice(kinds)))
                running.add(task)
                task.add_done_callback(running.discard)
            if pending:  # the kinds not yet injected follow each other closely
                await asyncio.sleep(self.rng.uniform(2.0, 6.0))
            else:
                await asyncio.sleep(min(self.rng.uniform(*spacing), max(deadline - time.monotonic(), 0.0)))
        await asyncio.gather(*running)

    async def inject(self, kind: str) -> None:
        record = FaultRecord(kind, time.time())
        self.records.append(record)
        try:
            await self._actions[kind](record)
        except Exception as error:  # a fault that could not be injected is reported, the run goes on
            record.error = f"{type(error).__name__}: {error}"
        finally:
            record.ended = time.time()
            detail = orjson.dumps(record.detail).decode()
            error = f" FAILED: {record.error}" if record.error else ""
            self.say(f"fault {kind} {record.ended - record.started:5.1f}s {detail}{error}")

    async def clear(self) -> None:
        """Disarm every fault and wait for the replicas being restarted."""
        await self.admin.clear_faults()
        await self.admin.clear_latency()
        await asyncio.gather(*self._restarts)

    async def _restart_later(self, kind: str, component: Component) -> None:
        """Start `component` again and release its kind's lock once it is ready (the schedule goes on meanwhile)."""

        async def restart() -> None:
            try:
                await self.system.restart(component)
            finally:
                self._process_locks[kind].release()

        task = asyncio.create_task(restart())
        self._restarts.add(task)
        task.add_done_callback(self._restarts.discard)

    # -- request and connection faults ----------------------------------------------------------------------
    async def _watch_drops(self, record: FaultRecord) -> None:
        dropped = 0
        for _ in range(self.rng.randint(2, 4)):
            dropped += await self.admin.drop_watches(graceful=self.rng.random() < 0.3)
            await asyncio.sleep(self.rng.uniform(0.8, 2.0))
        record.detail["dropped"] = dropped

    async def _watch_410(self, record: FaultRecord) -> None:
        for user in (*CONTROLLER_USERS, USERS["tekton"]):
            await self.admin.expire_watches_for(1.5, user=user)
        record.detail["dropped"] = await self.admin.drop_watches()
        await asyncio.sleep(1.5)

    def _victim(self) -> str:
        return self.rng.choice(CONTROLLER_USERS)

    async def _errors_500(self, record: FaultRecord) -> None:
        user, seconds = self._victim(), round(self.rng.uniform(1.0, 3.0), 1)
        record.detail.update(user=user.rsplit(":", 1)[-1], seconds=seconds)
        await self.admin.fail_requests(code=500, seconds=seconds, user=user)
        await asyncio.sleep(seconds)

    async def _throttle_429(self, record: FaultRecord) -> None:
        user, seconds = self._victim(), round(self.rng.uniform(1.0, 3.0), 1)
        record.detail.update(user=user.rsplit(":", 1)[-1], seconds=seconds)
        await self.admin.fail_requests(code=429, seconds=seconds, retry_after=1, user=user)
        await asyncio.sleep(seconds)

    async def _conflicts_409(self, record: FaultRecord) -> None:
        count = self.rng.randint(3, 10)
        record.detail["count"] = count
        for user in CONTROLLER_USERS:
            await self.admin.fail_requests(code=409, count=count, verb="patch", subresource="status", user=user)
        await asyncio.sleep(2.0)

    async def _lost_create_answers(self, record: FaultRecord) -> None:
        """Creates that land while their answer is an error: the create must not be repeated as a second object."""
        count = self.rng.randint(1, 3)
        record.detail["count"] = count
        for resource, user in (("workflowexecutions", USERS["orchestrator"]), ("pipelineruns", USERS["executor"])):
            await self.admin.fail_requests(
                code=500, count=count, when="after", verb="create", resource=resource, user=user
            )
        await asyncio.sleep(3.0)

    async def _hung_watches(self, record: FaultRecord) -> None:
        seconds = round(self.rng.uniform(2.0, 5.0), 1)
        record.detail["seconds"] = seconds
        await self.admin.hang_watches(seconds)
        await asyncio.sleep(seconds)

    async def _latency(self, record: FaultRecord) -> None:
        delay, seconds = self.rng.choice((0.05, 0.2, 0.5)), round(self.rng.uniform(2.0, 5.0), 1)
        record.detail.update(delay=delay, seconds=seconds)
        await self.admin.add_latency(delay)
        await asyncio.sleep(seconds)
        await self.admin.clear_latency()

    async def _lease_latency(self, record: FaultRecord) -> None:
        """The two-leader window (issue 18.1): one kind's Lease requests turn slow, renewals near or past the renew
        deadline (10 s) - the leader must stop before its standby can count the Lease as expired, whoever of the
        two leads next. Both replicas of a kind share a user, so both are slowed."""
        kind = self.rng.choice(("orchestrator", "executor"))
        get, update = self.rng.choice((0.5, 1.5, 3.0)), self.rng.choice((3.0, 6.0, 9.0))
        seconds = round(self.rng.uniform(12.0, 20.0), 1)
        record.detail.update(kind=kind, get=get, update=update, seconds=seconds)
        user = USERS[kind]
        await self.admin.add_latency(get, verb="get", resource="leases", user=user, lasting=seconds)
        await self.admin.add_latency(update, verb="update", resource="leases", user=user, lasting=seconds)
        await asyncio.sleep(seconds)

    async def _header_stalls(self, record: FaultRecord) -> None:
        """Watches whose response never starts (issue 18.2): one controller's watches are dropped and its re-watches
        get no headers; it must give up after its 30 s response timeout and watch again."""
        user, lasting = self._victim(), round(self.rng.uniform(2.0, 4.0), 1)
        record.detail.update(user=user.rsplit(":", 1)[-1], seconds=lasting)
        await self.admin.add_latency(STALLED_RESPONSE, verb="watch", user=user, lasting=lasting)
        record.detail["dropped"] = await self.admin.drop_watches()
        await asyncio.sleep(WATCH_RESPONSE_TIMEOUT + lasting + 1.0)  # until the stalled re-watches have been given up

    async def _api_restart(self, record: FaultRecord) -> None:
        await self.admin.restart()

    async def _api_down(self, record: FaultRecord) -> None:
        seconds = round(self.rng.uniform(1.0, 3.0), 1)
        record.detail["seconds"] = seconds
        await self.admin.down(seconds)
        await asyncio.sleep(seconds)

    def _next_target(self) -> str:
        """The target of a request the load creates in the next few seconds (so an execution meets the fault),
        else any target of the load."""
        if self.plan is None or not self.plan.requests:
            raise RuntimeError("no load plan to aim at")
        now = time.monotonic() - self._began
        soon = [p for p in self.plan.requests if now + 0.3 < p.at < now + 3.0 and p.outcome is not INVALID_SPEC]
        planned = self.rng.choice(soon or self.plan.requests)
        return canonical_target(*planned.signal.target)

    async def _foreign_run(self, record: FaultRecord) -> None:
        """A PipelineRun that the executor did not create, at the lock name of a target of the load, for a few
        seconds: an execution on that target meanwhile fails (Unknown, nothing ran) and the run is left alone. Its
        SIM_OUTCOME keeps the Tekton simulator off it too, so any change to it is the executor's doing."""
        target, seconds = self._next_target(), round(self.rng.uniform(3.0, 8.0), 1)
        name = pipeline_run_name(target)
        record.detail.update(target=target, run=name, seconds=seconds)
        client = await KubeClient.connect(self.system.sandbox.kubeconfig_for(INTRUDER), user_agent=INTRUDER)
        try:
            body = {
                "apiVersion": PR.api_version,
                "kind": PR.kind,
                "metadata": {"name": name, "namespace": EXECUTION_NAMESPACE, "labels": FOREIGN_LABELS},
                "spec": {"params": [{"name": "SIM_OUTCOME", "value": "Ignore"}]},
            }
            try:
                created = await client.create(PR, body)
            except ApiError as error:
                if not error.already_exists:
                    raise
                record.detail["placed"] = False  # the lock is held by one of ours right now: nothing to test
                return
            record.detail["placed"] = True
            await asyncio.sleep(seconds)
            now = await client.get(PR, EXECUTION_NAMESPACE, name)
            meta, before = now["metadata"], created["metadata"]
            record.detail["untouched"] = (
                meta.get("uid") == before.get("uid")
                and meta.get("resourceVersion") == before.get("resourceVersion")
                and not meta.get("deletionTimestamp")
            )
            await client.delete(PR, EXECUTION_NAMESPACE, name, uid=meta.get("uid"))
        finally:
            await client.close()

    # -- process faults -------------------------------------------------------------------------------------
    async def _kill_random(self, record: FaultRecord) -> None:
        kind = self.rng.choice(("orchestrator", "executor"))
        await self._process_locks[kind].acquire()
        victim = self.rng.choice(self.system.replicas(kind))
        record.detail.update(component=victim.name, leader=await self.system.is_leader(victim))
        try:
            await self.system.kill(victim)
            await asyncio.sleep(self.rng.uniform(0.2, 2.0))
        finally:
            await self._restart_later(kind, victim)

    async def _kill_leader(self, record: FaultRecord, kind: str) -> None:
        await self._process_locks[kind].acquire()
        try:
            leader = await self.system.leader(kind)
        except BaseException:
            self._process_locks[kind].release()
            raise
        record.detail["component"] = leader.name
        try:
            await self.system.kill(leader)
            await asyncio.sleep(self.rng.uniform(0.5, 2.0))
        finally:
            await self._restart_later(kind, leader)
        successor = await self.system.leader(kind, timeout=40.0)
        record.detail["successor"] = successor.name

    async def _terminate_leader(self, record: FaultRecord, kind: str) -> None:
        await self._process_locks[kind].acquire()
        try:
            leader = await self.system.leader(kind)
        except BaseException:
            self._process_locks[kind].release()
            raise
        try:
            offset = leader.log_path.stat().st_size if leader.log_path.exists() else 0
            revision = (await self.admin.state())["resourceVersion"]
            signalled = time.time()
            code = await self.system.terminate(leader)
            shutdown = Shutdown(
                kind,
                leader.name,
                f"kubernaut-{kind}",
                revision,
                signalled,
                code,
                time.time() - signalled,
                _read_from(leader, offset),
            )
            self.shutdowns.append(shutdown)
            record.detail.update(component=leader.name, exit_code=code, exit_seconds=round(shutdown.exit_seconds, 2))
            successor = await self.system.leader(kind, timeout=30.0, other_than=leader)
            shutdown.new_leader = successor.name
            shutdown.takeover_seconds = time.time() - signalled
            record.detail["takeover_seconds"] = round(shutdown.takeover_seconds, 2)
        finally:
            await self._restart_later(kind, leader)

    async def _kill_tekton(self, record: FaultRecord) -> None:
        await self._process_locks["tekton"].acquire()
        try:
            await self.system.kill(self.system.tekton)
            await asyncio.sleep(self.rng.uniform(0.5, 2.0))
        finally:
            await self._restart_later("tekton", self.system.tekton)


def _read_from(component: Component, offset: int) -> str:
    with component.log_path.open("rb") as handle:
        handle.seek(offset)
        return handle.read().decode(errors="replace")
