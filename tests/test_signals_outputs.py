"""Every stopping signal ends a run with its report and its outputs written,
nothing left behind; an output path never names another output's file nor
goes through another user's symlink in a sticky directory; a campaign goes
on when a write fails, and holds its results file alone.  Signals are sent
to child processes; no timing assertions (every wait has a generous bound,
and a signal that lands too early is retried later)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from kmallocwd.cli import main

from conftest import ROOT

ENV = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")


def _default_signals() -> None:
    # A child of a background shell inherits SIGINT and SIGQUIT ignored (and
    # SIGHUP under nohup); give it the defaults, as a terminal does.
    for s in (signal.SIGINT, signal.SIGQUIT, signal.SIGHUP):
        signal.signal(s, signal.SIG_DFL)


def _spawn(args, cwd=ROOT):
    return subprocess.Popen([sys.executable, "-m", "kmallocwd", *args], cwd=cwd, env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=_default_signals)


def _finish(p, timeout=120):
    try:
        return p.communicate(timeout=timeout)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def _leftovers(directory: Path) -> list[str]:
    """Temporary files of outputs (.NAME.XXXXXXXX.tmpEXT) left in directory."""
    return [f.name for f in directory.iterdir() if f.name.startswith(".") and ".tmp" in f.name]


def _wait_for(pred, what: str, limit: float = 120) -> None:
    deadline = time.monotonic() + limit
    while not pred():
        if time.monotonic() > deadline:
            pytest.fail(f"never saw {what}")
        time.sleep(0.05)


# ---------------------------------------------------------------- ablate

@pytest.mark.timeout(600)
@pytest.mark.parametrize("sig,rc", [(signal.SIGINT, 130), (signal.SIGTERM, 143),
                                    (signal.SIGHUP, 129)], ids=["SIGINT", "SIGTERM", "SIGHUP"])
@pytest.mark.slow
def test_ablate_stops_with_the_rows_done_and_the_cut_short_variant_marked(tmp_path, sig, rc):
    """-d 60 for each of seqcount's 8 variants: without a handler this runs
    8 minutes.  A signal that lands before the first stress run (model half,
    compiling) stops it too; the test then waits longer before the next try,
    until one lands in a stress run."""
    out, xml = tmp_path / "a.json", tmp_path / "a.xml"
    for delay in (3, 6, 12, 24, 48):
        p = _spawn(["ablate", "-p", "seqcount", "-m", "sc", "-d", "60", "--json", str(out),
                    "--junit", str(xml)])
        time.sleep(delay)
        p.send_signal(sig)
        stdout, stderr = _finish(p, timeout=90)
        assert p.returncode == rc, stderr
        assert "Traceback" not in stderr
        doc = json.loads(out.read_text())
        assert doc["interrupted"] is True and doc["exit_status"] == rc
        assert len(doc["rows"]) < doc["variants"] == 8
        assert "INTERRUPTED: partial" in stdout
        assert _leftovers(tmp_path) == []
        if doc["rows"] and doc["rows"][-1]["stress"] is not None:
            last = doc["rows"][-1]["stress"]
            assert last["interrupted"] is True and last["elapsed_s"] < 60
            assert all(r["stress"]["interrupted"] is False for r in doc["rows"][:-1])
            assert "[INTERRUPTED: partial]" in stdout
            cases = ET.parse(xml).getroot().findall("./testsuite/testcase")
            assert len(cases) == len(doc["rows"])
            assert cases[-1].find("skipped") is not None
            return
    pytest.fail("the signal never landed in a stress run")


# ---------------------------------------------------------------- SIGHUP & co

@pytest.mark.timeout(180)
@pytest.mark.parametrize("sig,rc", [(signal.SIGHUP, 129), (signal.SIGUSR1, 138)],
                         ids=["SIGHUP", "SIGUSR1"])
@pytest.mark.slow
def test_stress_stops_on_sighup_like_sigterm(tmp_path, sig, rc):
    out, xml = tmp_path / "s.json", tmp_path / "s.xml"
    p = _spawn(["stress", "-p", "seqcount", "-d", "60", "--json", str(out),
                "--junit", str(xml)])
    assert "kmallocwd stress" in p.stderr.readline()
    time.sleep(0.5)
    p.send_signal(sig)
    stdout, stderr = _finish(p)
    assert p.returncode == rc, stderr
    assert "INTERRUPTED: partial" in stdout and "Traceback" not in stderr
    doc = json.loads(out.read_text())
    assert doc["interrupted"] is True and doc["exit_status"] == rc and doc["writer_ops"] > 0
    assert ET.parse(xml).getroot().find("./testsuite/testcase") is not None
    assert _leftovers(tmp_path) == []


@pytest.mark.timeout(180)
def test_run_stops_on_sighup_with_its_log_and_summary(tmp_path):
    log = tmp_path / "run.jsonl"
    p = _spawn(["run", "-q", "--timeout", "0.3", "--json", "--log", str(log)])
    # the log is written into its temporary file as the run goes: the boot record
    _wait_for(lambda: any(f.stat().st_size > 0 for f in tmp_path.iterdir()), "the boot record")
    p.send_signal(signal.SIGHUP)
    stdout, stderr = _finish(p)
    assert p.returncode == 129, stderr
    assert "Traceback" not in stderr and "interrupted by SIGHUP" in stdout
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert records[0]["type"] == "boot" and records[-1]["type"] == "summary"
    assert records[-1]["interrupted"] == "SIGHUP" and records[-1]["exit_status"] == 129
    assert _leftovers(tmp_path) == []


@pytest.mark.timeout(120)
def test_sigquit_stops_at_once_writing_nothing_and_leaving_nothing(tmp_path):
    out = tmp_path / "q.json"
    out.write_text("the previous report\n")
    p = _spawn(["stress", "-p", "seqcount", "-d", "60", "--json", str(out)])
    assert "kmallocwd stress" in p.stderr.readline()
    time.sleep(0.5)
    p.send_signal(signal.SIGQUIT)
    stdout, stderr = _finish(p)
    assert p.returncode == 131, stderr
    assert "Traceback" not in stderr
    assert out.read_text() == "the previous report\n"
    assert _leftovers(tmp_path) == []


# ---------------------------------------------------------------- check, replay

@pytest.mark.timeout(300)
@pytest.mark.parametrize("sig,rc", [(signal.SIGINT, 130), (signal.SIGTERM, 143)],
                         ids=["SIGINT", "SIGTERM"])
def test_check_writes_its_partial_json_on_a_signal(tmp_path, sig, rc):
    out = tmp_path / "c.json"
    p = _spawn(["check", "-k", "4", "--json", str(out)])  # every built-in, K=4
    assert p.stdout.readline().startswith("kmallocwd check:")  # the first protocol is done
    p.send_signal(sig)
    stdout, stderr = _finish(p)
    assert p.returncode == rc, stderr
    assert "Traceback" not in stderr and "INTERRUPTED: partial" in stdout
    doc = json.loads(out.read_text())
    assert doc["interrupted"] is True and doc["exit_status"] == rc
    from kmallocwd import protocols
    assert 1 <= len(doc["protocols"]) < len(protocols.NAMES)
    assert all(d["models"] for d in doc["protocols"])
    assert list(doc["protocols"][0]["models"]) == ["sc", "x86", "weak"]
    assert _leftovers(tmp_path) == []


def test_replay_writes_its_json_to_a_file(tmp_path, capsys):
    out = tmp_path / "r.json"
    assert main(["replay", "-p", "v3", "-m", "sc", "-n", "2", "--json", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert doc["schema"] == "kmallocwd.replay/1" and doc["protocol"] == "v3"
    assert [m["model"] for m in doc["models"]] == ["sc"]
    assert doc["models"][0]["runs"] == 2
    assert "replaying the counterexample" in capsys.readouterr().out  # the text, as before


# ---------------------------------------------------------------- one file, two outputs

@pytest.mark.parametrize("cmd", [
    ["stress", "-q", "-d", "0.1"],
    ["check", "-p", "v3", "-m", "sc"],
    ["ablate", "-p", "seqcount", "-m", "sc"],
])
@pytest.mark.parametrize("how", ["same", "dot-slash", "hard-link", "symlink"])
def test_one_file_named_for_two_outputs_is_refused(tmp_path, capsys, monkeypatch, cmd, how):
    monkeypatch.chdir(tmp_path)
    x = tmp_path / "x.out"
    x.write_text("precious\n")
    other = {"same": "x.out", "dot-slash": "./x.out"}.get(how)
    if how == "hard-link":
        os.link(x, tmp_path / "hl.out")
        other = "hl.out"
    elif how == "symlink":
        os.symlink("x.out", tmp_path / "sl.out")
        other = "sl.out"
    assert main([*cmd, "--json", "x.out", "--junit", other]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"--junit {other}: the same file as --json x.out" in err[0], err
    assert x.read_text() == "precious\n"
    assert _leftovers(tmp_path) == []


def test_two_outputs_to_stdout_are_refused(capsys):
    assert main(["stress", "-q", "-d", "0.1", "--json", "-", "--junit", "-"]) == 2
    err = capsys.readouterr().err
    assert "--junit -: stdout already takes --json -" in err


def test_the_campaign_results_file_and_its_junit_are_one_check(tmp_path, capsys):
    plan = tmp_path / "plan.toml"
    plan.write_text("[[check]]\nargs = ['-p', 'v3']\n")
    out = tmp_path / "r.json"
    assert main(["campaign", str(plan), "--dry-run", "--json", str(out),
                 "--junit", str(tmp_path / "." / "r.json")]) == 2
    assert "the same file as --json" in capsys.readouterr().err


def test_a_second_command_may_name_the_file_again(tmp_path, capsys):
    """The claim is per command: in one process, the next main() is free."""
    out = tmp_path / "x.json"
    assert main(["check", "-p", "v3", "-m", "sc", "--json", str(out)]) in (0, 1, 3)
    assert main(["check", "-p", "v3", "-m", "sc", "--json", str(out)]) in (0, 1, 3)
    assert json.loads(out.read_text())["protocol"] == "v3"


# ---------------------------------------------------------------- protected symlinks

@pytest.mark.skipif(os.geteuid() != 0, reason="needs root (to chown a link to nobody)")
def test_no_write_through_another_users_symlink_in_a_sticky_directory(tmp_path, capsys):
    import pwd
    nobody = pwd.getpwnam("nobody").pw_uid
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o1777)  # like /tmp
    secret = tmp_path / "secret"
    secret.write_text("root's own\n")
    os.chmod(secret, 0o600)
    planted = shared / "report.json"
    os.symlink(secret, planted)
    os.lchown(planted, nobody, -1)
    assert main(["check", "-p", "v3", "-m", "sc", "--json", str(planted)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "protected_symlinks" in err[0] and f"uid {nobody}" in err[0]
    assert secret.read_text() == "root's own\n" and os.lstat(planted).st_uid == nobody
    assert _leftovers(shared) == [] and _leftovers(tmp_path) == []
    # a directory component planted the same way is refused too
    os.symlink(tmp_path, shared / "dir")
    os.lchown(shared / "dir", nobody, -1)
    assert main(["check", "-p", "v3", "-m", "sc", "--json", str(shared / "dir" / "new.json")]) == 2
    assert not (tmp_path / "new.json").exists()
    capsys.readouterr()
    # the user's own link there is followed (the target replaced, the link kept)
    mine = shared / "mine.json"
    os.symlink(secret, mine)
    assert main(["check", "-p", "v3", "-m", "sc", "--json", str(mine)]) in (0, 1, 3)
    assert json.loads(secret.read_text())["protocol"] == "v3" and mine.is_symlink()


# ---------------------------------------------------------------- campaigns

SIX_CHECKS = """
[[check]]
args = ["-p", "seqcount", "-m", "sc", "-k", "1"]
repeats = 6
"""


@pytest.mark.timeout(300)
@pytest.mark.slow
def test_a_failed_results_write_does_not_abort_the_campaign(tmp_path, capsys, monkeypatch):
    """The --json disk fills after two checkpoints: every cell still runs,
    the table is printed, the JUnit file written, and the exit status is 74."""
    pytest.importorskip("distributed")
    from kmallocwd import outpath
    from kmallocwd.errors import WriteFailed

    plan = tmp_path / "plan.toml"
    plan.write_text(SIX_CHECKS)
    out, xml = tmp_path / "r.json", tmp_path / "r.xml"
    real_write = outpath.write_text
    json_writes = []

    def disk_fills(target, text):
        if target.option == "--json":
            json_writes.append(len(text))
            if len(json_writes) > 2:
                outpath.discard(target)  # as the real write does on failure
                raise WriteFailed(f"{target.label()}: cannot write it: No space left on device")
        return real_write(target, text)

    monkeypatch.setattr(outpath, "write_text", disk_fills)
    code = main(["campaign", str(plan), "--workers", "1", "--json", str(out),
                 "--junit", str(xml), "-q"])
    captured = capsys.readouterr()
    assert code == 74, captured.err
    assert len(json_writes) >= 4  # checkpoints went on after the first failure, then the end
    assert "6 cells: 6 finished" in captured.out  # the table
    assert "No space left on device" in captured.err
    cases = ET.parse(xml).getroot().findall("./testsuite/testcase")
    assert len(cases) == 6
    assert len(json.loads(out.read_text())["cells"]) <= 2  # the last good checkpoint
    assert _leftovers(tmp_path) == []


@pytest.mark.timeout(200)
def test_a_second_campaign_on_a_results_file_says_who_holds_it(tmp_path):
    from kmallocwd.campaign.lock import acquire

    plan = tmp_path / "plan.toml"
    plan.write_text("[[check]]\nargs = ['-p', 'seqcount', '-m', 'sc', '-k', '1']\n")
    out = tmp_path / "r.json"
    lock = acquire(str(out), "--json r.json")  # this process runs a campaign on it
    try:
        r = subprocess.run([sys.executable, "-m", "kmallocwd", "campaign", str(plan), "-q",
                            "--workers", "1", "--json", str(out)], cwd=ROOT, env=ENV,
                           capture_output=True, text=True, timeout=150)
    finally:
        lock.release()
    assert r.returncode == 2, r.stderr
    err = r.stderr.strip().splitlines()
    assert len(err) == 1 and f"in use by another campaign (pid {os.getpid()}" in err[0], err
    assert not out.exists() and _leftovers(tmp_path) == []
    # released: the lock is free again
    acquire(str(out), "--json r.json").release()


@pytest.mark.timeout(300)
@pytest.mark.slow
def test_a_campaign_stops_on_sighup_with_its_outputs(tmp_path):
    pytest.importorskip("distributed")
    plan = tmp_path / "plan.toml"
    plan.write_text("""
