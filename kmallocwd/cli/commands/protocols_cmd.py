"""``kmallocwd protocols``: the protocol table, read from the protocol files;
``--c NAME`` prints a protocol's generated C."""

from __future__ import annotations

import argparse
import json
import sys

from kmallocwd import protocols
from kmallocwd.cli.commands.common import add_build_option
from kmallocwd.errors import UsageError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "protocols",
        help="print the protocol table: outcomes, expectations, reasons, model verdicts",
        description="Print every built-in protocol (one file each in kmallocwd/protocols/) "
        "with the outcomes its reader can produce, the expectation of each (acceptable, "
        "interesting, forbidden), its one-line reason, and whether a torn snapshot is "
        "possible under each memory model (sc, x86, weak).  With --c, print the C generated "
        "from one protocol's file, after the definitions of the barrier vocabulary it is "
        "compiled with (--build).",
    )
    p.add_argument("--json", action="store_true", help="print the table as JSON on stdout")
    p.add_argument("--c", metavar="NAME|FILE", default=None,
                   help="print the C generated for a built-in protocol or a protocol file")
    add_build_option(p)
    p.add_argument("--markdown", action="store_true",
                   help="print the protocol table (Markdown), as the docs show it")
    p.set_defaults(func=run)


def definitions_comment(build: str) -> str:
    """A C comment: the build, and csrc/barriers.h's definitions in it as
    this machine's compiler sees them."""
    import platform

    from kmallocwd.protocols.builds import definitions

    lines = [ln.replace("*/", "* /") for ln in definitions(build)] or [
        "(no C compiler here to show them: see csrc/barriers.h)"]
    return (f"/*\n * The {build} build on {platform.machine()}: csrc/barriers.h defines\n"
            + "".join(f" *   {ln}\n" for ln in lines) + " */\n")


def verdicts(spec: protocols.Spec) -> dict[str, str]:
    """Per model: 'never' or 'sometimes', computed by the model checker (the
    test suite and .ci/run hold the files' [expect] tables to it)."""
    from kmallocwd.model import verdicts as check

    return check(spec)


def render() -> str:
    lines = []
    for p in protocols.PROTOCOLS:
        v = verdicts(p)
        broken = [m for m in protocols.MODELS if v[m] == "sometimes"]
        state = f"tears on {', '.join(broken)}" if broken else "sound on sc, x86, weak"
        lines.append(f"{p.name}  [{p.writer_name} + {p.reader_name}]  {p.stands_for}")
        lines.append(f"    {state}   ({p.path})")
        for o in p.outcomes:
            lines.append(f"    {o.name:<17} {o.expect:<12} {o.reason}")
        lines.append(f"    note: {p.note}")
        lines.append("")
    return "\n".join(lines)


def markdown() -> str:
    rows = ["| protocol | writer + reader | stands for | torn under sc / x86 / weak |",
            "|---|---|---|---|"]
    for p in protocols.PROTOCOLS:
        v = verdicts(p)
        cells = " / ".join(v[m] for m in protocols.MODELS)
        rows.append(f"| `{p.name}` | {p.writer_name} + {p.reader_name} | {p.stands_for} "
                    f"| {cells} |")
    return "\n".join(rows) + "\n"


def run(args: argparse.Namespace) -> int:
    if args.c is not None:
        from kmallocwd.protocols.cgen import one_protocol_c
        from kmallocwd.api import resolve_spec

        try:
            spec = resolve_spec(args.c)
        except protocols.SpecError as exc:
            raise UsageError(f"--c: {exc}") from None
        sys.stdout.write(definitions_comment(args.build) + one_protocol_c(spec, args.build))
        return 0
    if args.json:
        out = []
        for p in protocols.PROTOCOLS:
            d = p.to_dict()
            d["verdicts"] = verdicts(p)
            out.append(d)
        json.dump(out, sys.stdout, indent=2)
        sys.stdout.write("\n")
    elif args.markdown:
        sys.stdout.write(markdown())
    else:
        sys.stdout.write(render())
    return 0
