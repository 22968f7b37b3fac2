"""kmallocwd campaign: plans, the Dask engine on a LocalCluster of 2 workers, a
lost worker, Ctrl-C and resume, JUnit.  No timing assertions: every wait is
bounded by a generous deadline or by pytest-timeout."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET

import pytest

from kmallocwd.campaign import Campaign, Options, parse_plan, run_campaign, to_junit
from kmallocwd.cli import main
from kmallocwd.errors import EXIT_INCONCLUSIVE, EXIT_OK

from conftest import ROOT

SMALL = """
[campaign]
name = "small"
[[stress]]                # ends at the first tear (in ms; 10 s leaves room on a loaded machine)
protocols = ["v3"]
durations = 10
seeds = [1, 2]
[stress.knobs]
alloc_ns = 100
until_torn = true
[[stress]]
protocols = ["seqcount"]
durations = 1
seeds = [1, 2]
[stress.knobs]
alloc_ns = 100
[[check]]                 # fails where it runs: its working directory is no --junit file
name = "bad-output"
args = ["-p", "v3", "--junit", "."]
[[ablate]]                 # killed at its timeout: a failure that another worker may not have
name = "too-slow"
args = ["-p", "seqcount", "-d", "30"]
timeout_s = 1
"""


def _env():
    return dict(os.environ, PYTHONPATH=str(ROOT))


def _campaign(*args, **kw):
    return subprocess.run([sys.executable, "-m", "kmallocwd", "campaign", *args], cwd=ROOT,
                          env=_env(), capture_output=True, text=True, timeout=150, **kw)


def _write(tmp_path, text, name="plan.toml"):
    p = tmp_path / name
    p.write_text(text)
    return p


# ---------------------------------------------------------------- plans (no Dask needed)

BAD_PLANS = [
    ("[stress]\nprotocols = ['v9']\n", "stress.protocols", "v2-rwlock, v3"),
    ("[stress]\nprotocols = ['v3']\nthreads = [0]\n", "stress.threads", "1 to 1024"),
    ("[stress]\nprotocols = ['v3']\ndurations = -1\n", "stress.durations", "more than 0"),
    ("[stress]\nprotocols = ['v3']\nseeds = 'x'\n", "stress.seeds", "a whole number"),
    ("[stress]\nprotocols = ['v3']\ncolour = 1\n", "stress.colour", "protocols, threads"),
    ("[stress]\nprotocols = ['v3']\n[stress.knobs]\npreempt = 2\n", "stress.knobs.preempt",
     "0 to 1"),
    ("[stress]\nprotocols = ['v3']\n[stress.knobs]\nturbo = 1\n", "stress.knobs.turbo",
     "hold_ns, alloc_ns"),
    ("[stress]\nthreads = 1\n", "stress.protocols", "v3"),
    ("[nightly]\n", "nightly", "campaign, stress, ablate, check"),
    ("[campaign]\ntimeout_s = 0\n[stress]\nprotocols = ['v3']\n", "campaign.timeout_s",
     "1 to 604800 seconds"),
    ("[[ablate]]\nargs = 'x'\n", "ablate[0].args", "a list of strings"),
    ("[stress]\nprotocols = ['v3']\nrepeats = 0\n", "stress.repeats", "1 to 10000"),
    ("[stress\n", "not valid TOML", "line 1"),
    ("", "no cell", "[[stress]]"),
]


@pytest.mark.parametrize("text,key,accepted", BAD_PLANS)
def test_a_bad_plan_is_one_line_naming_the_key_exit_2(tmp_path, capsys, text, key, accepted):
    plan = _write(tmp_path, text)
    assert main(["campaign", str(plan), "--dry-run"]) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert key in lines[0] and accepted in lines[0] and "Traceback" not in err, lines[0]


def test_the_matrix_expands_and_drops_impossible_combinations(tmp_path, capsys):
    plan = parse_plan("""
