"""What driving the protocols from Python costs: one cffi call per start and
one per stop (kmw_start_memalloc_timer / kmw_stop_memalloc_timer), and one
per watchdog read (kmw_read_slot), on one slot, timed in Python around a
loop of such calls (perf_counter_ns), so the figure is everything a Python
caller pays: the interpreter's loop, the cffi calls and the C work.
Compare with the matrix's writer-alone / reader-alone at slots=1, threads=1,
the same work timed inside one C loop.
"""

from __future__ import annotations

import time

import pytest

import harness
from harness import PROTOCOLS, PY_READER, PY_WRITER, Recorder, Settings
from kmallocwd import protocols
from kmallocwd._core import ffi, lib
from kmallocwd.stress.clock import jiffies
from kmallocwd.gfp import GFP_KERNEL
from kmallocwd.stress.slots import SlotArray

PAIRS = 1 << 16  # start+stop pairs per round
READS = 1 << 16  # reads per round


def _info(role: str, proto: str, op: str) -> dict:
    return {"kind": "python", "role": role, "protocol": proto, "slots": 1, "threads": 1,
            "op": op}


@pytest.mark.parametrize("proto", PROTOCOLS)
def test_py_writer_pair(benchmark, kmw: Settings, proto: str) -> None:
    benchmark.group = PY_WRITER
    rec = Recorder(benchmark, kmw, **_info(PY_WRITER, proto, "start+stop pair, 2 cffi calls"))
    slots = SlotArray(1)
    clock = harness.new_clock()
    n = kmw.ops(PAIRS)

    def target() -> None:
        c, m, g, now = protocols.cid(proto), slots.ptr, GFP_KERNEL, jiffies(clock)
        start, stop, clk = lib.kmw_start_memalloc_timer, lib.kmw_stop_memalloc_timer, \
            time.perf_counter_ns
        t0 = clk()
        for _ in range(n):
            start(c, m, g, 0, now)
            stop(c, m, g)
        rec.add(n, clk() - t0)

    rec.pedantic(target)


@pytest.mark.parametrize("proto", PROTOCOLS)
def test_py_reader_read(benchmark, kmw: Settings, proto: str) -> None:
    benchmark.group = PY_READER
    rec = Recorder(benchmark, kmw, **_info(PY_READER, proto, "slot read, 1 cffi call"),
                   slot_state="valid")
    clock = harness.new_clock()
    slots = harness.valid_slots(proto, 1, clock)
    snap = ffi.new("struct memalloc_info *")
    n = kmw.ops(READS)

    def target() -> None:
        c, m, read, null, clk = protocols.cid(proto), slots.ptr, lib.kmw_read_slot, ffi.NULL, \
            time.perf_counter_ns
        t0 = clk()
        for _ in range(n):
            read(c, m, snap, null, null)
        rec.add(n, clk() - t0)

    rec.pedantic(target)
