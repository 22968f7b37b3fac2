"""``python -m kmallocwd`` and the ``kmallocwd`` console script: the same CLI.

The first thing done is to make the stopping signals (SIGINT, SIGTERM,
SIGHUP, SIGUSR1, SIGUSR2; and SIGQUIT) exit 128 + N quietly,
so that a signal while the CLI's modules load (numpy, the cffi extension:
a few tenths of a second on a loaded machine) gives no traceback; main()
then installs the handlers the commands use (kmallocwd.interrupt).  The
built-in ``_signal`` is used here, not ``signal`` (a Python module that takes
a millisecond to import), to leave the smallest window before that.

The process then leaves with ``os._exit()``: main() has flushed the streams
and put every output in place, and the interpreter's own shutdown would
reset the signal handlers to the defaults (a late signal of a burst would
kill the process with -SIGINT instead of the status main() decided) and
could wait on a thread."""

import _signal
import os
import sys

# kmallocwd.interrupt's STOPPING and HARD_STOP (not imported yet)
_SIGNALS = (_signal.SIGINT, _signal.SIGTERM, _signal.SIGHUP, _signal.SIGUSR1, _signal.SIGUSR2,
            _signal.SIGQUIT)


def _early_exit(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def _leave(status: object) -> None:
    for s in _SIGNALS:
        _signal.signal(s, _signal.SIG_IGN)  # the status is decided: nothing changes it now
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(status if isinstance(status, int) else 1)


def entry() -> None:
    for s in _SIGNALS:
        if _signal.getsignal(s) != _signal.SIG_IGN:  # a background job keeps SIGINT ignored
            _signal.signal(s, _early_exit)
    try:
        from kmallocwd.cli import main

        status = main()
    except SystemExit as exc:  # the early handler, before main() took over
        status = exc.code
    except KeyboardInterrupt as exc:  # main()'s handler, before main()'s try
        from kmallocwd.interrupt import exit_status

        status = exit_status(exc)
    _leave(status)


if __name__ == "__main__":
    entry()
