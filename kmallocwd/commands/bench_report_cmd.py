"""``kmallocwd bench-report FILE.json``: one ``make bench`` run as tables of
ns per operation, each beside its ratio to seqcount; ``--png`` for a chart."""

from __future__ import annotations

import argparse
import json
import sys

from kmallocwd import bench_report, protocols
from kmallocwd.argtypes import choice


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bench-report",
        help="report one `make bench` run: ns per operation and ratio to seqcount",
        description="Read the JSON file that one `make bench` run wrote (pytest-benchmark's, "
        "under bench/results/) and print each figure timed inside C (median ns per "
        "operation) with its ratio to the baseline protocol beside it: the writer's "
        "start/stop pair and the reader's slot read, alone and against the other side, "
        "by slots and writer threads; the watchdog's scan by N slots; the Python-driven "
        "calls; and the key figures.  To compare two runs, use pytest-benchmark's own "
        "--benchmark-compare (see the README).",
    )
    p.add_argument("file", metavar="FILE.json",
                   help="the JSON file of one run (make bench saves them under bench/results/)")
    p.add_argument("--baseline", "-b", default=bench_report.BASELINE,
                   type=choice(protocols.NAMES, "protocol"),
                   help=f"protocol the ratios are taken to (default {bench_report.BASELINE}): "
                   f"{', '.join(protocols.NAMES)}")
    p.add_argument("--json", action="store_true",
                   help="print the report as JSON on stdout instead of the tables")
    p.add_argument("--png", metavar="PATH", default=None,
                   help="also write a chart to PATH (needs the [plot] extra: matplotlib): "
                   "ns per operation by protocol and role, scan ns per slot against N")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from kmallocwd import outpath
    from kmallocwd.errors import UsageError

    png = None
    if args.png is not None:  # checked before the input is read
        if args.png not in ("", "-") and not args.png.lower().endswith(".png"):
            raise UsageError(f"--png {outpath.show(args.png)}: not a .png file name "
                             "(accepted: a writable file path ending in .png)")
        if args.png == "-":
            raise UsageError("--png -: a chart cannot go to stdout (accepted: a writable "
                             "file path ending in .png)")
        png = outpath.check_output(args.png, "--png", [args.file])
    try:
        report = bench_report.load(args.file)
    except bench_report.BenchReportError as exc:
        raise UsageError(str(exc)) from None
    if png is not None:
        try:
            outpath.write_file(png, lambda tmp: bench_report.plot(report, tmp, args.baseline))
        except bench_report.PlotUnavailable as exc:
            raise UsageError(str(exc)) from None
    if args.json:
        json.dump(bench_report.to_dict(report, args.baseline), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(bench_report.render(report, args.baseline))
        if png is not None:
            sys.stdout.write(f"chart written to {args.png}\n")
    return 0
