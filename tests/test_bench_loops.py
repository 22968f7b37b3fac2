"""The benchmarks' C read loop (protocol mode, csrc/loops.h): it reads what
kmw_read_slot reads, and counts every read it does; and both do what the
protocol's file says its reader does (protocols/interp.py runs the file)."""

from __future__ import annotations

import threading
import time

import pytest

from kmallocwd import protocols
from kmallocwd._core import ffi, lib
from kmallocwd.gfp import GFP_KERNEL
from kmallocwd.protocols import interp
from kmallocwd.stress.slots import SlotArray

ACCEPT, REJECT_ODD, REJECT_INVALID, ABORTED = (lib.KMW_ACCEPT, lib.KMW_REJECT_ODD,
                                              lib.KMW_REJECT_INVALID, lib.KMW_ABORTED)
JIFFIES = 4_294_667_296  # the kernel's INITIAL_JIFFIES at HZ=1000


def _in_thread(call):
    """Start call() in a thread; return it once the thread is about to call."""
    ready = threading.Event()

    def run() -> None:
        ready.set()
        call()

    t = threading.Thread(target=run)
    t.start()
    assert ready.wait(10)
    return t


def _bench_one(proto: str, slots: SlotArray, expire: int = 0):
    """One read by kmw_bench_reads in a thread; a reader still spinning after
    0.2 s is stopped.  Returns (outcome, counts), outcome ABORTED if stopped."""
    counts = ffi.new("struct kmw_tally *")
    stop = ffi.new("int *")
    el = ffi.new("uint64_t *")
    done = []
    t = _in_thread(lambda: done.append(lib.kmw_bench_reads(
        protocols.cid(proto), slots.ptr, 1, 1, expire, stop, counts, el)))
    t.join(0.5)  # a spinning reader is stopped after this
    lib.kmw_request_stop(stop)
    t.join(10)
    assert not t.is_alive()
    if done[0] == 0:
        assert counts.retries > 0
        return ABORTED, counts
    assert done[0] == 1
    outcome = {(1, 0, 0): ACCEPT, (0, 1, 0): REJECT_ODD, (0, 0, 1): REJECT_INVALID}[
        (counts.outcome[lib.KMW_O_ACCEPTED], counts.outcome[lib.KMW_O_REJECTED_ODD],
         counts.outcome[lib.KMW_O_REJECTED_INVALID])]
    return outcome, counts


def _read_slot(proto: str, slots: SlotArray):
    """One read by kmw_read_slot, with a stop already requested, so that a
    spinning reader gives up after its first 1024 retries."""
    snap = ffi.new("struct memalloc_info *")
    stop = ffi.new("int *", 1)
    r = lib.kmw_read_slot(protocols.cid(proto), slots.ptr, snap, ffi.NULL, stop)
    return r, snap


def _started(proto: str) -> SlotArray:
    s = SlotArray(1)
    lib.kmw_start_memalloc_timer(protocols.cid(proto), s.ptr, GFP_KERNEL, 2, JIFFIES)
    return s


def _odd(proto: str) -> SlotArray:
    s = _started(proto)
    s.ptr.sequence += 1  # a write section in progress
    return s


def _locked(proto: str) -> SlotArray:
    s = _started(proto)
    s.ptr.rwlock = 0xFF  # a writer holds the slot's lock (locks.h, KMW_QW_LOCKED)
    return s


STATES = {"zeroed": lambda p: SlotArray(1), "started": _started, "odd": _odd,
          "write-locked": _locked}


def _expected(proto: str, state: str, slots: SlotArray) -> int:
    """What the protocol's file says its reader does with this slot alone."""
    m = slots.ptr
    fields = {f: getattr(m, f) for f in ("sequence", "valid", "dumped", "start", "order", "gfp")}
    held = frozenset({"slot"}) if state == "write-locked" else frozenset()
    return {interp.ACCEPT: ACCEPT, protocols.REJECTED_ODD: REJECT_ODD,
            protocols.REJECTED_INVALID: REJECT_INVALID, interp.SPINS: ABORTED}[
        interp.read_alone(protocols.get(proto), fields, held)]


def test_the_states_tell_the_readers_apart() -> None:
    """The states below make different built-ins do different things, so the
    test below compares something: v3 refuses an odd slot, seqcount spins
    on it, none copies it; only slot-rwlock waits for the slot's lock."""
    got = {(p, st): _expected(p, st, make(p)) for p in protocols.C_NAMES
           for st, make in STATES.items()}
    assert got[("v3", "odd")] == REJECT_ODD
    assert got[("seqcount", "odd")] == ABORTED
    assert got[("none", "odd")] == ACCEPT
    assert got[("slot-rwlock", "write-locked")] == ABORTED
    assert got[("v2-rwlock", "write-locked")] == ACCEPT
    assert all(got[(p, "zeroed")] == REJECT_INVALID for p in protocols.C_NAMES)


