"""The stress run: writer threads and one reader thread hammer shared slots
through the C loops (GIL released), and the reader's outcomes are tallied."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Callable

from kmallocwd import protocols
from kmallocwd._core import ffi, lib
from kmallocwd.clock import make_clock
from kmallocwd.gfp import STRESS_MIX, Request
from kmallocwd.interrupt import exit_status
from kmallocwd.placement import pin_to, round_robin, split_slots
from kmallocwd.slots import SlotArray, Snapshot

# How many slot reads one call into the C scan loop makes, at least.
READS_PER_CALL = 1 << 16


@dataclass(frozen=True)
class StressConfig:
    protocol: str = "v3"
    threads: int = 1
    slots: int = 1
    duration: float | None = 5.0
    iterations: int | None = None  # start/stop pairs per writer thread
    batch: int = 65536
    pin: bool = False
    hold_ns: int = 0
    alloc_ns: int = 0
    preempt: float = 0.0
    seed: int = 1
    hz: int = 1000
    until_torn: bool = False  # end the run at the first torn snapshot


@dataclass
class StressResult:
    config: StressConfig
    counts: dict[str, int] = field(default_factory=dict)
    retries: int = 0
    writer_ops: int = 0
    scans: int = 0
    elapsed_s: float = 0.0
    interrupted: bool = False
    interrupt_status: int | None = None  # 130 (SIGINT) or 143 (SIGTERM)
    stop_latency_s: float = 0.0  # from the stop request to every thread joined
    first_torn_after_s: float | None = None
    first_torn_slot: int | None = None
    first_torn: Snapshot | None = None

    @property
    def snapshots(self) -> int:
        return sum(self.counts.values())

    def forbidden_seen(self) -> list[str]:
        return protocols.get(self.config.protocol).forbidden(self.counts)


def _requests(mix: tuple[Request, ...]):
    reqs = ffi.new("struct kmw_request[]", len(mix))
    for i, r in enumerate(mix):
        reqs[i].gfp = r.gfp
        reqs[i].order = r.order
    return reqs


class StressRun:
    """One run; ``start()``, then ``wait()``; ``stop()`` from anywhere."""

    def __init__(self, cfg: StressConfig) -> None:
        self.cfg = cfg
        self.proto = protocols.cid(cfg.protocol)
        self.slots = SlotArray(cfg.slots)
        self.stop_flag = ffi.new("int *")
        self.clock = make_clock(cfg.hz)
        self.reqs = _requests(STRESS_MIX)
        self.rstats = ffi.new("struct kmw_reader_stats *")
        self.writer_ops = [0] * cfg.threads
        self.slot_idx = split_slots(cfg.slots, cfg.threads)
        self.errors: list[BaseException] = []
        cpus = round_robin(cfg.threads + 1) if cfg.pin else [None] * (cfg.threads + 1)
        self.reader = threading.Thread(target=self._guard(self._read, cpus[0]),
                                       name="kmallocwd-reader", daemon=True)
        self.writers = [
            threading.Thread(target=self._guard(self._write, cpus[w + 1], w),
                             name=f"kmallocwd-writer-{w}", daemon=True)
            for w in range(cfg.threads)
        ]
        self.t0_ns = 0
        self.t_stop_ns = 0
        self.t_end_ns = 0

    def _guard(self, fn: Callable, cpu: int | None, *args) -> Callable[[], None]:
        def run() -> None:
            try:
                pin_to(cpu)
                fn(*args)
            except BaseException as exc:  # surfaced by wait()
                self.errors.append(exc)
                self.stop()
        return run

    def _write(self, w: int) -> None:
        cfg = self.cfg
        mine = self.slot_idx[w]
        idx = ffi.from_buffer("uint32_t[]", mine)
        knobs = ffi.new("struct kmw_knobs *")
        knobs.hold_ns = cfg.hold_ns
        knobs.alloc_ns = cfg.alloc_ns
        knobs.preempt = min(int(cfg.preempt * 2**32), 2**32 - 1)
        knobs.rng = (cfg.seed * 0x9E3779B97F4A7C15 + w + 1) & (2**64 - 1) or 1
        elapsed = ffi.new("uint64_t *")
        while not self.stop_flag[0]:
            n = cfg.batch
            if cfg.iterations is not None:
                n = min(n, cfg.iterations - self.writer_ops[w])
                if n <= 0:
                    break
            self.writer_ops[w] += lib.kmw_writer_run(
                self.proto, self.slots.ptr, idx, len(mine), self.reqs, len(STRESS_MIX),
                n, self.clock, knobs, self.stop_flag, elapsed)

    def _read(self) -> None:
        passes = max(1, READS_PER_CALL // self.cfg.slots)
        while not self.stop_flag[0]:
            lib.kmw_reader_scan(self.proto, self.slots.ptr, self.cfg.slots, passes,
                                self.stop_flag, self.rstats)

    def start(self) -> None:
        self.t0_ns = time.monotonic_ns()
        self.reader.start()
        for t in self.writers:
            t.start()

    def stop(self) -> None:
        lib.kmw_request_stop(self.stop_flag)

    def wait(self, poll: float = 0.05) -> None:
        """Block until the run ends by itself (duration, iterations) or is
        stopped; KeyboardInterrupt propagates after the threads stopped."""
        cfg = self.cfg
        deadline = None if cfg.duration is None else self.t0_ns + int(cfg.duration * 1e9)
        try:
            while not self.stop_flag[0]:
                if deadline is not None and time.monotonic_ns() >= deadline:
                    break
                if cfg.iterations is not None and not any(t.is_alive() for t in self.writers):
                    break
                if cfg.until_torn and self.rstats.torn:
                    break
                left = poll if deadline is None else min(poll, (deadline - time.monotonic_ns()) / 1e9)
                time.sleep(max(left, 0.0))
        finally:
            self.t_stop_ns = time.monotonic_ns()
            self.stop()
            for t in [*self.writers, self.reader]:
                t.join()
            self.t_end_ns = time.monotonic_ns()
        if self.errors:
            raise self.errors[0]

    def result(self, interrupted: bool = False) -> StressResult:
        st = self.rstats
        res = StressResult(
            config=self.cfg,
            counts={
                protocols.CONSISTENT: st.consistent,
                protocols.TORN: st.torn,
                protocols.REJECTED_ODD: st.rejected_odd,
                protocols.REJECTED_INVALID: st.rejected_invalid,
            },
            retries=st.retries,
            writer_ops=sum(self.writer_ops),
            scans=st.scans,
            elapsed_s=((self.t_end_ns or time.monotonic_ns()) - self.t0_ns) / 1e9,
            interrupted=interrupted,
            stop_latency_s=max(0, self.t_end_ns - self.t_stop_ns) / 1e9 if self.t_end_ns else 0.0,
        )
        if st.torn:
            res.first_torn_after_s = max(0, st.first_torn_ns - self.t0_ns) / 1e9
            res.first_torn_slot = st.first_torn_slot
            res.first_torn = Snapshot.from_cdata(st.first_torn)
        return res


def combine(results: list[StressResult]) -> StressResult:
    """The sum of several runs of one configuration (``--repeat``); the
    first torn snapshot is the first run's that saw one."""
    total = StressResult(config=results[0].config)
    for r in results:
        for k, v in r.counts.items():
            total.counts[k] = total.counts.get(k, 0) + v
        total.retries += r.retries
        total.writer_ops += r.writer_ops
        total.scans += r.scans
        total.elapsed_s += r.elapsed_s
        total.interrupted |= r.interrupted
        total.stop_latency_s = max(total.stop_latency_s, r.stop_latency_s)
        if total.first_torn is None and r.first_torn is not None:
            total.first_torn_after_s = r.first_torn_after_s
            total.first_torn_slot = r.first_torn_slot
            total.first_torn = r.first_torn
    return total


def run_stress(cfg: StressConfig) -> StressResult:
    """Run to completion; on Ctrl-C or SIGTERM, return the partial result
    with ``interrupted`` and ``interrupt_status`` set (the threads are
    stopped first)."""
    run = StressRun(cfg)
    run.start()
    try:
        run.wait()
    except KeyboardInterrupt as exc:
        res = run.result(interrupted=True)
        res.interrupt_status = exit_status(exc)
        return res
    return run.result()