[[stress]]
protocols = ["seqcount"]
durations = 1.5
seeds = [1, 2, 3, 4, 5, 6]
[stress.knobs]
alloc_ns = 100
""")
    out, xml = tmp_path / "r.json", tmp_path / "r.xml"
    p = _spawn(["campaign", str(plan), "--workers", "2", "--json", str(out), "--junit", str(xml)])

    def some_cell_done() -> bool:
        try:
            return bool(json.loads(out.read_text())["cells"])
        except (OSError, ValueError):
            return p.poll() is not None

    _wait_for(some_cell_done, "a finished cell", limit=150)
    p.send_signal(signal.SIGHUP)
    stdout, stderr = _finish(p)
    assert p.returncode == 129, stderr
    assert "Traceback" not in stderr and "[interrupted]" in stdout
    doc = json.loads(out.read_text())
    assert doc["interrupted"] is True and 1 <= len(doc["cells"]) < 6
    assert len(ET.parse(xml).getroot().findall("./testsuite/testcase")) == 6
    assert _leftovers(tmp_path) == []


# ---------------------------------------------------------------- a kill while compiling

def _compilers(pid: int) -> list:
    """The processes under ``pid`` that are not Python: the compiler (the
    slow-cc script, its sleep, then cc) that the compile child runs."""
    import psutil
    try:
        kids = psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return []
    out = []
    for pr in kids:
        try:
            if not (pr.name() or "").startswith("python"):
                out.append(pr)
        except psutil.Error:
            continue
    return out


def _alive(procs: list) -> list:
    import psutil
    out = []
    for pr in procs:
        try:
            if pr.is_running() and pr.status() != psutil.STATUS_ZOMBIE:
                out.append(pr)
        except psutil.Error:
            continue
    return out


SLOW_CC = """#!/bin/sh
# a compiler that takes its time: a signal is sure to find it running
[ "$1" = --version ] && exec cc --version
sleep 60
exec cc "$@"
"""


@pytest.mark.timeout(300)
@pytest.mark.parametrize("sig,rc", [(signal.SIGTERM, 143), (signal.SIGHUP, 129)],
                         ids=["SIGTERM", "SIGHUP"])
@pytest.mark.slow
def test_a_signal_while_a_protocol_file_compiles_leaves_no_build_and_no_compiler(
        tmp_path, sig, rc):
    pytest.importorskip("psutil")
    cache = tmp_path / "cache"  # empty: the file is compiled
    proto = tmp_path / "mine.toml"
    text = (ROOT / "kmallocwd" / "protocols" / "seqcount.toml").read_text()
    proto.write_text(text.replace('name = "seqcount"', 'name = "mine"', 1))  # not a built-in
    slow_cc = tmp_path / "slow-cc"
    slow_cc.write_text(SLOW_CC)
    slow_cc.chmod(0o755)
    env = dict(ENV, KMALLOCWD_CACHE=str(cache), CC=str(slow_cc))
    p = subprocess.Popen([sys.executable, "-m", "kmallocwd", "stress", "--protocol-file",
                          str(proto), "-d", "5"], cwd=ROOT, env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         preexec_fn=_default_signals)
    try:
        _wait_for(lambda: _compilers(p.pid) or p.poll() is not None, "the compiler running")
        assert p.poll() is None, "the compile ended before it was seen"
        seen = _compilers(p.pid)
        p.send_signal(sig)
        stdout, stderr = _finish(p)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == rc, stderr
    assert "Traceback" not in stderr
    _wait_for(lambda: not _alive(seen), "the compiler stopped", limit=30)  # stopped with us
    assert list(cache.glob("*/build-*")) == []
