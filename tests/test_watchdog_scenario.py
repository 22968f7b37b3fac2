"""Scenario files: the built-ins, the format, and bad input (one line naming
the file, the key and what was expected; exit 2)."""

from __future__ import annotations

import tomllib

import pytest

from kmallocwd.cli import main
from kmallocwd.watchdog import gfpnames
from kmallocwd.watchdog import scenario as sc

GOOD = """
[scenario]
name = "mine"
timeout = 5

[[group]]
name = "a-rather-long-task-name"
pid = 300
count = 2
gfp = "GFP_KERNEL | __GFP_COMP"
order = 2
request_s = [1, 2]
interval_s = 0.5
[[group.fate]]
at_s = 3
do = "sigkill"

[[group]]
name = "b"
pid = [10, 12]
gfp = 0x242014a
"""


def test_builtins_load_and_are_listed(capsys):
    names = sc.builtin_names()
    assert {"oom-livelock", "overload", "quiet"} <= set(names)
    for n in names:
        s = sc.load_builtin(n)
        assert s.name == n and s.tasks >= 1 and s.description
        tomllib.loads(sc.builtin_text(n))
    assert main(["scenarios"]) == 0
    out = capsys.readouterr().out
    assert all(n in out for n in names)
    assert main(["scenarios", "--show", "quiet"]) == 0
    assert capsys.readouterr().out == sc.builtin_text("quiet")


def test_the_seeds_example_is_the_oom_livelock_scenario():
    s = sc.load_builtin("oom-livelock")
    pids = {p: g for g in s.groups for p in g.pids}
    assert set(range(11042, 11054)) - set(pids) == {11044}  # as in the seed's report
    killed = [p for p, g in pids.items() if any(f.action == sc.SIGKILL for f in g.fates)]
    victims = [p for p, g in pids.items() if any(f.action == sc.VICTIM for f in g.fates)]
    assert victims == [11043] and len(set(killed) - set(victims)) == 9


def test_the_format():
    s = sc.loads(GOOD, "mine.toml", "mine")
    a, b = s.groups
    assert (s.name, s.timeout_s, s.tasks) == ("mine", 5.0, 4)
    assert a.name == "a-rather-long-t" and a.pids == (300, 301)  # comm: 15 characters
    assert a.gfp == gfpnames.NAMES["GFP_KERNEL"] | 0x4000 and a.order == 2
    assert (a.request_s, a.interval_s) == (sc.Range(1, 2), sc.Range(0.5, 0.5))
    assert a.fates == (sc.Fate(sc.Range(3, 3), sc.SIGKILL),)
    assert b.pids == (10, 12) and b.gfp == 0x242014A
    half = s.scaled(0.5)
    assert half.groups[0].request_s == sc.Range(0.5, 1) and half.groups[0].fates[0].at_s.lo == 1.5


def test_gfp_names_are_linux_4_4s():
    assert gfpnames.parse("GFP_HIGHUSER_MOVABLE | __GFP_ZERO") == 0x24280CA  # the seed's
    assert gfpnames.parse("GFP_NOIO") == 0x2400000 == gfpnames.RECLAIM
    assert gfpnames.NAMES["__GFP_DIRECT_RECLAIM"] == 0x400000
    assert gfpnames.NAMES["__GFP_KSWAPD_RECLAIM"] == 0x2000000
    assert gfpnames.parse("0x10 | __GFP_IO") == 0x50
    with pytest.raises(ValueError, match="__GFP_WAIT"):
        gfpnames.parse("GFP_KERNEL | __GFP_WAIT")  # gone in 4.4


BAD = [
    ("[[group]]\nname = 'x'\nordr = 1\n", "group[0].ordr", "no such key"),
    ("[[group]]\nname = 'x'\norder = 11\n", "group[0].order", "an integer 0 to 10"),
    ("[[group]]\nname = 'x'\norder = '1'\n", "group[0].order", "an integer 0 to 10"),
    ("[[group]]\nname = 'x'\ngfp = 'GFP_KERNAL'\n", "group[0].gfp", "GFP_KERNAL"),
    ("[[group]]\nname = 'x'\nrequest_s = [2, 1]\n", "group[0].request_s", "min <= max"),
    ("[[group]]\nname = 'x'\nstall_probability = 2\n", "group[0].stall_probability",
     "a number 0 to 1"),
    ("[[group]]\nname = 'x'\n[[group.fate]]\nat_s = 1\ndo = 'explode'\n", "group[0].fate[0].do",
     "one of stall"),
    ("[[group]]\nname = 'x'\n[[group.fate]]\ndo = 'stall'\n", "group[0].fate[0].at_s",
     "every fate has at_s and do"),
    ("[[group]]\npid = 5\n", "group[0].name", "the task's name"),
    ("[[group]]\nname = 'x'\npid = 5\n[[group]]\nname = 'y'\npid = 5\n", "group[1].pid",
     "not used by another task"),
    ("[scenario]\ntimeout = 0\n[[group]]\nname = 'x'\n", "scenario.timeout",
     "more than 0"),
    ("[scenario]\nname = 'x'\n", "group", "at least one"),
    ("[[group]]\nname = 'x'\ncount = 300\n", "group[0].count", "an integer 1 to 256"),
    ("[[memory.zone]]\nname = 'DMA'\nfree = [1, 2]\n[[group]]\nname = 'x'\n",
     "memory.zone[0].free", "one per order"),
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


def test_unknown_scenario_name_lists_the_builtins(capsys):
    assert main(["run", "--scenario", "nope", "--duration", "1"]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert "nope" in line and "oom-livelock" in line


@pytest.mark.parametrize("args,what", [
    (["--timeout", "-1"], "out of range"),
    (["--duration", "0"], "out of range"),
    (["--protocol", "v5"], "unknown protocol"),
    (["--hz", "0"], "out of range"),
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
