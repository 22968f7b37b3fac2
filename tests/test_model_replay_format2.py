"""Replay of format-2 protocols (csrc/replay.c, kmw_replay2_thread()): every
counterexample of a format-2 built-in runs on real threads over a byte
buffer laid out with the declared fields and reproduces its tear, and the
sound shapes (the latch, a user's three-field struct) have none to replay."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("kmallocwd._kmallocwd")

from kmallocwd.cli.main import main  # noqa: E402
from kmallocwd.model import MODELS, explore  # noqa: E402
from kmallocwd.model.litmus import ablation_variants  # noqa: E402
from kmallocwd.model.replay import FENCE, LOAD, STORE, replay  # noqa: E402
from kmallocwd.model.replay2 import (GARBAGE, Plan2, judge2, layout, plan2,  # noqa: E402
                                     run_plan2, stamp_value)
from kmallocwd.model.report import trace_rows  # noqa: E402
from kmallocwd.protocols import PROTOCOLS, load_path  # noqa: E402
from kmallocwd.protocols.spec import TORN_KINDS, Kind, load_text  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
RUNS = 10
F2 = [s for s in PROTOCOLS if s.format == 2]
BROKEN = [(s.name, m) for s in F2 for m in MODELS if s.expect[m] == "sometimes"]
SOUND = [ROOT / "examples" / "latch.toml", ROOT / "examples" / "three-fields.toml"]


def test_the_broken_format_2_builtins_are_listed():
    names = {n for n, _ in BROKEN}
    assert {"v5-no-barriers", "v8-in-flight"} <= names
    assert ("v8-in-flight", "sc") in BROKEN and ("v5-no-barriers", "weak") in BROKEN


@pytest.mark.parametrize("name,model", BROKEN)
def test_counterexample_reproduces_its_tear(name, model):
    spec = next(s for s in F2 if s.name == name)
    res = explore(spec, model, 2)
    r = replay(spec, model, 2, RUNS, res)
    assert r.expected == res.witness[2].outcome and r.expected in TORN_KINDS
    assert r.runs == RUNS and r.reproduced == RUNS, r.outcomes
    assert set(r.last_snapshot) == {f"snap.{f}" for f in spec.covered}


@pytest.mark.parametrize("path", SOUND, ids=lambda p: p.stem)
def test_the_sound_shapes_have_nothing_to_replay(path):
    spec = load_path(path)
    for m in MODELS:
        assert not explore(spec, m, 2).sometimes
        r = replay(spec, m, 2, 3)
        assert r.runs == 0 and r.expected == "none"


@pytest.mark.parametrize("path", SOUND, ids=lambda p: p.stem)
def test_their_ablated_variants_reproduce_what_the_model_finds(path):
    """The other side: each variant without a needed barrier is caught by
    the model, and its counterexample tears on real threads."""
    spec = load_path(path)
    caught = 0
    for _label, v in ablation_variants(spec):
        for m in MODELS:
            r = replay(v, m, 2, 3)
            if r.runs:
                caught += 1
                assert r.reproduced == r.runs, (v.name, m, r.outcomes)
    assert caught >= 3


def test_the_buffer_is_stress_s_slot_at_natural_alignment():
    text = (ROOT / "examples" / "latch.toml").read_text().replace(
        '{ name = "sequence", bits = 32 },',
        '{ name = "sequence", bits = 32 }, { name = "b", bits = 8 }, '
        '{ name = "h", bits = 16, copies = 2 },')
    spec = load_text(text, "mixed.toml")
    slots, size = layout(spec)
    names = [n for f in spec.fields for n in ([f.name] if f.copies == 1 else
                                               [f"{f.name}[0]", f"{f.name}[1]"])]
    assert sorted(slots) == sorted(names)
    spans = sorted((s.offset, s.offset + s.width) for s in slots.values())
    for (a0, a1), (b0, _) in zip(spans, spans[1:]):
        assert a1 <= b0  # no overlap
    for name, s in slots.items():
        assert s.width == next(f.bits for f in spec.fields if f.name == name.split("[")[0]) // 8
        assert s.offset % s.width == 0 and s.offset + s.width <= size
    # the one-copy fields first, in order; then copy[0]'s and copy[1]'s fields
    assert slots["sequence"].offset == 0 and slots["b"].offset == 4
    assert slots["h[0]"].offset == 8 and slots["start[0]"].offset == 16
    assert slots["start[1]"].offset == slots["start[0]"].offset + 24
    assert size % 64 == 0


def test_the_index_picks_the_copy_on_real_threads():
    """kmw_replay2_thread(): a load through the latch's index reads the copy
    the loaded sequence's low bit names (an address dependency in C)."""
    spec = load_path(ROOT / "examples" / "latch.toml")
    slots, size = layout(spec)
    seq, s0, s1 = slots["sequence"], slots["start[0]"], slots["start[1]"]
    for sequence, want in ((1, 0x2222), (2, 0x1111)):
        steps = [(0, STORE, s0.offset, 8, 0x1111, -1, 0),
                 (0, STORE, s1.offset, 8, 0x2222, -1, 0),
                 (0, FENCE, 0, 0, 2, -1, 0),
                 (0, STORE, seq.offset, 4, sequence, -1, 0),
                 (1, LOAD, seq.offset, 4, 0, -1, 0),
                 (1, LOAD, s0.offset, 8, 0, 4, s1.offset - s0.offset)]
        vals = run_plan2(Plan2(steps, {4: ("s0", "sequence"), 5: ("snap.start", "start")},
                               [], size))
        assert vals == {"s0": sequence, "snap.start": want}


