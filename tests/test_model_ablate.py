"""Ablation, model half."""

from __future__ import annotations

from kmallocwd.model.ablate import ablate, detection_power, render
from kmallocwd.protocols import BY_NAME


def test_seqcount_reports_each_barrier_by_its_line():
    spec = BY_NAME["seqcount"]
    rows = ablate(spec)
    src = spec.source.splitlines()
    fences = [r for r in rows if r.text in ("smp_wmb()", "smp_rmb()")]
    assert len(fences) == 4
    for r in fences:
        assert r.text in src[r.line - 1]
        assert r.change == "removed"
        assert r.verdicts == {"sc": "never", "x86": "sometimes", "weak": "sometimes"}
        assert r.necessary_on == ["x86", "weak"]
    assert {r.line for r in fences} == {12, 17, 31, 33}
    assert rows[0].change == "as written" and not rows[0].broken
    text = render(spec, rows)
    for ln in (12, 17, 31, 33):
        assert f"\n    {ln}  smp_" in text
    assert "not run" in text


def test_stress_fn_fills_the_stress_columns_and_detection_power():
    spec = BY_NAME["seqcount"]
    seen = []

    def fake_stress(variant, duration):
        seen.append((variant.name, duration))
        return {"outcomes": {"consistent": 10, "torn-mixed": 0}, "first_torn_after_s": None,
                "overlaps": 3}

    rows = ablate(spec, ("weak",), stress_fn=fake_stress, duration=0.5)
    assert len(seen) == len(rows) and all(d == 0.5 for _, d in seen)
    assert detection_power(rows) == (0, 4)
    assert "detection power here: stress saw 0 of the 4" in render(spec, rows, ("weak",))


def test_no_stress_without_duration():
    rows = ablate(BY_NAME["c11"], ("sc",), stress_fn=lambda s, d: {"outcomes": {}}, duration=0)
    assert all(r.stress is None for r in rows)
    assert any(r.change == "weakened to plain" for r in rows)
