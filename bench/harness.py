"""What the benchmark suites share: the matrix, the slot set-ups, the threads
that drive the C loops (the GIL is released inside every C call), and the
``extra_info`` every benchmark records.

Every figure but the Python-driven ones is timed inside C: a C loop performs
a batch of operations and returns the nanoseconds it took, so ns per
operation excludes the cffi call.
pytest-benchmark times the whole batch (its own columns, what
``--benchmark-compare`` compares); ``extra_info["ns_per_op"]`` is the median
over the rounds of the C-timed figure, what ``kmallocwd bench-report`` shows.
"""

from __future__ import annotations

import statistics
import threading
import time
from dataclasses import dataclass
from typing import Callable

from kmallocwd import protocols
from kmallocwd._core import ffi, lib
from kmallocwd.stress.clock import jiffies, make_clock
from kmallocwd.gfp import GFP_KERNEL
from kmallocwd.stress.placement import pin_to, round_robin, split_slots
from kmallocwd.stress.slots import SlotArray


PROTOCOLS: tuple[str, ...] = protocols.C_NAMES  # the ones the C emulator runs
SLOTS: tuple[int, ...] = (1, 64, 4096)
# The matrix's (slots, writer threads) cases; each slot has exactly one
# writer (its task).  Thread scaling (1 to 8 writers) is bench_scaling.py's.
SLOTS_THREADS: tuple[tuple[int, int], ...] = ((1, 1), (64, 2), (4096, 2))
SCAN_SLOTS: tuple[int, ...] = (10**3, 10**4, 10**5, 10**6)

# The role names are the report's: one spelling for the suites and the reader.
from kmallocwd.benchreport.model import (  # noqa: E402
    EMULATOR,
    PY_READER,
    PY_WRITER,
    SCHEMA,  # extra_info["kmallocwd"]: the layout kmallocwd/benchreport reads
    READER_ALONE,
    READER_WITH_ALLOCATING,
    READER_WITH_WRITER,
    WRITER_ALONE,
    WRITER_WITH_READER,
)

from kmallocwd.benchreport.model import PROTOCOL  # noqa: E402

# What was built into the timed loops, recorded as extra_info["mode"]:
# "protocol", the protocol's own operations (start = jiffies, no witness, no
# knobs, the reader's read and the patch's time check); "emulator", with the
# instrumentation (a unique stamp and the witness in every section, every
# snapshot classified and its overlap counted).  The report pairs them.
MODES: tuple[str, ...] = (PROTOCOL, EMULATOR)
MODE = EMULATOR  # the default of a Recorder


def c_mode(mode: str) -> int:
    return lib.KMW_PROTOCOL if mode == PROTOCOL else lib.KMW_EMULATOR

ROLES = (WRITER_ALONE, WRITER_WITH_READER, READER_ALONE, READER_WITH_WRITER)
# Side-by-side only: the writer's allocations last ALLOC_NS (the core's
# alloc_ns knob), so the reader finds valid records and now and then meets a
# write section: what the seqcount's retry loop costs when it runs.
ALLOC_NS = 100

HZ = 1000
TIMEOUT_JIFFIES = 10 * HZ  # the patch's default kmallocwd_timeout
BACKGROUND_BATCH = 1 << 14  # operations per C call of a background thread


@dataclass(frozen=True)
class Settings:
    """``--kmw-scale`` multiplies every batch; ``--kmw-rounds`` is the
    number of measured rounds (one warm-up round comes first)."""

    scale: float = 1.0
    rounds: int = 9
    warmup: int = 1
    pin: bool = True
    copy_mib: int = 0  # the bandwidth benchmark's buffer (0: from the LLC's size)

    def ops(self, base: int) -> int:
        return max(16, int(base * self.scale))


def case_id(proto: str, slots: int, threads: int | None = None) -> str:
    return f"{proto}-S{slots}" + ("" if threads is None else f"-T{threads}")


def one_request():
    """The fixed request table of the timed writers: GFP_KERNEL, order 0."""
    reqs = ffi.new("struct kmw_request[]", 1)
    reqs[0].gfp = GFP_KERNEL
    reqs[0].order = 0
    return reqs


