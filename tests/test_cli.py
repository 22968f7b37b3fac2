"""The command line: exit codes, one-line errors, the JSON report, Ctrl-C."""

from __future__ import annotations

import json
import os
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
    (["stress", "--slots", "0"], "0", "1 to 268435456"),
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
        for kind in protocols.TORN_KINDS:
            torn = [o for o in p["outcomes"] if o["name"] == kind][0]
            assert torn["expect"] in ("forbidden", "interesting") and torn["reason"]
        assert set(p["verdicts"]) == {"sc", "x86", "weak"}
        assert p["path"].endswith(f"{p['name']}.toml")


V3_UNTIL_TORN = ["stress", "-q", "-p", "v3", "-d", "3", "--until-torn", "--alloc-ns", "100"]


def _until(argv: list[str], done, tries: int = 20) -> tuple[int, dict]:
    """Run the CLI with --json - until done(doc), at most ``tries`` times."""
    for _ in range(tries):
        import io
        import contextlib
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            code = main([*argv, "--json", "-"])
        doc = json.loads(buf.getvalue())
        if done(doc):
            break
    return code, doc


@pytest.mark.slow
def test_exit_status_follows_the_verdict(capsys):
    # v3 tears: forbidden outcome -> 1 (retried until a run tears)
    code, doc = _until(V3_UNTIL_TORN, lambda d: d["torn"] > 0)
    assert code == doc["exit_status"] == 1 and doc["result"] == "FAIL"
    assert set(doc["forbidden_seen"]) <= set(protocols.TORN_KINDS) and doc["forbidden_seen"]
    # seqcount with power: 0; and --expect torn fails it
    code, doc = _until(["stress", "-q", "-p", "seqcount", "-d", "0.5", "--alloc-ns", "100",
                        "--hold-ns", "50"], lambda d: d["overlaps"] >= 1)
    assert code == doc["exit_status"] == 0 and doc["result"] == "PASS"
    assert doc["tear_bound_95"] == pytest.approx(1 - 0.05 ** (1 / doc["overlaps"]))
    assert main(["stress", "-q", "-p", "seqcount", "-d", "0.3", "--expect", "torn"]) == 1
    # seqcount with no accepted snapshot, or too little power: 3
    assert main(["stress", "-q", "-p", "seqcount", "-n", "1"]) == 3
    assert main(["stress", "-q", "-p", "seqcount", "-d", "0.2", "--alloc-ns", "100",
                 "--min-overlaps", str(10**14)]) == 3
    text = capsys.readouterr().out
    assert "INCONCLUSIVE" in text and "--min-overlaps" in text


def test_json_report_has_the_documented_fields(tmp_path):
    out = tmp_path / "r.json"
    code = main(["stress", "-q", "-p", "none", "-d", "0.5", "-t", "2", "-s", "4",
                 "--alloc-ns", "100", "--json", str(out)])
    doc = json.loads(out.read_text())
    assert code == doc["exit_status"]
    for key in ("schema", "protocol", "protocol_file", "writer", "reader", "config",
                "runs_done", "machine", "elapsed_s", "startup_s", "interrupted",
                "stop_latency_s", "outcomes", "torn", "accepted", "attempts", "overlaps",
                "tear_bound_95", "retries", "writer_ops", "reader_snapshots", "scans",
                "first_torn", "repeat", "forbidden_seen", "model_broken_on", "expect",
                "verdict", "result", "exit_status"):
        assert key in doc, key
    assert doc["schema"] == "kmallocwd.stress/2" and doc["protocol"] == "none"
    assert set(doc["outcomes"]) == set(protocols.OUTCOMES)
    assert doc["outcomes"]["torn-mixed"]["expect"] == "interesting"
    counts = {k: v["count"] for k, v in doc["outcomes"].items()}
    assert sum(counts.values()) == doc["reader_snapshots"] > 0
    assert doc["torn"] == sum(counts[k] for k in protocols.TORN_KINDS)
    assert doc["config"]["threads"] == 2 and doc["config"]["slots"] == 4
    assert doc["writer_ops"] > 0
    if doc["torn"]:
        ft = doc["first_torn"]
        assert 0 <= ft["after_s"] <= doc["elapsed_s"] and ft["kind"] in protocols.TORN_KINDS
        assert set(ft["snapshot"]) >= {"sequence", "valid", "start", "order", "gfp",
                                       "witness", "expected_witness"}


@pytest.mark.slow
def test_repeat_reports_each_run(tmp_path):
    out = tmp_path / "rep.json"
    main([*V3_UNTIL_TORN, "--repeat", "3", "--json", str(out)])
    doc = json.loads(out.read_text())
    rep = doc["repeat"]
    assert doc["config"]["repeat"] == 3 and doc["runs_done"] == 3
    assert rep["runs"] == 3 and len(rep["per_run"]) == 3
    times = [r["first_torn_after_s"] for r in rep["per_run"] if r["first_torn_after_s"] is not None]
    assert rep["torn_runs"] == len(times)
    assert rep["censored_runs"] == 3 - len(times)
    if times and len(times) == 3:
        assert rep["first_torn_after_s"]["max"] == max(times)
        assert rep["first_torn_after_s"]["min"] == min(times)


@pytest.mark.parametrize("path", ["{tmp}", "{tmp}/no/such/dir/r.json"])
def test_unwritable_json_path_is_refused_before_the_run(tmp_path, capsys, path):
    code = main(["stress", "-q", "-d", "30", "--json", path.format(tmp=tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and "--json" in err


def test_a_run_that_accepted_nothing_says_inconclusive():
    """A run whose reader accepted no snapshot tested nothing: exit 3."""
    import kmallocwd.stress.report as stress_report
    from kmallocwd.stress.run import StressConfig, StressResult

    res = StressResult(config=StressConfig(protocol="seqcount"),
                       spec=protocols.get("seqcount"),
                       counts={o: 0 for o in protocols.OUTCOMES} | {"rejected-invalid": 1000})
    v = stress_report.verdict([res], None)
    assert v.status == 3 and "INCONCLUSIVE" in v.line
    assert stress_report.build([res]).to_dict()["exit_status"] == 3


def test_json_to_stdout(capsys):
    code = main(["stress", "-q", "-p", "seqcount", "-d", "0.2", "--json", "-"])
    doc = json.loads(capsys.readouterr().out)
    assert doc["protocol"] == "seqcount" and doc["exit_status"] == code


@pytest.mark.parametrize("sig,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
@pytest.mark.slow
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
    assert doc["exit_status"] == code
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


@pytest.mark.timeout(300)
def test_ctrl_c_while_a_thousand_threads_start_gives_the_partial_report():
    """SIGINT soon after the progress line: whether it lands while the 1024
    writers start or once they run, the run stops, reports, and exits 130."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    p = subprocess.Popen([sys.executable, "-m", "kmallocwd", "stress", "-p", "seqcount",
                          "-t", "1024", "-s", "1024", "-d", "60"],
                         cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True,
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    assert "kmallocwd stress" in p.stderr.readline()
    p.send_signal(signal.SIGINT)
    stdout, stderr = p.communicate(timeout=240)
    assert p.returncode == 130, stderr
    assert "INTERRUPTED: partial" in stdout and "Traceback" not in stderr
