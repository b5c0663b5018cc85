"""Every manifest file parses, every object names itself, and every kustomization builds with `kubectl kustomize`."""

import json
from pathlib import Path

import pytest
import yaml

from tests.deploy.manifests import (
    CLUSTER_SCOPED_KINDS,
    KUSTOMIZATION_FILES,
    MANIFESTS,
    ROOT,
    kustomization_dirs,
    kustomize,
    load_documents,
    of_kind,
)

NOT_KUBERNETES_OBJECTS = {MANIFESTS / "kind" / "cluster.yaml"}  # kind's own configuration
NOT_MANIFESTS = {ROOT / "examples" / "demo" / "scenario.yaml"}  # the demo's scenario, checked by sandbox.scenario
YAML_FILES = sorted(
    path
    for pattern in ("*.yaml", *KUSTOMIZATION_FILES)
    for path in [*MANIFESTS.rglob(pattern), *(ROOT / "examples").rglob(pattern)]
    if path not in NOT_MANIFESTS
)


def relative(path: Path) -> str:
    return str(path.relative_to(ROOT))


def test_there_are_manifests_to_check():
    assert len(YAML_FILES) > 20


@pytest.mark.parametrize("path", YAML_FILES, ids=relative)
def test_every_yaml_file_loads_and_every_object_has_api_version_kind_and_name(path):
    documents = load_documents(path)
    assert documents, f"{relative(path)} is empty"
    for document in documents:
        assert isinstance(document, dict), relative(path)
        assert document.get("apiVersion") and document.get("kind"), f"{relative(path)}: apiVersion and kind"
        if path.name not in KUSTOMIZATION_FILES and path not in NOT_KUBERNETES_OBJECTS:
            assert (document.get("metadata") or {}).get("name"), f"{relative(path)}: a {document['kind']} has no name"


@pytest.mark.parametrize("path", sorted(MANIFESTS.rglob("*.json")), ids=relative)
def test_every_json_file_parses(path):
    assert json.loads(path.read_text())


def test_the_crd_kustomization_lists_exactly_the_generated_crds():
    listed = yaml.safe_load((MANIFESTS / "crds" / "Kustomization").read_text())["resources"]
    assert sorted(listed) == sorted(p.name for p in (MANIFESTS / "crds").glob("*.yaml"))


@pytest.mark.parametrize("directory", kustomization_dirs(), ids=relative)
def test_every_kustomization_builds(directory):
    assert kustomize(directory)


def test_every_overlay_builds_a_whole_control_plane(objects):
    kinds = {obj["kind"] for obj in objects}
    assert {"Namespace", "CustomResourceDefinition", "Deployment", "ClusterRole", "Service"} <= kinds


def test_the_overlays_are_the_three_deployment_shapes():
    overlays = {p.name for p in (MANIFESTS / "overlays").iterdir() if p.is_dir()}
    assert overlays == {"kind", "production", "two-container"}


def test_every_overlay_installs_the_crds_and_both_namespaces(objects):
    crds = {crd["metadata"]["name"] for crd in of_kind(objects, "CustomResourceDefinition")}
    assert crds == {
        "remediationrequests.kubernaut.ai",
        "workflowexecutions.kubernaut.ai",
        "notificationrequests.kubernaut.ai",
    }
    assert {ns["metadata"]["name"] for ns in of_kind(objects, "Namespace")} == {
        "kubernaut-system",
        "kubernaut-workflows",
    }


def test_every_namespaced_object_names_a_namespace_the_overlay_creates(objects):
    # No namespace transformer (two namespaces): an object without one would land in kubectl's current namespace.
    # `default` always exists: the workflow runner's example RoleBinding is there (the example's target namespace).
    namespaces = {ns["metadata"]["name"] for ns in of_kind(objects, "Namespace")} | {"default"}
    for obj in objects:
        namespace = obj["metadata"].get("namespace")
        if obj["kind"] in CLUSTER_SCOPED_KINDS:
            assert namespace is None, f"{obj['kind']} {obj['metadata']['name']} is cluster-scoped"
        else:
            assert namespace in namespaces, f"{obj['kind']} {obj['metadata']['name']}: namespace {namespace!r}"


def test_every_object_we_write_is_labelled_part_of_kubernaut(objects):
    for obj in objects:
        if obj["kind"] != "CustomResourceDefinition":  # generated, see make crds
            labels = obj["metadata"].get("labels") or {}
            assert labels.get("app.kubernetes.io/part-of") == "kubernaut", f"{obj['kind']} {obj['metadata']['name']}"
