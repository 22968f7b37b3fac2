"""``kmallocwd run``: the patch's system, live: tasks allocate, stall, die;
the kmallocwd thread prints what the patch's kernel thread would print."""

from __future__ import annotations

import argparse
import sys

from kmallocwd import protocols
from kmallocwd.cli.argtypes import choice, float_range, int_range
from kmallocwd.watchdog.carith import ULONG_MAX
from kmallocwd.watchdog.workload import builtin_names, resolve

DEFAULT_SCENARIO = "oom-livelock"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "run",
        help="run a scenario: tasks allocate, the watchdog prints the patch's reports",
        description="Boot an emulated machine whose tasks (one Python thread each) run a "
        "workload through a model of Linux 4.4's page allocator (watermarks, kswapd, direct "
        "reclaim, the OOM killer, locks), the slow path bracketed by start_memalloc_timer()/"
        "stop_memalloc_timer() on their own slot, while a kmallocwd thread runs the patch's loop "
        "and prints its MemAlloc-Info/MemAlloc lines, traces and show_mem(), then a summary "
        "(which stalling tasks made progress, the run's classification, the comparison "
        "detectors). Exit 0, 2 on bad usage or a bad scenario file, 130 on Ctrl-C, 143 on "
        "SIGTERM, 129 on SIGHUP (after the summary).",
    )
    p.add_argument("--scenario", "-s", default=DEFAULT_SCENARIO, metavar="NAME|FILE",
                   help="a built-in scenario (see 'kmallocwd scenarios') or a TOML scenario "
                   f"file (default {DEFAULT_SCENARIO})")
    p.add_argument("--protocol", "-p", default="v3", type=choice(protocols.C_NAMES, "protocol"),
                   help="the slot protocol the tasks write and the watchdog reads with "
                   f"(default v3, the patch's): {', '.join(protocols.C_NAMES)}")
    p.add_argument("--timeout", "-t", type=float_range(0, 86400), default=None, metavar="N",
                   help="the watchdog's timeout in seconds, like the kmallocwd= boot parameter "
                   "(default: the scenario's, 10 for the built-ins); 0 disables the watchdog "
                   "thread while the slots still keep each task's last request. Fractions are "
                   "accepted (the boot parameter takes whole seconds). The workload does not "
                   "change with it")
    p.add_argument("--time-scale", type=float_range(0, 1000, lo_open=True), default=None,
                   metavar="K", help="multiply the workload's times by K and divide its rates "
                   "by K (default 1); K < 1 runs the workload faster, for tests")
    p.add_argument("--detectors", type=_detectors, default=(), metavar="LIST",
                   help="comparison detectors on the same run, comma-separated: khungtaskd, "
                   "warn_alloc, psi (or all); the summary shows which fired and when")
    p.add_argument("--hung-task-timeout", type=float_range(0, 86400, lo_open=True),
                   default=120.0, metavar="S", help="khungtaskd's hung_task_timeout_secs "
                   "(default 120)")
    p.add_argument("--warn-alloc-stall", type=float_range(0, 86400, lo_open=True),
                   default=10.0, metavar="S", help="warn_alloc's stall_timeout step (4.9: 10 s, "
                   "fixed)")
    p.add_argument("--hz", type=int_range(1, 100000), default=1000,
                   help="jiffies per second (default 1000)")
    p.add_argument("--duration", "-d", type=float_range(0, 86400, lo_open=True), default=None,
                   metavar="S", help="end the run after S seconds (default: run until Ctrl-C)")
    p.add_argument("--seed", type=int_range(0, 2**63 - 1), default=1,
                   help="seed of the scenario's random draws (default 1)")
    p.add_argument("--initial-jiffies", type=int_range(0, ULONG_MAX), default=None,
                   metavar="J", help="jiffies at boot (default: the kernel's INITIAL_JIFFIES, "
                   "-300*HZ as 32 bits); e.g. 0xffffffffffffff00 to see jiffies wrap")
    p.add_argument("--log", metavar="FILE", default=None,
                   help="write the log to FILE instead of stdout (the summary is also "
                   "printed on stdout)")
    p.add_argument("--json", action="store_true",
                   help="write the log as JSON Lines (boot, each report, slots, summary) "
                   "instead of text")
    p.add_argument("--dump-slots", action="store_true",
                   help="at exit, print every task's slot (its last request), as a vmcore "
                   "would keep it; useful with --timeout 0")
    p.add_argument("--quiet", "-q", action="store_true",
                   help="no status line on stderr")
    p.set_defaults(func=run)


