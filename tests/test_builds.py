"""The kernel and c11 builds: the generated C names its build, a run and
every report say which build ran, and an underpowered run says which knob
would raise its power."""

from __future__ import annotations

import subprocess
import sys

from conftest import ROOT
from kmallocwd import protocols
import kmallocwd.stress.report as stress_report
from kmallocwd.protocols.backend import backend
from kmallocwd.protocols.builds import C11_MACRO, definitions
from kmallocwd.protocols.cgen import generate
from kmallocwd.stress.run import StressConfig, StressResult, run_stress


def test_the_c11_build_is_compiled_with_its_macro():
    spec = protocols.get("seqcount")
    assert C11_MACRO not in generate([spec])
    assert f"#define {C11_MACRO}" in generate([spec], build="c11")
    assert any("__atomic_load_n" in d for d in definitions("c11"))
    assert any("volatile" in d for d in definitions("kernel"))


def test_a_run_in_each_build_runs_that_build():
    spec = protocols.get("seqcount")
    assert backend(spec).build == "kernel"
    be = backend(spec, "c11")  # compiled on first use, then cached
    assert be.build == "c11"
    r = run_stress(StressConfig(protocol="seqcount", duration=0.2, alloc_ns=100, build="c11"),
                   be)
    assert r.torn == 0
    report = stress_report.build([r])
    d = report.to_dict()
    assert d["build"] == "c11" and d["binary"]["build"] == "c11"
    assert "c11 build" in stress_report.render(report).splitlines()[0]
    xml = stress_report.to_junit(report)
    assert 'name="build" value="c11"' in xml


def test_protocols_c_shows_the_definitions_in_use():
    out = {}
    for b in ("kernel", "c11"):
        out[b] = subprocess.run([sys.executable, "-m", "kmallocwd", "protocols", "--c",
                                 "seqcount", "--build", b], cwd=ROOT, capture_output=True,
                                text=True, timeout=120).stdout
    assert "The kernel build" in out["kernel"] and "__asm__ __volatile__(\"\" ::: \"memory\")" \
        in out["kernel"]
    assert "The c11 build" in out["c11"] and "atomic_thread_fence" in out["c11"]
    r = subprocess.run([sys.executable, "-m", "kmallocwd", "stress", "--build", "gcc"],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "accepted: kernel, c11" in r.stderr
    assert "Traceback" not in r.stderr


def _result(name: str, slots: int, accepted: int, attempts: int, overlaps: int,
            **cfg) -> StressResult:
    r = StressResult(config=StressConfig(protocol=name, slots=slots, **cfg),
                     spec=protocols.get(name), counts={o: 0 for o in protocols.OUTCOMES})
    r.counts[protocols.CONSISTENT] = accepted
    r.attempts, r.overlaps = attempts, overlaps
    return r


def test_power_hints_name_the_knob():
    # -s 64 with the default knobs: the reader finds empty slots
    few = _result("seqcount", 64, 13_811, 10**9, 0)
    v = stress_report.verdict([few])
    assert v.word == "INCONCLUSIVE" and "--alloc-ns" in v.line
    # accepted plenty, overlaps few: hold the sections open
    held = _result("seqcount", 64, 10**7, 10**8, 0, alloc_ns=1000)
    line = stress_report.verdict([held]).line
    assert "--hold-ns" in line and "-s 1" in line
    # a section with no compiler barrier has nothing to hold
    nowmb = _result("no-wmb", 1, 10**7, 10**8, 5)
    line = stress_report.verdict([nowmb]).line
    assert "UNOBSERVED" in line and "no compiler barrier" in line and "--hold-ns 1000" not in line
    # and it says what the binary allows
    assert "as compiled" in line or "this binary cannot tear" in line
