"""The executor's metrics (SPEC 5), prefix `kubernaut_workflowexecution_`."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

PREFIX = "kubernaut_workflowexecution_"
DURATION_BUCKETS = (1.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0, 7200.0)


class ExecutorMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        r = registry
        self.pipelinerun_creations_total = Counter(
            f"{PREFIX}pipelinerun_creations", "PipelineRuns created.", registry=r
        )
        self.executions_total = Counter(
            f"{PREFIX}executions", "WorkflowExecutions finished, by outcome.", ["outcome"], registry=r
        )
        self.execution_duration_seconds = Histogram(
            f"{PREFIX}execution_duration_seconds",
            "From the PipelineRun's start to its end, by outcome.",
            ["outcome"],
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.failures_total = Counter(
            f"{PREFIX}failures",
            "Failed WorkflowExecutions, by reason and whether the workflow had started running.",
            ["reason", "was_execution_failure"],
            registry=r,
        )
