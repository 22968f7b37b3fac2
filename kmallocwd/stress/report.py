"""The stress report: the verdict and its power, a compact table for people,
a JSON document for machines (schema: docs/stress.md, "Stress report JSON").  A
report covers one run or, with --repeat, several runs of one configuration
added up."""

from __future__ import annotations

import json
import os
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kmallocwd import __version__, protocols
from kmallocwd.errors import (EXIT_FORBIDDEN, EXIT_INCONCLUSIVE, EXIT_OK, EXIT_UNOBSERVED,
                              ProtocolFailure)
from kmallocwd.escape import one_line
from kmallocwd.jsonreport import JsonReport
from kmallocwd.verdicts import ModelVerdict, Result
from kmallocwd.protocols.cgen import knob_point
from kmallocwd.stress.run import StressResult, combine

SCHEMA = "kmallocwd.stress/2"


def machine() -> dict:
    model = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"arch": platform.machine(), "cpu": model, "cpus": os.cpu_count(),
            "python": platform.python_version()}


def bound(overlaps: int) -> float | None:
    """With 0 tears in M overlaps taken as independent trials, the tear
    probability per overlap is below 1 - 0.05^(1/M) with 95% confidence
    (about 3/M, the rule of three, once M is more than a few)."""
    return 1.0 - 0.05 ** (1.0 / overlaps) if overlaps else None


@dataclass(frozen=True)
class Verdict:
    status: int
    word: Result
    line: str


def broken_models(spec: protocols.Spec) -> list[str]:
    """The models under which the protocol can tear, as the model checker
    finds them (kmallocwd check; computed once per protocol)."""
    from kmallocwd.model import verdicts

    return [m for m, v in verdicts(spec).items() if v == ModelVerdict.SOMETIMES]


def verdict(runs: list[StressResult], expect: str | None = None, *,
            total: StressResult | None = None, broken: list[str] | None = None,
            binary: Any = None) -> Verdict:
    """The exit status and the one-line verdict.

    With --expect torn every finished run must have seen a torn snapshot.
    Otherwise: 1 if an outcome the protocol forbids was seen; 3 if the run
    had no power (no accepted snapshot, or fewer overlapping reads than
    --min-overlaps); 4 if the model says the protocol can tear but this run
    did not see it; 0 otherwise, with what the PASS is worth.  ``total`` (the
    runs added up), ``broken`` (the models under which the protocol can
    tear) and ``binary`` (the verdict on the compiled binary) are worked out
    here unless the caller has them.
    """
    if total is None:
        total = combine(runs)
    spec = total.spec
    if expect == protocols.TORN:
        missed = sum(1 for r in runs if not r.torn)
        if not missed:
            return Verdict(EXIT_OK, Result.PASS, f"PASS: torn snapshots seen in {len(runs)} of "
                           f"{len(runs)} run(s), as --expect torn requires")
        return Verdict(EXIT_FORBIDDEN, Result.FAIL, f"FAIL: no torn snapshot in {missed} of "
                       f"{len(runs)} run(s), but --expect torn requires one in each")
    bad = total.forbidden_seen()
    if bad:
        seen = ", ".join(f"{total.counts[b]:,} {b}" for b in bad)
        return Verdict(EXIT_FORBIDDEN, Result.FAIL, f"FAIL: forbidden outcome seen for "
                       f"{spec.name}: {seen}")
    need = total.config.min_overlaps
    if total.accepted == 0:
        return Verdict(EXIT_INCONCLUSIVE, Result.INCONCLUSIVE,
                       "INCONCLUSIVE: the reader accepted no snapshot, so nothing was tested "
                       f"({power_hint(total)})")
    if total.overlaps < need:
        return Verdict(EXIT_INCONCLUSIVE, Result.INCONCLUSIVE,
                       f"INCONCLUSIVE: {total.overlaps:,} read(s) overlapped a write section, "
                       f"fewer than --min-overlaps {need:,} ({power_hint(total)})")
    power = power_line(total)
    torn_ok = total.torn  # seen, but not forbidden: the control
    if broken is None:
        broken = broken_models(spec)
    if broken and not torn_ok:
        return Verdict(EXIT_UNOBSERVED, Result.UNOBSERVED,
                       f"UNOBSERVED: {spec.name} is broken on {', '.join(broken)} (model), "
                       f"not observed here; {power}; {binary_line(total, binary)}; "
                       f"{power_hint(total)}")
    if torn_ok:
        return Verdict(EXIT_OK, Result.PASS, f"PASS: {torn_ok:,} torn snapshot(s), as the table "
                       f"expects for {spec.name} (interesting, not forbidden); {power}")
    return Verdict(EXIT_OK, Result.PASS, f"PASS: {power}")


