"""``kmallocwd classify LOG``: on logs that ``kmallocwd run`` writes (its
classification is run's own) and on excerpts written here by hand in each
format the parser reads (v3's and the later revisions' lines, with and
without timestamps, task lines before or after MemAlloc-Info, lines missing,
the OOM killer's, warn_alloc's and khungtaskd's lines)."""

from __future__ import annotations

import contextlib
import io
import json
import re

import pytest

from kmallocwd.cli import main
from kmallocwd.watchdog.classify import (NO_OOM_POSSIBLE, OOM_VICTIM_STUCK, OVERLOADED, QUIET,
                                         RECLAIM_LIVELOCK, UNDETERMINED)
from kmallocwd.watchdog.logparse import parse


def cli(*args: str, stdin: str | None = None) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        if stdin is not None:
            import sys

            saved = sys.stdin
            sys.stdin = io.TextIOWrapper(io.BytesIO(stdin.encode()), encoding="utf-8")
            try:
                rc = main(list(args))
            finally:
                sys.stdin = saved
        else:
            rc = main(list(args))
    return rc, out.getvalue(), err.getvalue()


def classify_text(tmp_path, text: str) -> dict:
    p = tmp_path / "console.log"
    p.write_text(text)
    rc, out, err = cli("classify", "--json", str(p))
    assert rc == 0, err
    return json.loads(out)


# ---- excerpts, written for these tests (made-up tasks, pids and times) ----

V3_STUCK_VICTIM = """\
[  301.104211] MemAlloc-Info: 2 stalling task, 1 dying task, 1 victim task.
[  301.104980] MemAlloc: bash(2201) seq=14 gfp=0x24201ca order=0 delay=10420
[  301.105512] MemAlloc: make(3310) uninterruptible exiting victim
[  301.106003] MemAlloc: cc1(3377) seq=9 gfp=0x24280ca order=0 delay=10010
[  301.106420] make            D ffff88007fc17d80     0  3310   3300 0x00100084
[  301.106901] Call Trace:
[  301.107330]  [<ffffffff816a2d2e>] schedule+0x3e/0x90
[  311.110050] MemAlloc-Info: 2 stalling task, 1 dying task, 1 victim task.
[  311.110622] MemAlloc: bash(2201) seq=14 gfp=0x24201ca order=0 delay=20426
[  311.111035] MemAlloc: make(3310) uninterruptible exiting victim
[  311.111477] MemAlloc: cc1(3377) seq=9 gfp=0x24280ca order=0 delay=20015
[  311.112001] Mem-Info:
"""

# the later format, MemAlloc-Info printed after the task lines, no timestamps
LATER_INFO_LAST_LIVELOCK = """\
MemAlloc: kswapd0(52) flags=0xa60840 switches=8812 uninterruptible
MemAlloc: postmaster(1402) flags=0x400100 switches=331 seq=77 gfp=0x24200ca(GFP_HIGHUSER_MOVABLE) order=0 delay=60230 uninterruptible
MemAlloc: rsyslogd(711) flags=0x400140 switches=120 seq=31 gfp=0x2400240(GFP_NOFS|__GFP_NOWARN) order=0 delay=60002
Mem-Info:
active_anon:201544 inactive_anon:2052 isolated_anon:0
MemAlloc-Info: stalling=2 dying=0 exiting=0 victim=0 oom_count=12
MemAlloc: kswapd0(52) flags=0xa60840 switches=8812 uninterruptible
MemAlloc: postmaster(1402) flags=0x400100 switches=331 seq=77 gfp=0x24200ca(GFP_HIGHUSER_MOVABLE) order=0 delay=70235 uninterruptible
MemAlloc: rsyslogd(711) flags=0x400140 switches=120 seq=31 gfp=0x2400240(GFP_NOFS|__GFP_NOWARN) order=0 delay=70007
Mem-Info:
MemAlloc-Info: stalling=2 dying=0 exiting=0 victim=0 oom_count=12
"""

