"""The one ``kmallocwd`` entry point: argparse subcommands, one module each
in kmallocwd/cli/commands/.  Usage errors print one line and exit 2.

This module imports nothing heavy at its top: ``main()`` installs the
signal handlers (kmallocwd.interrupt) first, and only then imports the
commands (numpy, the cffi extension), so that a signal while they load
exits 128 + N (130, 143, ...) without a traceback.  main() also owns stdout: a stdout that is closed or
full is one line on stderr and exit 74, never a traceback."""

from __future__ import annotations

import argparse
import os
import sys
from typing import NoReturn, Sequence

from kmallocwd import __version__, interrupt
from kmallocwd.errors import EXIT_USAGE, EXIT_WRITE_FAILED, KmallocwdError
from kmallocwd.interrupt import EXIT_SIGINT, EXIT_SIGTERM, Terminated  # noqa: F401 (re-exported)
from kmallocwd import outpath
from kmallocwd.escape import one_line  # noqa: F401 (re-exported)
from kmallocwd.outpath import GuardedStream


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line, no usage dump."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"{self.prog}: error: {one_line(message)}\n")
        sys.exit(EXIT_USAGE)


def build_parser() -> Parser:
    from kmallocwd.cli.commands import COMMANDS

    parser = Parser(
        prog="kmallocwd",
        description="A real-concurrency emulator of the Linux memory allocation "
        "watchdog (kmallocwd) and of the lock-free seqcount it relies on.",
    )
    parser.add_argument("--version", action="version", version=f"kmallocwd {__version__}")
    # Not required for argparse: `kmallocwd --bogus` must name --bogus rather
    # than say a command is missing; a missing command is refused below.
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for module in COMMANDS:
        module.register(sub)
    return parser


def _plug_closed_fds() -> None:
    """A closed fd 0, 1 or 2 gets /dev/null, so that no file this run opens
    takes its number (and gets what a library prints to stdout)."""
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            try:
                new = os.open(os.devnull, os.O_RDWR)
                if new != fd:
                    os.dup2(new, fd)
                    os.close(new)
            except OSError:
                pass


_command: list[str] = []  # the command being run, for main()'s last words


class _ParserExit(Exception):
    """argparse ended the parse (--help, --version, a usage error)."""

    def __init__(self, code: int) -> None:
        self.code = code


def _run(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if args.command is None:
            names = ", ".join(parser._subparsers._group_actions[0].choices)  # type: ignore
            parser.error(f"a COMMAND is required (accepted: {names}; see kmallocwd --help)")
    except SystemExit as exc:  # --help, --version, or a usage error (printed)
        raise _ParserExit(exc.code if isinstance(exc.code, int) else EXIT_USAGE) from None
    _command[:] = [args.command]
    try:
        return int(args.func(args))
    except KmallocwdError as exc:  # the one place an error becomes an exit status
        sys.stderr.write(f"kmallocwd {args.command}: error: {one_line(str(exc))}\n")
        return exc.exit_code


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns its exit status.  With ``argv`` None (the
    program itself: the console script, ``python -m kmallocwd``), the signal
    handlers stay installed after the command (a late signal exits with the
    status), otherwise the previous ones are restored (tests)."""
    program = argv is None
    try:
        sig = interrupt.install()
    except KeyboardInterrupt as exc:  # a signal while the handlers are being installed
        return interrupt.exit_status(exc)
    out, err = sys.stdout, sys.stderr
    if program:
        _plug_closed_fds()
    gout = GuardedStream(out, "stdout is closed")
    gerr = GuardedStream(err)
    if err is None:
        gerr.error = None
        gerr.real = open(os.devnull, "w")
    sys.stdout, sys.stderr = gout, gerr  # type: ignore[assignment]
    status = EXIT_USAGE
    parser_exit = False
    _command.clear()
    outpath.begin_command()  # no two outputs of the command may name one file
    try:
        try:
            try:
                status = _run(argv)
            except _ParserExit as exc:
                status, parser_exit = exc.code, True
            except SystemExit as exc:  # sys.exit() in a command
                status = exc.code if isinstance(exc.code, int) else EXIT_USAGE
            gout.flush()
        except KeyboardInterrupt as exc:
            status = interrupt.exit_status(exc)
            gout.flush()
        failure = outpath.stdout_failure()  # not a broken pipe: `| head` is no error
        if failure is not None and status != EXIT_USAGE:
            what = failure.strerror or str(failure)
            cmd = " ".join(["kmallocwd"] + _command)
            gerr.write(f"{cmd}: error: cannot write to stdout: {what}\n")
            status = EXIT_WRITE_FAILED
        gerr.flush()
    except KeyboardInterrupt as exc:  # a signal while reporting the status
        status = interrupt.exit_status(exc)
    finally:
        outpath.discard_all()
        outpath.end_command()
        sys.stdout, sys.stderr = out, err
        if program:
            sig.closed_status = status
            if gout.error is not None and out is not None:
                # What the failed writes left in stdout's buffer would fail
                # again at exit: let it go to /dev/null instead.
                try:
                    fd = os.open(os.devnull, os.O_WRONLY)
                    os.dup2(fd, out.fileno())
                    os.close(fd)
                except (OSError, ValueError):
                    pass
        interrupt.uninstall(sig, restore=not program)
    if parser_exit and not program:
        raise SystemExit(status)  # as argparse does, for callers that expect it
    return status


if __name__ == "__main__":
    sys.exit(main())
