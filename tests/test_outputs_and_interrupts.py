"""Output paths never destroy anything; a write that fails after
the run is exit 74 with the report still on stdout; stdout closed or full
is one line and exit 74; a signal at any time, start-up included, is
130 / 143 without a traceback; ``run --json`` keeps its summary record
whatever signals come, and its exit_status is the process's.

Nothing here asserts on timing: children are guarded by pytest-timeout,
and a signal sent at a chosen moment is either deterministic (an import
hook sends it from inside the child) or retried when it landed before the
interpreter ran any of kmallocwd's code."""

from __future__ import annotations

import json
import os
import resource
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kmallocwd import inputs, outpath
from kmallocwd.cli import argtypes
from kmallocwd.cli import main
from kmallocwd.errors import UsageError, WriteFailed
from kmallocwd.watchdog import scenario as sc

ROOT = Path(__file__).resolve().parent.parent
ENV = dict(os.environ, PYTHONPATH=str(ROOT))
QUICK_STRESS = ["stress", "-q", "-p", "seqcount", "-d", "0.1", "--alloc-ns", "100"]
QUICK_RUN = ["run", "-q", "-s", "quiet", "-t", "0.2", "-d", "0.5"]


def _default_signals() -> None:
    # A child of a background shell inherits SIGINT ignored; give it the
    # default, as a terminal does.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def child(args, stdout=subprocess.PIPE, preexec=None, env=None, **kw):
    def pre():
        _default_signals()
        if preexec:
            preexec()
    return subprocess.run([sys.executable, "-m", "kmallocwd", *args], cwd=ROOT,
                          env=env or ENV, stdout=stdout, stderr=subprocess.PIPE, text=True,
                          preexec_fn=pre, timeout=120, **kw)


def one_error_line(err: str) -> str:
    assert "Traceback" not in err, err
    lines = err.splitlines()
    assert len(lines) == 1, err
    return lines[0]


def snapshot(p: Path) -> tuple:
    st = os.lstat(p)
    link = os.readlink(p) if stat.S_ISLNK(st.st_mode) else None
    return (st.st_ino, st.st_mode, st.st_rdev, st.st_size, link)


# ---- output paths: nodes are refused and left as they were ----

def _make(kind: str, p: Path) -> None:
    if kind == "fifo":
        os.mkfifo(p)
    elif kind == "chardev":
        os.mknod(p, 0o666 | stat.S_IFCHR, os.makedev(1, 3))  # a copy of /dev/null
    elif kind == "blockdev":
        os.mknod(p, 0o660 | stat.S_IFBLK, os.makedev(7, 0))  # loop0's numbers
    elif kind == "socket":
        import socket
        s = socket.socket(socket.AF_UNIX)
        s.bind(str(p))
        s.close()
    elif kind == "dir":
        p.mkdir()
    else:
        raise AssertionError(kind)


NODE_KINDS = ["fifo", "chardev", "blockdev", "socket", "dir"]
OPTIONS = {
    "stress --json": lambda out, t: [*QUICK_STRESS, "--json", str(out)],
    "run --log": lambda out, t: [*QUICK_RUN, "--log", str(out)],
    # bench-report writes BASE-<chart>.png: the node stands where one chart goes
    "bench-report --png": lambda out, t: ["bench-report", str(t / "run.json"), "--png",
                                          str(out).removesuffix("-ns-per-op.png")],
}


@pytest.mark.parametrize("via_symlink", [False, True], ids=["node", "symlink-to-node"])
@pytest.mark.parametrize("kind", NODE_KINDS)
@pytest.mark.parametrize("option", list(OPTIONS))
def test_an_output_node_is_refused_and_left_alone(tmp_path, capsys, option, kind, via_symlink):
    if kind.endswith("dev") and os.geteuid() != 0:
        pytest.skip("mknod needs root")
    (tmp_path / "run.json").write_text("{}")
    node = tmp_path / ("node-ns-per-op.png" if option.startswith("bench") else "node")
    _make(kind, node)
    out = node
    if via_symlink:
        out = tmp_path / ("link-ns-per-op.png" if option.startswith("bench") else "link")
        os.symlink(node, out)
    before = {p.name: snapshot(p) for p in tmp_path.iterdir()}
    assert main(OPTIONS[option](out, tmp_path)) == 2
    cap = capsys.readouterr()
    assert str(out) in one_error_line(cap.err)
    assert {p.name: snapshot(p) for p in tmp_path.iterdir()} == before


