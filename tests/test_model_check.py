"""The model checker's verdicts (kmallocwd.model): pure Python, no C."""

from __future__ import annotations

import pytest

from kmallocwd.model import MODELS, explore
from kmallocwd.model.events import programs
from kmallocwd.model.explore import classify_values
from kmallocwd.model.report import observation, render_text, to_json, trace_rows
from kmallocwd.protocols import PROTOCOLS, BY_NAME
from kmallocwd.protocols.spec import CONSISTENT, TORN_INSIDE, TORN_MIXED, TORN_SEQ, load_text

CASES = [(s.name, m) for s in PROTOCOLS for m in MODELS]


@pytest.mark.parametrize("name,model", CASES)
def test_verdict_matches_expect(name, model):
    spec = BY_NAME[name]
    res = explore(spec, model, 2)
    assert ("sometimes" if res.sometimes else "never") == spec.expect[model]
    assert res.executions > 0 and 0 <= res.positive <= res.executions
    assert (res.witness is not None) == res.sometimes


@pytest.mark.parametrize("name", [s.name for s in PROTOCOLS])
def test_models_nest(name):
    """Whatever SC can do, x86 can; whatever x86 can, weak can."""
    spec = BY_NAME[name]
    v = [explore(spec, m, 2).sometimes for m in ("sc", "x86", "weak")]
    assert v == sorted(v)


@pytest.mark.parametrize("name", ["v3", "v4-parity", "seqcount", "no-wmb", "no-rmb", "none",
                                  "c11", "v2-rwlock"])
@pytest.mark.slow
def test_a_retry_adds_no_tear(name):
    """docs/model.md: retries=0 (a retry ends the attempt) loses no tear."""
    spec = BY_NAME[name]
    for m in MODELS:
        assert explore(spec, m, 2, retries=1).sometimes == explore(spec, m, 2).sometimes


@pytest.mark.parametrize("name", ["v3", "seqcount", "no-wmb", "no-rmb", "v2-rwlock", "none"])
@pytest.mark.slow
def test_x86_store_buffer_adds_no_outcome(name):
    """The x86 model drains stores at once by default; exploring the FIFO
    store buffer step by step reaches the same reader outcomes (K=1, and
    K=2 but for no-wmb, whose 8 million buffered states take minutes)."""
    spec = BY_NAME[name]
    for k in ((1,) if name == "no-wmb" else (1, 2)):
        a = explore(spec, "x86", k)
        b = explore(spec, "x86", k, store_buffer=True)
        assert set(a.outcomes) == set(b.outcomes)
        assert a.sometimes == b.sometimes
        assert b.states >= a.states


@pytest.mark.parametrize("name", ["seqcount", "no-wmb", "v3"])
@pytest.mark.slow
def test_pruning_dumped_changes_nothing(name):
    spec = BY_NAME[name]
    for m in MODELS:
        a, b = explore(spec, m, 2), explore(spec, m, 2, prune=False)
        assert a.sometimes == b.sometimes and set(a.outcomes) == set(b.outcomes)


@pytest.mark.slow
def test_k3_verdicts():
    for name in ("v3", "seqcount", "no-rmb", "c11"):
        spec = BY_NAME[name]
        for m in MODELS:
            assert ("sometimes" if explore(spec, m, 3).sometimes else "never") == spec.expect[m]


def test_v4_parity_needs_two_sections():
    """The ABA needs a whole section during the copy: K=1 cannot show it."""
    assert not explore(BY_NAME["v4-parity"], "sc", 1).sometimes
    assert explore(BY_NAME["v4-parity"], "sc", 2).sometimes


def test_x86_merges_the_no_wmb_increments():
    progs = programs(BY_NAME["no-wmb"], "x86", 2)
    assert len(progs) == 4  # each section's sequence++ pair merged or not
    merged = [e for p in progs for e in p.writer if e.merged]
    assert merged and all(e.value in (2, 4) for e in merged)
    # seqcount's increments are separated by smp_wmb(): never merged
    assert len(programs(BY_NAME["seqcount"], "x86", 2)) == 1


