"""The emulated machine: jiffies (from its logical clock, ``vclock``), the
slots (one ``struct memalloc_info`` per task), the task list, the memory
model, named locks, the printk hook the OOM killer and the detectors print
through, and the halt switch."""

from __future__ import annotations

import math
import threading
from typing import TYPE_CHECKING, Callable, NoReturn

from kmallocwd import protocols
from kmallocwd.stress.clock import make_clock
from kmallocwd.stress.slots import SlotArray
from kmallocwd.watchdog.vclock import VEvent, VirtualClock
from kmallocwd.watchdog.workload import DEFAULT_MEMORY, MemorySpec

if TYPE_CHECKING:
    from kmallocwd.watchdog.sched import Mutex, RWSem
    from kmallocwd.watchdog.tasks import Process, Task


ULONG_MASK = (1 << 64) - 1


class Halt(BaseException):
    """The machine halted: unwinds a thread without touching its slot, so
    that the slots keep the last request's information (the vmcore view)."""


class System:
    """One emulated machine; ``tasks`` is its task list, in fork order."""

    def __init__(self, protocol: str, hz: int, nslots: int,
                 memory: MemorySpec = DEFAULT_MEMORY,
                 initial_jiffies: int | None = None, time_scale: float = 1.0) -> None:
        from kmallocwd.watchdog.mm import Memory

        self.protocol = protocol
        self.proto_id = protocols.cid(protocol)
        self.hz = hz
        # --time-scale: the model runs on the scenario's own time (its
        # clock, vclock); what the watchdog, the detectors and the log see
        # (jiffies, timestamps, their sleeps) is that time times the scale
        self.time_scale = time_scale
        self.clock = make_clock(hz, initial_jiffies)  # its .initial: INITIAL_JIFFIES
        self.vclock = VirtualClock()  # time advances by the model's events
        self.t0_ns = 0  # the emulated boot
        self.slots = SlotArray(max(1, nslots))
        self.tasks: list[Task] = []
        self.cpus = 1  # the scenario's CPUs (each task runs on one: Task.cpu)
        self.processes: list[Process] = []
        self.memory = Memory(memory, self.model_s)
        self.halted = VEvent(self.vclock)
        self.errors: list[BaseException] = []
        self.lock_guard = threading.Lock()  # guards every Mutex of the machine
        self.locks: dict[str, Mutex | RWSem] = {}
        self.kswapd_task: Task | None = None
        self.oom_victims: list[tuple[int, str, int]] = []  # (uptime ns, comm, pid)
        self.detectors = None  # kmallocwd.watchdog.detectors.Detectors, if any
        self._printk: Callable[[str], int] | None = None
        self._printed_once: set[str] = set()
        self.panicked: tuple[int, str] | None = None  # (uptime ns, message) once panic() ran

    # ---- printk and the hooks ----

    def set_printk(self, fn: Callable[[str], int]) -> None:
        self._printk = fn

    def printk(self, text: str) -> None:
        if self._printk is not None:
            self._printk(text)

    def printk_once(self, text: str) -> None:
        if text not in self._printed_once:
            self._printed_once.add(text)
            self.printk(text)

    def panic(self, message: str) -> NoReturn:
        """panic(): the two lines the kernel prints, then the machine stops
        (every thread halts; the caller's unwinds now)."""
        with self.lock_guard:
            first = self.panicked is None
            if first:
                self.panicked = (self.uptime_ns(), message)
        if first:
            self.printk(f"Kernel panic - not syncing: {message}")
            self.printk(f"---[ end Kernel panic - not syncing: {message}")
        self.halt()
        raise Halt()

    def warn_alloc_check(self, p: "Task", gfp_mask: int, order: int) -> None:
        """4.9's stall warning, if the warn_alloc detector is on."""
        if self.detectors is not None:
            self.detectors.warn_alloc(p, gfp_mask, order)

    def named_lock(self, name: str, rw: bool = False) -> "Mutex | RWSem":
        """The machine's lock of that name: an rw_semaphore if ``rw`` when it
        is first used, else a mutex."""
        from kmallocwd.watchdog.sched import Mutex, RWSem

        with self.lock_guard:
            if name not in self.locks:
                self.locks[name] = (RWSem if rw else Mutex)(name, self.lock_guard)
            return self.locks[name]

    def clocked(self, fn: Callable[[], None]) -> Callable[[], None]:
        """A thread body that leaves the machine's clock when it returns."""
        def body() -> None:
            self.vclock.begin()
            try:
                fn()
            finally:
                self.vclock.leave()
        return body

    def start(self, thread: threading.Thread) -> None:
        """Start a thread of the machine: it runs when its turn comes."""
        self.vclock.enter(thread)
        try:
            thread.start()
        except BaseException:
            self.vclock.stop()  # its turn would never end: the machine cannot run
            raise

    def jiffies(self) -> int:
        """kmw_jiffies() on the logical clock: whole ticks since boot, from
        INITIAL_JIFFIES, wrapping like an unsigned long."""
        return (int(self.clock.initial) + self.now_ns() * self.hz // 1_000_000_000) & ULONG_MASK

    def now_ns(self) -> int:
        """The clock jiffies and timestamps come from: the model's time
        times --time-scale."""
        return round(self.vclock.now_ns() * self.time_scale)

    def now_s(self) -> float:
        return self.now_ns() / 1e9

    def model_s(self) -> float:
        """The model's own time (the scenario's seconds): its sleeps, rates
        and deadlines are in it."""
        return self.vclock.now_ns() / 1e9

    def sleep(self, seconds: float | None) -> bool:
        """An observer's sleep (the watchdog, a detector, the run), in the
        seconds of now_ns(); True if the machine halted meanwhile."""
        if seconds is None:
            return self.halted.wait()
        # until now_ns() has grown by the whole wait (rounded up, so that a
        # wait of n jiffies never wakes one short)
        want = self.now_ns() + round(seconds * 1e9)
        ns = max(1, math.ceil(want / self.time_scale) - self.vclock.now_ns())
        return self.vclock.sleep_ns(self.halted, ns)

    def event(self) -> VEvent:
        """A threading.Event on the machine's clock (a task's wake-up)."""
        return VEvent(self.vclock)

    def uptime_ns(self) -> int:
        """Nanoseconds since the emulated boot (printk's timestamps)."""
        return self.now_ns() - self.t0_ns

    def for_each_process_thread(self) -> list[Task]:
        """The live tasks, in task-list order (exited ones are gone)."""
        return [t for t in self.tasks if not t.exited]

    def halt(self) -> None:
        """Stop every thread of the machine where it is."""
        self.halted.set()
        self.vclock.stop()
        for t in self.tasks:
            t.wake.set()

    def check_halted(self) -> None:
        if self.halted.is_set():
            raise Halt()
