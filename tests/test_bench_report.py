"""``kmallocwd bench-report`` on the JSON of a tiny real benchmark run (the
bench/ suites at a small scale, a few protocols), and its one-line errors."""

from __future__ import annotations

import builtins
import json
import math
import os
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

from kmallocwd import benchreport, protocols
from kmallocwd.benchreport import BenchReportError, load
from kmallocwd.benchreport.analyse import fmt
from kmallocwd.cli import main

from conftest import ROOT, run_cli

# A few protocols, one slot count per role, the two smaller scan sizes, the
# Python-driven cases and the side-by-side runs (every protocol): a real run,
# small enough for a few seconds.
SELECT = ("((v2-rwlock or v3 or seqcount) and not acquire and "
          "(S1 or S64-T2 or N1000- or N10000- or test_py or test_reader_vs_duty)) "
          "or test_side_by_side or test_reference or test_bandwidth "
          "or (test_scaling and (T1- or T2-) and (seqcount or v2-rwlock))")


@pytest.fixture(scope="module")
def run_json(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("bench") / "run.json"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "bench", "--benchmark-only", "-q", "-p",
         "no:cacheprovider", "--kmw-scale", "0.002", "--kmw-rounds", "2", "--kmw-copy-mib", "8",
         "-k", SELECT,
         f"--benchmark-json={out}"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=110)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return out


@pytest.fixture(scope="module")
def raw(run_json: Path) -> dict:
    return json.loads(run_json.read_text())


@pytest.mark.slow
def test_every_benchmark_of_the_run_is_read(run_json: Path, raw: dict) -> None:
    run = load(run_json)
    assert run.warnings == []
    side = [b for b in raw["benchmarks"] if b["extra_info"]["kind"] == "side-by-side"]
    assert len(side) == 2 * len(benchreport.SIDE_ROLES)  # both modes
    # one figure per protocol of a side-by-side benchmark, and the writer's
    # interleaved reference loop
    assert len(run.figures) == (len(raw["benchmarks"]) - len(side)
                                + len(protocols.C_NAMES) * len(side) + 2)
    by_name = {b["name"]: b["extra_info"] for b in raw["benchmarks"]}
    for b in side:
        for p, d in b["extra_info"]["protocols"].items():
            by_name[f"{b['name']}[{p}]"] = d
        if "reference" in b["extra_info"]:
            by_name[f"{b['name']}[reference]"] = b["extra_info"]["reference"]
    for f in run.figures:
        assert f.ns == by_name[f.name]["ns_per_op"]
        assert f.ns_min <= f.ns <= f.ns_max
        assert f.ns > 0
        assert f.mode in ("emulator", "protocol")
    kinds = {(f.kind, f.role) for f in run.figures}
    assert {("matrix", r) for r in benchreport.MATRIX_ROLES} <= kinds
    assert {("side-by-side", r) for r in benchreport.SIDE_ROLES} <= kinds
    assert {("python", r) for r in benchreport.PYTHON_ROLES} <= kinds
    assert {("scan", "scan"), ("reference", "reference-pair"), ("bandwidth", "memcpy"),
            ("duty", "reader-vs-duty")} <= kinds
    assert run.protocols() == list(protocols.C_NAMES)
    assert run.machine["cpus"] == os.cpu_count()


def _same_case(g: dict, fig: dict) -> bool:
    keys = ("kind", "role", "slots", "threads", "mode", "series", "slot_state", "level")
    return all(g.get(k) == fig.get(k) for k in keys)


@pytest.mark.slow
def test_ratios_are_to_the_baseline_in_the_same_case(run_json: Path) -> None:
    run = load(run_json)
    for f in run.figures:
        if f.protocol is None:  # the yardsticks: reference loop, bandwidth
            assert f.kind in ("reference", "bandwidth")
            continue
        base = run.peer(f, "seqcount")
        assert base is not None, f.name
        if f.protocol == "seqcount":
            assert run.ratio(f) == 1
        if f.kind != "side-by-side":  # those: round by round, tested below
            assert run.ratio(f) == pytest.approx(f.ns / base.ns)
    d = benchreport.to_dict(run)
    json.dumps(d)
    for fig in d["figures"]:
        if fig["kind"] == "side-by-side" or fig["protocol"] is None:
            continue
        same = [g for g in d["figures"] if g["protocol"] == "seqcount" and _same_case(g, fig)]
        assert len(same) == 1
        # (the JSON rounds ratios to 4 decimals: a small ratio needs abs=5e-5)
        assert fig["ratio_to_seqcount"] == pytest.approx(fig["ns_per_op"] / same[0]["ns_per_op"],
                                                         rel=1e-3, abs=5e-5)


@pytest.mark.slow
def test_side_by_side_ratios_are_taken_round_by_round(run_json: Path) -> None:
    run = load(run_json)
    for f in run.figures:
        if f.kind != "side-by-side":
            continue
        base = run.peer(f, "seqcount")
        assert len(f.per_round) == len(base.per_round) == 2
        want = statistics.median(x / y for x, y in zip(f.per_round, base.per_round))
        assert run.ratio(f) == pytest.approx(want)


