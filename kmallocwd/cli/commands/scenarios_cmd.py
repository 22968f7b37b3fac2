"""``kmallocwd scenarios``: list the built-in scenarios, or print one."""

from __future__ import annotations

import argparse
import sys
import textwrap

from kmallocwd.watchdog.workload import builtin_names, builtin_text, load_builtin


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "scenarios",
        help="list the built-in scenarios of 'kmallocwd run'",
        description="List the built-in scenarios (name, tasks, the timeout their times are "
        "written for, what they show), or print one's TOML file with --show, as a start for "
        "your own (kmallocwd run --scenario FILE).",
    )
    p.add_argument("--show", metavar="NAME", default=None,
                   help="print the TOML file of the built-in scenario NAME")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from kmallocwd.errors import UsageError

    names = builtin_names()
    if args.show is not None:
        if args.show not in names:
            from kmallocwd.outpath import show

            raise UsageError(f"--show {show(args.show)}: no such built-in scenario "
                             f"(accepted: {', '.join(names)})")
        sys.stdout.write(builtin_text(args.show))
        return 0
    for name in names:
        s = load_builtin(name)
        print(f"{name}  ({s.tasks} tasks in {len(s.processes)} processes, timeout "
              f"{s.timeout_s:g} s by default)")
        for line in textwrap.wrap(s.description, 76):
            print(f"    {line}")
    return 0
