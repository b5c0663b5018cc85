"""Who may run what (SPEC 5): the bundles and ServiceAccounts a WorkflowExecution may use. Pure.

Creating a RemediationRequest is running a workflow, so the executor only creates PipelineRuns whose bundle matches
ALLOWED_BUNDLES and whose ServiceAccount is in ALLOWED_SERVICE_ACCOUNTS. A bundle pattern is matched against the
whole reference: `*` matches within one path segment (not `/`), `**` across segments, `?` one character other than
`/`; so `registry.example.com/kubernaut/*` allows `registry.example.com/kubernaut/restart:v1` (and any tag or
digest) but not `registry.example.com/kubernaut/x/y` nor `registry.example.com/kubernaut-evil/x`.
"""

from __future__ import annotations

import re
from functools import lru_cache

ENV_BUNDLES = "KUBERNAUT_EXECUTOR_ALLOWED_BUNDLES"
ENV_SERVICE_ACCOUNTS = "KUBERNAUT_EXECUTOR_ALLOWED_SERVICE_ACCOUNTS"
_PATTERN_CHARS = re.compile(r"^[A-Za-z0-9._/:@*?-]+$")


def pattern_problem(pattern: str) -> str | None:
    """Why `pattern` cannot be a bundle pattern, or None."""
    if not _PATTERN_CHARS.match(pattern):
        return f"bundle pattern {pattern!r} may contain only letters, digits, '.', '_', '-', '/', ':', '@', '*' and '?'"
    if pattern.startswith("*"):
        return f"bundle pattern {pattern!r} must name a registry (it starts with '*', which would allow any)"
    return None


@lru_cache(maxsize=256)
def _compile(pattern: str) -> re.Pattern[str]:
    parts = re.split(r"(\*\*|\*|\?)", pattern)
    wildcards = {"**": ".*", "*": "[^/]*", "?": "[^/]"}
    return re.compile("".join(wildcards.get(part, re.escape(part)) for part in parts) + r"\Z")


def bundle_allowed(bundle: str, patterns: list[str]) -> bool:
    return any(_compile(pattern).match(bundle) for pattern in patterns)


def allowlist_problems(
    bundle: str, service_account: str, *, bundles: list[str] | None, service_accounts: list[str]
) -> list[str]:
    """What in a WorkflowExecution the allowlists refuse, each naming the value and the setting. `bundles` None:
    any bundle (the executor warned at start-up)."""
    problems = []
    if bundles is not None and not bundle_allowed(bundle, bundles):
        problems.append(
            f"spec.workflowRef.executionBundle {bundle!r} is not allowed by {ENV_BUNDLES} ({', '.join(bundles)})"
        )
    if service_account not in service_accounts:
        allowed = ", ".join(service_accounts)
        problems.append(f"ServiceAccount {service_account!r} is not allowed by {ENV_SERVICE_ACCOUNTS} ({allowed})")
    return problems