def test_a_symlink_to_a_regular_file_is_written_through(tmp_path, capsys):
    target = tmp_path / "real.json"
    target.write_text("old\n")
    target.chmod(0o640)
    link = tmp_path / "link.json"
    os.symlink("real.json", link)
    assert main([*QUICK_STRESS, "--json", str(link)]) in (0, 3)  # 3: inconclusive (reader starved)
    capsys.readouterr()
    assert os.readlink(link) == "real.json"  # the link is kept
    assert json.loads(target.read_text())["protocol"] == "seqcount"  # its target replaced
    assert stat.S_IMODE(target.stat().st_mode) == 0o640  # with its mode
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.json", "real.json"]


def test_a_dangling_symlink_is_refused(tmp_path, capsys):
    link = tmp_path / "link.json"
    os.symlink(tmp_path / "nothing" / "x.json", link)
    assert main([*QUICK_STRESS, "--json", str(link)]) == 2
    assert "symlink to nothing" in one_error_line(capsys.readouterr().err)
    assert not (tmp_path / "nothing").exists()


def test_run_log_replaces_the_file_whole(tmp_path, capsys):
    log = tmp_path / "dmesg.txt"
    log.write_text("the previous run\n")
    assert main([*QUICK_RUN, "--log", str(log)]) == 0
    out = capsys.readouterr().out
    assert "==== kmallocwd run summary ====" in out  # also on stdout
    text = log.read_text()
    assert "previous" not in text and "==== kmallocwd run summary ====" in text
    assert [p.name for p in tmp_path.iterdir()] == ["dmesg.txt"]


# ---- a write that fails after the run: 74, report on stdout, file kept ----

def _small_files():
    resource.setrlimit(resource.RLIMIT_FSIZE, (300, 300))  # writes beyond: EFBIG


@pytest.mark.timeout(120)
@pytest.mark.parametrize("args,opt,on_stdout", [
    (QUICK_STRESS, "--json", "kmallocwd stress: seqcount (W-seq + R-seqcount"),  # any verdict
    (QUICK_RUN, "--log", "==== kmallocwd run summary ===="),
])
@pytest.mark.slow
def test_a_write_failing_after_the_run_is_74_with_the_report_on_stdout(tmp_path, args, opt,
                                                                       on_stdout):
    f = tmp_path / "out"
    f.write_text("old\n")
    r = child([*args, opt, str(f)], preexec=_small_files)
    line = one_error_line(r.stderr)
    assert r.returncode == 74, r.stderr
    assert f"{opt} {f}" in line and "File too large" in line
    assert on_stdout in r.stdout
    assert f.read_text() == "old\n"  # untouched
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no temporary file left


def test_write_text_raises_write_failed(tmp_path):
    t = outpath.check_output(str(tmp_path / "x.json"), "--json")
    os.unlink(t.tmp)
    os.rmdir(tmp_path)  # the directory went away during the run
    with pytest.raises(WriteFailed, match="--json"):
        outpath.write_text(t, "{}")


def test_a_node_put_there_during_the_run_survives(tmp_path):
    p = tmp_path / "x.json"
    t = outpath.check_output(str(p), "--json")
    os.mkfifo(p)
    with pytest.raises(WriteFailed, match="FIFO"):
        outpath.write_text(t, "{}")
    assert stat.S_ISFIFO(os.lstat(p).st_mode)
    assert [q.name for q in tmp_path.iterdir()] == ["x.json"]


# ---- stdout closed or full ----

@pytest.mark.timeout(120)
@pytest.mark.parametrize("args", [["protocols"], ["protocols", "--json"], QUICK_STRESS,
                                  [*QUICK_STRESS, "--json", "-"], QUICK_RUN,
                                  [*QUICK_RUN, "--json"], ["scenarios"], ["--help"]],
                         ids=lambda a: " ".join(a[:3]))
