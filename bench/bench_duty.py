"""The reader against writer activity: one reader snapshotting one slot
(kmw_bench_reads: the protocol's read and the patch's time check) while one
writer thread spends a given share of its time inside write sections, set
with the core's knobs: each section lasts hold_ns (spun between its field
stores), each allocation alloc_ns (spun between start and stop, outside
the section).  Levels:

* idle: no writer; the slot is inside an allocation (valid, even sequence);
* 1%:   hold 100 ns, alloc 9,900 ns;
* 10%:  hold 1,000 ns, alloc 9,000 ns;
* 100%: hold 10,000 ns, alloc 0: the writer is always in a section, but
  for its few instructions between two.

The figure is ns per snapshot (a read the reader accepts or refuses), with
retries per read; the writer's measured share of time in sections (hold_ns
x pairs / its time) is recorded beside the nominal one.  Each round reads
until ROUND_NS x --kmw-scale have passed (in batches), so that a round
spans many writer periods.
"""

from __future__ import annotations

import pytest

import harness
from harness import PROTOCOLS, Background, Recorder, Settings, Writers
from kmallocwd import protocols
from kmallocwd._core import ffi, lib
from kmallocwd.benchreport.model import DUTY, DUTY_READER
from kmallocwd.stress.slots import SlotArray

# (level, hold_ns, alloc_ns); None: no writer at all.
LEVELS = (("idle", None, None), ("1%", 100, 9_900), ("10%", 1_000, 9_000),
          ("100%", 10_000, 0))
ROUND_NS = 50_000_000   # reading time per round, times --kmw-scale
READ_BATCH = 1 << 12    # reads per C call
WRITER_BATCH = 1 << 10  # pairs per C call of the writer (~10 ms at these knobs)

CASES = [(p, lv) for lv in LEVELS for p in PROTOCOLS]


def _id(case: tuple) -> str:
    return f"{case[0]}-{case[1][0]}"


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_reader_vs_duty(benchmark, kmw: Settings, case) -> None:
    proto, (level, hold, alloc) = case
    benchmark.group = f"reader vs duty {level}"
    clock = harness.new_clock()
    cid = protocols.cid(proto)
    where = harness.placement(1 if hold is not None else 0, reader=True, pin=kmw.pin)
    duty = 0.0 if hold is None else hold / (hold + alloc)
    rec = Recorder(benchmark, kmw, kind=DUTY, role=DUTY_READER, protocol=proto, slots=1,
                   threads=None if hold is None else 1, level=level, hold_ns=hold or 0,
                   alloc_ns=alloc or 0, duty=duty, op="snapshot of one slot")
    counts = ffi.new("struct kmw_tally *")
    el = ffi.new("uint64_t *")
    stop = ffi.new("int *")
    exp = harness.expire(clock)
    target_ns = max(1, int(ROUND_NS * kmw.scale))
    writer_pairs, writer_ns = [0], [0]
    if hold is None:
        slots = harness.valid_slots(proto, 1, clock)
        bg = None
    else:
        slots = SlotArray(1)
        writers = Writers(proto, slots, 1, clock, alloc_ns=alloc, hold_ns=hold)

        def write(stop_) -> None:
            done, ns = writers.body(0, WRITER_BATCH, stop_)()
            writer_pairs[0] += done
            writer_ns[0] += ns

        bg = Background([write], where[1:])

    def read_round() -> tuple[int, int]:
        reads = ns = 0
        while ns < target_ns or not reads:
            done = lib.kmw_bench_reads(cid, slots.ptr, 1, READ_BATCH, exp, stop, counts, el)
            reads += int(done)
            ns += int(el[0])
        return reads, ns

    def target() -> None:
        rec.add(*harness.run_threads([read_round], where[:1])[0])

    if bg is None:
        rec.pedantic(target)
    else:
        with bg:
            rec.pedantic(target)
    extra: dict = {"outcomes": harness.reader_counts_dict(counts)}
    if hold is not None and writer_ns[0]:
        extra["duty_measured"] = harness.sig(min(1.0, hold * writer_pairs[0] / writer_ns[0]))
        extra["background"] = {"writer_pairs": writer_pairs[0], "writer_hold_ns": hold,
                               "writer_alloc_ns": alloc}
    benchmark.extra_info.update(extra)
