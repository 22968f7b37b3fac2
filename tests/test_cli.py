"""The command line: exit codes, one-line errors, the JSON report, Ctrl-C."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kmallocwd import protocols
from kmallocwd.cli import main

from conftest import ROOT

BAD_INPUT = [
    (["stress", "--protocol", "v5"], "'v5'", "v2-rwlock, v3, v4-parity"),
    (["stress", "--threads", "0"], "0", "1 to 1024"),
    (["stress", "--slots", "0"], "0", "1 or more"),
    (["stress", "--slots", str(10**15)], str(10**15), "1 to "),
    (["stress", "--duration", "-1"], "-1", "more than 0"),
    (["stress", "--duration", "abc"], "'abc'", "more than 0"),
    (["stress", "--threads", "3", "--slots", "2"], "--threads 3", "1 to 2"),
    (["stress", "--preempt", "1.5"], "1.5", "0 to 1"),
    (["stress", "--hold-ns", "-5"], "-5", "0 to"),
]


@pytest.mark.parametrize("argv,value,accepted", BAD_INPUT)
def test_bad_input_is_one_line_exit_2(argv, value, accepted, capsys):
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert value in lines[0] and accepted in lines[0] and "Traceback" not in err


def test_bad_input_in_a_child_process_has_no_traceback(cli):
    r = cli("stress", "--threads", "-3")
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    assert "-3" in r.stderr and "accepted: 1 to 1024" in r.stderr


@pytest.mark.parametrize("cmd", ["stress", "protocols", "demo"])
def test_every_command_has_help(cmd, capsys):
    with pytest.raises(SystemExit) as exc:
        main([cmd, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "usage: kmallocwd " + cmd in out and "--" in out


def test_protocols_json_is_the_table(capsys):
    assert main(["protocols", "--json"]) == 0
    table = json.loads(capsys.readouterr().out)
    assert [p["name"] for p in table] == list(protocols.NAMES)
    for p in table:
        torn = [o for o in p["outcomes"] if o["name"] == "torn"][0]
        assert torn["expect"] in ("forbidden", "interesting") and torn["reason"]


def test_exit_status_follows_the_protocol_table(tmp_path, capsys):
    # v3 tears: forbidden outcome -> 1; with --expect torn -> 0
    out = tmp_path / "v3.json"
    # (--alloc-ns keeps records valid long enough for the reader to find them
    # even on a loaded machine, where the bare loop can starve it of them)
    code = main(["stress", "-q", "-p", "v3", "-d", "3", "--until-torn", "--alloc-ns", "100",
                 "--json", str(out)])
    doc = json.loads(out.read_text())
    assert code == doc["exit_status"] == 1 and doc["forbidden_seen"] == ["torn"]
    assert main(["stress", "-q", "-p", "v3", "-d", "3", "--until-torn", "--alloc-ns", "100",
                 "--expect", "torn"]) == 0
    # seqcount does not: 0; and --expect torn fails it
    assert main(["stress", "-q", "-p", "seqcount", "-d", "0.3", "--alloc-ns", "100"]) == 0
    assert main(["stress", "-q", "-p", "seqcount", "-d", "0.3", "--expect", "torn"]) == 1
    text = capsys.readouterr().out
    assert "FAIL: forbidden outcome seen for v3: torn" in text
    # (a loaded machine may starve the reader of every record: INCONCLUSIVE, still 0)
    assert re.search(r"PASS(: no outcome forbidden for seqcount was seen|, but INCONCLUSIVE)",
                     text)


def test_json_report_has_the_documented_fields(tmp_path):
    out = tmp_path / "r.json"
    assert main(["stress", "-q", "-p", "none", "-d", "0.5", "-t", "2", "-s", "4",
                 "--json", str(out)]) == 0
    doc = json.loads(out.read_text())
    for key in ("schema", "protocol", "writer", "reader", "config", "machine", "elapsed_s",
                "interrupted", "stop_latency_s", "outcomes", "retries", "writer_ops", "reader_snapshots",
                "scans", "first_torn", "repeat", "forbidden_seen", "conclusive", "expect", "verdict",
                "exit_status"):
        assert key in doc, key
    assert doc["schema"] == "kmallocwd.stress/1" and doc["protocol"] == "none"
    assert set(doc["outcomes"]) == set(protocols.OUTCOMES)
    assert doc["outcomes"]["torn"]["expect"] == "interesting"
    counts = {k: v["count"] for k, v in doc["outcomes"].items()}
    assert sum(counts.values()) == doc["reader_snapshots"] > 0
    assert doc["config"]["threads"] == 2 and doc["config"]["slots"] == 4
    assert doc["writer_ops"] > 0
    if counts["torn"]:
        ft = doc["first_torn"]
        assert 0 <= ft["after_s"] <= doc["elapsed_s"]
        assert set(ft["snapshot"]) >= {"sequence", "valid", "start", "order", "gfp",
                                       "witness", "expected_witness"}


def test_repeat_reports_each_run(tmp_path):
    out = tmp_path / "rep.json"
    main(["stress", "-q", "-p", "v3", "-d", "3", "--until-torn", "--repeat", "3", "--alloc-ns", "100",
          "--json", str(out)])
    rep = json.loads(out.read_text())["repeat"]
    assert rep["runs"] == 3 and len(rep["per_run"]) == 3
    times = [r["first_torn_after_s"] for r in rep["per_run"] if r["first_torn_after_s"] is not None]
    assert rep["torn_runs"] == len(times) >= 1
    assert rep["first_torn_after_s"]["max"] == max(times)
    assert rep["first_torn_after_s"]["min"] == min(times)


@pytest.mark.parametrize("path", ["{tmp}", "{tmp}/no/such/dir/r.json"])
def test_unwritable_json_path_is_refused_before_the_run(tmp_path, capsys, path):
    code = main(["stress", "-q", "-d", "30", "--json", path.format(tmp=tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and "--json" in err


def test_a_run_that_accepted_nothing_says_inconclusive(tmp_path):
    """A run whose reader accepted no snapshot tested nothing, and its
    report says so (the verdict and the JSON's "conclusive")."""
    from kmallocwd import stress_report
    from kmallocwd.stress import StressResult, StressConfig

    res = StressResult(config=StressConfig(protocol="seqcount"),
                       counts={"consistent": 0, "torn": 0, "rejected-odd": 0,
                               "rejected-invalid": 1000})
    status, line = stress_report.verdict([res], None)
    assert status == 0 and "INCONCLUSIVE" in line
    assert stress_report.to_dict([res])["conclusive"] is False


def test_json_to_stdout(capsys):
    assert main(["stress", "-q", "-p", "seqcount", "-d", "0.2", "--json", "-"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["protocol"] == "seqcount"


@pytest.mark.parametrize("sig,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_interrupt_prints_and_writes_the_partial_report(tmp_path, sig, code):
    out = tmp_path / "partial.json"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    # (SIGINT may be ignored where the test suite runs, e.g. under nohup; a
    # child that ignores it at start never gets Python's Ctrl-C handler)
    p = subprocess.Popen([sys.executable, "-m", "kmallocwd", "stress", "-p", "seqcount",
                          "-d", "60", "-t", "1", "--json", str(out)],
                         cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True,
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    # wait for the run to start (its progress line), then let it work a bit
    assert "kmallocwd stress" in p.stderr.readline()
    time.sleep(0.5)
    p.send_signal(sig)
    stdout, stderr = p.communicate(timeout=30)
    assert p.returncode == code, stderr
    assert "INTERRUPTED: partial" in stdout and "Traceback" not in stderr
    doc = json.loads(out.read_text())
    assert doc["interrupted"] is True and doc["writer_ops"] > 0
    assert doc["reader_snapshots"] > 0 and doc["elapsed_s"] < 60


def test_make_rebuilds_the_extension_after_a_c_change():
    """The extension's stamp depends on every file in csrc/."""
    src = ROOT / "csrc" / "clock.c"
    stamp = ROOT / "kmallocwd" / ".ext-stamp"
    if not stamp.exists():
        pytest.skip("not built through make")
    if subprocess.run(["make", "-q", "kmallocwd/.ext-stamp"], cwd=ROOT).returncode != 0:
        pytest.skip("the tree is not up to date to begin with")
    st = src.stat()
    try:
        os.utime(src, (st.st_atime, stamp.stat().st_mtime + 10))
        q = subprocess.run(["make", "-q", "kmallocwd/.ext-stamp"], cwd=ROOT)
        assert q.returncode == 1  # out of date: make would rebuild
        dry = subprocess.run(["make", "-n", "build"], cwd=ROOT, capture_output=True, text=True)
        assert "build_ext --inplace" in dry.stdout
    finally:
        os.utime(src, (st.st_atime, st.st_mtime))
    assert subprocess.run(["make", "-q", "kmallocwd/.ext-stamp"], cwd=ROOT).returncode == 0
