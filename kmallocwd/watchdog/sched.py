"""Task states, sleeping and mutexes, as Linux 4.4 has them.

``p->state`` is a bit mask (include/linux/sched.h): TASK_KILLABLE is
TASK_WAKEKILL | TASK_UNINTERRUPTIBLE, so ``state & TASK_UNINTERRUPTIBLE``
(the seed's test) is true for it, while khungtaskd's ``state ==
TASK_UNINTERRUPTIBLE`` is not.  Every sleep counts a context switch
(``nvcsw``), which is what khungtaskd compares.

The functions are module-level and named after the kernel's, so that the
watchdog's sched_show_task() (the worker's Python stack) reads like a
kernel trace.
"""

from __future__ import annotations

import collections
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kmallocwd.watchdog.tasks import Task

TASK_RUNNING = 0
TASK_INTERRUPTIBLE = 1
TASK_UNINTERRUPTIBLE = 2
TASK_WAKEKILL = 128
TASK_KILLABLE = TASK_WAKEKILL | TASK_UNINTERRUPTIBLE

# TASK_STATE_TO_CHAR_STR (4.4); sched_show_task() prints stat_nam[__ffs(state) + 1].
STAT_NAM = "RSDTtXZxKWP"


def state_char(state: int) -> str:
    if not state:
        return "R"
    i = (state & -state).bit_length()  # __ffs(state) + 1
    return STAT_NAM[i] if i < len(STAT_NAM) else "?"


def schedule_timeout(p: "Task", seconds: float | None, state: int) -> None:
    """Sleep in ``state`` until the time is up or the task is woken; the
    caller re-checks what it waits for.  Raises Halt when the machine halts."""
    p.system.check_halted()
    p.state = state
    p.nvcsw += 1
    p.wake.wait(seconds)
    p.wake.clear()
    p.system.check_halted()


def schedule(p: "Task", state: int) -> None:
    """Sleep until woken (no timeout)."""
    schedule_timeout(p, None, state)


def cond_resched(p: "Task", seconds: float) -> None:
    """CPU time spent in a loop, as a short runnable sleep (the task stays R:
    the "100% CPU" kind of stall of the seed's documentation)."""
    p.system.check_halted()
    p.state = TASK_RUNNING
    p.nivcsw += 1
    p.system.halted.wait(seconds)
    p.system.check_halted()


def signal_wake_up(p: "Task", fatal: bool) -> None:
    """Wake the task if its sleep can be interrupted by this signal."""
    if p.state & TASK_INTERRUPTIBLE or (fatal and p.state & TASK_WAKEKILL):
        p.wake.set()


class Mutex:
    """A sleeping lock with hand-off to the first waiter."""

    def __init__(self, name: str, guard: threading.Lock) -> None:
        self.name = name
        self.guard = guard  # one lock for all mutexes of a machine
        self.owner: Task | None = None
        self.waiters: collections.deque[Task] = collections.deque()

    def __repr__(self) -> str:
        return f"Mutex({self.name}, owner={self.owner!r})"


def __mutex_lock_slowpath(p: "Task", lock: Mutex, state: int) -> bool:
    while True:
        schedule(p, state)
        with lock.guard:
            if lock.owner is p:
                return True
            if state & TASK_WAKEKILL and p.sigkill:
                lock.waiters.remove(p)
                return False  # -EINTR


def _lock(p: "Task", lock: Mutex, state: int) -> bool:
    with lock.guard:
        if lock.owner is None:
            lock.owner = p
            return True
        if state & TASK_WAKEKILL and p.sigkill:
            return False
        lock.waiters.append(p)
        p.blocked_on = lock
    try:
        return __mutex_lock_slowpath(p, lock, state)
    finally:
        p.blocked_on = None


def mutex_lock(p: "Task", lock: Mutex) -> bool:
    """Uninterruptible: a pending SIGKILL does not end the wait."""
    return _lock(p, lock, TASK_UNINTERRUPTIBLE)


def mutex_lock_killable(p: "Task", lock: Mutex) -> bool:
    """TASK_KILLABLE: False (-EINTR) if SIGKILL arrives while waiting."""
    return _lock(p, lock, TASK_KILLABLE)


def down_read(p: "Task", lock: Mutex) -> bool:
    """An rw_semaphore taken for reading, emulated as the mutex (the holders
    here take it for writing, so a reader waits for them the same way)."""
    return _lock(p, lock, TASK_UNINTERRUPTIBLE)


def mutex_unlock(p: "Task", lock: Mutex) -> None:
    with lock.guard:
        if lock.owner is not p:
            return
        lock.owner = lock.waiters.popleft() if lock.waiters else None
        nxt = lock.owner
    if nxt is not None:
        nxt.wake.set()


up_read = mutex_unlock