@pytest.mark.slow
def test_key_figures_come_from_the_run(run_json: Path) -> None:
    run = load(run_json)
    keys = {k.key: k for k in benchreport.key_figures(run)}
    seq = run.get("side-by-side", benchreport.WRITER_ALONE, "seqcount", 1, 1)
    rw = run.get("side-by-side", benchreport.WRITER_ALONE, "v2-rwlock", 1, 1)
    assert keys["writer_pair"].value == seq.ns
    assert keys["writer_pair_ratio_v2-rwlock_alone"].value == pytest.approx(
        statistics.median(x / y for x, y in zip(seq.per_round, rw.per_round)))
    assert keys["python_pair"].value == run.get("python", benchreport.PY_WRITER,
                                                "seqcount", 1, 1).ns
    assert keys["scan_per_slot"].value == run.get("scan", "scan", "seqcount", 10000, None,
                                                  "read", "valid").ns
    bw = run.of("bandwidth")[0]
    assert keys["scan_per_slot_ratio_limit"].value == pytest.approx(
        keys["scan_per_slot"].value / bw.ns)
    ref = run.get("reference", "reference-pair", None, 1, 1, "interleaved")
    assert keys["reference_pair"].value == ref.ns
    assert keys["writer_pair_ratio_reference"].value == pytest.approx(
        statistics.median(x / y for x, y in zip(seq.per_round, seq.reference_rounds)))
    assert "scan of 10,000 valid slots" in keys["scan_per_slot"].label
    a = run.get("side-by-side", benchreport.READER_WITH_WRITER, "seqcount", 1, 1)
    assert keys["reader_with_writer_ratio_v3"].value == run.ratio(a, "v3")
    a = run.get("side-by-side", benchreport.READER_WITH_ALLOCATING, "seqcount", 1, 1)
    assert keys["reader_with_allocating_writer_ratio_v3"].value == run.ratio(a, "v3")
    assert a.background["writer_alloc_ns"] > 0
    assert a.outcomes["accepted"] + a.outcomes["rejected_odd"] + \
        a.outcomes["rejected_invalid"] == pytest.approx(1, abs=1e-5)


@pytest.mark.slow
def test_report_prints_figures_beside_their_ratio(run_json: Path, capsys) -> None:
    assert main(["bench-report", str(run_json), "--no-png"]) == 0
    out = capsys.readouterr().out
    run = load(run_json)
    for title in ("Key figures", "side by side", "writer alone: ns per start/stop pair",
                  "writer with a concurrent reader", "reader alone (slots valid)",
                  "reader with concurrent writers", "scan of N valid slots",
                  "scan linearity", "Python-driven", "scan against the physical limit",
                  "as a plain C loop (csrc/reference.c)", "thread scaling, writer alone",
                  "reader against one writer that spends a share of its time"):
        assert title in out
    seq = run.get("matrix", benchreport.WRITER_ALONE, "seqcount", 1, 1)
    rw = run.get("matrix", benchreport.WRITER_ALONE, "v2-rwlock", 1, 1)
    table = out.split("writer alone: ns per start/stop pair", 1)[1].split("\n\n", 1)[0]
    rows = {line.split()[0]: line for line in table.splitlines()[2:]}
    assert f"{fmt(seq.ns)} (1.00)" in rows["seqcount"]
    assert f"{fmt(rw.ns)} ({rw.ns / seq.ns:.2f})" in rows["v2-rwlock"]
    duty = out.split("reader against one writer", 1)[1].split("\n\n", 1)[0]
    assert "idle" in duty and "100% in sections" in duty and "(measured)" in duty
    assert "chart written" not in out


