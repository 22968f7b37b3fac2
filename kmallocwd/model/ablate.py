"""Ablation, model half: for each ordering annotation of a protocol (each
fence, lock pair, READ_ONCE/WRITE_ONCE, acquire/release: Spec.ordering_ops()),
the variant without it (Spec.without()) and its verdict under each model;
with ``stress_fn``, a stress run of each variant too.

``stress_fn(variant_spec, duration) -> dict`` is the stress half (the lead
wires the real run in): it returns counts by outcome (``outcomes``: name ->
count), ``first_torn_after_s`` and ``overlaps``; this module only reports
what it returns and never makes stress numbers up."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Iterator

from kmallocwd.model.events import MODELS
from kmallocwd.model.explore import explore
from kmallocwd.protocols.spec import TORN_KINDS, Kind, Spec

StressFn = Callable[[Spec, float], dict]


@dataclass
class AblationRow:
    line: int
    where: str  # section, prologue, snapshot ('' for the protocol as written)
    index: int
    text: str
    change: str  # 'as written', 'removed', 'removed (lock pair)', 'weakened to plain'
    verdicts: dict[str, str]
    executions: dict[str, int]
    necessary_on: list[str] = field(default_factory=list)
    stress: dict | None = None
    seconds: float = 0.0

    @property
    def broken(self) -> bool:
        return any(v == "sometimes" for v in self.verdicts.values())

    @property
    def interrupted(self) -> bool:
        """Whether this row's stress run was cut short by a signal."""
        return bool(self.stress and self.stress.get("interrupted"))

    @property
    def stress_torn(self) -> int | None:
        if self.stress is None:
            return None
        outs = self.stress.get("outcomes", {})
        return sum(int(outs.get(k, 0)) for k in TORN_KINDS) + int(outs.get("torn", 0))

    def to_dict(self) -> dict:
        return {"line": self.line, "where": self.where, "index": self.index,
                "operation": self.text, "change": self.change, "verdicts": self.verdicts,
                "executions": self.executions, "necessary_on": self.necessary_on,
                "stress": self.stress, "seconds": round(self.seconds, 3)}


def _verdicts(spec: Spec, models, sections: int) -> tuple[dict, dict, float]:
    t0 = time.perf_counter()
    v, n = {}, {}
    for m in models:
        r = explore(spec, m, sections)
        v[m] = "sometimes" if r.sometimes else "never"
        n[m] = r.executions
    return v, n, time.perf_counter() - t0


def iter_rows(spec: Spec, models=MODELS, stress_fn: StressFn | None = None,
              duration: float = 0.0, sections: int = 2) -> Iterator[AblationRow]:
    """The protocol as written, then one row per ordering annotation, each
    yielded as soon as it is done (a caller that is interrupted keeps the
    rows done so far)."""
    models = list(models)
    base_v, base_n, secs = _verdicts(spec, models, sections)
    yield AblationRow(0, "", -1, "(as written)", "as written", base_v, base_n, [],
                      stress_fn(spec, duration) if stress_fn and duration > 0 else None, secs)
    for where, index, op in spec.ordering_ops():
        variant = spec.without(where, index)
        change = ("removed" if op.kind == Kind.FENCE else
                  "removed (lock pair)" if op.kind == Kind.LOCK else "weakened to plain")
        v, n, secs = _verdicts(variant, models, sections)
        need = [m for m in models if base_v[m] == "never" and v[m] == "sometimes"]
        st = stress_fn(variant, duration) if stress_fn and duration > 0 else None
        yield AblationRow(op.line, where, index, op.text.split("#")[0].strip(), change, v,
                          n, need, st, secs)


def ablate(spec: Spec, models=MODELS, stress_fn: StressFn | None = None,
           duration: float = 0.0, sections: int = 2) -> list[AblationRow]:
    """The protocol as written, then one row per ordering annotation."""
    return list(iter_rows(spec, models, stress_fn, duration, sections))


def detection_power(rows: list[AblationRow]) -> tuple[int, int] | None:
    """(variants the model calls broken that stress saw tear, variants the
    model calls broken), over the ablated variants with a stress run; a run
    cut short by a signal that saw no tear is no evidence, and not counted."""
    broken = [r for r in rows[1:] if r.broken and r.stress is not None
              and not (r.interrupted and not r.stress_torn)]
    if not broken:
        return None
    return sum(1 for r in broken if (r.stress_torn or 0) > 0), len(broken)


WIDTH = 100  # the table fits in 100 columns; a long annotation folds under its column
_ANN = 28


def _ann_lines(text: str) -> list[str]:
    import textwrap

    return textwrap.wrap(text, _ANN, break_on_hyphens=False) or [""]


def render(spec: Spec, rows: list[AblationRow], models=MODELS) -> str:
    """The model table (and, when variants were stressed, the stress table
    under it), each at most WIDTH columns wide."""
    models = list(models)
    stress = any(r.stress is not None for r in rows)
    mw = [max(len(m), 9) for m in models]
    head = f"  {'line':>4}  {'annotation':<{_ANN}} {'change':<19} " + " ".join(
        f"{m:<{w}}" for m, w in zip(models, mw)) + "  necessary on"
    out = [f"kmallocwd ablate: {spec.name} ({spec.path or 'protocol file'}),",
           f"  model verdicts (K={2}), one row per ordering annotation", head]
    for r in rows:
        line = str(r.line) if r.line else "-"
        need = ", ".join(r.necessary_on) or "-"
        ann = _ann_lines(r.text)
        out.append(f"  {line:>4}  {ann[0]:<{_ANN}} {r.change:<19} " + " ".join(
            f"{r.verdicts[m]:<{w}}" for m, w in zip(models, mw)) + f"  {need}")
        out += [f"  {'':>4}  {more}" for more in ann[1:]]
    if stress:
        out += ["", "  stress here (1 writer, 1 slot, --alloc-ns 100 --hold-ns 50, until the "
                "first tear):", f"  {'line':>4}  {'annotation':<{_ANN}} {'change':<19} "
                f"{'torn':>11}  {'first tear':>10}  {'overlaps':>8}"]
        for r in rows:
            line = str(r.line) if r.line else "-"
            ann = _ann_lines(r.text)
            s = f"  {line:>4}  {ann[0]:<{_ANN}} {r.change:<19} "
            if r.stress is None:
                s += "(not run)"
            else:
                ft = r.stress.get("first_torn_after_s")
                s += (f"{r.stress_torn:>11}  {('-' if ft is None else f'{ft:.4f}s'):>10}  "
                      f"{r.stress.get('overlaps', '-')!s:>8}")
                if r.interrupted:
                    s += "  [INTERRUPTED: partial]"
            out.append(s)
            out += [f"  {'':>4}  {more}" for more in ann[1:]]
        dp = detection_power(rows)
        if dp:
            out.append(f"  detection power here: stress saw {dp[0]} of the {dp[1]} variants the "
                       "model calls broken")
    else:
        out.append("  (stress: not run; with -d SECONDS each variant also runs here)")
    return "\n".join(out) + "\n"
