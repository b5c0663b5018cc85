"""`python -m sandbox serve`: serves on 127.0.0.1, writes a kubeconfig, stops cleanly on SIGTERM."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import yaml


def test_serve_writes_a_kubeconfig_serves_the_api_and_stops_on_sigterm(tmp_path: Path):
    kubeconfig = tmp_path / "kubeconfig"
    process = subprocess.Popen(
        [sys.executable, "-m", "sandbox", "serve", "--kubeconfig", str(kubeconfig), "--log-level", "warning"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline() for _ in range(3)]
        api = lines[0].split()[-1]
        admin = lines[1].split()[-1]
        assert api.startswith("http://127.0.0.1:")
        config = yaml.safe_load(kubeconfig.read_text())
        assert config["clusters"][0]["cluster"]["server"] == api
        with urllib.request.urlopen(f"{api}/apis") as response:
            groups = [group["name"] for group in json.load(response)["groups"]]
        with urllib.request.urlopen(f"{admin}/healthz") as response:
            assert response.read() == b"ok"
        assert "kubernaut.ai" in groups
        assert "tekton.dev" in groups
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
    assert process.returncode == 0
    assert "sandbox stopped" in output


def test_serve_without_validation_and_with_a_chosen_crd_directory(tmp_path: Path):
    crds = Path(__file__).resolve().parents[1] / "contract" / "widgets.yaml"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sandbox",
            "serve",
            "--kubeconfig",
            str(tmp_path / "k"),
            "--crds",
            str(crds),
            "--no-validation",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        api = process.stdout.readline().split()[-1]
        admin = process.stdout.readline().split()[-1]
        with urllib.request.urlopen(f"{api}/apis") as response:
            groups = [group["name"] for group in json.load(response)["groups"]]
        with urllib.request.urlopen(f"{admin}/validation") as response:
            assert json.load(response) == {"enabled": False}
        assert "contract.kubernaut.ai" in groups
        assert "kubernaut.ai" not in groups
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=30)


def test_demo_refuses_a_bad_scenario_naming_the_field_before_starting_anything(tmp_path: Path):
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text("requests:\n  - name: web\n    signal: HighMemoryUsage\n    target: web\n")
    result = subprocess.run(
        [sys.executable, "-m", "sandbox", "demo", "--scenario", str(scenario)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert f"demo: {scenario}: requests.0.target: Value error, 'web' is not Kind/name" in result.stderr
    assert "requests.0.workflow: Field required" in result.stderr
