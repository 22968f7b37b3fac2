"""``kmallocwd campaign PLAN.toml``: a matrix of stress (and ablate/check)
cells fanned out on Dask, merged into one report and one verdict.  A thin
layer over kmallocwd.campaign."""

from __future__ import annotations

import argparse
import json
import os
import sys

from kmallocwd.cli.argtypes import int_range
from kmallocwd.cli.commands.common import add_report_options, report_outputs

RESULTS_LIMIT = 1 << 30   # bytes of a results file read back to resume


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "campaign",
        help="run a plan of stress cells on a Dask cluster; merged histograms, one verdict",
        description="Expand PLAN.toml (protocols x threads x slots x knobs x durations x "
        "seeds x repeats, plus ablate and check cells) into cells and run each in a "
        "subprocess on a Dask worker: an embedded LocalCluster (one worker process per "
        "core) or, with --scheduler, any Dask cluster.  The histograms are summed per "
        "protocol x configuration, with a per-machine breakdown.  With --json the results "
        "file is kept up to date as cells finish, and a second run resumes it.  Exit 0 "
        "pass, 1 a forbidden outcome seen anywhere, 2 bad usage or plan, 3 inconclusive "
        "(a cell failed, was inconclusive or was not run), 4 a cell did not observe what "
        "the model says the protocol can do, 69 the --scheduler is not a Dask scheduler or "
        "does not answer within 20 s, 130/143 interrupted (partial results written). "
        "Needs pip install 'kmallocwd[campaign]'.",
    )
    p.add_argument("plan", metavar="PLAN.toml", help="the campaign plan (see docs/campaigns.md)")
    p.add_argument("--scheduler", metavar="ADDRESS", default=None,
                   help="a Dask scheduler (tcp://host:8786, or tls://host:8786 with the "
                   "client's TLS files in Dask's configuration, docs/campaigns.md); workers are started "
                   "with `dask worker ADDRESS --nthreads 1` on machines with kmallocwd installed "
                   "(default: an embedded LocalCluster, private to this run: TLS with "
                   "temporary credentials, no dashboard)")
    p.add_argument("--workers", type=int_range(1, 1024), default=None,
                   help="LocalCluster worker processes (default: one per core, "
                   f"{os.cpu_count()} here); not with --scheduler")
    add_report_options(
        p,
        json="the results file: written as cells finish, and on Ctrl-C; if it holds "
             "results of the same plan, its finished cells are not run again ('-': "
             "the JSON on stdout at the end, instead of the table)",
        junit="also write JUnit XML: one testcase per cell ('-': on stdout at the "
              "end, instead of the table)",
        annotate="print GitHub ::error lines for the FAIL and UNOBSERVED cells: the "
                 "line of a protocol file the model blames, the plan's line naming the "
                 "protocol, then a summary (at most 10; default: on when GITHUB_ACTIONS=true)",
        metavar="OUT")
    p.add_argument("--fresh", action="store_true",
                   help="start over: ignore (and replace) the results in --json OUT")
    p.add_argument("--retries", type=int_range(0, 10), default=1,
                   help="times a failed cell runs again, on another worker if there is one "
                   "(default 1)")
    p.add_argument("--dry-run", action="store_true",
                   help="list the cells and their commands; run nothing (needs no Dask)")
    p.add_argument("--quiet", "-q", action="store_true",
                   help="no progress bar or progress lines on stderr")
    p.set_defaults(func=run, commands=sub.choices)  # the parsers a plan's args go to


def _err(msg: str) -> None:
    from kmallocwd.escape import one_line

    sys.stderr.write(one_line(msg) + "\n")
    sys.stderr.flush()


def run(args: argparse.Namespace) -> int:
    held: list = []  # the results file's lock, once taken
    try:
        return _run(args, held)
    finally:
        for lock in held:
            lock.release()


