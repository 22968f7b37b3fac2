"""The Python API, the pytest plugin, JUnit XML and GitHub annotations."""

from __future__ import annotations

import json
import subprocess
import sys

import xml.etree.ElementTree as ET

import junitparser
import pytest

import kmallocwd
from kmallocwd import annotate
from kmallocwd.cli import main

from conftest import ROOT

POWERFUL = dict(alloc_ns=100, hold_ns=50)


def case_props(path, name: str) -> dict[str, str]:
    """A testcase's <property> elements (junitparser reads only the suite's)."""
    for tc in ET.parse(path).getroot().iter("testcase"):
        if tc.get("name") == name:
            return {p.get("name"): p.get("value") for p in tc.iter("property")}
    raise KeyError(name)


def _until(fn, done, tries: int = 20):
    for _ in range(tries):
        r = fn()
        if done(r):
            return r
    return r


def test_importing_the_package_loads_nothing_heavy():
    code = ("import sys, kmallocwd; assert callable(kmallocwd.stress); "
            "print('numpy' in sys.modules, 'kmallocwd._kmallocwd' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert r.stdout.split() == ["False", "False"], r.stderr


def test_stress_returns_the_json_as_a_dataclass():
    r = _until(lambda: kmallocwd.stress("seqcount", duration=0.3, **POWERFUL),
               lambda r: r.overlaps > 0)
    d = json.loads(r.to_json())
    assert d["protocol"] == r.protocol == "seqcount" and d["overlaps"] == r.overlaps
    assert r.result == "PASS" and r.exit_status == 0
    r.assert_no_forbidden()


@pytest.mark.slow
def test_a_broken_protocol_raises_with_its_evidence():
    r = _until(lambda: kmallocwd.stress("v3", duration=2, until_torn=True, **POWERFUL),
               lambda r: r.torn > 0)
    with pytest.raises(kmallocwd.ProtocolFailure) as exc:
        r.assert_no_forbidden()
    msg = str(exc.value)
    assert msg.startswith("FAIL: forbidden outcome seen for v3")
    assert "torn-mixed" in msg and "consistent" in msg  # the histogram
    assert "first torn snapshot" in msg and "witness=" in msg


def test_an_unknown_protocol_is_refused():
    from kmallocwd.protocols import SpecError

    with pytest.raises(SpecError, match="unknown protocol 'v5'"):
        kmallocwd.stress("v5", duration=0.1)


def test_junit_parses_with_a_real_reader(tmp_path):
    out = tmp_path / "j.xml"
    code = main(["stress", "-q", "-p", "seqcount", "-d", "0.2", "-r", "2", "--alloc-ns", "100",
                 "--junit", str(out)])
    xml = junitparser.JUnitXml.fromfile(str(out))
    suites = list(xml)
    assert len(suites) == 1
    suite = suites[0]
    # what Jenkins, GitLab and GitHub's reporters read
    assert suite.name == "kmallocwd stress seqcount" and suite.tests == 2
    assert suite.failures == 0 and suite.errors == 0
    assert suite.timestamp and suite.hostname
    cases = list(suite)
    assert [c.name for c in cases] == ["seqcount run 1", "seqcount run 2"]
    for c in cases:
        assert c.classname == "kmallocwd.stress.seqcount" and c.time >= 0
        props = case_props(out, c.name)
        assert {"seed", "overlaps", "count.consistent", "count.torn-mixed"} <= set(props)
    if code == 0:
        # the runs together passed; on a loaded machine one run alone may have
        # seen no overlap (skipped: inconclusive), never failed
        assert all(c.is_passed or c.is_skipped for c in cases)
        assert any(c.is_passed for c in cases)
    suite_props = {p.name: p.value for p in suite.properties()}
    assert suite_props["protocol"] == "seqcount" and suite_props["cpu"]


def test_junit_marks_a_forbidden_outcome_as_a_failure(tmp_path):
    out = tmp_path / "j.xml"
    for _ in range(20):
        if main(["stress", "-q", "-p", "v3", "-d", "2", "--until-torn", "--alloc-ns", "100",
                 "--junit", str(out)]) == 1:
            break
    case = list(list(junitparser.JUnitXml.fromfile(str(out)))[0])[0]
    assert not case.is_passed and case.result[0].message.startswith("FAIL: forbidden")
    assert isinstance(case.result[0], junitparser.Failure)


def test_an_inconclusive_run_is_skipped(tmp_path):
    out = tmp_path / "j.xml"
    assert main(["stress", "-q", "-p", "seqcount", "-n", "1", "--junit", str(out)]) == 3
    case = list(list(junitparser.JUnitXml.fromfile(str(out)))[0])[0]
    assert isinstance(case.result[0], junitparser.Skipped)


def test_annotation_lines_have_githubs_format(capsys, monkeypatch):
    assert annotate.line("p/my.toml", 12, "50% torn\nnext") == \
        "::error file=p/my.toml,line=12::50%25 torn%0Anext"
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    for _ in range(20):
        code = main(["stress", "-q", "-p", "v3", "-d", "2", "--until-torn", "--alloc-ns", "100"])
        out = capsys.readouterr().out
        if code == 1:
            break
    lines = [ln for ln in out.splitlines() if ln.startswith("::error ")]
    assert lines and all(ln.startswith("::error file=kmallocwd/protocols/v3.toml,")
                         for ln in lines)
    assert "an outcome this file forbids" in lines[-2] and "title=kmallocwd verdict::" in lines[-1]
    monkeypatch.delenv("GITHUB_ACTIONS")
    assert annotate.wanted(None) is False and annotate.wanted("github") is True


PLUGIN_TEST = '''
def test_sound(kmallocwd):
    for _ in range(20):
        r = kmallocwd.stress("seqcount", duration=2.0, alloc_ns=100, hold_ns=50)
        if r.overlaps:
            break
    r.assert_no_forbidden()

def test_broken(kmallocwd):
    for _ in range(20):
        r = kmallocwd.stress("v3", duration=2.0, alloc_ns=100, until_torn=True)
        if r.torn:
            break
    r.assert_no_forbidden()
'''


@pytest.mark.slow
def test_the_plugin_runs_a_users_protocol_tests(pytester):
    pytester.makepyfile(test_mine=PLUGIN_TEST)
    xml = pytester.path / "junit.xml"
    res = pytester.runpytest_subprocess("--kmallocwd-duration-scale", "0.25",
                                        "--kmallocwd-seed", "7", f"--junitxml={xml}",
                                        "-o", "junit_family=xunit1")
    res.assert_outcomes(passed=1, failed=1)
    out = res.stdout.str()
    assert "FAIL: forbidden outcome seen for v3" in out
    assert "rejected-invalid" in out and "first torn snapshot" in out
    cases = {c.name: c for c in list(junitparser.JUnitXml.fromfile(str(xml)))[0]}
    props = case_props(xml, "test_sound")
    assert props["kmallocwd.stress.protocol"] == "seqcount"
    assert props["kmallocwd.stress.seed"] == "7"
    assert float(props["kmallocwd.stress.duration"]) == pytest.approx(0.5)  # 2.0 x 0.25
    assert "kmallocwd.stress.overlaps" in props and "kmallocwd.stress.cpu" in props
    broken = case_props(xml, "test_broken")
    assert not cases["test_broken"].is_passed and cases["test_sound"].is_passed
    assert json.loads(broken["kmallocwd.stress.first_torn"])["snapshot"]["witness"]


@pytest.mark.slow
def test_the_plugin_rejects_a_bad_scale(pytester):
    pytester.makepyfile(test_x="def test_x(kmallocwd):\n    pass\n")
    res = pytester.runpytest_subprocess("--kmallocwd-duration-scale", "0")
    assert res.ret != 0
    assert "--kmallocwd-duration-scale '0' is out of range" in res.stdout.str() + res.stderr.str()


def test_the_stress_package_does_not_hide_the_api_function():
    """``kmallocwd.stress`` is the stress core's package once it is imported;
    calling it is still the API's stress()."""
    import kmallocwd.stress.report  # noqa: F401  (binds kmallocwd.stress to the package)

    r = kmallocwd.stress("seqcount", iterations=1000, alloc_ns=100)
    assert r.protocol == "seqcount" and r.runs_done == 1