def test_a_latch_counterexample_loads_through_the_index():
    spec = load_path(ROOT / "examples" / "latch.toml")
    variant = next(v for label, v in ablation_variants(spec) if "smp_rmb" in label)
    res = explore(variant, "weak", 2)
    p = plan2(variant, res)
    indexed = [s for s in p.steps if s[1] == LOAD and s[5] >= 0]
    assert len(indexed) == 3  # start, order, gfp through copy[s0 & 1]
    for s in indexed:
        assert p.steps[s[5]][1] == LOAD and p.loads[s[5]] == ("s0", "sequence")
    r = replay(variant, "weak", 2, RUNS, res)
    assert r.expected in TORN_KINDS and r.reproduced == RUNS, r.outcomes
    # the trace names the copy each indexed load really read
    rows = trace_rows(res)
    s0 = next(x.value for x in rows if x.kind == "load" and x.event.var == "s0")
    for x in rows:
        if x.kind == "load" and x.event.alt is not None:
            assert x.loc == f"{x.event.loc.split('[')[0]}[{s0 & 1}]"
            assert f"reads {x.loc} ==" in x.value_text


def test_a_value_no_section_stored_is_not_taken_for_a_tear():
    spec = next(s for s in F2 if s.name == "v8-in-flight")
    res = explore(spec, "sc", 2)
    p = plan2(spec, res)
    vals = run_plan2(p)
    assert judge2(spec, p, 2, vals)[0] == res.witness[2].outcome
    bad = dict(vals, **{"snap.start": stamp_value(spec, "start", 1) >> 8})  # a misread
    assert judge2(spec, p, 2, bad)[0] == GARBAGE
    # a stamp is unique to its field and section, and carries the section up top
    seen = {stamp_value(spec, f, k) for f in ("start", "order", "gfp") for k in (1, 2)}
    assert len(seen) == 6
    assert stamp_value(spec, "start", 2) >> 56 == 2


def test_replay_command_takes_a_format_2_file(capsys):
    spec = next(s for s in F2 if s.name == "v8-in-flight")
    kind = explore(spec, "sc", 2).witness[2].outcome
    assert main(["replay", "-p", "v8-in-flight", "-m", "sc", "-n", "3"]) == 0
    out = capsys.readouterr().out
    assert "real buffer: snap.sequence=" in out and f"3/3 runs classified {kind}" in out
    assert main(["replay", "--protocol-file", str(SOUND[0]), "-n", "2"]) == 0
    assert capsys.readouterr().out.count("nothing to replay") == 3


def test_the_reader_decides_on_the_real_values_and_the_traces_expired():
    spec = next(s for s in F2 if s.name == "v8-in-flight")
    res = explore(spec, "sc", 2)
    p = plan2(spec, res)
    vals = run_plan2(p)
    first_expired = next(op for op in spec.prologue if op.kind == Kind.COND
                         and "expired" in op.text)
    p.conds = [0] * len(p.conds)  # a variant whose expired() is false: the reader skips
    assert judge2(spec, p, 2, vals)[0] == f"skip@{first_expired.line}"
    # a flag read as 0 skips too, whatever the rest
    p.conds = [1] * len(p.conds)
    assert judge2(spec, p, 2, dict(vals, f=0))[0].startswith("skip@")
