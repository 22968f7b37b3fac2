"""The C core, single-threaded: slots, writers, readers, the witness."""

from __future__ import annotations

import itertools
import random

import numpy as np
import pytest

from kmallocwd import gfp, protocols
import kmallocwd.stress.classify as classify
from kmallocwd._core import ffi, lib
from kmallocwd.stress.slots import SLOT_SIZE, SlotArray, Snapshot
from kmallocwd.stress.run import C_OUTCOMES

FIELDS = ("sequence", "start", "order", "gfp", "witness")


def test_protocol_table_is_the_c_core_s():
    """The compiled C table lists exactly the protocol files the C emulator runs, in
    the Python table's order (read by number, not looked up by name), and ends there."""
    n = lib.kmw_nr_protocols()
    c_names = [ffi.string(lib.kmw_protocol_name(i)).decode() for i in range(n)]
    assert c_names == list(protocols.C_NAMES)
    assert lib.kmw_protocol_name(n) == ffi.NULL
    assert lib.kmw_protocol_name(-1) == ffi.NULL
    for i, name in enumerate(c_names):
        assert protocols.cid(name) == i


def test_every_protocol_forbids_torn_unless_it_is_the_control():
    for p in protocols.PROTOCOLS:
        for kind in protocols.TORN_KINDS:
            expect = p.outcome(kind).expect
            assert expect == (protocols.INTERESTING if p.name == "none" else protocols.FORBIDDEN)
        assert p.sound == all(v == "never" for v in p.expect.values())


def test_slots_are_cache_line_aligned_and_zeroed():
    s = SlotArray(1000)
    assert SLOT_SIZE == 64
    assert int(ffi.cast("uintptr_t", s.ptr)) % 64 == 0
    v = s.view()
    assert v.shape == (1000,) and v.dtype.itemsize == 64
    assert not v["sequence"].any() and not v["valid"].any() and not v["start"].any()
    # the initial contents are one (virtual) section's: the witness agrees
    assert (v["witness"] == lib.kmw_witness(0, 0, 0, 0)).all()
    assert [f for f in v.dtype.names[:6]] == ["sequence", "valid", "dumped", "start", "order", "gfp"]


def test_numpy_view_is_zero_copy_both_ways():
    s = SlotArray(4)
    v = s.view()
    lib.kmw_start_memalloc_timer(protocols.cid("seqcount"), s.slot(2), gfp.GFP_KERNEL, 3, 12345)
    assert v["valid"][2] == 1 and v["start"][2] == 12345 and v["order"][2] == 3
    assert v["gfp"][2] == gfp.GFP_KERNEL and v["sequence"][2] == 2
    v["dumped"][1] = 7
    assert s.ptr[1].dumped == 7


def test_a_million_slots():
    s = SlotArray(1_000_000)
    v = s.view()
    assert len(v) == 1_000_000
    t = ffi.new("struct kmw_tally *")
    stop = ffi.new("int *")
    lib.kmw_reader_scan(protocols.cid("seqcount"), s.ptr, len(s), 1, ffi.NULL, 0, stop, t)
    assert t.outcome[lib.KMW_O_REJECTED_INVALID] == 1_000_000 and t.scans == 1


def test_bad_slot_counts_are_refused():
    with pytest.raises(ValueError):
        SlotArray(0)
    assert lib.kmw_slots_alloc(2**62) == ffi.NULL


@pytest.mark.parametrize("name", protocols.C_NAMES)
def test_writer_records_outer_request_and_nesting(name):
    p = protocols.cid(name)
    s = SlotArray(1)
    m = s.slot(0)
    lib.kmw_start_memalloc_timer(p, m, gfp.GFP_KERNEL, 2, 1000)
    assert (m.valid, m.sequence, m.start, m.order, m.gfp) == (1, 2, 1000, 2, gfp.GFP_KERNEL)
    # nested: the outer record stays, valid counts the depth
    lib.kmw_start_memalloc_timer(p, m, gfp.GFP_NOFS, 0, 2000)
    assert (m.valid, m.sequence, m.start, m.order, m.gfp) == (2, 2, 1000, 2, gfp.GFP_KERNEL)
    lib.kmw_stop_memalloc_timer(p, m, gfp.GFP_NOFS)
    lib.kmw_stop_memalloc_timer(p, m, gfp.GFP_KERNEL)
    assert m.valid == 0 and m.sequence == 2
    # no __GFP_RECLAIM bit: not tracked at all
    no_reclaim = 0x80220
    assert not gfp.tracked(no_reclaim)
    lib.kmw_start_memalloc_timer(p, m, no_reclaim, 0, 3000)
    assert m.valid == 0 and m.sequence == 2 and m.start == 1000


