"""The plugin's only I/O: the kubeconfig, and every API call it makes, with API errors turned into one line.

The calls, and the ClusterRole that grants each (manifests/common/rbac-users.yaml; tests/integration/plugin/
test_rbac.py checks the rules against the calls recorded in the sandbox's audit log):

  kubernaut-viewer    get/list remediationrequests, list workflowexecutions (across namespaces: an execution on
                      the same target may live in another namespace), get deployments (the orchestrator's
                      settings, --settings-from)
  kubernaut-operator  the viewer's, plus get workflowexecutions (ack wfe checks it) and patch remediationrequests
                      (unblock, ack chain) and workflowexecutions (ack wfe): metadata.annotations only, conditional
                      on the resourceVersion that was checked
  every user          create selfsubjectreviews (who am I; the built-in system:basic-user role grants it)
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubernetes_asyncio.client import ApiClient, Configuration
from kubernetes_asyncio.config import ConfigException, load_kube_config

from shared.apiresource import ApiResource
from shared.models import RemediationRequest, WorkflowExecution
from shared.runtime.client import ApiError, KubeClient

KubeDict = dict[str, Any]

RR = RemediationRequest.RESOURCE
WFE = WorkflowExecution.RESOURCE
DEPLOYMENTS = ApiResource("apps", "v1", "Deployment", "deployments")
SELF_SUBJECT_REVIEWS = ApiResource("authentication.k8s.io", "v1", "SelfSubjectReview", "selfsubjectreviews", False)
USER_AGENT = "kubectl-kubernaut"
PAGE_SIZE = 500


class PluginError(Exception):
    """What the user is told: one line, no traceback, a non-zero exit. `status`: the API's answer behind it, if any."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class Identity:
    """Who the plugin acts as, and how it knows."""

    name: str
    source: str  # "SelfSubjectReview" or "kubeconfig"


