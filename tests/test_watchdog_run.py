"""``kmallocwd run`` end to end: the built-in scenarios with small timeouts,
their output parsed with regexes made from the seed's printf formats."""

from __future__ import annotations

import contextlib
import io
import json
import re
from dataclasses import dataclass, field

import pytest

from kmallocwd.cli import main
from kmallocwd.watchdog.scenario import load_builtin

# "[%5lu.%06lu] " then the seed's formats.
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
            raise AssertionError(f"a MemAlloc line the seed's formats do not match: {line!r}")
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
    return {pid: (g.gfp, g.order) for g in load_builtin(scenario).groups for pid in g.pids}


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


# ---- oom-livelock: the seed's example ----


@pytest.fixture(scope="module")
def oom() -> Out:
    return run("--scenario", "oom-livelock", "--timeout", "0.3", "--duration", "2.0")


def test_oom_livelock_reports_are_the_seeds(oom):
    assert oom.rc == 0
    assert len(oom.reports) >= 3, oom.text[-2000:]
    check_counts_match_lines(oom.reports)
    check_delays(oom.reports, 300)
    assert oom.times == sorted(oom.times)
    for r in oom.reports:
        # The scenario's OOM: nine oom-tester threads killed, one victim
        # whose SIGKILL was dequeued on its way into do_exit().
        assert (r.dying, r.victim) == (9, 1)
        v = r.by_pid()[11043]
        assert (v.seq, v.uninterruptible, v.exiting, v.dying, v.victim) == (
            None, True, True, False, True)
        assert all(x.comm == "oom-tester" for x in r.lines if x.dying)
    assert oom.reports[-1].stalling > oom.reports[0].stalling


def test_oom_livelock_prints_the_outer_requests_gfp_and_order(oom):
    want = gfp_of("oom-livelock")
    for r in oom.reports:
        for x in r.lines:
            if x.seq is not None:
                assert (x.gfp, x.order) == want[x.pid]


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
        assert shown[:2] == [True] * min(2, len(shown)), stall
    assert any(len(s) >= 3 for s in seen.values())  # the limit was exercised


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
    assert {int(re.search(r"\((\d+)\)", x)[1]) for x in stuck} == set(multi)


def test_oom_livelock_under_seqcount_accepts_no_torn_snapshot():
    out = run("--scenario", "oom-livelock", "--timeout", "0.3", "--duration", "1.2",
              "--protocol", "seqcount")
    assert out.rc == 0 and out.reports
    check_counts_match_lines(out.reports)
    m = re.search(r"(\d+) snapshots accepted, (\d+) of them torn", out.text)
    assert int(m[1]) > 0 and int(m[2]) == 0


# ---- overload: slow but progressing ----


def test_overload_seq_grows_between_reports():
    out = run("--scenario", "overload", "--timeout", "0.4", "--duration", "3.5")
    assert out.rc == 0 and len(out.reports) >= 3
    check_delays(out.reports, 400)
    races = int(re.search(r"count/print races: (\d+)", out.text)[1])
    missing = 0
    for r in out.reports:
        lines = sum(1 for x in r.lines if x.seq is not None)
        # A request may finish between the counting and the printing pass
        # (the kernel's race too); the summary counts each such change.
        assert lines <= r.stalling
        missing += r.stalling - lines
        assert (r.dying, r.victim) == (0, 0)
        assert not any(x.dying or x.victim or x.exiting for x in r.lines)
    assert missing <= races
    want = gfp_of("overload")
    hist = stall_history(out.reports)
    assert 890 not in hist  # sshd's requests are quick
    for r in out.reports:
        for x in r.lines:
            assert (x.gfp, x.order) == want[x.pid]  # nested requests never show
    multi = {pid: h for pid, h in hist.items() if len(h) >= 2}
    assert multi
    for pid, h in multi.items():
        seqs = [seq for _, seq, _ in h]
        assert seqs == sorted(set(seqs)), (pid, h)  # strictly increasing
    progressed = summary_section(out.text, "made progress")
    assert {int(re.search(r"\((\d+)\)", x)[1]) for x in progressed} >= set(multi)
    assert summary_section(out.text, "no progress") == []


