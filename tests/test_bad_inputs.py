"""No bad input, path or option value makes kmallocwd destroy a
file, hang or print a traceback.  Every case of the table must give exit 2
and exactly one line on stderr that names the value, and nothing on stdout.

The paths in the table use ``{t}``, a directory the ``bad`` fixture fills
with FIFOs, symlinks, oversized, binary and malformed files."""

from __future__ import annotations

import collections
import os
import stat
from pathlib import Path

import pytest

from kmallocwd.cli import main

BUILTIN = Path(__file__).resolve().parent.parent / "kmallocwd" / "scenarios"
DEEP = 200_000  # nesting depth of the deep TOML files


def _toml(name: str, body: str) -> tuple[str, str]:
    return name, body


FILES = dict([
    _toml("zone.toml", "[[memory.zone]]\nname = 'Normal'\npresent_kb = 100\nmin_kb = 101\n"
          "free = [0,0,0,0,0,0,0,0,0,0,0]\n[[process]]\nname = 'x'\n"),
    _toml("newline.toml", '[[process]]\nname = "x\\n[    1.000000] MemAlloc-Info: forged"\n'),
    _toml("nul.toml", '[[process]]\nname = "x\\u0000y"\n'),
    _toml("esc.toml", '[[process]]\nname = "\\u001b[31mred"\n'),
    _toml("bidi.toml", '[scenario]\nname = "a\\u202eb"\n[[process]]\nname = "x"\n'),
    _toml("zonename.toml", '[[memory.zone]]\nname = "N\\r"\npresent_kb = 1\n'
          "free = [0,0,0,0,0,0,0,0,0,0,0]\n[[process]]\nname = 'x'\n"),
    _toml("input.toml", "[[process]]\nname = 'x'\n"),
    _toml("notoml.toml", "[[group]\n"),
    _toml("in.png", "not a bench run\n"),
])


@pytest.fixture
def bad(tmp_path):
    t = tmp_path
    for name, body in FILES.items():
        (t / name).write_text(body)
    (t / "deep.toml").write_text("a = " + "[" * DEEP + "]" * DEEP + "\n")
    (t / "deep-table.toml").write_text("a = " + "{b = " * DEEP + "1" + "}" * DEEP + "\n")
    (t / "big.toml").write_text("#" * (1 << 20) + "\n")
    (t / "binary.toml").write_bytes(b"[scenario]\nname = '\xff\xfe'\n")
    (t / "dir").mkdir()
    (t / "dir.png").mkdir()
    os.mkfifo(t / "fifo")
    os.mkfifo(t / "fifo.toml")
    os.mkfifo(t / "fifo.png")
    os.symlink(t / "dir", t / "link-dir")
    os.symlink(t / "fifo", t / "link-fifo")
    os.symlink(t / "fifo.png", t / "link-fifo.png")
    os.symlink(t / "nothing", t / "dangling")
    # where `bench-report --png BASE` would write its charts (BASE-<chart>.png)
    os.mkfifo(t / "cfifo-threads.png")
    os.symlink(t / "fifo", t / "clink-ns-per-op.png")
    (t / "cdir-scan.png").mkdir()
    os.symlink("/dev/null", t / "link-null")
    os.symlink(t / "input.toml", t / "link-input")
    os.symlink(t / "fifo.toml", t / "link-fifo.toml")
    return t


LONG = "n" * 300

