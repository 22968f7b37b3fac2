"""Task states, sleeping, mutexes and rw_semaphores, as Linux 4.4 has them.

``p->state`` is a bit mask (include/linux/sched.h): TASK_KILLABLE is
TASK_WAKEKILL | TASK_UNINTERRUPTIBLE, so ``state & TASK_UNINTERRUPTIBLE``
(the patch's test) is true for it, while khungtaskd's ``state ==
TASK_UNINTERRUPTIBLE`` is not.  Every sleep counts a context switch
(``nvcsw``), which is what khungtaskd compares.

The functions are module-level and named after the kernel's, so that the
watchdog's sched_show_task() (the worker's Python stack) reads like a
kernel trace.
"""

from __future__ import annotations

import collections
import os
import sys
import threading
from dataclasses import dataclass
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


def schedule_timeout(p: "Task", seconds: float | None, state: int) -> bool:
    """Sleep in ``state`` until the time is up or the task is woken; the
    caller re-checks what it waits for.  True if it was woken.  Raises Halt
    when the machine halts."""
    p.system.check_halted()
    p.state = state
    p.nvcsw += 1
    woken = p.wake.wait(seconds)
    p.wake.clear()
    p.system.check_halted()
    return woken


def schedule(p: "Task", state: int) -> None:
    """Sleep until woken (no timeout)."""
    schedule_timeout(p, None, state)


def cond_resched(p: "Task", seconds: float) -> None:
    """CPU time spent in a loop, as a short runnable sleep (the task stays R:
    the "100% CPU" kind of stall of the patch's documentation)."""
    p.system.check_halted()
    p.state = TASK_RUNNING
    p.nivcsw += 1
    p.system.halted.wait(seconds)
    p.system.check_halted()


def signal_wake_up(p: "Task", fatal: bool) -> None:
    """Wake the task if its sleep can be interrupted by this signal."""
    if p.state & TASK_INTERRUPTIBLE or (fatal and p.state & TASK_WAKEKILL):
        p.wake.set()


# ---- lockdep's held-lock list (debug_show_held_locks()) ----


@dataclass(frozen=True)
class HeldLock:
    """One entry of a task's lockdep held_locks[]: added when the task asks
    for the lock (lock_acquire() comes before the wait, so a task blocked on
    a lock lists it too), removed when it releases it."""

    name: str
    usage: str  # lockdep's usage string: representative ones, as 4.4 prints them
    at: str  # where it was taken: "[<file:line>] function"


def lock_acquire(p: "Task", lock: "Mutex | RWSem") -> None:
    """Called by the lock functions; records their caller (two frames up)."""
    f = sys._getframe(2)
    at = f"[<{os.path.basename(f.f_code.co_filename)}:{f.f_lineno}>] {f.f_code.co_name}"
    usage = "++++++" if isinstance(lock, RWSem) else "+.+.+."
    p.held_locks.append(HeldLock(lock.name, usage, at))


def lock_release(p: "Task", lock: "Mutex | RWSem") -> None:
    for i in range(len(p.held_locks) - 1, -1, -1):
        if p.held_locks[i].name == lock.name:
            del p.held_locks[i]
            return


def debug_show_held_locks(p: "Task") -> list[str]:
    """kernel/locking/lockdep.c lockdep_print_held_locks() (4.4)."""
    held = list(p.held_locks)
    if not held:
        return [f"no locks held by {p.comm}/{p.pid}."]
    out = [f"{len(held)} lock{'s' if len(held) > 1 else ''} held by {p.comm}/{p.pid}:"]
    out += [f" #{i}:  ({h.name}){{{h.usage}}}, at: {h.at}" for i, h in enumerate(held)]
    return out


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
    lock_acquire(p, lock)
    return _lock(p, lock, TASK_UNINTERRUPTIBLE)


def mutex_lock_killable(p: "Task", lock: Mutex) -> bool:
    """TASK_KILLABLE: False (-EINTR) if SIGKILL arrives while waiting."""
    lock_acquire(p, lock)
    ok = _lock(p, lock, TASK_KILLABLE)
    if not ok:
        lock_release(p, lock)
    return ok


def mutex_unlock(p: "Task", lock: Mutex) -> None:
    with lock.guard:
        if lock.owner is not p:
            return
        lock_release(p, lock)
        lock.owner = lock.waiters.popleft() if lock.waiters else None
        nxt = lock.owner
    if nxt is not None:
        nxt.wake.set()


