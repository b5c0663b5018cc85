"""The README's configuration tables name every setting, and its quick start starts with the demo."""

import re
from pathlib import Path

import pytest

from executor.settings import ExecutorSettings
from orchestrator.settings import OrchestratorSettings
from sandbox.scenario import SCENARIO
from shared.models import BlockReason, SkipReason

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


@pytest.mark.parametrize("cls", [OrchestratorSettings, ExecutorSettings])
def test_every_setting_is_documented(cls):
    missing = [name for name in cls.model_fields if f"| `{name.upper()}` |" not in README]
    assert not missing, f"README configuration table lacks {missing}"


def quick_start_commands() -> list[str]:
    section = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```sh\n(.*?)```", section, re.DOTALL)
    assert block, "the quick start has a sh block"
    return [line.partition("#")[0].strip() for line in block.group(1).splitlines() if line.strip()]


def test_the_quick_start_runs_the_demo_first_then_every_test():
    assert quick_start_commands() == ["make demo", "make test"]


def test_the_quick_start_names_the_demo_scenario_and_what_it_exercises():
    section = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    assert "`examples/demo/scenario.yaml`" in section and SCENARIO.exists()
    for reason in [*BlockReason, *SkipReason]:
        assert f"`{reason}`" in section, reason
