"""The watchdog's scan of N slots, N = 10^3 ... 10^6, per protocol, in ns
per slot (one reader thread, no writer).  Three series:

* read, valid slots: every slot inside an allocation (valid 1, a real
  record), so every read is the protocol's full read; kmw_bench_reads, the
  reader and the patch's time check only.  The headline series.
* read, idle slots: every slot zeroed (valid 0), the common case: the reader
  stops at the valid check (R-none copies the slot first).
* checked, valid slots: the emulator's own watchdog scan, kmw_reader_scan,
  which also checks each snapshot's torn-read witness and tallies it.

ns per slot staying flat as N grows means the scan stays linear; a step up
past a cache size (64 B per slot: 10^4 slots = 640 KiB, 10^6 = 64 MiB) is
memory bandwidth, still linear.
"""

from __future__ import annotations

import gc

import pytest

import harness
from harness import PROTOCOLS, SCAN_SLOTS, Recorder, Settings
from kmallocwd import protocols
from kmallocwd._core import ffi, lib
from kmallocwd.stress.slots import SlotArray

READS = 1 << 21  # slot reads per round, at least one whole scan

READ, CHECKED = "read", "checked"
VALID, IDLE = "valid", "idle"
SERIES = ((READ, VALID), (READ, IDLE), (CHECKED, VALID))
# The protocols of one (N, series) run back to back: ratios side by side.
CASES = [(p, n, m, s) for n in SCAN_SLOTS for m, s in SERIES for p in PROTOCOLS]

_cache: dict[tuple[str, int, str], SlotArray] = {}


def _slots(proto: str, n: int, state: str, clock) -> SlotArray:
    """One slot array at a time (10^6 slots are 64 MiB)."""
    key = (proto, n, state)
    if key not in _cache:
        _cache.clear()
        gc.collect()
        _cache[key] = harness.valid_slots(proto, n, clock) if state == VALID else SlotArray(n)
    return _cache[key]


def _id(case: tuple) -> str:
    p, n, m, s = case
    return f"{p}-N{n}-{m}-{s}"


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_scan(benchmark, kmw: Settings, case) -> None:
    proto, n, mode, state = case
    benchmark.group = f"scan {mode} {state} N={n}"
    clock = harness.new_clock()
    slots = _slots(proto, n, state, clock)
    cid = protocols.cid(proto)
    passes = max(1, kmw.ops(READS) // n)
    rec = Recorder(benchmark, kmw, kind="scan", role="scan", protocol=proto, slots=n,
                   threads=None, series=mode, slot_state=state, op="slot read",
                   passes=passes)
    stop = ffi.new("int *")
    if mode == READ:
        counts = ffi.new("struct kmw_tally *")
        el = ffi.new("uint64_t *")
        exp = harness.expire(clock)

        def target() -> None:
            done = lib.kmw_bench_reads(cid, slots.ptr, n, n * passes, exp, stop, counts, el)
            rec.add(int(done), int(el[0]))

        rec.pedantic(target)
        benchmark.extra_info["outcomes"] = harness.reader_counts_dict(counts)
    else:
        st = ffi.new("struct kmw_tally *")
        reqs = harness.one_request()

        def target() -> None:
            before = st.elapsed_ns
            lib.kmw_reader_scan(cid, slots.ptr, n, passes, reqs, 1, stop, st)
            rec.add(n * passes, st.elapsed_ns - before)

        rec.pedantic(target)
        benchmark.extra_info["outcomes"] = harness.scan_stats_dict(st)


def teardown_module() -> None:
    _cache.clear()
