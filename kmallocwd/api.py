"""The Python API: what the CLI does, as calls that return reports.

    import kmallocwd
    report = kmallocwd.stress("seqcount", duration=5, alloc_ns=100)
    report.assert_no_forbidden()          # raises with the histogram and the first tear
    print(report.to_json())

``protocol`` is a built-in name or the path of a protocol file.  Every report
is a dataclass whose fields are the keys of the command's JSON document.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from kmallocwd import limits, protocols
from kmallocwd.errors import ProtocolFailure, UsageError
from kmallocwd.jsonreport import JsonReport as _JsonReport
from kmallocwd.verdicts import MODELS

if TYPE_CHECKING:
    from kmallocwd.stress.report import StressReport

__all__ = ["ProtocolFailure", "StressReport", "CheckReport", "AblateReport", "stress", "check",
           "ablate", "resolve_spec", "counterexample_text"]


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


def counterexample_text(protocol: str | protocols.Spec, models: list[str],
                        sections: int = 2) -> str:
    """What the model checker blames under these models: the line where a
    fence is missing (or the [expect] line) and the shortest counterexample
    as its numbered trace ('' when no model finds a tear)."""
    if not models:
        return ""
    from kmallocwd.model.counterexample import counterexample_text as text

    try:
        spec = resolve_spec(protocol)
    except protocols.SpecError:
        return ""
    return text(spec, models, sections)


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


def check_all(specs: list[protocols.Spec], models: list[str], sections: int = 2,
              retries: int = 0, build: str = "kernel",
              on_check: Callable[[Any], None] | None = None):
    """``kmallocwd check`` over several protocols, with the verdict on each
    one's compiled binary: the command's report (kmallocwd.model.check_report;
    a signal ends it with the protocols done so far)."""
    from kmallocwd.model.check_report import run_checks

    return run_checks(specs, models, sections, retries, build, on_check)


def max_slots() -> int:
    """The most slots this machine's memory allows a stress run."""
    from kmallocwd.stress.slots import max_slots as most

    return most()


def stress_variant(spec: protocols.Spec, duration: float, build: str = "kernel") -> dict:
    """The stress half of an ablation: one run of ``spec`` in the README's
    CI configuration (1 writer, 1 slot, --alloc-ns 100 --hold-ns 50), ended
    at the first tear; counts by outcome, time to the first tear, overlaps."""
    from kmallocwd.protocols.backend import backend
    from kmallocwd.stress.run import StressConfig, run_stress

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
    broken: list = field(default_factory=list, repr=False, compare=False)  # the models
    # under which the protocol as written tears where [expect] says never
    verdict: str = field(default="", repr=False, compare=False)  # the one-line verdict
    _INTERNAL = ("rows_obj", "spec", "broken", "verdict")

    def text(self) -> str:
        """The table, then how it ended, and the verdict."""
        import textwrap

        from kmallocwd.model.ablate import render

        out = render(self.spec, self.rows_obj, self.models)
        if self.duration > 0:
            out += f"  stress: the {self.build} build\n"
        if self.interrupted:
            out += f"INTERRUPTED: partial, {len(self.rows_obj)} of {self.variants} rows done\n"
        return out + "\n".join(textwrap.wrap(self.verdict, 100, subsequent_indent="  ")) + "\n"

    def findings(self) -> list:
        """Exactly what the exit status says: the lines the counterexamples
        of the protocol as written blame, when it tears where [expect] says
        never."""
        if not self.broken:
            return []
        from kmallocwd.annotate import blame_findings
        from kmallocwd.model import explore

        return blame_findings([explore(self.spec, m, 2) for m in self.broken], self.spec.path)

    def to_junit(self) -> str:
        """One testcase per row: the protocol as written fails when it tears
        where [expect] says never; a row whose stress run was cut short is
        inconclusive."""
        from kmallocwd import junit

        spec = self.spec
        cases = []
        for r in self.rows_obj:
            name = "as written" if not r.line else f"line {r.line}: {r.text} {r.change}"
            c = junit.Case(name=f"{spec.name} {name}", classname=f"kmallocwd.ablate.{spec.name}",
                           time_s=r.seconds,
                           properties={**{f"verdict.{m}": v for m, v in r.verdicts.items()},
                                       "build": self.build,
                                       "necessary_on": ",".join(r.necessary_on),
                                       "stress_torn": r.stress_torn})
            if not r.line and self.broken:
                c.set("FAIL", self.verdict)
            elif r.interrupted:
                c.set("INCONCLUSIVE", "interrupted: the stress run was cut short")
            cases.append(c)
        seed = None
        if self.duration > 0:
            from kmallocwd.stress.run import StressConfig

            seed = StressConfig(protocol=spec.name).seed
        return junit.to_xml(f"kmallocwd ablate {spec.name}", cases,
                            junit.run_properties(seed, protocol=spec.name, build=self.build))

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
    broken = [m for m, v in rows[0].verdicts.items()
              if v == "sometimes" and spec.expect.get(m) == "never"] if rows else []
    if status is None:
        status = 1 if broken else 0
    needed = [r for r in rows[1:] if r.necessary_on]
    if broken:
        verdict = (f"FAIL: {spec.name} as written can tear under {', '.join(broken)}, where "
                   "[expect] says never")
    elif not rows:
        verdict = f"INTERRUPTED: {spec.name}: no row done"
    else:
        verdict = (f"OK: {spec.name} as written holds where [expect] says never; "
                   f"{len(needed)} of {len(rows) - 1} annotations are necessary"
                   + (f" (lines {', '.join(str(r.line) for r in needed)})" if needed else ""))
    power = detection_power(rows)
    return AblateReport(schema="kmallocwd.ablate/1", protocol=spec.name, path=spec.path,
                        models=models, duration=duration, rows=[r.to_dict() for r in rows],
                        detection_power=None if power is None else
                        {"seen": power[0], "broken": power[1]},
                        interrupted=interrupted, variants=total, exit_status=status, build=build,
                        rows_obj=rows, spec=spec, broken=broken, verdict=verdict)


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
        from kmallocwd.stress.slots import max_slots

        most = max_slots()
        if slots > most:
            raise ValueError(f"slots={slots} is more than memory allows (accepted: 1 to {most})")


