"""``kmallocwd bench-report`` on the JSON of a tiny real benchmark run (the
bench/ suites at a small scale, a few protocols), and its one-line errors."""

from __future__ import annotations

import builtins
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

from kmallocwd import bench_report, protocols
from kmallocwd.bench_report import BenchReportError, load
from kmallocwd.cli import main

from conftest import ROOT, run_cli

# A few protocols, one slot count per role, the two smaller scan sizes, the
# Python-driven cases and the side-by-side runs (every protocol): a real run,
# small enough for a few seconds.
SELECT = ("((v2-rwlock or v3 or seqcount) and not acquire and "
          "(S1 or S64-T2 or N1000- or N10000- or test_py)) or test_side_by_side")


@pytest.fixture(scope="module")
def run_json(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("bench") / "run.json"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "bench", "--benchmark-only", "-q", "-p",
         "no:cacheprovider", "--kmw-scale", "0.002", "--kmw-rounds", "2", "-k", SELECT,
         f"--benchmark-json={out}"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=110)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return out


@pytest.fixture(scope="module")
def raw(run_json: Path) -> dict:
    return json.loads(run_json.read_text())


def test_every_benchmark_of_the_run_is_read(run_json: Path, raw: dict) -> None:
    run = load(run_json)
    side = [b for b in raw["benchmarks"] if b["extra_info"]["kind"] == "side-by-side"]
    assert len(side) == len(bench_report.SIDE_ROLES)
    assert len(run.figures) == len(raw["benchmarks"]) - len(side) + 9 * len(side)
    by_name = {b["name"]: b["extra_info"] for b in raw["benchmarks"]}
    for b in side:
        for p, d in b["extra_info"]["protocols"].items():
            by_name[f"{b['name']}[{p}]"] = d
    for f in run.figures:
        assert f.ns == by_name[f.name]["ns_per_op"]
        assert f.ns_min <= f.ns <= f.ns_max
        assert f.ns > 0
    kinds = {(f.kind, f.role) for f in run.figures}
    assert {("matrix", r) for r in bench_report.MATRIX_ROLES} <= kinds
    assert {("side-by-side", r) for r in bench_report.SIDE_ROLES} <= kinds
    assert {("python", r) for r in bench_report.PYTHON_ROLES} <= kinds
    assert ("scan", "scan") in kinds
    assert run.protocols() == list(protocols.NAMES)
    assert run.machine["cpus"] == os.cpu_count()


def test_ratios_are_to_the_baseline_in_the_same_case(run_json: Path) -> None:
    run = load(run_json)
    for f in run.figures:
        base = run.peer(f, "seqcount")
        assert base is not None, f.name
        if f.protocol == "seqcount":
            assert run.ratio(f) == 1
        if f.kind != "side-by-side":  # those: round by round, tested below
            assert run.ratio(f) == pytest.approx(f.ns / base.ns)
    d = bench_report.to_dict(run)
    json.dumps(d)
    for fig in d["figures"]:
        if fig["kind"] == "side-by-side":
            continue
        same = [g for g in d["figures"] if g["protocol"] == "seqcount"
                and (g["kind"], g["role"], g["slots"], g["threads"], g.get("mode"),
                     g.get("slot_state")) == (fig["kind"], fig["role"], fig["slots"],
                                              fig["threads"], fig.get("mode"),
                                              fig.get("slot_state"))]
        assert len(same) == 1
        # (the JSON rounds ratios to 4 decimals: a small ratio needs abs=5e-5)
        assert fig["ratio_to_seqcount"] == pytest.approx(fig["ns_per_op"] / same[0]["ns_per_op"],
                                                         rel=1e-3, abs=5e-5)


def test_side_by_side_ratios_are_taken_round_by_round(run_json: Path) -> None:
    run = load(run_json)
    for f in run.figures:
        if f.kind != "side-by-side":
            continue
        base = run.peer(f, "seqcount")
        assert len(f.per_round) == len(base.per_round) == 2
        want = statistics.median(x / y for x, y in zip(f.per_round, base.per_round))
        assert run.ratio(f) == pytest.approx(want)


def test_key_figures_come_from_the_run(run_json: Path) -> None:
    run = load(run_json)
    keys = {k.key: k for k in bench_report.key_figures(run)}
    seq = run.get("side-by-side", bench_report.WRITER_ALONE, "seqcount", 1, 1)
    rw = run.get("side-by-side", bench_report.WRITER_ALONE, "v2-rwlock", 1, 1)
    assert keys["writer_pair"].value == seq.ns
    assert keys["writer_pair_ratio_v2-rwlock_alone"].value == pytest.approx(
        statistics.median(x / y for x, y in zip(seq.per_round, rw.per_round)))
    assert keys["python_pair"].value == run.get("python", bench_report.PY_WRITER,
                                                "seqcount", 1, 1).ns
    assert keys["scan_per_slot"].value == run.get("scan", "scan", "seqcount", 10000, None,
                                                  "read", "valid").ns
    assert "scan of 10,000 valid slots" in keys["scan_per_slot"].label
    a = run.get("side-by-side", bench_report.READER_WITH_WRITER, "seqcount", 1, 1)
    assert keys["reader_with_writer_ratio_v3"].value == run.ratio(a, "v3")
    a = run.get("side-by-side", bench_report.READER_WITH_ALLOCATING, "seqcount", 1, 1)
    assert keys["reader_with_allocating_writer_ratio_v3"].value == run.ratio(a, "v3")
    assert a.background["writer_alloc_ns"] > 0
    assert a.outcomes["accepted"] + a.outcomes["rejected_odd"] + \
        a.outcomes["rejected_invalid"] == pytest.approx(1, abs=1e-5)


