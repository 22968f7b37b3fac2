"""How runs are interrupted: Ctrl-C (SIGINT) and SIGTERM, and the exit
status each gives once the run has stopped and reported."""

from __future__ import annotations

from kmallocwd.errors import EXIT_SIGINT, EXIT_SIGTERM


class Terminated(KeyboardInterrupt):
    """SIGTERM, delivered like Ctrl-C so that runs stop the same way."""


def exit_status(exc: KeyboardInterrupt) -> int:
    """130 for Ctrl-C, 143 for SIGTERM."""
    return EXIT_SIGTERM if isinstance(exc, Terminated) else EXIT_SIGINT
