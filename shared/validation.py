"""Checks a schema cannot express, shared by both controllers so they agree on what is runnable.

Each returns problems as `field: what is wrong (got value)`, ready to put in a status message.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from shared.duration import parse_duration

# An OCI reference: registry[:port]/repository[:tag][@digest] (lower-case path components, as distribution does).
_OCI_REFERENCE = re.compile(
    r"^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:\.[a-z0-9]+(?:[._-][a-z0-9]+)*)*(?::[0-9]+)?"
    r"(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)+"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[a-f0-9]{64})?$"
)
# Tekton parameter names: letters, digits, underscores, dots and dashes, not starting with a digit or dash.
_PARAM_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
RESERVED_PARAMETERS = frozenset({"TARGET_RESOURCE"})
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def bundle_reference_problems(field: str, reference: str | None) -> list[str]:
    if not reference or not reference.strip():
        return [f"{field}: an OCI bundle reference is required (got {reference!r})"]
    if not _OCI_REFERENCE.match(reference):
        return [f"{field}: not an OCI reference like registry.example.com/workflows/name:tag (got {reference!r})"]
    return []


def parameter_problems(field: str, parameters: Mapping[str, str] | None) -> list[str]:
    problems = []
    for name in parameters or {}:
        if name in RESERVED_PARAMETERS:
            problems.append(f"{field}.{name}: reserved, the executor sets it")
        elif not _PARAM_NAME.match(name):
            problems.append(f"{field}.{name}: not a valid Tekton parameter name (letters, digits, _ . -)")
    return problems


def service_account_problems(field: str, name: str | None) -> list[str]:
    if name is not None and (len(name) > 253 or not _DNS_SUBDOMAIN.match(name)):
        return [f"{field}: not a valid ServiceAccount name (got {name!r})"]
    return []


def duration_problems(field: str, text: str | None) -> list[str]:
    """A positive Go duration no longer than Go's largest (the schema checks only its form)."""
    if text is None:
        return []
    try:
        positive = parse_duration(text).total_seconds() > 0
    except ValueError as error:
        return [f"{field}: {error}"]
    return [] if positive else [f"{field}: must be longer than zero (got {text!r})"]