# Accepted snapshots per read below which the reader is mostly finding
# empty slots (valid == 0): allocations are too short for the reader.
_FEW_ACCEPTED = 0.01


def power_hint(res: StressResult) -> str:
    """Which knob would raise the power of a run like ``res``: accepted
    snapshots first (--alloc-ns keeps slots valid), then overlaps (--hold-ns
    holds sections open; fewer slots per writer)."""
    cfg = res.config
    per_writer = cfg.slots // max(cfg.threads, 1)
    if cfg.alloc_ns == 0 and res.accepted < _FEW_ACCEPTED * max(res.attempts, 1):
        return (f"more accepted snapshots: --alloc-ns 1000 keeps each slot valid between "
                f"start and stop; with {per_writer} slot(s) per writer the reader mostly "
                "finds it empty")
    tips = []
    if knob_point(res.spec) < 0:
        tips.append(f"{res.spec.name}'s write section has no compiler barrier to hold it "
                    "open at (--hold-ns and --preempt do nothing in it)")
    elif cfg.hold_ns == 0:
        tips.append("--hold-ns 1000 holds each write section open")
    if per_writer > 1:
        tips.append(f"-s {cfg.threads} (one slot per writer) lets each read meet its slot's "
                    "section more often")
    tips.append("a longer -d or --repeat adds overlaps at the same rate")
    return "more overlaps: " + "; ".join(tips)


def binary_line(res: StressResult, binary: Any = None) -> str:
    """What the compiled binary allows, when it could be read (objorder)."""
    v = binary if binary is not None else _binary(res.spec, res.config.build)
    return "the compiled binary was not read" if v is None else v.line


def _binary(spec: protocols.Spec, build: str, broken: list[str] | None = None):
    """The verdict on the compiled binary (binverdict), None if it cannot be
    worked out (a format-2 protocol's object code is not read yet)."""
    if spec.format != 1:
        return None
    try:
        from kmallocwd.stress.binverdict import binary_verdict
        return binary_verdict(spec, build, broken=broken)
    except Exception:  # noqa: BLE001 - a verdict we cannot compute is not reported
        return None


def power_line(res: StressResult) -> str:
    """What a run is worth: tears over accepted snapshots and overlaps, and,
    when it saw none, the 95% upper bound on the tear probability per overlap."""
    b = None if res.torn else bound(res.overlaps)
    tail = f"; 95% upper bound on the tear probability per overlap {b:.2g} (~3/M)" if b else ""
    return (f"{res.torn:,} torn in {res.accepted:,} accepted, {res.overlaps:,} overlapping"
            f"{tail}")


