"""Each built-in scenario, 5 seeds: the classification worked out from the
reports is the scenario's, and the comparison detectors fire (or stay
silent) as the mechanism says they must.

The runs are short: the workload is sped up with --time-scale where the
host can keep up, the watchdog timeout is 0.3 s, and khungtaskd's and
warn_alloc's intervals are scaled down to it.  Nothing here asserts on
timing: only on what the reports and the summary say.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from kmallocwd.watchdog.classify import (NO_OOM_POSSIBLE, OOM_VICTIM_STUCK, OVERLOADED, QUIET,
                                         RECLAIM_LIVELOCK, UNDETERMINED, classify_reports)
from kmallocwd.watchdog.progress import NO_PROGRESS, PROGRESS, per_task
from kmallocwd.watchdog.report import Report, TaskLine

from conftest import run_json

SEEDS = (1, 2, 3, 4, 5)

# scenario: (expected classification, (--time-scale, --duration) twice, which detectors must fire)
CASES = {
    "oom-livelock": (OOM_VICTIM_STUCK, ((0.25, 2.4), (0.5, 3.6)),
                     {"khungtaskd", "warn_alloc", "psi"}),
    "reclaim-livelock": (RECLAIM_LIVELOCK, ((1, 1.9), (0.5, 1.9)), {"warn_alloc", "psi"}),
    "no-oom-possible": (NO_OOM_POSSIBLE, ((0.03, 1.4), (0.06, 1.4)), {"warn_alloc", "psi"}),
    "overload": (OVERLOADED, ((0.03, 2.2), (0.06, 2.2)), {"warn_alloc", "psi"}),
    "quiet": (QUIET, ((0.1, 0.8), (0.2, 0.8)), set()),
}


@pytest.mark.slow
@pytest.mark.parametrize("which", (0, 1))
@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("scenario", list(CASES))
def test_classification_and_detectors(scenario, seed, which):
    want, scales, fire = CASES[scenario]
    scale, duration = scales[which]
    recs = run_json("--scenario", scenario, "--seed", str(seed), "--timeout", "0.3",
                    "--time-scale", str(scale), "--duration", str(duration),
                    "--detectors", "khungtaskd,warn_alloc,psi", "--hung-task-timeout", "0.3",
                    "--warn-alloc-stall", "0.3")
    summary = recs[-1]
    reports = [r for r in recs if r["type"] == "report"]
    assert summary["classification"] == want, (summary["evidence"], summary["reports"])
    assert summary["evidence"]
    if want != QUIET:
        assert len(reports) >= 2, summary["reports"]
    fired = {name for name, f in summary["detectors"]["fired"].items() if f["count"]}
    assert fired == fire, summary["detectors"]["fired"]
    assert summary["tentative"] is False
    if want == OOM_VICTIM_STUCK:
        # one victim, still listed at the end, uninterruptible (TIF_MEMDIE, no progress)
        victims = [t for t in reports[-1]["tasks"] if t["victim"]]
        assert len(victims) == 1 and victims[0]["uninterruptible"], victims
        assert reports[-1]["dying"] >= 1  # at least the writer holding the lock
    if want in (RECLAIM_LIVELOCK, NO_OOM_POSSIBLE, OVERLOADED, QUIET):
        assert all(r["victim"] == 0 for r in reports)
        assert summary["oom_victims"] == []  # the OOM killer never ran to a kill


# ---- the classifier on hand-made reports ----


@dataclass(frozen=True)
class Final:
    """A slot read after a run."""

    valid: int
    seq: int
    start: int


def line(pid: int, seq: int | None, gfp: int = 0x24280CA, victim: bool = False,
         dying: bool = False) -> TaskLine:
    text = f"MemAlloc: t({pid})" + (f" seq={seq} gfp=0x{gfp:x} order=0 delay=1" if seq else "")
    text += " uninterruptible exiting victim" if victim else (" dying" if dying else "")
    return TaskLine(0, "t", pid, seq is not None, seq, gfp if seq else None, 0 if seq else None,
                    1 if seq else None, victim, victim, dying, victim, False, seq is not None, text)


def rep(n: int, *lines: TaskLine) -> Report:
    return Report(n, 0, 0, 0, sum(x.stalling for x in lines), sum(x.dying for x in lines),
                  sum(x.victim for x in lines), "", list(lines))


def test_the_documentations_reasoning_on_hand_made_reports():
    assert classify_reports([]).value == QUIET
    stuck = [rep(1, line(1, 5), line(2, None, victim=True)),
             rep(2, line(1, 5), line(2, None, victim=True))]
    c = classify_reports(stuck)
    assert c.value == OOM_VICTIM_STUCK and "t(2)" in c.evidence
    assert classify_reports([rep(1, line(1, 5)), rep(2, line(1, 6))]).value == OVERLOADED
    assert classify_reports([rep(1, line(1, 5), line(3, 2)),
                             rep(2, line(3, 2))]).value == OVERLOADED  # t(1)'s request ended
    fs = classify_reports([rep(1, line(1, 5, 0x2400000), line(2, 7, 0x24200CA)),
                           rep(2, line(1, 5, 0x2400000), line(2, 7, 0x24200CA))])
    assert fs.value == RECLAIM_LIVELOCK and "0x24200ca" in fs.evidence
    nofail = classify_reports([rep(1, line(1, 5, 0x2400800)), rep(2, line(1, 5, 0x2400800))])
    assert nofail.value == RECLAIM_LIVELOCK  # __GFP_NOFAIL counts as __GFP_FS does
    nofs = classify_reports([rep(1, line(1, 5, 0x2400000), line(2, 7, 0x242014A)),
                             rep(2, line(1, 5, 0x2400000), line(2, 7, 0x242014A))])
    assert nofs.value == NO_OOM_POSSIBLE and "0x242014a" in nofs.evidence


def test_one_report_without_a_victim_is_undetermined():
    for gfp in (0x24200CA, 0x2400000):  # __GFP_FS or not: one report cannot tell
        c = classify_reports([rep(1, line(1, 5, gfp), line(2, 9, gfp))])
        assert c.value == UNDETERMINED and not c.tentative, c
        assert "second report" in c.evidence


def test_a_victim_in_one_report_is_the_former_case_tentatively():
    c = classify_reports([rep(1, line(1, 5), line(2, None, victim=True))])
    assert c.value == OOM_VICTIM_STUCK and c.tentative and "t(2)" in c.evidence
    # a victim that first appears in the last report: not "no victim"
    late = classify_reports([rep(1, line(1, 5, 0x2400000)), rep(2, line(1, 5, 0x2400000)),
                             rep(3, line(1, 5, 0x2400000), line(2, None, victim=True))])
    assert late.value == OOM_VICTIM_STUCK and late.tentative, late
    assert "no victim" not in late.evidence and "but not in report 2" in late.evidence
    # in the last two reports: definite
    both = classify_reports([rep(1, line(1, 5), line(2, None, victim=True)),
                             rep(2, line(1, 5), line(2, None, victim=True))])
    assert both.value == OOM_VICTIM_STUCK and not both.tentative


def test_the_class_follows_the_per_task_verdicts():
    # t(1) made progress in reports 1-2, then three reports of nobody moving:
    # the summary lists t(1) under "made progress", so the class is overloaded
    reports = [rep(1, line(1, 5), line(2, 7)), rep(2, line(1, 6), line(2, 7)),
               rep(3, line(1, 6), line(2, 7)), rep(4, line(1, 6), line(2, 7)),
               rep(5, line(1, 6), line(2, 7))]
    verdicts = per_task(reports)
    assert {v.pid for v in verdicts if v.verdict == PROGRESS} == {1}
    c = classify_reports(reports, verdicts)
    assert c.value == OVERLOADED and "t(1)" in c.evidence and "t(2)" in c.evidence
    # a run's final slot state counts: a request that finished after the last report
    final = {1: Final(1, 5, 0), 2: Final(0, 7, 0)}  # t(2)'s request finished
    stuck = [rep(1, line(1, 5), line(2, 7)), rep(2, line(1, 5), line(2, 7))]
    vs = per_task(stuck, final, now=10, timeout=1)
    assert [v.verdict for v in vs] == [PROGRESS, NO_PROGRESS]
    assert classify_reports(stuck, vs).value == OVERLOADED
    assert classify_reports(stuck).value == RECLAIM_LIVELOCK  # from the reports alone
    # each request listed once, the next report complete without it: ended
    assert classify_reports([rep(1, line(1, 5)), rep(2, line(2, 3))]).value == OVERLOADED
    # a first report whose task lines are missing, then t(1) listed once: undetermined
    cut = rep(1)
    cut.stalling, cut.partial = 1, True
    c = classify_reports([cut, rep(2, line(1, 5))])
    assert c.value == UNDETERMINED and "seen in two reports" in c.evidence, c


@pytest.mark.parametrize("gfp,order,why", [
    (0x24200CA, 4, "order 4 > PAGE_ALLOC_COSTLY_ORDER"),
    (0x24200CA | 0x04, 0, "lowmem-only"),
    (0x24200CA | 0x40000, 0, "__GFP_THISNODE"),
    (0x2400040, 0, "!__GFP_FS && !__GFP_NOFAIL"),
])
def test_requests_4_4_never_takes_to_the_oom_killer(gfp, order, why):
    def stuck_line(pid: int) -> TaskLine:
        x = line(pid, 5, gfp)
        x.order = order
        return x
    c = classify_reports([rep(1, stuck_line(1)), rep(2, stuck_line(1))])
    assert c.value == NO_OOM_POSSIBLE and why in c.evidence, c.evidence
    assert "could invoke" not in c.evidence
    # __GFP_NOFAIL overrides every one of these exits
    nofail = line(1, 5, gfp | 0x800)
    nofail.order = order
    assert classify_reports([rep(1, nofail), rep(2, nofail)]).value == RECLAIM_LIVELOCK


def test_the_evidence_says_each_thing_once_and_lists_nothing_empty():
    cases = [[rep(1, line(1, 5))],
             [rep(1, line(1, 5), line(2, None, victim=True))],
             [rep(1, line(1, 5)), rep(2, line(1, 6))],
             [rep(1, line(1, 5)), rep(2, line(1, 5))],
             [rep(1, line(1, 5), line(2, None, victim=True)),
              rep(2, line(1, 6), line(2, None, victim=True))]]
    for reports in cases:
        e = classify_reports(reports).evidence
        assert "()" not in e and e.count("one report") <= 1 and e.count("only report") <= 1, e
