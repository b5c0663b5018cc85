"""No container engine runs here, so the Dockerfile's promises are checked by reading it."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
COMPILERS = re.compile(r"\b(gcc|g\+\+|clang|build-essential|make|cc)\b")


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with continuation lines joined and comments dropped."""
    joined = re.sub(r"\\\n", " ", text)
    result = []
    for raw in joined.splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            result.append((keyword.upper(), rest.strip()))
    return result


@pytest.fixture(scope="module")
def stages() -> list[list[tuple[str, str]]]:
    parsed = instructions((ROOT / "Dockerfile").read_text())
    result: list[list[tuple[str, str]]] = []
    for keyword, rest in parsed:
        if keyword == "FROM":
            result.append([])
        if result:
            result[-1].append((keyword, rest))
    return result


def args(stage, keyword):
    return [rest for kw, rest in stage if kw == keyword]


def test_build_is_multi_stage_on_a_slim_python_base(stages):
    assert len(stages) >= 2
    default_image = re.search(r"ARG PYTHON_IMAGE=(\S+)", (ROOT / "Dockerfile").read_text()).group(1)
    assert re.fullmatch(r"python:3\.1[1-9]-slim(-\w+)?", default_image)
    assert args(stages[-1], "FROM") == ["${PYTHON_IMAGE}"]


def test_final_stage_installs_no_compiler_and_runs_nothing_from_a_package_manager(stages):
    final = stages[-1]
    for run in args(final, "RUN"):
        assert not COMPILERS.search(run), run
        assert "apt-get" not in run and "pip install" not in run, run


def test_final_stage_runs_as_a_numeric_non_root_user(stages):
    users = args(stages[-1], "USER")
    assert users, "the final stage must set USER"
    uid, _, gid = users[-1].partition(":")
    assert uid.isdigit() and int(uid) != 0
    assert not gid or (gid.isdigit() and int(gid) != 0)


def test_final_stage_writes_no_bytecode_at_run_time(stages):
    env = " ".join(args(stages[-1], "ENV"))
    assert "PYTHONDONTWRITEBYTECODE=1" in env
    assert any("compileall" in run for run in args(stages[0], "RUN")), "compile bytecode in the build stage instead"


def test_command_is_one_of_the_two_processes(stages):
    assert args(stages[-1], "CMD") == ['["kubernaut-orchestrator"]']
    assert args(stages[-1], "ENTRYPOINT") == ["[]"]
    scripts = (ROOT / "pyproject.toml").read_text()
    assert 'kubernaut-orchestrator = "orchestrator.__main__:main"' in scripts
    assert 'kubernaut-executor = "executor.__main__:main"' in scripts


def test_image_copies_only_what_runs(stages):
    copied = " ".join(args(stages[0], "COPY"))
    for package in ("shared", "orchestrator", "executor"):
        assert f"COPY {package} ./{package}" in (ROOT / "Dockerfile").read_text()
    assert "sandbox" not in copied and "tests" not in copied