def test_classify_values():
    assert classify_values(2, 1, 1, 1, 2) == CONSISTENT
    assert classify_values(1, 1, 1, 1, 2) == CONSISTENT  # odd, after all of section 1's stores
    assert classify_values(3, 1, 1, 1, 2) == TORN_INSIDE
    assert classify_values(2, 2, 2, 2, 2) == TORN_SEQ
    assert classify_values(0, 0, 0, 0, 2) == CONSISTENT
    assert classify_values(2, 2, 1, 1, 2) == TORN_MIXED


def test_trace_names_lines_values_and_effects():
    res = explore(BY_NAME["no-rmb"], "weak", 2)
    rows = trace_rows(res)
    assert rows and [r.n for r in rows] == list(range(1, len(rows) + 1))
    assert any(r.effect.startswith("performed before") for r in rows)
    lines = {r.line for r in rows if r.line}
    src = BY_NAME["no-rmb"].source.splitlines()
    for r in rows:
        if r.line and r.event.op is not None and r.tid == 1:
            assert r.event.op.text.split("#")[0].strip() in src[r.line - 1]
    assert lines
    res = explore(BY_NAME["no-wmb"], "x86", 2)
    assert any("compiler" in r.effect for r in trace_rows(res))


def test_text_and_json_reports():
    spec = BY_NAME["v3"]
    results = [explore(spec, m, 2) for m in MODELS]
    text = render_text(results)
    assert "Observation v3-sc-K2 Sometimes" in text
    assert "shortest counterexample" in text
    doc = to_json(results)
    assert doc["schema"] == "kmallocwd.check/1"
    assert all(d["matches_expect"] for d in doc["models"].values())
    assert doc["models"]["weak"]["counterexample"]["steps"]
    seq = explore(BY_NAME["seqcount"], "weak", 2)
    assert observation(seq).startswith("Observation seqcount-weak-K2 Never 0 ")


USER = """
format = 1
name = "my-seq"
[writer]
section = ["sequence++", "smp_wmb()", "start = NOW", "gfp = GFP", "order = ORDER",
           "dumped = 0", "sequence++"]
[reader]
prologue = ["v = READ_ONCE(valid)", "if (!v) skip"]
snapshot = ["s0 = READ_ONCE(sequence)", "if (odd(s0)) retry", "smp_rmb()", "copy",
            "smp_rmb()", "s1 = READ_ONCE(sequence)", "if (s1 != s0) retry",
            "if (!snap.valid) skip"]
snapshot_sequence = "s0"
[expect]
sc = "never"
x86 = "never"
weak = "sometimes"
[outcomes]
consistent = { expect = "acceptable", reason = "" }
"""


def test_user_protocol_missing_second_wmb():
    """A writer without its second smp_wmb(): the last field store may become
    visible after the closing sequence++ on a weak machine; the compiler
    barrier still holds on x86."""
    spec = load_text(USER, "mine.toml")
    v = {m: explore(spec, m, 2).sometimes for m in MODELS}
    assert v == {"sc": False, "x86": True, "weak": True}


def test_verdicts_helper():
    from kmallocwd.model import verdicts
    for spec in PROTOCOLS:
        assert verdicts(spec) == spec.expect


def test_gcc_merged_no_wmb_still_tears_on_x86():
    """GCC 12 -O2 merges no-wmb's two sequence++ into one += 2: the merged
    program (both sections merged) still tears under the x86 model."""
    res = explore(BY_NAME["no-wmb"], "x86", 2)
    labels = [p.label() for p in res.programs]
    both = labels.index("GCC merged sequence++ pair in section 1, 2")
    assert res.positive_by_variant[both] > 0
    assert sum(res.positive_by_variant) == res.positive
    assert to_json([res])["models"]["x86"]["programs"][both]["positive"] > 0