@pytest.mark.slow
def test_baseline_option(run_json: Path, capsys) -> None:
    assert main(["bench-report", str(run_json), "--baseline", "v3", "--json", "--no-png"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["baseline"] == "v3"
    for fig in d["figures"]:
        if fig["protocol"] == "v3":
            assert fig["ratio_to_v3"] == 1


@pytest.mark.slow
def test_baseline_must_be_a_protocol_of_the_file(run_json: Path, capsys) -> None:
    err = _error([str(run_json), "--baseline", "v9", "--no-png"], capsys)
    assert "'v9'" in err and "seqcount" in err


@pytest.mark.slow
def test_json_output(run_json: Path, capsys) -> None:
    assert main(["bench-report", str(run_json), "--json", "--no-png"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["file"] == str(run_json)
    assert d["modes"] == ["emulator", "protocol"]
    assert {k["key"] for k in d["key_figures"]} >= {"writer_pair", "python_pair",
                                                     "scan_per_slot", "reference_pair"}
    lin = [x for x in d["scan_linearity"] if x["protocol"] == "seqcount"
           and x["series"] == "read" and x["slot_state"] == "valid"]
    assert set(lin[0]["ns_per_slot"]) == {"1000", "10000"}
    assert d["scan_limit"]["slot_bytes"] == 64
    assert d["scan_limit"]["buffer_bytes"] == 8 << 20
    row = [r for r in d["scan_limit"]["rows"] if r["protocol"] == "seqcount"
           and r["series"] == "read" and r["slot_state"] == "valid"][0]
    for p in row["points"]:
        assert p["ratio"] == pytest.approx(p["ns_per_slot"] / d["scan_limit"]["limit_ns_per_slot"])
    assert {r["protocol"] for r in d["reference"]["rows"]} == set(protocols.C_NAMES)
    duty = {r["protocol"]: r["levels"] for r in d["reader_vs_duty"]}
    assert set(duty) == {"v2-rwlock", "v3", "seqcount"}
    assert list(duty["seqcount"]) == ["idle", "1%", "10%", "100%"]
    assert duty["seqcount"]["idle"]["accepted"] == 1  # a valid, quiet slot
    assert duty["seqcount"]["100%"]["duty"] == 1
    assert d["thread_scaling"] and d["instrumentation_overhead"]
    for row in d["instrumentation_overhead"]:  # each emulator figure over its protocol twin
        if row["kind"] != "side-by-side":  # those: round by round
            assert row["overhead"] == pytest.approx(row["emulator_ns"] / row["protocol_ns"],
                                                    rel=1e-3)


@pytest.mark.slow
def test_charts_are_written_next_to_the_json(run_json: Path, tmp_path: Path, capsys) -> None:
    src = tmp_path / "run.json"
    src.write_bytes(run_json.read_bytes())
    assert main(["bench-report", str(src)]) == 0
    out = capsys.readouterr().out
    for chart in ("ns-per-op", "threads", "scan", "duty"):
        png = tmp_path / f"run-{chart}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", chart
        assert f"chart written to {png}" in out


@pytest.mark.slow
def test_png_base_option(run_json: Path, tmp_path: Path, capsys) -> None:
    assert main(["bench-report", str(run_json), "--png", str(tmp_path / "b.png")]) == 0
    out = capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "b-duty.png", "b-ns-per-op.png", "b-scan.png", "b-threads.png"]
    assert f"chart written to {tmp_path / 'b-scan.png'}" in out


@pytest.mark.slow
def test_png_that_cannot_be_written(run_json: Path, tmp_path: Path, capsys) -> None:
    err = _error([str(run_json), "--png", str(tmp_path / "no-such-dir" / "b")], capsys)
    assert "--png" in err and "no-such-dir" in err


@pytest.mark.slow
def test_chart_without_its_data_is_skipped_with_a_note(tmp_path: Path, capsys) -> None:
    p = tmp_path / "one.json"
    p.write_text(json.dumps(_doc()))
    assert main(["bench-report", str(p)]) == 0
    captured = capsys.readouterr()
    assert (tmp_path / "one-ns-per-op.png").exists()
    assert not (tmp_path / "one-scan.png").exists()
    for chart in ("threads", "scan", "duty"):
        assert f"note: chart {chart} skipped: " in captured.err
    assert "no reference-loop figure" in captured.err


@pytest.mark.slow
def test_no_matplotlib(run_json: Path, tmp_path: Path, capsys, monkeypatch) -> None:
    real = builtins.__import__

    def no_matplotlib(name, *a, **kw):
        if name == "matplotlib" or name.startswith("matplotlib."):
            raise ImportError(f"No module named {name!r}")
        return real(name, *a, **kw)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    # asked for: an error, before any output
    err = _error([str(run_json), "--png", str(tmp_path / "chart")], capsys)
    assert "--png: charts need matplotlib" in err and "[plot]" in err
    assert not list(tmp_path.iterdir())
    # by default: a note, and the tables
    src = tmp_path / "run.json"
    src.write_bytes(run_json.read_bytes())
    assert main(["bench-report", str(src)]) == 0
    captured = capsys.readouterr()
    assert "Key figures" in captured.out
    assert captured.err.count("\n") == 1 and "note: no charts: charts need matplotlib" in captured.err
    assert list(tmp_path.iterdir()) == [src]


def _error(args: list[str], capsys) -> str:
    try:
        code = main(["bench-report", *args])
    except SystemExit as exc:  # refused while parsing
        code = exc.code
    assert code == 2
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
     "no 'extra_info.ns_per_op' in it"),
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
    if what != "no 'extra_info.ns_per_op' in it":
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
    for opt in ("FILE.json", "--baseline", "--json", "--png", "--no-png"):
        assert opt in proc.stdout


def test_loglog_slope() -> None:
    flat = [(10**k, 2.0) for k in range(3, 7)]
    assert benchreport.loglog_slope(flat) == pytest.approx(1.0)
    doubling = [(10**k, 2.0 ** k) for k in range(3, 7)]
    assert benchreport.loglog_slope(doubling) == pytest.approx(1 + 0.30103, rel=1e-4)
    assert benchreport.loglog_slope([(1000, 1.0)]) is None


def test_load_rejects_other_schema(tmp_path: Path) -> None:
    p = tmp_path / "v2.json"
    p.write_text(json.dumps({"benchmarks": [{"name": "x", "extra_info": {"kmallocwd": 99}}]}))
    with pytest.raises(BenchReportError, match="schema 99"):
        load(p)


# ---- malformed files ----

def _bench(name: str = "test_writer_alone[seqcount-S1-T1]", **info) -> dict:
    """One kmallocwd benchmark as bench/ writes it, with info's keys changed
    (a value None: the key removed)."""
    base = {"kmallocwd": 2, "mode": "emulator", "kind": "matrix", "role": "writer-alone",
            "protocol": "seqcount", "slots": 1, "threads": 1, "ns_per_op": 4.0,
            "ns_per_op_min": 3.5, "ns_per_op_max": 5.0, "rounds": 3, "ops_per_round": 1000}
    base.update(info)
    return {"name": name, "extra_info": {k: v for k, v in base.items() if v is not None}}


SCAN_INFO = dict(kind="scan", role="scan", slots=1000, threads=None, series="read",
                 slot_state="valid", outcomes={"accepted": 1.0})
SIDE_INFO = dict(kind="side-by-side", role="writer-alone", protocol=None,
                 protocols={"seqcount": {"ns_per_op": 4, "ns_per_op_min": 4, "ns_per_op_max": 4},
                            "v3": {"ns_per_op": 4, "ns_per_op_min": 4, "ns_per_op_max": 4}})
DUTY_INFO = dict(kind="duty", role="reader-vs-duty", threads=None, level="10%", hold_ns=1000,
                 alloc_ns=9000, duty=0.1)
BW_INFO = dict(kind="bandwidth", role="memcpy", protocol=None, threads=None,
               buffer_bytes=1 << 26, slot_bytes=64, llc_bytes=1 << 25)


def _doc(*benches: dict) -> dict:
    return {"machine_info": {"machine": "x86_64"}, "datetime": "2026-11-28T07:00:00",
            "benchmarks": list(benches) or [_bench()]}


def test_a_well_formed_file_of_every_kind_is_read(tmp_path: Path) -> None:
    p = tmp_path / "ok.json"
    p.write_text(json.dumps(_doc(_bench(), _bench(**SCAN_INFO), _bench(**SIDE_INFO),
                                 _bench(**DUTY_INFO), _bench(**BW_INFO))))
    run = load(p)
    assert run.warnings == []
    assert sorted(f.kind for f in run.figures) == sorted(
        ["matrix", "scan", "side-by-side", "side-by-side", "duty", "bandwidth"])


# (case, the benchmark(s) or document, the key the one line must name)
MALFORMED = [
    ("outcomes-list", _bench(outcomes=[1, 2]), "'extra_info.outcomes' is [1, 2]"),
    ("retries-per-read-text", _bench(outcomes={"accepted": 0.5, "retries_per_read": "lots"}),
     "'extra_info.outcomes.retries_per_read' is 'lots'"),
    ("outcome-negative", _bench(outcomes={"accepted": -1}), "'extra_info.outcomes.accepted'"),
    ("background-text", _bench(background="oops"), "'extra_info.background' is 'oops'"),
    ("background-nested-text", _bench(background={"reader": {"torn": "x"}}),
     "'extra_info.background.reader.torn'"),
    ("background-list", _bench(background={"cpus": [0, 1]}), "'extra_info.background.cpus'"),
    ("scan-slots-negative", _bench(**{**SCAN_INFO, "slots": -1000}), "'extra_info.slots' is -1000"),
    ("slots-zero", _bench(slots=0), "'extra_info.slots' is 0"),
    ("slots-true", _bench(slots=True), "'extra_info.slots' is True"),
    ("slots-1e30", _bench(slots=1e30), "'extra_info.slots' is 1e+30"),
    ("slots-huge-int", _bench(slots=10**30), "'extra_info.slots' is 1000000000000000000000000000000"),
    ("slots-text", _bench(slots="64"), "'extra_info.slots' is '64'"),
    ("slots-missing", _bench(slots=None), "no 'extra_info.slots'"),
    ("threads-zero", _bench(threads=0), "'extra_info.threads' is 0"),
    ("threads-float", _bench(threads=2.5), "'extra_info.threads' is 2.5"),
    ("min-above-max", _bench(ns_per_op_min=9.0), "'extra_info.ns_per_op_min' is 9.0"),
    ("ns-outside-min-max", _bench(ns_per_op=7.0), "'extra_info.ns_per_op' is 7.0"),
    ("ns-text", _bench(ns_per_op="fast"), "'extra_info.ns_per_op' is 'fast'"),
    ("ns-negative", _bench(ns_per_op=-1, ns_per_op_min=-2), "'extra_info.ns_per_op'"),
    ("ns-bool", _bench(ns_per_op=True), "'extra_info.ns_per_op' is True"),
    ("ns-huge-int", _bench(ns_per_op=10**400), "'extra_info.ns_per_op' is 1000"),
    ("ns-missing", _bench(ns_per_op=None), "no 'extra_info.ns_per_op'"),
    ("aggregate-text", _bench(aggregate_ns_per_op="x"), "'extra_info.aggregate_ns_per_op'"),
    ("rounds-negative", _bench(rounds=-1), "'extra_info.rounds' is -1"),
    ("ops-float", _bench(ops_per_round=1.5), "'extra_info.ops_per_round' is 1.5"),
    ("per-round-text", _bench(ns_per_op_rounds="many"), "'extra_info.ns_per_op_rounds'"),
    ("per-round-negative", _bench(ns_per_op_rounds=[1, -2]),
     "'extra_info.ns_per_op_rounds[1]' is -2"),
    ("kind-number", _bench(kind=5), "'extra_info.kind' is 5"),
    ("kind-missing", _bench(kind=None), "no 'extra_info.kind'"),
    ("role-null", _bench(role=[]), "'extra_info.role' is []"),
    ("protocol-number", _bench(protocol=7), "'extra_info.protocol' is 7"),
    ("mode-odd", _bench(mode="Emulator Mode!"), "'extra_info.mode' is 'Emulator Mode!'"),
    ("scan-series", _bench(**{**SCAN_INFO, "series": "sideways"}), "'extra_info.series'"),
    ("scan-series-missing", _bench(**{**SCAN_INFO, "series": None}), "no 'extra_info.series'"),
    ("scan-state", _bench(**{**SCAN_INFO, "slot_state": "lukewarm"}),
     "'extra_info.slot_state' is 'lukewarm'"),
    ("side-protocols-list", _bench(**{**SIDE_INFO, "protocols": []}),
     "'extra_info.protocols' is []"),
    ("side-protocol-text", _bench(**{**SIDE_INFO, "protocols": {"v3": "x"}}),
     "'extra_info.protocols.v3' is 'x'"),
    ("side-reference-text", _bench(**{**SIDE_INFO, "reference": 3}), "'extra_info.reference'"),
    ("duty-hold-negative", _bench(**{**DUTY_INFO, "hold_ns": -5}), "'extra_info.hold_ns' is -5"),
    ("duty-above-1", _bench(**{**DUTY_INFO, "duty": 2}), "'extra_info.duty' is 2"),
    ("duty-level-missing", _bench(**{**DUTY_INFO, "level": None}), "no 'extra_info.level'"),
    ("bandwidth-slot-bytes", _bench(**{**BW_INFO, "slot_bytes": 0}),
     "'extra_info.slot_bytes' is 0"),
    ("schema-text", _bench(kmallocwd="2"), "schema '2'"),
    ("entry-not-object", "oops", "'benchmarks[0]' is 'oops'"),
    ("newline-in-key", _bench(outcomes={"a\nMemAlloc: x": "y"}),
     "'extra_info.outcomes.'a\\nMemAlloc: x'' is 'y'"),
    ("newline-in-side-protocol", _bench(**{**SIDE_INFO, "protocols": {"v3\nx": 1}}),
     "'extra_info.protocols.'v3\\nx'' is 1"),
    ("newline-in-name", _bench(name="evil\n[    1.0] MemAlloc-Info:", slots=-1),
     "benchmark evil?[    1.0] MemAlloc-Info:"),
]


@pytest.mark.parametrize("case,bench,key", MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_bench_json_is_one_line_naming_the_key(case: str, bench, key: str,
                                                         tmp_path: Path, capsys) -> None:
    p = tmp_path / f"{case}.json"
    p.write_text(json.dumps(_doc(bench)))
    err = _error([str(p), "--no-png"], capsys)
    assert key in err, err
    assert str(p) in err
    assert "Traceback" not in err


@pytest.mark.parametrize("text,what", [
    ('{"benchmarks": [{"name": "x", "extra_info": {"kmallocwd": 2, "kind": "matrix", '
     '"role": "writer-alone", "protocol": "v3", "slots": 1, "threads": 1, '
     '"ns_per_op": NaN, "ns_per_op_min": 1, "ns_per_op_max": 2}}]}',
     "'extra_info.ns_per_op' is nan"),
    ('{"benchmarks": [{"name": "x", "extra_info": {"kmallocwd": 2, "kind": "matrix", '
     '"role": "writer-alone", "protocol": "v3", "slots": 1, "threads": 1, '
     '"ns_per_op": Infinity, "ns_per_op_min": 1, "ns_per_op_max": 2}}]}',
     "'extra_info.ns_per_op' is inf"),
], ids=["nan", "infinity"])
def test_non_finite_numbers_are_refused(text: str, what: str, tmp_path: Path, capsys) -> None:
    p = tmp_path / "nonfinite.json"
    p.write_text(text)
    assert what in _error([str(p), "--no-png"], capsys)


DROPPED = [
    ("unknown-role", [_bench(), _bench(name="b2", role="writer-sideways")],
     "dropped 1 figure of unknown matrix role 'writer-sideways'", 1),
    ("unknown-protocol", [_bench(), _bench(name="b2", protocol="v9"),
                          _bench(name="b3", protocol="v9", slots=64)],
     "dropped 2 figures of unknown protocol 'v9' (this report does not know it): b2, b3", 1),
    ("unknown-kind", [_bench(), _bench(name="b2", kind="quantum")],
     "dropped 1 figure of unknown kind 'quantum'", 1),
    ("unknown-side-protocol",
     [_bench(**{**SIDE_INFO, "protocols": {**SIDE_INFO["protocols"], "v9": {}}})],
     "dropped 1 figure of unknown protocol 'v9'", 2),
    ("foreign-benchmark", [_bench(), {"name": "test_other", "extra_info": {}}],
     "ignored 1 benchmark without kmallocwd extra_info", 1),
]


@pytest.mark.parametrize("case,benches,warning,kept", DROPPED, ids=[d[0] for d in DROPPED])
def test_unknown_figures_are_dropped_with_a_warning_naming_them(
        case: str, benches: list, warning: str, kept: int, tmp_path: Path, capsys) -> None:
    p = tmp_path / f"{case}.json"
    p.write_text(json.dumps(_doc(*benches)))
    assert main(["bench-report", str(p), "--no-png"]) == 0
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("kmallocwd bench-report: warning: ")
    assert warning in lines[0]
    assert len(load(p).figures) == kept


def test_many_unknown_names_make_at_most_ten_warning_lines(tmp_path: Path, capsys) -> None:
    p = tmp_path / "many.json"
    p.write_text(json.dumps(_doc(_bench(), *[_bench(name=f"b{i}", protocol=f"x{i}")
                                             for i in range(50)])))
    assert main(["bench-report", str(p), "--no-png"]) == 0
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 10
    assert lines[-1].endswith("dropped 41 more figures of 41 more unknown names")


def test_a_file_of_unknown_figures_only_is_refused(tmp_path: Path, capsys) -> None:
    p = tmp_path / "unknown.json"
    p.write_text(json.dumps(_doc(_bench(protocol="v9"))))
    err = _error([str(p), "--no-png"], capsys)
    assert "unknown protocol 'v9'" in err and "no figure left" in err


def test_integer_too_long_to_read_is_one_line(tmp_path: Path, capsys) -> None:
    p = tmp_path / "bigint.json"
    p.write_text('{"benchmarks": [' + "1" * 5000 + "]}")
    assert "a value cannot be read (Exceeds the limit" in _error([str(p), "--no-png"], capsys)


def test_nesting_200k_deep_is_one_line(tmp_path: Path) -> None:
    p = tmp_path / "deep.json"
    p.write_text('{"benchmarks": ' + "[" * 200_000 + "]" * 200_000 + "}")
    proc = run_cli("bench-report", str(p), "--no-png")
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "nested too deeply" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.timeout(30)
def test_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    p = tmp_path / "fifo.json"
    os.mkfifo(p)
    proc = run_cli("bench-report", str(p), "--no-png", timeout=25)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "is a FIFO" in proc.stderr


def test_device_is_refused_before_reading(capsys) -> None:
    err = _error(["/dev/zero", "--no-png"], capsys)
    assert "/dev/zero: is a character device; only a regular file is read" in err


def test_file_over_the_size_limit_is_refused(tmp_path: Path, capsys) -> None:
    p = tmp_path / "big.json"
    with open(p, "wb") as f:
        f.truncate(benchreport.SIZE_LIMIT + 1)  # sparse: no disk used
    err = _error([str(p), "--no-png"], capsys)
    assert "over the 32 MiB limit" in err


def test_symlink_to_a_regular_file_is_read(tmp_path: Path, capsys) -> None:
    p = tmp_path / "real.json"
    p.write_text(json.dumps(_doc()))
    link = tmp_path / "link.json"
    link.symlink_to(p)
    assert main(["bench-report", str(link), "--no-png"]) == 0


def test_schema_1_files_are_read_as_emulator_mode(tmp_path: Path) -> None:
    old = _bench(**{**SCAN_INFO, "kmallocwd": 1, "mode": "checked", "series": None})
    p = tmp_path / "old.json"
    p.write_text(json.dumps(_doc(old)))
    (f,) = load(p).figures
    assert (f.mode, f.series, f.state) == ("emulator", "checked", "valid")


def test_reader_has_the_inputs_signature(tmp_path: Path) -> None:
    from kmallocwd.benchreport.reader import read_text
    from kmallocwd.errors import UsageError

    p = tmp_path / "t.txt"
    p.write_text("héllo")
    assert read_text(str(p), "--x", 100) == "héllo"
    with pytest.raises(UsageError, match=r"^--x .*t.txt: 6 bytes, over the 5 bytes limit"):
        read_text(str(p), "--x", 5)


@pytest.mark.timeout(60)
@pytest.mark.slow
def test_a_chart_path_that_is_not_a_regular_file_is_left_alone(run_json: Path, tmp_path: Path,
                                                              capsys) -> None:
    src = tmp_path / "run.json"
    src.write_bytes(run_json.read_bytes())
    fifo = tmp_path / "run-scan.png"
    os.mkfifo(fifo)
    # by default: a note, the tables, no chart at all (nothing half-written)
    assert main(["bench-report", str(src)]) == 0
    captured = capsys.readouterr()
    assert "Key figures" in captured.out
    assert "note: no charts: cannot write" in captured.err and "not a regular file" in captured.err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run-scan.png", "run.json"]
    # asked for with --png: an error
    err = _error([str(src), "--png", str(tmp_path / "run")], capsys)
    assert "run-scan.png: a FIFO" in err
    assert fifo.is_fifo()


def test_without_the_default_baseline_ratios_go_to_the_first_protocol(tmp_path: Path,
                                                                       capsys) -> None:
    p = tmp_path / "v3only.json"
    p.write_text(json.dumps(_doc(_bench(protocol="v3"), _bench(name="b2", protocol="c11"))))
    assert main(["bench-report", str(p), "--no-png"]) == 0
    captured = capsys.readouterr()
    assert "note: " in captured.err and "has no seqcount figure; ratios are to v3" in captured.err
    assert "ratio to v3" in captured.out


@pytest.mark.slow
def test_two_modes_are_reported_side_by_side_with_the_overhead(tmp_path: Path,
                                                                capsys) -> None:
    """What the protocol-mode build will add: the same cases in mode
    "protocol"; every table is given per mode, and the overhead pairs them."""
    benches = []
    for mode, ns in (("emulator", 4.0), ("protocol", 2.0)):
        for proto in ("seqcount", "v3"):
            for t in (1, 2):
                benches.append(_bench(name=f"w-{mode}-{proto}-{t}", mode=mode, protocol=proto,
                                      slots=64, threads=t, ns_per_op=ns * t,
                                      ns_per_op_min=ns * t, ns_per_op_max=ns * t,
                                      aggregate_ns_per_op=ns))
        benches.append(_bench(name=f"s-{mode}", mode=mode, **{**SCAN_INFO, "ns_per_op": ns,
                                                              "ns_per_op_min": ns,
                                                              "ns_per_op_max": ns}))
    p = tmp_path / "modes.json"
    p.write_text(json.dumps(_doc(*benches, _bench(**BW_INFO))))
    run = load(p)
    assert run.modes() == ["emulator", "protocol"]
    assert main(["bench-report", str(p)]) == 0
    out = capsys.readouterr().out
    assert "writer alone: ns per start/stop pair [protocol mode]" in out
    assert "thread scaling, writer alone, 64 slots" in out and "[emulator mode]" in out
    overhead = out.split("the instrumentation's overhead", 1)[1]
    assert "x2.00" in overhead
    d = benchreport.to_dict(run)
    assert {(r["protocol"], r["overhead"]) for r in d["instrumentation_overhead"]
            if r["kind"] == "matrix"} == {("seqcount", 2.0), ("v3", 2.0)}
    assert (tmp_path / "modes-threads.png").exists() and (tmp_path / "modes-scan.png").exists()


def test_targets_are_judged_in_protocol_mode_only(tmp_path: Path, capsys) -> None:
    def w(mode: str, proto: str, ns: float) -> dict:
        return _bench(name=f"{mode}-{proto}", mode=mode, protocol=proto, slots=64, threads=2,
                      ns_per_op=ns, ns_per_op_min=ns, ns_per_op_max=ns)

    p = tmp_path / "t.json"
    p.write_text(json.dumps(_doc(w("emulator", "seqcount", 4), w("emulator", "v2-rwlock", 8))))
    t = {x.key: x for x in benchreport.keyfigures.targets(load(p))}
    assert t["writer_pair_2_threads_over_rwlock"].value == 0.5
    assert t["writer_pair_2_threads_over_rwlock"].met is None  # emulator mode: not judged
    assert t["writer_pair_over_reference"].value is None
    p.write_text(json.dumps(_doc(w("emulator", "seqcount", 4), w("protocol", "seqcount", 1),
                                 w("protocol", "v2-rwlock", 10))))
    t = {x.key: x for x in benchreport.keyfigures.targets(load(p))}
    assert (t["writer_pair_2_threads_over_rwlock"].value,
            t["writer_pair_2_threads_over_rwlock"].met) == (0.1, True)
    assert main(["bench-report", str(p), "--no-png"]) == 0
    out = capsys.readouterr().out
    assert "seqcount / v2-rwlock writer pair, 2 threads (64 slots) <= 0.2:" in out
    assert "0.100  met (1 / 10 ns per pair)" in out


# ---- the charts' rules: colours, panels, whiskers, scales, legends ----

def test_every_built_in_protocol_has_its_own_colour_blind_safe_colour_and_marker() -> None:
    from kmallocwd.benchreport import plot

    styles = {p: plot.protocol_style(p) for p in protocols.C_NAMES}
    assert len({c for c, _ in styles.values()}) == len(styles)
    assert len({m for _, m in styles.values()}) == len(styles)
    assert {c for c, _ in styles.values()} <= set(plot.SAFE_COLOURS)
    # fixed by the name alone: a name outside the table gets a safe colour,
    # the same on every call
    other = plot.protocol_style("my-seqlock")
    assert other == plot.protocol_style("my-seqlock") and other[0] in plot.SAFE_COLOURS


@pytest.mark.parametrize("n", range(0, 20))
@pytest.mark.parametrize("with_baseline", [True, False])
def test_series_are_split_into_panels_of_at_most_six(n: int, with_baseline: bool) -> None:
    from kmallocwd.benchreport import plot

    names = [f"p{i}" for i in range(n)]
    if with_baseline and n:
        names[n // 2] = "seqcount"
    panels = plot.split_series(names, "seqcount")
    assert all(1 <= len(p) <= plot.MAX_SERIES for p in panels)
    # every name is drawn, in its order; only the baseline is repeated
    flat = [x for p in panels for x in p]
    assert set(flat) == set(names)
    assert [x for x in flat if x != "seqcount"] == [x for x in names if x != "seqcount"]
    assert all(p == sorted(p, key=names.index) for p in panels)
    if n <= plot.MAX_SERIES:
        assert panels == ([names] if names else [])
    elif "seqcount" in names:
        assert all("seqcount" in p for p in panels)
    # as even as can be
    sizes = [len([x for x in p if x != "seqcount"]) for p in panels]
    assert not sizes or max(sizes) - min(sizes) <= 1
    # no more panels than needed
    repeated = "seqcount" in names and n > plot.MAX_SERIES
    others = [x for x in names if x != "seqcount"] if repeated else names
    room = plot.MAX_SERIES - 1 if repeated else plot.MAX_SERIES
    assert len(panels) == math.ceil(len(others) / room)


def test_the_built_ins_make_two_panels_with_the_baseline_in_both() -> None:
    from kmallocwd.benchreport import plot

    panels = plot.split_series(list(protocols.C_NAMES), "seqcount")
    assert len(panels) == 2 and all("seqcount" in p and len(p) == 6 for p in panels)


def test_a_log_axis_only_where_one_value_would_flatten_the_rest() -> None:
    from kmallocwd.benchreport import plot

    assert not plot.needs_log([2, 3, 15])
    assert plot.needs_log([2, 3, 17])
    assert not plot.needs_log([0, None, 1, 5, float("nan")])  # 0, None, NaN: not on a log axis
    assert not plot.needs_log([100])


def _chart_run(tmp_path: Path):
    """Every built-in's scan (global-spinlock's 100x slower at 10^6 slots),
    and a thread-scaling run in two modes."""
    benches = []
    for p in protocols.C_NAMES:
        for n in (1000, 10_000, 100_000, 1_000_000):
            ns = 200.0 if (p == "global-spinlock" and n == 1_000_000) else 2.0
            benches.append(_bench(name=f"scan-{p}-{n}", **{
                **SCAN_INFO, "protocol": p, "slots": n, "ns_per_op": ns,
                "ns_per_op_min": ns * 0.9, "ns_per_op_max": ns * 1.1}))
    for mode in ("emulator", "protocol"):
        for p in ("v2-rwlock", "seqcount", "global-spinlock"):
            for t in (1, 2, 4):
                benches.append(_bench(name=f"w-{mode}-{p}-{t}", mode=mode, protocol=p, slots=64,
                                      threads=t, ns_per_op=4.0 * t, ns_per_op_min=3.0 * t,
                                      ns_per_op_max=5.0 * t, aggregate_ns_per_op=4.0))
    path = tmp_path / "charts.json"
    path.write_text(json.dumps(_doc(*benches, _bench(**BW_INFO))))
    return load(path)


def _protocol_lines(ax) -> dict:
    from matplotlib.container import ErrorbarContainer

    return {c.get_label(): c for c in ax.containers
            if isinstance(c, ErrorbarContainer) and c.get_label() in protocols.C_NAMES}


@pytest.mark.slow
def test_charts_follow_the_rules(tmp_path: Path) -> None:
    import matplotlib.colors as mcolors
    import matplotlib.pyplot as plt

    from kmallocwd.benchreport import plot

    run = _chart_run(tmp_path)
    notes: list[str] = []
    charts = dict(plot.figures(run, "seqcount", notes))
    try:
        assert set(charts) == {"threads", "scan"}
        for name, fig in charts.items():
            fig.canvas.draw()
            r = fig.canvas.get_renderer()
            axes = fig.get_axes()
            for ax in axes:
                lines = _protocol_lines(ax)
                assert len(lines) <= plot.MAX_SERIES, name
                for proto, c in lines.items():  # the protocol's own colour
                    assert mcolors.to_hex(c.lines[0].get_color()) == \
                        mcolors.to_hex(plot.protocol_style(proto)[0])
            legends = [ax.get_legend() for ax in axes if ax.get_legend() is not None]
            assert legends, name
            for leg in legends:  # outside every panel's data
                assert not any(leg.get_window_extent(r).overlaps(ax.get_window_extent(r))
                               for ax in axes), name

        scan = charts["scan"].get_axes()
        drawn = [set(_protocol_lines(ax)) for ax in scan]
        assert set().union(*drawn) == set(protocols.C_NAMES)
        spiked = [ax for ax in scan if "global-spinlock" in _protocol_lines(ax)]
        calm = [ax for ax in scan if _protocol_lines(ax)
                and "global-spinlock" not in _protocol_lines(ax)]
        assert spiked and calm
        assert all(ax.get_yscale() == "log" for ax in spiked)
        assert all(ax.get_yscale() == "linear" for ax in calm)
        # the whiskers span the file's min and max
        v3 = next(_protocol_lines(ax)["v3"] for ax in scan if "v3" in _protocol_lines(ax))
        segs = v3.lines[2][0].get_segments()
        assert [(s[0][1], s[1][1]) for s in segs] == [pytest.approx((1.8, 2.2))] * 4

        # two modes: panels of their own, so a protocol appears once a panel
        threads = [ax for ax in charts["threads"].get_axes() if _protocol_lines(ax)]
        titles = [ax.get_title() for ax in threads]
        assert any("emulator mode" in t for t in titles) and any("protocol mode" in t
                                                                 for t in titles)
        assert all(len(_protocol_lines(ax)) == 3 for ax in threads)
    finally:
        for fig in charts.values():
            plt.close(fig)
