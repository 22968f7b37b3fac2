"""``kmallocwd stress``: writers and the watchdog's reader on shared slots,
and a jcstress-style histogram of what the reader saw, with the run's power."""

from __future__ import annotations

import argparse
import sys

from kmallocwd import limits
from kmallocwd.cli.argtypes import limit
from kmallocwd.cli.commands.common import (add_build_option, add_protocol_options,
                                          add_report_options, report_outputs,
                                          spec_from)
from kmallocwd.errors import UsageError

MAX_THREADS = limits.MAX_THREADS
MAX_ITERATIONS = limits.MAX_ITERATIONS
CLOCK_S = 2.0  # a single run this long gets a progress bar on a terminal


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "stress",
        help="hammer shared slots with writers and a reader; histogram of outcomes",
        description="Run writer threads (allocating tasks: start_memalloc_timer/"
        "stop_memalloc_timer in a C loop) against one reader thread (the watchdog's scan, "
        "is_stalling_task in a C loop), both with the GIL released, and print how many "
        "snapshots were consistent, torn (by kind) or rejected, and how many reads a write "
        "section overlapped (the run's power).  Exit 0: no forbidden outcome, with power; "
        "1: a forbidden outcome seen; 2: bad usage; 3: inconclusive (no accepted snapshot, "
        "or fewer overlaps than --min-overlaps); 4: the model says the protocol can tear, "
        "not observed here; 74: the JSON could not be written; 130/143: interrupted.",
    )
    add_protocol_options(p, default="v3")
    p.add_argument("--threads", "-t", type=limit(limits.THREADS), default=1,
                   help=f"writer threads, each owning slots i, i+T, ... (default 1, at most "
                   f"{MAX_THREADS})")
    p.add_argument("--slots", "-s", type=limit(limits.SLOTS), default=1,
                   help=f"slots, one per emulated task (default 1, at most {limits.MAX_SLOTS}, "
                   "or what memory allows)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--duration", "-d", type=limit(limits.DURATION), default=None,
                   help="seconds to run, counted from when every thread runs (default 5)")
    g.add_argument("--iterations", "-n", type=limit(limits.ITERATIONS), default=None,
                   help=f"start/stop pairs per writer thread, instead of a duration (at most "
                   f"{MAX_ITERATIONS:.0e})")
    p.add_argument("--batch", type=limit(limits.BATCH), default=65536,
                   help="start/stop pairs per call into the C loop (default 65536)")
    p.add_argument("--pin", action="store_true",
                   help="pin the reader and the writers to CPUs, round-robin")
    p.add_argument("--hold-ns", type=limit(limits.HOLD_NS), default=0,
                   help="nanoseconds spent inside each write section, spinning on the TSC at "
                   "a compiler barrier the section already has (nothing in a section with "
                   "none); the protocol's code is the same with or without it (default 0)")
    p.add_argument("--alloc-ns", type=limit(limits.ALLOC_NS), default=0,
                   help="nanoseconds each allocation lasts between start_memalloc_timer() and "
                   "stop_memalloc_timer(), so the reader finds valid records (default 0)")
    p.add_argument("--preempt", type=limit(limits.PREEMPT), default=0.0,
                   help="probability of sched_yield() inside a write section, where "
                   "--hold-ns spins (default 0)")
    add_build_option(p)
    p.add_argument("--seed", type=limit(limits.SEED), default=1,
                   help="seed of the writers' --preempt draws (default 1)")
    p.add_argument("--min-overlaps", type=limit(limits.MIN_OVERLAPS), default=1,
                   help="reads that a write section overlapped needed for a PASS; fewer is "
                   "INCONCLUSIVE, exit 3 (default 1)")
    p.add_argument("--until-torn", action="store_true",
                   help="end each run at its first torn snapshot (time-to-detection runs)")
    p.add_argument("--repeat", "-r", type=limit(limits.REPEAT), default=1,
                   help="run N times and add the runs up; the report gives how many runs saw "
                   "a torn snapshot and the median and worst time to the first, a run "
                   "without one counting as censored at its duration (default 1)")
    p.add_argument("--expect", type=limit(limits.EXPECT), metavar="torn", default=None,
                   help="'torn': succeed only if every run sees a torn snapshot (prove a known "
                   "bug is still found)")
    add_report_options(
        p,
        json="also write the full report as JSON to PATH ('-': stdout, instead "
             "of the table)",
        junit="also write a JUnit XML report to PATH: one testcase per run, a "
              "failure for a forbidden outcome or an unobserved tear, skipped when "
              "inconclusive",
        annotate="print GitHub Actions ::error lines pointing at the protocol file: "
                 "the line the model blames, the forbidden outcomes seen, then a summary "
                 "(at most 10; default: on when GITHUB_ACTIONS=true)")
    p.add_argument("--quiet", "-q", action="store_true",
                   help="no progress on stderr (on a terminal: a bar over the runs with "
                   f"--repeat, over the seconds of a single run of {CLOCK_S:g} s or more)")
    p.set_defaults(func=run)


