"""``kmallocwd litmus``: a protocol as a C litmus test for herd7 with the
Linux-kernel memory model (docs/model.md, "The litmus export")."""

from __future__ import annotations

import argparse

from kmallocwd.cli.commands.check_cmd import MAX_SECTIONS, int_arg
from kmallocwd.cli.commands.common import add_protocol_options, specs_from
from kmallocwd.errors import EXIT_OK


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "litmus",
        help="write a protocol as a C litmus test for herd7 + LKMM",
        description="Write the protocol as a C litmus test in tools/memory-model's format "
        "(C name, initial state, P0 the writer's K sections, P1 one reader attempt, and an "
        "exists clause that is the torn-and-accepted condition). Run it with "
        "'herd7 -conf linux-kernel.cfg FILE' in tools/memory-model: its Observation should "
        "match 'kmallocwd check --model weak'.")
    add_protocol_options(p)
    p.add_argument("--sections", "-k", default="2", metavar="K",
                   help=f"write sections, 1..{MAX_SECTIONS} (default 2; herd7 takes minutes "
                   "at 2)")
    p.add_argument("--ablation", "-a", default=None, metavar="N",
                   help="write the N-th ablated variant instead, 1.. in the row order of "
                   "'kmallocwd ablate' (the protocol without its N-th ordering annotation, "
                   "or with it made plain); 0 is the protocol as written")
    p.add_argument("-o", "--output", metavar="FILE", default=None,
                   help="write to FILE (default: stdout)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from kmallocwd import outpath
    from kmallocwd.errors import EXIT_WRITE_FAILED
    from kmallocwd.errors import UsageError
    from kmallocwd.model.litmus import ablation_variants, not_exportable, render

    spec = specs_from(args)[0]
    if args.ablation is not None:
        variants = ablation_variants(spec)
        n = int_arg("--ablation", args.ablation, 0, len(variants))
        if n:
            spec = variants[n - 1][1]
    why = not_exportable(spec)
    if why:
        raise UsageError(why)
    k = int_arg("--sections", args.sections, 1, MAX_SECTIONS)
    inputs = [args.protocol_file] if args.protocol_file else []
    target = outpath.check_output(args.output if args.output is not None else "-", "-o",
                                  inputs)
    if not outpath.write_outputs("kmallocwd litmus", [(target, lambda: render(spec, k))]):
        return EXIT_WRITE_FAILED
    return EXIT_OK
