"""The load of a chaos run as it is played: requests created on schedule, and an operator acknowledging failures.

Creates go through faults too (drops, restarts, the API down), so each is retried until the server has the object;
a create whose answer was lost shows up as AlreadyExists and is read back, never duplicated under another name.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from shared.models import RemediationRequest, WorkflowExecution
from shared.runtime.client import ApiError, KubeClient
from tests.chaos.plan import LoadPlan, Namesake
from tests.chaos.recorder import Recorder

RR = RemediationRequest.RESOURCE
WFE = WorkflowExecution.RESOURCE
ACKNOWLEDGED = "kubernaut.ai/execution-failure-acknowledged"
UNBLOCK = "kubernaut.ai/unblock"
TERMINAL = {"Completed", "Failed", "TimedOut", "Skipped"}


@dataclass
class Created:
    name: str
    namespace: str
    uid: str
    at: float


@dataclass
class LoadGenerator:
    client: KubeClient
    plan: LoadPlan
    created: dict[str, Created] = field(default_factory=dict)  # key namespace/name
    failures: dict[str, str] = field(default_factory=dict)  # requests the server refused for good
    retries: int = 0

    async def run(self) -> None:
        started = time.monotonic()
        namesakes = {f"{n.first.namespace}/{n.first.name}": n for n in self.plan.namesakes}
        tasks = []
        for planned in self.plan.requests:
            delay = started + planned.at - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            key = f"{planned.namespace}/{planned.name}"
            tasks.append(asyncio.create_task(self._create(planned.namespace, planned.name, planned.body())))
            if key in namesakes:
                tasks.append(asyncio.create_task(self._namesake(namesakes[key])))
            if key in self.plan.unblocked_duplicates:
                tasks.append(asyncio.create_task(self._unblock(planned.namespace, planned.name)))
        await asyncio.gather(*tasks)

    # -- issue 17's edges: namesakes and unblocked duplicates ------------------------------------------------------
    async def _namesake(self, case: Namesake) -> None:
        """Once the first request has ended, delete it and create its namesake at once."""
        namespace, name = case.first.namespace, case.first.name
        if await self._until(namespace, name, lambda s: s.get("phase") in TERMINAL) is None:
            self.failures[f"{namespace}/{name}"] = "the first of a namesake pair never ended"
            return
        await self._retry(lambda: self.client.delete(RR, namespace, name, propagation_policy=case.propagation))
        if await self._until(namespace, name, lambda s: False, gone=True) is not False:
            self.failures[f"{namespace}/{name}"] = "the first of a namesake pair was never deleted"
            return
        await self._create(namespace, name, case.second.body())

    async def _unblock(self, namespace: str, name: str) -> None:
        """The operator's hurry: a duplicate waiting on its original is annotated kubernaut.ai/unblock."""
        waiting = await self._until(
            namespace, name, lambda s: s.get("blockReason") == "DuplicateInProgress" or s.get("phase") in TERMINAL
        )
        if not isinstance(waiting, dict) or waiting.get("phase") in TERMINAL:
            return  # never waited (its original ended first): nothing to unblock
        patch = {"metadata": {"annotations": {UNBLOCK: "chaos operator: in a hurry"}}}
        await self._retry(lambda: self.client.patch(RR, namespace, name, patch))

    async def _until(
        self, namespace: str, name: str, done: Callable[[dict[str, Any]], bool], *, gone: bool = False
    ) -> dict[str, Any] | Literal[False] | None:
        """Poll the request through the faults until `done(status)` (its status) or, with `gone`, until it is
        deleted (False); None after the time allowed."""
        for _ in range(1500):
            try:
                obj = await self.client.get(RR, namespace, name)
            except ApiError as error:
                if error.not_found and gone:
                    return False
                if not error.transient and not error.not_found:
                    raise
            else:
                status = obj.get("status") or {}
                if done(status):
                    return status
            await asyncio.sleep(0.2)
        return None

    async def _retry(self, call: Callable[[], Awaitable[object]]) -> None:
        for attempt in range(200):
            try:
                await call()
                return
            except ApiError as error:
                if not error.transient:
                    if error.not_found:
                        return
                    raise
                self.retries += 1
                await asyncio.sleep(min(0.1 * 2**attempt, 2.0))

    async def _create(self, namespace: str, name: str, body: dict) -> None:
        key = f"{namespace}/{name}"
        for attempt in range(200):
            try:
                obj, _ = await self.client.create_or_get(RR, body)
            except ApiError as error:
                if not error.transient:
                    self.failures[key] = str(error)
                    return
                self.retries += 1
                await asyncio.sleep(min(0.1 * 2**attempt, 2.0))
                continue
            self.created[key] = Created(name, namespace, obj["metadata"]["uid"], time.time())
            return
        self.failures[key] = "gave up after 200 attempts"


@dataclass
class Operator:
    """Acknowledges each execution failure `delay` seconds after it is seen, as someone who checked the target."""

    client: KubeClient
    recorder: Recorder
    delay: float = 2.0
    acknowledged: dict[str, float] = field(default_factory=dict)
    _seen: dict[str, float] = field(default_factory=dict)

    async def run(self) -> None:
        while True:
            await asyncio.sleep(0.5)
            now = time.time()
            for key, obj in list(self.recorder.logs["workflowexecutions"].current.items()):
                status = obj.get("status") or {}
                details = status.get("failureDetails") or {}
                annotations = (obj.get("metadata") or {}).get("annotations") or {}
                if status.get("phase") != "Failed" or details.get("wasExecutionFailure") is not True:
                    continue
                if key in self.acknowledged or annotations.get(ACKNOWLEDGED):
                    continue
                first = self._seen.setdefault(key, now)
                if now - first < self.delay:
                    continue
                namespace, _, name = key.partition("/")
                patch = {"metadata": {"annotations": {ACKNOWLEDGED: "chaos operator: target checked"}}}
                try:
                    await self.client.patch(WFE, namespace, name, patch)
                except ApiError:
                    continue  # next round
                self.acknowledged[key] = now
