"""The emulated machine: jiffies, the slots (one ``struct memalloc_info``
per task), the task list, the memory model, named locks, the printk hook
the OOM killer and the detectors print through, and the halt switch."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Callable, NoReturn

from kmallocwd import protocols
from kmallocwd._core import lib
from kmallocwd.clock import jiffies, make_clock
from kmallocwd.slots import SlotArray
from kmallocwd.watchdog.workload import DEFAULT_MEMORY, MemorySpec

if TYPE_CHECKING:
    from kmallocwd.watchdog.sched import Mutex, RWSem
    from kmallocwd.watchdog.tasks import Process, Task


class Halt(BaseException):
    """The machine halted: unwinds a thread without touching its slot, so
    that the slots keep the last request's information (the vmcore view)."""


class System:
    """One emulated machine; ``tasks`` is its task list, in fork order."""

    def __init__(self, protocol: str, hz: int, nslots: int,
                 memory: MemorySpec = DEFAULT_MEMORY,
                 initial_jiffies: int | None = None) -> None:
        from kmallocwd.watchdog.mm import Memory

        self.protocol = protocol
        self.proto_id = protocols.cid(protocol)
        self.hz = hz
        self.clock = make_clock(hz, initial_jiffies)
        self.t0_ns = int(self.clock.t0_ns)  # the emulated boot
        self.slots = SlotArray(max(1, nslots))
        self.tasks: list[Task] = []
        self.processes: list[Process] = []
        self.memory = Memory(memory)
        self.halted = threading.Event()
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

    def jiffies(self) -> int:
        return jiffies(self.clock)

    def now_ns(self) -> int:
        """CLOCK_MONOTONIC, the clock jiffies and timestamps come from."""
        return int(lib.kmw_now_ns())

    def uptime_ns(self) -> int:
        """Nanoseconds since the emulated boot (printk's timestamps)."""
        return self.now_ns() - self.t0_ns

    def for_each_process_thread(self) -> list[Task]:
        """The live tasks, in task-list order (exited ones are gone)."""
        return [t for t in self.tasks if not t.exited]

    def halt(self) -> None:
        """Stop every thread of the machine where it is."""
        self.halted.set()
        for t in self.tasks:
            t.wake.set()

    def check_halted(self) -> None:
        if self.halted.is_set():
            raise Halt()