# (argv, the value the one line must name)
TABLE: list[tuple[list[str], str]] = [
    # ---- no command, unknown options ----
    (["--bogus"], "--bogus"),
    ([], "COMMAND"),
    (["bogus-command"], "bogus-command"),
    (["--bogus", "stress"], "--bogus"),
    # ---- stress: every option ----
    (["stress", "--bogus"], "--bogus"),
    (["stress", "--threads", "0"], "'0'"),
    (["stress", "--threads", "1025"], "'1025'"),
    (["stress", "--threads", "abc"], "'abc'"),
    (["stress", "--threads", "1.5"], "'1.5'"),
    (["stress", "--threads", "0x"], "'0x'"),
    (["stress", "--threads", "3", "--slots", "2"], "--threads 3"),
    (["stress", "--slots", "0"], "'0'"),
    (["stress", "--slots", "1" + "0" * 30], "'1" + "0" * 30 + "' is out of range"),
    (["stress", "--slots", "9" * 5000], "is not a whole number"),
    (["stress", "--duration", "0"], "'0'"),
    (["stress", "--duration", "nan"], "'nan'"),
    (["stress", "--duration", "inf"], "'inf'"),
    (["stress", "--duration", "86401"], "'86401'"),
    (["stress", "--duration", "1", "--iterations", "5"], "--iterations"),
    (["stress", "--iterations", "0"], "'0'"),
    (["stress", "--iterations", "1000000000001"], "'1000000000001'"),
    (["stress", "--iterations", "1" + "0" * 26], "'1" + "0" * 26 + "'"),
    (["stress", "--batch", "0"], "'0'"),
    (["stress", "--batch", str((1 << 30) + 1)], str((1 << 30) + 1)),
    (["stress", "--hold-ns", "-1"], "'-1'"),
    (["stress", "--alloc-ns", "1000000001"], "'1000000001'"),
    (["stress", "--preempt", "1.5"], "'1.5'"),
    (["stress", "--preempt", "-0.1"], "'-0.1'"),
    (["stress", "--seed", "-1"], "'-1'"),
    (["stress", "--repeat", "0"], "'0'"),
    (["stress", "--protocol", "v5"], "'v5'"),
    (["stress", "--expect", "consistent"], "'consistent'"),
    (["stress", "--json", ""], "--json ''"),
    (["stress", "--json", "{t}/dir/"], "{t}/dir/"),
    (["stress", "--json", "{t}/dir"], "{t}/dir"),
    (["stress", "--json", "{t}/no-such-dir/r.json"], "{t}/no-such-dir/r.json"),
    (["stress", "--json", "{t}/fifo"], "{t}/fifo"),
    (["stress", "--json", "{t}/link-dir"], "{t}/link-dir"),
    (["stress", "--json", "{t}/link-fifo"], "{t}/link-fifo"),
    (["stress", "--json", "{t}/link-null"], "{t}/link-null"),
    (["stress", "--json", "{t}/dangling"], "{t}/dangling"),
    (["stress", "--json", "/dev/null"], "/dev/null"),
    (["stress", "--json", "/proc/kmallocwd-x.json"], "/proc/kmallocwd-x.json"),
    (["stress", "--json", "/sys/kmallocwd-x.json"], "/sys/kmallocwd-x.json"),
    (["stress", "--json", "{t}/" + LONG], LONG),
    (["stress", "--json", "{t}/fifo.toml/x.json"], "{t}/fifo.toml/x.json"),
    (["stress", "--json", "{t}/no\ndir/b.json"], "no\\ndir/b.json"),
    # ---- run: every option ----
    (["run", "--bogus"], "--bogus"),
    (["run", "--timeout", "-1"], "'-1'"),
    (["run", "--timeout", "86401"], "'86401'"),
    (["run", "--timeout", "ten"], "'ten'"),
    (["run", "--time-scale", "0"], "'0'"),
    (["run", "--time-scale", "1001"], "'1001'"),
    (["run", "--hz", "0"], "'0'"),
    (["run", "--hz", "100001"], "'100001'"),
    (["run", "--duration", "0"], "'0'"),
    (["run", "--duration", "-5"], "'-5'"),
    (["run", "--seed", "-1"], "'-1'"),
    (["run", "--initial-jiffies", str(1 << 64)], str(1 << 64)),
    (["run", "--initial-jiffies", "0xg"], "'0xg'"),
    (["run", "--protocol", "nope"], "'nope'"),
    (["run", "--scenario", "nope"], "nope"),
    (["run", "--scenario", ""], "--scenario ''"),
    (["run", "--scenario", "/dev/zero"], "/dev/zero"),
    (["run", "--scenario", "/dev/urandom"], "/dev/urandom"),
    (["run", "--scenario", "{t}/fifo.toml"], "{t}/fifo.toml"),
    (["run", "--scenario", "{t}/link-fifo.toml"], "{t}/link-fifo.toml"),
    (["run", "--scenario", "{t}/dir"], "{t}/dir"),
    (["run", "--scenario", "{t}/missing.toml"], "{t}/missing.toml"),
    (["run", "--scenario", "{t}/big.toml"], "{t}/big.toml"),
    (["run", "--scenario", "{t}/binary.toml"], "{t}/binary.toml"),
    (["run", "--scenario", "{t}/deep.toml"], "{t}/deep.toml"),
    (["run", "--scenario", "{t}/deep-table.toml"], "{t}/deep-table.toml"),
    (["run", "--scenario", "{t}/notoml.toml"], "{t}/notoml.toml"),
    (["run", "--scenario", "{t}/zone.toml"], "'memory.zone[0].min_kb'"),
    (["run", "--scenario", "{t}/newline.toml"], "'process[0].name'"),
    (["run", "--scenario", "{t}/nul.toml"], "'process[0].name'"),
    (["run", "--scenario", "{t}/esc.toml"], "'process[0].name'"),
    (["run", "--scenario", "{t}/bidi.toml"], "'scenario.name'"),
    (["run", "--scenario", "{t}/zonename.toml"], "'memory.zone[0].name'"),
    (["run", "--log", ""], "--log ''"),
    (["run", "--log", "{t}/fifo"], "{t}/fifo"),
    (["run", "--log", "{t}/dir/"], "{t}/dir/"),
    (["run", "--log", "{t}/link-dir"], "{t}/link-dir"),
    (["run", "--log", "/dev/null"], "/dev/null"),
    (["run", "--log", "/proc/kmallocwd-x.log"], "/proc/kmallocwd-x.log"),
    (["run", "--log", "{t}/no-such-dir/x.log"], "{t}/no-such-dir/x.log"),
    (["run", "--log", "{t}/" + LONG], LONG),
    (["run", "-s", "{t}/input.toml", "--log", "{t}/input.toml"], "{t}/input.toml"),
    (["run", "-s", "{t}/input.toml", "--log", "{t}/link-input"], "{t}/link-input"),
    (["run", "-s", "{t}/link-input", "--log", "{t}/input.toml"], "{t}/input.toml"),
    (["run", "-s", "quiet", "--log", str(BUILTIN / "quiet.toml")], str(BUILTIN / "quiet.toml")),
    # ---- check, litmus, replay, ablate, protocols --c ----
    (["check", "-p", "v9"], "'v9'"),
    (["check", "--sections", "9"], "'9'"),
    (["check", "--model", "arm"], "'arm'"),
    (["check", "--junit", ""], "--junit ''"),
    (["check", "--json", "{t}/fifo"], "{t}/fifo"),
    (["check", "--protocol-file", "{t}/input.toml"], "{t}/input.toml"),
    (["litmus"], "-p NAME"),
    (["litmus", "-p", "seqcount", "-o", "{t}/link-null"], "{t}/link-null"),
    (["litmus", "-p", "seqcount", "--sections", "0"], "'0'"),
    (["replay", "-p", "v3", "--model", "x"], "'x'"),
    (["ablate", "-p", "seqcount", "-d", "-1"], "'-1'"),
    (["ablate", "-p", "seqcount", "--junit", "{t}/dir"], "{t}/dir"),
    (["protocols", "--c", "v9"], "'v9'"),
    (["protocols", "--c", "/dev/zero"], "/dev/zero"),
    (["stress", "--protocol-file", "{t}/fifo"], "{t}/fifo"),
    (["stress", "--junit", "{t}/link-null"], "{t}/link-null"),
    # ---- bench-report ----
    (["bench-report"], "FILE.json"),
    (["bench-report", "{t}/in.png", "--baseline", "nope"], "'nope'"),
    (["bench-report", "{t}/in.png", "--png", ""], "--png ''"),
    (["bench-report", "{t}/in.png", "--png", "-"], "--png -"),
    (["bench-report", "{t}/in.png", "--png", "{t}/chart.svg"], "{t}/chart.svg"),
    (["bench-report", "{t}/in.png", "--png", "{t}/cfifo.png"], "{t}/cfifo-threads.png"),
    (["bench-report", "{t}/in.png", "--png", "{t}/clink"], "{t}/clink-ns-per-op.png"),
    (["bench-report", "{t}/in.png", "--png", "{t}/cdir"], "{t}/cdir-scan.png"),
    (["bench-report", "{t}/in.png", "--png", "{t}/no-such-dir/c.png"], "{t}/no-such-dir/c-"),
    (["bench-report", "{t}/in.png", "--png", "/proc/kmallocwd-x.png"], "/proc/kmallocwd-x-"),
    # ---- protocols, scenarios, demo ----
    (["protocols", "--bogus"], "--bogus"),
    (["protocols", "--json", "extra"], "extra"),
    (["scenarios", "--show", "nope"], "nope"),
    (["scenarios", "--show", ""], "--show ''"),
    (["scenarios", "--show", "a\nb"], "a\\nb"),
    (["demo", "--duration", "0"], "'0'"),
    (["demo", "--duration", "601"], "'601'"),
    (["demo", "--duration", "abc"], "'abc'"),
]


