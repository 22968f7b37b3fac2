"""The Python API: what the CLI does, as calls that return reports.

    import kmallocwd
    report = kmallocwd.stress("seqcount", duration=5, alloc_ns=100)
    report.assert_no_forbidden()          # raises with the histogram and the first tear
    print(report.to_json())

``protocol`` is a built-in name or the path of a protocol file.  Every report
is a dataclass whose fields are the keys of the command's JSON document.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Callable

from kmallocwd import limits, protocols
from kmallocwd.errors import EXIT_OK


class ProtocolFailure(AssertionError):
    """A report that is not a clean PASS: the message says why, with the
    evidence (histogram, first torn snapshot, the model's counterexample)."""


def resolve_spec(protocol: str | protocols.Spec) -> protocols.Spec:
    """A built-in name, a protocol file's path, or a Spec (SpecError if bad)."""
    if isinstance(protocol, protocols.Spec):
        return protocol
    if protocol in protocols.BY_NAME:
        return protocols.BY_NAME[protocol]
    if protocol.endswith(".toml") or Path(protocol).exists():
        return protocols.load_path(protocol)
    raise protocols.SpecError(f"unknown protocol {protocol!r} (accepted: "
                              f"{', '.join(protocols.NAMES)}, or a protocol file)")


class _JsonReport:
    """A command's JSON document as a dataclass: the fields named in
    ``_INTERNAL`` are kept for Python callers and left out of the JSON."""

    _INTERNAL: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        d = asdict(self)  # type: ignore[call-overload]
        for k in self._INTERNAL:
            d.pop(k)
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, default=str) + "\n"


@dataclass
class StressReport(_JsonReport):
    """``kmallocwd stress``'s JSON document, as a dataclass (README, "Stress
    report JSON"); ``runs`` keeps the raw results (not in the JSON)."""

    schema: str
    kmallocwd: str
    protocol: str
    protocol_file: str
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
    expect: str | None
    verdict: str
    result: str
    exit_status: int
    runs: list = field(default_factory=list, repr=False, compare=False)
    _INTERNAL = ("runs",)

    @classmethod
    def from_dict(cls, d: dict, runs: list | None = None) -> "StressReport":
        names = {f.name for f in fields(cls)} - {"runs"}
        return cls(**{k: d[k] for k in names}, runs=runs or [])

    def histogram(self) -> str:
        rows = [f"  {name:<17} {o['count']:>14,}  {o['expect']}"
                for name, o in self.outcomes.items()]
        rows.append(f"  reads overlapping a write section: {self.overlaps:,}")
        return "\n".join(rows)

    def _spec(self) -> protocols.Spec | None:
        if self.runs:
            return self.runs[0].spec
        try:
            return resolve_spec(self.protocol if self.protocol in protocols.BY_NAME
                                else self.protocol_file or self.protocol)
        except protocols.SpecError:
            return None

    def explain(self) -> str:
        """The verdict with its evidence, as a failure message shows it: the
        histogram, each forbidden outcome's reason at its line of the
        protocol file, the first torn snapshot, and the model checker's
        counterexample when the model predicts the tear."""
        spec = self._spec()
        parts = [self.verdict, self.histogram()]
        for name in self.forbidden_seen:
            if spec is not None:
                o = spec.outcome(name)
                at = f"{spec.path}:{o.line}: " if o.line else f"{spec.path}: "
                parts.append(f"{at}{name} is forbidden: {o.reason}")
        if self.first_torn:
            ft = self.first_torn
            s = ft["snapshot"]
            parts.append(f"first torn snapshot ({ft['kind']}) after {ft['after_s']:.6f} s, "
                         f"slot {ft['slot']}: " + ", ".join(f"{k}={v}" for k, v in s.items()))
        if spec is not None and self.model_broken_on:
            parts.append(counterexample_text(spec, self.model_broken_on))
        elif self.forbidden_seen:
            parts.append("model checker: no tear under sc, x86 or weak (kmallocwd check): "
                         "this one comes from outside the model (the compiled C, or the "
                         "hardware)")
        return "\n".join(p for p in parts if p)

    def assert_no_forbidden(self) -> None:
        """Raise ProtocolFailure unless the verdict is a PASS: a forbidden
        outcome was seen (FAIL), the run had no power (INCONCLUSIVE), or the
        model says the protocol can tear and this run did not see it."""
        if self.exit_status != EXIT_OK:
            raise ProtocolFailure(self.explain())


def counterexample_text(protocol: str | protocols.Spec, models: list[str],
                        sections: int = 2) -> str:
    """What the model checker blames under these models: the line where a
    fence is missing (or the [expect] line) and the shortest counterexample
    as its numbered trace ('' when no model finds a tear)."""
    if not models:
        return ""
    from kmallocwd.model import explore
    from kmallocwd.model.blame import blame

    try:
        spec = resolve_spec(protocol)
    except protocols.SpecError:
        return ""
    found = blame([explore(spec, m, sections) for m in models], every_tear=True)
    if not found:
        return ""
    lines = [f"model checker: {spec.path or spec.name}:{b.line}: {b.message}" for b in found]
    return "\n".join(lines + found[0].trace)


