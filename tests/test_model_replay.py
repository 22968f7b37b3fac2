"""Replay (csrc/replay.c): every counterexample of every built-in runs on
real threads and a real slot and reproduces its tear, every time.  These
tests replace waiting for a tear under stress: deterministic by design."""

from __future__ import annotations

import pytest

pytest.importorskip("kmallocwd._kmallocwd")

from kmallocwd.model import MODELS, explore  # noqa: E402
from kmallocwd.model.replay import plan, replay, section_requests  # noqa: E402
from kmallocwd.protocols import BY_NAME, C_PROTOCOLS  # noqa: E402
from kmallocwd.protocols.spec import TORN_KINDS, load_text  # noqa: E402

RUNS = 10
BROKEN = [(s.name, m) for s in C_PROTOCOLS for m in MODELS if s.expect[m] == "sometimes"]


def test_every_broken_builtin_is_listed():
    assert {n for n, _ in BROKEN} == {"v3", "v4-parity", "no-wmb", "no-rmb", "none"}


@pytest.mark.parametrize("name,model", BROKEN)
def test_counterexample_reproduces_its_tear(name, model):
    spec = BY_NAME[name]
    res = explore(spec, model, 2)
    r = replay(spec, model, 2, RUNS, res)
    assert r.expected in TORN_KINDS
    assert r.runs == RUNS and r.reproduced == RUNS, r.outcomes


def test_sound_protocol_has_nothing_to_replay():
    r = replay(BY_NAME["seqcount"], "weak", 2, 3)
    assert r.runs == 0 and r.expected == "none"


def test_plan_writes_the_witness_after_the_last_data_store():
    res = explore(BY_NAME["v4-parity"], "sc", 2)
    p = plan(res)
    kinds = [(t, k, f) for t, k, f, _ in p.steps]
    assert (0, 1, 6) in kinds  # the writer's witness store
    assert p.witness_load >= 0 and p.steps[p.witness_load][:3] == (1, 0, 6)
    assert len(set(section_requests(3))) == 3


USER = """
format = 1
name = "lazy-reader"
[writer]
section = ["sequence++", "smp_wmb()", "start = NOW", "gfp = GFP", "order = ORDER",
           "dumped = 0", "smp_wmb()", "sequence++"]
[reader]
snapshot = ["s0 = READ_ONCE(sequence)", "if (odd(s0)) retry", "copy",
            "s1 = READ_ONCE(sequence)", "if (s1 != s0) retry", "if (!snap.valid) skip"]
snapshot_sequence = "s0"
[expect]
sc = "never"
x86 = "sometimes"
weak = "sometimes"
[outcomes]
consistent = { expect = "acceptable", reason = "one section" }
"""


@pytest.mark.slow
def test_user_protocol_file_is_checked_and_replayed(tmp_path):
    from kmallocwd.protocols import load_path
    f = tmp_path / "lazy.toml"
    f.write_text(USER)
    spec = load_path(f)
    for m in MODELS:
        res = explore(spec, m, 2)
        assert ("sometimes" if res.sometimes else "never") == spec.expect[m]
        if res.sometimes:
            r = replay(spec, m, 2, 5, res)
            assert r.reproduced == r.runs == 5, r.outcomes
    assert load_text(USER).name == "lazy-reader"
