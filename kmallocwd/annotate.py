"""CI annotations: GitHub Actions workflow commands (``::error file=F,line=N,
title=T::message``) and GitLab's Code Quality report (JSON), from one list
of findings.

The rules, the same for every command (stress, check, ablate, campaign):
one finding per cause, at the line that causes it (the culprit first: the
line where a fence is missing, as the model checker blames it); the
evidence (a counterexample's trace, a torn snapshot) in the message's body;
at most ``MAX_ERRORS`` ``::error`` lines a command, the last a summary that
gives the verdict in one line, how many findings were not annotated and
where the full report is; paths relative to ``GITHUB_WORKSPACE`` (or the
current directory).  On when GITHUB_ACTIONS=true or with ``--annotate
github``."""

from __future__ import annotations

import hashlib
import json
import os
import sys
from dataclasses import dataclass, field
from typing import Iterable, TextIO

from kmallocwd.escape import github_data, github_property

STYLES = ("github", "none")
MAX_ERRORS = 10  # GitHub shows 10 error annotations a step
BODY_LINES = 60  # evidence lines kept in one annotation


@dataclass
class Finding:
    """One cause, at one line of one file."""

    path: str
    line: int
    title: str
    message: str  # one line: what is wrong
    body: list[str] = field(default_factory=list)  # the evidence
    level: str = "error"  # error, warning, notice


@dataclass
class Summary:
    """The command's verdict, for the last annotation."""

    command: str  # e.g. "kmallocwd check my.toml"
    verdict: str  # one line: PASS/FAIL/... and why
    status: int  # the exit status
    reports: list[str] = field(default_factory=list)  # where the full report is
    path: str = ""


def wanted(option: str | None) -> bool:
    if option is not None:
        return option == "github"
    return os.environ.get("GITHUB_ACTIONS") == "true"


def relpath(path: str) -> str:
    """``path`` relative to GITHUB_WORKSPACE (or the current directory) when
    it lies under it; else as given."""
    if not path:
        return path
    base = os.environ.get("GITHUB_WORKSPACE") or os.getcwd()
    try:
        rel = os.path.relpath(os.path.abspath(path), os.path.abspath(base))
    except ValueError:
        return path
    return path if rel.startswith(os.pardir) else rel


def _escape(text: str, prop: bool = False) -> str:
    """GitHub's workflow-command escaping (% CR LF, and : , in properties),
    and no other control character (kmallocwd/escape.py)."""
    return github_property(text) if prop else github_data(text)


def line(path: str, lineno: int, message: str, level: str = "error",
         title: str | None = None) -> str:
    props = []
    if path:
        props.append(f"file={_escape(path, True)}")
        if lineno:
            props.append(f"line={lineno}")
    if title:
        props.append(f"title={_escape(title, True)}")
    head = f"::{level} {','.join(props)}" if props else f"::{level}"
    return f"{head}::{_escape(message)}"


def _text(f: Finding) -> str:
    body = f.body[:BODY_LINES]
    if len(f.body) > BODY_LINES:
        body.append(f"... ({len(f.body) - BODY_LINES} more lines in the full report)")
    return "\n".join([f.message, *body])


def summary_level(status: int) -> str:
    return "notice" if status == 0 else "warning" if status == 3 else "error"


def render(findings: list[Finding], summary: Summary) -> list[str]:
    """The workflow commands: at most MAX_ERRORS - 1 findings at error level
    (warnings and notices are not counted against it), then the summary."""
    out, shown, errors = [], 0, 0
    for f in findings:
        if f.level == "error":
            if errors >= MAX_ERRORS - 1:
                continue
            errors += 1
        out.append(line(relpath(f.path), f.line, _text(f), f.level, f.title))
        shown += 1
    more = len(findings) - shown
    where = ", ".join(["this step's log"] + [relpath(r) for r in summary.reports if r])
    counts = f"{shown} finding(s) annotated" + (f", {more} more not annotated" if more else "")
    msg = f"{summary.command}: {summary.verdict} ({counts}; full report: {where})"
    out.append(line(relpath(summary.path), 0, msg, summary_level(summary.status),
                    "kmallocwd verdict"))
    return out


def emit(findings: list[Finding], summary: Summary, out: TextIO | None = None) -> int:
    """Print the annotations (render()) on ``out`` (stdout); how many."""
    out = out or sys.stdout
    lines = render(findings, summary)
    for ln in lines:
        out.write(ln + "\n")
    out.flush()
    return len(lines)


_SEVERITY = {"error": "critical", "warning": "minor", "notice": "info"}


def codequality(findings: Iterable[Finding]) -> str:
    """GitLab's Code Quality report (a JSON list; the merge request shows
    each entry at its line)."""
    out = []
    for f in findings:
        path = relpath(f.path)
        fp = hashlib.sha256(f"{path}:{f.line}:{f.title}:{f.message}".encode()).hexdigest()
        out.append({"description": f.message, "check_name": f"kmallocwd/{f.title}",
                    "fingerprint": fp, "severity": _SEVERITY.get(f.level, "major"),
                    "location": {"path": path, "lines": {"begin": max(f.line, 1)}}})
    return json.dumps(out, indent=2) + "\n"


def blame_findings(results, path: str, level: str = "error",
                   every_tear: bool = False) -> list[Finding]:
    """The model checker's findings for one protocol's results (those whose
    verdict differs from [expect], or with ``every_tear`` each that finds a
    tear), culprit first (kmallocwd.model.blame)."""
    from kmallocwd.model.blame import blame

    return [Finding(path, b.line, b.title, b.message, b.trace,
                    "warning" if b.title == "no tear found" else level)
            for b in blame(results, every_tear)]
