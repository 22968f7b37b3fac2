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
import json
import sys

from kmallocwd import limits
from kmallocwd.argtypes import limit
from kmallocwd.commands.common import add_build_option, add_protocol_options, specs_from
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
    from kmallocwd.model import MODELS
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
    p.add_argument("--json", metavar="PATH", default=None,
                   help="write the results as JSON to PATH ('-': stdout, instead of the table)")
    p.add_argument("--no-trace", action="store_true", help="verdicts only, no counterexamples")
    add_build_option(p)
    p.add_argument("--junit", metavar="PATH", default=None,
                   help="also write JUnit XML: one testcase per protocol x model, a failure "
                   "when a model finds a tear [expect] says never")
    p.add_argument("--annotate", choices=("github", "none"), default=None,
                   help="print GitHub ::error lines: one per cause, at the line a "
                   "counterexample blames (the missing fence), then a summary (at most 10; "
                   "default: on when GITHUB_ACTIONS=true)")
    p.add_argument("--codequality", metavar="PATH", default=None,
                   help="also write the findings as a GitLab Code Quality report (JSON)")
    p.set_defaults(func=run)


def junit_cases(results) -> list:
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


def annotations(results) -> list:
    """One finding per cause, culprit first: the line where a fence is
    missing (checked by inserting it), else the model's [expect] line; the
    counterexample's trace in the body."""
    from kmallocwd import annotate

    return annotate.blame_findings(results, results[0].spec.path if results else "")


def run(args: argparse.Namespace) -> int:
    from kmallocwd.binverdict import binary_verdict
    from kmallocwd.model import explore
    from kmallocwd.model.report import render_text, to_json
    specs = specs_from(args, all_if_none=True)
    models = models_from(args.model)
    k = int_arg("--sections", args.sections, 1, MAX_SECTIONS)
    retries = int_arg("--retries", args.retries, 0, MAX_RETRIES)
    from kmallocwd import annotate, junit, outpath
    from kmallocwd.errors import EXIT_WRITE_FAILED

    inputs = [args.protocol_file] if args.protocol_file else []
    json_t = outpath.check_output(args.json, "--json", inputs) if args.json is not None else None
    junit_t = (outpath.check_output(args.junit, "--junit", inputs)
               if args.junit is not None else None)
    cq_t = (outpath.check_output(args.codequality, "--codequality", inputs)
            if args.codequality is not None else None)
    from kmallocwd import interrupt
    from kmallocwd.model.status import check_status, combine

    done = []  # (spec, the results of the models explored so far, its binary verdict)
    stopped: KeyboardInterrupt | None = None
    shown = 0  # protocols whose text is printed
    try:
        for spec in specs:
            results: list = []
            done.append((spec, results, None))
            for m in models:
                results.append(explore(spec, m, k, retries))
            # the compiled binary: the C emulator runs format-1 files only
            binary = binary_verdict(spec, args.build) if spec.format == 1 else None
            done[-1] = (spec, results, binary)
            if args.json != "-":
                sys.stdout.write(render_text(results, traces=not args.no_trace, binary=binary)
                                 + "\n")
            shown += 1
    except KeyboardInterrupt as exc:  # the models done so far are reported
        stopped = exc
    interrupt.defer()  # from here a signal is recorded: the report is written whole
    docs, statuses, cases, notes = [], [], [], []
    for i, (spec, results, binary) in enumerate(done):
        if not results:
            continue
        if i >= shown and args.json != "-":  # the one cut short
            sys.stdout.write(render_text(results, traces=not args.no_trace, binary=binary)
                             + "\n")
        statuses.append(check_status(results))
        docs.append({**to_json(results), **({"binary": binary.to_dict()} if binary else {})})
        cases += junit_cases(results)
        notes += annotations(results)
    status = combine(statuses)
    if len(docs) == 1 and len(specs) == 1:
        doc = docs[0]
    else:
        doc = {"schema": "kmallocwd.check-all/1", "protocols": docs}
    doc["interrupted"] = stopped is not None
    if stopped is not None:
        doc["exit_status"] = interrupt.exit_status(stopped)
    if annotate.wanted(args.annotate):
        what = annotate.relpath(args.protocol_file or "") or args.protocol or "(every built-in)"
        annotate.emit(notes, annotate.Summary(
            f"kmallocwd check {what}", status.line, status.code,
            [p for p in (args.json, args.junit, args.codequality) if p and p != "-"],
            specs[0].path if len(specs) == 1 else ""),
            sys.stderr if args.json == "-" else sys.stdout)
    if not outpath.write_outputs("kmallocwd check", [
            (json_t, lambda: json.dumps(doc, indent=2) + "\n"),
            (junit_t, lambda: junit.to_xml("kmallocwd check", cases, junit.run_properties(
                seed=None))),
            (cq_t, lambda: annotate.codequality(notes))]):
        return EXIT_WRITE_FAILED
    if stopped is not None:
        if args.json != "-":
            n = sum(len(results) for _, results, _ in done)
            sys.stdout.write(f"INTERRUPTED: partial, {n} of {len(specs) * len(models)} "
                             "protocol x model checks done\n")
        return interrupt.exit_status(stopped)
    if args.json != "-":
        sys.stdout.write(status.line + "\n")
    return status.code