def _run(args: argparse.Namespace, held: list) -> int:
    from kmallocwd.campaign import Campaign, Options, load_plan, render, run_campaign, to_junit
    from kmallocwd import outpath
    from kmallocwd.inputs import read_text
    from kmallocwd.campaign.engine import require_dask
    from kmallocwd.errors import EXIT_OK, EXIT_WRITE_FAILED, UsageError, WriteFailed
    from kmallocwd.interrupt import exit_status

    if args.scheduler is not None and args.workers is not None:
        raise UsageError("--workers sizes the embedded LocalCluster (accepted: --workers "
                         "without --scheduler; a scheduler's workers are started with "
                         "`dask worker`)")
    if args.scheduler is not None and not args.scheduler.strip():
        raise UsageError("--scheduler '': empty address (accepted: a Dask scheduler "
                         "address, e.g. tcp://host:8786)")
    import kmallocwd.cli.commands.plan_args as plan_args

    plan = load_plan(args.plan, check_args=lambda kind, a: plan_args.check(
        args.commands, kind, a))
    # the output paths are checked before anything runs
    json_t, junit_t, cq_t = report_outputs(args, (args.plan,))
    if json_t is not None and not json_t.stdout and not args.dry_run:
        # one campaign at a time on a results file (taken before it is read)
        from kmallocwd.campaign.lock import acquire
        held.append(acquire(json_t.real, f"--json {args.json}"))
    campaign = Campaign(plan)
    if json_t is not None and not json_t.stdout and not args.fresh \
            and os.path.exists(json_t.real) and os.path.getsize(json_t.real) > 0:
        n = campaign.resume_from(read_text(json_t.real, "--json", RESULTS_LIMIT),
                                 f"--json {args.json}")
        if not args.quiet and n:
            _err(f"kmallocwd campaign: resuming {args.json}: {n} of {len(plan.cells)} "
                 "cells done, not run again")
    if not args.quiet:
        for note in plan.dropped:
            _err(f"kmallocwd campaign: not run: {note}")
    if args.dry_run:
        from kmallocwd.escape import one_line

        for c in plan.cells:
            state = "done" if c.id in campaign.resumed else "todo"
            sys.stdout.write(one_line(f"{state}  {c.id}  (timeout {c.timeout_s:g} s)  "
                                      "kmallocwd " + " ".join(c.argv) + " --json -") + "\n")
        sys.stdout.write(f"{len(plan.cells)} cells, {len(campaign.todo())} to run; "
                         f"plan {plan.digest}\n")
        return EXIT_OK
    if campaign.todo():
        require_dask()

    def write_results(c: Campaign) -> None:
        if json_t is not None and not json_t.stdout:
            outpath.write_text(json_t, c.to_json())

    warned = []

    def checkpoint(c: Campaign) -> None:
        # a failed write does not stop the campaign: said once, tried again
        # after the next cell, and at the end (exit 74 if that fails too)
        try:
            write_results(c)
        except (OSError, WriteFailed) as exc:
            if not warned:
                _err(f"kmallocwd campaign: warning: {exc}; the campaign goes on, the "
                     "results are written again after each cell")
            warned.append(exc)

    opts = Options(scheduler=args.scheduler, workers=args.workers, retries=args.retries,
                   progress=not args.quiet and sys.stderr.isatty(), checkpoint=checkpoint,
                   log=None if args.quiet else _err)
    status = None
    try:
        run_campaign(campaign, opts)
    except KeyboardInterrupt as exc:
        status = exit_status(exc)
        campaign.interrupted = True
    from kmallocwd import interrupt
    interrupt.defer()  # from here a signal is recorded: the outputs are written whole
    if status is None and interrupt.received() is not None:
        status = interrupt.signal_status(interrupt.received())
    doc = campaign.to_dict()
    if status is None:
        status = doc["verdict"]["exit_status"]
    failed_writes = []
    outputs = []
    if json_t is not None:
        outputs.append((json_t, json.dumps(doc, indent=1) + "\n"))
    if junit_t is not None:
        outputs.append((junit_t, to_junit(doc)))
    from kmallocwd import annotate
    findings = []
    if annotate.wanted(args.annotate) or cq_t is not None:
        from kmallocwd.campaign.annotate import findings as campaign_findings

        findings = campaign_findings(doc, plan)
    if cq_t is not None:
        outputs.append((cq_t, annotate.codequality(findings)))
    for target, text in outputs:
        try:
            outpath.write_text(target, text)
        except WriteFailed as exc:
            failed_writes.append(str(exc))
        except OSError as exc:
            failed_writes.append(f"{target.option} {target.path}: cannot write it "
                                 f"({exc.strerror or exc})")
    if not any(t is not None and t.stdout for t in (json_t, junit_t)):
        try:
            sys.stdout.write(render(doc))
            sys.stdout.flush()
        except BrokenPipeError:
            pass
    if annotate.wanted(args.annotate):
        annotate.emit(findings, annotate.Summary(
            f"kmallocwd campaign {annotate.relpath(args.plan)}", doc["verdict"]["line"], status,
            [p for p in (args.json, args.junit, args.codequality) if p and p != "-"],
            plan.path), sys.stderr if (json_t is not None and json_t.stdout)
            or (junit_t is not None and junit_t.stdout) else sys.stdout)
    for msg in failed_writes:
        _err(f"kmallocwd campaign: error: {msg}")
    if failed_writes and status in (0, 1, 3, 4):
        return EXIT_WRITE_FAILED
    return status
