"""``python -m kmallocwd`` and the ``kmallocwd`` console script: the same CLI.

The first thing done is to make SIGINT and SIGTERM exit 130 / 143 quietly,
so that a signal while the CLI's modules load (numpy, the cffi extension:
a few tenths of a second on a loaded machine) gives no traceback; main()
then installs the handlers the commands use (kmallocwd.interrupt)."""

import signal
import sys


def _early_exit(signum: int, frame: object) -> None:
    raise SystemExit(143 if signum == signal.SIGTERM else 130)


def entry() -> None:
    for s in (signal.SIGINT, signal.SIGTERM):
        if signal.getsignal(s) is not signal.SIG_IGN:  # a background job keeps SIGINT ignored
            signal.signal(s, _early_exit)
    from kmallocwd.cli import main

    sys.exit(main())


if __name__ == "__main__":
    entry()
