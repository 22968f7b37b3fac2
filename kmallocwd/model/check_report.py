"""``kmallocwd check``'s report over one or several protocols, built once:
each protocol's explorations, its status (kmallocwd.model.status) and the
verdict on its compiled binary; the command's status and JSON document.
Text, JSON, JUnit and CI findings are views of it."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Callable

from kmallocwd.model.explore import Exploration, explore
from kmallocwd.model.status import CheckStatus, check_status, combine

ALL_SCHEMA = "kmallocwd.check-all/1"


@dataclass
class ProtocolCheck:
    """One protocol's results (one per model), its status and the verdict
    on its compiled binary (None until worked out)."""

    spec: Any
    results: list[Exploration] = field(default_factory=list)
    binary: Any = None
    status: CheckStatus | None = None

    def document(self) -> dict:
        from kmallocwd.model.report import to_json

        return {**to_json(self.results),
                **({"binary": self.binary.to_dict()} if self.binary else {})}

    def text(self, traces: bool = True) -> str:
        from kmallocwd.model.report import render_text

        return render_text(self.results, traces=traces, binary=self.binary)


@dataclass
class CheckSetReport:
    """The protocols checked (the one cut short by a signal last), the
    command's status, and the signal's exit status when one stopped it."""

    checks: list[ProtocolCheck]
    specs: int  # protocols asked for
    models: int  # models asked for, per protocol
    status: CheckStatus
    interrupt_status: int | None = None

    @property
    def interrupted(self) -> bool:
        return self.interrupt_status is not None

    @property
    def exit_status(self) -> int:
        return self.interrupt_status if self.interrupted else self.status.code

    @property
    def done(self) -> int:
        """protocol x model checks done"""
        return sum(len(c.results) for c in self.checks)

    def to_dict(self) -> dict:
        docs = [c.document() for c in self.checks if c.results]
        doc = docs[0] if len(docs) == 1 and self.specs == 1 else {"schema": ALL_SCHEMA,
                                                                   "protocols": docs}
        doc["interrupted"] = self.interrupted
        if self.interrupted:
            doc["exit_status"] = self.interrupt_status
        return doc

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"

    def findings(self) -> list:
        """One finding per cause, culprit first, for each protocol."""
        out = []
        for c in self.checks:
            if c.results:
                out += annotations(c.results)
        return out

    def to_junit(self) -> str:
        from kmallocwd import junit

        cases = []
        for c in self.checks:
            cases += junit_cases(c.results)
        return junit.to_xml("kmallocwd check", cases, junit.run_properties(seed=None))


def run_checks(specs: list, models: list[str], sections: int, retries: int = 0,
               build: str = "kernel",
               on_check: Callable[[ProtocolCheck], None] | None = None) -> CheckSetReport:
    """Check each protocol under each model, with the verdict on its compiled
    binary; ``on_check`` is called as each protocol is done.  A signal ends
    it: the report holds the protocols (and models) done so far."""
    from kmallocwd.stress.binverdict import binary_verdict
    from kmallocwd.interrupt import exit_status

    checks: list[ProtocolCheck] = []
    stopped = None
    try:
        for spec in specs:
            c = ProtocolCheck(spec)
            checks.append(c)
            for m in models:
                c.results.append(explore(spec, m, sections, retries))
            # the compiled binary: its object code is read for format 1 only
            c.binary = binary_verdict(spec, build) if spec.format == 1 else None
            if on_check is not None:
                on_check(c)
    except KeyboardInterrupt as exc:  # the models done so far are reported
        stopped = exit_status(exc)
    for c in checks:
        if c.results:
            c.status = check_status(c.results)
    status = combine([c.status for c in checks if c.status is not None])
    return CheckSetReport(checks, len(specs), len(models), status, stopped)


def junit_cases(results: list[Exploration]) -> list:
    """One testcase per model; a failure when the verdict says a tear is
    possible that [expect] says is not, skipped when [expect] says
    sometimes and none was found."""
    from kmallocwd import junit
    from kmallocwd.model.report import observation, render_text, verdict

    cases = []
    for r in results:
        v, exp = verdict(r), r.spec.expect.get(r.model)
        c = junit.Case(name=f"{r.spec.name} under {r.model}",
                       classname=f"kmallocwd.check.{r.spec.name}", time_s=r.seconds,
                       properties={"verdict": v, "expect": exp, "executions": r.executions,
                                   "torn_executions": r.positive, "sections": r.sections},
                       details=render_text([r]))
        if not r.accepts:
            c.set("INCONCLUSIVE", f"INCONCLUSIVE: {observation(r)}: the reader never accepts "
                  "a snapshot")
        elif v != exp and v == "sometimes":
            c.set("FAIL", f"FAIL: {observation(r)}: a torn snapshot [expect] says never "
                  "happens")
        elif v != exp:
            c.set("INCONCLUSIVE", f"INCONCLUSIVE: {observation(r)}: [expect] says sometimes, "
                  "no tear found")
        cases.append(c)
    return cases


def annotations(results: list[Exploration]) -> list:
    """One finding per cause, culprit first: the line where a fence is
    missing (checked by inserting it), else the model's [expect] line; the
    counterexample's trace in the body."""
    from kmallocwd import annotate

    return annotate.blame_findings(results, results[0].spec.path if results else "")
