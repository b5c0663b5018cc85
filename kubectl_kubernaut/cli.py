"""`kubectl kubernaut VERB ...`: parse the flags as kubectl has them, run the verb, print, exit.

Exit status: 0 done; 1 the verb could not be done (one line on stderr saying why: not found, forbidden, no
cluster, a WorkflowExecution that is not failed, a request that is not blocked...); 2 a usage error.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import traceback
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

import orjson

from kubectl_kubernaut import render
from kubectl_kubernaut.cluster import DEPLOYMENTS, RR, WFE, Cluster, KubeDict, PluginError
from kubectl_kubernaut.report import (
    INEFFECTIVE_CHAIN,
    INEFFECTIVE_CHAIN_ACKNOWLEDGED_ANNOTATION,
    annotation_value,
    annotations_of,
    explain_report,
    snapshot,
    status_report,
)
from kubectl_kubernaut.settings import DEFAULT_SOURCE, SettingsOrigin, defaults, from_deployment
from orchestrator.dryrun import is_dry_run
from orchestrator.routing import ACKNOWLEDGED_ANNOTATION, TIME_BASED_REASONS, UNBLOCK_ANNOTATION, Verdict, explain
from orchestrator.validation import semantic_problems
from shared.models import ModelError, RemediationPhase, RemediationRequest
from shared.runtime.client import ApiError, retry_on_conflict
from shared.runtime.store import section

PROG = "kubectl kubernaut"
RR_WORDS = ("rr", "rrs", "remediationrequest", "remediationrequests")
WFE_WORDS = ("wfe", "wfes", "workflowexecution", "workflowexecutions")
DEBUG_ENV = "KUBECTL_KUBERNAUT_DEBUG"


class UsageError(Exception):
    """Bad command line: exit 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see '{self.prog} --help')")