@pytest.mark.parametrize("how", ["full", "closed"])
@pytest.mark.slow
def test_stdout_closed_or_full_is_one_line_and_74(args, how):
    if how == "full":
        with open("/dev/full", "w") as full:
            r = child(args, stdout=full)
        what = "No space left on device"
    else:
        r = child(args, stdout=None, preexec=lambda: os.close(1))
        what = "stdout is closed"
    line = one_error_line(r.stderr)
    assert r.returncode == 74, r.stderr
    assert "cannot write to stdout" in line and what in line


# ---- signals during start-up ----

HOOK = '''
import os, signal, sys
class _SignalAt:
    """Sends a signal to this process when a module starts to load."""
    def find_spec(self, name, path=None, target=None):
        if name == os.environ["KMW_SIGNAL_AT"] and not getattr(self, "sent", False):
            self.sent = True
            os.kill(os.getpid(), int(os.environ["KMW_SIGNAL"]))
        return None
sys.meta_path.insert(0, _SignalAt())
'''


@pytest.mark.timeout(120)
@pytest.mark.parametrize("sig,rc", [(signal.SIGINT, 130), (signal.SIGTERM, 143)],
                         ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("module,args", [
    ("kmallocwd.cli", ["stress", "-d", "5"]),  # before main(): __main__'s handler
    ("numpy", ["stress", "-d", "5"]),  # main() loading the commands
    ("kmallocwd._kmallocwd", ["run", "-d", "5"]),  # the cffi extension
    ("tomllib", ["run", "-d", "5"]),
])
def test_a_signal_while_modules_load_exits_quietly(tmp_path, sig, rc, module, args):
    (tmp_path / "sitecustomize.py").write_text(HOOK)
    env = dict(ENV, PYTHONPATH=f"{tmp_path}{os.pathsep}{ROOT}", KMW_SIGNAL=str(int(sig)),
               KMW_SIGNAL_AT=module)
    r = child(args, env=env)
    assert r.returncode == rc, r.stderr
    assert "Traceback" not in r.stderr and "KeyboardInterrupt" not in r.stderr


SCRIPT = Path(sys.executable).parent / "kmallocwd"


@pytest.mark.timeout(120)
@pytest.mark.skipif(not SCRIPT.exists(), reason="no kmallocwd console script beside python")
@pytest.mark.parametrize("module", ["kmallocwd.cli", "numpy"])
def test_the_console_script_too(tmp_path, module):
    (tmp_path / "sitecustomize.py").write_text(HOOK)
    env = dict(ENV, PYTHONPATH=f"{tmp_path}{os.pathsep}{ROOT}",
               KMW_SIGNAL=str(int(signal.SIGTERM)), KMW_SIGNAL_AT=module)
    r = subprocess.run([str(SCRIPT), "stress", "-d", "5"], env=env, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 143 and "Traceback" not in r.stderr, r.stderr


def _reached_kmallocwd(err: str) -> bool:
    """Whether a traceback shows kmallocwd's own code (past the package's
    tiny __init__): a signal before that hit the interpreter's start-up,
    which no program can guard."""
    pkg = str(ROOT / "kmallocwd") + os.sep
    return any(pkg in line and "__init__.py" not in line for line in err.splitlines())


@pytest.mark.timeout(300)
@pytest.mark.parametrize("sig,rc", [(signal.SIGINT, 130), (signal.SIGTERM, 143)],
                         ids=["SIGINT", "SIGTERM"])
@pytest.mark.slow
def test_a_signal_soon_after_start_exits_quietly(sig, rc):
    """A signal ~0.05 s after the spawn (numpy loading, on most machines).
    Retried when it arrived before the interpreter ran kmallocwd's code."""
    outcomes = []
    for delay in (0.05, 0.05, 0.1, 0.1, 0.2, 0.3, 0.5, 1.0, 2.0):
        p = subprocess.Popen([sys.executable, "-m", "kmallocwd", "stress", "-d", "5"],
                             cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, preexec_fn=_default_signals)
        time.sleep(delay)
        p.send_signal(sig)
        out, err = p.communicate(timeout=120)
        outcomes.append((p.returncode, err[-300:]))
        if p.returncode == rc:
            assert "Traceback" not in err, err
            return
        # Only an interrupted interpreter start-up may end otherwise.
        assert p.returncode in (-sig, 1) and not _reached_kmallocwd(err), err
    pytest.fail(f"never reached kmallocwd's handler: {outcomes}")


# ---- run --json: the summary survives a burst of signals ----

def _run_json_then(signals: list[int], extra=()):
    p = subprocess.Popen([sys.executable, "-m", "kmallocwd", "run", "--json", "-t", "0.3",
                          *extra], cwd=ROOT, env=ENV, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, preexec_fn=_default_signals)
    try:
        first = p.stdout.readline()  # the boot record: the run is going
        for s in signals:  # back to back: microseconds apart
            os.kill(p.pid, s)
        out, err = p.communicate(timeout=120)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    records = [json.loads(line) for line in [first, *out.splitlines()] if line.strip()]
    return p.returncode, records, err


@pytest.mark.timeout(150)
@pytest.mark.parametrize("signals,rc", [
    ([signal.SIGINT] * 3, 130),
    ([signal.SIGTERM], 143),
    # Both pending at once: the kernel (and Python) may take either first.
    ([signal.SIGTERM, signal.SIGINT, signal.SIGINT], None),
    ([signal.SIGINT] * 10, 130),
], ids=["3xSIGINT", "SIGTERM", "SIGTERM+2xSIGINT", "10xSIGINT"])
def test_run_json_keeps_its_summary_and_exit_status(signals, rc):
    code, records, err = _run_json_then(signals)
    assert "Traceback" not in err
    assert code in ((130, 143) if rc is None else (rc,)), (code, err)
    assert records[0]["type"] == "boot"
    assert records[-1]["type"] == "summary"
    assert records[-1]["exit_status"] == code
    assert records[-1]["interrupted"] == ("SIGTERM" if code == 143 else "SIGINT")


def test_run_json_exit_status_zero_at_the_end(capsys):
    assert main([*QUICK_RUN, "--json"]) == 0
    last = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert last["type"] == "summary" and last["exit_status"] == 0


# ---- argument values ----

def test_leading_zeros_are_decimal():
    check = argtypes.int_range(1, 1024)
    assert check("010") == 10 and check("0010") == 10 and check("0x10") == 16
    assert check(" 7 ") == 7 and check("1_000") == 1000


def test_threads_010_is_ten(capsys):
    # (exit 3: 1000 bare pairs give the reader nothing to accept; the point is -t)
    assert main(["stress", "-q", "-p", "seqcount", "-t", "010", "-s", "10", "-n", "1000",
                 "--json", "-"]) in (0, 3)
    assert json.loads(capsys.readouterr().out)["config"]["threads"] == 10


def test_bogus_option_is_named(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--bogus"])
    assert e.value.code == 2
    line = one_error_line(capsys.readouterr().err)
    assert "--bogus" in line and "required" not in line


# ---- scenario values ----

def test_comm_is_cut_to_15_bytes():
    assert sc.comm("é" * 9) == "é" * 7  # 14 bytes: the 8th would need 16
    assert len(sc.comm("€" * 10).encode()) == 15
    assert sc.comm("a" * 20) == "a" * 15


# ---- bounded input ----

@pytest.mark.timeout(30)
def test_read_text_refuses_a_fifo_without_blocking(tmp_path):
    f = tmp_path / "fifo"
    os.mkfifo(f)
    with pytest.raises(UsageError, match="FIFO"):
        inputs.read_text(str(f), "--scenario", 1000)


def test_read_text_bounds(tmp_path):
    f = tmp_path / "f"
    f.write_text("x" * 100)
    assert inputs.read_text(str(f), "-s", 100) == "x" * 100
    with pytest.raises(UsageError, match="at most 99 bytes"):
        inputs.read_text(str(f), "-s", 99)
    # /proc files claim 0 bytes: the read itself is bounded.
    assert "Name:" in inputs.read_text("/proc/self/status", "-s", 1 << 20)
    with pytest.raises(UsageError, match="more than the limit"):
        inputs.read_text("/proc/self/status", "-s", 10)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads everything")
def test_read_text_unreadable(tmp_path):
    f = tmp_path / "f"
    f.write_text("x")
    f.chmod(0)
    with pytest.raises(UsageError, match="Permission denied"):
        inputs.read_text(str(f), "-s", 100)


@pytest.mark.timeout(150)
@pytest.mark.slow
def test_run_log_json_gets_its_summary_after_sigint(tmp_path):
    log = tmp_path / "run.jsonl"
    p = subprocess.Popen([sys.executable, "-m", "kmallocwd", "run", "--json", "-t", "0.3",
                          "--log", str(log)], cwd=ROOT, env=ENV, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, preexec_fn=_default_signals)
    try:
        # The log goes to a temporary file beside run.jsonl until the end:
        # wait for its boot record (however long the machine takes).
        while not any(q.stat().st_size for q in tmp_path.glob(".run.jsonl.*")):
            assert p.poll() is None, p.communicate()
            time.sleep(0.05)
        for _ in range(3):
            os.kill(p.pid, signal.SIGINT)
        out, err = p.communicate(timeout=120)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 130 and "Traceback" not in err, err
    assert "==== kmallocwd run summary ====" in out
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert records[0]["type"] == "boot" and records[-1]["type"] == "summary"
    assert records[-1]["exit_status"] == 130
    assert [q.name for q in tmp_path.iterdir()] == ["run.jsonl"]


def test_run_log_dash_is_stdout(capsys):
    assert main([*QUICK_RUN, "--log", "-"]) == 0
    assert "==== kmallocwd run summary ====" in capsys.readouterr().out


@pytest.mark.slow
def test_png_goes_through_a_temporary_file(tmp_path, monkeypatch, capsys):
    """Each chart is written to a temporary file beside it, then renamed over
    the old chart: a reader never sees half a PNG, and nothing is left."""
    from test_bench_report import _doc

    written = []
    real = outpath.write_file

    def spy(target, produce):
        def record(tmp):
            written.append(tmp)
            produce(tmp)
        real(target, record)

    monkeypatch.setattr(outpath, "write_file", spy)
    (tmp_path / "run.json").write_text(json.dumps(_doc()))
    png = tmp_path / "chart-ns-per-op.png"
    png.write_bytes(b"old")
    assert main(["bench-report", str(tmp_path / "run.json"), "--png",
                 str(tmp_path / "chart")]) == 0
    assert f"chart written to {png}" in capsys.readouterr().out
    assert png.read_bytes().startswith(b"\x89PNG")
    (tmp,) = written
    assert tmp != str(png) and Path(tmp).parent == tmp_path and tmp.endswith(".png")
    assert sorted(q.name for q in tmp_path.iterdir()) == ["chart-ns-per-op.png", "run.json"]


def test_discard_all_closes_and_removes(tmp_path):
    fds = len(os.listdir("/proc/self/fd"))
    targets = [outpath.check_output(str(tmp_path / f"{i}.json"), "--json") for i in range(3)]
    assert len(list(tmp_path.iterdir())) == 3 and len(os.listdir("/proc/self/fd")) == fds + 3
    outpath.discard_all()
    assert list(tmp_path.iterdir()) == [] and len(os.listdir("/proc/self/fd")) == fds
    assert all(t.fd == -1 for t in targets)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.slow
def test_a_signal_after_the_summary_keeps_the_status(sig):
    """Once the summary record is out, the status is decided: a signal then
    (the process finishing, or the interpreter shutting down) changes nothing."""
    p = subprocess.Popen([sys.executable, "-m", "kmallocwd", *QUICK_RUN, "--json"], cwd=ROOT,
                         env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         preexec_fn=_default_signals)
    try:
        for line in p.stdout:
            if json.loads(line)["type"] == "summary":
                break
        for _ in range(3):
            try:
                os.kill(p.pid, sig)
            except ProcessLookupError:
                break
        out, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert json.loads(line)["exit_status"] == 0
    assert p.returncode == 0 and "Traceback" not in err, (p.returncode, err)


@pytest.mark.timeout(60)
@pytest.mark.slow
def test_a_workload_with_no_think_time_still_stops_at_the_duration(tmp_path, capsys):
    """interval_s = 0: the task yields and checks the halt each time round,
    so -d 1 ends the run (pytest-timeout guards the old 11 s spin)."""
    f = tmp_path / "spin.toml"
    f.write_text("[[process]]\nname = 'x'\n[[process.thread]]\ninterval_s = 0\nburst = 1\n")
    assert main(["run", "-q", "-s", str(f), "-d", "1"]) == 0
    assert "summary" in capsys.readouterr().out.lower()
