"""The load of a chaos run as it is played: requests created on schedule, and an operator acknowledging failures.

Creates go through faults too (drops, restarts, the API down), so each is retried until the server has the object;
a create whose answer was lost shows up as AlreadyExists and is read back, never duplicated under another name.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from shared.models import RemediationRequest, WorkflowExecution
from shared.runtime.client import ApiError, KubeClient
from tests.chaos.plan import LoadPlan
from tests.chaos.recorder import Recorder

RR = RemediationRequest.RESOURCE
WFE = WorkflowExecution.RESOURCE
ACKNOWLEDGED = "kubernaut.ai/execution-failure-acknowledged"


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
        tasks = []
        for planned in self.plan.requests:
            delay = started + planned.at - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(self._create(planned.namespace, planned.name, planned.body())))
        await asyncio.gather(*tasks)

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