@pytest.mark.parametrize("proto", protocols.C_NAMES)
def test_bench_reader_is_the_protocols_reader(proto: str) -> None:
    # The states tell the readers apart: only the v2 reader waits for the lock,
    # v3 and v4-parity refuse an odd sequence, the seqcount family spins on
    # it, R-none copies it anyway.
    for name, make in STATES.items():
        expected = _expected(proto, name, make(proto))
        assert _read_slot(proto, make(proto))[0] == expected, f"{proto}, {name} slot"
        assert _bench_one(proto, make(proto))[0] == expected, f"{proto}, {name} slot"


@pytest.mark.parametrize("proto", protocols.C_NAMES)
def test_accepted_snapshot_is_the_record(proto: str) -> None:
    s = _started(proto)
    r, snap = _read_slot(proto, s)
    assert r == ACCEPT
    out, counts = _bench_one(proto, s, expire=JIFFIES)
    assert out == ACCEPT
    assert counts.stalling == 1  # time_after_eq(expire, start), expire == start
    folded = snap.start ^ (snap.gfp << 32 | snap.order) ^ snap.sequence
    assert counts.sink == folded
    _, counts = _bench_one(proto, s, expire=JIFFIES - 1)
    assert counts.stalling == 0


def test_round_robin_counts_every_read() -> None:
    s = SlotArray(3)
    c = protocols.cid("seqcount")
    lib.kmw_start_memalloc_timer(c, s.ptr + 1, GFP_KERNEL, 0, JIFFIES)
    counts = ffi.new("struct kmw_tally *")
    stop = ffi.new("int *")
    el = ffi.new("uint64_t *")
    n = 3 * 2000 + 1  # past the stop poll at 1023, ending on slot 0
    assert lib.kmw_bench_reads(c, s.ptr, 3, n, 0, stop, counts, el) == n
    assert (counts.outcome[lib.KMW_O_ACCEPTED], counts.outcome[lib.KMW_O_REJECTED_ODD],
            counts.outcome[lib.KMW_O_REJECTED_INVALID]) == (2000, 0, 4001)
    assert counts.retries == 0
    assert el[0] > 0


def test_stop_requested_before_reads_nothing() -> None:
    s = _started("v3")
    counts = ffi.new("struct kmw_tally *")
    stop = ffi.new("int *", 1)
    el = ffi.new("uint64_t *")
    assert lib.kmw_bench_reads(protocols.cid("v3"), s.ptr, 1, 100, 0, stop, counts, el) == 0
    assert counts.outcome[lib.KMW_O_ACCEPTED] == 0


def test_stop_ends_a_long_loop() -> None:
    s = _started("seqcount")
    counts = ffi.new("struct kmw_tally *")
    stop = ffi.new("int *")
    el = ffi.new("uint64_t *")
    done = []
    t = _in_thread(lambda: done.append(lib.kmw_bench_reads(
        protocols.cid("seqcount"), s.ptr, 1, 1 << 62, 0, stop, counts, el)))
    time.sleep(0.05)
    lib.kmw_request_stop(stop)
    t.join(10)
    assert not t.is_alive()
    assert 0 < done[0] == counts.outcome[lib.KMW_O_ACCEPTED]


# ---- csrc/reference.c: the benchmarks' yardsticks ----

def test_reference_loop_is_the_seeds_start_and_stop() -> None:
    from kmallocwd.stress.clock import make_clock

    s = SlotArray(1)
    stop = ffi.new("int *")
    el = ffi.new("uint64_t *")
    clock = make_clock(1000)
    n = 1000  # past the stop poll and clock tick at 256
    assert lib.kmw_reference_run(s.ptr, GFP_KERNEL, 3, n, clock, stop, el) == n
    m = s.ptr
    assert (m.sequence, m.valid, m.dumped) == (2 * n, 0, 0)  # one section per pair
    assert (m.gfp, m.order) == (GFP_KERNEL, 3)
    assert m.start == lib.kmw_jiffies(clock) or m.start + 1 == lib.kmw_jiffies(clock)
    assert m.witness == lib.kmw_witness(0, 0, 0, 0)  # no emulator field is touched
    assert el[0] > 0
    # nested: valid stays up, no section; no __GFP_RECLAIM: nothing at all
    m.valid = 1
    assert lib.kmw_reference_run(s.ptr, GFP_KERNEL, 0, 10, clock, stop, el) == 10
    assert (m.sequence, m.valid) == (2 * n, 1)
    m.valid = 0
    assert lib.kmw_reference_run(s.ptr, 0x10, 0, 10, clock, stop, el) == 10
    assert (m.sequence, m.valid) == (2 * n, 0)


def test_reference_loop_stops() -> None:
    from kmallocwd.stress.clock import make_clock

    s = SlotArray(1)
    stop = ffi.new("int *", 1)
    el = ffi.new("uint64_t *")
    done = lib.kmw_reference_run(s.ptr, GFP_KERNEL, 0, 1 << 40, make_clock(1000), stop, el)
    assert done == 256  # the first poll


def test_copy_bandwidth() -> None:
    el = ffi.new("uint64_t *")
    assert lib.kmw_copy_bandwidth(1 << 20, 3, el) == 3 << 20
    assert el[0] > 0
    assert lib.kmw_copy_bandwidth(0, 3, el) == 0 and el[0] == 0