# ---- rw_semaphore (kernel/locking/rwsem-xadd.c, 4.4) ----

READ, WRITE = "read", "write"


class _Waiter:
    __slots__ = ("task", "type", "granted")

    def __init__(self, task: "Task", type_: str) -> None:
        self.task, self.type, self.granted = task, type_, False


class RWSem:
    """An rw_semaphore: readers share it, a writer excludes everyone, and
    waiters queue in FIFO order; a reader that finds a waiter queued (a
    writer, say) queues behind it, so a waiting writer blocks new readers.
    up_write()/the last up_read() wake the first waiter: a writer alone, or
    every reader at the head of the queue (__rwsem_do_wake())."""

    def __init__(self, name: str, guard: threading.Lock) -> None:
        self.name = name
        self.guard = guard
        self.readers: collections.Counter[Task] = collections.Counter()
        self.owner: Task | None = None  # the writer
        self.waiters: collections.deque[_Waiter] = collections.deque()

    def __repr__(self) -> str:
        return f"RWSem({self.name}, owner={self.owner!r}, readers={sorted(self.readers, key=id)!r})"

    def _do_wake(self) -> list["Task"]:
        """Under the guard: grant the head of the queue what it can have."""
        woken: list[Task] = []
        if self.owner is not None or not self.waiters:
            return woken
        if self.waiters[0].type == WRITE:
            if not self.readers:
                w = self.waiters.popleft()
                w.granted, self.owner = True, w.task
                woken.append(w.task)
            return woken
        while self.waiters and self.waiters[0].type == READ:
            w = self.waiters.popleft()
            w.granted = True
            self.readers[w.task] += 1
            woken.append(w.task)
        return woken


def rwsem_down_read_failed(p: "Task", sem: RWSem, w: _Waiter) -> None:
    """Sleep uninterruptibly until the waker grants the lock (4.4 has no
    killable rwsem waits yet)."""
    p.blocked_on = sem
    try:
        while True:
            schedule(p, TASK_UNINTERRUPTIBLE)
            with sem.guard:
                if w.granted:
                    return
    finally:
        p.blocked_on = None


def rwsem_down_write_failed(p: "Task", sem: RWSem, w: _Waiter) -> None:
    # rwsem_down_read_failed()'s body, written again on purpose: the task's
    # Python stack is its printed stack trace, which must name this function
    # directly above schedule(), as 4.4's does (a shared helper adds a frame)
    p.blocked_on = sem
    try:
        while True:
            schedule(p, TASK_UNINTERRUPTIBLE)
            with sem.guard:
                if w.granted:
                    return
    finally:
        p.blocked_on = None


def down_read(p: "Task", sem: "RWSem | Mutex") -> bool:
    lock_acquire(p, sem)
    if isinstance(sem, Mutex):
        return _lock(p, sem, TASK_UNINTERRUPTIBLE)
    with sem.guard:
        if sem.owner is None and not sem.waiters:
            sem.readers[p] += 1
            return True
        w = _Waiter(p, READ)
        sem.waiters.append(w)
    rwsem_down_read_failed(p, sem, w)
    return True


def down_write(p: "Task", sem: "RWSem | Mutex") -> bool:
    lock_acquire(p, sem)
    if isinstance(sem, Mutex):
        return _lock(p, sem, TASK_UNINTERRUPTIBLE)
    with sem.guard:
        if sem.owner is None and not sem.readers and not sem.waiters:
            sem.owner = p
            return True
        w = _Waiter(p, WRITE)
        sem.waiters.append(w)
    rwsem_down_write_failed(p, sem, w)
    return True


def up_read(p: "Task", sem: "RWSem | Mutex") -> None:
    if isinstance(sem, Mutex):
        mutex_unlock(p, sem)
        return
    with sem.guard:
        if sem.readers[p] <= 0:
            return
        lock_release(p, sem)
        sem.readers[p] -= 1
        if sem.readers[p] == 0:
            del sem.readers[p]
        woken = sem._do_wake() if not sem.readers else []
    for t in woken:
        t.wake.set()


def up_write(p: "Task", sem: "RWSem | Mutex") -> None:
    if isinstance(sem, Mutex):
        mutex_unlock(p, sem)
        return
    with sem.guard:
        if sem.owner is not p:
            return
        lock_release(p, sem)
        sem.owner = None
        woken = sem._do_wake()
    for t in woken:
        t.wake.set()