def _ids() -> list[str]:
    seen: collections.Counter = collections.Counter()
    out = []
    for argv, _ in TABLE:
        base = " ".join(argv)[:60].replace("{t}/", "") or "(none)"
        seen[base] += 1
        out.append(base if seen[base] == 1 else f"{base} #{seen[base]}")
    return out


def test_the_table_is_big_enough():
    by_command = collections.Counter(a[0] if a and not a[0].startswith("-") and a[0] in
                                     ("stress", "run", "bench-report", "protocols",
                                      "scenarios", "demo") else "(none)"
                                     for a, _ in TABLE)
    assert len(TABLE) >= 60 and all(by_command[c] for c in ("stress", "run", "bench-report"))


@pytest.mark.timeout(60)
@pytest.mark.parametrize("argv,value", TABLE, ids=_ids())
def test_bad_input_is_one_line_exit_2(bad, capsys, argv, value):
    argv = [a.replace("{t}", str(bad)) for a in argv]
    value = value.replace("{t}", str(bad))
    before = {p.name: os.lstat(p) for p in bad.iterdir()}
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    cap = capsys.readouterr()
    assert "Traceback" not in cap.err
    assert code == 2, cap.err
    assert cap.out == ""
    lines = cap.err.splitlines()
    assert len(lines) == 1, cap.err
    assert value in lines[0], lines[0]
    # Nothing was created, replaced or left behind (no temporary file either).
    after = {p.name: os.lstat(p) for p in bad.iterdir()}
    assert sorted(after) == sorted(before)
    for name, st in before.items():
        assert (after[name].st_ino, after[name].st_mode, after[name].st_size) == \
            (st.st_ino, st.st_mode, st.st_size), name


def test_dev_null_is_left_a_device(capsys):
    st = os.stat("/dev/null")
    assert main(["stress", "-q", "-d", "0.1", "--json", "/dev/null"]) == 2
    assert os.stat("/dev/null").st_ino == st.st_ino
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
