"""Thread scaling of the writer pair, in the style of folly's SharedMutexTest:
seqcount, v2-rwlock (one rwlock shared by all tasks: every caller's
read_lock() writes its one cache line) and global-spinlock, by writer
threads 1, 2, 4, 8 (on 2 cores, 4 and 8 time-share), on 256 slots split
between the writers, alone and with a concurrent watchdog scan, in both
modes.  ns_per_op is a writer's own time per pair; aggregate_ns_per_op is
the writers' wall time over all pairs (1e3 / it: Mpairs/s, the
throughput).  The patch's claim is that seqcount's callers no longer contend:
the report's scaling table gives seqcount / v2-rwlock at 2 threads.
"""

from __future__ import annotations

import pytest

import harness
from harness import WRITER_ALONE, WRITER_WITH_READER, Recorder, RoleCase, Settings

PROTOCOLS = ("seqcount", "v2-rwlock", "global-spinlock")
THREADS = (1, 2, 4, 8)
SLOTS = 256  # not a matrix slot count: the report keys scaling by (slots, threads)
BATCH = 1 << 17  # pairs per writer per round (a contended pair costs ~100 ns)

CASES = [(role, mode, t, p) for role in (WRITER_ALONE, WRITER_WITH_READER)
         for mode in harness.MODES for t in THREADS for p in PROTOCOLS]


def _id(case: tuple) -> str:
    role, mode, t, p = case
    return f"{role}-{mode}-T{t}-{p}"


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_scaling(benchmark, kmw: Settings, case) -> None:
    role, mode, threads, proto = case
    benchmark.group = f"scaling {role} {mode} threads={threads}"
    rec = Recorder(benchmark, kmw, kind="matrix", role=role, protocol=proto, slots=SLOTS,
                   threads=threads, op="start/stop pair", mode=mode)
    with RoleCase(proto, role, SLOTS, threads, kmw, mode) as c:
        n = kmw.ops(BATCH)
        rec.pedantic(lambda: rec.add(*c.batch(n)))
        benchmark.extra_info.update(c.info())
