"""The real tools some checks run (kubectl, promtool, prometheus): found on PATH, never re-implemented.

In CI (`CI=true`, set by every CI service and by .ci/run) a missing tool fails the test that needs it, so a check
is never skipped there unnoticed; elsewhere the test is skipped with the reason and how to install the tool.
"""

from __future__ import annotations

import os
import shutil

import pytest

INSTALL = {
    "make": "install make (the deploy tests expand the Makefile's targets with make -n)",
    "kubectl": "install kubectl (its built-in kustomize builds the overlays)",
    "promtool": "apt-get install prometheus (Debian's package brings promtool)",
    "prometheus": "apt-get install prometheus (Debian's package brings the server)",
}


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("true", "1")


def require(tool: str) -> str:
    """The path of `tool` on PATH; fails the calling test in CI, skips it elsewhere, when it is missing."""
    path = shutil.which(tool)
    if path is not None:
        return path
    message = f"{tool} is not on PATH: {INSTALL.get(tool, 'install it')}"
    if in_ci():
        pytest.fail(f"{message} (CI=true: a missing tool fails the check, see .ci/run)", pytrace=False)
    pytest.skip(message)
