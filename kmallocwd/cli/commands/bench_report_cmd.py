"""``kmallocwd bench-report FILE.json``: one ``make bench`` run as tables of
ns per operation, each beside its ratio to seqcount, and PNG charts next to
the JSON (``--png BASE`` elsewhere, ``--no-png`` none)."""

from __future__ import annotations

import argparse
import json
import sys

from kmallocwd import benchreport, protocols
from kmallocwd.cli.argtypes import choice
from kmallocwd.benchreport import plot as charts
from kmallocwd.errors import UsageError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bench-report",
        help="report one `make bench` run: tables of ns per operation and ratios, PNG charts",
        description="Read the JSON file that one `make bench` run wrote (pytest-benchmark's, "
        "under bench/results/; regular files of at most "
        f"{benchreport.SIZE_LIMIT // 2**20} MiB) and print each figure timed inside C "
        "(median ns per operation) with its ratio to the baseline protocol beside it: the "
        "writer's start/stop pair and the reader's slot read, alone and against the other "
        "side, by slots and writer threads; the writer pair against the patch's start/stop "
        "as a plain C loop (the reference); the watchdog's scan by N slots against the "
        "copy-bandwidth limit; the reader against the writers' share of time in write "
        "sections; the Python-driven calls; and the key figures.  It also writes PNG charts "
        "next to the JSON (for FILE.json: FILE-ns-per-op.png, FILE-threads.png, FILE-scan.png, "
        "FILE-duty.png; a chart whose data the file lacks is skipped with a note on "
        "stderr).  A malformed file gets one line naming the key, exit 2; figures of an "
        "unknown kind, role or protocol are dropped with a warning naming them.  To "
        "compare two runs, use pytest-benchmark's own --benchmark-compare (see docs/benchmarks.md).",
    )
    p.add_argument("file", metavar="FILE.json",
                   help="the JSON file of one run (make bench saves them under bench/results/)")
    p.add_argument("--baseline", "-b", default=None, metavar="PROTOCOL",
                   type=choice(protocols.NAMES, "protocol"),
                   help=f"protocol the ratios are taken to, one of the file's (default "
                   f"{benchreport.BASELINE})")
    p.add_argument("--json", action="store_true",
                   help="print the report as JSON on stdout instead of the tables")
    p.add_argument("--png", metavar="BASE", default=None,
                   help="write the charts to BASE-<chart>.png instead of next to the JSON "
                   "(a trailing .png is dropped from BASE); an error if they cannot be written")
    p.add_argument("--no-png", action="store_true", help="write no chart")
    p.set_defaults(func=run)


def _baseline(report: benchreport.Run, asked: str | None) -> str:
    have = report.protocols()
    if asked is not None:
        if asked not in have:
            raise UsageError(f"--baseline {asked!r} is not a protocol of {report.path} "
                             f"(its protocols: {', '.join(have) or 'none'})")
        return asked
    if benchreport.BASELINE in have or not have:
        return benchreport.BASELINE
    sys.stderr.write(f"kmallocwd bench-report: note: {report.path} has no "
                     f"{benchreport.BASELINE} figure; ratios are to {have[0]}\n")
    return have[0]


def check_png_base(base: str, infile: str) -> None:
    """Before the input is read: --png BASE names .png charts that can be
    written (kmallocwd.outpath: no device, FIFO, directory, symlink to one,
    or input file is replaced)."""
    from pathlib import Path

    from kmallocwd import outpath

    suffix = Path(base).suffix
    if base == "-" or (suffix and suffix.lower() not in (".png", ".json")):
        raise UsageError(f"--png {outpath.show(base)}: charts are PNG files written to "
                         "BASE-<chart>.png (accepted: a path with no suffix, or ending in .png)")
    for path in charts.chart_paths(base).values():
        # checked now, written later by the chart writer (which checks it again)
        outpath.discard(outpath.check_output(str(path), "--png", [infile]))


def run(args: argparse.Namespace) -> int:
    if args.png is not None and args.no_png:
        raise UsageError("--png and --no-png: choose one")
    if args.png is not None and not args.png.strip():
        raise UsageError("--png '': empty path")
    if args.png is not None:
        check_png_base(args.png, args.file)
    report = benchreport.load(args.file)  # BenchReportError is a UsageError
    for w in report.warnings:
        sys.stderr.write(f"kmallocwd bench-report: warning: {w}\n")
    baseline = _baseline(report, args.baseline)
    written, notes = [], []
    if not args.no_png:
        explicit = args.png is not None
        base = args.png if explicit else args.file
        try:
            written, notes = charts.plot_all(report, base, baseline)
        except benchreport.PlotUnavailable as exc:
            if explicit:
                raise UsageError(f"--png: {exc}") from None
            notes = [f"no charts: {exc}"]
        except OSError as exc:
            where = getattr(exc, "filename", None) or base
            if explicit:
                raise UsageError(f"--png {args.png}: cannot write {where} "
                                 f"({exc.strerror or exc})") from None
            notes = [f"no charts: cannot write {where} ({exc.strerror or exc}); "
                     "--png BASE writes them elsewhere"]
    for n in notes:
        sys.stderr.write(f"kmallocwd bench-report: note: {n}\n")
    if args.json:
        json.dump(benchreport.to_dict(report, baseline), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(benchreport.render(report, baseline))
        for path in written:
            sys.stdout.write(f"chart written to {path}\n")
    return 0
