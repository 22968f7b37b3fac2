"""Loading one run of ``make bench``: read the file (size-limited, regular
files only), parse the JSON, check every kmallocwd benchmark (validate.py)
and collect the run's header (machine, commit, settings)."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

from kmallocwd.errors import UsageError

from .model import BenchReportError, Run
from .reader import read_text
from .validate import Drop, figures_of, show

# The largest bench JSON read: a full `make bench` run writes about 1 MiB.
SIZE_LIMIT = 32 * 2**20

MAX_WARNINGS = 10  # warning lines about dropped figures, at most

_HINT = "expected the JSON file of a `make bench` run (under bench/results/)"


def _expect(cond: bool, path: str, what: str) -> None:
    if not cond:
        raise BenchReportError(f"{path}: {what}; {_HINT}")


def parse(path: str, text: str) -> Any:
    """The JSON document; one line for bad JSON or nesting too deep to parse."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise BenchReportError(f"{path}: not JSON ({exc.msg} at line {exc.lineno}); "
                               f"{_HINT}") from None
    except RecursionError:
        raise BenchReportError(f"{path}: JSON nested too deeply to read; {_HINT}") from None
    except ValueError as exc:  # e.g. an integer of more than 4,300 digits
        why = str(exc).split(":")[0][:80]
        raise BenchReportError(f"{path}: a value cannot be read ({why}); {_HINT}") from None


def _text(x: Any, width: int = 120) -> str | None:
    """A header field: a string or number as text, cut; anything else None."""
    if isinstance(x, bool) or not isinstance(x, (str, int, float)):
        return None
    s = "".join(ch if ch.isprintable() else "?" for ch in str(x))
    return s[:width]


def _obj(d: Any, key: str) -> dict:
    v = d.get(key) if isinstance(d, dict) else None
    return v if isinstance(v, dict) else {}


def warnings_of(path: str, drops: list[Drop], foreign: int) -> list[str]:
    """One line per unknown (what, value): how many figures were dropped,
    and from which benchmarks."""
    by: dict[tuple[str, str], list[str]] = defaultdict(list)
    for d in drops:
        by[(d.what, show(d.value))].append(d.benchmark)
    out = []
    for (what, value), names in by.items():
        some = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
        out.append(f"{path}: dropped {len(names)} figure{'s' if len(names) > 1 else ''} "
                   f"of unknown {what} {value} (this report does not know it): {some}")
    if len(out) > MAX_WARNINGS:
        rest = sum(len(v) for v in list(by.values())[MAX_WARNINGS - 1:])
        out = out[:MAX_WARNINGS - 1] + [
            f"{path}: dropped {rest} more figures of {len(out) - MAX_WARNINGS + 1} more "
            f"unknown names"]
    if foreign:
        out.append(f"{path}: ignored {foreign} benchmark{'s' if foreign > 1 else ''} "
                   f"without kmallocwd extra_info (not from bench/)")
    return out


def load(path: str | Path) -> Run:
    """Read and check one run; BenchReportError (one line) if it is not one."""
    p = str(path)
    try:
        text = read_text(p, "", SIZE_LIMIT)
    except UsageError as exc:
        raise BenchReportError(f"{exc}; {_HINT}") from None
    doc = parse(p, text)
    _expect(isinstance(doc, dict) and isinstance(doc.get("benchmarks"), list), p,
            "not a pytest-benchmark file (no 'benchmarks' list)")
    figures, drops, foreign = [], [], 0
    for i, b in enumerate(doc["benchmarks"]):
        if not isinstance(b, dict):
            raise BenchReportError(f"{p}: 'benchmarks[{i}]' is {show(b)}; expected an object; "
                                   f"{_HINT}")
        info = b.get("extra_info")
        if not isinstance(info, dict) or "kmallocwd" not in info:
            foreign += 1  # some other benchmark in the same file: not ours
            continue
        name = _text(b.get("name"), 100) or f"benchmarks[{i}]"
        figs, dropped = figures_of(p, name, info)
        figures += figs
        drops += dropped
    if not figures:
        if drops:
            raise BenchReportError("; ".join(warnings_of(p, drops, 0)[:1])
                                   + "; no figure left to report")
        _expect(False, p, "no kmallocwd benchmark in it (none has extra_info from bench/)")
    mi, km = _obj(doc, "machine_info"), _obj(doc, "kmallocwd")
    cpu = _obj(mi, "cpu")
    machine = {
        "cpu": _text(km.get("cpu_model")) or _text(cpu.get("brand_raw"))
        or _text(mi.get("processor")) or "?",
        "cpus": _count(km.get("cpus")) or _count(cpu.get("count")),
        "arch": _text(mi.get("machine")),
        "system": " ".join(s for s in (_text(mi.get("system")), _text(mi.get("release"))) if s),
        "python": " ".join(s for s in (_text(mi.get("python_implementation")),
                                        _text(mi.get("python_version"))) if s),
        "node": _text(mi.get("node")),
    }
    ci = _obj(doc, "commit_info")
    commit = {"id": _text(ci.get("id")), "dirty": ci.get("dirty") is True,
              "branch": _text(ci.get("branch"))}
    settings = {k: _text(km[k]) for k in ("build", "scale", "rounds", "pinned") if k in km
                and _text(km[k]) is not None}
    return Run(path=p, datetime=_text(doc.get("datetime")) or "?", machine=machine,
               commit=commit, settings=settings, figures=figures,
               warnings=warnings_of(p, drops, foreign))


def _count(x: Any) -> int | None:
    return x if type(x) is int and 0 < x < 1 << 20 else None
