"""The three patch formats the API accepts: JSON merge patch, JSON patch and (for built-in kinds) strategic merge.

`merge_patch` and `strategic_merge_patch` return a new document (unchanged subtrees may be shared with the
input); `json_patch` works in place on a document the caller owns. Errors are `PatchError`s: `decode` ones are
the client's malformed patch (400), the others a patch that does not apply to the current object (422).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

MAX_JSON_PATCH_OPERATIONS: Final = 10000


class PatchError(ValueError):
    """A patch that cannot be decoded (`decode=True`) or applied."""

    def __init__(self, message: str, *, decode: bool = False) -> None:
        super().__init__(message)
        self.decode = decode


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: objects merge key by key, `null` removes a key, anything else replaces."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def json_patch(document: Any, operations: Any) -> Any:
    """RFC 6902: apply add/remove/replace/move/copy/test in order.

    Works in place on `document`, which the caller owns and throws away when a PatchError is raised.
    """
    if not isinstance(operations, list):
        raise PatchError("json: cannot unmarshal object into Go value of type jsonpatch.Patch", decode=True)
    if len(operations) > MAX_JSON_PATCH_OPERATIONS:
        raise PatchError(
            f"The allowed maximum operations in a JSON patch is {MAX_JSON_PATCH_OPERATIONS}, got {len(operations)}",
            decode=True,
        )
    result = document
    for operation in operations:
        if not isinstance(operation, dict) or not isinstance(operation.get("op"), str):
            raise PatchError("invalid operation: missing or non-string 'op'", decode=True)
        result = _apply_operation(result, operation)
    return result


def _pointer(text: Any) -> list[str]:
    if not isinstance(text, str):
        raise PatchError("invalid operation: missing or non-string 'path'", decode=True)
    if text == "":
        return []
    if not text.startswith("/"):
        raise PatchError(f"invalid JSON pointer: {text!r}")
    return [part.replace("~1", "/").replace("~0", "~") for part in text[1:].split("/")]


def _index(container: list[Any], token: str, *, insert: bool) -> int:
    if token == "-" and insert:
        return len(container)
    if not token.isdigit() or (len(token) > 1 and token.startswith("0")):
        raise PatchError(f"invalid array index: {token!r}")
    index = int(token)
    limit = len(container) if insert else len(container) - 1
    if index > limit:
        raise PatchError(f"array index out of bounds: {index}")
    return index


def _parent(document: Any, path: list[str]) -> Any:
    node = document
    for token in path[:-1]:
        if isinstance(node, dict):
            if token not in node:
                raise PatchError(f"doc is missing path: {token!r}")
            node = node[token]
        elif isinstance(node, list):
            node = node[_index(node, token, insert=False)]
        else:
            raise PatchError(f"doc is missing path: {token!r}")
    return node


def _get(document: Any, path: list[str]) -> Any:
    if not path:
        return document
    parent = _parent(document, path)
    token = path[-1]
    if isinstance(parent, dict):
        if token not in parent:
            raise PatchError(f"doc is missing key: {token!r}")
        return parent[token]
    if isinstance(parent, list):
        return parent[_index(parent, token, insert=False)]
    raise PatchError(f"doc is missing path: {token!r}")


def _add(document: Any, path: list[str], value: Any) -> Any:
    if not path:
        return value
    parent = _parent(document, path)
    token = path[-1]
    if isinstance(parent, dict):
        parent[token] = value
    elif isinstance(parent, list):
        parent.insert(_index(parent, token, insert=True), value)
    else:
        raise PatchError("add operation does not apply: doc is missing path")
    return document


def _remove(document: Any, path: list[str]) -> Any:
    if not path:
        raise PatchError("remove operation does not apply: cannot remove the whole document")
    parent = _parent(document, path)
    token = path[-1]
    if isinstance(parent, dict):
        if token not in parent:
            raise PatchError(f"remove operation does not apply: doc is missing key: {token!r}")
        del parent[token]
    elif isinstance(parent, list):
        del parent[_index(parent, token, insert=False)]
    else:
        raise PatchError("remove operation does not apply: doc is missing path")
    return document


def _apply_operation(document: Any, operation: Mapping[str, Any]) -> Any:
    name = operation["op"]
    path = _pointer(operation.get("path"))
    if name in ("add", "replace", "test") and "value" not in operation:
        raise PatchError(f"{name} operation has no value", decode=True)
    if name == "add":
        return _add(document, path, copy.deepcopy(operation["value"]))
    if name == "remove":
        return _remove(document, path)
    if name == "replace":
        _get(document, path)
        return _add(_remove(document, path), path, copy.deepcopy(operation["value"])) if path else operation["value"]
    if name == "move":
        source = _pointer(operation.get("from"))
        value = _get(document, source)
        return _add(_remove(document, source), path, value)
    if name == "copy":
        source = _pointer(operation.get("from"))
        return _add(document, path, copy.deepcopy(_get(document, source)))
    if name == "test":
        try:
            actual = _get(document, path)
        except PatchError:
            actual = _MISSING
        if actual != operation["value"]:
            raise PatchError(f"testing value {operation.get('path')} failed: test operation does not apply")
        return document
    raise PatchError(f"unexpected operation: {name!r}", decode=True)


_MISSING: Final = object()


@dataclass(frozen=True, slots=True)
class MergeRules:
    """How a strategic merge patch treats the lists of one kind: by path (list items written as `[]`)."""

    keyed_lists: Mapping[tuple[str, ...], str] = field(default_factory=dict)  # path -> merge key
    primitive_merge_lists: frozenset[tuple[str, ...]] = frozenset()

    def key_for(self, path: tuple[str, ...]) -> str | None:
        return self.keyed_lists.get(path)


# Every kind shares ObjectMeta's rules (patchStrategy:"merge" on finalizers and ownerReferences).
OBJECT_META_RULES: Final = MergeRules(
    keyed_lists={("metadata", "ownerReferences"): "uid"},
    primitive_merge_lists=frozenset({("metadata", "finalizers")}),
)

_DIRECTIVE: Final = "$patch"
_DELETE_FROM_PRIMITIVE: Final = "$deleteFromPrimitiveList/"
_SET_ELEMENT_ORDER: Final = "$setElementOrder/"
_RETAIN_KEYS: Final = "$retainKeys"


def strategic_merge_patch(target: Any, patch: Any, rules: MergeRules) -> Any:
    """A strategic merge patch: a merge patch whose lists merge by key where the kind says so.

    Supports `$patch: replace|delete`, `$deleteFromPrimitiveList/<list>`, `$retainKeys` and
    `$setElementOrder/<list>`. A merged list is ordered as kube-apiserver orders it (`_in_server_order`): the
    patch's items in the patch's order (or `$setElementOrder`'s), the items only the server had in their live
    order, each of those placed before the first patch item it preceded in the live list.
    """
    if not isinstance(patch, dict):
        raise PatchError("json: cannot unmarshal array into Go value of type map[string]interface {}", decode=True)
    return _smp_map(target if isinstance(target, dict) else {}, patch, (), rules)


def _smp_map(target: dict[str, Any], patch: dict[str, Any], path: tuple[str, ...], rules: MergeRules) -> Any:
    directive = patch.get(_DIRECTIVE)
    if directive == "replace":
        return {key: value for key, value in patch.items() if key != _DIRECTIVE}
    if directive == "delete":
        return None
    result = dict(target)
    retain = patch.get(_RETAIN_KEYS)
    element_orders = {
        key[len(_SET_ELEMENT_ORDER) :]: value
        for key, value in patch.items()
        if key.startswith(_SET_ELEMENT_ORDER) and isinstance(value, list)
    }
    for key, value in patch.items():
        if key in (_DIRECTIVE, _RETAIN_KEYS) or key.startswith(_SET_ELEMENT_ORDER):
            continue
        if key.startswith(_DELETE_FROM_PRIMITIVE):
            name = key[len(_DELETE_FROM_PRIMITIVE) :]
            if isinstance(result.get(name), list) and isinstance(value, list):
                result[name] = [item for item in result[name] if item not in value]
            continue
        if value is None:
            result.pop(key, None)
            continue
        child = (*path, key)
        current = result.get(key)
        if isinstance(value, dict) and isinstance(current, dict):
            merged = _smp_map(current, value, child, rules)
            if merged is None:
                result.pop(key, None)
            else:
                result[key] = merged
        elif isinstance(value, dict):
            merged = _smp_map({}, value, child, rules)
            if merged is not None:
                result[key] = merged
        elif isinstance(value, list):
            if child in rules.primitive_merge_lists and not isinstance(current, list):
                result[key] = list(value)  # a list the object lacks is taken as the patch gives it, duplicates too
            else:
                result[key] = _smp_list(current if isinstance(current, list) else [], value, child, rules)
        else:
            result[key] = value
    for name, order in element_orders.items():
        live = target.get(name)
        if isinstance(result.get(name), list) and isinstance(live, list):
            identity = _identity(rules, (*path, name))
            result[name] = _in_server_order(result[name], order, live, identity)
    if isinstance(retain, list):
        result = {key: value for key, value in result.items() if key in retain}
    return result


def _smp_list(target: list[Any], patch: list[Any], path: tuple[str, ...], rules: MergeRules) -> list[Any]:
    if path in rules.primitive_merge_lists:
        merged = []  # both lists' items, each once (kube-apiserver deduplicates the live list's items too)
        for item in (*target, *patch):
            if item not in merged:
                merged.append(item)
        return _in_server_order(merged, patch, target, _identity(rules, path))
    merge_key = rules.key_for(path)
    if merge_key is None:
        return [item for item in patch if not (isinstance(item, dict) and item.get(_DIRECTIVE) == "replace")]
    merged = [dict(item) if isinstance(item, dict) else item for item in target]
    for item in patch:
        if not isinstance(item, dict) or merge_key not in item:
            raise PatchError(f"map: {item} does not contain declared merge key: {merge_key}")
        position = next(
            (i for i, old in enumerate(merged) if isinstance(old, dict) and old.get(merge_key) == item[merge_key]),
            None,
        )
        if item.get(_DIRECTIVE) == "delete":
            if position is not None:
                del merged[position]
            continue
        if position is None:
            merged.append({key: value for key, value in item.items() if key != _DIRECTIVE})
        else:
            merged[position] = _smp_map(merged[position], item, (*path, "[]"), rules)
    kept = [item for item in patch if item.get(_DIRECTIVE) != "delete"]
    return _in_server_order(merged, kept, target, _identity(rules, path))


def _identity(rules: MergeRules, path: tuple[str, ...]) -> Callable[[Any], Any]:
    """What names a list item: its merge key's value in a keyed list, the item itself in a list of primitives."""
    merge_key = rules.key_for(path)
    if merge_key is None:
        return lambda item: item
    return lambda item: item.get(merge_key) if isinstance(item, dict) else item


def _in_server_order(merged: list[Any], order: list[Any], live: list[Any], identity: Callable[[Any], Any]) -> list[Any]:
    """The order kube-apiserver gives a merged list (apimachinery strategicpatch, checked against v1.36.2).

    The items named in `order` (the patch list, or its `$setElementOrder`) come in that order; the others, which
    only the live list had, keep their live order; walking both, a live-only item goes first only when both it and
    the next patch item were live and it came before that item there. So a new item lands before the live ones:
    `["b"]` on `["a"]` gives `["b", "a"]`.
    """
    named = [identity(item) for item in order]
    was_live = [identity(item) for item in live]

    def position(ids: list[Any], item: Any) -> int | None:
        key = identity(item)
        return ids.index(key) if key in ids else None

    from_patch = sorted((i for i in merged if identity(i) in named), key=lambda i: named.index(identity(i)))
    live_only = sorted(  # live items only, but for patch items a $setElementOrder leaves out: those go last
        (i for i in merged if identity(i) not in named),
        key=lambda i: was_live.index(identity(i)) if identity(i) in was_live else len(was_live),
    )
    result: list[Any] = []
    left = right = 0
    while left < len(live_only) or right < len(from_patch):
        if right >= len(from_patch):
            take_live = True
        elif left >= len(live_only):
            take_live = False
        else:
            here, there = position(was_live, live_only[left]), position(was_live, from_patch[right])
            take_live = here is not None and there is not None and here < there
        if take_live:
            result.append(live_only[left])
            left += 1
        else:
            result.append(from_patch[right])
            right += 1
    return result
