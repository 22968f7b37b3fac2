"""``kmallocwd ablate``: which ordering annotations a protocol needs, on
which model (the model half; the stress columns come when stress is wired
in: until then, and with -d 0, only the model columns are printed)."""

from __future__ import annotations

import argparse
import json
import sys

from kmallocwd.commands.check_cmd import add_protocol_args, models_from, specs_from
from kmallocwd.errors import EXIT_OK, UsageError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "ablate",
        help="drop each ordering annotation of a protocol and check the variant",
        description="For each ordering annotation of the protocol (smp_wmb/smp_rmb/smp_mb, "
        "barrier(), acquire/release, READ_ONCE/WRITE_ONCE, lock pair), the variant without it "
        "(or weakened to a plain access) and its verdict under each model; each row is named by "
        "the annotation's line in the protocol file. Stress columns are not run yet.")
    add_protocol_args(p, required=True)
    p.add_argument("--model", "-m", default="all", metavar="sc|x86|weak|all")
    p.add_argument("-d", "--duration", default="0", metavar="SECONDS",
                   help="stress seconds per variant (the stress half is not wired in yet: 0)")
    p.add_argument("--json", metavar="-", default=None, help="'-': the table as JSON on stdout")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from kmallocwd.model.ablate import ablate, render
    spec = specs_from(args)[0]
    models = models_from(args.model)
    try:
        duration = float(args.duration)
    except ValueError:
        duration = -1.0
    if not 0 <= duration <= 3600:
        raise UsageError(f"-d {args.duration!r} (accepted: seconds from 0 to 3600)")
    if duration > 0:
        sys.stderr.write("kmallocwd ablate: the stress half is not wired in yet; model columns "
                         "only\n")
    rows = ablate(spec, models)
    if args.json == "-":
        json.dump({"schema": "kmallocwd.ablate/1", "protocol": spec.name, "models": models,
                   "rows": [r.to_dict() for r in rows]}, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(render(spec, rows, models))
    return EXIT_OK
