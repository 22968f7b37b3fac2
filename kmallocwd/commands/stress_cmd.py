"""``kmallocwd stress``: writers and the watchdog's reader on shared slots,
and a jcstress-style histogram of what the reader saw."""

from __future__ import annotations

import argparse
import sys

from typing import TYPE_CHECKING

from kmallocwd import protocols
from kmallocwd.argtypes import choice, float_range, int_range

if TYPE_CHECKING:  # numpy and the C extension load when a run starts, not before
    from kmallocwd.stress import StressConfig, StressResult

MAX_THREADS = 1024
# --iterations, like --duration (86,400 s), is capped: 10^12 pairs per writer
# is over an hour of the bare C loop here (~4 ns a pair), days with --alloc-ns.
MAX_ITERATIONS = 10**12


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "stress",
        help="hammer shared slots with writers and a reader; histogram of outcomes",
        description="Run writer threads (allocating tasks: start_memalloc_timer/"
        "stop_memalloc_timer in a C loop) against one reader thread (the watchdog's scan, "
        "is_stalling_task in a C loop), both with the GIL released, and print how many "
        "snapshots were consistent, torn, or rejected.  Exit 0 if no outcome forbidden for "
        "the protocol was seen, 1 if one was, 2 on bad usage, 130 on Ctrl-C.",
    )
    p.add_argument("--protocol", "-p", default="v3", type=choice(protocols.NAMES, "protocol"),
                   help=f"protocol variant (default v3): {', '.join(protocols.NAMES)}")
    p.add_argument("--threads", "-t", type=int_range(1, MAX_THREADS), default=1,
                   help="writer threads, each owning slots i, i+T, ... (default 1)")
    p.add_argument("--slots", "-s", type=int_range(1), default=1,
                   help="slots, one per emulated task (default 1)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--duration", "-d", type=float_range(0, 86400, lo_open=True), default=None,
                   help="seconds to run (default 5)")
    g.add_argument("--iterations", "-n", type=int_range(1, MAX_ITERATIONS), default=None,
                   help="start/stop pairs per writer thread, instead of a duration "
                   "(at most 10^12)")
    p.add_argument("--batch", type=int_range(1, 1 << 30), default=65536,
                   help="start/stop pairs per call into the C loop (default 65536)")
    p.add_argument("--pin", action="store_true",
                   help="pin the reader and the writers to CPUs, round-robin")
    p.add_argument("--hold-ns", type=int_range(0, 10**9), default=0,
                   help="nanoseconds spent inside each write section (default 0)")
    p.add_argument("--alloc-ns", type=int_range(0, 10**9), default=0,
                   help="nanoseconds each allocation lasts between start_memalloc_timer() and "
                   "stop_memalloc_timer(), so the reader finds valid records (default 0)")
    p.add_argument("--preempt", type=float_range(0, 1), default=0.0,
                   help="probability of sched_yield() inside a write section (default 0)")
    p.add_argument("--seed", type=int_range(0, 2**63 - 1), default=1,
                   help="seed of the writers' --preempt draws (default 1)")
    p.add_argument("--until-torn", action="store_true",
                   help="end each run at its first torn snapshot (time-to-detection runs)")
    p.add_argument("--repeat", "-r", type=int_range(1, 100000), default=1,
                   help="run N times and add the runs up; the report gives how many runs saw "
                   "a torn snapshot and the median and worst time to the first (default 1)")
    p.add_argument("--expect", choices=[protocols.TORN], default=None,
                   help="'torn': succeed only if a torn snapshot is seen (prove a known bug "
                   "is still found)")
    p.add_argument("--json", metavar="PATH", default=None,
                   help="also write the full report as JSON to PATH ('-': stdout, instead "
                   "of the table)")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress on stderr")
    p.set_defaults(func=run)


def config_from(args: argparse.Namespace) -> StressConfig:
    from kmallocwd.errors import UsageError
    from kmallocwd.slots import max_slots
    from kmallocwd.stress import StressConfig

    limit = max_slots()
    if args.slots > limit:
        raise UsageError(f"--slots {args.slots} is more than memory allows "
                         f"(accepted: 1 to {limit})")
    if args.threads > args.slots:
        raise UsageError(f"--threads {args.threads} is more than --slots {args.slots} "
                         f"(accepted: 1 to {args.slots}; each slot has one writer, its task)")
    duration = args.duration
    if duration is None and args.iterations is None:
        duration = 5.0
    return StressConfig(protocol=args.protocol, threads=args.threads, slots=args.slots,
                        duration=duration, iterations=args.iterations, batch=args.batch,
                        pin=args.pin, hold_ns=args.hold_ns, alloc_ns=args.alloc_ns, preempt=args.preempt,
                        seed=args.seed, until_torn=args.until_torn)


def run(args: argparse.Namespace) -> int:
    import json

    from kmallocwd import outpath, stress_report
    from kmallocwd.errors import UsageError
    from kmallocwd.stress import run_stress

    cfg = config_from(args)
    target = outpath.check_output(args.json, "--json") if args.json is not None else None
    runs: list[StressResult] = []
    for i in range(args.repeat):
        if not args.quiet:
            what = f"{cfg.duration:g} s" if cfg.duration else f"{cfg.iterations} pairs/writer"
            rep = f" (run {i + 1}/{args.repeat})" if args.repeat > 1 else ""
            print(f"kmallocwd stress: {cfg.protocol}, {cfg.threads} writer(s), {cfg.slots} "
                  f"slot(s), {what}{rep}...", file=sys.stderr)
        try:
            runs.append(run_stress(cfg))
        except MemoryError as exc:
            raise UsageError(f"--slots {cfg.slots}: {exc}")
        if runs[-1].interrupted:
            break
    if args.json != "-":
        sys.stdout.write(stress_report.render(runs, args.expect))
        sys.stdout.flush()
    if target is not None:  # WriteFailed: exit 74, the report is on stdout
        outpath.write_text(target, json.dumps(stress_report.to_dict(runs, args.expect),
                                              indent=2) + "\n")
    if runs[-1].interrupt_status is not None:
        return runs[-1].interrupt_status
    return stress_report.verdict(runs, args.expect)[0]
