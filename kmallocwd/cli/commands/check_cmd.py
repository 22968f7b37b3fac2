"""``kmallocwd check``: what a protocol can do under sc, x86 and weak
memory models: the verdict, the executions explored, and the shortest
counterexample (docs/model.md).

Exit status: 0 when every verdict equals the file's [expect] table; 1 when
a model finds a torn snapshot the table says is ``never`` (a forbidden
outcome, found by the checker); 3 when the table says ``sometimes`` and the
checker finds no tear (too little evidence: try more --sections), or when
the reader never accepts a snapshot (nothing was checked); 2 for bad
usage.  1 wins over 3.  kmallocwd.model.status decides."""

from __future__ import annotations

import argparse
import sys

from kmallocwd import limits
from kmallocwd.cli.argtypes import limit
from kmallocwd.cli.commands.common import (add_build_option, add_protocol_options,
                                          add_report_options, report_outputs,
                                          specs_from)
from kmallocwd.errors import UsageError

MAX_SECTIONS = limits.SECTIONS.hi
MAX_RETRIES = limits.MODEL_RETRIES.hi


def add_model_args(p: argparse.ArgumentParser, models_default: str = "all") -> None:
    p.add_argument("--model", "-m", default=models_default, metavar="sc|x86|weak|all",
                   help=f"the memory model(s) (default {models_default})")
    p.add_argument("--sections", "-k", type=limit(limits.SECTIONS), default=2, metavar="K",
                   help=f"write sections by the writer, 1..{MAX_SECTIONS} (default 2)")
    p.add_argument("--retries", type=limit(limits.MODEL_RETRIES), default=0, metavar="N",
                   help=f"reader retries before giving up, 0..{MAX_RETRIES} (default 0: a retry "
                   "ends the attempt with no snapshot; docs/model.md says why that loses no tear)")


def models_from(value: str) -> list[str]:
    from kmallocwd.api import MODELS
    if value == "all":
        return list(MODELS)
    out = []
    for m in value.split(","):
        if m not in MODELS:
            raise UsageError(f"--model {value!r} (accepted: sc, x86, weak, all, or a "
                             "comma-separated list)")
        out.append(m)
    return out


def int_arg(name: str, value: str, lo: int, hi: int) -> int:
    try:
        n = int(value)
    except ValueError:
        n = None
    if n is None or not lo <= n <= hi:
        raise UsageError(f"{name} {value!r} (accepted: an integer from {lo} to {hi})")
    return n


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "check",
        help="model-check a protocol under sc, x86 and weak memory models",
        description="Explore every execution of K write sections against one reader attempt "
        "under sequential consistency, x86-TSO with compiler reordering of plain accesses, and "
        "an arm64/POWER-class weak model (LKMM rules); print the verdict per model "
        "(Never/Sometimes, herd7-style Observation lines) and the shortest counterexample. "
        "With no protocol, every built-in. Exit 0 when every verdict equals the file's [expect], "
        "1 when a model finds a tear [expect] says never, 3 when [expect] says sometimes and "
        "no tear was found or when the reader never accepts a snapshot, 2 for bad usage.")
    add_protocol_options(p)
    add_model_args(p)
    add_report_options(
        p,
        json="write the results as JSON to PATH ('-': stdout, instead of the table)",
        junit="also write JUnit XML: one testcase per protocol x model, a failure "
              "when a model finds a tear [expect] says never",
        annotate="print GitHub ::error lines: one per cause, at the line a "
                 "counterexample blames (the missing fence), then a summary (at most 10; "
                 "default: on when GITHUB_ACTIONS=true)")
    p.add_argument("--no-trace", action="store_true", help="verdicts only, no counterexamples")
    add_build_option(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from kmallocwd import annotate, interrupt, outpath
    from kmallocwd.errors import EXIT_WRITE_FAILED
    from kmallocwd.api import check_all

    specs = specs_from(args, all_if_none=True)
    models = models_from(args.model)
    k = int_arg("--sections", args.sections, 1, MAX_SECTIONS)
    retries = int_arg("--retries", args.retries, 0, MAX_RETRIES)
    inputs = [args.protocol_file] if args.protocol_file else []
    json_t, junit_t, cq_t = report_outputs(args, inputs)
    shown = []  # the protocols whose text is printed

    def show(check) -> None:
        if args.json != "-":
            sys.stdout.write(check.text(traces=not args.no_trace) + "\n")
        shown.append(check)

    report = check_all(specs, models, k, retries, args.build, on_check=show)
    interrupt.defer()  # from here a signal is recorded: the report is written whole
    for c in report.checks:
        if c.results and c not in shown:  # the one cut short
            show(c)
    notes = report.findings()
    if annotate.wanted(args.annotate):
        what = annotate.relpath(args.protocol_file or "") or args.protocol or "(every built-in)"
        annotate.emit(notes, annotate.Summary(
            f"kmallocwd check {what}", report.status.line, report.status.code,
            [p for p in (args.json, args.junit, args.codequality) if p and p != "-"],
            specs[0].path if len(specs) == 1 else ""),
            sys.stderr if args.json == "-" else sys.stdout)
    if not outpath.write_outputs("kmallocwd check", [
            (json_t, report.to_json),
            (junit_t, report.to_junit),
            (cq_t, lambda: annotate.codequality(notes))]):
        return EXIT_WRITE_FAILED
    if args.json != "-":
        if report.interrupted:
            sys.stdout.write(f"INTERRUPTED: partial, {report.done} of "
                             f"{report.specs * report.models} protocol x model checks done\n")
        else:
            sys.stdout.write(report.status.line + "\n")
    return report.exit_status