class Cluster:
    """One cluster, as the kubeconfig's context names it."""

    def __init__(self, client: KubeClient, *, host: str, context: str, namespace: str, user: str) -> None:
        self.client = client
        self.host = host
        self.context = context
        self.namespace = namespace
        """The context's namespace (kubectl's default for -n)."""
        self.kubeconfig_user = user

    @classmethod
    async def connect(cls, kubeconfig: Path | None, context: str | None) -> Cluster:
        """The kubeconfig as kubectl reads it: --kubeconfig, else $KUBECONFIG (a list of files), else
        ~/.kube/config; --context, else the current context."""
        files = [kubeconfig] if kubeconfig else _default_kubeconfigs()
        if not any(path.is_file() for path in files):
            raise PluginError(
                f"no kubeconfig: {', '.join(map(str, files))} does not exist (use --kubeconfig or set KUBECONFIG)"
            )
        configuration = Configuration()
        try:
            loader = await load_kube_config(
                config_file=str(kubeconfig) if kubeconfig else None,
                context=context,
                client_configuration=configuration,
                persist_config=False,
            )
        except (ConfigException, OSError, ValueError, TypeError, KeyError) as error:
            where = f" {kubeconfig}" if kubeconfig else ""
            raise PluginError(f"cannot use the kubeconfig{where}: {_one_line(str(error))}") from None
        current = loader.current_context or {}
        details = current.get("context") or {}
        client = KubeClient(ApiClient(configuration=configuration), user_agent=USER_AGENT)
        return cls(
            client,
            host=str(configuration.host),
            context=str(current.get("name") or context or ""),
            namespace=str(details.get("namespace") or "default"),
            user=str(details.get("user") or ""),
        )

    async def close(self) -> None:
        await self.client.close()

    # -- reads ------------------------------------------------------------------------------------------------
    async def list(self, resource: ApiResource, namespace: str | None) -> list[KubeDict]:
        """Every object of `resource` in `namespace` (None: every namespace), page by page."""
        items: list[KubeDict] = []
        try:
            async for page, _ in self.client.pages(resource, namespace, limit=PAGE_SIZE):
                items.extend(page)
        except ApiError as error:
            raise self.problem(error, "list", resource, namespace, None) from None
        return items

    async def get(self, resource: ApiResource, namespace: str, name: str) -> KubeDict:
        obj = await self._call("get", resource, namespace, name, self.client.get(resource, namespace, name))
        obj.setdefault("apiVersion", resource.api_version)
        obj.setdefault("kind", resource.kind)
        return obj

    async def whoami(self) -> Identity:
        """The user the API server sees (a SelfSubjectReview, as `kubectl auth whoami`), else the kubeconfig's
        user name when the server does not serve the review (before Kubernetes 1.28) or refuses it."""
        body = {"apiVersion": SELF_SUBJECT_REVIEWS.api_version, "kind": SELF_SUBJECT_REVIEWS.kind}
        try:
            review = await self.client.create(SELF_SUBJECT_REVIEWS, body)
        except ApiError as error:
            if error.status not in (403, 404, 405):
                raise self.problem(error, "create", SELF_SUBJECT_REVIEWS, None, None) from None
        else:
            name = ((review.get("status") or {}).get("userInfo") or {}).get("username")
            if isinstance(name, str) and name:
                return Identity(name, "SelfSubjectReview")
        if not self.kubeconfig_user:
            raise PluginError(f"cannot tell who you are: context {self.context!r} names no user")
        return Identity(self.kubeconfig_user, "kubeconfig")

    # -- writes -----------------------------------------------------------------------------------------------
    async def annotate(self, resource: ApiResource, obj: KubeDict, key: str, value: str) -> KubeDict:
        """Set one annotation on the version of `obj` that was checked (409 Conflict if it changed since)."""
        meta = obj["metadata"]
        patch = {"metadata": {"annotations": {key: value}, "resourceVersion": meta.get("resourceVersion")}}
        return await self._call(
            "patch",
            resource,
            meta.get("namespace"),
            meta["name"],
            self.client.patch(resource, meta.get("namespace"), meta["name"], patch),
        )

    # -- errors -----------------------------------------------------------------------------------------------
    async def _call(
        self, verb: str, resource: ApiResource, namespace: str | None, name: str | None, call: Any
    ) -> KubeDict:
        try:
            result: KubeDict = await call
        except ApiError as error:
            raise self.problem(error, verb, resource, namespace, name) from None
        return result

    def problem(
        self, error: ApiError, verb: str, resource: ApiResource, namespace: str | None, name: str | None
    ) -> PluginError | ApiError:
        """The one line to show for an API error (a 409 Conflict is returned as is, for the caller to retry)."""
        what = resource.group_resource
        where = f" in namespace {namespace!r}" if namespace else " across all namespaces" if resource.namespaced else ""
        if error.status == 0:
            return PluginError(
                f"cannot reach the cluster at {self.host} (context {self.context!r}): {_cause(error.message)}"
            )
        if error.status == 401:
            return PluginError(f"the cluster at {self.host} refused the credentials of context {self.context!r}")
        if error.status == 403:
            return PluginError(f"forbidden: you may not {verb} {what}{where}: {_one_line(error.message)}", status=403)
        if error.status == 404 and name is not None:
            return PluginError(f"{resource.kind} {name!r} not found{where}")
        if error.status == 404:
            return PluginError(f"the cluster does not serve {what}: are the Kubernaut CRDs installed?")
        if error.conflict:
            return error
        return PluginError(f"{verb} {what}{where}: {error.status} {error.reason}: {_one_line(error.message)}")


def _default_kubeconfigs() -> list[Path]:
    """$KUBECONFIG's files, else ~/.kube/config (kubectl's loading rules)."""
    listed = [Path(part).expanduser() for part in os.environ.get("KUBECONFIG", "").split(os.pathsep) if part]
    return listed or [Path("~/.kube/config").expanduser()]


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _cause(message: str) -> str:
    """The connection error without the request line KubeClient puts in front of it."""
    _, _, cause = message.partition(": ")
    return _one_line(cause or message)
