"""The emulated machine: jiffies, the slots (one ``struct memalloc_info``
per task), the task list, the emulated memory, and the halt switch."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from kmallocwd import protocols
from kmallocwd._core import lib
from kmallocwd.clock import jiffies, make_clock
from kmallocwd.slots import SlotArray
from kmallocwd.watchdog.memory import Memory
from kmallocwd.watchdog.scenario import Zone

if TYPE_CHECKING:
    from kmallocwd.watchdog.tasks import Task


class Halt(BaseException):
    """The machine halted: unwinds a thread without touching its slot, so
    that the slots keep the last request's information (the vmcore view)."""


class System:
    """One emulated machine; ``tasks`` is its task list, in fork order."""

    def __init__(self, protocol: str, hz: int, nslots: int, zones: tuple[Zone, ...],
                 initial_jiffies: int | None = None) -> None:
        self.protocol = protocol
        self.proto_id = protocols.cid(protocol)
        self.hz = hz
        self.clock = make_clock(hz, initial_jiffies)
        self.t0_ns = int(self.clock.t0_ns)  # the emulated boot
        self.slots = SlotArray(max(1, nslots))
        self.tasks: list[Task] = []
        self.memory = Memory(zones)
        self.halted = threading.Event()
        self.errors: list[BaseException] = []

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
