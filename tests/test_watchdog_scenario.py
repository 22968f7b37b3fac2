"""Scenario files: the built-ins, the format, and bad input (one line naming
the file, the key and what was expected; exit 2)."""

from __future__ import annotations

import tomllib

import pytest

from kmallocwd.cli import main
from kmallocwd.watchdog import gfpnames
from kmallocwd.watchdog import scenario as sc
from kmallocwd.watchdog import workload as W

GOOD = """
[scenario]
name = "mine"
timeout = 5

[memory]
reclaim_kbps = 1000
writeback_kbps = 0

[[memory.zone]]
name = "Normal"
present_kb = 100000
min_kb = 400
free = [100, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
file_kb = 800
dirty_kb = 40

[[process]]
name = "a-rather-long-process-name"
pid = 300
ppid = 7
rss_kb = 4000
[[process.thread]]
idle = true
[[process.thread]]
count = 2
gfp = "GFP_KERNEL | __GFP_COMP"
order = 2
interval_s = [1, 2]
use = "anon"
locks = ["&mm->mmap_sem", "&inode->i_mutex"]
killable = true

[[process]]
name = "b"
pid = 10
kthread = true
[[process.thread]]
gfp = 0x242014a
memalloc_noio = true
"""


def test_builtins_load_and_are_listed(capsys):
    names = W.builtin_names()
    assert {"oom-livelock", "reclaim-livelock", "no-oom-possible", "overload", "quiet"} <= set(names)
    for n in names:
        s = W.load_builtin(n)
        assert s.name == n and s.tasks >= 1 and s.description
        tomllib.loads(W.builtin_text(n))
    assert main(["scenarios"]) == 0
    out = capsys.readouterr().out
    assert all(n in out for n in names)
    assert main(["scenarios", "--show", "quiet"]) == 0
    assert capsys.readouterr().out == W.builtin_text("quiet")


def test_scenarios_describe_workloads_not_fates():
    """The patch's example is a workload: who allocates what, with which
    locks; nobody is told to stall, die or be the victim."""
    s = W.load_builtin("oom-livelock")
    pids = {p for proc in s.processes for p in proc.pids}
    assert set(range(11042, 11054)) - pids == {11044}  # as in the patch's report
    child = next(p for p in s.processes if p.tgid == 11043)
    assert child.ppid == 11042 and len(child.pids) == 10
    modes = {W.split_lock(x) for t in child.threads for x in t.locks}
    assert {("&mm->mmap_sem", "read"), ("&mm->mmap_sem", "write")} <= modes
    for text in map(W.builtin_text, W.builtin_names()):
        for word in ("fate", "at_s", "victim =", "stall_probability"):
            assert word not in text


def test_the_format():
    s = W.loads(GOOD, "mine.toml", "mine")
    a, b = s.processes  # sorted by tgid: fork order
    assert (b.name, a.name) == ("a-rather-long-p", "b")  # comm: 15 characters
    assert (s.name, s.timeout_s, s.tasks) == ("mine", 5.0, 4)
    assert a.kthread and a.ppid == 2 and a.threads[0].memalloc_noio
    assert b.tgid == 300 and b.pids == (300, 301, 302) and b.ppid == 7 and b.rss_kb == 4000
    idle, work = b.threads
    assert idle.idle and work.pids == (301, 302)
    assert work.gfp == gfpnames.NAMES["GFP_KERNEL"] | 0x4000 and work.order == 2
    assert work.interval_s == sc.Range(1, 2) and work.use == "anon" and work.killable
    assert work.locks == ("&mm->mmap_sem", "&inode->i_mutex")
    (z,) = s.memory.zones
    assert (z.zone.min_kb, z.file_kb, z.dirty_kb) == (400, 800, 40)
    fast = s.scaled(0.5)
    assert fast.processes[1].threads[1].interval_s == sc.Range(0.5, 1)
    assert fast.memory.reclaim_kbps == 2000  # rates go up as times go down


def test_gfp_names_are_linux_4_4s():
    assert gfpnames.parse("GFP_HIGHUSER_MOVABLE | __GFP_ZERO") == 0x24280CA  # the patch's
    assert gfpnames.parse("GFP_NOIO") == 0x2400000 == gfpnames.RECLAIM
    assert gfpnames.NAMES["__GFP_DIRECT_RECLAIM"] == 0x400000
    assert gfpnames.NAMES["__GFP_KSWAPD_RECLAIM"] == 0x2000000
    assert gfpnames.parse("0x10 | __GFP_IO") == 0x50
    with pytest.raises(ValueError, match="__GFP_WAIT"):
        gfpnames.parse("GFP_KERNEL | __GFP_WAIT")  # gone in 4.4