def _models(model: str | list[str]) -> list[str]:
    """'all', one model's name, or a list of them."""
    from kmallocwd.model import MODELS

    if model == "all":
        return list(MODELS)
    return [model] if isinstance(model, str) else list(model)


@dataclass
class CheckReport(_JsonReport):
    """``kmallocwd check``'s JSON document for one protocol, as a dataclass."""

    schema: str
    protocol: str
    path: str
    sections: int
    retries: int
    condition: list
    models: dict  # model -> {verdict, expect, matches_expect, executions, ..., counterexample}
    matches_expect: bool
    exit_status: int
    text: str = field(default="", repr=False, compare=False)  # the table and the traces
    results: list = field(default_factory=list, repr=False, compare=False)
    _INTERNAL = ("text", "results")

    @property
    def broken_on(self) -> list[str]:
        return [m for m, v in self.models.items() if v["verdict"] == "sometimes"]

    def assert_no_forbidden(self) -> None:
        """Raise ProtocolFailure if any model finds a torn snapshot the
        protocol's table forbids (the message holds the counterexample), or
        if the reader never accepts a snapshot (nothing was checked)."""
        if self.broken_on:
            from kmallocwd.model.blame import blame

            where = "\n".join(f"{self.path or self.protocol}:{b.line}: {b.message}"
                              for b in blame(self.results, every_tear=True))
            raise ProtocolFailure(f"{self.protocol} can accept a torn snapshot under "
                                  f"{', '.join(self.broken_on)} (model checker)\n{where}\n"
                                  f"{self.text}")
        silent = [m for m, v in self.models.items() if not v.get("accepts", True)]
        if silent:
            raise ProtocolFailure(f"{self.protocol}: the reader never accepts a snapshot under "
                                  f"{', '.join(silent)}: the model checker checked nothing\n"
                                  f"{self.text}")


def check(protocol: str | protocols.Spec = "v3", *, model: str | list[str] = "all",
          sections: int = 2, retries: int = 0) -> CheckReport:
    """Run ``kmallocwd check`` on one protocol and return its report."""
    from kmallocwd.model import explore
    from kmallocwd.model.report import render_text, to_json
    from kmallocwd.model.status import check_status

    limits.SECTIONS.check(sections, "sections")
    limits.MODEL_RETRIES.check(retries, "retries")
    spec = resolve_spec(protocol)
    results = [explore(spec, m, sections, retries) for m in _models(model)]
    d = to_json(results)
    return CheckReport(schema=d["schema"], protocol=d["protocol"], path=d["path"],
                       sections=d["sections"], retries=d["retries"],
                       condition=d["condition"], models=d["models"],
                       matches_expect=all(v["matches_expect"] for v in d["models"].values()),
                       exit_status=check_status(results).code, text=render_text(results),
                       results=results)


def stress_variant(spec: protocols.Spec, duration: float, build: str = "kernel") -> dict:
    """The stress half of an ablation: one run of ``spec`` in the README's
    CI configuration (1 writer, 1 slot, --alloc-ns 100 --hold-ns 50), ended
    at the first tear; counts by outcome, time to the first tear, overlaps."""
    from kmallocwd.protocols.backend import backend
    from kmallocwd.stressrun import StressConfig, run_stress

    cfg = StressConfig(protocol=spec.name, duration=duration, alloc_ns=100, hold_ns=50,
                       until_torn=True, build=build)
    r = run_stress(cfg, backend(spec, build))
    out = {"outcomes": dict(r.counts), "first_torn_after_s": r.first_torn_after_s,
           "overlaps": r.overlaps, "accepted": r.accepted, "elapsed_s": r.elapsed_s,
           "interrupted": r.interrupted}
    if r.interrupted:
        out["interrupt_status"] = r.interrupt_status
    return out


@dataclass
class AblateReport(_JsonReport):
    """``kmallocwd ablate``'s JSON document, as a dataclass."""

    schema: str
    protocol: str
    path: str
    models: list
    duration: float
    rows: list  # one dict per row: the protocol as written, then each annotation
    detection_power: dict | None  # {"seen": n, "broken": m} over the stressed variants
    interrupted: bool = False  # stopped by a signal: the rows done so far
    variants: int = 0  # rows there would be: the protocol as written + each annotation
    exit_status: int = 0  # the command's: 1 if the protocol as written tears where
    # [expect] says never, the signal's 128 + N when interrupted, else 0
    build: str = "kernel"  # which barriers.h definitions the stressed variants had
    rows_obj: list = field(default_factory=list, repr=False, compare=False)
    spec: Any = field(default=None, repr=False, compare=False)
    _INTERNAL = ("rows_obj", "spec")

    def assert_no_forbidden(self) -> None:
        """Raise if the protocol as written can tear (the first row)."""
        first = self.rows[0]
        bad = [m for m, v in first["verdicts"].items() if v == "sometimes"]
        if bad:
            raise ProtocolFailure(f"{self.protocol} as written can tear under "
                                  f"{', '.join(bad)}\n"
                                  + counterexample_text(self.spec or self.protocol, bad))


