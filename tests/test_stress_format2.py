"""Stress on format-2 protocols (their own struct, compiled from the file):
the torn check is exact for any declared struct (a snapshot whose covered
fields come from one section is never called torn, one that mixes two
sections always is), sound shapes are not accused, broken ones are caught."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from kmallocwd import protocols
from kmallocwd.gfp import STRESS_SEQ
from kmallocwd.protocols.backend import backend
from kmallocwd.protocols.layout import layout
from kmallocwd.stress.run import C_OUTCOMES, StressConfig, _requests, run_stress
from kmallocwd.stress.slots import SlotArray

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, settings, strategies as st  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = {"latch": ROOT / "examples" / "latch.toml",
            "three-fields": ROOT / "examples" / "three-fields.toml",
            "seqcount-format2": ROOT / "examples" / "seqcount-format2.toml",
            # no 64-bit field: the section named by narrow fields and a counter
            "narrow": ROOT / "tests" / "data" / "narrow.toml"}
BUILTIN2 = [p.name for p in protocols.PROTOCOLS if p.format == 2]
ALL2 = BUILTIN2 + list(EXAMPLES)


def spec_of(name: str):
    return protocols.load_path(str(EXAMPLES[name])) if name in EXAMPLES else protocols.get(name)


def test_the_layout_is_the_compilers():
    for name in ALL2:
        be = backend(spec_of(name))
        assert layout(be.spec).slot_size == be.lib.kmw_slot_size(be.id), name


# ---- exactness: the real C classifier on slots written from Python ----------

class Slots:
    """Slots of one format-2 protocol, written field by field, read by the
    protocol's own reader in the C scan loop."""

    def __init__(self, name: str, n: int = 4):
        self.be = backend(spec_of(name))
        self.spec, self.lay = self.be.spec, layout(self.be.spec)
        self.arr = SlotArray(n, self.be.ffi, self.be.lib, self.lay.slot_size)
        self.raw = np.frombuffer(self.be.ffi.buffer(self.arr.ptr, n * self.lay.slot_size),
                                 dtype=np.uint8)
        self.reqs = _requests(self.be.ffi, STRESS_SEQ)
        self.stop = self.be.ffi.new("int *")

    def put(self, slot: int, name: str, value: int, copy: int | None = None) -> None:
        w = self.lay.widths[name]
        offs = self.lay.offsets[name]
        for i, off in enumerate(offs):
            if copy is None or copy == i:
                at = slot * self.lay.slot_size + off
                self.raw[at:at + w] = np.frombuffer(
                    (value % (1 << 8 * w)).to_bytes(w, "little"), dtype=np.uint8)

    def put_section(self, slot: int, name: str, k: int) -> None:
        self.put(slot, name, self.value(name, k, slot))

    def value(self, name: str, k: int, slot: int) -> int:
        """What section k of ``slot`` leaves in ``name`` (loops2.h)."""
        n = self.spec.counters.get(name)
        if n:
            return n * k
        q = (k + slot) % len(STRESS_SEQ)
        for op in reversed(self.spec.section):
            if op.kind == "store" and op.field == name:
                return {"STAMP": k, "NOW": (k << 8) | q, "GFP": STRESS_SEQ[q].gfp,
                        "ORDER": STRESS_SEQ[q].order}.get(op.value, None) or int(
                            op.value if op.value.isdigit() else 0)
        return 0

    def finish(self, slot: int, k: int) -> None:
        """The rest of the slot as a finished section k with the frame's
        flag set (a task inside its allocation), and the section number."""
        for f in self.spec.fields:
            if f.name not in self.spec.covered:
                self.put_section(slot, f.name, k)
        if self.spec.frame == "flag":
            self.put(slot, self.spec.flag, 1)
        self.put_section_number(slot, 2 * k)

    def put_section_number(self, slot: int, v: int) -> None:
        at = slot * self.lay.slot_size + self.lay.section
        self.raw[at:at + 8] = np.frombuffer(v.to_bytes(8, "little"), dtype=np.uint8)

    def scan(self) -> dict[str, int]:
        t = self.be.ffi.new("struct kmw_tally *")
        self.be.lib.kmw_reader_scan(self.be.id, self.arr.ptr, self.arr.n, 1, self.reqs,
                                    len(STRESS_SEQ), self.stop, t)
        return {o: int(t.outcome[i]) for i, o in enumerate(C_OUTCOMES)}