@pytest.mark.parametrize("name", protocols.C_NAMES)
def test_no_false_positive_whatever_the_values(name):
    """Single-threaded, every accepted snapshot is consistent, for any gfp
    mask, order and jiffies, including values around the wraps."""
    p = protocols.cid(name)
    rng = random.Random(name)
    s = SlotArray(1)
    m = s.slot(0)
    snap = ffi.new("struct memalloc_info *")
    specials = [0, 1, 2**32 - 1, 2**32, 2**63, 2**64 - 1]
    for i in range(3000):
        g = rng.choice([rng.getrandbits(32) | gfp.__GFP_RECLAIM, gfp.GFP_KERNEL, 0xFFFFFFFF])
        order = rng.choice([0, 1, 3, 9, 10, rng.getrandbits(32)])
        start = rng.choice(specials + [rng.getrandbits(64)])
        lib.kmw_start_memalloc_timer(p, m, g, order, start)
        assert lib.kmw_read_slot(p, m, snap, ffi.NULL, ffi.NULL) == 0  # accepted
        assert lib.kmw_classify(snap, ffi.NULL, 0) == lib.KMW_O_CONSISTENT
        assert (snap.start, snap.order, snap.gfp) == (start, order, g)
        lib.kmw_stop_memalloc_timer(p, m, g)


def _section(seq_before: int, start: int, order: int, g: int) -> Snapshot:
    s = SlotArray(1)
    s.ptr[0].sequence = seq_before
    lib.kmw_start_memalloc_timer(protocols.cid("seqcount"), s.slot(0), g, order, start)
    return Snapshot.from_cdata(s.ptr[0])


def _stress_section(k: int, q: int, seq_before: int) -> Snapshot:
    """What a stress write section k making request q leaves in the slot."""
    r = gfp.STRESS_SEQ[q]
    return _section(seq_before, classify.stamp(k, q), r.order, r.gfp)


def test_forged_torn_snapshots_are_caught():
    """Every mix of fields from two write sections is torn unless its values
    are exactly one section's, even when the two sections wrote the same
    start, gfp and order (only the sequence and witness differ)."""
    a = _section(40, 4294667300, 0, gfp.GFP_KERNEL)
    for b in (_section(42, 4294667301, 1, gfp.GFP_NOFS),
              _section(42, 4294667300, 0, gfp.GFP_KERNEL)):
        assert not a.torn() and not b.torn()
        for k in range(1, len(FIELDS)):
            for from_b in itertools.combinations(FIELDS, k):
                mix = {f: getattr(b if f in from_b else a, f) for f in FIELDS}
                forged = Snapshot(valid=1, dumped=0, **mix)
                if any(all(mix[f] == getattr(x, f) for f in FIELDS) for x in (a, b)):
                    continue  # value-identical to one section: nothing to tell apart
                assert forged.torn(), from_b


def _c_outcome(s: Snapshot) -> str:
    c = ffi.new("struct memalloc_info *")
    for f in ("sequence", "valid", "dumped", "start", "order", "gfp", "witness"):
        setattr(c, f, getattr(s, f))
    reqs = ffi.new("struct kmw_request[]", len(gfp.STRESS_SEQ))
    for i, r in enumerate(gfp.STRESS_SEQ):
        reqs[i].gfp, reqs[i].order = r.gfp, r.order
    return C_OUTCOMES[lib.kmw_classify(c, reqs, len(gfp.STRESS_SEQ))]


