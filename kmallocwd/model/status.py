"""What a model check concludes, as an exit status and one line: the
decision `kmallocwd check`, the API and a campaign's check cells share.

A reader that can never accept a snapshot cannot accept a torn one either,
so every model says "never" for it; that is no evidence (the reader is
broken, not the protocol sound), and it is reported INCONCLUSIVE."""

from __future__ import annotations

from dataclasses import dataclass

from kmallocwd.errors import EXIT_FORBIDDEN, EXIT_INCONCLUSIVE, EXIT_OK
from kmallocwd.model.explore import Exploration

NEVER_ACCEPTS = "the reader never accepts a snapshot"


@dataclass(frozen=True)
class CheckStatus:
    """An exit status and the line that says why."""

    code: int
    line: str


OK = CheckStatus(EXIT_OK, "OK: every verdict equals [expect]")
FAIL = CheckStatus(EXIT_FORBIDDEN, "FAIL: a model finds a tear that [expect] says never happens")
NO_TEAR = CheckStatus(EXIT_INCONCLUSIVE, "INCONCLUSIVE: [expect] says sometimes, no tear found "
                      "(more --sections?)")


def never_accepts(res: Exploration) -> bool:
    """True when no execution of ``res`` ends with the reader accepting."""
    return not res.accepts


def check_status(results: list[Exploration]) -> CheckStatus:
    """One protocol's results (one per model): FAIL when a model finds a
    tear [expect] says never happens; INCONCLUSIVE when the reader never
    accepts a snapshot under some model, or when [expect] says sometimes
    and no tear was found; else OK."""
    status = OK
    for r in results:
        v = "sometimes" if r.sometimes else "never"
        if v == "sometimes" and r.spec.expect.get(r.model) != "sometimes":
            return FAIL
    silent = [r.model for r in results if never_accepts(r)]
    if silent:
        spec = results[0].spec
        return CheckStatus(EXIT_INCONCLUSIVE, f"INCONCLUSIVE: {NEVER_ACCEPTS} ({spec.name} "
                           f"under {', '.join(silent)}): nothing was checked")
    for r in results:
        if ("sometimes" if r.sometimes else "never") != r.spec.expect.get(r.model):
            status = NO_TEAR
    return status


def combine(statuses: list[CheckStatus]) -> CheckStatus:
    """Several protocols' statuses as one: FAIL wins, then the first
    INCONCLUSIVE, else OK."""
    for s in statuses:
        if s.code == EXIT_FORBIDDEN:
            return s
    for s in statuses:
        if s.code != EXIT_OK:
            return s
    return OK