def check_args(args: argparse.Namespace) -> None:
    """The options' values that depend on each other or on this machine."""
    from kmallocwd.api import max_slots

    limit = max_slots()
    if args.slots > limit:
        raise UsageError(f"--slots {args.slots} is more than memory allows "
                         f"(accepted: 1 to {limit})")
    if args.threads > args.slots:
        raise UsageError(f"--threads {args.threads} is more than --slots {args.slots} "
                         f"(accepted: 1 to {args.slots}; each slot has one writer, its task)")


def run(args: argparse.Namespace) -> int:
    from kmallocwd import annotate, api, interrupt
    from kmallocwd.errors import EXIT_WRITE_FAILED
    from kmallocwd.outpath import write_outputs
    from kmallocwd.cli.progress import Clock, Progress

    check_args(args)
    spec = spec_from(args, "v3")
    build = args.build
    duration = args.duration
    if duration is None and args.iterations is None:
        duration = 5.0
    inputs = [args.protocol_file] if args.protocol_file else []
    target, junit, cq = report_outputs(args, inputs)
    single = args.repeat == 1 and (duration or 0) >= CLOCK_S
    torn = [0]

    def on_run(i: int, result) -> None:
        torn[0] += 1 if result.torn else 0
        bar.update(1, torn=torn[0])

    values = dict(duration=duration, threads=args.threads, slots=args.slots,
                  iterations=args.iterations, batch=args.batch, pin=args.pin,
                  hold_ns=args.hold_ns, alloc_ns=args.alloc_ns, preempt=args.preempt,
                  seed=args.seed, until_torn=args.until_torn, repeat=args.repeat,
                  min_overlaps=args.min_overlaps, expect=args.expect, build=build)
    plan = api.plan_stress(spec, **values)  # compiles a protocol file on first use
    report = None
    try:
        what = f"{duration:g} s" if duration else f"{args.iterations} pairs/writer"
        if not args.quiet:
            print(f"kmallocwd stress: {spec.name} ({build} build), {args.threads} writer(s), "
                  f"{args.slots} "
                  f"slot(s), {what}" + (f" x {args.repeat} runs" if args.repeat > 1 else "")
                  + "...", file=sys.stderr, flush=True)
        with Progress(args.repeat, "runs", quiet=args.quiet or args.repeat == 1) as bar, \
                Clock(duration or 0, quiet=args.quiet or not single, desc=spec.name):
            report = api.run_planned(plan, on_run)
    except KeyboardInterrupt as exc:  # before the first run began
        if report is None:
            report = api.interrupted_report(plan, exc)
    interrupt.defer()  # from here a signal is recorded: the report is written whole
    if args.json != "-":
        sys.stdout.write(report.text())
        sys.stdout.flush()
    findings = (report.findings()
                if annotate.wanted(args.annotate) or cq is not None else [])
    if annotate.wanted(args.annotate):  # with --json - on stdout, on stderr (JSON stays JSON)
        annotate.emit(findings, annotate.Summary(
            f"kmallocwd stress {annotate.relpath(args.protocol_file or '') or spec.name}",
            report.verdict, report.exit_status,
            [p for p in (args.json, args.junit, args.codequality) if p and p != "-"],
            spec.path), sys.stderr if args.json == "-" else sys.stdout)
    ok = write_outputs("kmallocwd stress", [
        (target, report.to_json),
        (junit, report.to_junit),
        (cq, lambda: annotate.codequality(findings))])
    return report.exit_status if ok else EXIT_WRITE_FAILED
