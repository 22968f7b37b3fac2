"""Yardsticks (csrc/reference.c), measured in the same run as the protocols:

* reference: the patch's start_memalloc_timer()/stop_memalloc_timer()
  written plainly on one struct memalloc_info (gfp check, "if (!valid)",
  the section with its two smp_wmb(), valid++, valid--), in a C loop that
  reads jiffies every 256 pairs like the protocols' writer loop.  The report
  gives each protocol's writer pair as a ratio to it (the side-by-side
  writer run also interleaves it with the protocols, round by round).
* bandwidth: memcpy() of a buffer larger than the last-level cache (twice
  its size, at least 64 MiB; ``--kmw-copy-mib``), as ns per slot's bytes
  (64): the scan's physical limit, bytes per slot / copy bandwidth.
"""

from __future__ import annotations

import os
from pathlib import Path

import harness
from harness import Recorder, ReferenceCase, Settings
from kmallocwd._core import ffi, lib
from kmallocwd.benchreport.model import BANDWIDTH, COPY, REFERENCE, REFERENCE_PAIR

COPY_PASSES = 4  # timed copies per round


def test_reference(benchmark, kmw: Settings) -> None:
    benchmark.group = "reference"
    rec = Recorder(benchmark, kmw, kind=REFERENCE, role=REFERENCE_PAIR, slots=1, threads=1,
                   op="start/stop pair, the patch's code plainly")
    with ReferenceCase(kmw) as case:
        rec.pedantic(lambda: rec.add(*case.batch()))
        benchmark.extra_info.update(case.info())


def llc_bytes() -> int:
    """The last-level cache's size (0 if unknown)."""
    best = 0
    base = Path("/sys/devices/system/cpu/cpu0/cache")
    try:
        for d in base.glob("index*"):
            text = (d / "size").read_text().strip()
            mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(text[-1:], 1)
            best = max(best, int(text.rstrip("KMG")) * mult)
    except (OSError, ValueError):
        pass
    if not best:
        try:
            best = max(0, os.sysconf("SC_LEVEL3_CACHE_SIZE"))
        except (ValueError, OSError):
            best = 0
    return best


def test_bandwidth(benchmark, kmw: Settings) -> None:
    benchmark.group = "bandwidth"
    llc = llc_bytes()
    size = kmw.copy_mib << 20 if kmw.copy_mib else max(2 * llc, 64 << 20)
    slot = ffi.sizeof("struct memalloc_info")
    rec = Recorder(benchmark, kmw, kind=BANDWIDTH, role=COPY, slots=1, threads=None,
                   op=f"copy of one slot's {slot} bytes (memcpy of {size >> 20} MiB)",
                   buffer_bytes=size, slot_bytes=slot, llc_bytes=llc)
    el = ffi.new("uint64_t *")

    def target() -> None:
        copied = lib.kmw_copy_bandwidth(size, COPY_PASSES, el)
        if not copied:
            raise MemoryError(f"no memory for two {size >> 20} MiB buffers")
        rec.add(copied // slot, int(el[0]))

    rec.pedantic(target)
    benchmark.extra_info["bytes_per_ns"] = harness.sig(slot / benchmark.extra_info["ns_per_op"])