def _detectors(text: str) -> tuple[str, ...]:
    from kmallocwd.watchdog.detectors import NAMES, parse_names

    try:
        return parse_names(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{exc} (accepted: a comma-separated list of "
                                         f"{', '.join(NAMES)}, or all)") from None


def _scenario_path(spec: str) -> str:
    """The file a scenario is read from (a built-in's too): the run's input."""
    if spec in builtin_names():
        from importlib import resources

        from kmallocwd.watchdog.scenario import BUILTIN_DIR
        return str(resources.files("kmallocwd").joinpath(BUILTIN_DIR, f"{spec}.toml"))
    return spec


def run(args: argparse.Namespace) -> int:
    from kmallocwd import interrupt, outpath
    from kmallocwd.errors import EXIT_WRITE_FAILED

    scen = resolve(args.scenario)  # a ScenarioError is a usage error: exit 2
    target = None
    if args.log is not None:
        target = outpath.check_output(args.log, "--log", [_scenario_path(args.scenario)])
    from kmallocwd.watchdog.run import Run, RunConfig  # numpy, the C extension: after the checks

    cfg = RunConfig(scenario=scen, protocol=args.protocol, hz=args.hz, timeout_s=args.timeout,
                    duration_s=args.duration, seed=args.seed,
                    initial_jiffies=args.initial_jiffies, json=args.json,
                    dump_slots=args.dump_slots, time_scale=args.time_scale,
                    detectors=args.detectors, hung_task_timeout_s=args.hung_task_timeout,
                    warn_alloc_s=args.warn_alloc_stall)
    out = sys.stdout if target is None else outpath.open_stream(target)
    run_ = Run(cfg, out)
    interrupted: str | None = None
    status = 0
    try:
        if not args.quiet:
            wd = (f"timeout {cfg.timeout:g} s = {cfg.timeout_jiffies} jiffies"
                  if cfg.timeout_jiffies else "watchdog disabled (--timeout 0)")
            scaled = f", workload times x{cfg.scale:g}" if cfg.scale != 1 else ""
            until = (f"for {cfg.duration_s:g} s" if cfg.duration_s else "until Ctrl-C")
            print(f"kmallocwd run: scenario {scen.name} ({scen.tasks} tasks), protocol "
                  f"{cfg.protocol}, HZ={cfg.hz}, {wd}{scaled}; running {until}...",
                  file=sys.stderr, flush=True)
        run_.boot()
        run_.wait()
        interrupt.defer()  # from here on a signal is recorded, not raised
    except KeyboardInterrupt as exc:
        interrupt.defer()
        interrupted = interrupt.signal_name(interrupt.signum_of(exc))
        status = interrupt.exit_status(exc)
    # However many signals come now, the summary is written.
    summary = run_.finish(interrupted, record=False)
    if interrupted is None and interrupt.received() is not None:
        interrupted = interrupt.signal_name(interrupt.received())
        summary.interrupted = interrupted
        status = interrupt.signal_status(interrupt.received())
    lines = summary.lines()
    if out is not sys.stdout:
        sys.stdout.write("\n".join(lines) + "\n")
    elif cfg.json and not args.quiet:
        sys.stderr.write("\n".join(lines) + "\n")
    sys.stdout.flush()
    if outpath.stdout_failure() is not None:
        status = EXIT_WRITE_FAILED  # cli.main() says so on stderr
    run_.log.text(lines)
    record = summary.to_json()
    record["exit_status"] = status
    run_.log.record(record)
    run_.log.flush()
    if target is not None:
        outpath.commit(target)  # WriteFailed: exit 74; the summary is on stdout
    if run_.errors:
        raise run_.errors[0]
    return status