# -- the command line ---------------------------------------------------------------------------------------------
def _common(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    """kubectl's flags. On the verbs too (kubectl users put them anywhere); there they do not reset the value
    given before the verb."""
    default: Any = argparse.SUPPRESS if suppress else None
    parser.add_argument("--kubeconfig", type=Path, default=default, help="path to the kubeconfig file")
    parser.add_argument("--context", default=default, help="the kubeconfig context to use")
    parser.add_argument("-n", "--namespace", default=default, help="namespace (default: the context's)")
    parser.add_argument(
        "-A",
        "--all-namespaces",
        action="store_true",
        default=argparse.SUPPRESS if suppress else False,
        help="every namespace (status)",
    )
    parser.add_argument(
        "-o", "--output", choices=("table", "json"), default=default, help="output format (default: table)"
    )


def _settings_from(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--settings-from",
        default=DEFAULT_SOURCE,
        metavar="NS/DEPLOYMENT",
        help=f"the orchestrator's Deployment to read settings from (default {DEFAULT_SOURCE})",
    )


def parser() -> argparse.ArgumentParser:
    root = _Parser(prog=PROG, description="Why a RemediationRequest waits, and what waits for a human (SPEC 9).")
    _common(root, suppress=False)
    verbs = root.add_subparsers(dest="verb", required=True, metavar="VERB", parser_class=_Parser)

    explain_ = verbs.add_parser("explain", help="every routing check for one request, evaluated now")
    _common(explain_, suppress=True)
    explain_.add_argument("kind", metavar="rr", help="rr (remediationrequest)")
    explain_.add_argument("name", help="the request's name")
    _settings_from(explain_)
    explain_.add_argument(
        "--if-unblocked",
        action="store_true",
        help="preview: decide as after `unblock` (time-based checks bypassed); changes nothing",
    )

    status_ = verbs.add_parser("status", help="requests by phase, blocked ones, what waits for a human")
    _common(status_, suppress=True)
    _settings_from(status_)

    ack = verbs.add_parser("ack", help="acknowledge a failed execution or an ineffective chain")
    _common(ack, suppress=True)
    ack.add_argument("what", metavar="wfe|chain", help="wfe NAME, or chain rr NAME")
    ack.add_argument("rest", nargs="+", metavar="NAME", help="the WorkflowExecution (wfe NAME) or rr NAME (chain)")
    ack.add_argument("--reason", required=True, help="why (recorded in the annotation with who and when)")

    unblock = verbs.add_parser("unblock", help="re-route a blocked request now, skipping time-based checks")
    _common(unblock, suppress=True)
    unblock.add_argument("kind", metavar="rr", help="rr (remediationrequest)")
    unblock.add_argument("name", help="the request's name")
    unblock.add_argument("--reason", default="", help="why (recorded in the annotation with who and when)")
    return root


def _name(kind: str, name: str, words: Sequence[str], what: str) -> str:
    if kind.lower() not in words:
        raise UsageError(f"expected {what} (one of {', '.join(words)}), got {kind!r}")
    return name


# -- the verbs ----------------------------------------------------------------------------------------------------
async def _explain(cluster: Cluster, args: argparse.Namespace) -> dict[str, Any]:
    name = _name(args.kind, args.name, RR_WORDS, "rr")
    namespace = args.namespace or cluster.namespace
    fetched = await cluster.get(RR, namespace, name)  # not found: one clear line before any list
    origin = await _settings(cluster, args.settings_from)
    executions, notes = await _executions(cluster, namespace, origin)
    requests = await cluster.list(RR, namespace)
    snap = snapshot(requests, executions)
    obj = snap.requests.get(f"{namespace}/{name}") or fetched  # the listed version: one view for every object
    try:
        rr = RemediationRequest.from_k8s(obj)
    except ModelError as error:
        raise PluginError(
            f"{error}; the orchestrator fails such a request (InvalidObject) without routing it"
        ) from None
    problems = semantic_problems(rr)
    if problems and section(obj, "status").get("phase") in (None, "", RemediationPhase.PENDING):
        notes.append(f"the orchestrator fails this request before routing it (InvalidSpec): {'; '.join(problems)}")
    phase = section(obj, "status").get("phase")
    marked = bool(annotations_of(obj).get(UNBLOCK_ANNOTATION)) and phase == RemediationPhase.BLOCKED
    bypass = marked or args.if_unblocked
    now = datetime.now(UTC)
    explanation = explain(rr, snap.view, now, origin.settings.routing(), bypass_time_blocks=bypass)
    settings = origin.settings
    if settings.watched_namespaces and namespace not in settings.watched_namespaces:
        notes.append(
            f"the orchestrator watches only {', '.join(settings.watched_namespaces)} (WATCHED_NAMESPACES): nothing "
            f"routes requests in {namespace}"
        )
    dry_run = is_dry_run(rr, everywhere=settings.dry_run, namespaces=frozenset(settings.dry_run_namespaces))
    if dry_run and explanation.decision.verdict is Verdict.EXECUTE:
        notes.append(
            "a dry run (SPEC 4.8): where this says Execute, the orchestrator creates nothing and ends the "
            "request Completed with outcome DryRun"
        )
    return explain_report(
        obj,
        explanation,
        snap.requests,
        now,
        origin,
        bypass_time_blocks=bypass,
        dry_run=dry_run,
        unblock_asked=args.if_unblocked and not marked,
        notes=notes,
    )


async def _executions(cluster: Cluster, namespace: str, origin: SettingsOrigin) -> tuple[list[KubeDict], list[str]]:
    """The WorkflowExecutions the orchestrator sees: routing looks at a target's executions in every namespace it
    watches (every namespace unless WATCHED_NAMESPACES says otherwise). A user allowed to list them in one
    namespace only gets that namespace, and is told what it may miss."""
    watched = set(origin.settings.watched_namespaces)
    try:
        items, notes = await cluster.list(WFE, None), []
    except PluginError as error:
        if error.status != 403:
            raise
        notes = [
            f"you may not list workflowexecutions across namespaces: only those in {namespace!r} were read, so an "
            "execution on the same target in another namespace is not seen"
        ]
        items = await cluster.list(WFE, namespace)
    if watched:
        items = [obj for obj in items if obj["metadata"].get("namespace") in watched]
    return items, notes


async def _settings(cluster: Cluster, source: str) -> SettingsOrigin:
    namespace, _, name = source.partition("/")
    try:
        deployment = await cluster.client.get(DEPLOYMENTS, namespace, name)
    except ApiError as error:
        if error.status == 403:
            return defaults(source, f"you may not read Deployment {source}")
        if error.status == 404:
            return defaults(source, f"no Deployment {source}")
        raise cluster.problem(error, "get", DEPLOYMENTS, namespace, name) from None
    return from_deployment(source, deployment)


async def _status(cluster: Cluster, args: argparse.Namespace) -> dict[str, Any]:
    namespace = None if args.all_namespaces else args.namespace or cluster.namespace
    origin = await _settings(cluster, args.settings_from)
    executions, notes = await _executions(cluster, namespace or "", origin)
    requests = await cluster.list(RR, namespace)
    return status_report(snapshot(requests, executions), namespace, datetime.now(UTC), origin, notes=notes)


async def _annotate(
    cluster: Cluster,
    args: argparse.Namespace,
    resource: Any,
    name: str,
    key: str,
    check: Callable[[KubeDict], list[str]],
    action: str,
) -> dict[str, Any]:
    """Read the object, check it may be annotated (raising PluginError), set the annotation on exactly the version
    checked; re-read and check again if it changed meanwhile."""
    namespace = args.namespace or cluster.namespace
    who = await cluster.whoami()
    notes: list[str] = []
    previous: list[str | None] = [None]

    async def attempt() -> KubeDict:
        obj = await cluster.get(resource, namespace, name)
        notes[:] = check(obj)
        previous[0] = annotations_of(obj).get(key)
        value = annotation_value(who.name, who.source, args.reason, datetime.now(UTC))
        return await cluster.annotate(resource, obj, key, value)

    updated = await retry_on_conflict(attempt)
    return {
        "kind": "Annotated",
        "action": action,
        "resource": resource.kind,
        "namespace": namespace,
        "name": name,
        "annotation": key,
        "value": annotations_of(updated).get(key),
        "previous": previous[0],
        "by": who.name,
        "identitySource": who.source,
        "notes": notes,
    }


def _failed_execution(obj: KubeDict) -> list[str]:
    meta, status = obj["metadata"], section(obj, "status")
    key = f"{meta.get('namespace')}/{meta['name']}"
    phase = status.get("phase") or "Pending"
    if phase != "Failed":
        raise PluginError(f"WorkflowExecution {key} is not failed (phase {phase}): only a failed one is acknowledged")
    if section(status, "failureDetails").get("wasExecutionFailure") is not True:
        raise PluginError(
            f"WorkflowExecution {key} failed before its workflow ran (wasExecutionFailure is not true): it blocks "
            "no request, there is nothing to acknowledge"
        )
    return ["the orchestrator re-routes the requests waiting on it at once"]


def _blocked(obj: KubeDict) -> list[str]:
    meta, status = obj["metadata"], section(obj, "status")
    phase = status.get("phase") or "Pending"
    if phase != RemediationPhase.BLOCKED:
        raise PluginError(
            f"RemediationRequest {meta.get('namespace')}/{meta['name']} is not blocked (phase {phase}): "
            "only a Blocked request is unblocked"
        )
    reason = status.get("blockReason")
    if reason in TIME_BASED_REASONS:
        return [f"the orchestrator re-routes it at once, without the time-based checks ({reason} among them)"]
    return [
        f"the orchestrator re-routes it at once, but {reason} is not time-based: it stays blocked while its cause "
        "lasts (an unblock never turns a duplicate into an independent execution, nor runs two workflows on a target)"
    ]


def _chain(obj: KubeDict) -> list[str]:
    meta, status = obj["metadata"], section(obj, "status")
    count = status.get("ineffectiveCount")
    if status.get("skipReason") != INEFFECTIVE_CHAIN and not (isinstance(count, int) and count > 0):
        raise PluginError(
            f"RemediationRequest {meta.get('namespace')}/{meta['name']} is not part of an ineffective chain (not "
            f"skipped as {INEFFECTIVE_CHAIN}, ineffectiveCount {count or 0})"
        )
    return ["completions of this signal on this target before the request's creation no longer count (SPEC 4.9)"]


def _ack_target(args: argparse.Namespace) -> tuple[Any, str, str, Callable[[KubeDict], list[str]], str]:
    """What `ack` annotates: (resource, name, annotation, check, action)."""
    what, rest = args.what.lower(), args.rest
    if what in WFE_WORDS and len(rest) == 1:
        return WFE, rest[0], ACKNOWLEDGED_ANNOTATION, _failed_execution, "acknowledged"
    if what == "chain" and len(rest) == 2:
        name = _name(rest[0], rest[1], RR_WORDS, "rr")
        return RR, name, INEFFECTIVE_CHAIN_ACKNOWLEDGED_ANNOTATION, _chain, "chain acknowledged"
    raise UsageError("usage: ack wfe NAME --reason TEXT, or ack chain rr NAME --reason TEXT")


async def _ack(cluster: Cluster, args: argparse.Namespace) -> dict[str, Any]:
    resource, name, key, check, action = _ack_target(args)
    return await _annotate(cluster, args, resource, name, key, check, action)


async def _unblock(cluster: Cluster, args: argparse.Namespace) -> dict[str, Any]:
    name = _name(args.kind, args.name, RR_WORDS, "rr")
    return await _annotate(cluster, args, RR, name, UNBLOCK_ANNOTATION, _blocked, "unblocked")


def _check_usage(args: argparse.Namespace) -> None:
    """Refuse a bad command line before asking any cluster."""
    if args.all_namespaces and args.verb != "status":
        raise UsageError("-A/--all-namespaces applies to status only")
    if args.verb in ("explain", "unblock"):
        _name(args.kind, args.name, RR_WORDS, "rr")
    if args.verb == "ack":
        _ack_target(args)
    if args.verb in ("explain", "status"):
        namespace, _, name = args.settings_from.partition("/")
        if not namespace or not name or "/" in name:
            raise UsageError(f"--settings-from takes NAMESPACE/DEPLOYMENT, got {args.settings_from!r}")


VERBS: dict[str, Callable[[Cluster, argparse.Namespace], Awaitable[dict[str, Any]]]] = {
    "explain": _explain,
    "status": _status,
    "ack": _ack,
    "unblock": _unblock,
}
RENDER = {"explain": render.explain, "status": render.status, "ack": render.annotated, "unblock": render.annotated}


async def _run(args: argparse.Namespace) -> dict[str, Any]:
    _check_usage(args)
    cluster = await Cluster.connect(args.kubeconfig, args.context)
    try:
        return await VERBS[args.verb](cluster, args)
    finally:
        await cluster.close()


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = parser().parse_args(argv)
        report = asyncio.run(_run(args))
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except PluginError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except ApiError as error:  # a write that kept conflicting
        print(f"error: {error.status} {error.reason}: {' '.join(error.message.split())}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception as error:  # a bug: still one line, the traceback on request
        if os.environ.get(DEBUG_ENV):
            traceback.print_exc()
        print(
            f"error: internal error: {type(error).__name__}: {error} (set {DEBUG_ENV}=1 for details)", file=sys.stderr
        )
        return 1
    if args.output == "json":
        sys.stdout.write(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        style = render.Style.for_stream(sys.stdout)
        sys.stdout.write("\n".join(RENDER[args.verb](report, style)) + "\n")
    return 0
