"""``kmallocwd run`` end to end: oom-livelock with a small timeout and a
faster workload, its output parsed with regexes made from the patch's printf
formats.  (Every scenario's classification, over 5 seeds: test_classify.)"""

from __future__ import annotations

import contextlib
import io
import json
import re
from dataclasses import dataclass, field

import pytest

from kmallocwd.cli import main
from kmallocwd.watchdog.workload import load_builtin

# "[%5lu.%06lu] " then the patch's formats.
TS = r"\[\s*(\d+)\.(\d{6})\] "
INFO = re.compile(TS + r"MemAlloc-Info: (\d+) stalling task, (\d+) dying task, "
                  r"(\d+) victim task\.$")
LINE = re.compile(TS + r"MemAlloc: (.+)\((\d+)\)"
                  r"(?: seq=(\d+) gfp=0x([0-9a-f]+) order=(\d+) delay=(\d+))?"
                  r"( uninterruptible)?( exiting)?( dying)?( victim)?$")
# sched_show_task(): "%-15.15s %c", "  running task    " or " %016lx ", "%5lu %5d %6d 0x%08lx"
TRACE = re.compile(TS + r"(.{15}) ([RSD])(?:  running task    | [0-9a-f]{16} )"
                   r"([ \d]{5}) ([ \d]{5}) ([ \d]{6}) 0x([0-9a-f]{8})$")


@dataclass
class Line:
    comm: str
    pid: int
    seq: int | None
    gfp: int | None
    order: int | None
    delay: int | None
    uninterruptible: bool
    exiting: bool
    dying: bool
    victim: bool


@dataclass
class Rep:
    stalling: int
    dying: int
    victim: int
    lines: list[Line] = field(default_factory=list)
    traced: list[int] = field(default_factory=list)  # pids of sched_show_task() headers

    def by_pid(self) -> dict[int, Line]:
        return {x.pid: x for x in self.lines}


@dataclass
class Out:
    rc: int
    text: str
    err: str
    reports: list[Rep]
    times: list[float]


def parse(text: str) -> tuple[list[Rep], list[float]]:
    reps: list[Rep] = []
    times = []
    for line in text.splitlines():
        if m := re.match(TS, line):
            times.append(int(m[1]) + int(m[2]) / 1e6)
        if m := INFO.match(line):
            reps.append(Rep(int(m[3]), int(m[4]), int(m[5])))
        elif m := LINE.match(line):
            seq = None if m[5] is None else int(m[5])
            reps[-1].lines.append(Line(
                m[3], int(m[4]), seq, None if m[6] is None else int(m[6], 16),
                None if m[7] is None else int(m[7]), None if m[8] is None else int(m[8]),
                bool(m[9]), bool(m[10]), bool(m[11]), bool(m[12])))
        elif m := TRACE.match(line):
            reps[-1].traced.append(int(m[6]))
        elif line.startswith("[") and "MemAlloc" in line:
            raise AssertionError(f"a MemAlloc line the patch's formats do not match: {line!r}")
    return reps, times


def run(*args: str) -> Out:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(["run", "-q", *args])
    reps, times = parse(out.getvalue())
    return Out(rc, out.getvalue(), err.getvalue(), reps, times)


def summary_section(text: str, name: str) -> list[str]:
    """The task lines under "  <name> (N):" in the summary."""
    lines = text.split("==== kmallocwd run summary ====")[1].splitlines()
    i = next(k for k, x in enumerate(lines) if x.startswith(f"  {name} ("))
    return [x for x in lines[i + 1:] if x.startswith("    ")][: int(lines[i].split("(")[1]
                                                                  .split(")")[0])]


def gfp_of(scenario: str) -> dict[int, tuple[int, int]]:
    return {pid: (t.gfp, t.order) for p in load_builtin(scenario).processes for t in p.threads
            for pid in t.pids}


def check_counts_match_lines(reps: list[Rep]) -> None:
    for r in reps:
        assert r.stalling == sum(1 for x in r.lines if x.seq is not None)
        assert r.dying == sum(1 for x in r.lines if x.dying)
        assert r.victim == sum(1 for x in r.lines if x.victim)


