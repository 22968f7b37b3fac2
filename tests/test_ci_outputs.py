"""What CI shows: GitHub annotations that point at the missing barrier, one
JUnit status mapping for every command, GitLab Code Quality JSON, and the
pytest plugin under both JUnit families with warnings as errors."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from kmallocwd import annotate, junit, protocols
from kmallocwd.cli import main

POWERFUL = ["--alloc-ns", "100", "--hold-ns", "50"]
RMB = "    \"smp_rmb()        # pairs with the writer's first smp_wmb()\",\n"


def _missing_rmb(tmp_path):
    """seqcount with its last smp_rmb() deleted: the user's one mistake.
    The line it leaves unordered is the one that was after it."""
    text = protocols.get("seqcount").source
    assert RMB in text
    lines = text.splitlines(keepends=True)
    culprit = lines.index(RMB) + 1  # 1-based: the next line moves up into its place
    f = tmp_path / "my.toml"
    f.write_text(text.replace(RMB, "").replace('name = "seqcount"', 'name = "mine"'))
    return f, culprit


def _errors(out: str) -> list[str]:
    return [ln for ln in out.splitlines() if ln.startswith("::error")]


@pytest.mark.parametrize("command", ["check", "ablate"])
@pytest.mark.slow
def test_one_missing_barrier_gives_few_errors_the_first_on_its_line(
        tmp_path, monkeypatch, capsys, command):
    f, culprit = _missing_rmb(tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GITHUB_WORKSPACE", raising=False)
    assert main([command, "--protocol-file", str(f), "--annotate", "github"]) == 1
    errors = _errors(capsys.readouterr().out)
    assert 1 <= len(errors) <= annotate.MAX_ERRORS
    assert errors[0].startswith(f"::error file=my.toml,line={culprit},title=missing smp_rmb()::")
    assert "smp_rmb()" in errors[0].split("::", 2)[2].split("%0A")[0]
    assert "%0A" in errors[0] and "counterexample" in errors[0]  # the trace, in the body
    assert all("file=my.toml" in e and str(tmp_path) not in e for e in errors)
    assert "title=kmallocwd verdict::" in errors[-1] and "FAIL" in errors[-1]


def test_paths_are_relative_to_the_workspace(tmp_path, monkeypatch, capsys):
    f, culprit = _missing_rmb(tmp_path)
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")
    monkeypatch.setenv("GITHUB_WORKSPACE", str(tmp_path))
    main(["check", "--protocol-file", str(f), "--annotate", "github"])
    assert _errors(capsys.readouterr().out)[0].startswith(f"::error file=my.toml,line={culprit},")


def test_stress_points_at_the_missing_barrier_too(tmp_path, monkeypatch, capsys):
    f, culprit = _missing_rmb(tmp_path)
    monkeypatch.chdir(tmp_path)
    for _ in range(20):  # FAIL or UNOBSERVED both blame the line; a run with no power, neither
        code = main(["stress", "-q", "--protocol-file", "my.toml", "-d", "0.3", *POWERFUL,
                     "--annotate", "github"])
        out = capsys.readouterr().out
        if code in (1, 4):
            break
    assert code in (1, 4)
    errors = _errors(out)
    assert 2 <= len(errors) <= annotate.MAX_ERRORS
    assert errors[0].startswith(f"::error file=my.toml,line={culprit},")


@pytest.mark.slow
def test_a_sound_protocol_gets_one_notice_and_no_error(capsys):
    assert main(["ablate", "-p", "seqcount", "--annotate", "github"]) == 0
    out = capsys.readouterr().out
    assert not _errors(out)
    notices = [ln for ln in out.splitlines() if ln.startswith("::notice")]
    assert len(notices) == 1 and "lines 12, 17, 31, 33" in notices[0]


def test_at_most_ten_errors_and_a_summary_that_counts_the_rest():
    findings = [annotate.Finding("my.toml", i, "t", f"finding {i}") for i in range(1, 26)]
    lines = annotate.render(findings, annotate.Summary("kmallocwd check my.toml",
                                                       "FAIL: x", 1, ["j.xml"], "my.toml"))
    errors = [ln for ln in lines if ln.startswith("::error")]
    assert len(errors) == annotate.MAX_ERRORS
    assert errors[0].startswith("::error file=my.toml,line=1,")
    assert "9 finding(s) annotated, 16 more not annotated" in errors[-1]
    assert "full report: this step's log, j.xml" in errors[-1]


def test_codequality_is_gitlabs_json(tmp_path, monkeypatch):
    f, culprit = _missing_rmb(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert main(["check", "--protocol-file", "my.toml", "--annotate", "none",
                 "--codequality", "cq.json"]) == 1
    doc = json.loads((tmp_path / "cq.json").read_text())
    assert doc[0]["location"] == {"path": "my.toml", "lines": {"begin": culprit}}
    assert doc[0]["severity"] == "critical" and len(doc[0]["fingerprint"]) == 64
    assert "smp_rmb()" in doc[0]["description"]


# ---------------------------------------------------------------- JUnit

def _suite_props(path) -> dict[str, str]:
    suite = ET.parse(path).getroot().find("testsuite")
    return {p.get("name"): p.get("value") for p in suite.findall("./properties/property")}


@pytest.mark.slow
def test_every_commands_junit_has_seed_machine_and_version(tmp_path, capsys):
    main(["check", "-p", "seqcount", "--junit", str(tmp_path / "c.xml")])
    main(["ablate", "-p", "seqcount", "--junit", str(tmp_path / "a.xml")])
    main(["stress", "-q", "-p", "seqcount", "-n", "1", "--junit", str(tmp_path / "s.xml")])
    for name in ("c.xml", "a.xml", "s.xml"):
        props = _suite_props(tmp_path / name)
        assert {"seed", "machine", "arch", "cpu", "kmallocwd"} <= set(props), name
        assert props["kmallocwd"] == __import__("kmallocwd").__version__
    assert _suite_props(tmp_path / "s.xml")["seed"] == "1"
    assert _suite_props(tmp_path / "c.xml")["seed"] == "null"  # exhaustive: nothing drawn


def _case_element(xml_text: str) -> ET.Element:
    case = ET.fromstring(xml_text).find("./testsuite/testcase")
    (child,) = [c for c in case if c.tag in ("failure", "error", "skipped")]
    return child


def test_unobserved_is_the_same_element_in_stress_and_campaign(tmp_path, capsys):
    from kmallocwd.campaign import Campaign, parse_plan, to_junit

    f, _ = _missing_rmb(tmp_path)
    out = tmp_path / "s.xml"
    # The model says it tears; the c11 build's binary cannot (its fences keep the
    # loads in order), so a run with power is UNOBSERVED.  A run without power
    # (a loaded machine) is INCONCLUSIVE: tried again, up to a generous bound.
    for _ in range(20):
        rc = main(["stress", "-q", "--protocol-file", str(f), "-d", "0.5", *POWERFUL,
                   "--build", "c11", "--junit", str(out)])
        if rc == 4:
            break
    assert rc == 4
    stress_el = _case_element(out.read_text())
    plan = parse_plan("[[stress]]\nprotocols = ['no-rmb']\n", "p.toml")
    c = Campaign(plan)
    report = {"outcomes": {"consistent": {"count": 10, "expect": "acceptable"}},
              "overlaps": 7, "exit_status": 4, "verdict": "UNOBSERVED: no-rmb ..."}
    c.add(plan.cells[0], [{"status": "done", "exit_status": 4, "report": report,
                           "machine": {"hostname": "h"}, "elapsed_s": 1.0}])
    campaign_el = _case_element(to_junit(c.to_dict()))
    want = junit.STATUS_ELEMENT["UNOBSERVED"]
    assert stress_el.tag == campaign_el.tag == want
    assert stress_el.get("type") == campaign_el.get("type") == "UNOBSERVED"


def test_property_values_are_json_not_python_reprs():
    assert junit.value({"b": None, "a": True}) == '{"a":true,"b":null}'
    assert junit.value(True) == "true" and junit.value("v3") == "v3" and junit.value(None) == "null"


# ---------------------------------------------------------------- the pytest plugin

PLUGIN_TESTS = '''
import pytest
import kmallocwd
from kmallocwd import ProtocolFailure

@pytest.mark.kmallocwd(model="weak")
def test_marker_model(kmallocwd):
    r = kmallocwd.check("mine.toml")  # beside this file, not in the current directory
    assert list(r.models) == ["weak"]
    with pytest.raises(ProtocolFailure) as exc:
        r.assert_no_forbidden()
    assert kmallocwd.ProtocolFailure is ProtocolFailure
    assert "mine.toml:{culprit}: missing smp_rmb()" in str(exc.value)

def test_defaults_are_the_apis(kmallocwd):
    assert kmallocwd.ablate().protocol == "seqcount"

@pytest.mark.kmallocwd(duration=2.0, alloc_ns=100)
def test_stress_settings(kmallocwd):
    r = kmallocwd.stress("seqcount")
    assert r.config["duration"] == pytest.approx(2.0 * {scale})
    assert r.config["alloc_ns"] == 100 and r.config["seed"] == 7
'''


def _plugin_project(pytester, tmp_path_factory, scale: float = 0.1) -> None:
    f, culprit = _missing_rmb(tmp_path_factory.mktemp("src"))
    sub = pytester.mkpydir("suite")
    (sub / "mine.toml").write_text(f.read_text())
    (sub / "test_mine.py").write_text(PLUGIN_TESTS.format(culprit=culprit, scale=scale))
    pytester.makeini(f"[pytest]\nkmallocwd_duration_scale = {scale}\nkmallocwd_seed = 7\n")


@pytest.mark.parametrize("family", ["xunit2", "xunit1"])
@pytest.mark.slow
def test_the_plugin_passes_with_warnings_as_errors(pytester, tmp_path_factory, family):
    _plugin_project(pytester, tmp_path_factory)
    xml = pytester.path / "junit.xml"
    res = pytester.runpytest_subprocess("-o", f"junit_family={family}", "-W",
                                        "error::pytest.PytestWarning", f"--junitxml={xml}",
                                        "-p", "no:cacheprovider")
    res.assert_outcomes(passed=3)
    root = ET.parse(xml).getroot()
    if family == "xunit2":
        assert not list(root.iter("testcase"))[0].findall("properties")
        props = _suite_props(xml)
        key = "suite/test_mine.py::test_stress_settings::kmallocwd.stress.seed"
        assert props[key] == "7"
    else:
        case = [c for c in root.iter("testcase") if c.get("name") == "test_stress_settings"][0]
        props = {p.get("name"): p.get("value") for p in case.iter("property")}
        assert props["kmallocwd.stress.seed"] == "7"


@pytest.mark.slow
def test_the_command_line_wins_over_the_ini_and_bad_values_are_refused(pytester,
                                                                       tmp_path_factory):
    _plugin_project(pytester, tmp_path_factory, scale=0.05)
    res = pytester.runpytest_subprocess("--kmallocwd-duration-scale", "0.05", "-k",
                                        "stress_settings", "-p", "no:cacheprovider")
    res.assert_outcomes(passed=1)
    pytester.makeini("[pytest]\nkmallocwd_seed = -1\n")
    res = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    assert res.ret == pytest.ExitCode.USAGE_ERROR
    assert "ini kmallocwd_seed = '-1' is out of range (accepted: 0 to" in res.stderr.str()
    for bad in ("1e6", "inf", "nan", "0"):  # the API's own range: refused, never a hang
        res = pytester.runpytest_subprocess(f"--kmallocwd-duration-scale={bad}", "-p",
                                            "no:cacheprovider")
        assert res.ret == pytest.ExitCode.USAGE_ERROR, bad
        assert "--kmallocwd-duration-scale" in res.stderr.str()
        assert "accepted: more than 0 to 1000" in res.stderr.str()


@pytest.mark.slow
def test_the_fixture_is_documented(pytester):
    res = pytester.runpytest_subprocess("--fixtures", "-p", "no:cacheprovider")
    out = res.stdout.str()
    i = out.index("kmallocwd -- ")
    assert "no docstring available" not in out[i:i + 400]
    assert "--kmallocwd-duration-scale" in out[i:i + 800]
    res = pytester.runpytest_subprocess("--markers")
    assert "@pytest.mark.kmallocwd(duration=None, model=None, **knobs)" in res.stdout.str()


def test_campaign_findings_blame_the_file_then_name_the_cells(tmp_path, monkeypatch):
    from kmallocwd.campaign import Campaign, load_plan
    from kmallocwd.campaign.annotate import findings

    f, culprit = _missing_rmb(tmp_path)
    (tmp_path / "plan.toml").write_text('[[stress]]\nprotocols = ["v3",\n  "my.toml"]\n')
    monkeypatch.chdir(tmp_path)
    plan = load_plan("plan.toml")
    c = Campaign(plan)
    cell = [x for x in plan.cells if x.protocol != "v3"][0]
    report = {"outcomes": {"torn-mixed": {"count": 3, "expect": "forbidden"}},
              "overlaps": 7, "exit_status": 1}
    c.add(cell, [{"status": "done", "exit_status": 1, "report": report,
                  "machine": {"hostname": "arm1"}, "elapsed_s": 1.0}])
    found = findings(c.to_dict(), plan)
    assert (found[0].line, found[0].title) == (culprit, "missing smp_rmb()")
    assert annotate.relpath(found[0].path) == "my.toml"
    assert (found[-1].path, found[-1].line) == ("plan.toml", 3)
    assert found[-1].message.startswith("FAIL: forbidden outcome seen in 1 of 2 cells of my")
    assert "3 torn-mixed" in found[-1].message and found[-1].body == [f"{cell.id} on arm1"]


@pytest.mark.parametrize("argv", [["check", "-p", "seqcount", "--codequality", ""],
                                  ["ablate", "-p", "seqcount", "--codequality", "/dev/null"],
                                  ["stress", "-n", "1", "--codequality", "{t}"]])
def test_a_bad_codequality_path_is_one_line_and_exit_2(tmp_path, capsys, argv):
    argv = [a.replace("{t}", str(tmp_path)) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "--codequality" in err and "Traceback" not in err and len(err.splitlines()) == 1


@pytest.mark.slow
def test_a_fail_message_names_the_reason_its_line_and_the_models_counterexample():
    import kmallocwd

    for _ in range(20):
        r = kmallocwd.stress("v3", duration=2, until_torn=True, alloc_ns=100)
        if r.forbidden_seen:
            break
    assert r.result == "FAIL"
    with pytest.raises(kmallocwd.ProtocolFailure) as exc:
        r.assert_no_forbidden()
    msg = str(exc.value)
    spec = protocols.get("v3")
    name = r.forbidden_seen[0]
    o = spec.outcome(name)
    assert f"{spec.path}:{o.line}: {name} is forbidden: {o.reason}" in msg
    assert "first torn snapshot" in msg and "consistent" in msg  # the histogram
    assert "model checker: kmallocwd/protocols/v3.toml:" in msg and "counterexample" in msg
    assert "=> accepted snapshot:" in msg


@pytest.mark.slow
def test_an_unknown_marker_setting_is_named(pytester):
    pytester.makepyfile(test_m='''
import pytest

@pytest.mark.kmallocwd(duratoin=2)
def test_m(kmallocwd):
    pass
''')
    res = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    res.assert_outcomes(errors=1)
    assert "@pytest.mark.kmallocwd: duratoin: not a setting (accepted: keywords" in res.stdout.str()
