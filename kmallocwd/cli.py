"""The one ``kmallocwd`` entry point: argparse subcommands, one module each
in kmallocwd/commands/.  Usage errors print one line and exit 2."""

from __future__ import annotations

import argparse
import signal
import sys
from typing import NoReturn, Sequence

from kmallocwd import __version__
from kmallocwd.commands import COMMANDS

from kmallocwd.interrupt import EXIT_SIGINT, EXIT_SIGTERM, Terminated  # noqa: F401 (re-exported)

from kmallocwd.errors import EXIT_FORBIDDEN, EXIT_OK, EXIT_USAGE, UsageError  # noqa: F401


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line, no usage dump."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        sys.exit(EXIT_USAGE)


def build_parser() -> Parser:
    parser = Parser(
        prog="kmallocwd",
        description="A real-concurrency emulator of the Linux memory allocation "
        "watchdog (kmallocwd) and of the lock-free seqcount it relies on.",
    )
    parser.add_argument("--version", action="version", version=f"kmallocwd {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    sub.required = True
    for module in COMMANDS:
        module.register(sub)
    return parser


def _on_sigterm(signum: int, frame: object) -> None:
    raise Terminated()


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        return int(args.func(args))
    except UsageError as exc:
        sys.stderr.write(f"kmallocwd {args.command}: error: {exc}\n")
        return EXIT_USAGE
    except Terminated:
        return EXIT_SIGTERM
    except KeyboardInterrupt:
        return EXIT_SIGINT
    except BrokenPipeError:
        return EXIT_OK
    finally:
        signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