# the later format, Info first, interleaved with the OOM killer, warn_alloc and
# khungtaskd; a syslog prefix; seq moving
LATER_OVERLOAD = """\
Jan 12 04:10:01 box kernel: [ 1200.000100] MemAlloc-Info: stalling=2 dying=0 exiting=0, victim=0 oom_count=40/3
Jan 12 04:10:01 box kernel: [ 1200.000200] MemAlloc: java(900) flags=0x400000 switches=77 seq=120 gfp=0x24280ca(GFP_HIGHUSER_MOVABLE|__GFP_ZERO) order=0 delay=10500
Jan 12 04:10:01 box kernel: [ 1200.000300] MemAlloc: java(901) flags=0x400000 switches=80 seq=88 gfp=0x24280ca(GFP_HIGHUSER_MOVABLE|__GFP_ZERO) order=0 delay=10100
Jan 12 04:10:05 box kernel: [ 1204.500000] java invoked oom-killer: gfp_mask=0x24280ca(GFP_HIGHUSER_MOVABLE|__GFP_ZERO), nodemask=0, order=0, oom_score_adj=0
Jan 12 04:10:05 box kernel: [ 1204.500900] Killed process 1777 (stress) total-vm:2101232kB, anon-rss:1880012kB, file-rss:0kB
Jan 12 04:10:07 box kernel: [ 1206.000000] java: page allocation stalls for 16010ms, order:0, mode:0x24280ca(GFP_HIGHUSER_MOVABLE|__GFP_ZERO)
Jan 12 04:10:09 box kernel: [ 1208.000000] INFO: task jbd2/sda1-8:301 blocked for more than 120 seconds.
Jan 12 04:10:11 box kernel: [ 1210.000100] MemAlloc-Info: stalling=2 dying=0 exiting=0, victim=0 oom_count=57/4
Jan 12 04:10:11 box kernel: [ 1210.000200] MemAlloc: java(900) flags=0x400000 switches=79 seq=131 gfp=0x24280ca(GFP_HIGHUSER_MOVABLE|__GFP_ZERO) order=0 delay=10200
Jan 12 04:10:11 box kernel: [ 1210.000300] MemAlloc: java(901) flags=0x400000 switches=95 seq=88 gfp=0x24280ca(GFP_HIGHUSER_MOVABLE|__GFP_ZERO) order=0 delay=20100
"""

# only MemAlloc-Info lines (the task lines were snipped), the later format
INFO_ONLY_OOM_FLAT = """\
[  500.000001] MemAlloc-Info: stalling=31 dying=1 exiting=0 victim=0 oom_count=7
(...snipped...)
[  530.000001] MemAlloc-Info: stalling=33 dying=1 exiting=0 victim=0 oom_count=7
"""
INFO_ONLY_OOM_GROWS = """\
[  500.000001] MemAlloc-Info: stalling=31 dying=1 exiting=0 victim=0 oom_count=7
[  530.000001] MemAlloc-Info: stalling=31 dying=1 exiting=0 victim=0 oom_count=900
"""
INFO_ONLY_V3_VICTIM = """\
[   60.100000] MemAlloc-Info: 4 stalling task, 2 dying task, 1 victim task.
[   70.100000] MemAlloc-Info: 4 stalling task, 2 dying task, 1 victim task.
"""

# v3, !__GFP_FS requests stuck, one report's task lines missing in the middle
V3_NOFS = """\
[   12.000000] MemAlloc-Info: 2 stalling task, 0 dying task, 0 victim task.
[   12.000100] MemAlloc: nfsd(1490) seq=5 gfp=0x2400000 order=0 delay=10001
[   12.000200] MemAlloc: xfsaild/dm-0(512) seq=40 gfp=0x242014a order=0 delay=10040
[   22.000000] MemAlloc-Info: 2 stalling task, 0 dying task, 0 victim task.
[   32.000000] MemAlloc-Info: 2 stalling task, 0 dying task, 0 victim task.
[   32.000100] MemAlloc: nfsd(1490) seq=5 gfp=0x2400000 order=0 delay=30001
[   32.000200] MemAlloc: xfsaild/dm-0(512) seq=40 gfp=0x242014a order=0 delay=30040
"""

V3_ONE_REPORT = """\
[   12.000000] MemAlloc-Info: 1 stalling task, 0 dying task, 0 victim task.
[   12.000100] MemAlloc: kworker/0:2(77) seq=3 gfp=0x24000c0 order=0 delay=10001
"""


@pytest.mark.parametrize("text,want,tentative", [
    (V3_STUCK_VICTIM, OOM_VICTIM_STUCK, False),
    (LATER_INFO_LAST_LIVELOCK, RECLAIM_LIVELOCK, False),
    (LATER_OVERLOAD, OVERLOADED, False),
    (INFO_ONLY_OOM_FLAT, UNDETERMINED, False),
    (INFO_ONLY_OOM_GROWS, OVERLOADED, False),
    (INFO_ONLY_V3_VICTIM, OOM_VICTIM_STUCK, True),
    (V3_NOFS, NO_OOM_POSSIBLE, False),
    (V3_ONE_REPORT, UNDETERMINED, False),
    ("[    1.000000] Linux version 4.4.0\nnothing to see\n", QUIET, False),
])
def test_hand_written_excerpts(tmp_path, text, want, tentative):
    s = classify_text(tmp_path, text)
    assert s["classification"] == want, s["evidence"]
    assert s["tentative"] is tentative
    assert s["evidence"]


def test_the_later_format_is_read_field_by_field():
    log = parse(LATER_INFO_LAST_LIVELOCK)
    assert log.order == "info-last" and log.formats == ["later"]
    r = log.reports[0]
    assert (r.stalling, r.exiting, r.oom_count, r.partial) == (2, 0, 12, False)
    by = {x.pid: x for x in r.lines}
    assert by[52].stalling is False and by[52].flags == 0xA60840 and by[52].switches == 8812
    assert by[1402].seq == 77 and by[1402].gfp == 0x24200CA and by[1402].uninterruptible
    assert by[711].gfp == 0x2400240 and by[711].delay == 60002
    v3 = parse(V3_STUCK_VICTIM)
    assert v3.order == "info-first" and v3.formats == ["v3"]
    assert [x.pid for x in v3.reports[1].lines] == [2201, 3310, 3377]
    assert v3.reports[1].time_ns == 311_110_050_000
    assert v3.reports[0].lines[1].victim and v3.reports[0].lines[1].exiting