[[stress]]
protocols = ["v3", "c11"]
threads = [1, 2]
slots = [1, 4]
durations = [0.5]
seeds = [1, 2]
repeats = 2
[stress.knobs]
hold_ns = [0, 50]
pin = true
[[ablate]]
args = ["-p", "seqcount"]
""", "p.toml")
    # 2 protocols x (t,s) in {(1,1),(1,4),(2,4)} x 2 hold x 2 seeds x 2 repeats, + 1 ablate
    assert len(plan.cells) == 2 * 3 * 2 * 2 * 2 + 1
    assert len(plan.dropped) == 2 * 2 and "threads 2 with slots 1" in plan.dropped[0]
    c = plan.cells[0]
    assert c.argv[:4] == ["stress", "-q", "-p", "v3"] and "--pin" in c.argv
    assert c.id == "stress/v3/t1/s1/d0.5/pin=1/seed1/r0"
    assert plan.cells[-1].argv == ["ablate", "-p", "seqcount"]
    assert len({x.id for x in plan.cells}) == len(plan.cells)
    assert parse_plan("[[stress]]\nprotocols=['v3']\n").digest != plan.digest


def test_a_protocol_file_is_shipped_with_its_cell(tmp_path):
    from kmallocwd import protocols
    text = protocols.builtin_path("seqcount").read_text()
    (tmp_path / "mine.toml").write_text(text)
    plan = _write(tmp_path, "[[stress]]\nprotocols = ['mine.toml']\ndurations = 1\n"
                  "[[check]]\nargs = ['--protocol-file', 'mine.toml']\n")
    from kmallocwd.campaign import load_plan
    cell, check = load_plan(str(plan)).cells
    assert cell.protocol.startswith("mine@")
    assert cell.argv[2] == "--protocol-file" and cell.argv[3] == f"@file:{cell.protocol}"
    assert cell.files == {cell.protocol: text}
    # an ablate or check cell's protocol file is shipped too (its worker runs elsewhere)
    assert check.argv == ["check", "--protocol-file", f"@file:{cell.protocol}"]
    assert check.files == cell.files


@pytest.mark.parametrize("arg", [["--protocol-file", "mine.toml"], ["--protocol-file=mine.toml"]])
def test_an_ablate_or_check_cell_ships_its_protocol_file(tmp_path, arg):
    from kmallocwd import protocols
    text = protocols.builtin_path("seqcount").read_text()
    (tmp_path / "mine.toml").write_text(text)
    plan = _write(tmp_path, f"[[ablate]]\nargs = {arg!r}\n[[check]]\nargs = {arg!r}\n")
    from kmallocwd.campaign import load_plan
    for cell in load_plan(str(plan)).cells:
        assert cell.argv[1] == "--protocol-file" and cell.argv[2].startswith("@file:mine@")
        assert cell.files == {cell.argv[2][6:]: text}


def test_dry_run_lists_the_cells(tmp_path, capsys):
    plan = _write(tmp_path, "[[stress]]\nprotocols = ['v3', 'seqcount']\nseeds = [1, 2]\n")
    assert main(["campaign", str(plan), "--dry-run", "-q"]) == 0
    out = capsys.readouterr().out
    assert out.count("todo  stress/") == 4 and "4 cells, 4 to run" in out


def test_without_dask_it_says_how_to_install_it(tmp_path):
    plan = _write(tmp_path, "[[stress]]\nprotocols = ['v3']\n")
    code = ("import sys; sys.modules['distributed'] = None; sys.modules['dask'] = None\n"
            "from kmallocwd.cli import main; sys.exit(main(['campaign', sys.argv[1]]))")
    r = subprocess.run([sys.executable, "-c", code, str(plan)], cwd=ROOT, env=_env(),
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and "pip install 'kmallocwd[campaign]'" in r.stderr
    assert "Traceback" not in r.stderr


@pytest.mark.parametrize("what", ["plan", "dir", "fifo", "other-plan", "not-json"])
def test_output_paths_are_checked_before_the_run(tmp_path, capsys, what):
    plan = _write(tmp_path, "[[stress]]\nprotocols = ['v3']\n")
    out = tmp_path / "out.json"
    if what == "plan":
        out = plan
    elif what == "dir":
        out.mkdir()
    elif what == "fifo":
        os.mkfifo(out)
    elif what == "other-plan":
        out.write_text(json.dumps({"schema": "kmallocwd.campaign/1",
                                   "plan": {"digest": "0123"}, "cells": []}))
    else:
        out.write_text("precious, not JSON")
    before = out.read_text() if out.is_file() else None
    assert main(["campaign", str(plan), "--json", str(out), "--dry-run"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--json" in err[0], err
    if before is not None:
        assert out.read_text() == before
    assert os.path.exists(out)


@pytest.mark.parametrize("argv,needle", [
    (["--json", ""], "--json ''"),
    (["--junit", "SAME", "--json", "SAME"], "--junit"),
    (["--workers", "2", "--scheduler", "tcp://127.0.0.1:1"], "--workers"),
    (["--workers", "0"], "accepted: 1 to 1024"),
])
def test_bad_options_are_one_line_exit_2(tmp_path, capsys, argv, needle):
    plan = _write(tmp_path, "[[stress]]\nprotocols = ['v3']\n")
    argv = [str(tmp_path / "same.json") if a == "SAME" else a for a in argv]
    try:
        code = main(["campaign", str(plan), *argv, "--dry-run"])
    except SystemExit as exc:
        code = exc.code
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and needle in err[0], err


# ---------------------------------------------------------------- one cell, no Dask

@pytest.mark.timeout(120)
@pytest.mark.slow
def test_a_cell_that_hangs_is_killed_at_its_timeout():
    from kmallocwd.campaign.worker import run_cell
    res = run_cell({"id": "slow", "argv": ["stress", "-q", "-p", "seqcount", "-d", "600"],
                    "timeout_s": 1.0, "files": {}})
    assert res["status"] == "failed" and res["error"].startswith("timed out after 1 s")
    assert res["elapsed_s"] < 60 and res["machine"]["hostname"]


def test_a_cell_with_bad_arguments_fails_with_its_one_line_error():
    from kmallocwd.campaign.worker import run_cell
    res = run_cell({"id": "bad", "argv": ["stress", "-q", "-t", "0"], "timeout_s": 60,
                    "files": {}})
    assert res["status"] == "failed" and res["exit_status"] == 2
    assert res["error"].startswith("exit status 2: ") and "accepted: 1 to 1024" in res["error"]
    assert "\n" not in res["error"]


# ---------------------------------------------------------------- JUnit on its own

def _fake_doc():
    plan = parse_plan("[[stress]]\nprotocols = ['v3', 'seqcount', 'none']\n"
                      "[[check]]\nargs = ['x']\n", "p.toml")
    c = Campaign(plan)
    machine = {"hostname": "arm1", "cpu": "Neoverse-N1", "arch": "aarch64", "cores": 4}

    def report(torn, expect):
        return {"outcomes": {"consistent": {"count": 10, "expect": "acceptable"},
                             "torn": {"count": torn, "expect": expect}},
                "retries": 2, "writer_ops": 5, "overlaps": 7, "exit_status": 1,
                "first_torn": {"after_s": 0.1, "slot": 0} if torn else None}

    cells = plan.cells
    c.add(cells[0], [{"status": "done", "exit_status": 1, "report": report(3, "forbidden"),
                      "machine": machine, "worker": {"address": "tcp://a:1", "pid": 1},
                      "elapsed_s": 1.0}])
    c.add(cells[1], [{"status": "done", "exit_status": 0, "report": report(0, "forbidden"),
                      "machine": machine, "worker": {"address": "tcp://a:1", "pid": 1},
                      "elapsed_s": 1.0}])
    c.add(cells[3], [{"status": "failed", "exit_status": 2, "error": "bad \x1b option",
                      "machine": machine, "worker": None, "elapsed_s": 0.1}] * 2)
    return c.to_dict()


def test_merging_sums_counts_and_keeps_the_first_torn_snapshot():
    doc = _fake_doc()
    v3 = doc["groups"][0]
    assert v3["outcomes"]["torn"] == {"count": 3, "expect": "forbidden"}
    assert v3["counters"] == {"retries": 2, "writer_ops": 5, "overlaps": 7}
    assert doc["cells"][0]["first_torn"] == {"after_s": 0.1, "slot": 0}
    assert doc["verdict"]["exit_status"] == 1
    assert doc["verdict"]["forbidden"][0]["machine"] == "arm1"
    assert "on arm1 (aarch64)" in doc["verdict"]["line"]
    assert doc["verdict"]["pending"] == ["stress/none/t1/s1/d5/seed1/r0"]
    assert doc["machines"][0]["cpu"] == "Neoverse-N1" and doc["machines"][0]["cores"] == 4


def test_junit_parses_one_testcase_per_cell():
    root = ET.fromstring(to_junit(_fake_doc()))
    cases = root.findall("./testsuite/testcase")
    assert len(cases) == 4
    by = {c.get("name"): c for c in cases}
    v3 = by["stress/v3/t1/s1/d5/seed1/r0"]
    assert v3.find("failure") is not None and "first torn" in v3.find("failure").text
    props = {p.get("name"): p.get("value") for p in v3.findall("./properties/property")}
    assert props["seed"] == "1" and props["machine"] == "arm1" and props["count.torn"] == "3"
    assert by["stress/seqcount/t1/s1/d5/seed1/r0"].find("failure") is None
    assert by["stress/none/t1/s1/d5/seed1/r0"].find("skipped") is not None
    assert by["check/x/r0"].find("error") is not None
    assert root.find("testsuite").get("failures") == "1"


# ---------------------------------------------------------------- on a LocalCluster

@pytest.mark.timeout(180)
@pytest.mark.slow
def test_a_local_cluster_of_two_workers_runs_a_small_plan(tmp_path):
    plan = _write(tmp_path, SMALL)
    out, xml = tmp_path / "r.json", tmp_path / "r.xml"
    r = _campaign(str(plan), "--workers", "2", "--json", str(out), "--junit", str(xml))
    assert r.returncode == 1, r.stderr
    doc = json.loads(out.read_text())
    assert doc["verdict"]["exit_status"] == 1 and doc["complete"] is False
    host = doc["machines"][0]["hostname"]
    assert doc["machines"][0]["arch"] and doc["machines"][0]["cores"] and doc["machines"][0]["cpu"]
    assert f"stress/v3/t1/s1/d10/alloc_ns=100/until_torn=1/seed1/r0 on {host}" in r.stdout
    cells = {c["id"]: c for c in doc["cells"]}
    assert len(cells) == 6
    for seed in (1, 2):
        v3 = cells[f"stress/v3/t1/s1/d10/alloc_ns=100/until_torn=1/seed{seed}/r0"]
        assert v3["verdict"] == "forbidden" and v3["first_torn"] is not None
        sc = cells[f"stress/seqcount/t1/s1/d1/alloc_ns=100/seed{seed}/r0"]
        # seqcount is never accused (with too little power on a loaded
        # machine the cell is inconclusive, never forbidden)
        assert sc["verdict"] in ("pass", "inconclusive")
        assert sum(sc["counts"].get(k, 0) for k in ("torn-mixed", "torn-seq", "torn-inside")) == 0
    # the histograms are the sums of the cells'
    for g in doc["groups"][:2]:
        members = [c for c in doc["cells"] if c["group"] == g["group"]]
        for name, o in g["outcomes"].items():
            assert o["count"] == sum(c["counts"][name] for c in members)
    # a cell that exits 2 (its --junit is a directory) fails the same anywhere: it ran once
    bad = cells["check/bad-output/r0"]
    assert bad["verdict"] == "failed" and len(bad["attempts"]) == 1
    assert bad["attempts"][0]["exit_status"] == 2
    # the timed-out cell ran twice, the second time on the other worker
    slow = cells["ablate/too-slow/r0"]
    assert slow["verdict"] == "failed" and len(slow["attempts"]) == 2
    assert slow["attempts"][0]["worker"]["address"] != slow["attempts"][1]["worker"]["address"]
    root = ET.parse(xml).getroot()
    cases = root.findall("./testsuite/testcase")
    assert len(cases) == 6
    assert sum(c.find("failure") is not None for c in cases) == 2
    assert sum(c.find("error") is not None for c in cases) == 2


RESUME = """
[[stress]]
protocols = ["seqcount"]
durations = 1.5
seeds = [1, 2, 3, 4, 5, 6]
[stress.knobs]
alloc_ns = 100
"""


@pytest.mark.timeout(240)
@pytest.mark.slow
def test_ctrl_c_writes_partial_results_and_a_resumed_campaign_skips_done_cells(tmp_path):
    plan = _write(tmp_path, RESUME)
    out = tmp_path / "r.json"
    p = subprocess.Popen([sys.executable, "-m", "kmallocwd", "campaign", str(plan),
                          "--workers", "2", "--json", str(out)], cwd=ROOT, env=_env(),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and p.poll() is None:
        try:
            if json.loads(out.read_text())["cells"]:
                break
        except (OSError, ValueError):
            pass
        time.sleep(0.1)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 130, err
    partial = json.loads(out.read_text())
    assert partial["interrupted"] is True
    done = {c["id"]: c for c in partial["cells"] if c["status"] == "done"}
    assert 1 <= len(done) < 6
    r = _campaign(str(plan), "--workers", "2", "--json", str(out))
    # a cell may be INCONCLUSIVE (too few overlaps) on a loaded machine: this
    # test is about which cells run, not about their verdicts
    assert r.returncode in (EXIT_OK, EXIT_INCONCLUSIVE), r.stderr
    status = r.returncode
    assert f"{len(done)} of 6 cells done, not run again" in r.stderr
    final = json.loads(out.read_text())
    assert final["complete"] and final["resumed_cells"] == len(done)
    assert [h["interrupted"] for h in final["history"]] == [True, False]
    assert final["history"][1]["cells_finished"] == 6 - len(done)
    for c in final["cells"]:
        if c["id"] in done:
            assert c == done[c["id"]]        # the same record: not run again
    # all done: a third run starts no cluster and runs nothing
    r = _campaign(str(plan), "--json", str(out), "-q")
    assert r.returncode == status and json.loads(out.read_text())["cells"] == final["cells"]


@pytest.mark.timeout(240)
@pytest.mark.slow
def test_killing_a_worker_mid_campaign_makes_its_cell_run_again(tmp_path):
    import psutil
    from distributed import Client, LocalCluster

    plan = parse_plan("[[stress]]\nprotocols = ['seqcount']\ndurations = 3\nseeds = [1, 2, 3]\n"
                      "[stress.knobs]\nalloc_ns = 100\n", "kill.toml")
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None, silence_logs=50) as cluster, \
            Client(cluster, set_as_default=False) as client:
        pids = set(client.run(os.getpid).values())
        campaign = Campaign(plan)
        errors = []

        def go():
            try:
                run_campaign(campaign, Options(scheduler=cluster.scheduler_address))
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        t = threading.Thread(target=go)
        t.start()
        victim = stress = None
        deadline = time.monotonic() + 120
        while stress is None and time.monotonic() < deadline:
            for pid in pids:
                for ch in psutil.Process(pid).children():
                    try:
                        if "stress" in ch.cmdline():
                            victim, stress = pid, ch
                    except psutil.Error:
                        pass
            time.sleep(0.05)
        assert stress is not None, "no cell started"
        seed = stress.cmdline()[stress.cmdline().index("--seed") + 1]
        os.kill(victim, signal.SIGKILL)
        t.join(timeout=200)
        assert not t.is_alive() and not errors, errors
        # the cell's subprocess died with its worker
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if stress.status() == psutil.STATUS_ZOMBIE:
                    break
            except psutil.NoSuchProcess:
                break
            time.sleep(0.1)
        else:
            pytest.fail("the killed worker's stress process outlived it")
    doc = campaign.to_dict()
    assert doc["complete"], doc["verdict"]
    cell = {c["id"]: c for c in doc["cells"]}[f"stress/seqcount/t1/s1/d3/alloc_ns=100/seed{seed}/r0"]
    assert cell["status"] == "done" and cell["worker"]["pid"] != victim