def check_delays(reps: list[Rep], timeout_jiffies: int) -> None:
    for r in reps:
        for x in r.lines:
            if x.seq is not None:
                assert timeout_jiffies <= x.delay < 1 << 62


def stall_history(reps: list[Rep]) -> dict[int, list[tuple[int, int, int]]]:
    """pid -> [(report index, seq, delay)] for its stalling lines."""
    h: dict[int, list] = {}
    for i, r in enumerate(reps):
        for x in r.lines:
            if x.seq is not None:
                h.setdefault(x.pid, []).append((i, x.seq, x.delay))
    return h


# ---- oom-livelock: the patch's example ----

FAST = ("--timeout", "0.3", "--time-scale", "0.25")  # the OOM comes at about 1.3 s


@pytest.fixture(scope="module")
def oom() -> Out:
    return run("--scenario", "oom-livelock", *FAST, "--duration", "2.3")


def test_oom_livelock_reports_are_the_seeds(oom):
    assert oom.rc == 0
    assert len(oom.reports) >= 2, oom.text[-2000:]
    check_counts_match_lines(oom.reports)
    check_delays(oom.reports, 300)
    assert oom.times == sorted(oom.times)
    assert re.search(r"oom-tester invoked oom-killer: gfp_mask=0x24280ca, order=0", oom.text)
    assert "Out of memory: Kill process 11042 (oom-tester)" in oom.text
    for r in oom.reports:
        # The OOM kill: oom-tester(11043)'s group got SIGKILL; one of its
        # tasks has TIF_MEMDIE and is blocked: in exit_mm() ("exiting", its
        # SIGKILL dequeued) or on the lock before it ("dying").
        assert r.victim == 1 and r.dying >= 1  # at least the writer holding the lock
        (v,) = [x for x in r.lines if x.victim]
        assert 11043 <= v.pid <= 11053 and v.uninterruptible and v.seq is None
        assert all(x.comm == "oom-tester" and x.pid >= 11045 for x in r.lines if x.dying)
    assert oom.reports[-1].stalling >= oom.reports[0].stalling
    assert "classification: oom-victim-stuck" in oom.text


def test_oom_livelock_prints_the_requests_gfp_and_order(oom):
    want = gfp_of("oom-livelock")
    for r in oom.reports:
        for x in r.lines:
            if x.seq is not None:
                assert (x.gfp, x.order) == want[x.pid]
                if x.dying:
                    assert not x.gfp & 0x80  # a dying __GFP_FS request would be a victim


def test_oom_livelock_traces(oom):
    seen: dict[tuple[int, int], list[bool]] = {}
    for r in oom.reports:
        lines = r.by_pid()
        assert len(r.traced) == len(set(r.traced))
        for pid in r.traced:  # only tasks of interest are traced
            assert lines[pid].dying or lines[pid].seq is not None
        for x in r.lines:
            if x.dying:
                assert x.pid in r.traced  # every dying task, every report
            elif x.seq is not None:
                seen.setdefault((x.pid, x.seq), []).append(x.pid in r.traced)
    assert seen
    for stall, shown in seen.items():
        assert shown[0], stall  # a newly reported stall is traced
        assert sum(shown) <= 2, stall  # at most twice per stall
    # the traces say where the tasks are: the allocator, mmap_sem (the
    # mapper's down_write(), the readers queued behind it; the victim in
    # exit_mm() has no SIGKILL pending any more, so the patch does not trace it)
    assert re.search(r"\]\s+\[<mm\.py:\d+>\] __alloc_pages_slowpath$", oom.text, re.M)
    assert re.search(r"\]\s+\[<sched\.py:\d+>\] rwsem_down_write_failed$", oom.text, re.M)
    assert re.search(r"\]\s+\[<sched\.py:\d+>\] rwsem_down_read_failed$", oom.text, re.M)


