"""kmallocwd.check / kmallocwd.ablate as an API, their JUnit and annotations,
the stress half of an ablation, and the model's verdicts in stress's verdict."""

from __future__ import annotations

import json

import junitparser
import pytest

import kmallocwd
from kmallocwd import protocols
from kmallocwd.cli import main
from kmallocwd.stress.report import broken_models


@pytest.mark.slow
def test_check_reports_match_the_tables():
    for p in protocols.PROTOCOLS:
        r = kmallocwd.check(p.name)
        assert r.matches_expect and r.exit_status == 0, p.name
        assert {m: v["verdict"] for m, v in r.models.items()} == p.expect
        assert json.loads(r.to_json())["protocol"] == p.name


@pytest.mark.slow
def test_check_assert_no_forbidden_shows_the_trace():
    kmallocwd.check("seqcount").assert_no_forbidden()
    with pytest.raises(kmallocwd.ProtocolFailure) as exc:
        kmallocwd.check("no-rmb").assert_no_forbidden()
    msg = str(exc.value)
    assert "under x86, weak" in msg and "shortest counterexample" in msg


def test_stress_uses_the_model_for_broken_protocols():
    assert broken_models(protocols.get("no-wmb")) == ["x86", "weak"]
    assert broken_models(protocols.get("seqcount")) == []


@pytest.mark.slow
def test_check_junit_has_one_case_per_protocol_and_model(tmp_path, capsys):
    out = tmp_path / "c.xml"
    assert main(["check", "--no-trace", "--junit", str(out)]) == 0
    suite = list(junitparser.JUnitXml.fromfile(str(out)))[0]
    assert suite.tests == 3 * len(protocols.PROTOCOLS) and suite.failures == 0
    names = {c.name for c in suite}
    assert "v3 under weak" in names and "seqcount under x86" in names


def test_check_a_file_whose_table_is_wrong_fails_with_annotations(tmp_path, capsys):
    text = protocols.get("no-rmb").source.replace('x86 = "sometimes"', 'x86 = "never"')
    f = tmp_path / "wrong.toml"
    f.write_text(text)
    out = tmp_path / "c.xml"
    assert main(["check", "--protocol-file", str(f), "--annotate", "github",
                 "--junit", str(out)]) == 1
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("::error ")]
    assert lines and all(ln.startswith(f"::error file={f},") for ln in lines)
    assert len(lines) == 2 and ",line=" in lines[0]  # the finding, then the summary
    cases = {c.name: c for c in list(junitparser.JUnitXml.fromfile(str(out)))[0]}
    assert isinstance(cases["no-rmb under x86"].result[0], junitparser.Failure)
    assert cases["no-rmb under sc"].is_passed


def test_ablate_model_half_names_seqcounts_barriers_by_line():
    r = kmallocwd.ablate("seqcount")
    fences = [row for row in r.rows if row["operation"] in ("smp_wmb()", "smp_rmb()")]
    assert [row["line"] for row in fences] == [12, 17, 31, 33]
    assert all(row["necessary_on"] == ["x86", "weak"] for row in fences)
    assert r.rows[0]["change"] == "as written" and r.detection_power is None


@pytest.mark.slow
def test_the_stress_half_runs_a_variant_compiled_for_it(tmp_path, monkeypatch):
    monkeypatch.setenv("KMALLOCWD_CACHE", str(tmp_path / "cache"))
    spec = protocols.get("seqcount")
    where, index, op = spec.ordering_ops()[0]
    variant = spec.without(where, index)
    out = kmallocwd.api.stress_variant(variant, 0.3)
    assert set(out) >= {"outcomes", "first_torn_after_s", "overlaps", "accepted"}
    assert set(out["outcomes"]) == set(protocols.OUTCOMES)
    assert list((tmp_path / "cache").rglob("*.so"))  # compiled for it
