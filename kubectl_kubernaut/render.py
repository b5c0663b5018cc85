"""The human output of each verb, drawn from the same documents `-o json` prints. Colour only on a terminal."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TextIO

from kubectl_kubernaut.report import human_duration


@dataclass(frozen=True, slots=True)
class Style:
    """ANSI colours, or nothing at all when the output is not a terminal (or NO_COLOR is set, or TERM=dumb)."""

    enabled: bool

    @classmethod
    def for_stream(cls, stream: TextIO) -> Style:
        tty = hasattr(stream, "isatty") and stream.isatty()
        return cls(tty and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb")

    def _wrap(self, code: str, text: str) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if self.enabled and text else text

    def bold(self, text: str) -> str:
        return self._wrap("1", text)

    def red(self, text: str) -> str:
        return self._wrap("31", text)

    def green(self, text: str) -> str:
        return self._wrap("32", text)

    def yellow(self, text: str) -> str:
        return self._wrap("33", text)

    def dim(self, text: str) -> str:
        return self._wrap("2", text)


def table(rows: Sequence[Sequence[str]], style: Style) -> list[str]:
    """kubectl's table: upper-case header, columns padded by three spaces (padding counted without colour)."""
    if not rows:
        return []
    plain = [[_strip(cell) for cell in row] for row in rows]
    widths = [max(len(row[i]) for row in plain) for i in range(len(rows[0]))]
    lines = []
    for number, row in enumerate(rows):
        cells = [cell + " " * (width - len(_strip(cell))) for cell, width in zip(row, widths, strict=True)]
        line = "   ".join(cells).rstrip()
        lines.append(style.bold(line) if number == 0 else line)
    return lines


def _strip(text: str) -> str:
    out, skipping = [], False
    for char in text:
        if char == "\x1b":
            skipping = True
        elif skipping and char == "m":
            skipping = False
        elif not skipping:
            out.append(char)
    return "".join(out)


def _left(seconds: int | None) -> str:
    return "" if seconds is None else f"{human_duration(seconds)} left" if seconds else "expired"


def _facts(facts: dict[str, Any]) -> str:
    """key=value of every fact known; a fingerprint shortened as git shortens hashes (-o json has it whole)."""
    shown = []
    for key, value in facts.items():
        if value is None:
            continue
        short = value[:12] if key == "fingerprint" and isinstance(value, str) else value
        shown.append(f"{key}={short}")
    return ", ".join(shown) or "-"


def _decision(decision: dict[str, Any], style: Style) -> str:
    verdict = decision["verdict"]
    colour = {"Execute": style.green, "Block": style.yellow, "Skip": style.red}.get(verdict, style.bold)
    text = colour(verdict + (f" {decision['reason']}" if decision.get("reason") else ""))
    if decision.get("until"):
        text += f" until {decision['until']} ({_left(decision.get('remainingSeconds'))})"
    return text