_STRESS_DEFAULTS = dict(duration=5.0, threads=1, slots=1, iterations=None, batch=65536,
                        pin=False, hold_ns=0, alloc_ns=0, preempt=0.0, seed=1,
                        until_torn=False, repeat=1, min_overlaps=1, expect=None,
                        build="kernel")


def _stress_config(protocol: str | protocols.Spec, values: dict):
    """The checked values as a StressConfig, and the protocol's Spec."""
    from kmallocwd.stress.run import StressConfig

    v = {**_STRESS_DEFAULTS, **values}
    if v["iterations"] is not None:
        v["duration"] = None
    elif v["duration"] is None:
        v["duration"] = 5.0
    check_stress_values(**{k: v[k] for k in (
        "duration", "iterations", "threads", "slots", "batch", "hold_ns", "alloc_ns",
        "preempt", "seed", "repeat", "min_overlaps", "expect")})
    spec = resolve_spec(protocol)
    cfg = StressConfig(protocol=spec.name,
                       protocol_file=None if protocols.BY_NAME.get(spec.name) is spec
                       else spec.path,
                       **{k: v[k] for k in ("threads", "slots", "duration", "iterations",
                                            "batch", "pin", "hold_ns", "alloc_ns", "preempt",
                                            "seed", "until_torn", "min_overlaps", "build")})
    return cfg, spec, v


@dataclass
class StressPlan:
    """A stress configuration checked, with its protocol compiled: what
    :func:`run_planned` runs.  A signal while it is made stops nothing
    started, so it is not caught."""

    cfg: Any
    spec: protocols.Spec
    backend: Any
    repeat: int
    expect: str | None


def plan_stress(protocol: str | protocols.Spec = "v3", **values: Any) -> StressPlan:
    """Check ``stress``'s values (ValueError) and compile the protocol."""
    from kmallocwd.protocols.backend import backend

    cfg, spec, v = _stress_config(protocol, values)
    return StressPlan(cfg, spec, backend(spec, cfg.build), v["repeat"], v["expect"])


def run_planned(plan: StressPlan,
                on_run: Callable[[int, Any], None] | None = None) -> StressReport:
    """Run a planned stress and return its report (see :func:`stress`)."""
    import kmallocwd.stress.report as stress_report
    from kmallocwd.interrupt import exit_status
    from kmallocwd.stress.run import interrupted_before, run_stress

    runs = []
    try:
        for i in range(plan.repeat):
            try:
                runs.append(run_stress(plan.cfg, plan.backend))
            except MemoryError as exc:
                raise UsageError(f"--slots {plan.cfg.slots}: {exc}") from None
            if on_run is not None:
                on_run(i, runs[-1])
            if runs[-1].interrupted:
                break
    except KeyboardInterrupt as exc:  # between runs: the runs done stand
        if runs:
            runs[-1].interrupted, runs[-1].interrupt_status = True, exit_status(exc)
        else:
            runs.append(interrupted_before(plan.cfg, plan.spec, exc))
    return stress_report.build(runs, plan.expect, plan.repeat)


def interrupted_report(plan: StressPlan, exc: KeyboardInterrupt) -> StressReport:
    """The report of a planned stress that a signal stopped before its
    first run began."""
    import kmallocwd.stress.report as stress_report
    from kmallocwd.stress.run import interrupted_before

    return stress_report.build([interrupted_before(plan.cfg, plan.spec, exc)], plan.expect,
                               plan.repeat)


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
    values = {k: v for k, v in locals().items() if k in _STRESS_DEFAULTS}
    return run_planned(plan_stress(protocol, **values), on_run)


def __getattr__(name: str) -> Any:
    if name == "StressReport":  # imported when asked for: it needs the C extension
        from kmallocwd.stress.report import StressReport

        return StressReport
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
