"""``python -m kmallocwd`` and the ``kmallocwd`` console script: the same CLI.

The first thing done is to make SIGINT and SIGTERM exit 130 / 143 quietly,
so that a signal while the CLI's modules load (numpy, the cffi extension:
a few tenths of a second on a loaded machine) gives no traceback; main()
then installs the handlers the commands use (kmallocwd.interrupt).  The
built-in ``_signal`` is used here, not ``signal`` (a Python module that takes
a millisecond to import), to leave the smallest window before that."""

import _signal
import sys


def _early_exit(signum: int, frame: object) -> None:
    raise SystemExit(143 if signum == _signal.SIGTERM else 130)


def entry() -> None:
    for s in (_signal.SIGINT, _signal.SIGTERM):
        if _signal.getsignal(s) != _signal.SIG_IGN:  # a background job keeps SIGINT ignored
            _signal.signal(s, _early_exit)
    from kmallocwd.cli import main

    sys.exit(main())


if __name__ == "__main__":
    entry()