def split(nslots: int, threads: int) -> list:
    """Writer w owns slots w, w+T, w+2T, ... (one writer per slot), as cdata
    the C loop takes (the arrays stay alive with the returned list)."""
    arrays = split_slots(nslots, threads)
    return [ffi.from_buffer("uint32_t[]", a) for a in arrays]


def valid_slots(proto: str, n: int, clock) -> SlotArray:
    """n slots, each left inside an allocation: start_memalloc_timer() without
    the stop, so every read copies a real record (valid == 1, even sequence)."""
    s = SlotArray(n)
    c, p, now = protocols.cid(proto), s.ptr, jiffies(clock)
    start = lib.kmw_start_memalloc_timer
    for i in range(n):
        start(c, p + i, GFP_KERNEL, 0, now)
    return s


def expire(clock) -> int:
    """The patch's ``expire = now - kmallocwd_timeout``, as an unsigned long."""
    return (jiffies(clock) - TIMEOUT_JIFFIES) & (2**64 - 1)


def placement(threads: int, reader: bool, pin: bool) -> list[int | None]:
    """CPU of each thread, the reader's first when there is one: round-robin
    over the usable CPUs, as ``kmallocwd stress --pin`` does, so that the
    reader and a writer always run on different cores (2 cores here: beyond
    2 threads, some share one).  A lone thread is not pinned."""
    n = threads + (1 if reader else 0)
    if not pin or n < 2:
        return [None] * n
    return round_robin(n)


def run_threads(bodies: list[Callable[[], object]],
                where: list[int | None] | None = None) -> list:
    """Run the bodies, released together by a barrier, and return their
    results in order.  One unpinned body runs in this thread; otherwise each
    gets a new thread, pinned to where[i] (None: not pinned)."""
    where = where or [None] * len(bodies)
    if len(bodies) == 1 and where[0] is None:
        return [bodies[0]()]
    barrier = threading.Barrier(len(bodies))
    out: list = [None] * len(bodies)
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            pin_to(where[i])
            barrier.wait()
            out[i] = bodies[i]()
        except BaseException as exc:  # surfaced below
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(len(bodies))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return out


class Writers:
    """T writer threads on their own slots, each running kmw_writer_run() on a
    fixed GFP_KERNEL order-0 request, in protocol or emulator mode."""

    def __init__(self, proto: str, slots: SlotArray, threads: int, clock,
                 where: list[int | None] | None = None, alloc_ns: int = 0,
                 hold_ns: int = 0, mode: str = EMULATOR) -> None:
        self.proto = protocols.cid(proto)
        self.mode = c_mode(mode)
        self.alloc_ns = alloc_ns
        self.hold_ns = hold_ns
        tsc = int(lib.kmw_tsc_per_us()) if hold_ns else 0
        self.state = []
        for w in range(threads):
            st = ffi.new("struct kmw_writer *")
            st.alloc_ns = alloc_ns
            st.hold_cycles = (hold_ns * tsc + 999) // 1000 if tsc else hold_ns
            st.stamp = (w + 1) << 40
            self.state.append(st)
        self.slots = slots
        self.idx = split(len(slots), threads)
        self.reqs = one_request()
        self.clock = clock
        self.where = where or [None] * threads
        self.elapsed = [ffi.new("uint64_t *") for _ in range(threads)]

    def body(self, w: int, n: int, stop) -> Callable[[], tuple[int, int]]:
        def run() -> tuple[int, int]:
            idx, el = self.idx[w], self.elapsed[w]
            done = lib.kmw_writer_run(self.proto, self.mode, self.slots.ptr, idx, len(idx),
                                      self.reqs, 1, n, self.clock, self.state[w], stop, el)
            return int(done), int(el[0])
        return run

    def round(self, n: int, stop) -> tuple[list[tuple[int, int]], int]:
        """One measured batch: n pairs per thread; ((pairs, ns) per thread,
        the wall time from the first thread's start to the last one's end:
        with more threads than cores they run in turns, and only the wall
        time gives the aggregate throughput)."""
        spans: list[tuple[int, int]] = []

        def timed(body: Callable[[], tuple[int, int]]) -> Callable[[], tuple[int, int]]:
            def run() -> tuple[int, int]:
                t0 = time.monotonic_ns()
                out = body()
                spans.append((t0, time.monotonic_ns()))
                return out
            return run

        res = run_threads([timed(self.body(w, n, stop)) for w in range(len(self.idx))],
                          self.where)
        return res, max(t1 for _, t1 in spans) - min(t0 for t0, _ in spans)


