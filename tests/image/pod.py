"""A Deployment's pod run with `docker run`, as kubelet would run it: what the pod spec says, nothing guessed.

`container_arguments` turns one container of a pod spec into `docker run` arguments (command and args, env,
security context, resource limits, emptyDir volumes, the ServiceAccount volume); a field it does not model raises
`Unsupported`, naming it, so a manifest change the tests cannot honour fails instead of being ignored.

`Pod` gives the pod its own network namespace (a `--network none` container holding it, hostname = pod name, as
kubelet's sandbox container), joins every container to it, and runs `tests.image.bridge` inside it with nsenter:
the pod reaches the API server at 127.0.0.1:PORT (KUBERNETES_SERVICE_HOST/PORT) through a Unix socket, and the
test reaches the pod's probe ports through Unix sockets. No host port is bound, so pods whose ports collide (the
`kind` overlay's two Deployments both use 8081 and 9090) run side by side, as on a node.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from sandbox.serviceaccount import ProjectedServiceAccount

REPOSITORY = Path(__file__).resolve().parents[2]
SERVICE_ACCOUNT_MOUNT = "/var/run/secrets/kubernetes.io/serviceaccount"
PROBES = ("startupProbe", "livenessProbe", "readinessProbe")
# Container fields that need no flag: scheduling requests, ports (the namespace is the pod's), probes (the test
# plays kubelet), and how an image is pulled (there is no registry; the image is local).
IGNORED_CONTAINER_FIELDS = {"name", "image", "imagePullPolicy", "ports", "terminationMessagePolicy", *PROBES}
KNOWN_CONTAINER_FIELDS = {*IGNORED_CONTAINER_FIELDS, "command", "args", "env", "securityContext"}
KNOWN_CONTAINER_FIELDS |= {"resources", "volumeMounts"}
KNOWN_SECURITY_FIELDS = {
    "runAsUser",
    "runAsGroup",
    "runAsNonRoot",
    "readOnlyRootFilesystem",
    "allowPrivilegeEscalation",
    "capabilities",
    "seccompProfile",
    "fsGroup",
    "privileged",
}
FIELD_REFS = {"metadata.name", "metadata.namespace", "spec.serviceAccountName"}


class Unsupported(Exception):
    """The pod spec uses a field these tests do not model; the message names it."""


_QUANTITY = re.compile(r"^([0-9.]+)(m|Ki|Mi|Gi|k|M|G)?$")
_FACTORS = {None: 1, "Ki": 1024, "Mi": 1024**2, "Gi": 1024**3, "k": 1000, "M": 1000**2, "G": 1000**3}


def quantity(value: Any, what: str) -> float:
    """A Kubernetes quantity as a number (CPU in cores, memory in bytes)."""
    match = _QUANTITY.match(str(value))
    if not match:
        raise Unsupported(f"{what}: quantity {value!r}")
    number, suffix = float(match.group(1)), match.group(2)
    return number / 1000 if suffix == "m" else number * _FACTORS[suffix]


@dataclass(frozen=True)
class PodFacts:
    """What kubelet knows of the pod: its name, namespace and ServiceAccount (for fieldRef env)."""

    name: str
    namespace: str
    service_account: str

    def field(self, path: str) -> str:
        return {
            "metadata.name": self.name,
            "metadata.namespace": self.namespace,
            "spec.serviceAccountName": self.service_account,
        }[path]


def _security(pod_spec: dict[str, Any], container: dict[str, Any], where: str) -> dict[str, Any]:
    pod_level = dict(pod_spec.get("securityContext") or {})
    own = dict(container.get("securityContext") or {})
    for key in [*pod_level, *own]:
        if key not in KNOWN_SECURITY_FIELDS:
            raise Unsupported(f"{where}.securityContext.{key}")
    return {**pod_level, **own}  # the container's own settings win, as kubelet merges them


def container_arguments(
    pod_spec: dict[str, Any],
    container: dict[str, Any],
    *,
    image: str,
    image_user: str,
    facts: PodFacts,
    service_environ: dict[str, str],
    service_account_dir: Path | None,
) -> list[str]:
    """`docker run` arguments (after `run`, before nothing: image and command included) for one container."""
    where = f"containers[{container['name']}]"
    for key in container:
        if key not in KNOWN_CONTAINER_FIELDS:
            raise Unsupported(f"{where}.{key}")
    arguments: list[str] = []
    security = _security(pod_spec, container, where)
    if security.get("privileged"):
        raise Unsupported(f"{where}.securityContext.privileged")
    user = security.get("runAsUser")
    group = security.get("runAsGroup")
    effective_user = str(user) if user is not None else image_user.partition(":")[0]
    if security.get("runAsNonRoot") and (not effective_user.isdigit() or int(effective_user) == 0):
        # kubelet refuses to start it: "container has runAsNonRoot and image will run as root" (or a non-numeric user)
        raise AssertionError(f"{where}: runAsNonRoot, but it would run as user {effective_user!r}")
    if user is not None or group is not None:
        arguments += ["--user", f"{effective_user}:{group if group is not None else image_user.partition(':')[2] or 0}"]
    if security.get("fsGroup") is not None:
        arguments += ["--group-add", str(security["fsGroup"])]
    if security.get("readOnlyRootFilesystem"):
        arguments.append("--read-only")
    if security.get("allowPrivilegeEscalation") is False:
        arguments += ["--security-opt", "no-new-privileges"]
    capabilities = security.get("capabilities") or {}
    arguments += [f"--cap-drop={name}" for name in capabilities.get("drop") or []]
    arguments += [f"--cap-add={name}" for name in capabilities.get("add") or []]
    seccomp = (security.get("seccompProfile") or {}).get("type")
    if seccomp not in (None, "RuntimeDefault"):  # RuntimeDefault is docker's default profile
        raise Unsupported(f"{where}.securityContext.seccompProfile.type={seccomp}")

    limits = (container.get("resources") or {}).get("limits") or {}
    if "cpu" in limits:
        arguments += ["--cpus", f"{quantity(limits['cpu'], where + '.resources.limits.cpu'):g}"]
    if "memory" in limits:
        arguments += ["--memory", str(int(quantity(limits["memory"], where + ".resources.limits.memory")))]

    volumes = {volume["name"]: volume for volume in pod_spec.get("volumes") or []}
    for mount in container.get("volumeMounts") or []:
        volume = volumes.get(mount["name"])
        if volume is None or set(volume) - {"name", "emptyDir"}:
            raise Unsupported(f"{where}.volumeMounts[{mount['name']}]: only emptyDir volumes are modelled")
        options = [f"destination={mount['mountPath']}", "tmpfs-mode=1777"]
        size = (volume["emptyDir"] or {}).get("sizeLimit")
        if size is not None:
            options.append(f"tmpfs-size={int(quantity(size, 'sizeLimit'))}")
        if mount.get("readOnly"):
            options.append("readonly")
        arguments += ["--mount", ",".join(["type=tmpfs", *options])]
    if pod_spec.get("automountServiceAccountToken", True) and service_account_dir is not None:
        arguments += ["--mount", f"type=bind,source={service_account_dir},destination={SERVICE_ACCOUNT_MOUNT},readonly"]

    environment = dict(service_environ)  # kubelet always sets KUBERNETES_SERVICE_HOST/PORT
    for variable in container.get("env") or []:
        if "value" in variable:
            environment[variable["name"]] = str(variable["value"])
        elif (ref := (variable.get("valueFrom") or {}).get("fieldRef", {}).get("fieldPath")) in FIELD_REFS:
            environment[variable["name"]] = facts.field(ref)
        else:
            raise Unsupported(f"{where}.env[{variable['name']}].valueFrom")
    for name, value in environment.items():
        arguments += ["--env", f"{name}={value}"]

    command = list(container.get("command") or [])
    if command:
        arguments += ["--entrypoint", command[0], image, *command[1:]]
    else:
        arguments.append(image)
    arguments += [str(arg) for arg in container.get("args") or []]
    return arguments


def probe_ports(container: dict[str, Any]) -> set[int]:
    ports = set()
    for probe in PROBES:
        http = (container.get(probe) or {}).get("httpGet")
        if http is not None:
            port = http["port"]
            if not isinstance(port, int):  # a named port: look it up as kubelet does
                port = next(p["containerPort"] for p in container.get("ports") or [] if p.get("name") == port)
            ports.add(port)
    return ports


def docker(*arguments: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["docker", *arguments], capture_output=True, text=True, timeout=timeout, check=False)
    if check and result.returncode != 0:
        raise RuntimeError(f"docker {' '.join(arguments[:3])} ...: exit {result.returncode}: {result.stderr.strip()}")
    return result


@dataclass
class Pod:
    """One pod of a Deployment, run with docker; `start()`, probe, `stop()` each container, then `remove()`."""

    deployment: dict[str, Any]
    image: str
    image_user: str
    workdir: Path
    api_socket: Path  # where the API server is reachable from the host (a Unix socket)
    api_port: int  # KUBERNETES_SERVICE_PORT; the pod reaches the API at 127.0.0.1 on it
    ca_pem: bytes
    token: str
    namespace: str | None = None  # the namespace file's content; default: the Deployment's namespace
    service_account_volume: bool = True
    name: str = ""
    containers: dict[str, str] = field(default_factory=dict)  # container name -> docker container name
    _holder: str = ""
    _bridge: subprocess.Popen[str] | None = None

    def __post_init__(self) -> None:
        meta = self.deployment["metadata"]
        self.name = f"{meta['name']}-{uuid.uuid4().hex[:5]}"
        self.pod_spec: dict[str, Any] = self.deployment["spec"]["template"]["spec"]
        self.facts = PodFacts(
            self.name,
            self.namespace or meta.get("namespace", "default"),
            self.pod_spec.get("serviceAccountName", "default"),
        )
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.service_account = ProjectedServiceAccount(
            self.workdir / "serviceaccount", token=self.token, ca_pem=self.ca_pem, namespace=self.facts.namespace
        )

    def socket_for(self, port: int) -> Path:
        return self.workdir / f"port-{port}.sock"

    def start(self) -> Pod:
        self._holder = f"{self.name}-sandbox"
        docker(
            "run", "--detach", "--name", self._holder, "--network", "none", "--hostname", self.name,
            "--entrypoint", "sleep", self.image, "infinity",
        )  # fmt: skip
        pid = docker("inspect", "--format", "{{.State.Pid}}", self._holder).stdout.strip()
        ports = sorted({port for c in self.pod_spec["containers"] for port in probe_ports(c)})
        pairs = [f"tcp:127.0.0.1:{self.api_port}=unix:{self.api_socket}"]
        pairs += [f"unix:{self.socket_for(port)}=tcp:127.0.0.1:{port}" for port in ports]
        self._bridge = subprocess.Popen(
            ["nsenter", f"--net=/proc/{pid}/ns/net", sys.executable, "-m", "tests.image.bridge", *pairs],
            cwd=REPOSITORY,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._bridge.stdout is not None
        if self._bridge.stdout.readline().strip() != "ready":
            raise RuntimeError(f"the bridge into pod {self.name} did not start (exit {self._bridge.wait()})")
        service_environ = {"KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": str(self.api_port)}
        for container in self.pod_spec["containers"]:
            arguments = container_arguments(
                self.pod_spec,
                container,
                image=self.image,
                image_user=self.image_user,
                facts=self.facts,
                service_environ=service_environ,
                service_account_dir=self.service_account.directory if self.service_account_volume else None,
            )
            docker_name = f"{self.name}-{container['name']}"
            docker("run", "--detach", "--name", docker_name, "--network", f"container:{self._holder}", *arguments)
            self.containers[container["name"]] = docker_name
        return self

    async def get(self, port: int, path: str) -> int | None:
        """GET http://127.0.0.1:PORT/PATH in the pod's namespace, as kubelet's httpGet probe; None: no answer."""
        connector = aiohttp.UnixConnector(path=str(self.socket_for(port)))
        try:
            async with (
                aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=3)) as session,
                session.get(f"http://127.0.0.1:{port}{path}") as response,
            ):
                return response.status
        except (aiohttp.ClientError, TimeoutError, OSError):
            return None

    async def wait_probe(self, container: str, probe: str = "readinessProbe", timeout: float = 60.0) -> None:
        """Until the container's probe (httpGet) answers 200; fail with the container's log after `timeout`."""
        spec = next(c for c in self.pod_spec["containers"] if c["name"] == container)
        http = spec[probe]["httpGet"]
        port = next(iter(probe_ports({probe: spec[probe], "ports": spec.get("ports")})))
        deadline = asyncio.get_running_loop().time() + timeout
        while (status := await self.get(port, http["path"])) != 200:
            if asyncio.get_running_loop().time() > deadline or not self.running(container):
                answered = f"{probe} {http['path']} on {port} answered {status}"
                raise AssertionError(f"{self.name}/{container}: {answered}\n{self.logs(container)}")
            await asyncio.sleep(0.1)

    def running(self, container: str) -> bool:
        state = docker("inspect", "--format", "{{.State.Running}}", self.containers[container], check=False)
        return state.stdout.strip() == "true"

    def stop(self, container: str, grace: int = 5) -> int:
        """SIGTERM, then SIGKILL after `grace` seconds (docker stop); the exit code (137 if it had to be killed)."""
        docker("stop", "--time", str(grace), self.containers[container], timeout=grace + 60)
        return int(docker("inspect", "--format", "{{.State.ExitCode}}", self.containers[container]).stdout)

    def wait_exit(self, container: str, timeout: float = 60) -> int:
        return int(docker("wait", self.containers[container], timeout=timeout).stdout.strip())

    def logs(self, container: str) -> str:
        result = docker("logs", self.containers[container], check=False)
        return result.stdout + result.stderr

    def remove(self) -> None:
        names = [*self.containers.values(), self._holder] if self._holder else list(self.containers.values())
        if names:
            docker("rm", "--force", *names, check=False)
        if self._bridge is not None and self._bridge.poll() is None:
            self._bridge.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._bridge.wait(10)
            if self._bridge.poll() is None:
                self._bridge.kill()
                self._bridge.wait()
        if self._bridge is not None and self._bridge.stdout is not None:
            self._bridge.stdout.close()
