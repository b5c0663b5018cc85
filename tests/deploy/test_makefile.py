"""The kind, image and local-run targets expand and agree with the manifests (kind itself is not run here)."""

import re
import shlex
import subprocess

import yaml

from tests.deploy.manifests import MANIFESTS, ROOT, built, containers, settings
from tests.tools import require


def dry_run(*targets: str) -> str:
    """What `make -n` would run for the targets (never the rebuild of a stale .venv, which is not under test)."""
    result = subprocess.run(
        [require("make"), "--no-print-directory", "-n", "-o", ".venv/.installed", *targets],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_the_cluster_targets_expand():
    assert dry_run("kind-up", "kind-down", "run-local")


def test_kind_up_installs_a_pinned_tekton_release():
    (url,) = re.findall(r"apply -f (\S+)", dry_run("kind-up"))
    version = re.fullmatch(r"https://\S+/tekton-releases/pipeline/previous/(v\d+\.\d+\.\d+)/release\.yaml", url)
    assert version, url
    assert int(version.group(1)[1:].split(".")[0]) >= 1, "Tekton v1 or later serves tekton.dev/v1 PipelineRuns"


def test_kind_up_builds_loads_and_deploys_the_image_the_kind_overlay_runs():
    commands = dry_run("kind-up")
    (image,) = re.findall(r"docker build .*-t (\S+) \.", commands)
    assert f"kind load docker-image {image} " in commands
    assert "apply -k manifests/overlays/kind" in commands
    assert {c["image"] for _, c in containers(built("kind"))} == {image}


def test_make_image_builds_the_dockerfile_on_the_base_it_is_given():
    (default,) = re.findall(r"docker build .*--build-arg PYTHON_IMAGE=(\S+) ", dry_run("image"))
    assert default == "python:3.11-slim-bookworm"  # what users build on; the Dockerfile's default too
    assert "ARG PYTHON_IMAGE=python:3.11-slim-bookworm" in (ROOT / "Dockerfile").read_text()
    assert "--build-arg PYTHON_IMAGE=local/base:1 " in dry_run("image", "PYTHON_IMAGE=local/base:1")
    assert "hack/base-image.sh local/python:3.11-slim-bookworm" in dry_run("base-image")  # cached by tag


def test_kind_up_creates_the_cluster_from_the_committed_config():
    (name, config) = re.findall(r"kind create cluster --name (\S+) --config (\S+)", dry_run("kind-up"))[0]
    cluster = yaml.safe_load((ROOT / config).read_text())
    assert ROOT / config == MANIFESTS / "kind" / "cluster.yaml"
    assert (cluster["apiVersion"], cluster["kind"], cluster["name"]) == ("kind.x-k8s.io/v1alpha4", "Cluster", name)
    assert [node["role"] for node in cluster["nodes"]].count("control-plane") == 1
    assert f"--context kind-{name} " in dry_run("kind-up")  # never applies to whatever cluster is current


def test_run_local_starts_both_processes_without_leader_election_on_ports_that_do_not_clash():
    started = {}
    for line in dry_run("run-local").replace("\\\n", " ").splitlines():
        for command in re.split(r"[;&]", line):
            words = shlex.split(command.strip()) if command.strip() else []
            binaries = [w for w in words if w.endswith(("/kubernaut-orchestrator", "/kubernaut-executor"))]
            if binaries:
                environment = dict(w.split("=", 1) for w in words[: words.index(binaries[0])])
                container = {"name": "local", "command": [binaries[0].rpartition("/")[2]]}
                container["env"] = [{"name": k, "value": v} for k, v in environment.items()]
                started[container["command"][0]] = settings(container)
    assert set(started) == {"kubernaut-orchestrator", "kubernaut-executor"}
    assert all(s.leader_election is False for s in started.values())
    ports = [port for s in started.values() for port in (s.metrics_port, s.health_port)]
    assert len(set(ports)) == 4, ports


def test_make_demo_creates_the_venv_first_then_runs_the_demo():
    assert re.search(r"^demo: \$\(STAMP\)", (ROOT / "Makefile").read_text(), re.MULTILINE)
    assert ".venv/bin/python -m sandbox demo" in dry_run("demo")
