"""The README's configuration tables name every setting, so they cannot silently fall behind the code."""

from pathlib import Path

import pytest

from executor.settings import ExecutorSettings
from orchestrator.settings import OrchestratorSettings

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


@pytest.mark.parametrize("cls", [OrchestratorSettings, ExecutorSettings])
def test_every_setting_is_documented(cls):
    missing = [name for name in cls.model_fields if f"| `{name.upper()}` |" not in README]
    assert not missing, f"README configuration table lacks {missing}"
