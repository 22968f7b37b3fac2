"""Per-task progress: the patch's documentation says to compare each reported
task's seq between reports to tell a livelock from a slow system.  Every
task reported as stalling is classed as

- made progress: its seq grew between two reports, or the reported request
  ended after its last report (a later complete report no longer lists it as
  stalling, or, in a run, its slot read after the run has moved on);
- no progress: the same request (same seq) in two or more reports, or (in a
  run) still pending at the end after two timeouts or more (livelock?);
- cannot tell yet: reported once, and nothing later says what became of it.

This module only computes; the summary renders it, the classification
reasons from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from kmallocwd.watchdog.carith import ulong
from kmallocwd.watchdog.report import Report

PROGRESS = "made progress"
NO_PROGRESS = "no progress"
UNDECIDED = "cannot tell yet"
CLASSES = (PROGRESS, NO_PROGRESS, UNDECIDED)


class FinalSlot(Protocol):
    """What a slot read after the run says (summary.SlotState)."""

    valid: int
    seq: int
    start: int


@dataclass(frozen=True)
class Verdict:
    comm: str
    pid: int
    verdict: str
    seqs: tuple[int, ...]  # the seq of each report that listed it as stalling
    reports: tuple[int, ...]
    detail: str

    @property
    def who(self) -> str:
        return f"{self.comm}({self.pid})"


def per_task(reports: list[Report], final: dict[int, FinalSlot] | None = None,
             now: int = 0, timeout: int = 0, gone: frozenset[int] = frozenset()
             ) -> list[Verdict]:
    """One verdict per task reported as stalling at least once.

    ``final``: each live task's slot after a run (by pid), ``now`` the
    jiffies then, ``gone`` the pids that exited; ``None`` for a log, where
    only the reports themselves tell (a report whose task lines were cut
    out of the log, ``Report.partial``, is no evidence that a request ended).
    """
    seen: dict[int, list[tuple[int, int]]] = {}
    comm: dict[int, str] = {}
    index = {r.n: i for i, r in enumerate(reports)}
    for r in reports:
        for t in r.lines:
            if t.stalling and t.seq is not None:
                seen.setdefault(t.pid, []).append((r.n, t.seq))
                comm[t.pid] = t.comm
    out = []
    for pid, hist in seen.items():
        ns = tuple(n for n, _ in hist)
        seqs = tuple(s for _, s in hist)
        chain = " -> ".join(str(s) for s in seqs)
        if any(b != a for a, b in zip(seqs, seqs[1:])):
            v, detail = PROGRESS, f"seq {chain} over reports {_span(ns)}"
        elif final is None:
            v, detail = _from_log(reports, index[ns[-1]], pid, seqs, ns, chain)
        else:
            end = final.get(pid)
            if end is None:
                how = "exited" if pid in gone else "gone"
                v, detail = UNDECIDED, f"seq {seqs[-1]} in {_n(ns)}; {how} before the end"
            elif not end.valid or end.seq != seqs[-1]:
                after = "finished" if end.seq == seqs[-1] else f"finished; seq {end.seq} at the end"
                v, detail = PROGRESS, f"seq {chain}; that request {after}"
            else:
                age = ulong(now - end.start)
                pending = f"still pending at the end, {age} jiffies"
                if len(seqs) >= 2 or age >= 2 * timeout:
                    v, detail = NO_PROGRESS, f"seq {seqs[-1]} in {_n(ns)}; {pending}"
                else:
                    v, detail = UNDECIDED, f"seq {seqs[-1]} in {_n(ns)}; {pending}"
        out.append(Verdict(comm[pid], pid, v, seqs, ns, detail))
    out.sort(key=lambda x: (CLASSES.index(x.verdict), x.pid))
    return out


def _from_log(reports: list[Report], i: int, pid: int, seqs: tuple[int, ...],
              ns: tuple[int, ...], chain: str) -> tuple[str, str]:
    """A task last listed as stalling in reports[i], judged by the reports
    that follow: the next one, if complete and without it, says its request
    ended."""
    if i + 1 < len(reports):
        nxt = reports[i + 1]
        if not nxt.partial and not any(t.pid == pid and t.stalling for t in nxt.lines):
            return PROGRESS, f"seq {chain}; that request ended before report {nxt.n}"
    if len(seqs) >= 2:
        last = "the last report" if i + 1 == len(reports) else f"report {ns[-1]}"
        return NO_PROGRESS, f"seq {seqs[-1]} in {_n(ns)}; still pending in {last}"
    why = ("the log ends there" if i + 1 == len(reports)
           else f"report {reports[i + 1].n}'s task lines are missing from the log")
    return UNDECIDED, f"seq {seqs[-1]} in {_n(ns)}; {why}"


def _n(ns: tuple[int, ...]) -> str:
    return f"report {ns[0]}" if len(ns) == 1 else f"reports {_span(ns)}"


def _span(ns: tuple[int, ...]) -> str:
    return ",".join(str(n) for n in ns)
