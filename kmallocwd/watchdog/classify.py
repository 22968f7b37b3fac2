"""The run's classification, worked out from what the reports print, as a
person reading dmesg would, following the seed's Documentation:

- ``quiet``: no MemAlloc-Info line at all;
- ``oom-victim-stuck`` (the former case): a victim task ($Z > 0) is still
  listed, the same one, in two consecutive reports, while stalling tasks do
  not progress;
- ``overloaded`` (the latter case, first possibility): between two reports
  some stalling task's seq increased, or its stalling request ended;
- ``reclaim-livelock`` (second possibility): no victim, seq unchanged, and
  at least one stalling request is __GFP_FS or __GFP_NOFAIL: the OOM killer
  could be invoked, yet nobody is chosen;
- ``no-oom-possible`` (third possibility): no victim, seq unchanged, and all
  stalling requests are !__GFP_FS && !__GFP_NOFAIL.

Progress is looked for over the last three pairs of consecutive reports
(the situation at the end of the run), "no progress" in the last pair; with
a single report, seq cannot be compared yet and the evidence says so.
"""

from __future__ import annotations

from dataclasses import dataclass

from kmallocwd import gfp as G
from kmallocwd.watchdog.report import Report

QUIET = "quiet"
OOM_VICTIM_STUCK = "oom-victim-stuck"
OVERLOADED = "overloaded"
RECLAIM_LIVELOCK = "reclaim-livelock"
NO_OOM_POSSIBLE = "no-oom-possible"
VALUES = (OOM_VICTIM_STUCK, OVERLOADED, RECLAIM_LIVELOCK, NO_OOM_POSSIBLE, QUIET)

FS_OR_NOFAIL = G.___GFP_FS | G.___GFP_NOFAIL
PAIRS = 3  # pairs of consecutive reports compared


@dataclass(frozen=True)
class Classification:
    value: str
    evidence: str

    def to_json(self) -> dict:
        return {"value": self.value, "evidence": self.evidence}


def _who(line) -> str:
    return f"{line.comm}({line.pid})"


def _some(items: list[str], k: int = 3) -> str:
    return ", ".join(items[:k]) + (f" and {len(items) - k} more" if len(items) > k else "")


def classify_reports(reports: list[Report]) -> Classification:
    if not reports:
        return Classification(QUIET, "no MemAlloc-Info line: no allocation stalled for a "
                              "timeout")
    last = reports[-1]
    prev = reports[-2] if len(reports) >= 2 else None
    stall_last = {x.pid: x for x in last.lines if x.stalling}
    victims_last = [x for x in last.lines if x.victim]
    progressed: list[str] = []
    stuck: list[str] = []
    # seq compared over the last PAIRS pairs of consecutive reports ("if
    # $seq is increasing over time, it is not a livelock"); stuck: the last pair.
    first_pair = max(1, len(reports) - PAIRS)
    for i in range(first_pair, len(reports)):
        a, b = reports[i - 1], reports[i]
        sb = {x.pid: x for x in b.lines if x.stalling}
        for x in a.lines:
            if not x.stalling:
                continue
            y = sb.get(x.pid)
            if y is None:
                progressed.append(f"{_who(x)} (its seq={x.seq} request ended after report {a.n})")
            elif y.seq != x.seq:
                progressed.append(f"{_who(x)} (seq {x.seq} -> {y.seq} in report {b.n})")
            elif b is last:
                stuck.append(f"{_who(x)} seq={x.seq}")
    span = f"reports {prev.n} and {last.n}" if prev is not None else f"report {last.n}"
    counts = f"last report: {last.stalling} stalling, {last.dying} dying, {last.victim} victim"
    one = "" if prev is not None else " (one report only: seq not compared yet)"

    victims_prev = {x.pid for x in prev.lines if x.victim} if prev is not None else set()
    same_victim = [x for x in victims_last if prev is None or x.pid in victims_prev]
    if same_victim and (stuck or prev is None):
        v = same_victim[0]
        state = v.text.split(")", 1)[1].strip() if ")" in v.text else ""
        return Classification(OOM_VICTIM_STUCK, (
            f"the OOM killer's victim {_who(v)} is listed as '{state}' in {span}{one}; "
            f"{len(stuck)} stalling task(s) kept the same seq ({_some(stuck)}); "
            f"{counts}: TIF_MEMDIE only helps a victim that allocates, and this one cannot "
            "make progress, so no other victim is chosen"))
    if progressed:
        return Classification(OVERLOADED, (
            f"over reports {reports[first_pair - 1].n} to {last.n}, {len(progressed)} stalling "
            f"request(s) made progress: {_some(progressed)}; {len(stuck)} task(s) kept the same "
            f"seq between {span}; {counts}: slow, not a livelock"))
    fs = [x for x in stall_last.values() if x.gfp is not None and x.gfp & FS_OR_NOFAIL]
    masks = sorted({f"0x{x.gfp:x}" for x in stall_last.values() if x.gfp is not None})
    unchanged = (f"seq unchanged between {span} for {len(stuck)} task(s) ({_some(stuck)})"
                 if prev is not None else f"seq not compared yet{one}")
    if fs:
        return Classification(RECLAIM_LIVELOCK, (
            f"no victim task in any listed report; {len(fs)} of {len(stall_last)} stalling "
            f"requests are __GFP_FS or __GFP_NOFAIL ({_some([f'{_who(x)} gfp=0x{x.gfp:x}' for x in fs])}), "
            f"so the OOM killer could be invoked, yet none was chosen: reclaim is not working "
            f"as expected; {unchanged}"))
    return Classification(NO_OOM_POSSIBLE, (
        f"no victim task; all {len(stall_last)} stalling requests are !__GFP_FS && "
        f"!__GFP_NOFAIL (gfp {', '.join(masks)}), which never invoke the OOM killer; "
        f"{unchanged}"))
