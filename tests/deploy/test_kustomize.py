"""`kubectl kustomize` builds every overlay, and the Python builder the other tests use gives the same objects."""

import functools
import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.deploy.kustomize import KustomizeError, UnsupportedFeature, build, replace_image, split_image
from tests.deploy.manifests import MANIFESTS, OVERLAYS, ROOT, kustomization_dirs

KUBECTL = shutil.which("kubectl")
needs_kubectl = pytest.mark.skipif(
    KUBECTL is None,
    reason="kubectl is not on PATH: the overlays were built and checked with tests/deploy/kustomize.py only",
)


@functools.cache
def kubectl_build(directory: Path) -> str:
    assert KUBECTL is not None
    result = subprocess.run(
        [KUBECTL, "kustomize", str(directory)], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, f"kubectl kustomize {directory} failed:\n{result.stderr}"
    return result.stdout


def normalized(objects) -> set[str]:
    return {json.dumps(obj, sort_keys=True) for obj in objects if obj is not None}


@needs_kubectl
@pytest.mark.parametrize("name", OVERLAYS)
def test_kubectl_builds_the_overlay(name):
    kinds = {doc["kind"] for doc in yaml.safe_load_all(kubectl_build(MANIFESTS / "overlays" / name)) if doc}
    assert {"Namespace", "CustomResourceDefinition", "Deployment", "ClusterRole", "Service"} <= kinds


@needs_kubectl
@pytest.mark.parametrize("directory", kustomization_dirs(), ids=lambda p: str(p.relative_to(ROOT)))
def test_the_python_builder_gives_what_kubectl_gives(directory):
    ours = normalized(build(directory))
    theirs = normalized(yaml.safe_load_all(kubectl_build(directory)))
    assert sorted(ours - theirs) == [], "only the Python builder has these"
    assert sorted(theirs - ours) == [], "only kubectl has these"


# -- the builder's own rules, on small kustomizations ---------------------------------------------------------------
def write(directory: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (directory / name).parent.mkdir(parents=True, exist_ok=True)
        (directory / name).write_text(text)
    return directory


DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: app, namespace: ns}
spec:
  template:
    spec:
      containers:
        - name: a
          image: example/app:1
          env: [{name: X, value: "1"}, {name: Y, value: "2"}]
          args: [--one]
        - name: b
          image: example/app@sha256:abc
      tolerations: [{key: k, operator: Exists}]
"""


def test_a_patch_merges_containers_and_env_by_name_and_replaces_other_lists(tmp_path):
    patch = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: app, namespace: ns}
spec:
  replicas: 2
  template:
    spec:
      containers:
        - name: a
          env: [{name: Y, value: "3"}, {name: Z, value: "4"}]
          args: [--two]
      tolerations: [{key: other, operator: Exists}]
"""
    write(tmp_path, {"kustomization.yaml": "resources: [app.yaml]\npatches: [{path: p.yaml}]\n"})
    write(tmp_path, {"app.yaml": DEPLOYMENT, "p.yaml": patch})
    (deployment,) = build(tmp_path)
    spec = deployment["spec"]["template"]["spec"]
    assert deployment["spec"]["replicas"] == 2
    assert [c["name"] for c in spec["containers"]] == ["a", "b"]
    assert spec["containers"][0]["env"] == [
        {"name": "X", "value": "1"},
        {"name": "Y", "value": "3"},
        {"name": "Z", "value": "4"},
    ]
    assert spec["containers"][0]["args"] == ["--two"]
    assert spec["tolerations"] == [{"key": "other", "operator": "Exists"}]


PDB_HEAD = "apiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata: {name: p, namespace: ns}\n"


def test_null_in_a_patch_deletes_the_field(tmp_path):
    pdb = PDB_HEAD + "spec: {maxUnavailable: 1}\n"
    patch = PDB_HEAD + "spec: {maxUnavailable: null, minAvailable: 1}\n"
    write(tmp_path, {"kustomization.yaml": "resources: [pdb.yaml]\npatches: [{path: p.yaml}]\n"})
    write(tmp_path, {"pdb.yaml": pdb, "p.yaml": patch})
    assert build(tmp_path)[0]["spec"] == {"minAvailable": 1}


IMAGE_CASES = [
    ("app:1", {"name": "app", "newTag": "2"}, "app:2"),
    ("app", {"name": "app", "newTag": "2"}, "app:2"),
    ("app:1", {"name": "app", "newName": "r.example/app"}, "r.example/app:1"),
    ("app:1", {"name": "app", "digest": "sha256:f"}, "app@sha256:f"),
    ("app:1@sha256:e", {"name": "app", "newTag": "2"}, "app:2"),
    ("app:1@sha256:e", {"name": "app", "newName": "x/app"}, "x/app:1@sha256:e"),
    ("app@sha256:e", {"name": "app", "newName": "x/app", "newTag": "2"}, "x/app:2"),
    ("application:1", {"name": "app", "newTag": "2"}, "application:1"),
    ("localhost:5000/app:1", {"name": "localhost:5000/app", "newTag": "2"}, "localhost:5000/app:2"),
]


@pytest.mark.parametrize(("reference", "rule", "expected"), IMAGE_CASES)
def test_images_replace_name_tag_and_digest_as_kustomize_does(reference, rule, expected):
    assert replace_image(reference, rule) == expected


@needs_kubectl
@pytest.mark.parametrize(("reference", "rule", "expected"), IMAGE_CASES)
def test_kubectl_replaces_images_as_the_table_says(tmp_path, reference, rule, expected):
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "c", "image": reference}]},
    }
    write(
        tmp_path,
        {
            "pod.yaml": yaml.safe_dump(pod),
            "kustomization.yaml": yaml.safe_dump({"resources": ["pod.yaml"], "images": [rule]}),
        },
    )
    (built_pod,) = yaml.safe_load_all(kubectl_build(tmp_path))
    assert built_pod["spec"]["containers"][0]["image"] == expected


