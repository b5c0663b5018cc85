"""A small kustomize for exactly the features our manifests use, so the deploy tests run where kubectl does not.

Supported; anything else in a kustomization raises `UnsupportedFeature`, so a new feature is added here on purpose,
and `test_kustomize.py` compares every build with `kubectl kustomize` wherever kubectl is installed:

- `resources`: YAML files inside the kustomization's directory (kustomize's default load restrictor), and
  directories holding a kustomization (`kustomization.yaml`, `kustomization.yml` or `Kustomization`);
- `configMapGenerator`: `name`, `namespace`, `files` (key = file name, or `key=path`), `options.labels`, and
  `options.disableNameSuffixHash: true` (the name hash is not modelled, so it is required);
- `patches`: strategic-merge patches from `path` or inline `patch` (one or more documents), each addressed by its
  own apiVersion, kind, name and namespace (no `target`), on Deployments and PodDisruptionBudgets: maps merge,
  `null` deletes a field, lists merge by key where the Kubernetes API says so (`POD_SPEC_MERGE_KEYS`), other lists
  are replaced;
- `images`: `name` with `newName`, `newTag` and/or `digest`, on every `containers` / `initContainers` image.

Transformers run in kustomize's order (patches, then images), after the resources and generators are collected;
a directory resource is built completely (its own transformers included) before its parent's transformers run.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import yaml

KubeObject = dict[str, Any]
KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
SUPPORTED_FIELDS = {"apiVersion", "kind", "resources", "configMapGenerator", "patches", "images"}

# patchMergeKey of the Kubernetes API's lists in a pod spec (the lists not named here are replaced by a patch).
POD_SPEC_MERGE_KEYS: dict[tuple[str, ...], str] = {
    ("containers",): "name",
    ("initContainers",): "name",
    ("containers", "env"): "name",
    ("initContainers", "env"): "name",
    ("containers", "ports"): "containerPort",
    ("initContainers", "ports"): "containerPort",
    ("containers", "volumeMounts"): "mountPath",
    ("initContainers", "volumeMounts"): "mountPath",
    ("volumes",): "name",
    ("imagePullSecrets",): "name",
    ("topologySpreadConstraints",): "topologyKey",
}
# Kinds a patch may address, with where their pod spec is (None: no pod spec, and no list we would merge by key).
PATCHABLE_KINDS: dict[str, tuple[str, ...] | None] = {
    "Deployment": ("spec", "template", "spec"),
    "PodDisruptionBudget": None,
}
CLUSTER_SCOPED_KINDS = {
    "Namespace",
    "CustomResourceDefinition",
    "ClusterRole",
    "ClusterRoleBinding",
    "PriorityClass",
    "StorageClass",
}


class KustomizeError(Exception):
    """The kustomization cannot be built (kustomize would refuse it too)."""


class UnsupportedFeature(KustomizeError):
    """The kustomization uses a feature this builder does not model; extend it (and its comparison test)."""


def build(directory: Path) -> list[KubeObject]:
    """The objects `kubectl kustomize <directory>` prints, in no particular order."""
    return _build(directory.resolve(), ())


def kustomization_file(directory: Path) -> Path:
    found = [directory / name for name in KUSTOMIZATION_FILES if (directory / name).is_file()]
    if len(found) != 1:
        raise KustomizeError(f"{directory}: expected exactly one of {KUSTOMIZATION_FILES}, found {len(found)}")
    return found[0]


def object_id(obj: KubeObject) -> tuple[str, str, str, str]:
    """(group, kind, namespace, name): what kustomize keeps unique and what a patch addresses."""
    group = obj["apiVersion"].rpartition("/")[0]
    meta = obj.get("metadata") or {}
    namespace = meta.get("namespace") or ("" if obj["kind"] in CLUSTER_SCOPED_KINDS else "default")
    return group, obj["kind"], namespace, meta["name"]


def load_documents(path: Path) -> list[KubeObject]:
    """The non-empty YAML documents of a file."""
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def _build(directory: Path, visiting: tuple[Path, ...]) -> list[KubeObject]:
    if directory in visiting:
        raise KustomizeError(f"cycle: {directory} includes itself through {[str(p) for p in visiting]}")
    source = kustomization_file(directory)
    kustomization = yaml.safe_load(source.read_text()) or {}
    unsupported = set(kustomization) - SUPPORTED_FIELDS
    if unsupported:
        raise UnsupportedFeature(f"{source}: {sorted(unsupported)} not modelled by tests/deploy/kustomize.py")

    objects: list[KubeObject] = []
    for entry in kustomization.get("resources") or []:
        path = (directory / entry).resolve()
        if path.is_dir():
            objects += _build(path, (*visiting, directory))
        elif path.is_relative_to(directory):
            objects += load_documents(path)
        else:
            raise KustomizeError(f"{source}: {entry} is a file outside {directory} (kustomize's load restrictor)")
    for generator in kustomization.get("configMapGenerator") or []:
        objects.append(_config_map(directory, source, generator))
    _check_unique(objects, source)

    for patch in kustomization.get("patches") or []:
        for document in _patch_documents(directory, source, patch):
            _apply_patch(objects, document, source)
    for image in kustomization.get("images") or []:
        _set_images(objects, image, source)
    return objects


def _check_unique(objects: list[KubeObject], source: Path) -> None:
    seen: set[tuple[str, str, str, str]] = set()
    for obj in objects:
        key = object_id(obj)
        if key in seen:
            raise KustomizeError(f"{source}: {key} is defined twice")
        seen.add(key)


# -- configMapGenerator -------------------------------------------------------------------------------------------
def _config_map(directory: Path, source: Path, generator: dict[str, Any]) -> KubeObject:
    allowed = {"name", "namespace", "files", "options"}
    options = generator.get("options") or {}
    if set(generator) - allowed or set(options) - {"labels", "disableNameSuffixHash"}:
        raise UnsupportedFeature(f"{source}: configMapGenerator {generator.get('name')}: only {sorted(allowed)}")
    if options.get("disableNameSuffixHash") is not True:
        raise UnsupportedFeature(f"{source}: configMapGenerator needs options.disableNameSuffixHash: true")
    data = {}
    for entry in generator.get("files") or []:
        key, _, relative = entry.rpartition("=") if "=" in entry else ("", "", entry)
        path = (directory / relative).resolve()
        if not path.is_relative_to(directory):
            raise KustomizeError(f"{source}: {relative} is outside {directory}")
        data[key or path.name] = path.read_text()
    metadata: dict[str, Any] = {"name": generator["name"]}
    if generator.get("namespace"):
        metadata["namespace"] = generator["namespace"]
    if options.get("labels"):
        metadata["labels"] = dict(options["labels"])
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata, "data": data}


# -- patches ------------------------------------------------------------------------------------------------------
def _patch_documents(directory: Path, source: Path, patch: dict[str, Any]) -> list[KubeObject]:
    if set(patch) - {"path", "patch"} or len(patch) != 1:
        raise UnsupportedFeature(f"{source}: a patch is one `path` or one `patch`, without `target` or options")
    if "path" in patch:
        path = (directory / patch["path"]).resolve()
        if not path.is_relative_to(directory):
            raise KustomizeError(f"{source}: patch {patch['path']} is outside {directory}")
        return load_documents(path)
    return [doc for doc in yaml.safe_load_all(patch["patch"]) if doc is not None]


def _apply_patch(objects: list[KubeObject], patch: KubeObject, source: Path) -> None:
    kind = patch.get("kind")
    if kind not in PATCHABLE_KINDS:
        raise UnsupportedFeature(f"{source}: strategic-merge patches of {kind} are not modelled (its list keys)")
    key = object_id(patch)
    targets = [i for i, obj in enumerate(objects) if object_id(obj) == key]
    if len(targets) != 1:
        raise KustomizeError(f"{source}: patch addresses {key}, which matches {len(targets)} objects")
    index = targets[0]
    objects[index] = _merge(objects[index], patch, (), PATCHABLE_KINDS[kind])


def _merge(base: Any, patch: Any, path: tuple[str, ...], pod_spec: tuple[str, ...] | None) -> Any:
    """Strategic merge of `patch` into `base`; `path` is the field path from the object (list positions left out)."""
    if isinstance(patch, dict) and isinstance(base, dict):
        merged = dict(base)
        for field, value in patch.items():
            if field.startswith("$"):
                raise UnsupportedFeature(f"patch directive {field} at {'.'.join(path)} is not modelled")
            if value is None:
                merged.pop(field, None)
            else:
                merged[field] = _merge(merged.get(field), value, (*path, field), pod_spec)
        return merged
    if isinstance(patch, dict):  # a new map: drop the deletions it carries
        return _merge({}, patch, path, pod_spec)
    if isinstance(patch, list) and isinstance(base, list):
        merge_key = _merge_key(path, pod_spec)
        if merge_key is None:
            return copy.deepcopy(patch)
        merged_list = list(base)
        for item in patch:
            position = next((i for i, old in enumerate(merged_list) if old.get(merge_key) == item[merge_key]), None)
            if position is None:
                merged_list.append(_merge({}, item, path, pod_spec))
            else:
                merged_list[position] = _merge(merged_list[position], item, path, pod_spec)
        return merged_list
    return copy.deepcopy(patch)


def _merge_key(path: tuple[str, ...], pod_spec: tuple[str, ...] | None) -> str | None:
    if pod_spec is None or path[: len(pod_spec)] != pod_spec:
        return None
    return POD_SPEC_MERGE_KEYS.get(path[len(pod_spec) :])


# -- images -------------------------------------------------------------------------------------------------------
def _set_images(objects: list[KubeObject], image: dict[str, Any], source: Path) -> None:
    if set(image) - {"name", "newName", "newTag", "digest"}:
        raise UnsupportedFeature(f"{source}: images entry {image} uses fields not modelled")
    for obj in objects:
        for container in _containers(obj):
            if "image" in container:
                container["image"] = replace_image(container["image"], image)


def _containers(node: Any) -> list[dict[str, Any]]:
    """Every container and init container anywhere in an object, as kustomize's image transformer finds them."""
    found: list[dict[str, Any]] = []
    if isinstance(node, dict):
        for field, value in node.items():
            if field in ("containers", "initContainers") and isinstance(value, list):
                found += [c for c in value if isinstance(c, dict)]
            else:
                found += _containers(value)
    elif isinstance(node, list):
        for item in node:
            found += _containers(item)
    return found


