"""``kmallocwd protocols``: print the protocol table."""

from __future__ import annotations

import argparse
import json
import sys

from kmallocwd import protocols


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "protocols",
        help="print the protocol table: outcomes, expectations and reasons",
        description="Print every protocol variant with the outcomes its reader can produce, "
        "the expectation of each (acceptable, interesting, forbidden), the reason, and which "
        "machines can show it (x86-64 by timing alone, a weak machine, the compiler).",
    )
    p.add_argument("--json", action="store_true", help="print the table as JSON on stdout")
    p.set_defaults(func=run)


def render() -> str:
    lines = []
    for p in protocols.PROTOCOLS:
        verdict = "sound" if p.sound else "BROKEN"
        lines.append(f"{p.name}  [{p.writer} + {p.reader}]  {p.stands_for}  ({verdict})")
        for o in p.outcomes:
            by = ", ".join(o.shown_by) if o.shown_by else "nobody"
            extra = f"  (shown by: {by})" if o.name == protocols.TORN else ""
            lines.append(f"    {o.name:<17} {o.expect.value:<12} {o.reason}{extra}")
        lines.append(f"    note: {p.note}")
        lines.append("")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    if args.json:
        json.dump([p.to_dict() for p in protocols.PROTOCOLS], sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(render())
    return 0
