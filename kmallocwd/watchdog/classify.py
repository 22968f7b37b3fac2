"""A run's (or a console log's) classification, worked out from what the
reports print, as a person reading dmesg would, following the patch's
Documentation (its "How memory allocation stalls are reported?"):

- ``quiet``: no MemAlloc-Info line at all;
- ``oom-victim-stuck`` (the former case): the last report lists a victim
  ($Z > 0).  Definite when the same victim is in the last two reports;
  *tentative* when the victim is in one report only (the log or run ends
  before a second look, or it was chosen since the previous report);
- the latter case ($Z = 0) needs seq compared over time ("If $seq is
  increasing over time, it is not a livelock"), so with a single report it
  is ``undetermined``.  With two or more, from the per-task verdicts
  (kmallocwd.watchdog.progress, the same the summary lists):

  - ``overloaded`` (first possibility): some stalling request made progress
    (its seq grew, or it ended);
  - ``reclaim-livelock`` (second possibility): no progress, and at least one
    request left stuck could invoke the OOM killer as Linux 4.4's
    __alloc_pages_may_oom() decides it: __GFP_NOFAIL, or __GFP_FS with
    order <= PAGE_ALLOC_COSTLY_ORDER, not lowmem-only (__GFP_DMA/__GFP_DMA32)
    and not __GFP_THISNODE;
  - ``no-oom-possible`` (third possibility): no progress, and none of the
    stuck requests can invoke the OOM killer;
  - ``undetermined``: no request was seen twice yet.

A log whose reports have no task lines (postings often snip them) is read
from the counts and, in the later revisions' format, from oom_count: the
stalling count falling, or oom_count growing with no victim pending, means
requests end (overloaded); otherwise ``undetermined``.
"""

from __future__ import annotations

from dataclasses import dataclass

from kmallocwd import gfp as G
from kmallocwd.watchdog.progress import NO_PROGRESS, PROGRESS, Verdict, per_task
from kmallocwd.watchdog.report import Report, TaskLine

QUIET = "quiet"
OOM_VICTIM_STUCK = "oom-victim-stuck"
OVERLOADED = "overloaded"
RECLAIM_LIVELOCK = "reclaim-livelock"
NO_OOM_POSSIBLE = "no-oom-possible"
UNDETERMINED = "undetermined"
VALUES = (OOM_VICTIM_STUCK, OVERLOADED, RECLAIM_LIVELOCK, NO_OOM_POSSIBLE, UNDETERMINED, QUIET)

FS_OR_NOFAIL = G.___GFP_FS | G.___GFP_NOFAIL
PAGE_ALLOC_COSTLY_ORDER = 3


@dataclass(frozen=True)
class Classification:
    value: str
    evidence: str
    tentative: bool = False  # the former case seen in one report only

    def to_json(self) -> dict:
        return {"value": self.value, "evidence": self.evidence, "tentative": self.tentative}


def why_no_oom(gfp: int, order: int | None) -> str | None:
    """None if Linux 4.4's __alloc_pages_may_oom() would call out_of_memory()
    for this request; else the reason it never does."""
    if gfp & G.___GFP_NOFAIL:
        return None
    if order is not None and order > PAGE_ALLOC_COSTLY_ORDER:
        return f"order {order} > PAGE_ALLOC_COSTLY_ORDER"
    if gfp & (G.___GFP_DMA | G.___GFP_DMA32):
        return "lowmem-only (__GFP_DMA or __GFP_DMA32)"
    if not gfp & G.___GFP_FS:
        return "!__GFP_FS && !__GFP_NOFAIL"
    if gfp & G.___GFP_THISNODE:
        return "__GFP_THISNODE"
    return None


def _who(line) -> str:
    return f"{line.comm}({line.pid})"


def _some(items: list[str], k: int = 3) -> str:
    return ", ".join(items[:k]) + (f" and {len(items) - k} more" if len(items) > k else "")


def _counts(r: Report) -> str:
    extra = "" if r.oom_count is None else f", oom_count={r.oom_count}"
    return f"{r.stalling} stalling, {r.dying} dying, {r.victim} victim{extra}"


def classify_reports(reports: list[Report], verdicts: list[Verdict] | None = None,
                     ) -> Classification:
    """``verdicts``: the per-task verdicts the summary lists (a run's use its
    final slot states); None: worked out from the reports alone."""
    if not reports:
        return Classification(QUIET, "no MemAlloc-Info line: no allocation stalled for a "
                               "timeout")
    if verdicts is None:
        verdicts = per_task(reports)
    last = reports[-1]
    prev = reports[-2] if len(reports) >= 2 else None
    if last.victim > 0 or any(x.victim for x in last.lines):
        return _former(reports, verdicts)
    if prev is None:
        return Classification(UNDETERMINED, (
            f"one report ({_counts(last)}) and no victim: the latter case (the OOM killer not "
            "invoked, or not choosing), but whether it is a livelock or an overload needs seq "
            "compared over time, and there is no second report"))
    if verdicts:
        return _latter(reports, verdicts)
    return _trends(reports)