def test_the_other_lines_are_read_and_reported(tmp_path):
    log = parse(LATER_OVERLOAD)
    kinds = [(e.kind, e.comm, e.pid) for e in log.events]
    assert kinds == [("oom-invoked", "java", None), ("killed", "stress", 1777),
                     ("warn_alloc", "java", None), ("khungtaskd", "jbd2/sda1-8", 301)]
    assert [r.oom_count for r in log.reports] == [40, 57]
    p = tmp_path / "syslog"
    p.write_text(LATER_OVERLOAD)
    rc, out, _ = cli("classify", str(p))
    assert rc == 0
    assert "invoked 1 time(s); killed 1 process(es): stress(1777) at 1204.501 s" in out
    assert "oom_count 40 -> 57" in out
    assert re.search(r"java\(900\) +seq 120 -> 131 over reports 1,2", out)
    assert "khungtaskd): 1 line(s), first at 1208.000 s: INFO: task jbd2/sda1-8:301" in out


def test_a_missing_report_body_is_no_evidence_of_an_ended_request():
    log = parse(V3_NOFS)
    assert [r.partial for r in log.reports] == [False, True, False]


def test_stdin_and_control_characters(tmp_path):
    hostile = V3_ONE_REPORT.replace("kworker/0:2", "evil\x1b[2Jx\x07")
    rc, out, _ = cli("classify", "-", stdin=hostile)
    assert rc == 0
    assert "\x1b" not in out and "\x07" not in out
    assert "evil\\x1b[2Jx\\x07(77)" in out
    assert "classification: undetermined" in out


@pytest.mark.parametrize("make,what", [
    (lambda d: str(d / "absent.log"), "cannot read it"),
    (lambda d: str(d), "a directory, not a regular file"),
    (lambda d: (d / "bin.log").write_bytes(b"MemAlloc\xff\n") and str(d / "bin.log"),
     "not UTF-8"),
])
def test_bad_input_is_one_line_exit_2(tmp_path, make, what):
    rc, out, err = cli("classify", make(tmp_path))
    assert rc == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and what in err, err


def test_an_oversized_log_is_refused(tmp_path, monkeypatch):
    import kmallocwd.watchdog.logread as logread

    monkeypatch.setattr(logread, "LOG_LIMIT", 64)
    p = tmp_path / "big.log"
    p.write_text(V3_STUCK_VICTIM)
    rc, _, err = cli("classify", str(p))
    assert rc == 2 and "over the limit" in err and len(err.strip().splitlines()) == 1
    rc, _, err = cli("classify", "-", stdin=V3_STUCK_VICTIM)
    assert rc == 2 and "more than the limit" in err


# ---- logs that kmallocwd run writes ----

RUNS = {  # scenario: (--time-scale, --duration)
    "oom-livelock": (0.25, 2.4),
    "reclaim-livelock": (1, 1.9),
    "no-oom-possible": (0.03, 1.4),
    "overload": (0.03, 2.2),
    "quiet": (0.1, 0.8),
}


@pytest.mark.parametrize("scenario", list(RUNS))
@pytest.mark.slow
def test_classify_reads_runs_logs_as_run_does(tmp_path, scenario):
    scale, duration = RUNS[scenario]
    common = ("run", "-q", "--scenario", scenario, "--timeout", "0.3", "--time-scale",
              str(scale), "--duration", str(duration))
    text_log = tmp_path / "run.log"
    rc, out, err = cli(*common, "--log", str(text_log))
    assert rc == 0, err
    run_class = re.search(r"^classification: (\S+)", out, re.M).group(1)
    rc, out, err = cli("classify", "--json", str(text_log))
    assert rc == 0, err
    got = json.loads(out)
    # run's verdicts may also use the slots read after the run; the log's
    # cannot: where run's class rests on that alone, the log's is what the
    # reports say (checked on run's own reports below)
    if not _rests_on_final_slots(text_log):
        assert got["classification"] == run_class, (got["evidence"], run_class)
    json_log = tmp_path / "run.jsonl"
    rc, _, err = cli(*common, "--json", "--log", str(json_log))
    assert rc == 0, err
    summary = json.loads(json_log.read_text().splitlines()[-1])
    rc, out, err = cli("classify", "--json", str(json_log))
    assert rc == 0, err
    got = json.loads(out)
    assert set(summary) - {"exit_status"} == set(got)  # the same schema
    assert len(got["reports"]) == len(summary["reports"])
    assert [r["stalling"] for r in got["reports"]] == [r["stalling"] for r in summary["reports"]]
    if not any("that request finished" in v["detail"] for v in summary["progress"]["made progress"]):
        assert got["classification"] == summary["classification"], (got["evidence"],
                                                                    summary["evidence"])


def _rests_on_final_slots(path) -> bool:
    """Run's summary (at the end of its text log) has a verdict from a slot
    read after the run."""
    return "that request finished" in path.read_text()
