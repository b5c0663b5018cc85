"""A real Prometheus server for the end-to-end tests: started on 127.0.0.1 (a free port, a temporary TSDB) with a
static scrape config and the PrometheusRule's groups, read through its HTTP API.

Short intervals (1 s scrapes and rule evaluations) let a demo run of half a minute show up; every wait is for a
condition with a timeout.
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import yaml

from sandbox.stack import free_port

REPOSITORY = Path(__file__).resolve().parents[1]
PROMETHEUS_RULE = REPOSITORY / "manifests" / "monitoring" / "prometheusrule.yaml"
INTERVAL = "1s"
T = TypeVar("T")


class PrometheusError(AssertionError):
    """Prometheus refused a query or did not reach a condition in time."""


def rule_groups() -> dict[str, Any]:
    """The PrometheusRule's spec.groups as a Prometheus rule file."""
    (rule,) = [
        doc for doc in yaml.safe_load_all(PROMETHEUS_RULE.read_text()) if doc and doc["kind"] == "PrometheusRule"
    ]
    return {"groups": rule["spec"]["groups"]}


class Prometheus:
    """One Prometheus process; `jobs` maps a job name to the 127.0.0.1 ports it scrapes (/metrics)."""

    def __init__(self, binary: str, directory: Path, jobs: dict[str, list[int]]) -> None:
        self.binary = binary
        self.directory = directory
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = directory / "prometheus.log"
        self.process: subprocess.Popen[bytes] | None = None
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "rules.yaml").write_text(yaml.safe_dump(rule_groups(), sort_keys=False))
        config = {
            "global": {"scrape_interval": INTERVAL, "scrape_timeout": INTERVAL, "evaluation_interval": INTERVAL},
            "rule_files": ["rules.yaml"],
            "scrape_configs": [
                {"job_name": job, "static_configs": [{"targets": [f"127.0.0.1:{port}" for port in ports]}]}
                for job, ports in jobs.items()
            ],
        }
        (directory / "prometheus.yaml").write_text(yaml.safe_dump(config, sort_keys=False))

    def start(self, timeout: float = 60.0) -> Prometheus:
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [
                    self.binary,
                    f"--config.file={self.directory / 'prometheus.yaml'}",
                    f"--storage.tsdb.path={self.directory / 'data'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                ],
                cwd=self.directory,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.wait_for("Prometheus to be ready", self._ready, timeout)
        return self

    def stop(self, timeout: float = 30.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def _ready(self) -> bool | None:
        if self.process is not None and self.process.poll() is not None:
            raise PrometheusError(f"prometheus exited with {self.process.returncode}:\n{self.log.read_text()}")
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as reply:
                return reply.status == 200 or None
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return None

    # -- the HTTP API -------------------------------------------------------------------------------------------
    def api(self, path: str, **parameters: str | float) -> Any:
        """The `data` of a /api/v1 answer; PrometheusError with Prometheus' own error for a refused request."""
        query = urllib.parse.urlencode({key: str(value) for key, value in parameters.items()})
        try:
            with urllib.request.urlopen(f"{self.url}/api/v1/{path}?{query}", timeout=30) as reply:
                body = json.loads(reply.read())
        except urllib.error.HTTPError as error:
            body = json.loads(error.read() or b"{}")
        if body.get("status") != "success":
            raise PrometheusError(f"{path} {parameters}: {body.get('errorType')}: {body.get('error')}")
        return body["data"]

    def query(self, expr: str, at: float | None = None) -> list[dict[str, Any]]:
        """An instant vector: [{"metric": labels, "value": [time, "value"]}]."""
        data = self.api("query", query=expr, **({"time": at} if at is not None else {}))
        if data["resultType"] != "vector":
            raise PrometheusError(f"{expr}: a {data['resultType']}, not a vector")
        return list(data["result"])

    def query_range(self, expr: str, start: float, end: float, step: str = INTERVAL) -> list[dict[str, Any]]:
        """A range query: [{"metric": labels, "values": [[time, "value"], ...]}]."""
        return list(self.api("query_range", query=expr, start=start, end=end, step=step)["result"])

    def values(self, expr: str, *labels: str) -> dict[tuple[str, ...], float]:
        """An instant query's samples by the values of `labels`."""
        return {
            tuple(sample["metric"].get(label, "") for label in labels): float(sample["value"][1])
            for sample in self.query(expr)
        }

    def alerts(self) -> list[dict[str, Any]]:
        return list(self.api("alerts")["alerts"])

    def rules(self) -> list[dict[str, Any]]:
        return [rule for group in self.api("rules")["groups"] for rule in group["rules"]]

    def wait_for(self, what: str, check: Callable[[], T | None], timeout: float = 30.0) -> T:
        """Poll `check` until it returns something other than None or False; PrometheusError after `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            result = check()
            if result is not None and result is not False:
                return result
            if time.monotonic() > deadline:
                raise PrometheusError(f"timed out after {timeout:g} s waiting for {what}")
            time.sleep(0.2)


# -- the Grafana dashboard ------------------------------------------------------------------------------------------
DASHBOARD = REPOSITORY / "manifests" / "common" / "dashboards" / "kubernaut.json"
# Grafana's built-in variables, as Grafana would fill them for this server (1 s scrapes): $__rate_interval is
# max(4 scrapes, $__interval + a scrape).
BUILT_IN = {"__rate_interval": "4s", "__interval": "1s", "__interval_ms": "1000", "__range": "1m", "__range_s": "60"}


def dashboard_queries(path: Path = DASHBOARD) -> list[tuple[str, str]]:
    """(panel title, expr) of every query of the dashboard, its template variables filled in: Grafana's built-in
    ones as above, a dashboard variable by its current value, or `.*` (all) when it has none."""
    board = json.loads(path.read_text())
    values = dict(BUILT_IN)
    for variable in board.get("templating", {}).get("list", []):
        current = (variable.get("current") or {}).get("value")
        values[variable["name"]] = str(current) if isinstance(current, str) and current else ".*"
    queries = []
    for panel in board["panels"]:
        for target in panel.get("targets", []):
            expr = target["expr"]
            for name in sorted(values, key=len, reverse=True):  # $__interval_ms before $__interval
                expr = expr.replace("${" + name + "}", values[name]).replace("$" + name, values[name])
            queries.append((panel["title"], expr))
    return queries
