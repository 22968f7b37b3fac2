"""Each built-in scenario, 5 seeds: the classification worked out from the
reports is the scenario's, and the comparison detectors fire (or stay
silent) as the mechanism says they must.

The runs are short: the workload is sped up with --time-scale where the
host can keep up, the watchdog timeout is 0.3 s, and khungtaskd's and
warn_alloc's intervals are scaled down to it.  Nothing here asserts on
timing: only on what the reports and the summary say.
"""

from __future__ import annotations

import contextlib
import io
import json

import pytest

from kmallocwd.cli import main
from kmallocwd.watchdog.classify import (NO_OOM_POSSIBLE, OOM_VICTIM_STUCK, OVERLOADED, QUIET,
                                         RECLAIM_LIVELOCK, classify_reports)
from kmallocwd.watchdog.report import Report, TaskLine

SEEDS = (1, 2, 3, 4, 5)

# scenario: (expected classification, --time-scale, --duration, which detectors must fire)
CASES = {
    "oom-livelock": (OOM_VICTIM_STUCK, 0.25, 2.4, {"khungtaskd", "warn_alloc", "psi"}),
    "reclaim-livelock": (RECLAIM_LIVELOCK, 1, 1.9, {"warn_alloc", "psi"}),
    "no-oom-possible": (NO_OOM_POSSIBLE, 0.03, 1.4, {"warn_alloc", "psi"}),
    "overload": (OVERLOADED, 0.03, 2.2, {"warn_alloc", "psi"}),
    "quiet": (QUIET, 0.1, 0.8, set()),
}


def run_json(*args: str) -> list[dict]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        rc = main(["run", "-q", "--json", *args])
    assert rc == 0
    return [json.loads(x) for x in out.getvalue().splitlines()]


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("scenario", list(CASES))
@pytest.mark.slow
def test_classification_and_detectors(scenario, seed):
    want, scale, duration, fire = CASES[scenario]
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
    if want == OOM_VICTIM_STUCK:
        # one victim, still listed at the end, uninterruptible (TIF_MEMDIE, no progress)
        victims = [t for t in reports[-1]["tasks"] if t["victim"]]
        assert len(victims) == 1 and victims[0]["uninterruptible"], victims
        assert reports[-1]["dying"] >= 1  # at least the writer holding the lock
    if want in (RECLAIM_LIVELOCK, NO_OOM_POSSIBLE, OVERLOADED, QUIET):
        assert all(r["victim"] == 0 for r in reports)
        assert summary["oom_victims"] == []  # the OOM killer never ran to a kill


# ---- the classifier on hand-made reports ----


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
