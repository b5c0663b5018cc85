"""The one canonical target string (SPEC 3).

`namespace/kind/name` for a namespaced target, `kind/name` for a cluster-scoped one, with `kind` lower-cased.
Every index, lookup, WorkflowExecution spec and label derives from `canonical_target`; nothing else may build
target strings (upstream had two builders that disagreed on the case of `kind`, so lookups never matched).
"""

from __future__ import annotations

import hashlib
import re
from typing import NamedTuple

LABEL_VALUE_MAX = 63
_LABEL_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


class Target(NamedTuple):
    kind: str
    name: str
    namespace: str | None = None


def canonical_target(kind: str, name: str, namespace: str | None = None) -> str:
    """Return `namespace/kind/name` (or `kind/name` when namespace is empty), with kind lower-cased."""
    if not kind or not name:
        raise ValueError(f"a target needs a kind and a name (got kind={kind!r}, name={name!r})")
    if "/" in kind or "/" in name or (namespace and "/" in namespace):
        raise ValueError(f"target parts may not contain '/' (got {namespace!r}/{kind!r}/{name!r})")
    kind = kind.lower()
    return f"{namespace}/{kind}/{name}" if namespace else f"{kind}/{name}"


def parse_target(target: str) -> Target:
    """Split a canonical target string; raise ValueError if it is not one."""
    parts = target.split("/")
    if len(parts) == 2:
        parsed = Target(kind=parts[0], name=parts[1])
    elif len(parts) == 3:
        parsed = Target(kind=parts[1], name=parts[2], namespace=parts[0])
    else:
        raise ValueError(f"invalid target {target!r}: expected namespace/kind/name or kind/name")
    if not parsed.kind or not parsed.name or parsed.namespace == "":
        raise ValueError(f"invalid target {target!r}: empty part")
    if parsed.kind != parsed.kind.lower():
        raise ValueError(f"invalid target {target!r}: kind must be lower-case")
    return parsed


def label_value(text: str) -> str:
    """`text` as a valid label value: unsafe characters become `-`; anything longer than 63 characters is
    shortened with a hash suffix of the original, so distinct texts stay distinct."""
    value = _LABEL_UNSAFE.sub("-", text)
    if len(value) > LABEL_VALUE_MAX:
        digest = hashlib.sha256(text.encode()).hexdigest()[:16]
        value = f"{value[: LABEL_VALUE_MAX - 17]}-{digest}"
    return value.strip("-_.") or hashlib.sha256(text.encode()).hexdigest()[:16]


def target_label_value(target: str) -> str:
    """A label-safe form of a canonical target: `/` becomes `_`, which no name contains, so distinct targets stay
    distinct (the raw target goes in an annotation)."""
    return label_value(target.replace("/", "_"))
