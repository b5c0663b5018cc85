"""Hypothesis strategies driven by the CRDs' own schemas (manifests/crds), not by the models: values the API server
would accept, for the model/CRD agreement test and the orchestrator's schema property test."""

from __future__ import annotations

import string
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from hypothesis import strategies as st

from sandbox.schema import CustomResourceSchema
from shared.models import RemediationRequest, WorkflowExecution, format_time
from shared.models._base import KubeObject

CRD_DIR = Path(__file__).resolve().parents[1] / "manifests" / "crds"
Path_ = tuple[str | int, ...]


def _raw_schema(kind: type[KubeObject]) -> dict[str, Any]:
    crd = yaml.safe_load((CRD_DIR / f"{kind.RESOURCE.group_resource}.yaml").read_text())
    return crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


KINDS: dict[str, type[KubeObject]] = {"RemediationRequest": RemediationRequest, "WorkflowExecution": WorkflowExecution}
RAW = {name: _raw_schema(kind) for name, kind in KINDS.items()}
VALIDATORS = {name: CustomResourceSchema.from_openapi(raw) for name, raw in RAW.items()}
TEXT = st.text(alphabet=string.ascii_letters + string.digits + " -_./:µé", max_size=12)
TIMES = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)).map(
    format_time
)


def valid_value(node: dict[str, Any], *, at_limits: bool = False) -> st.SearchStrategy[Any]:
    """Values the schema accepts. `at_limits`: strings often at their longest and integers over the whole int32
    range, for code that must survive the schema's extremes."""
    kind = node.get("type")
    if "enum" in node:
        return st.sampled_from(node["enum"])
    if kind == "string":
        if node.get("format") == "date-time":
            return TIMES
        minimum, maximum = node.get("minLength", 0), min(node.get("maxLength", 40), 40)
        if "pattern" in node:
            return st.from_regex(node["pattern"], fullmatch=True).filter(
                lambda s: minimum <= len(s) <= node.get("maxLength", 10**9)
            )
        text = st.text(alphabet=string.ascii_letters + string.digits + "-_./:", min_size=minimum, max_size=maximum)
        return st.one_of(text, st.just("x" * node.get("maxLength", 64))) if at_limits else text
    if kind == "integer":
        low, high = (-(2**31), 2**31) if at_limits else (-1000, 10**6)
        return st.integers(min_value=node.get("minimum", low), max_value=node.get("maximum", high))
    if kind == "boolean":
        return st.booleans()
    if kind == "array":
        items = valid_value(node["items"], at_limits=at_limits)
        maximum = min(node.get("maxItems", 3), 3)
        if node.get("x-kubernetes-list-type") == "map":
            keys = node["x-kubernetes-list-map-keys"]
            return st.lists(items, max_size=maximum, unique_by=lambda item: tuple(item.get(k) for k in keys))
        return st.lists(items, max_size=maximum)
    if kind == "object":
        if "properties" in node:
            required = set(node.get("required", []))
            properties = node["properties"]
            return st.fixed_dictionaries(
                {key: valid_value(sub, at_limits=at_limits) for key, sub in properties.items() if key in required},
                optional={
                    key: valid_value(sub, at_limits=at_limits) for key, sub in properties.items() if key not in required
                },
            )
        if "additionalProperties" in node:
            return st.dictionaries(
                TEXT.filter(bool), valid_value(node["additionalProperties"], at_limits=at_limits), max_size=3
            )
        return st.just({})
    return st.nothing()
