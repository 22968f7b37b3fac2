"""The C core, single-threaded: slots, writers, readers, the witness."""

from __future__ import annotations

import itertools
import random

import numpy as np
import pytest

from kmallocwd import gfp, protocols
from kmallocwd._core import ffi, lib
from kmallocwd.slots import SLOT_SIZE, SlotArray, Snapshot

FIELDS = ("sequence", "start", "order", "gfp", "witness")


def test_protocol_table_is_the_c_core_s():
    assert lib.KMW_NR_PROTOCOLS == len(protocols.PROTOCOLS)
    for name in protocols.NAMES:
        assert ffi.string(lib.kmw_protocol_name(protocols.cid(name))).decode() == name


def test_every_protocol_forbids_torn_unless_it_is_the_control():
    for p in protocols.PROTOCOLS:
        expect = p.outcome(protocols.TORN).expect
        if p.name == "none":
            assert expect is protocols.Expect.INTERESTING
        else:
            assert expect is protocols.Expect.FORBIDDEN
        # a sound protocol cannot be shown to tear by anybody
        assert (not p.outcome(protocols.TORN).shown_by) == p.sound


def test_slots_are_cache_line_aligned_and_zeroed():
    s = SlotArray(1000)
    assert SLOT_SIZE == 64
    assert int(ffi.cast("uintptr_t", s.ptr)) % 64 == 0
    v = s.view()
    assert v.shape == (1000,) and v.dtype.itemsize == 64
    assert not v["sequence"].any() and not v["valid"].any()
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
    st = ffi.new("struct kmw_reader_stats *")
    stop = ffi.new("int *")
    lib.kmw_reader_scan(protocols.cid("seqcount"), s.ptr, len(s), 1, stop, st)
    assert st.rejected_invalid == 1_000_000 and st.scans == 1


def test_bad_slot_counts_are_refused():
    with pytest.raises(ValueError):
        SlotArray(0)
    assert lib.kmw_slots_alloc(2**62) == ffi.NULL


@pytest.mark.parametrize("name", protocols.NAMES)
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


@pytest.mark.parametrize("name", protocols.NAMES)
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
        assert not lib.kmw_snapshot_torn(snap)
        assert (snap.start, snap.order, snap.gfp) == (start, order, g)
        lib.kmw_stop_memalloc_timer(p, m, g)


def _section(seq_before: int, start: int, order: int, g: int) -> Snapshot:
    s = SlotArray(1)
    s.ptr[0].sequence = seq_before
    lib.kmw_start_memalloc_timer(protocols.cid("seqcount"), s.slot(0), g, order, start)
    return Snapshot.from_cdata(s.ptr[0])


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


def test_snapshot_taken_inside_a_section_is_torn():
    a = _section(40, 100, 0, gfp.GFP_KERNEL)
    mid = Snapshot(sequence=a.sequence + 1, valid=0, dumped=0, start=200, order=a.order,
                   gfp=a.gfp, witness=a.witness)
    assert mid.torn()


def test_witness_sees_every_field():
    base = dict(end_seq=10, start=5000, order=0, gfp=gfp.GFP_KERNEL)
    w = lib.kmw_witness(*base.values())
    for key, other in (("end_seq", 12), ("start", 5001), ("order", 1), ("gfp", gfp.GFP_NOFS)):
        args = dict(base, **{key: other})
        assert lib.kmw_witness(*args.values()) != w, key


def test_jiffies_start_at_initial_and_advance():
    from kmallocwd.clock import initial_jiffies, jiffies, make_clock

    c = make_clock(hz=1000)
    j0 = jiffies(c)
    assert j0 - initial_jiffies(1000) in (0, 1)
    assert initial_jiffies(1000) == 2**32 - 300_000
    np.testing.assert_array_less(j0 - 1, jiffies(c) + 1)
