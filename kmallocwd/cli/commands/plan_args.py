"""A campaign plan's ablate and check arguments, checked when the plan is
loaded by the parser that will read them on the worker (campaign/plan.py's
``check_args`` hook), so that a bad argument is one line and exit 2 before
anything runs, not a failed cell per repeat."""

from __future__ import annotations

import shlex
from typing import NoReturn

from kmallocwd.errors import UsageError


def check(commands: dict, kind: str, args: list[str]) -> None:
    """UsageError if ``kmallocwd KIND ARGS --json -`` would be refused;
    ``commands``: the subcommands' parsers by name."""
    shown = shlex.join([kind, *args])
    if any(a in ("-h", "--help") or (a.startswith("--h") and "--help".startswith(a))
           for a in args):
        raise UsageError(f"`kmallocwd {shown}`: --help runs nothing (accepted: the "
                         f"arguments of `kmallocwd {kind}`)")
    sub = commands[kind]

    def error(message: str) -> NoReturn:
        raise UsageError(f"`kmallocwd {shown}`: {message}")

    def exit(status: int = 0, message: str | None = None) -> NoReturn:
        raise UsageError(f"`kmallocwd {shown}`: {message or 'exits without running'}")

    sub.error = error  # type: ignore[method-assign]
    sub.exit = exit    # type: ignore[method-assign]
    ns = sub.parse_args(args + ["--json", "-"])
    if isinstance(getattr(ns, "model", None), str):   # check, ablate: read after parsing
        from kmallocwd.cli.commands.check_cmd import models_from

        try:
            models_from(ns.model)
        except UsageError as exc:
            raise UsageError(f"`kmallocwd {shown}`: {exc}") from None