def test_oom_livelock_seq_stays_for_livelocked_tasks(oom):
    hist = stall_history(oom.reports)
    multi = {pid: h for pid, h in hist.items() if len(h) >= 2}
    assert multi
    for pid, h in multi.items():
        assert len({seq for _, seq, _ in h}) == 1, (pid, h)
        delays = [d for _, _, d in h]
        assert all(b - a >= 300 for a, b in zip(delays, delays[1:])), (pid, h)
    assert summary_section(oom.text, "made progress") == []
    stuck = summary_section(oom.text, "no progress")
    assert {int(re.search(r"\((\d+)\)", x)[1]) for x in stuck} >= set(multi)


@pytest.mark.slow
def test_timeout_0_disables_the_watchdog_but_slots_keep_the_last_request():
    out = run("--scenario", "oom-livelock", "--timeout", "0", "--time-scale", "0.25",
              "--duration", "1.8", "--dump-slots")
    assert out.rc == 0 and "MemAlloc" not in out.text
    assert "watchdog disabled" in out.text
    rows = {}
    for line in out.text.splitlines():
        if m := re.match(r"  (\S+)\((\d+)\)\s+(\d+)\s+(\d+)\s+0x([0-9a-f]+)\s+(\d+)\s+(\d+)\s+"
                         r"(\d+)\s+(\d+)$", line):
            rows[int(m[2])] = (int(m[3]), int(m[4]), int(m[5], 16), int(m[8]))
    assert len(rows) == 24  # nobody exits: the livelock  # exited tasks are gone from the task list
    # the hog's last request is still in the slow path (it loops: OOM aborts)
    valid, seq, gfp, age = rows[11042]
    assert (valid, gfp) == (1, 0x24280CA) and seq >= 1 and age > 0
    assert rows[46][:2] == (0, 0)  # kswapd never allocates


# ---- JSON Lines, another protocol, other clocks ----


@pytest.mark.slow
def test_json_seqcount_wrap_and_another_hz():
    # 40 jiffies before ULONG_MAX at HZ=250: jiffies wrap 0.16 s after boot,
    # before the first report (timeout 0.3 s = 75 jiffies).
    out = run("--scenario", "oom-livelock", *FAST, "--duration", "2.1", "--protocol",
              "seqcount", "--hz", "250", "--initial-jiffies", str(2**64 - 40), "--json")
    recs = [json.loads(x) for x in out.text.splitlines()]
    boot, summary = recs[0], recs[-1]
    assert boot["type"] == "boot" and summary["type"] == "summary"
    assert (boot["hz"], boot["timeout_jiffies"], boot["initial_jiffies"]) == (250, 75, 2**64 - 40)
    assert {(t["pid"], t["tgid"]) for t in boot["tasks"]} >= {(11043, 11043), (11052, 11043)}
    reports = [r for r in recs if r["type"] == "report"]
    assert len(reports) >= 1 and len(reports) == len(summary["reports"])
    assert summary["reader"]["accepted"] > 0 and summary["reader"]["torn"] == 0
    assert summary["classification"] == "oom-victim-stuck" and summary["evidence"]
    printk = [r["text"] for r in recs if r["type"] == "printk"]
    assert printk[0].startswith("oom-tester invoked oom-killer: gfp_mask=0x24280ca")
    most = int(summary["elapsed_s"] * 250) + 2  # no delay can exceed the run itself
    for r in reports:
        tasks = r["tasks"]
        assert r["jiffies"] < 2**63  # wrapped past zero
        assert r["stalling"] == sum(t["stalling"] for t in tasks)
        assert r["dying"] == sum(t["dying"] for t in tasks)
        assert r["victim"] == sum(t["victim"] for t in tasks)
        assert re.fullmatch(INFO.pattern[len(TS):], r["info"])
        for t in tasks:
            m = LINE.match("[    0.000000] " + t["text"])
            assert m and int(m[4]) == t["pid"]
            assert (m[5] is not None) == t["stalling"]
            if t["stalling"]:
                assert (int(m[5]), int(m[8])) == (t["seq"], t["delay"])
                assert 75 <= t["delay"] <= most
        assert r["show_mem"]["zones"][-1]["name"] == "Normal"