P = "[[process]]\nname = 'x'\n"
BAD = [
    (P + "[[process.thread]]\nordr = 1\n", "process[0].thread[0].ordr", "no such key"),
    (P + "[[process.thread]]\norder = 11\n", "process[0].thread[0].order", "an integer 0 to 10"),
    (P + "[[process.thread]]\ngfp = 'GFP_KERNAL'\n", "process[0].thread[0].gfp", "GFP_KERNAL"),
    (P + "[[process.thread]]\ninterval_s = [2, 1]\n", "process[0].thread[0].interval_s",
     "min <= max"),
    (P + "[[process.thread]]\nuse = 'swap'\n", "process[0].thread[0].use", "one of anon"),
    (P + "[[process.thread]]\nburst = 0\n", "process[0].thread[0].burst", "an integer 1 to 4096"),
    (P + "[[process.thread]]\nlocks = 'i_mutex'\n", "process[0].thread[0].locks", "lock names"),
    (P + "[[process.thread]]\nkillable = 1\n", "process[0].thread[0].killable", "true or false"),
    (P + "oom_score_adj = 1001\n", "process[0].oom_score_adj", "an integer -1000 to 1000"),
    (P + "fate = 1\n", "process[0].fate", "no such key"),
    ("[[process]]\npid = 5\n", "process[0].name", "the process's name"),
    (P + "pid = 5\n[[process]]\nname = 'y'\npid = 5\n", "process[1].thread[0].pid",
     "not used by another task"),
    ("[scenario]\ntimeout = 0\n" + P, "scenario.timeout", "more than 0"),
    ("[scenario]\nname = 'x'\n", "process", "at least one"),
    (P + "[[process.thread]]\ncount = 300\n", "process[0].thread[0].count", "an integer 1 to 256"),
    ("[memory]\nreclaim_kbps = 0\n" + P, "memory.reclaim_kbps", "more than 0"),
    ("[[memory.zone]]\nname = 'DMA'\nfree = [1, 2]\n" + P, "memory.zone[0].free",
     "one per order"),
    ("[[memory.zone]]\nname = 'N'\npresent_kb = 10\nfile_kb = 100\n" + P,
     "memory.zone[0].present_kb", "at least free + file_kb"),
    ("[[group]]\nname = 'x'\n", "group", "no such key"),  # the old, scripted format
    ('[[process]]\nname = "a\\u001b[2Jb"\n', "process[0].name", "without control characters"),
]


@pytest.mark.parametrize("text,key,expected", BAD, ids=[b[1] for b in BAD])
def test_a_bad_scenario_is_one_line_naming_file_and_key(tmp_path, capsys, text, key, expected):
    f = tmp_path / "bad.toml"
    f.write_text(text)
    assert main(["run", "-q", "--scenario", str(f), "--duration", "5"]) == 2
    cap = capsys.readouterr()
    assert cap.out == ""
    (line,) = cap.err.splitlines()
    assert str(f) in line and f"'{key}'" in line and expected in line
    assert "Traceback" not in cap.err


@pytest.mark.parametrize("text,what", [
    ("[[group]\nname = 'x'\n", "not valid TOML"),
    (None, "cannot read it"),
])
def test_unreadable_scenarios(tmp_path, capsys, text, what):
    f = tmp_path / "s.toml"
    if text is not None:
        f.write_text(text)
    assert main(["run", "-q", "--scenario", str(f), "--duration", "5"]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert str(f) in line and what in line


def test_an_oversized_scenario_file_is_refused(tmp_path, capsys):
    f = tmp_path / "big.toml"
    f.write_text("# " + "x" * (W.MAX_FILE_BYTES + 10) + "\n")
    assert main(["run", "-q", "--scenario", str(f), "--duration", "1"]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert str(f) in line and "over the limit" in line


def test_unknown_scenario_name_lists_the_builtins(capsys):
    assert main(["run", "--scenario", "nope", "--duration", "1"]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert "nope" in line and "oom-livelock" in line


@pytest.mark.parametrize("args,what", [
    (["--timeout", "-1"], "out of range"),
    (["--duration", "0"], "out of range"),
    (["--protocol", "v5"], "unknown protocol"),
    (["--hz", "0"], "out of range"),
    (["--detectors", "khungtaskd,oops"], "unknown detector 'oops'"),
    (["--hung-task-timeout", "0"], "out of range"),
])
def test_bad_options_exit_2(capsys, args, what):
    with pytest.raises(SystemExit) as e:
        main(["run", *args])
    assert e.value.code == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert what in line


def test_unwritable_log_is_a_usage_error(tmp_path, capsys):
    bad = tmp_path / "no-such-dir" / "log.txt"
    assert main(["run", "-q", "--log", str(bad), "--duration", "1"]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert str(bad) in line