# ---- no reports ----


def test_quiet_prints_no_report():
    out = run("--scenario", "quiet", "--timeout", "0.3", "--duration", "1.5")
    assert out.rc == 0
    assert "MemAlloc" not in out.text and out.reports == []
    assert "reports: none" in out.text


def test_timeout_0_disables_the_watchdog_but_slots_keep_the_last_request():
    for _ in range(3):  # a loaded machine may start the victim's request late: run again
        out = run("--scenario", "oom-livelock", "--timeout", "0", "--time-scale", "0.03",
                  "--duration", "1.0", "--dump-slots")
        assert out.rc == 0 and "MemAlloc" not in out.text
        assert "watchdog disabled" in out.text
        rows = {}
        for line in out.text.splitlines():
            if m := re.match(r"  (\S+)\((\d+)\)\s+(\d+)\s+(\d+)\s+0x([0-9a-f]+)\s+(\d+)\s+"
                             r"(\d+)\s+(\d+)\s+(\d+)$", line):
                rows[int(m[2])] = (int(m[3]), int(m[4]), int(m[5], 16), int(m[8]))
        if rows.get(11043, (0, 0))[1] >= 1:
            break
    assert len(rows) == 21
    # kworker/1:2's only request is the one that stalled: still in progress.
    assert rows[407][:3] == (1, 1, 0x2400000) and rows[407][3] > 0
    # the blocked victim's last request failed when it exited: the record stays
    valid, seq, gfp, _ = rows[11043]
    assert valid == 0 and seq >= 1 and gfp == 0x24280CA


# ---- JSON Lines, other clocks ----


def test_json_lines_carry_the_same_counts():
    out = run("--scenario", "oom-livelock", "--timeout", "0.3", "--duration", "1.3", "--json")
    recs = [json.loads(x) for x in out.text.splitlines()]
    assert recs[0]["type"] == "boot" and recs[-1]["type"] == "summary"
    reports = [r for r in recs if r["type"] == "report"]
    assert len(reports) >= 2 and len(reports) == len(recs[-1]["reports"])
    for r in reports:
        tasks = r["tasks"]
        assert r["stalling"] == sum(t["stalling"] for t in tasks)
        assert r["dying"] == sum(t["dying"] for t in tasks)
        assert r["victim"] == sum(t["victim"] for t in tasks)
        assert re.fullmatch(INFO.pattern[len(TS):], r["info"])
        for t in tasks:
            m = LINE.match("[    0.000000] " + t["text"])
            assert m and int(m[4]) == t["pid"]
            assert (m[5] is not None) == t["stalling"]
            if t["stalling"]:
                assert (int(m[5]), int(m[8])) == (t["seq"], t["delay"]) and t["delay"] >= 300


def test_jiffies_wrap_and_another_hz():
    # 40 jiffies before ULONG_MAX at HZ=250: jiffies wrap 0.16 s after boot,
    # before the first report (timeout 0.3 s = 75 jiffies).
    out = run("--scenario", "oom-livelock", "--timeout", "0.3", "--duration", "1.3",
              "--hz", "250", "--initial-jiffies", str(2**64 - 40), "--json")
    recs = [json.loads(x) for x in out.text.splitlines()]
    boot, summary = recs[0], recs[-1]
    assert (boot["hz"], boot["timeout_jiffies"], boot["initial_jiffies"]) == (250, 75, 2**64 - 40)
    reports = [r for r in recs if r["type"] == "report"]
    assert reports
    most = int(summary["elapsed_s"] * 250) + 2  # no delay can exceed the run itself
    for r in reports:
        assert r["jiffies"] < 2**63  # wrapped past zero
        stalling = [t for t in r["tasks"] if t["stalling"]]
        assert len(stalling) == r["stalling"] > 0
        for t in stalling:
            assert 75 <= t["delay"] <= most