class Reader:
    """The watchdog's reads of every slot in turn: in protocol mode the
    benchmarks' loop (kmw_bench_reads), in emulator mode the stress scan
    (kmw_reader_scan: the witness checked, the overlaps counted)."""

    def __init__(self, proto: str, slots: SlotArray, clock, mode: str) -> None:
        self.cid = protocols.cid(proto)
        self.slots = slots
        self.mode = mode
        self.tally = ffi.new("struct kmw_tally *")
        self.elapsed = ffi.new("uint64_t *")
        self.expire = expire(clock)
        self.reqs = one_request()

    def read(self, n: int, stop) -> tuple[int, int]:
        """About n reads; (reads done, ns)."""
        nslots = len(self.slots)
        if self.mode == PROTOCOL:
            done = lib.kmw_bench_reads(self.cid, self.slots.ptr, nslots, n, self.expire,
                                       stop, self.tally, self.elapsed)
            return int(done), int(self.elapsed[0])
        passes = max(1, n // nslots)
        before_ns, before = self.tally.elapsed_ns, self.tally.attempts
        lib.kmw_reader_scan(self.cid, self.slots.ptr, nslots, passes, self.reqs, 1, stop,
                            self.tally)
        return int(self.tally.attempts - before), int(self.tally.elapsed_ns - before_ns)


class Background:
    """Threads that repeat a C call until stopped: the other side of the
    "with a concurrent X" roles.  Entering waits until each thread's first
    call has returned, so the measured side starts against a running one."""

    def __init__(self, bodies: list[Callable[[object], object]],
                 where: list[int | None] | None = None) -> None:
        self.bodies = bodies
        self.where = where or [None] * len(bodies)
        self.stop = ffi.new("int *")
        self.calls = [0] * len(bodies)
        self.errors: list[BaseException] = []
        self.started = [threading.Event() for _ in bodies]
        self.threads = [threading.Thread(target=self._run, args=(i,), daemon=True)
                        for i in range(len(bodies))]

    def _run(self, i: int) -> None:
        try:
            pin_to(self.where[i])
            while not self.stop[0]:
                self.bodies[i](self.stop)
                self.calls[i] += 1
                self.started[i].set()
        except BaseException as exc:
            self.errors.append(exc)
        finally:
            self.started[i].set()

    def __enter__(self) -> "Background":
        for t in self.threads:
            t.start()
        try:
            for e in self.started:
                if not e.wait(60):
                    raise RuntimeError("a background thread did not start")
            if self.errors:
                raise self.errors[0]
        except BaseException:
            self.__exit__(None, None, None)  # stop the threads already running
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        lib.kmw_request_stop(self.stop)
        for t in self.threads:
            t.join()
        if self.errors and exc[0] is None:
            raise self.errors[0]


# ---- the four roles, as set-ups the matrix and the side-by-side runs share ----

# Operations per measured batch (per writer thread for the writer roles).
BATCH = {
    WRITER_ALONE: 1 << 21,
    WRITER_WITH_READER: 1 << 19,  # contended pairs cost ~10x more
    READER_ALONE: 1 << 21,
    READER_WITH_WRITER: 1 << 21,
    READER_WITH_ALLOCATING: 1 << 21,
}
READERS = (READER_ALONE, READER_WITH_WRITER, READER_WITH_ALLOCATING)


class RoleCase:
    """One (protocol, role, slots, threads, mode) set-up.  Entering starts the
    other side (if the role has one); batch() runs one measured C batch and
    returns (operations, ns summed over the measured threads, the writers'
    wall time or None for a reader); info() says what the other side
    and the reader saw."""

    def __init__(self, proto: str, role: str, nslots: int, threads: int | None,
                 settings: Settings, mode: str = EMULATOR) -> None:
        if role not in BATCH:
            raise ValueError(role)
        self.proto, self.role, self.nslots, self.mode = proto, role, nslots, mode
        self.threads = threads or 0
        self.n = settings.ops(BATCH[role])
        self.clock = new_clock()
        self.stop = ffi.new("int *")  # the measured side's: never set
        reader = role != WRITER_ALONE
        self.where = placement(self.threads, reader=reader and self.threads > 0,
                               pin=settings.pin)
        self.bg: Background | None = None
        if role == READER_ALONE:
            self.slots = valid_slots(proto, nslots, self.clock)
        else:
            self.slots = SlotArray(nslots)
        if role in (WRITER_ALONE, WRITER_WITH_READER):
            mine = self.where if role == WRITER_ALONE else self.where[1:]
            self.writers = Writers(proto, self.slots, self.threads, self.clock, mine, mode=mode)
        if role == WRITER_WITH_READER:
            self.watchdog = Reader(proto, self.slots, self.clock, mode)
            self.bg = Background([lambda stop: self.watchdog.read(BACKGROUND_BATCH, stop)],
                                 self.where[:1])
        if role in READERS:
            self.reader = Reader(proto, self.slots, self.clock, mode)
        if role in (READER_WITH_WRITER, READER_WITH_ALLOCATING):
            self.writers = Writers(proto, self.slots, self.threads, self.clock, mode=mode,
                                   alloc_ns=ALLOC_NS if role == READER_WITH_ALLOCATING else 0)
            self.pairs = [0] * self.threads

            def write(w: int, stop) -> None:
                self.pairs[w] += self.writers.body(w, BACKGROUND_BATCH, stop)()[0]

            self.bg = Background([lambda stop, w=w: write(w, stop)
                                  for w in range(self.threads)], self.where[1:])

    def __enter__(self) -> "RoleCase":
        if self.bg is not None:
            self.bg.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bg is not None:
            self.bg.__exit__(*exc)

    def batch(self, n: int | None = None) -> tuple[int, int, int | None]:
        n = n or self.n
        if self.role in (WRITER_ALONE, WRITER_WITH_READER):
            res, wall = self.writers.round(n, self.stop)
            return sum(d for d, _ in res), sum(e for _, e in res), wall

        def read() -> tuple[int, int, None]:
            done, ns = self.reader.read(n, self.stop)
            return done, ns, None

        return run_threads([read], self.where[:1])[0]

    def info(self) -> dict:
        out: dict = {"cpus": self.where, "mode": self.mode}
        if self.role == WRITER_WITH_READER:
            out["background"] = {"reader": scan_stats_dict(self.watchdog.tally)}
        if self.role in READERS:
            out["outcomes"] = reader_counts_dict(self.reader.tally)
            out["slot_state"] = "valid" if self.role == READER_ALONE else "written"
        if self.role in (READER_WITH_WRITER, READER_WITH_ALLOCATING):
            out["background"] = {"writer_pairs": sum(self.pairs),
                                 "writer_alloc_ns": self.writers.alloc_ns}
        return out


class ReferenceCase:
    """The patch's start/stop as a plain C loop on one slot, GFP_KERNEL order 0
    (kmw_reference_run, csrc/reference.c): the yardstick of the writer pair.
    Same interface as RoleCase for a 1-slot, 1-thread writer."""

    def __init__(self, settings: Settings) -> None:
        self.slots = SlotArray(1)
        self.clock = new_clock()
        self.stop = ffi.new("int *")
        self.elapsed = ffi.new("uint64_t *")
        self.n = settings.ops(BATCH[WRITER_ALONE])

    def __enter__(self) -> "ReferenceCase":
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def batch(self, n: int | None = None) -> tuple[int, int, None]:
        done = lib.kmw_reference_run(self.slots.ptr, GFP_KERNEL, 0, n or self.n, self.clock,
                                     self.stop, self.elapsed)
        return int(done), int(self.elapsed[0]), None

    def info(self) -> dict:
        return {"op": "start/stop pair", "slot": {"sequence": int(self.slots.ptr.sequence),
                                                  "valid": int(self.slots.ptr.valid)}}


def _accepted(t) -> int:
    return int(sum(t.outcome[o] for o in (lib.KMW_O_ACCEPTED, lib.KMW_O_CONSISTENT,
                                          lib.KMW_O_TORN_MIXED, lib.KMW_O_TORN_SEQ,
                                          lib.KMW_O_TORN_INSIDE)))


def reader_counts_dict(t) -> dict:
    """What the measured reader saw (a struct kmw_tally), as fractions of its reads."""
    odd, inval = int(t.outcome[lib.KMW_O_REJECTED_ODD]), int(t.outcome[lib.KMW_O_REJECTED_INVALID])
    acc = _accepted(t)
    reads = max(acc + odd + inval, 1)
    return {
        "accepted": round(acc / reads, 6),
        "rejected_odd": round(odd / reads, 6),
        "rejected_invalid": round(inval / reads, 6),
        "retries_per_read": round(int(t.retries) / reads, 6),
    }


def scan_stats_dict(t) -> dict:
    """What a background watchdog (a struct kmw_tally) saw, in total."""
    torn = sum(int(t.outcome[o]) for o in (lib.KMW_O_TORN_MIXED, lib.KMW_O_TORN_SEQ,
                                           lib.KMW_O_TORN_INSIDE))
    return {
        "consistent": _accepted(t) - torn,
        "torn": torn,
        "rejected_odd": int(t.outcome[lib.KMW_O_REJECTED_ODD]),
        "rejected_invalid": int(t.outcome[lib.KMW_O_REJECTED_INVALID]),
        "retries": int(t.retries),
        "overlaps": int(t.overlaps),
        "scans": int(t.scans),
    }


def sig(x: float, digits: int = 4) -> float:
    """x rounded to a few significant digits (JSON stays readable)."""
    return float(f"{x:.{digits}g}")


class Recorder:
    """Collects the C-timed figure of every call of a pedantic target and
    writes the benchmark's extra_info; the warm-up calls are dropped."""

    def __init__(self, benchmark, settings: Settings, **info: object) -> None:
        self.benchmark = benchmark
        self.settings = settings
        self.info = {"kmallocwd": SCHEMA, "mode": MODE, **info}  # info may set the mode
        self.per_op: list[float] = []
        self.aggregate: list[float] = []
        self.ops = 0

    def add(self, ops: int, ns_total: float, ns_wall: float | None = None) -> None:
        """One round: ops operations that took ns_total nanoseconds summed over
        the measured threads (and ns_wall, the writers' wall time)."""
        if ops <= 0:
            raise RuntimeError("a measured C loop did no operation")
        self.ops = ops
        self.per_op.append(ns_total / ops)
        if ns_wall is not None:
            self.aggregate.append(ns_wall / ops)

    def pedantic(self, target: Callable[[], object], **extra: object) -> None:
        s = self.settings
        self.benchmark.pedantic(target, rounds=s.rounds, warmup_rounds=s.warmup, iterations=1)
        self.finish(**extra)

    def finish(self, **extra: object) -> None:
        w = self.settings.warmup
        per_op = self.per_op[w:] or self.per_op
        info = dict(self.info)
        info["ops_per_round"] = self.ops
        info["rounds"] = len(per_op)
        info["ns_per_op"] = sig(statistics.median(per_op))
        info["ns_per_op_min"] = sig(min(per_op))
        info["ns_per_op_max"] = sig(max(per_op))
        agg = self.aggregate[w:] or self.aggregate
        if agg:
            info["aggregate_ns_per_op"] = sig(statistics.median(agg))
        info.update(extra)
        self.benchmark.extra_info.update(info)


def new_clock():
    return make_clock(HZ)
