"""The matrix: every protocol x role x (slots, writer threads) in (1, 1),
(64, 2), (4096, 2) x mode (protocol: the protocol's own operations;
emulator: with the witness, the stamps, the classification).

Roles, each timed inside C:

* writer-alone: T writer threads, each doing start/stop pairs round-robin
  over its own slots (kmw_writer_run, knobs NULL, GFP_KERNEL order 0).
  ns_per_op is a writer's time per pair (summed over threads / pairs), so it
  includes time spent preempted when T writers share 2 cores;
  aggregate_ns_per_op is the writers' wall time / all pairs (throughput).
* writer-with-reader: the same, while one watchdog thread scans all the
  slots without pause (kmw_reader_scan).  Only the writers are timed.
* reader-alone: one reader reading every slot in turn (kmw_bench_reads:
  the protocol's read and the patch's time check, no torn-read check), the
  slots left inside an allocation (valid 1, even sequence, real record).
  No writer runs, so the thread count does not apply (one case per S).
* reader-with-writer: the same reader, slots zeroed, while T writer threads
  (untimed) do start/stop pairs on them without pause.

The threads of a case with more than one are pinned round-robin over the
CPUs, the reader's first (``--kmw-no-pin``: not pinned), so a reader and a
writer always run on different cores.
"""

from __future__ import annotations

import pytest

import harness
from harness import (
    PROTOCOLS, READER_ALONE, READER_WITH_WRITER, SLOTS, SLOTS_THREADS, WRITER_ALONE,
    WRITER_WITH_READER, Recorder, RoleCase, Settings,
)

# Every protocol of one (slots, threads) case runs back to back, so that the
# ratios between protocols are measured side by side.
WRITER_CASES = [(p, s, t, m) for m in harness.MODES for s, t in SLOTS_THREADS
                for p in PROTOCOLS]
READER_ALONE_CASES = [(p, s, m) for m in harness.MODES for s in SLOTS for p in PROTOCOLS]
OPS = {WRITER_ALONE: "start/stop pair", WRITER_WITH_READER: "start/stop pair",
       READER_ALONE: "slot read", READER_WITH_WRITER: "slot read"}


def _ids(case: tuple) -> str:
    return harness.case_id(*case[:-1]) + f"-{case[-1]}"


def _run(benchmark, kmw: Settings, role: str, proto: str, nslots: int,
         threads: int | None, mode: str) -> None:
    benchmark.group = (f"{role} {mode} slots={nslots}"
                       + (f" threads={threads}" if threads else ""))
    rec = Recorder(benchmark, kmw, kind="matrix", role=role, protocol=proto, slots=nslots,
                   threads=threads, op=OPS[role], mode=mode)
    with RoleCase(proto, role, nslots, threads, kmw, mode) as case:
        rec.pedantic(lambda: rec.add(*case.batch()))
        benchmark.extra_info.update(case.info())


@pytest.mark.parametrize("case", WRITER_CASES, ids=_ids)
def test_writer_alone(benchmark, kmw: Settings, case) -> None:
    _run(benchmark, kmw, WRITER_ALONE, *case)


@pytest.mark.parametrize("case", WRITER_CASES, ids=_ids)
def test_writer_with_reader(benchmark, kmw: Settings, case) -> None:
    _run(benchmark, kmw, WRITER_WITH_READER, *case)


@pytest.mark.parametrize("case", READER_ALONE_CASES, ids=_ids)
def test_reader_alone(benchmark, kmw: Settings, case) -> None:
    proto, nslots, mode = case
    _run(benchmark, kmw, READER_ALONE, proto, nslots, None, mode)


@pytest.mark.parametrize("case", WRITER_CASES, ids=_ids)
def test_reader_with_writer(benchmark, kmw: Settings, case) -> None:
    _run(benchmark, kmw, READER_WITH_WRITER, *case)
