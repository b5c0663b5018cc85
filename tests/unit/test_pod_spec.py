"""tests/image/pod.py: a pod spec's container as `docker run` flags, and a clear error for what it does not model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.image.pod import PodFacts, Unsupported, container_arguments, probe_ports, quantity

FACTS = PodFacts("web-abc12", "kubernaut-system", "kubernaut-controlplane")
SERVICE = {"KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": "6443"}


def arguments(pod_spec: dict[str, Any], container: dict[str, Any], image_user: str = "65532:65532") -> list[str]:
    return container_arguments(
        pod_spec,
        {"name": "c", **container},
        image="img:1",
        image_user=image_user,
        facts=FACTS,
        service_environ=SERVICE,
        service_account_dir=Path("/sa"),
    )


def test_command_args_env_security_limits_and_volumes_become_flags():
    pod_spec = {
        "securityContext": {"runAsUser": 1000, "runAsGroup": 2000, "fsGroup": 3000, "runAsNonRoot": True},
        "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "16Mi"}}],
    }
    container = {
        "command": ["kubernaut-executor", "--workers"],
        "args": ["2"],
        "env": [
            {"name": "A", "value": "1"},
            {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        ],
        "securityContext": {
            "runAsUser": 1001,
            "readOnlyRootFilesystem": True,
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
        },
        "resources": {"limits": {"cpu": "500m", "memory": "512Mi"}, "requests": {"cpu": "50m"}},
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
        "ports": [{"containerPort": 8081}],
    }
    flags = arguments(pod_spec, container)
    assert flags[flags.index("--user") + 1] == "1001:2000"  # the container's runAsUser wins over the pod's
    assert flags[flags.index("--group-add") + 1] == "3000"
    assert {"--read-only", "--cap-drop=ALL"} <= set(flags)
    assert flags[flags.index("--security-opt") + 1] == "no-new-privileges"
    assert flags[flags.index("--cpus") + 1] == "0.5"
    assert flags[flags.index("--memory") + 1] == str(512 * 1024**2)
    assert "type=tmpfs,destination=/tmp,tmpfs-mode=1777,tmpfs-size=16777216" in flags
    assert "type=bind,source=/sa,destination=/var/run/secrets/kubernetes.io/serviceaccount,readonly" in flags
    environment = {flags[i + 1] for i, flag in enumerate(flags) if flag == "--env"}
    assert environment == {
        "KUBERNETES_SERVICE_HOST=127.0.0.1",
        "KUBERNETES_SERVICE_PORT=6443",
        "A=1",
        "POD=web-abc12",
    }
    assert flags[-5:] == ["--entrypoint", "kubernaut-executor", "img:1", "--workers", "2"]


def test_args_without_a_command_follow_the_image_and_no_token_is_mounted_when_the_pod_opts_out():
    flags = arguments({"automountServiceAccountToken": False}, {"args": ["kubernaut-executor"]})
    assert flags[-2:] == ["img:1", "kubernaut-executor"]
    assert "--entrypoint" not in flags
    assert not any("serviceaccount" in flag for flag in flags)


@pytest.mark.parametrize(
    ("pod_spec", "container", "named"),
    [
        ({}, {"lifecycle": {}}, "containers[c].lifecycle"),
        ({}, {"envFrom": []}, "containers[c].envFrom"),
        ({"securityContext": {"sysctls": []}}, {}, "containers[c].securityContext.sysctls"),
        ({}, {"securityContext": {"privileged": True}}, "containers[c].securityContext.privileged"),
        ({}, {"securityContext": {"seccompProfile": {"type": "Unconfined"}}}, "seccompProfile.type=Unconfined"),
        ({}, {"env": [{"name": "S", "valueFrom": {"secretKeyRef": {}}}]}, "containers[c].env[S].valueFrom"),
        (
            {"volumes": [{"name": "v", "configMap": {"name": "x"}}]},
            {"volumeMounts": [{"name": "v", "mountPath": "/v"}]},
            "containers[c].volumeMounts[v]",
        ),
        ({}, {"resources": {"limits": {"memory": "lots"}}}, "containers[c].resources.limits.memory"),
    ],
)
def test_a_field_that_is_not_modelled_is_named_instead_of_ignored(pod_spec, container, named):
    with pytest.raises(Unsupported, match=named.replace("[", r"\[").replace("]", r"\]")):
        arguments(pod_spec, container)


@pytest.mark.parametrize("image_user", ["0", "", "root", "0:0"])
def test_run_as_non_root_refuses_an_image_that_would_run_as_root(image_user: str):
    with pytest.raises(AssertionError, match="runAsNonRoot"):
        arguments({"securityContext": {"runAsNonRoot": True}}, {}, image_user=image_user)


def test_probe_ports_resolve_named_ports_and_quantities_parse():
    container = {
        "ports": [{"name": "health", "containerPort": 8082}],
        "readinessProbe": {"httpGet": {"path": "/readyz", "port": "health"}},
        "livenessProbe": {"httpGet": {"path": "/healthz", "port": 9000}},
        "startupProbe": {"exec": {"command": ["true"]}},
    }
    assert probe_ports(container) == {8082, 9000}
    assert quantity("1", "cpu") == 1 and quantity("250m", "cpu") == 0.25 and quantity("1Gi", "m") == 1024**3
