"""``kmallocwd ablate``: which ordering annotations a protocol needs, on
which model, and what this machine's stress sees of each variant (-d
SECONDS each; with -d 0, the model columns only)."""

from __future__ import annotations

import argparse
import sys

from kmallocwd import limits
from kmallocwd.cli.argtypes import limit
from kmallocwd.cli.commands.check_cmd import models_from
from kmallocwd.cli.commands.common import (add_build_option, add_protocol_options,
                                          add_report_options, report_outputs,
                                          specs_from)
from kmallocwd.errors import UsageError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "ablate",
        help="drop each ordering annotation of a protocol and check the variant",
        description="For each ordering annotation of the protocol (smp_wmb/smp_rmb/smp_mb, "
        "barrier(), acquire/release, READ_ONCE/WRITE_ONCE, lock pair), the variant without it "
        "(or weakened to a plain access) and its verdict under each model; each row is named by "
        "the annotation's line in the protocol file. With -d SECONDS, each variant is also "
        "compiled and stressed here (1 writer, 1 slot, --alloc-ns 100 --hold-ns 50, until its "
        "first tear): torn count, time to the first tear, overlaps, and this machine's "
        "detection power (the share of the variants the model calls broken that stress saw "
        "tear). 'kmallocwd litmus --ablation N' writes the N-th variant (row) as a litmus "
        "test.  Exit 0; 1 if the protocol as written can tear under a model its [expect] "
        "says never (then annotated: the line that counterexample blames); 2 on bad usage; "
        "130/143 (129 SIGHUP) interrupted, after the rows done.")
    add_protocol_options(p, required=True)
    p.add_argument("--model", "-m", default="all", metavar="sc|x86|weak|all")
    p.add_argument("-d", "--duration", type=limit(limits.ABLATE_DURATION), default=0.0,
                   metavar="SECONDS",
                   help="stress seconds per variant, 0 to 3600 (default 0: model only)")
    add_build_option(p)
    add_report_options(
        p,
        json="also write the table as JSON to PATH ('-': stdout, instead of the table)",
        junit="also write JUnit XML: one testcase per annotation",
        annotate="print GitHub annotations for what the exit status says: with exit "
                 "1, an ::error at the line the counterexample of the protocol as written "
                 "blames; then a summary naming the necessary annotations (default: on "
                 "when GITHUB_ACTIONS=true)")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from kmallocwd import annotate, api, interrupt, outpath
    from kmallocwd.errors import EXIT_WRITE_FAILED
    from kmallocwd.cli.progress import Progress

    spec = specs_from(args)[0]
    models = models_from(args.model)
    try:
        duration = float(args.duration)
    except ValueError:
        duration = -1.0
    if not 0 <= duration <= 3600:
        raise UsageError(f"-d {args.duration!r} (accepted: seconds from 0 to 3600)")
    inputs = [args.protocol_file] if args.protocol_file else []
    json_t, junit_t, cq_t = report_outputs(args, inputs)
    total = 1 + len(spec.ordering_ops())
    with Progress(total, "variants", quiet=args.quiet or duration == 0,
                  desc=f"ablate {spec.name}") as bar:
        rep = api.ablate(spec, duration=duration, model=models,
                         on_row=lambda i, n: bar.update(1), build=args.build)
    interrupt.defer()  # from here a signal is recorded: the report is written whole
    if args.json != "-":
        sys.stdout.write(rep.text())
    findings = rep.findings()
    if annotate.wanted(args.annotate):
        annotate.emit(findings, annotate.Summary(
            f"kmallocwd ablate {annotate.relpath(args.protocol_file or '') or args.protocol}",
            rep.verdict, rep.exit_status,
            [p for p in (args.json, args.junit, args.codequality) if p and p != "-"],
            spec.path), sys.stderr if args.json == "-" else sys.stdout)
    if not outpath.write_outputs("kmallocwd ablate", [
            (json_t, rep.to_json),
            (junit_t, rep.to_junit),
            (cq_t, lambda: annotate.codequality(findings))]):
        return EXIT_WRITE_FAILED
    return rep.exit_status