def _former(reports: list[Report], verdicts: list[Verdict]) -> Classification:
    last = reports[-1]
    prev = reports[-2] if len(reports) >= 2 else None
    victims = [x for x in last.lines if x.victim]
    moved = [v for v in verdicts if v.verdict == PROGRESS]
    stuck = [v for v in verdicts if v.verdict == NO_PROGRESS and last.n in v.reports]
    tail = (f"; {len(stuck)} stalling task(s) kept the same seq ({_some([v.who for v in stuck])})"
            if stuck else "")
    if moved:
        tail += (f"; {len(moved)} stalling request(s) made progress "
                 f"({_some([v.who for v in moved])})")
    counts = f"last report: {_counts(last)}"
    why = ("TIF_MEMDIE only helps a victim that allocates, and this one cannot make progress, "
           "so no other victim is chosen")
    if victims:
        v = victims[0]
        state = v.text.split(")", 1)[1].strip() if ")" in v.text else ""
        before = {x.pid for x in prev.lines if x.victim} if prev is not None else set()
        if v.pid in before:
            return Classification(OOM_VICTIM_STUCK, (
                f"the OOM killer's victim {_who(v)} is listed as '{state}' in reports {prev.n} "
                f"and {last.n}{tail}; {counts}: {why}"))
        where = ("in the only report" if prev is None else
                 f"in the last report ({last.n}) but not in report {prev.n}")
        return Classification(OOM_VICTIM_STUCK, (
            f"tentative: the OOM killer's victim {_who(v)} is listed as '{state}' {where}, "
            f"so whether it stays stuck is not known yet{tail}; {counts}"), tentative=True)
    if prev is not None and prev.victim > 0 and not prev.lines and not last.lines:
        return Classification(OOM_VICTIM_STUCK, (
            f"tentative: reports {prev.n} and {last.n} both count a victim task, but their "
            f"task lines are missing, so whether it is the same victim is not known; {counts}"),
            tentative=True)
    where = "the only report" if prev is None else f"the last report ({last.n})"
    return Classification(OOM_VICTIM_STUCK, (
        f"tentative: {where} counts {last.victim} victim task(s), whose task lines are missing "
        f"from the log{tail}; {counts}"), tentative=True)


def _last_line(reports: list[Report], v: Verdict) -> TaskLine | None:
    n = v.reports[-1]
    for r in reports:
        if r.n == n:
            for x in r.lines:
                if x.pid == v.pid and x.stalling:
                    return x
    return None


def _latter(reports: list[Report], verdicts: list[Verdict]) -> Classification:
    last = reports[-1]
    span = f"reports {reports[0].n} to {last.n}"
    moved = [v for v in verdicts if v.verdict == PROGRESS]
    stuck = [v for v in verdicts if v.verdict == NO_PROGRESS]
    counts = f"last report: {_counts(last)}"
    if moved:
        kept = (f"; {len(stuck)} kept the same seq ({_some([v.who for v in stuck])})"
                if stuck else "")
        return Classification(OVERLOADED, (
            f"no victim in the last report; over {span}, {len(moved)} stalling request(s) made "
            f"progress: {_some([f'{v.who} ({v.detail})' for v in moved])}{kept}; {counts}: "
            "slow, not a livelock"))
    if not stuck:
        return Classification(UNDETERMINED, (
            f"no victim, and no stalling task was seen in two reports over {span} (each "
            f"request is listed once), so seq cannot be compared yet; {counts}"))
    unchanged = (f"seq unchanged over {span} for {len(stuck)} task(s) "
                 f"({_some([f'{v.who} seq={v.seqs[-1]}' for v in stuck])})")
    lines = [x for x in (_last_line(reports, v) for v in stuck)
             if x is not None and x.gfp is not None]
    can = [x for x in lines if why_no_oom(x.gfp, x.order) is None]
    if can:
        return Classification(RECLAIM_LIVELOCK, (
            f"no victim task; {unchanged}; {len(can)} of them could invoke the OOM killer "
            f"({_some([f'{_who(x)} gfp=0x{x.gfp:x} order={x.order}' for x in can])}: "
            "__GFP_FS or __GFP_NOFAIL, order <= 3, not lowmem-only, not __GFP_THISNODE), yet "
            f"none was chosen: reclaim is not working as expected; {counts}"))
    reasons: dict[str, list[str]] = {}
    for x in lines:
        reasons.setdefault(str(why_no_oom(x.gfp, x.order)), []).append(
            f"{_who(x)} gfp=0x{x.gfp:x}")
    said = "; ".join(f"{why}: {_some(ws)}" for why, ws in reasons.items())
    return Classification(NO_OOM_POSSIBLE, (
        f"no victim task; {unchanged}; none of these requests can invoke the OOM killer in "
        f"Linux 4.4 ({said}); {counts}"))


def _trends(reports: list[Report]) -> Classification:
    """No task lines at all: the counts and oom_count over the last two reports."""
    prev, last = reports[-2], reports[-1]
    counts = f"stalling {prev.stalling} -> {last.stalling} over reports {prev.n} and {last.n}"
    if last.stalling < prev.stalling:
        return Classification(OVERLOADED, (
            f"no task lines in the log; no victim; {counts}: some stalling requests ended, so "
            "not a livelock"))
    if prev.oom_count is not None and last.oom_count is not None:
        if last.oom_count > prev.oom_count:
            return Classification(OVERLOADED, (
                f"no task lines in the log; no victim pending; oom_count {prev.oom_count} -> "
                f"{last.oom_count} over reports {prev.n} and {last.n}: the OOM killer keeps "
                f"being invoked and its victims leave; {counts}"))
        return Classification(UNDETERMINED, (
            f"no task lines in the log; no victim; oom_count unchanged at {last.oom_count} over "
            f"reports {prev.n} and {last.n}, so the requests are stuck before the OOM killer "
            f"is invoked; {counts}; a livelock or a slow system cannot be told apart without "
            "the tasks' seq, nor the second possibility from the third without their gfp"))
    return Classification(UNDETERMINED, (
        f"no task lines in the log; no victim; {counts}; without the tasks' seq (nor "
        "oom_count, which v3's line does not print) a livelock cannot be told from a slow "
        "system"))
