"""How runs are interrupted: Ctrl-C (SIGINT) and SIGTERM, and the exit
status each gives once the run has stopped and reported.

``cli.main()`` installs ``Signals`` first thing, before any heavy import, so
that a signal at any time gives 130 / 143 and no traceback:

- the first SIGINT or SIGTERM raises KeyboardInterrupt (``Terminated`` for
  SIGTERM) in the main thread, where the command stops its run and reports;
- once a command has called ``defer()`` (it is writing its report), the
  first signal is only recorded (``received()``), not raised;
- every later signal is ignored: the run is already stopping, and a second
  Ctrl-C must not cut its report short;
- once the command is over (``close()``), a signal ends the process at once
  with the status already decided.
"""

from __future__ import annotations

import os
import signal

from kmallocwd.errors import EXIT_SIGINT, EXIT_SIGTERM


class Terminated(KeyboardInterrupt):
    """SIGTERM, delivered like Ctrl-C so that runs stop the same way."""


def exit_status(exc: KeyboardInterrupt) -> int:
    """130 for Ctrl-C, 143 for SIGTERM."""
    return EXIT_SIGTERM if isinstance(exc, Terminated) else EXIT_SIGINT


def signal_status(signum: int) -> int:
    return EXIT_SIGTERM if signum == signal.SIGTERM else EXIT_SIGINT


def signal_name(signum: int) -> str:
    return "SIGTERM" if signum == signal.SIGTERM else "SIGINT"


class Signals:
    """The SIGINT/SIGTERM handler of one main() call."""

    def __init__(self) -> None:
        self.first: int | None = None
        self.deferred = False
        self.closed_status: int | None = None
        self.previous: dict[int, object] = {}

    def handler(self, signum: int, frame: object) -> None:
        if self.closed_status is not None:
            os._exit(self.closed_status)
        if self.first is not None:
            return
        self.first = signum
        if not self.deferred:
            raise Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()

    def install(self) -> None:
        for s in (signal.SIGINT, signal.SIGTERM):
            if signal.getsignal(s) is signal.SIG_IGN:
                continue  # ignored by whoever started us (a background job): stays so
            self.previous[s] = signal.signal(s, self.handler)

    def restore(self) -> None:
        for s, h in self.previous.items():
            signal.signal(s, h)  # type: ignore[arg-type]


_current: Signals | None = None


def install() -> Signals:
    """Install a fresh handler (main thread only); returns it."""
    global _current
    sig = Signals()
    sig.install()
    _current = sig
    return sig


def uninstall(sig: Signals, restore: bool) -> None:
    """After the command: restore the previous handlers, or (the program's
    own main) keep ours, which now end the process with the status."""
    global _current
    if restore:
        sig.restore()
    if _current is sig:
        _current = None


def defer() -> None:
    """From now on the first signal is recorded, not raised: the command is
    writing its report and must finish it.  No-op without cli.main()."""
    if _current is not None:
        _current.deferred = True


def received() -> int | None:
    """The first SIGINT/SIGTERM received during this command, or None."""
    return None if _current is None else _current.first
