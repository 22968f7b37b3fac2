"""Verdicts and counterexamples as text (herd7-style Observation lines,
numbered step traces) and as JSON."""

from __future__ import annotations

import textwrap

from dataclasses import dataclass

from kmallocwd.model.events import (MODEL_TITLES, READER, SC, THREAD_NAMES, WEAK, WRITER, X86,
                                    Event, value_name)
from kmallocwd.model.explore import Exploration

SCHEMA = "kmallocwd.check/1"


@dataclass
class Row:
    """One step of a counterexample, ready to print or replay."""

    n: int
    thread: str
    tid: int
    kind: str  # store, load, fence, lock, unlock, cond, drain, buffer
    line: int
    text: str
    loc: str | None
    value: int | None  # model value (section index for start/gfp/order)
    value_text: str
    effect: str
    event: Event
    section: int = 0
    copy: bool = False  # a load of the snapshot's copy
    ahead: Event | None = None  # the earlier operation this one was performed before

    def to_dict(self) -> dict:
        return {"step": self.n, "thread": self.thread, "kind": self.kind, "line": self.line,
                "operation": self.text, "location": self.loc, "value": self.value,
                "value_text": self.value_text, "effect": self.effect, "section": self.section}


def trace_rows(res: Exploration) -> list[Row]:
    """The shortest counterexample as numbered rows (no calls: they are
    the compiler's boundaries, not operations)."""
    if res.witness is None:
        return []
    vi, steps, _term = res.witness
    prog = res.programs[vi]
    evs = (prog.writer, prog.reader)
    done = [0, 0]
    drained = 0
    rows: list[Row] = []
    # which writer event wrote each location's value, for "read from"
    step_of_store: dict[int, int] = {}
    read: dict[str, int] = {}  # the reader's values so far (a copy[VAR & 1] load's copy)
    for tid, i, kind, value, src in steps:
        e = evs[tid][i]
        if kind == "retry":
            done[READER] &= ~sum(1 << j for j, x in enumerate(prog.reader) if x.attempt == "snapshot")
            continue
        ahead = -1
        if kind in ("exec", "buffer"):
            for j in range(i):
                if not done[tid] >> j & 1 and evs[tid][j].kind not in ("cond", "call"):
                    ahead = j
                    break
            done[tid] |= 1 << i
        elif kind == "cond":
            done[tid] |= 1 << i
        if e.kind == "call":
            continue
        if kind == "drain":
            drained |= 1 << i
        effect = _effect(res.model, prog, e, kind, evs[tid][ahead] if ahead >= 0 else None)
        n = len(rows) + 1
        loc = e.loc
        if e.kind == "store":
            vt = f"{e.loc} := {e.value_text()}"
            if kind != "buffer":
                step_of_store[i] = n
        elif e.kind == "load":
            origin = "the initial value" if src < 0 else (
                f"step {step_of_store[src]}" if src in step_of_store else "the writer")
            loc = e.loc_for(read)
            read[e.var] = value
            vt = f"reads {loc} == {value_name(loc, value)} (from {origin})"
        elif e.kind == "cond":
            vt = f"{'taken: ' + e.op.action if value else 'not taken'}"
        else:
            vt = ""
        rows.append(Row(n, THREAD_NAMES[tid], tid, "drain" if kind == "drain" else
                        ("buffer" if kind == "buffer" else e.kind), e.line, e.text, loc,
                        value, vt, effect, e, e.section,
                        copy=e.kind == "load" and e.var.startswith("snap."),
                        ahead=evs[tid][ahead] if ahead >= 0 and e.kind != "cond" else None))
    return rows


def _effect(model: str, prog, e: Event, kind: str, ahead: Event | None) -> str:
    parts = []
    if kind == "buffer":
        parts.append("into the store buffer (not yet visible)")
    if kind == "drain":
        parts.append("store buffer -> memory: now visible to the reader")
    if e.merged:
        parts.append(f"compiler merged the sequence++ of lines {e.merged[0]} and {e.merged[1]} "
                     "into one += 2 (no compiler barrier between them)")
    if ahead is not None and e.kind != "cond":
        what = f"'{ahead.text}' ({ahead.where()})"
        if model == X86:
            parts.append(f"compiler moved it ahead of {what}: plain access, no compiler barrier "
                         "between")
        elif model == WEAK:
            why = "no smp_rmb()/acquire orders these loads" if e.kind == "load" else \
                "no smp_wmb()/release orders these stores" if e.kind == "store" else \
                "nothing orders them"
            parts.append(f"performed before {what}: {why}")
    return "; ".join(parts)


def verdict(res: Exploration) -> str:
    return "sometimes" if res.sometimes else "never"


def observation(res: Exploration) -> str:
    v = "Sometimes" if res.sometimes else "Never"
    return (f"Observation {res.spec.name}-{res.model}-K{res.sections} {v} "
            f"{res.positive} {res.executions - res.positive}")


def condition_text(res: Exploration) -> str:
    return "accepted and " + " or ".join(res.condition) if res.condition else "(no torn kind " \
        "is forbidden)"


_WIDTH = 100  # the table's widest line, as the other commands' tables