def split_image(reference: str) -> tuple[str, str, str]:
    """(name, tag, digest) of an image reference; a registry's port is part of the name."""
    slash = reference.find("/")
    offset = slash if slash > 0 else 0
    rest = reference[offset:]
    name_end = min((i for i in (rest.find(":"), rest.find("@")) if i >= 0), default=-1)
    if name_end < 0:
        return reference, "", ""
    name, suffix = reference[: offset + name_end], rest[name_end:]
    tag, _, digest = suffix.partition("@")
    return name, tag.removeprefix(":"), digest


def replace_image(reference: str, rule: dict[str, Any]) -> str:
    """Apply one `images` entry to an image reference, as kustomize's image tag transformer does."""
    # kustomize's pattern (it does not escape the name; a name is not meant to be a pattern, so we do).
    if not re.fullmatch(re.escape(rule["name"]) + r"(:[a-zA-Z0-9_.{}-]*)?(@sha256:[a-zA-Z0-9_.{}-]*)?", reference):
        return reference
    name, tag, digest = split_image(reference)
    name = rule.get("newName") or name
    if rule.get("newTag") or rule.get("digest"):  # either replaces both the old tag and the old digest
        tag, digest = str(rule.get("newTag") or ""), str(rule.get("digest") or "")
    return name + (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")
