"""``kmallocwd ablate``: which ordering annotations a protocol needs, on
which model, and what this machine's stress sees of each variant (-d
SECONDS each; with -d 0, the model columns only)."""

from __future__ import annotations

import argparse
import sys

from kmallocwd.commands.check_cmd import models_from
from kmallocwd.commands.common import add_build_option, add_protocol_options, specs_from
from kmallocwd.errors import EXIT_OK, UsageError


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
        "tear).  Exit 0; 1 if the protocol as written can tear under a model its [expect] "
        "says never; 2 on bad usage.")
    add_protocol_options(p, required=True)
    p.add_argument("--model", "-m", default="all", metavar="sc|x86|weak|all")
    p.add_argument("-d", "--duration", default="0", metavar="SECONDS",
                   help="stress seconds per variant, 0 to 3600 (default 0: model only)")
    add_build_option(p)
    p.add_argument("--json", metavar="PATH", default=None,
                   help="also write the table as JSON to PATH ('-': stdout, instead of the table)")
    p.add_argument("--junit", metavar="PATH", default=None,
                   help="also write JUnit XML: one testcase per annotation")
    p.add_argument("--annotate", choices=("github", "none"), default=None,
                   help="print GitHub ::error lines at each annotation whose removal breaks "
                   "the protocol (default: on when GITHUB_ACTIONS=true)")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from kmallocwd import annotate, api, junit, outpath
    from kmallocwd.errors import EXIT_FORBIDDEN, EXIT_WRITE_FAILED
    from kmallocwd.model.ablate import render
    from kmallocwd.progress import Progress

    spec = specs_from(args)[0]
    models = models_from(args.model)
    try:
        duration = float(args.duration)
    except ValueError:
        duration = -1.0
    if not 0 <= duration <= 3600:
        raise UsageError(f"-d {args.duration!r} (accepted: seconds from 0 to 3600)")
    inputs = [args.protocol_file] if args.protocol_file else []
    json_t = outpath.check_output(args.json, "--json", inputs) if args.json is not None else None
    junit_t = (outpath.check_output(args.junit, "--junit", inputs)
               if args.junit is not None else None)
    total = 1 + len(spec.ordering_ops())
    with Progress(total, "variants", quiet=args.quiet or duration == 0,
                  desc=f"ablate {spec.name}") as bar:
        try:
            rep = api.ablate(spec, duration=duration, model=models,
                             on_row=lambda i, n: bar.update(1), build=args.build)
        except api.protocols.SpecError as exc:
            raise UsageError(str(exc)) from None
    if args.json != "-":
        sys.stdout.write(render(spec, rep.rows_obj, models))
        if duration > 0:
            print(f"  stress: the {args.build} build")
    if annotate.wanted(args.annotate):
        annotate.emit([(spec.path, r.line, f"{r.text}: {r.change}, the protocol tears under "
                        f"{', '.join(r.necessary_on)}") for r in rep.rows_obj[1:]
                       if r.necessary_on], sys.stderr if args.json == "-" else sys.stdout)
    cases = []
    for r in rep.rows_obj:
        name = "as written" if not r.line else f"line {r.line}: {r.text} {r.change}"
        c = junit.Case(name=f"{spec.name} {name}", classname=f"kmallocwd.ablate.{spec.name}",
                       time_s=r.seconds, properties={**{f"verdict.{m}": v for m, v in
                                                        r.verdicts.items()},
                                                     "build": args.build,
                                                     "necessary_on": ",".join(r.necessary_on),
                                                     "stress_torn": r.stress_torn})
        if not r.line and any(v == "sometimes" and spec.expect.get(m) == "never"
                              for m, v in r.verdicts.items()):
            c.failure = "the protocol as written can tear where [expect] says never"
        cases.append(c)
    if not outpath.write_outputs("kmallocwd ablate", [
            (json_t, rep.to_json),
            (junit_t, lambda: junit.to_xml(f"kmallocwd ablate {spec.name}", cases,
                                        {"build": args.build}))]):
        return EXIT_WRITE_FAILED
    first = rep.rows_obj[0]
    if any(v == "sometimes" and spec.expect.get(m) == "never" for m, v in first.verdicts.items()):
        return EXIT_FORBIDDEN
    return EXIT_OK