def render_text(results: list[Exploration], traces: bool = True, binary=None) -> str:
    """The check table (and the counterexamples); ``binary``: the verdict
    on the compiled binary (binverdict.BinaryVerdict), shown as its own
    column on the x86 row."""
    if not results:
        return ""
    spec = results[0].spec
    where = spec.path if spec.path.isprintable() else repr(spec.path)  # one line, no escapes
    out = [f"kmallocwd check: {spec.name} ({where or 'protocol file'}),",
           f"  {results[0].sections} write section(s) against one reader attempt "
           f"(retries: {results[0].retries})",
           f"  condition: the snapshot is {condition_text(results[0])}",
           "",
           f"  {'model':<6} {'verdict':<10} {'expect':<10} {'torn/executions':>16} "
           f"{'states':>8} {'time':>8}" + ("  binary" if binary is not None else "")]
    for r in results:
        exp = spec.expect.get(r.model, "?")
        mark = "" if verdict(r) == exp else "   <-- differs from [expect]"
        if not r.accepts:
            mark = "   <-- the reader never accepts a snapshot"
        col = ""
        if binary is not None:
            col = f"  {binary.word if r.model == 'x86' else '-':<7}"
        row = (f"  {r.model:<6} {verdict(r):<10} {exp:<10} "
               f"{f'{r.positive}/{r.executions}':>16} {r.states:>8} "
               f"{r.seconds * 1000:>6.0f}ms{col}")
        if len(row) + len(mark) <= _WIDTH:
            out.append((row + mark).rstrip())
        else:  # the mark on a line of its own, under the row
            out += [row.rstrip(), "         " + mark.strip()]
    if binary is not None:
        out += textwrap.wrap(f"binary: {binary.line} (x86-TSO on the order of the slot "
                             "accesses in the object code stress runs, no compiler freedom "
                             "left)", _WIDTH, initial_indent="  ", subsequent_indent="    ")
    out.append("")
    for r in results:
        out.append(f"Model {r.model}: {MODEL_TITLES[r.model]}")
        out.append(f"  {observation(r)}")
        if r.outcomes:
            counts = ", ".join(f"{k} {v}" for k, v in sorted(r.outcomes.items()))
            out += textwrap.wrap(f"  outcomes: {counts}", 100, subsequent_indent="    ",
                                 break_on_hyphens=False)
        if traces and r.witness is not None:
            rows = trace_rows(r)
            vi = r.witness[0]
            term = r.witness[2]
            prog = r.programs[vi]
            out.append(f"  shortest counterexample ({len(rows)} steps; program: {prog.label()}), "
                       f"ends {term.outcome}:")
            out += ["    " + line for line in render_rows(rows)]
            s = term.snapshot
            fields = " ".join(f"{k}={value_name(k, v)}" for k, v in s.items())
            out.append(f"    => accepted snapshot: {fields}: {term.outcome}")
        out.append("")
    return "\n".join(out)


def render_rows(rows: list[Row]) -> list[str]:
    """The trace as a table at most 96 columns wide (100 as check indents it):
    a long operation or value folds under its column, and the effect goes on
    the lines under the step."""

    opw, width = 36, 96
    pad = " " * 18
    valw = width - len(pad) - opw - 1
    out = [f"{'#':>3}  {'thread':<6} {'line':>4}  {'operation':<{opw}} value"]
    for r in rows:
        line = str(r.line) if r.line else "-"
        sec = f"[s{r.section}] " if r.tid == WRITER and r.section else ""
        ops = textwrap.wrap(sec + r.text, opw, break_on_hyphens=False) or [""]
        vals = textwrap.wrap(r.value_text, valw, break_on_hyphens=False) or [""]
        for i in range(max(len(ops), len(vals))):
            op = ops[i] if i < len(ops) else ""
            val = vals[i] if i < len(vals) else ""
            head = f"{r.n:>3}  {r.thread:<6} {line:>4}  " if i == 0 else pad
            out.append(f"{head}{op:<{opw}} {val}".rstrip())
        if r.effect:
            out += textwrap.wrap(r.effect, width, initial_indent=pad + "-> ",
                                 subsequent_indent=pad + "   ", break_on_hyphens=False)
    return out


def to_json(results: list[Exploration]) -> dict:
    spec = results[0].spec
    doc = {"schema": SCHEMA, "protocol": spec.name, "path": spec.path,
           "sections": results[0].sections, "retries": results[0].retries,
           "condition": list(results[0].condition), "models": {}}
    for r in results:
        d = {"verdict": verdict(r), "expect": spec.expect.get(r.model),
             "matches_expect": verdict(r) == spec.expect.get(r.model),
             "accepts": r.accepts,
             "executions": r.executions, "positive": r.positive, "states": r.states,
             "seconds": round(r.seconds, 4), "observation": observation(r),
             "outcomes": dict(sorted(r.outcomes.items())), "counterexample": None,
             "programs": [{"program": p.label(), "positive": n}
                          for p, n in zip(r.programs, r.positive_by_variant)]}
        if r.witness is not None:
            vi, _steps, term = r.witness
            d["counterexample"] = {"program": r.programs[vi].label(), "outcome": term.outcome,
                                   "snapshot": term.snapshot,
                                   "steps": [row.to_dict() for row in trace_rows(r)]}
        doc["models"][r.model] = d
    return doc


__all__ = ["trace_rows", "render_text", "to_json", "observation", "verdict", "SC", "READER"]
