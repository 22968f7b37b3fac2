"""The stress run: writer threads and one reader thread hammer shared slots
through the protocol's C loops (GIL released), and the reader's outcomes are
tallied: consistent, torn by kind, rejected, and how many reads a write
section overlapped (the run's power)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Callable

from kmallocwd import protocols
from kmallocwd.stress.clock import make_clock
from kmallocwd.gfp import STRESS_SEQ, Request
from kmallocwd.interrupt import exit_status
from kmallocwd.stress.placement import pin_to, round_robin, split_slots
from kmallocwd.protocols.backend import Backend, backend
from kmallocwd.protocols.cgen import knob_point
from kmallocwd.protocols.spec import Spec
from kmallocwd.stress.slots import FieldSnapshot, SlotArray, Snapshot

# How many slot reads one call into the C scan loop makes, at least.
READS_PER_CALL = 1 << 16
# The C outcome enum's order (csrc/memalloc.h, enum kmw_outcome).
C_OUTCOMES = (protocols.CONSISTENT, protocols.TORN_MIXED, protocols.TORN_SEQ,
              protocols.TORN_INSIDE, protocols.REJECTED_ODD, protocols.REJECTED_INVALID)
# Each writer's stamps start at (w + 1) << STAMP_BASE_SHIFT: unique per run.
STAMP_BASE_SHIFT = 40


@dataclass(frozen=True)
class StressConfig:
    protocol: str = "v3"
    protocol_file: str | None = None  # a user's protocol file, instead of a built-in
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
    min_overlaps: int = 1  # fewer overlapping reads than this: inconclusive
    build: str = "kernel"  # which barriers.h definitions (protocols/builds.py)

    def spec(self) -> Spec:
        return protocols.resolve(None if self.protocol_file else self.protocol,
                                 self.protocol_file)


@dataclass
class StressResult:
    config: StressConfig
    spec: Spec
    counts: dict[str, int] = field(default_factory=dict)
    attempts: int = 0
    overlaps: int = 0
    retries: int = 0
    writer_ops: int = 0
    scans: int = 0
    elapsed_s: float = 0.0
    startup_s: float = 0.0  # from the first thread started to all of them running
    interrupted: bool = False
    interrupt_status: int | None = None  # 130 (SIGINT) or 143 (SIGTERM)
    stop_latency_s: float = 0.0  # from the stop request to every thread joined
    first_torn_after_s: float | None = None
    first_torn_slot: int | None = None
    first_torn_kind: str | None = None
    first_torn: Snapshot | FieldSnapshot | None = None

    @property
    def snapshots(self) -> int:
        return sum(self.counts.values())

    @property
    def accepted(self) -> int:
        return self.counts.get(protocols.CONSISTENT, 0) + self.torn

    @property
    def torn(self) -> int:
        return sum(self.counts.get(k, 0) for k in protocols.TORN_KINDS)

    def forbidden_seen(self) -> list[str]:
        return self.spec.forbidden(self.counts)


def _requests(ffi, mix: tuple[Request, ...]):
    reqs = ffi.new("struct kmw_request[]", len(mix))
    for i, r in enumerate(mix):
        reqs[i].gfp = r.gfp
        reqs[i].order = r.order
    return reqs


class StressRun:
    """One run; ``start()``, then ``wait()``; ``stop()`` from anywhere.

    ``start()`` starts every thread, and they enter the C loops together once
    all of them are up: the duration counts from then, so a thousand
    threads on two cores get their whole duration.
    """

    def __init__(self, cfg: StressConfig, be: Backend | None = None) -> None:
        self.cfg = cfg
        self.be = be or backend(cfg.spec(), cfg.build)
        ffi, lib = self.be.ffi, self.be.lib
        self.ffi, self.lib = ffi, lib
        # a format-2 protocol's slots are its own struct's (zeroed)
        own = self.be.spec.format != 1
        self.slots = SlotArray(cfg.slots, ffi, lib,
                               int(lib.kmw_slot_size(self.be.id)) if own else None)
        self.stop_flag = ffi.new("int *")
        self.clock = make_clock(cfg.hz, ffi=ffi)
        self.reqs = _requests(ffi, STRESS_SEQ)
        self.tally = ffi.new("struct kmw_tally *")
        self.writer_ops = [0] * cfg.threads
        self.slot_idx = split_slots(cfg.slots, cfg.threads)
        self.errors: list[BaseException] = []
        self.go = threading.Event()
        self.ready = threading.Semaphore(0)
        tsc = int(lib.kmw_tsc_per_us()) if cfg.hold_ns else 0
        self.hold_cycles = (cfg.hold_ns * tsc + 999) // 1000 if tsc else cfg.hold_ns
        cpus = round_robin(cfg.threads + 1) if cfg.pin else [None] * (cfg.threads + 1)
        self.reader = threading.Thread(target=self._guard(self._read, cpus[0]),
                                       name="kmallocwd-reader", daemon=True)
        self.writers = [
            threading.Thread(target=self._guard(self._write, cpus[w + 1], w),
                             name=f"kmallocwd-writer-{w}", daemon=True)
            for w in range(cfg.threads)
        ]
        self.started: list[threading.Thread] = []
        self.t_launch_ns = 0
        self.t0_ns = 0
        self.t_stop_ns = 0
        self.t_end_ns = 0

    def _guard(self, fn: Callable, cpu: int | None, *args) -> Callable[[], None]:
        def run() -> None:
            try:
                pin_to(cpu)
                self.ready.release()
                self.go.wait()
                fn(*args)
            except BaseException as exc:  # surfaced by wait()
                self.errors.append(exc)
                self.stop()
        return run

    def _write(self, w: int) -> None:
        cfg, ffi, lib = self.cfg, self.ffi, self.lib
        mine = self.slot_idx[w]
        idx = ffi.from_buffer("uint32_t[]", mine)
        st = ffi.new("struct kmw_writer *")
        # a section with no compiler barrier has no place for them: the run
        # is then the no-knob run, not a slower one
        held = knob_point(self.be.spec) >= 0
        st.hold_cycles = self.hold_cycles if held else 0
        st.alloc_ns = cfg.alloc_ns
        st.preempt = min(int(cfg.preempt * 2**32), 2**32 - 1) if held else 0
        st.rng = (cfg.seed * 0x9E3779B97F4A7C15 + w + 1) & (2**64 - 1) or 1
        st.stamp = (w + 1) << STAMP_BASE_SHIFT
        elapsed = ffi.new("uint64_t *")
        while not self.stop_flag[0]:
            n = cfg.batch
            if cfg.iterations is not None:
                n = min(n, cfg.iterations - self.writer_ops[w])
                if n <= 0:
                    break
            self.writer_ops[w] += lib.kmw_writer_run(
                self.be.id, lib.KMW_EMULATOR, self.slots.ptr, idx, len(mine), self.reqs,
                len(STRESS_SEQ), n, self.clock, st, self.stop_flag, elapsed)

    def _read(self) -> None:
        passes = max(1, READS_PER_CALL // self.cfg.slots)
        while not self.stop_flag[0]:
            self.lib.kmw_reader_scan(self.be.id, self.slots.ptr, self.cfg.slots, passes,
                                     self.reqs, len(STRESS_SEQ), self.stop_flag, self.tally)

    def start(self) -> None:
        """Start every thread, wait until all are up, then let them go.
        KeyboardInterrupt (Ctrl-C, SIGTERM) may arrive here: ``wait()``
        then stops whatever was started."""
        self.t_launch_ns = time.monotonic_ns()
        for t in [self.reader, *self.writers]:
            t.start()
            self.started.append(t)
        for _ in self.started:
            self.ready.acquire()
        self.t0_ns = time.monotonic_ns()
        self.go.set()

    def stop(self) -> None:
        self.lib.kmw_request_stop(self.stop_flag)

    def _finish(self) -> None:
        if self.t_end_ns:
            return
        self.t_stop_ns = time.monotonic_ns()
        self.stop()
        self.go.set()
        for t in self.started:
            t.join()
        self.t_end_ns = time.monotonic_ns()

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
                if cfg.until_torn and self.tally.first_torn_ns:
                    break
                left = poll if deadline is None else min(poll, (deadline - time.monotonic_ns()) / 1e9)
                time.sleep(max(left, 0.0))
        finally:
            self._finish()
        if self.errors:
            raise self.errors[0]

    def result(self, interrupted: bool = False) -> StressResult:
        t = self.tally
        t0 = self.t0_ns or self.t_launch_ns
        res = StressResult(
            config=self.cfg,
            spec=self.be.spec,
            counts={name: int(t.outcome[i]) for i, name in enumerate(C_OUTCOMES)},
            attempts=int(t.attempts),
            overlaps=int(t.overlaps),
            retries=int(t.retries),
            writer_ops=sum(self.writer_ops),
            scans=int(t.scans),
            elapsed_s=max(0, (self.t_end_ns or time.monotonic_ns()) - t0) / 1e9,
            startup_s=max(0, self.t0_ns - self.t_launch_ns) / 1e9 if self.t0_ns else 0.0,
            interrupted=interrupted,
            stop_latency_s=max(0, self.t_end_ns - self.t_stop_ns) / 1e9 if self.t_end_ns else 0.0,
        )
        if t.first_torn_ns:
            res.first_torn_after_s = max(0, t.first_torn_ns - t0) / 1e9
            res.first_torn_slot = int(t.first_torn_slot)
            res.first_torn_kind = C_OUTCOMES[t.first_torn_outcome]
            res.first_torn = (Snapshot.from_cdata(t.first_torn) if self.be.spec.format == 1
                              else FieldSnapshot.from_tally(self.be.spec, t))
        return res


def combine(results: list[StressResult]) -> StressResult:
    """The sum of several runs of one configuration (``--repeat``); the
    first torn snapshot is the first run's that saw one."""
    first = results[0]
    total = StressResult(config=first.config, spec=first.spec)
    for r in results:
        for k, v in r.counts.items():
            total.counts[k] = total.counts.get(k, 0) + v
        total.attempts += r.attempts
        total.overlaps += r.overlaps
        total.retries += r.retries
        total.writer_ops += r.writer_ops
        total.scans += r.scans
        total.elapsed_s += r.elapsed_s
        total.startup_s = max(total.startup_s, r.startup_s)
        total.interrupted |= r.interrupted
        total.interrupt_status = total.interrupt_status or r.interrupt_status
        total.stop_latency_s = max(total.stop_latency_s, r.stop_latency_s)
        if total.first_torn is None and r.first_torn is not None:
            total.first_torn_after_s = r.first_torn_after_s
            total.first_torn_slot = r.first_torn_slot
            total.first_torn_kind = r.first_torn_kind
            total.first_torn = r.first_torn
    return total


def run_stress(cfg: StressConfig, be: Backend | None = None) -> StressResult:
    """Run to completion; on Ctrl-C or SIGTERM (also while the threads
    start), return the partial result with ``interrupted`` and
    ``interrupt_status`` set (the threads are stopped first)."""
    run: StressRun | None = None
    try:
        run = StressRun(cfg, be)
        run.start()
        run.wait()
    except KeyboardInterrupt as exc:
        if run is None:  # interrupted while setting up: nothing ran
            return interrupted_before(cfg, be.spec if be else cfg.spec(), exc)
        run._finish()
        res = run.result(interrupted=True)
        res.interrupt_status = exit_status(exc)
        return res
    return run.result()


def interrupted_before(cfg: StressConfig, spec: Spec, exc: KeyboardInterrupt) -> StressResult:
    """The result of a run interrupted before any thread ran."""
    return StressResult(config=cfg, spec=spec, counts={o: 0 for o in C_OUTCOMES},
                        interrupted=True, interrupt_status=exit_status(exc))
