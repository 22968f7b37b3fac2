"""How runs are interrupted: the signals that stop a run, and the exit
status each gives once the run has stopped and reported.

``cli.main()`` installs ``Signals`` first thing, before any heavy import, so
that a signal at any time gives 128 + its number and no traceback.

SIGINT (Ctrl-C), SIGTERM, SIGHUP (the terminal closed), SIGUSR1 and SIGUSR2
(whose default would kill the process with nothing written) all stop a run
the same way:

- the first one raises KeyboardInterrupt (``Terminated`` for all but
  SIGINT, with its ``signum``) in the main thread, where the command stops
  its run and reports;
- once a command has called ``defer()`` (it is writing its report), the
  first signal is only recorded (``received()``), not raised;
- every later signal is ignored: the run is already stopping, and a second
  Ctrl-C must not cut its report short;
- once the command is over (``close()``), a signal ends the process at once
  with the status already decided.

SIGQUIT (Ctrl-\\) is the hard stop, for when that orderly stop is not wanted
or is stuck: at any time it removes the temporary files of the outputs not
yet in place (each output keeps its old content) and ends the process at
once with 131, writing nothing.  A signal ignored by whoever started us (a
background job's SIGINT, SIGHUP under nohup) stays ignored.
"""

from __future__ import annotations

import os
import signal
import sys

from kmallocwd.errors import EXIT_SIGINT, EXIT_SIGTERM  # noqa: F401 (re-exported)

# The signals that stop a run with its report, in the order installed.
STOPPING = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2)
HARD_STOP = signal.SIGQUIT


class Terminated(KeyboardInterrupt):
    """A stopping signal other than SIGINT, delivered like Ctrl-C so that
    runs stop the same way."""

    def __init__(self, signum: int = signal.SIGTERM) -> None:
        super().__init__()
        self.signum = signum


def signal_status(signum: int) -> int:
    """The exit status after a signal: 128 + its number (130 SIGINT, 143 SIGTERM,
    129 SIGHUP, ...)."""
    return 128 + int(signum)


def signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def signum_of(exc: KeyboardInterrupt) -> int:
    """The signal a KeyboardInterrupt stands for (SIGINT for a plain one)."""
    return getattr(exc, "signum", signal.SIGINT)


def exit_status(exc: KeyboardInterrupt) -> int:
    """130 for Ctrl-C, 143 for SIGTERM, 128 + N for signal N."""
    return signal_status(signum_of(exc)) if isinstance(exc, Terminated) else EXIT_SIGINT


def interrupt_for(signum: int) -> KeyboardInterrupt:
    return KeyboardInterrupt() if signum == signal.SIGINT else Terminated(signum)


def hard_stop() -> None:
    """SIGQUIT: the temporary files of the outputs removed, exit 131 at once."""
    outpath = sys.modules.get("kmallocwd.outpath")  # not loaded: no output pending
    if outpath is not None:
        try:
            outpath.discard_all()
        except Exception:
            pass
    os._exit(signal_status(HARD_STOP))


class Signals:
    """The signal handlers of one main() call."""

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
            raise interrupt_for(signum)

    def quit(self, signum: int, frame: object) -> None:
        if self.closed_status is not None:  # the outputs are in place: the status stands
            os._exit(self.closed_status)
        hard_stop()

    def install(self) -> None:
        for s in (*STOPPING, HARD_STOP):
            if signal.getsignal(s) is signal.SIG_IGN:
                continue  # ignored by whoever started us (a background job, nohup): stays so
            self.previous[s] = signal.signal(s, self.quit if s == HARD_STOP else self.handler)

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
    """The first stopping signal received during this command, or None."""
    return None if _current is None else _current.first