@pytest.mark.parametrize("field", ["sequence", "start", "order", "gfp", "witness"])
def test_a_tear_in_each_covered_field_is_caught_and_classified(field):
    """Consecutive stress sections of a slot write different values in every
    field; a snapshot with just one field from the other section is torn,
    and of the kind the field says (C and Python classifiers agree)."""
    a = _stress_section(7, 4, 40)
    b = _stress_section(8, 5, 42)
    assert all(getattr(a, f) != getattr(b, f) for f in ("sequence", "start", "order", "gfp"))
    forged = Snapshot(**{**a.__dict__, field: getattr(b, field)})
    kind = {"sequence": protocols.TORN_SEQ, "witness": protocols.TORN_SEQ}.get(
        field, protocols.TORN_MIXED)
    assert forged.outcome() == kind
    assert _c_outcome(forged) == kind
    assert a.outcome() == b.outcome() == _c_outcome(a) == protocols.CONSISTENT


def test_stale_sequence_and_mixed_data_are_told_apart():
    a = _stress_section(7, 4, 40)
    b = _stress_section(8, 5, 42)
    stale = Snapshot(**{**b.__dict__, "sequence": a.sequence, "witness": a.witness})
    assert stale.outcome() == _c_outcome(stale) == protocols.TORN_SEQ
    mixed = Snapshot(**{**a.__dict__, "start": b.start, "gfp": b.gfp})
    assert mixed.outcome() == _c_outcome(mixed) == protocols.TORN_MIXED


def test_snapshot_taken_inside_a_section():
    """Odd sequence: torn-inside if a field is from before the section, but
    consistent once every store of the section is in (the control's old
    false positive: after the witness store, before the final increment)."""
    a = _stress_section(7, 4, 40)
    b = _stress_section(8, 5, 42)
    early = Snapshot(**{**a.__dict__, "sequence": a.sequence + 1, "start": b.start})
    assert early.outcome() == _c_outcome(early) == protocols.TORN_INSIDE
    late = Snapshot(**{**b.__dict__, "sequence": b.sequence - 1})
    assert late.outcome() == _c_outcome(late) == protocols.CONSISTENT


def test_consecutive_sections_of_a_slot_write_new_values():
    """The stress writer loop: on each slot, every section's start is new,
    and gfp and order differ from the slot's previous section's; slots of
    one round differ from each other."""
    n = 8
    s = SlotArray(n)
    idx = np.arange(n, dtype=np.uint32)
    reqs = ffi.new("struct kmw_request[]", len(gfp.STRESS_SEQ))
    for i, r in enumerate(gfp.STRESS_SEQ):
        reqs[i].gfp, reqs[i].order = r.gfp, r.order
    w = ffi.new("struct kmw_writer *")
    w.stamp = 1 << 40
    stop = ffi.new("int *")
    from kmallocwd.stress.clock import make_clock
    clock = make_clock()
    v = s.view()
    seen: set[int] = set()
    last = [None] * n
    for _ in range(60):
        before = v.copy()
        done = lib.kmw_writer_run(protocols.cid("seqcount"), lib.KMW_EMULATOR, s.ptr,
                                  ffi.from_buffer("uint32_t[]", idx), n, reqs,
                                  len(gfp.STRESS_SEQ), n, clock, w, stop, ffi.NULL)
        assert done == n
        for j in range(n):
            if v["sequence"][j] == before["sequence"][j]:
                continue  # the request had no reclaim bit: no section
            cur = (int(v["start"][j]), int(v["gfp"][j]), int(v["order"][j]))
            assert cur[0] not in seen
            seen.add(cur[0])
            if last[j] is not None:
                assert cur[1] != last[j][1] and cur[2] != last[j][2]
            last[j] = cur
            assert Snapshot(**{f: int(v[f][j]) for f in ("sequence", "valid", "dumped",
                            "start", "order", "gfp", "witness")}).outcome() == \
                protocols.CONSISTENT


def test_witness_sees_every_field():
    base = dict(end_seq=10, start=5000, order=0, gfp=gfp.GFP_KERNEL)
    w = lib.kmw_witness(*base.values())
    for key, other in (("end_seq", 12), ("start", 5001), ("order", 1), ("gfp", gfp.GFP_NOFS)):
        args = dict(base, **{key: other})
        assert lib.kmw_witness(*args.values()) != w, key


def test_jiffies_start_at_initial_and_advance():
    from kmallocwd.stress.clock import initial_jiffies, jiffies, make_clock

    c = make_clock(hz=1000)
    j0 = jiffies(c)
    assert j0 - initial_jiffies(1000) in (0, 1)
    assert initial_jiffies(1000) == 2**32 - 300_000
    np.testing.assert_array_less(j0 - 1, jiffies(c) + 1)