def test_an_image_reference_splits_after_the_registry_port():
    assert split_image("localhost:5000/team/app:1.2@sha256:ab") == ("localhost:5000/team/app", "1.2", "sha256:ab")


def test_images_apply_to_every_container(tmp_path):
    write(tmp_path, {"kustomization.yaml": "resources: [app.yaml]\nimages: [{name: example/app, newTag: dev}]\n"})
    write(tmp_path, {"app.yaml": DEPLOYMENT})
    spec = build(tmp_path)[0]["spec"]["template"]["spec"]
    assert [c["image"] for c in spec["containers"]] == ["example/app:dev", "example/app:dev"]


def test_a_generated_config_map_holds_the_file_under_its_name(tmp_path):
    write(tmp_path, {"d/board.json": "{}\n"})
    write(
        tmp_path,
        {
            "kustomization.yaml": "configMapGenerator:\n- name: c\n  namespace: ns\n  files: [d/board.json]\n"
            "  options: {disableNameSuffixHash: true, labels: {a: b}}\n"
        },
    )
    assert build(tmp_path) == [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "c", "namespace": "ns", "labels": {"a": "b"}},
            "data": {"board.json": "{}\n"},
        }
    ]


@pytest.mark.parametrize(
    "kustomization",
    [
        "namespace: other\nresources: [app.yaml]\n",
        "resources: [app.yaml]\npatches: [{path: app.yaml, target: {kind: Deployment}}]\n",
        "configMapGenerator: [{name: c, literals: [a=b]}]\n",
        "configMapGenerator: [{name: c, files: [app.yaml]}]\n",  # the name hash is not modelled
    ],
)
def test_a_feature_the_builder_does_not_model_is_refused(tmp_path, kustomization):
    write(tmp_path, {"kustomization.yaml": kustomization, "app.yaml": DEPLOYMENT})
    with pytest.raises(UnsupportedFeature):
        build(tmp_path)


def test_a_file_outside_the_kustomization_is_refused_as_kustomize_does(tmp_path):
    write(tmp_path, {"app.yaml": DEPLOYMENT, "inner/kustomization.yaml": "resources: [../app.yaml]\n"})
    with pytest.raises(KustomizeError, match="outside"):
        build(tmp_path / "inner")


def test_an_object_defined_twice_is_refused(tmp_path):
    write(tmp_path, {"kustomization.yaml": "resources: [a.yaml, b.yaml]\n", "a.yaml": DEPLOYMENT, "b.yaml": DEPLOYMENT})
    with pytest.raises(KustomizeError, match="twice"):
        build(tmp_path)


def test_a_patch_that_matches_nothing_is_refused(tmp_path):
    patch = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: other, namespace: ns}\nspec: {replicas: 2}\n"
    write(tmp_path, {"kustomization.yaml": yaml.safe_dump({"resources": ["app.yaml"], "patches": [{"patch": patch}]})})
    write(tmp_path, {"app.yaml": DEPLOYMENT})
    with pytest.raises(KustomizeError, match="matches 0"):
        build(tmp_path)
