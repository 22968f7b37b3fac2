"""``kmallocwd replay``: run a model checker's counterexample on real
threads and a real slot, and classify the snapshot as stress does."""

from __future__ import annotations

import argparse
import json
import sys

from kmallocwd.cli.commands.check_cmd import MAX_SECTIONS, int_arg, models_from
from kmallocwd.cli.commands.common import add_protocol_options, specs_from
from kmallocwd.errors import EXIT_FORBIDDEN, EXIT_OK


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "replay",
        help="replay a counterexample of 'kmallocwd check' on real threads",
        description="Find the shortest counterexample under each model (kmallocwd check), run "
        "its steps in the trace's order on two real threads and a real slot (a format-2 "
        "protocol: a byte buffer with its declared fields at natural alignment) (C, GIL "
        "released; "
        "each step handed over through a step counter with acquire/release; reorderings run as "
        "reordered program text) and classify the reader's snapshot with stress's witness "
        "(format 2: with stamps unique to each section and field). "
        "Exit 0 when every run reproduced its tear (or there is none to replay), 1 otherwise, "
        "74 when the JSON could not be written.")
    add_protocol_options(p, required=True)
    p.add_argument("--model", "-m", default="all", metavar="sc|x86|weak|all")
    p.add_argument("--sections", "-k", default="2", metavar="K",
                   help=f"write sections, 1..{MAX_SECTIONS} (default 2)")
    p.add_argument("--runs", "-n", default="10", metavar="N", help="runs of each (default 10)")
    p.add_argument("--json", metavar="PATH", default=None,
                   help="also write the results as JSON to PATH ('-': stdout, instead of the "
                   "text)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from kmallocwd.model import explore
    from kmallocwd.model.replay import replay
    from kmallocwd.model.report import render_rows, trace_rows
    spec = specs_from(args)[0]
    models = models_from(args.model)
    k = int_arg("--sections", args.sections, 1, MAX_SECTIONS)
    runs = int_arg("--runs", args.runs, 1, 100000)
    from kmallocwd import outpath
    from kmallocwd.errors import EXIT_WRITE_FAILED

    inputs = [args.protocol_file] if args.protocol_file else []
    json_t = outpath.check_output(args.json, "--json", inputs) if args.json is not None else None
    status, docs = EXIT_OK, []
    for m in models:
        res = explore(spec, m, k)
        r = replay(spec, m, k, runs, res)
        docs.append({"model": m, "expected": r.expected, "runs": r.runs,
                     "reproduced": r.reproduced, "outcomes": r.outcomes,
                     "snapshot": r.last_snapshot})
        if r.runs and not r.ok:
            status = EXIT_FORBIDDEN
        if args.json == "-":
            continue
        if not r.runs:
            sys.stdout.write(f"{spec.name} {m}: no counterexample (Never), nothing to replay\n\n")
            continue
        sys.stdout.write(f"{spec.name} {m}: replaying the counterexample that ends "
                         f"{r.expected}:\n")
        sys.stdout.write("\n".join("  " + x for x in render_rows(trace_rows(res))) + "\n")
        s = r.last_snapshot
        if spec.format == 1:
            sys.stdout.write(f"  real slot: seq={s['sequence']} start={s['start']} "
                             f"order={s['order']} gfp={s['gfp']:#x} "
                             f"witness={s['witness']:#018x}\n")
        else:  # the declared struct, over a byte buffer
            sys.stdout.write("  real buffer: " + " ".join(
                f"{k}={v:#x}" for k, v in s.items()) + "\n")
        verdict = "reproduced" if r.ok else "NOT reproduced"
        sys.stdout.write(f"  {r.reproduced}/{r.runs} runs classified {r.expected} "
                         f"({', '.join(f'{k} {v}' for k, v in r.outcomes.items())}): "
                         f"{verdict}\n\n")
    doc = {"schema": "kmallocwd.replay/1", "protocol": spec.name, "sections": k, "models": docs}
    if not outpath.write_outputs("kmallocwd replay", [
            (json_t, lambda: json.dumps(doc, indent=2) + "\n")]):
        return EXIT_WRITE_FAILED
    return status