# -- explain ----------------------------------------------------------------------------------------------------
def explain(report: dict[str, Any], style: Style) -> list[str]:
    request, settings = report["request"], report["settings"]
    state = request.get("phase") or "not routed yet"
    if request.get("reason"):
        state += f" ({request['reason']}"
        state += f" until {request['blockedUntil']})" if request.get("blockedUntil") else ")"
    lines = [
        f"{style.bold('RemediationRequest ' + request['namespace'] + '/' + request['name'])}: {state}",
        f"  target {request.get('target')}, workflow {request.get('workflowId')}, fingerprint "
        f"{str(request.get('fingerprint'))[:12]}, created {request.get('created')}",
    ]
    if settings["source"] == "deployment":
        lines.append(f"  settings: from Deployment {settings['deployment']}")
    else:
        lines.append(f"  settings: {style.yellow('the defaults')} ({settings.get('note')})")
    if settings["source"] == "deployment" and settings.get("note"):
        lines.append(f"    {settings['note']}")
    values = ", ".join(f"{k}={v}" for k, v in settings["values"].items())
    lines.append(style.dim(f"    {values}"))
    if report["bypassTimeBlocks"]:
        lines.append("  time-based checks bypassed (kubernaut.ai/unblock)")
    if report.get("dryRun"):
        lines.append("  a dry run: routed as in production, but nothing is executed")
    lines.append(f"  evaluated at {report['evaluatedAt']}")
    lines.append("")
    rows = [["#", "CHECK", "RESULT", "FACTS"]]
    for number, check in enumerate(report["checks"], 1):
        if check["bypassed"]:
            result = style.dim("bypassed" + (" (match)" if check["matched"] else ""))
        elif check["decides"]:
            result = style.red("MATCH") if check["decision"]["verdict"] == "Skip" else style.yellow("MATCH")
        elif check["matched"]:
            result = "match (an earlier check decided)"
        else:
            result = "no match"
        rows.append([str(number), check["check"], result, _facts(check["facts"])])
    lines += table(rows, style)
    lines.append("")
    decision = report["decision"]
    lines.append(f"Decision: {_decision(decision, style)}")
    if decision.get("message"):
        lines.append(f"  {decision['message']}")
    if report["agreesWithStatus"] is True:
        lines.append(style.green("The request's status agrees."))
    elif report["agreesWithStatus"] is False:
        lines.append(style.yellow("Differs from the request's status: ") + str(report["difference"]))
    elif report.get("difference"):
        lines.append(f"Note: {report['difference']}")
    lines += [f"Note: {note}" for note in report.get("notes") or []]
    return lines


# -- status -----------------------------------------------------------------------------------------------------
def status(report: dict[str, Any], style: Style) -> list[str]:
    scope = f"namespace {report['namespace']}" if report["namespace"] else "all namespaces"
    lines = [f"{style.bold('RemediationRequests')} in {scope} at {report['evaluatedAt']}"]
    if not report["phases"]:
        lines.append("  none")
    else:
        lines += table(
            [["PHASE", "REASON", "COUNT"]]
            + [[p["phase"], p.get("reason") or "", str(p["count"])] for p in report["phases"]],
            style,
        )
    lines.append("")
    lines.append(style.bold(f"Blocked ({len(report['blocked'])})"))
    if report["blocked"]:
        rows = [["NAMESPACE", "NAME", "REASON", "UNTIL", "LEFT", "WAITING-ON"]]
        for b in report["blocked"]:
            on = b.get("duplicateOf") or b.get("blockingWorkflowExecution") or ""
            rows.append(
                [
                    b["namespace"],
                    b["name"],
                    b["reason"] or "",
                    b.get("blockedUntil") or "",
                    _left(b.get("remainingSeconds")),
                    on,
                ]
            )
        lines += table(rows, style)
    lines.append("")
    review = report["manualReview"]
    lines.append(style.bold(f"Waiting for a human ({len(review)})"))
    for item in review:
        if item["kind"] == "PreviousExecutionFailed":
            what = (
                f"{style.red('failed execution')} {item['namespace']}/{item['workflowExecution']} on {item['target']}"
                f" ({item.get('failureReason') or 'failed'} at {item.get('failedAt')})"
            )
            if item["requests"]:
                what += f"; skipped: {', '.join(item['requests'])}"
        else:
            what = (
                f"{style.red('ineffective chain')} of {item['namespace']}/{item['request']} on {item['target']}"
                f" (ineffectiveCount {item.get('ineffectiveCount')})"
            )
        lines.append(f"  {what}")
        lines.append(f"    {item['command']}")
    lines += [f"Note: {note}" for note in report.get("notes") or []]
    return lines


# -- ack and unblock ------------------------------------------------------------------------------------------
def annotated(report: dict[str, Any], style: Style) -> list[str]:
    lines = [
        f"{report['resource']} {report['namespace']}/{report['name']} {style.green(report['action'])}: "
        f"{report['annotation']}={report['value']}"
    ]
    if report.get("previous"):
        lines.append(f"  replaced {report['previous']}")
    lines += [f"  {note}" for note in report.get("notes") or []]
    return lines