def ablate(protocol: str | protocols.Spec = "seqcount", *, duration: float = 0.0,
           model: str | list[str] = "all", sections: int = 2,
           on_row: Callable[[int, int], None] | None = None,
           build: str = "kernel") -> AblateReport:
    """Run ``kmallocwd ablate``: each ordering annotation removed (or
    weakened), its verdict per model, and with ``duration`` > 0 a stress run
    of each variant here (compiled on first use).  Ctrl-C (or another
    stopping signal) ends it: the report then holds the rows done so far,
    ``interrupted`` set, the row whose stress run was cut short marked."""
    from kmallocwd.interrupt import exit_status
    from kmallocwd.model.ablate import detection_power, iter_rows

    limits.ABLATE_DURATION.check(duration, "duration")
    limits.SECTIONS.check(sections, "sections")
    spec = resolve_spec(protocol)
    models = _models(model)
    total = 1 + len(spec.ordering_ops())
    done = [0]

    def stress_fn(variant: protocols.Spec, d: float) -> dict:
        out = stress_variant(variant, d, build)
        done[0] += 1
        if on_row is not None:
            on_row(done[0], total)
        return out

    rows = []
    status = None
    try:
        for row in iter_rows(spec, models, stress_fn if duration > 0 else None, duration,
                             sections):
            rows.append(row)
            if row.interrupted:  # the signal stopped this row's stress run
                status = row.stress.get("interrupt_status")
                break
    except KeyboardInterrupt as exc:
        status = exit_status(exc)
    interrupted = status is not None
    if status is None:
        status = 1 if rows and any(v == "sometimes" and spec.expect.get(m) == "never"
                                   for m, v in rows[0].verdicts.items()) else 0
    power = detection_power(rows)
    return AblateReport(schema="kmallocwd.ablate/1", protocol=spec.name, path=spec.path,
                        models=models, duration=duration, rows=[r.to_dict() for r in rows],
                        detection_power=None if power is None else
                        {"seen": power[0], "broken": power[1]},
                        interrupted=interrupted, variants=total, exit_status=status, build=build,
                        rows_obj=rows, spec=spec)


def check_stress_values(**values: Any) -> None:
    """ValueError, with the CLI's message, for a value ``kmallocwd stress``
    refuses (kmallocwd/limits.py; None means not given)."""
    for name, value in values.items():
        if value is not None:
            limits.check(name, value)
    threads, slots = values.get("threads"), values.get("slots")
    if threads is not None and slots is not None:
        if threads > slots:
            raise ValueError(f"threads={threads} is more than slots={slots} (accepted: 1 to "
                             f"{slots}; each slot has one writer, its task)")
        from kmallocwd.slots import max_slots

        most = max_slots()
        if slots > most:
            raise ValueError(f"slots={slots} is more than memory allows (accepted: 1 to {most})")


def stress(protocol: str | protocols.Spec = "v3", *, duration: float | None = 5.0,
           threads: int = 1, slots: int = 1, iterations: int | None = None,
           batch: int = 65536, pin: bool = False, hold_ns: int = 0, alloc_ns: int = 0,
           preempt: float = 0.0, seed: int = 1, until_torn: bool = False, repeat: int = 1,
           min_overlaps: int = 1, expect: str | None = None, build: str = "kernel",
           on_run: Callable[[int, Any], None] | None = None) -> StressReport:
    """Run ``kmallocwd stress`` and return its report.  ``on_run(i, result)``
    is called after each of the ``repeat`` runs (a progress hook).  Ctrl-C
    stops the runs; the report then holds the partial result.  A value the
    CLI refuses is a ValueError with the CLI's message (kmallocwd/limits.py)."""
    from kmallocwd import stress_report
    from kmallocwd.protocols.backend import backend
    from kmallocwd.stressrun import StressConfig, run_stress

    if iterations is not None:
        duration = None
    elif duration is None:
        duration = 5.0
    check_stress_values(duration=duration, iterations=iterations, threads=threads,
                        slots=slots, batch=batch, hold_ns=hold_ns, alloc_ns=alloc_ns,
                        preempt=preempt, seed=seed, repeat=repeat, min_overlaps=min_overlaps,
                        expect=expect)
    spec = resolve_spec(protocol)
    cfg = StressConfig(protocol=spec.name,
                       protocol_file=None if protocols.BY_NAME.get(spec.name) is spec
                       else spec.path,
                       threads=threads, slots=slots, duration=duration, iterations=iterations,
                       batch=batch, pin=pin, hold_ns=hold_ns, alloc_ns=alloc_ns,
                       preempt=preempt, seed=seed, until_torn=until_torn,
                       min_overlaps=min_overlaps, build=build)
    be = backend(spec, build)
    runs = []
    for i in range(repeat):
        runs.append(run_stress(cfg, be))
        if on_run is not None:
            on_run(i, runs[-1])
        if runs[-1].interrupted:
            break
    return StressReport.from_dict(stress_report.to_dict(runs, expect, repeat), runs)
