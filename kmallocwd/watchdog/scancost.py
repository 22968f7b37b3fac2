"""The watchdog's own cost: one scan of N slots, in C (csrc/watchdog.c).

    python -m kmallocwd.cli.scancost [--slots 10000 1000000] [--repeat 21]

One scan is what kmallocwd() does to every task when it wakes up, measured
in two parts on a quiet slot array (no writer running):

- ``due``:   the first while(1) loop, one full pass (no slot due yet, so
             it does not stop early): a plain read of valid and start;
- ``count``: the counting pass, is_stalling_task() with the protocol's
             reader on every slot, every slot valid and stalling (the worst
             case: each reader copies and accepts its slot), plus the
             emulator's witness check of each accepted snapshot.

Each figure is the median of ``--repeat`` timed calls (CLOCK_MONOTONIC
around the C call), after one untimed warm-up call.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

from kmallocwd import protocols
from kmallocwd._core import ffi, lib
from kmallocwd.stress.clock import jiffies, make_clock
from kmallocwd.gfp import STRESS_MIX
from kmallocwd.stress.slots import SlotArray
from kmallocwd.watchdog.carith import ulong


@dataclass(frozen=True)
class ScanCost:
    protocol: str
    slots: int
    repeat: int
    due_ms: float  # medians
    count_ms: float
    stalling: int  # what the counting pass found (all of them)

    @property
    def scan_ms(self) -> float:
        return self.due_ms + self.count_ms

    @property
    def ns_per_slot(self) -> float:
        return self.scan_ms * 1e6 / self.slots


def fill(slots: SlotArray, proto: int, jiffies: int) -> None:
    """Every slot valid: one start_memalloc_timer() each, realistic requests."""
    tracked = [r for r in STRESS_MIX if r.gfp & 0x2400000]
    for i in range(len(slots)):
        r = tracked[i % len(tracked)]
        lib.kmw_start_memalloc_timer(proto, slots.ptr + i, r.gfp, r.order, jiffies)


def _time_ns(fn) -> int:
    t0 = time.perf_counter_ns()
    fn()
    return time.perf_counter_ns() - t0


def measure(protocol: str, n: int, repeat: int, timeout: int = 10_000) -> ScanCost:
    proto = protocols.cid(protocol)
    clock = make_clock(1000)
    start = jiffies(clock)
    slots = SlotArray(n)
    fill(slots, proto, start)
    # The first loop with nothing due: jiffies == start, so t stays timeout.
    due = [0] * (repeat + 1)
    for i in range(repeat + 1):
        due[i] = _time_ns(lambda: lib.kmw_watchdog_due(slots.ptr, n, timeout, start))
    assert lib.kmw_watchdog_due(slots.ptr, n, timeout, start) == timeout
    # The counting pass with every slot stalling: expire after every start.
    expire = ulong(start + 1)
    counts = [0] * (repeat + 1)
    stalling = 0
    for i in range(repeat + 1):
        r = ffi.new("struct kmw_tally *")
        counts[i] = _time_ns(lambda: lib.kmw_watchdog_count(proto, slots.ptr, n, expire, r))
        stalling = int(r.stalling)
    return ScanCost(protocol, n, repeat, statistics.median(due[1:]) / 1e6,
                    statistics.median(counts[1:]) / 1e6, stalling)