@pytest.mark.parametrize("name", ALL2)
@settings(max_examples=60, deadline=None)
@given(k=st.integers(1, 2**40), slot=st.integers(0, 3), running=st.booleans())
def test_one_section_is_never_torn_whatever_the_values(name, k, slot, running):
    """Any section number (past every narrow field's wrap), the read seeing
    only that section or it and the next one (running: a section in progress,
    so the window is k..k+1)."""
    s = Slots(name)
    for c in s.spec.covered:
        s.put_section(slot, c, k)
    s.finish(slot, k)
    if running:
        s.put_section_number(slot, 2 * k + 1)
    got = s.scan()
    assert got["consistent"] >= 1, (name, k, got)
    assert not any(got[t] for t in protocols.TORN_KINDS), (name, k, got)


@pytest.mark.parametrize("name", ALL2)
@settings(max_examples=60, deadline=None)
@given(k=st.integers(2, 2**31), back=st.integers(1, 200), data=st.data())
def test_two_sections_are_always_torn(name, k, back, data):
    s = Slots(name, n=1)
    spec = s.spec
    # a field that names its section within `back` sections: a counter or
    # a stamp at least 16 bits wide (GFP and ORDER repeat with the requests)
    naming = [c for c in spec.covered if c in spec.counters or any(
        op.kind == "store" and op.field == c and op.value in ("NOW", "STAMP")
        for op in spec.section)]
    other = data.draw(st.sampled_from(naming))
    old = max(k - back, 1)
    for c in spec.covered:
        s.put_section(0, c, k)
    s.finish(0, k)
    s.put(0, other, s.value(other, old, 0))
    if s.value(other, old, 0) % (1 << 8 * s.lay.widths[other]) == \
            s.value(other, k, 0) % (1 << 8 * s.lay.widths[other]):
        return  # the field is too narrow to tell these two apart
    if all(s.value(c, k, 0) == s.value(c, old, 0) for c in spec.covered if c != other):
        return  # GFP and ORDER repeat with the requests: section `old` wrote all of it
    got = s.scan()
    torn = sum(got[t] for t in protocols.TORN_KINDS)
    # the reader accepts it (its checks look at nothing the mix changed) ...
    assert got["consistent"] + torn == 1, (name, other, k, old, got)
    # ... and the scan calls it torn
    assert torn == 1, (name, other, k, old, got)


# ---- real threads: both sides --------------------------------------------------

def runs_until(cfg: StressConfig, done, max_runs: int = 30):
    from kmallocwd.stress.run import combine
    runs = []
    while len(runs) < max_runs:
        runs.append(run_stress(cfg))
        if done(combine(runs)):
            break
    return combine(runs)


def _cfg(name: str, **kw) -> StressConfig:
    path = str(EXAMPLES[name]) if name in EXAMPLES else None
    return StressConfig(protocol=name if path is None else "v3", protocol_file=path,
                        threads=1, slots=1, alloc_ns=100, **kw)


SOUND2 = [n for n in ALL2 if spec_of(n).sound]
SC_BROKEN2 = [n for n in ALL2 if spec_of(n).expect["sc"] == "sometimes"]


def test_both_sides_are_covered():
    assert {"latch", "three-fields", "seqcount-format2"} <= set(SOUND2)
    assert {"v4", "v8-in-flight"} <= set(SC_BROKEN2)


@pytest.mark.parametrize("name", SOUND2)
def test_a_sound_format2_protocol_is_never_accused(name):
    """No tear over runs that add up to 200 overlapping reads (up to 30
    runs of 0.5 s on a loaded machine)."""
    total = runs_until(_cfg(name, duration=0.5),
                       lambda t: t.overlaps >= 200 and t.accepted >= 10_000)
    assert total.torn == 0 and total.forbidden_seen() == []
    assert total.overlaps >= 200 and total.accepted >= 10_000


@pytest.mark.parametrize("name", SC_BROKEN2)
def test_a_broken_format2_protocol_is_caught_tearing(name):
    """Up to 40 runs of 2 s, each stopped at its first tear; the first torn
    snapshot names the fields the reader copied."""
    total = runs_until(_cfg(name, duration=2.0, until_torn=True), lambda t: t.torn > 0,
                       max_runs=40)
    assert total.torn > 0, f"no tear in 40 runs of {name}"
    assert total.first_torn_kind in protocols.TORN_KINDS
    snap = total.first_torn.to_dict()
    assert set(spec_of(name).covered) <= set(snap)
    lo, hi = snap["sections_seen"]
    assert 0 <= lo <= hi
