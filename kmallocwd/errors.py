"""Errors and exit codes: a leaf module (it imports nothing of kmallocwd),
so that library code may raise a usage error without importing the CLI.

The exit codes every command uses:

====  =====================================================================
0     success (stress: no forbidden outcome, and the run had power)
1     a forbidden outcome was observed
2     usage error: bad option, bad input file (one line on stderr)
3     inconclusive: too little evidence (no accepted snapshot, or fewer
      overlaps than --min-overlaps)
4     the model says the protocol is broken, but this run did not observe it
69    unavailable (EX_UNAVAILABLE): a service needed does not answer as it should
      (campaign --scheduler is not a Dask scheduler, or is silent past the
      connect timeout), or an install problem (no C compiler, no Python
      headers, kmallocwd's C sources missing) or an unusable compile cache;
      the one line says how to fix it
74    an output could not be written after the run (EX_IOERR): the report
      went to stdout if it could
129   interrupted by SIGHUP, after the partial report
130   interrupted by SIGINT (Ctrl-C), after the partial report
131   stopped at once by SIGQUIT (Ctrl-\\): nothing written, temporary files removed
138   interrupted by SIGUSR1 (140: SIGUSR2), after the partial report
143   interrupted by SIGTERM, after the partial report
====  =====================================================================
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FORBIDDEN = 1
EXIT_USAGE = 2
EXIT_INCONCLUSIVE = 3
EXIT_UNOBSERVED = 4
EXIT_UNAVAILABLE = 69
EXIT_WRITE_FAILED = 74
EXIT_SIGHUP = 129
EXIT_SIGINT = 130
EXIT_SIGQUIT = 131
EXIT_SIGTERM = 143


class KmallocwdError(Exception):
    """An error the CLI reports as one line (the message) and an exit
    status (``exit_code``): the one mapping from errors to exit codes."""

    exit_code = EXIT_USAGE


class UsageError(KmallocwdError, ValueError):
    """Bad input (an option, a file's content): exit 2."""

    exit_code = EXIT_USAGE


class WriteFailed(KmallocwdError):
    """An output could not be written after the run: exit 74."""

    exit_code = EXIT_WRITE_FAILED


class Unavailable(KmallocwdError):
    """Something the command needs is unavailable (EX_UNAVAILABLE): exit 69.
    The campaign's --scheduler raises it when the service is not a Dask
    scheduler."""

    exit_code = EXIT_UNAVAILABLE


class InstallError(Unavailable):
    """An install problem (a missing compiler, headers or C sources), or a
    compile cache that cannot be trusted: one line saying how to fix it, exit 69."""


class ProtocolFailure(AssertionError):
    """A report that is not a clean PASS (the API's ``assert_no_forbidden``):
    the message says why, with the evidence (histogram, first torn snapshot,
    the model's counterexample)."""