def test_report_prints_figures_beside_their_ratio(run_json: Path, capsys) -> None:
    assert main(["bench-report", str(run_json)]) == 0
    out = capsys.readouterr().out
    run = load(run_json)
    for title in ("Key figures", "side by side", "writer alone: ns per start/stop pair",
                  "writer with a concurrent reader", "reader alone (slots valid)",
                  "reader with concurrent writers", "scan of N valid slots",
                  "scan linearity", "Python-driven"):
        assert title in out
    seq = run.get("matrix", bench_report.WRITER_ALONE, "seqcount", 1, 1)
    rw = run.get("matrix", bench_report.WRITER_ALONE, "v2-rwlock", 1, 1)
    table = out.split("writer alone: ns per start/stop pair", 1)[1].split("\n\n", 1)[0]
    rows = {line.split()[0]: line for line in table.splitlines()[2:]}
    assert f"{bench_report._fmt(seq.ns)} (1.00)" in rows["seqcount"]
    assert f"{bench_report._fmt(rw.ns)} ({rw.ns / seq.ns:.2f})" in rows["v2-rwlock"]


def test_baseline_option(run_json: Path, capsys) -> None:
    assert main(["bench-report", str(run_json), "--baseline", "v3", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["baseline"] == "v3"
    for fig in d["figures"]:
        if fig["protocol"] == "v3":
            assert fig["ratio_to_v3"] == 1


def test_json_output(run_json: Path, capsys) -> None:
    assert main(["bench-report", str(run_json), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["file"] == str(run_json)
    assert {k["key"] for k in d["key_figures"]} >= {"writer_pair", "python_pair",
                                                     "scan_per_slot"}
    lin = [x for x in d["scan_linearity"] if x["protocol"] == "seqcount"
           and x["mode"] == "read" and x["slot_state"] == "valid"]
    assert set(lin[0]["ns_per_slot"]) == {"1000", "10000"}


def test_png(run_json: Path, tmp_path: Path, capsys) -> None:
    pytest.importorskip("matplotlib")
    png = tmp_path / "chart.png"
    assert main(["bench-report", str(run_json), "--png", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"chart written to {png}" in capsys.readouterr().out


def test_png_without_matplotlib(run_json: Path, tmp_path: Path, capsys,
                                monkeypatch) -> None:
    real = builtins.__import__

    def no_matplotlib(name, *a, **kw):
        if name == "matplotlib" or name.startswith("matplotlib."):
            raise ImportError(f"No module named {name!r}")
        return real(name, *a, **kw)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    png = tmp_path / "chart.png"
    assert main(["bench-report", str(run_json), "--png", str(png)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("kmallocwd bench-report: error: --png needs matplotlib")
    assert "[plot]" in err
    assert not png.exists()


def _error(args: list[str], capsys) -> str:
    assert main(["bench-report", *args]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1
    assert captured.err.startswith("kmallocwd bench-report: error: ")
    return captured.err


BAD_FILES = [
    ("missing.json", None, "no such file"),
    ("not-json.json", "{benchmarks: oops", "not JSON"),
    ("not-benchmark.json", '{"results": []}', "not a pytest-benchmark file"),
    ("list.json", "[1, 2]", "not a pytest-benchmark file"),
    ("other-benchmarks.json",
     '{"benchmarks": [{"name": "test_x", "extra_info": {}, "stats": {}}]}',
     "no kmallocwd benchmark"),
    ("bad-entry.json",
     '{"benchmarks": [{"name": "test_x", "extra_info": {"kmallocwd": 1, "kind": "matrix", '
     '"role": "writer-alone", "protocol": "v3", "slots": 1, "threads": 1}}]}',
     "no number 'ns_per_op'"),
]


@pytest.mark.parametrize("name,content,what", BAD_FILES, ids=[b[0] for b in BAD_FILES])
def test_bad_file_is_one_line_naming_it(name: str, content: str | None, what: str,
                                        tmp_path: Path, capsys) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    err = _error([str(path)], capsys)
    assert str(path) in err
    assert what in err
    if what != "no number 'ns_per_op'":
        assert "make bench" in err


def test_directory_and_unreadable(tmp_path: Path, capsys) -> None:
    err = _error([str(tmp_path)], capsys)
    assert "is a directory" in err
    p = tmp_path / "binary.json"
    p.write_bytes(b"\xff\xfe\x00garbage")
    err = _error([str(p)], capsys)
    assert str(p) in err


def test_error_from_the_real_command_has_no_traceback(tmp_path: Path) -> None:
    proc = run_cli("bench-report", str(tmp_path / "nope.json"))
    assert proc.returncode == 2
    assert proc.stderr.startswith("kmallocwd bench-report: error: ")
    assert proc.stderr.count("\n") == 1
    assert "Traceback" not in proc.stderr


def test_help_documents_every_option() -> None:
    proc = run_cli("bench-report", "--help")
    assert proc.returncode == 0
    for opt in ("FILE.json", "--baseline", "--json", "--png"):
        assert opt in proc.stdout


def test_loglog_slope() -> None:
    flat = [(10**k, 2.0) for k in range(3, 7)]
    assert bench_report.loglog_slope(flat) == pytest.approx(1.0)
    doubling = [(10**k, 2.0 ** k) for k in range(3, 7)]
    assert bench_report.loglog_slope(doubling) == pytest.approx(1 + 0.30103, rel=1e-4)
    assert bench_report.loglog_slope([(1000, 1.0)]) is None


def test_load_rejects_other_schema(tmp_path: Path) -> None:
    p = tmp_path / "v2.json"
    p.write_text(json.dumps({"benchmarks": [{"name": "x", "extra_info": {"kmallocwd": 99}}]}))
    with pytest.raises(BenchReportError, match="schema 99"):
        load(p)
