"""``kmallocwd check``: what a protocol can do under sc, x86 and weak
memory models: the verdict, the executions explored, and the shortest
counterexample (docs/model.md).

Exit status: 0 when every verdict equals the file's [expect] table; 1 when
a model finds a torn snapshot the table says is ``never`` (a forbidden
outcome, found by the checker); 3 when the table says ``sometimes`` and the
checker finds no tear (too little evidence: try more --sections); 2 for bad
usage.  1 wins over 3."""

from __future__ import annotations

import argparse
import json
import sys

from kmallocwd.commands.common import add_build_option, add_protocol_options, specs_from
from kmallocwd.errors import EXIT_FORBIDDEN, EXIT_INCONCLUSIVE, EXIT_OK, UsageError

MAX_SECTIONS = 4
MAX_RETRIES = 2


def add_model_args(p: argparse.ArgumentParser, models_default: str = "all") -> None:
    p.add_argument("--model", "-m", default=models_default, metavar="sc|x86|weak|all",
                   help=f"the memory model(s) (default {models_default})")
    p.add_argument("--sections", "-k", default="2", metavar="K",
                   help=f"write sections by the writer, 1..{MAX_SECTIONS} (default 2)")
    p.add_argument("--retries", default="0", metavar="N",
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
        "no tear was found, 2 for bad usage.")
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
                   help="print GitHub ::error lines at the counterexample's operations "
                   "(default: on when GITHUB_ACTIONS=true)")
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
        if v != exp and v == "sometimes":
            c.failure = f"{observation(r)}: a torn snapshot [expect] says never happens"
        elif v != exp:
            c.skipped = f"{observation(r)}: [expect] says sometimes, no tear found"
        cases.append(c)
    return cases


def annotations(results) -> list[tuple[str, int, str]]:
    """The operations of each differing model's counterexample, at their lines."""
    from kmallocwd.model.report import trace_rows, verdict

    out = []
    for r in results:
        if verdict(r) == r.spec.expect.get(r.model) or r.witness is None:
            continue
        for row in trace_rows(r):
            d = row.to_dict()
            if d.get("line"):
                out.append((r.spec.path, int(d["line"]),
                            f"{r.model} counterexample step {d.get('step', '')}: "
                            f"{d.get('thread', '')} {d.get('operation', '')} "
                            f"{d.get('value', '')} {d.get('effect', '')}".strip()))
    return out


def exit_status(results) -> int:
    from kmallocwd.model.report import verdict
    status = EXIT_OK
    for r in results:
        exp = r.spec.expect.get(r.model)
        v = verdict(r)
        if v == exp:
            continue
        if v == "sometimes":
            return EXIT_FORBIDDEN
        status = EXIT_INCONCLUSIVE
    return status


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
    docs, status, cases, notes = [], EXIT_OK, [], []
    for spec in specs:
        results = [explore(spec, m, k, retries) for m in models]
        binary = binary_verdict(spec, args.build)
        st = exit_status(results)
        status = st if status == EXIT_OK or st == EXIT_FORBIDDEN else status
        if args.json != "-":
            sys.stdout.write(render_text(results, traces=not args.no_trace, binary=binary)
                             + "\n")
        docs.append({**to_json(results), "binary": binary.to_dict()})
        cases += junit_cases(results)
        notes += annotations(results)
    doc = docs[0] if len(docs) == 1 else {"schema": "kmallocwd.check-all/1", "protocols": docs}
    if annotate.wanted(args.annotate):
        annotate.emit(notes, sys.stderr if args.json == "-" else sys.stdout)
    if not outpath.write_outputs("kmallocwd check", [
            (json_t, lambda: json.dumps(doc, indent=2) + "\n"),
            (junit_t, lambda: junit.to_xml("kmallocwd check", cases))]):
        return EXIT_WRITE_FAILED
    if args.json != "-":
        words = {EXIT_OK: "OK: every verdict equals [expect]",
                 EXIT_FORBIDDEN: "FAIL: a model finds a tear that [expect] says never happens",
                 EXIT_INCONCLUSIVE: "INCONCLUSIVE: [expect] says sometimes, no tear found "
                 "(more --sections?)"}
        sys.stdout.write(words[status] + "\n")
    return status