def repeat_summary(runs: list[StressResult]) -> dict:
    """Time to the first tear over the runs; a run without a tear counts as
    censored at its duration (the tear, if any, comes later)."""
    values = sorted(
        ((r.first_torn_after_s, False) if r.first_torn_after_s is not None
         else (r.elapsed_s, True)) for r in runs)
    torn_runs = sum(1 for r in runs if r.first_torn_after_s is not None)
    med = values[(len(values) - 1) // 2] if values else None
    worst = max(values, key=lambda v: (v[1], v[0])) if values else None
    return {
        "runs": len(runs),
        "torn_runs": torn_runs,
        "censored_runs": len(runs) - torn_runs,
        "first_torn_after_s": None if not torn_runs else {
            "median": med[0], "median_censored": med[1],
            "max": worst[0], "max_censored": worst[1],
            "min": values[0][0], "min_censored": values[0][1]},
        "per_run": [{"elapsed_s": r.elapsed_s, "torn": r.torn,
                     "first_torn_after_s": r.first_torn_after_s} for r in runs],
    }


def _time(v: float, censored: bool) -> str:
    txt = f"{v * 1e3:.3g} ms" if v < 1 else f"{v:.3g} s"
    return f"> {txt}" if censored else txt


@dataclass
class StressReport(JsonReport):
    """``kmallocwd stress``'s report, built once by :func:`build`: the
    fields are the JSON document's keys (docs/stress.md, "Stress report JSON");
    the verdict, the model's verdicts and the exit status are decided when
    it is built.  ``runs`` (the raw results), ``total`` (them added up),
    ``spec`` and ``run_verdicts`` (one per run) are kept for the views and
    left out of the JSON."""

    schema: str
    kmallocwd: str
    protocol: str
    protocol_file: str
    build: str
    writer: str
    reader: str
    config: dict
    runs_done: int
    machine: dict
    elapsed_s: float
    startup_s: float
    interrupted: bool
    stop_latency_s: float
    outcomes: dict
    torn: int
    accepted: int
    attempts: int
    overlaps: int
    tear_bound_95: float | None
    retries: int
    writer_ops: int
    reader_snapshots: int
    scans: int
    first_torn: dict | None
    repeat: dict
    forbidden_seen: list
    model_broken_on: list
    binary: dict | None
    expect: str | None
    verdict: str
    result: str
    exit_status: int
    runs: list = field(default_factory=list, repr=False, compare=False)
    total: Any = field(default=None, repr=False, compare=False)
    spec: Any = field(default=None, repr=False, compare=False)
    run_verdicts: list = field(default_factory=list, repr=False, compare=False)
    _INTERNAL = ("runs", "total", "spec", "run_verdicts")

    def histogram(self) -> str:
        rows = [f"  {name:<17} {o['count']:>14,}  {o['expect']}"
                for name, o in self.outcomes.items()]
        rows.append(f"  reads overlapping a write section: {self.overlaps:,}")
        return "\n".join(rows)

    def explain(self) -> str:
        """The verdict with its evidence, as a failure message shows it: the
        histogram, each forbidden outcome's reason at its line of the
        protocol file, the first torn snapshot, and the model checker's
        counterexample when the model predicts the tear."""
        from kmallocwd.model.counterexample import counterexample_text

        spec = self.spec
        parts = [self.verdict, self.histogram()]
        for name in self.forbidden_seen:
            o = spec.outcome(name)
            at = f"{spec.path}:{o.line}: " if o.line else f"{spec.path}: "
            parts.append(f"{at}{name} is forbidden: {o.reason}")
        if self.first_torn:
            ft = self.first_torn
            s = ft["snapshot"]
            parts.append(f"first torn snapshot ({ft['kind']}) after {ft['after_s']:.6f} s, "
                         f"slot {ft['slot']}: " + ", ".join(f"{k}={v}" for k, v in s.items()))
        if self.model_broken_on:
            parts.append(counterexample_text(spec, self.model_broken_on))
        elif self.forbidden_seen:
            parts.append("model checker: no tear under sc, x86 or weak (kmallocwd check): "
                         "this one comes from outside the model (the compiled C, or the "
                         "hardware)")
        return "\n".join(p for p in parts if p)

    # The views (functions of the report, below), as methods.
    def text(self) -> str:
        return render(self)

    def to_junit(self) -> str:
        return to_junit(self)

    def findings(self) -> list:
        return annotations(self)

    def assert_no_forbidden(self) -> None:
        """Raise ProtocolFailure unless the verdict is a PASS: a forbidden
        outcome was seen (FAIL), the run had no power (INCONCLUSIVE), or the
        model says the protocol can tear and this run did not see it."""
        if self.exit_status != EXIT_OK:
            raise ProtocolFailure(self.explain())


def build(runs: list[StressResult], expect: str | None = None,
          repeat_asked: int | None = None) -> StressReport:
    """The report of these runs of one configuration: each of the runs'
    sum, the model's verdicts, the verdict and the exit status is worked
    out once, here."""
    res = combine(runs)
    cfg = res.config
    spec = res.spec
    broken = broken_models(spec)
    binary = _binary(spec, cfg.build, broken)
    v = verdict(runs, expect, total=res, broken=broken, binary=binary)
    per_run = [v] if len(runs) == 1 else [verdict([r], expect, total=r, broken=broken,
                                                  binary=binary) for r in runs]
    return StressReport(
        schema=SCHEMA,
        kmallocwd=__version__,
        protocol=spec.name,
        protocol_file=spec.path,
        build=cfg.build,
        writer=spec.writer_name,
        reader=spec.reader_name,
        config={
            "threads": cfg.threads, "slots": cfg.slots, "duration": cfg.duration,
            "iterations": cfg.iterations, "batch": cfg.batch, "pin": cfg.pin,
            "hold_ns": cfg.hold_ns, "alloc_ns": cfg.alloc_ns, "preempt": cfg.preempt,
            "seed": cfg.seed, "until_torn": cfg.until_torn, "min_overlaps": cfg.min_overlaps,
            "repeat": repeat_asked if repeat_asked is not None else len(runs),
        },
        runs_done=len(runs),
        machine=machine(),
        elapsed_s=res.elapsed_s,
        startup_s=res.startup_s,
        interrupted=res.interrupted,
        stop_latency_s=res.stop_latency_s,
        outcomes={
            name: {"count": res.counts.get(name, 0),
                   "expect": spec.outcome(name).expect}
            for name in protocols.OUTCOMES
        },
        torn=res.torn,
        accepted=res.accepted,
        attempts=res.attempts,
        overlaps=res.overlaps,
        tear_bound_95=None if res.torn else bound(res.overlaps),
        retries=res.retries,
        writer_ops=res.writer_ops,
        reader_snapshots=res.snapshots,
        scans=res.scans,
        first_torn=None if res.first_torn is None else {
            "after_s": res.first_torn_after_s,
            "slot": res.first_torn_slot,
            "kind": res.first_torn_kind,
            "snapshot": res.first_torn.to_dict(),
        },
        repeat=repeat_summary(runs),
        forbidden_seen=res.forbidden_seen(),
        model_broken_on=broken,
        binary=None if binary is None else binary.to_dict(),
        expect=expect,
        verdict=v.line,
        result=v.word,
        exit_status=(res.interrupt_status if res.interrupt_status is not None else v.status),
        runs=list(runs), total=res, spec=spec, run_verdicts=per_run)


# The views: text, JSON, JUnit and CI findings, each a function of the report.

def render(report: StressReport) -> str:
    """The table for people."""
    return _render(report.total, len(report.runs), report.verdict, report.repeat)


def _render(res: StressResult, nruns: int, verdict_line: str,
            repeat: dict | None = None) -> str:
    cfg = res.config
    spec = res.spec
    reps = f", {nruns} runs" if nruns > 1 else ""
    head = (f"kmallocwd stress: {one_line(spec.name)} ({one_line(spec.writer_name)} + "
            f"{one_line(spec.reader_name)}, {cfg.build} build), "
            f"{cfg.threads} writer{'s' if cfg.threads != 1 else ''}, {cfg.slots} "
            f"slot{'s' if cfg.slots != 1 else ''}, {res.elapsed_s:.2f} s{reps}")
    rows = _fold(head, 4)
    if res.interrupted:
        mark = "  [INTERRUPTED: partial]"
        if len(rows[-1]) + len(mark) <= WIDTH:
            rows[-1] += mark
        else:
            rows.append(mark)
    rows.append(f"  {'outcome':<17} {'count':>14}  {'expect':<12} reason")
    listed = {o.name for o in spec.outcomes}
    for name in protocols.OUTCOMES:
        o = spec.outcome(name)
        n = res.counts.get(name, 0)
        if not n and name not in listed:
            continue
        exp = o.expect
        if n and o.expect == protocols.FORBIDDEN:
            exp = exp.upper()
        rows += _fold(f"  {name:<17} {n:>14,}  {exp:<12} {one_line(o.reason)}", _REASON_AT)
    rows.append(f"  reads {res.attempts:,}  overlapping a section {res.overlaps:,}  "
                f"retries {res.retries:,}")
    rows.append(f"  writer pairs {res.writer_ops:,}  scans {res.scans:,}  "
                f"stopped in {res.stop_latency_s * 1e3:.1f} ms")
    if nruns > 1 and repeat is not None:
        rs = repeat
        t = rs["first_torn_after_s"]
        times = "" if t is None else (
            f"; first torn after median {_time(t['median'], t['median_censored'])}, "
            f"worst {_time(t['max'], t['max_censored'])}"
            + (f" ({rs['censored_runs']} run(s) without a tear)" if rs["censored_runs"] else ""))
        rows += _fold(f"  torn seen in {rs['torn_runs']} of {rs['runs']} runs{times}", 4)
    if res.first_torn is not None:
        rows += _fold("  " + first_torn_line(res), 4)
    if (cfg.hold_ns or cfg.preempt) and knob_point(spec) < 0:
        rows += _fold(f"  --hold-ns/--preempt: {spec.name}'s write section has no compiler "
                      "barrier to hold it open at; they changed nothing in this run", 4)
    rows += _fold(verdict_line, 2)
    return "\n".join(rows) + "\n"




WIDTH = 100  # the tables fit in 100 columns; a longer cell folds under its column
_REASON_AT = 49  # where the outcome table's reason column starts


def _fold(text: str, indent: int) -> list[str]:
    """``text`` in lines of at most WIDTH columns, continuations indented."""
    import textwrap

    if len(text) <= WIDTH:
        return [text]
    return textwrap.wrap(text, WIDTH, subsequent_indent=" " * indent,
                         break_long_words=False, break_on_hyphens=False) or [text]


def first_torn_line(res: StressResult) -> str:
    return (f"first torn ({res.first_torn_kind}) after {res.first_torn_after_s:.6f} s, slot "
            f"{res.first_torn_slot}: {res.first_torn.describe()}")




def to_json(report: StressReport) -> str:
    """The JSON document for machines."""
    return json.dumps(report.to_dict(), indent=2) + "\n"


def annotations(report: StressReport) -> list:
    """The findings for a run that is not a PASS (kmallocwd.annotate): first
    the line the model checker blames when it predicts the tear (the missing
    fence), then each forbidden outcome seen, at its line in the protocol
    file's outcome table, with the first torn snapshot."""
    from kmallocwd.annotate import Finding, blame_findings

    if report.result in (Result.PASS, Result.INCONCLUSIVE) or report.expect == protocols.TORN:
        return []
    total = report.total
    spec = report.spec
    out = []
    if report.model_broken_on:
        from kmallocwd.model import explore

        out += blame_findings([explore(spec, m, 2) for m in report.model_broken_on], spec.path,
                              every_tear=True)
        if report.result == Result.UNOBSERVED:
            for f in out:
                f.message += f"; not observed by this run ({power_line(total)})"
    for name in report.forbidden_seen:
        o = spec.outcome(name)
        body = []
        if total.first_torn is not None and total.first_torn_kind == name:
            body.append(first_torn_line(total))
        out.append(Finding(spec.path, o.line, f"{name} seen",
                           f"{total.counts[name]:,} {name} snapshot(s) accepted, an outcome "
                           f"this file forbids: {o.reason}", body))
    return out


def to_junit(report: StressReport) -> str:
    """One testcase per run, its status mapped by junit.STATUS_ELEMENT (a
    forbidden outcome or a tear missing under --expect torn: FAIL; no power:
    INCONCLUSIVE; the model's tear not seen: UNOBSERVED)."""
    from kmallocwd import junit

    cases = []
    spec = report.spec
    for i, (r, v) in enumerate(zip(report.runs, report.run_verdicts)):
        props = {"build": r.config.build, "seed": r.config.seed, "threads": r.config.threads,
                 "slots": r.config.slots,
                 "accepted": r.accepted, "torn": r.torn, "overlaps": r.overlaps,
                 **{f"count.{k}": c for k, c in r.counts.items()}}
        if r.first_torn is not None:
            props["first_torn"] = {"kind": r.first_torn_kind, **r.first_torn.to_dict()}
        text = _render(r, 1, v.line)
        c = junit.Case(name=f"{spec.name} run {i + 1}", classname=f"kmallocwd.stress.{spec.name}",
                       time_s=r.elapsed_s, properties=props, details=text)
        c.set(v.word, "" if v.status == EXIT_OK else v.line + "\n\n" + text)
        cases.append(c)
    return junit.to_xml(f"kmallocwd stress {spec.name}", cases, junit.run_properties(
        report.total.config.seed, protocol=spec.name, protocol_file=spec.path,
        build=report.build, verdict=report.verdict))
