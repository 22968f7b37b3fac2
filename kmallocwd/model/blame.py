"""Which line of a protocol file a model counterexample blames.

A counterexample's trace marks each operation a model performed ahead of an
earlier one (the compiler's or the hardware's reordering).  For each such
pair, in trace order, the protocol is checked again with a fence inserted
between the two operations (``smp_rmb()`` between loads, ``smp_wmb()``
between stores, ``smp_mb()`` otherwise): the first insertion after which
every model that found the tear finds none is the culprit -- the line where
the barrier is missing.  When no single fence fixes it (or the tear needs
no reordering: a logic error, seen under sc too), the blame falls on the
``[expect]`` line of the model, with the trace as the evidence."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from kmallocwd.model.events import READER, WRITER, Event, value_name
from kmallocwd.model.explore import Exploration, explore
from kmallocwd.model.report import Row, render_rows, trace_rows
from kmallocwd.protocols.spec import Spec, _key_line, parse_op


@dataclass
class Blame:
    """One finding: the line it points at, one line saying what is wrong,
    and the evidence (the first model's trace) as lines of text."""

    line: int
    title: str
    message: str
    models: list[str] = field(default_factory=list)
    fix: str = ""  # the fence that, inserted at ``line``, makes every model say never
    trace: list[str] = field(default_factory=list)


def _fence_for(a: Event, b: Event) -> str:
    reads = a.kind == "load" and b.kind == "load"
    writes = a.kind == "store" and b.kind == "store"
    return "smp_rmb()" if reads else "smp_wmb()" if writes else "smp_mb()"


def _where(spec: Spec, e: Event) -> tuple[str, int] | None:
    """The op list and index of an event's operation as written."""
    lists = ("section",) if e.tid == WRITER else ("prologue", "snapshot")
    for where in lists:
        for i, op in enumerate(getattr(spec, where)):
            if op is e.op or (e.op is not None and op == e.op):
                return where, i
    return None


def _with_fence(spec: Spec, e: Event, fence: str) -> Spec | None:
    at = _where(spec, e)
    if at is None:
        return None
    where, i = at
    side = "writer" if e.tid == WRITER else "reader"
    ops = list(getattr(spec, where))
    ops.insert(i, parse_op(fence, side, 0))
    return replace(spec, name=f"{spec.name}-with-fence", **{where: tuple(ops)})


def _trace(res: Exploration, rows: list[Row]) -> list[str]:
    out = [f"{res.model} counterexample ({len(rows)} steps):"] + render_rows(rows)
    if res.witness is not None:
        term = res.witness[2]
        s = term.snapshot
        fields = " ".join(f"{k}={value_name(k, v)}" for k, v in s.items())
        out.append(f"=> accepted snapshot: {fields}: {term.outcome}")
    return out


def _fixes(spec: Spec, models: list[str], sections: int, retries: int, e: Event,
           fence: str) -> bool:
    variant = _with_fence(spec, e, fence)
    if variant is None:
        return False
    return all(not explore(variant, m, sections, retries).sometimes for m in models)


def _expect_note(r: Exploration) -> str:
    return " ([expect] says never)" if r.spec.expect.get(r.model) == "never" else ""


def blame(results: list[Exploration], every_tear: bool = False) -> list[Blame]:
    """The findings for the models whose verdict differs from [expect] (with
    ``every_tear``: for every model that finds a tear): one per blamed line
    (models that blame the same line share it)."""
    bad = [r for r in results if (("sometimes" if r.sometimes else "never")
                                  != r.spec.expect.get(r.model)
                                  or (every_tear and r.sometimes))]
    found: dict[tuple[int, str], Blame] = {}
    for r in bad:
        spec = r.spec
        expect_line = _key_line(spec.source.splitlines(), "expect", r.model) if spec.source \
            else 0
        if not r.sometimes:  # [expect] says sometimes, no tear found: nothing to point at
            b = found.setdefault((expect_line, "inconclusive"), Blame(
                expect_line, "no tear found",
                f"[expect] says {r.model} = \"sometimes\", but the model checker finds no torn "
                f"snapshot in {r.executions} executions of {r.sections} write section(s) "
                "(more --sections?)"))
            b.models.append(r.model)
            continue
        rows = trace_rows(r)
        trace = _trace(r, rows)
        blamed = None
        tried: set[tuple[int, str]] = set()
        for row in rows:
            a, e = row.ahead, row.event
            if a is None or e.op is None:
                continue
            fence = _fence_for(a, e)
            if (e.line, fence) in tried:
                continue
            tried.add((e.line, fence))
            if _fixes(spec, [r.model], r.sections, r.retries, e, fence):
                blamed = (e.line, fence, a)
                break
        if blamed is not None:
            line, fence, a = blamed
            key = (line, fence)
            if key not in found:
                e_text = next(row.text for row in rows if row.event.line == line)
                found[key] = Blame(
                    line, f"missing {fence}",
                    f"missing {fence} before line {line}: the model performs '{e_text}' "
                    f"(line {line}) before '{a.text}' (line {a.line}), so the model checker "
                    f"finds a torn snapshot{_expect_note(r)}; with {fence} here it finds none",
                    fix=fence, trace=trace)
            found[key].models.append(r.model)
            continue
        key = (0, "tear")  # one finding for every model no single fence fixes
        if key not in found:
            found[key] = Blame(
                expect_line, "torn snapshot",
                f"the model checker finds a torn snapshot ({r.witness[2].outcome})"
                f"{_expect_note(r)}, and no single fence removes it",
                trace=trace)
        found[key].models.append(r.model)
    out = list(found.values())
    for b in out:
        if b.fix or b.title == "torn snapshot":
            b.message = b.message.replace("the model checker finds",
                                          f"the model checker ({', '.join(b.models)}) finds", 1)
        else:
            b.message = f"[{', '.join(b.models)}] " + b.message
    # a fence's finding first: it names the culprit line
    out.sort(key=lambda b: (not b.fix, b.title != "torn snapshot"))
    return out


__all__ = ["Blame", "blame", "READER", "WRITER"]
