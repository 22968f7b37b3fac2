"""Emulated tasks: one worker thread per task, allocating through its slot.

The worker runs module-level functions named after the kernel functions
they stand for (``__alloc_pages_nodemask``, ``__alloc_pages_slowpath``,
``wait_iff_congested``, ``mutex_lock``, ``do_exit``, ...), so that the
watchdog's emulated sched_show_task(), which prints the worker's Python
stack, shows where the task is stuck.  (They are module-level functions on
purpose: inside a class, Python would mangle the ``__`` names.)

A task's fields that the watchdog reads are the task_struct bits the seed
reads: ``state`` (p->state: 'R', 'S' or 'D' = TASK_UNINTERRUPTIBLE),
``exiting`` (PF_EXITING), ``sigkill`` (fatal_signal_pending()), ``memdie``
(TIF_MEMDIE); the per-task ``dumped`` counter is in the slot, as in the
seed.  The OOM killer (the scenario's fates) sets flags from its own
thread, as the kernel's does.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass

from kmallocwd._core import lib
from kmallocwd.watchdog import scenario as sc
from kmallocwd.watchdog.memory import Block
from kmallocwd.watchdog.system import Halt, System

TASK_RUNNING = "R"
TASK_INTERRUPTIBLE = "S"
TASK_UNINTERRUPTIBLE = "D"


class Task:
    """One emulated task: a comm, a pid, a slot, flags, a worker thread."""

    def __init__(self, system: System, group: sc.Group, pid: int, slot: int,
                 rng: random.Random) -> None:
        self.system = system
        self.group = group
        self.comm = group.name
        self.pid = pid
        self.ppid = group.ppid
        self.slot = slot
        self.m = system.slots.slot(slot)  # &p->memalloc
        self.rng = rng
        # The task_struct bits the watchdog reads.
        self.state = TASK_INTERRUPTIBLE
        self.exiting = False  # PF_EXITING
        self.sigkill = False  # fatal_signal_pending()
        self.memdie = False  # TIF_MEMDIE
        self.exited = False  # released: gone from the task list
        # What the scenario asked for and the worker has yet to act on.
        self.stall_mode = False
        self.block_pending = False
        self.exit_pending: str | None = None
        self.wake = threading.Event()
        self.held: Block | None = None
        self.requests = 0  # allocation requests made (outer ones)
        # Fate times drawn once, in the scenario's order.
        self.fates = [(f.at_s.draw(rng), f.action) for f in group.fates]
        self.thread = threading.Thread(target=task_main, args=(self,),
                                       name=f"{self.comm}({pid})", daemon=True)

    def __repr__(self) -> str:
        return f"{self.comm}({self.pid})"


def make_tasks(system: System, scen: sc.Scenario, seed: int) -> list[Task]:
    """The scenario's tasks, in fork (pid) order, one slot each."""
    members = sorted(((pid, g) for g in scen.groups for pid in g.pids), key=lambda x: x[0])
    tasks = []
    for slot, (pid, g) in enumerate(members):
        rng = random.Random(seed * 1_000_003 + pid)
        tasks.append(Task(system, g, pid, slot, rng))
    return tasks


# ---- the slot's writer: the seed's start/stop_memalloc_timer() ----


def start_memalloc_timer(p: Task, gfp_mask: int, order: int) -> None:
    lib.kmw_start_memalloc_timer(p.system.proto_id, p.m, gfp_mask, order, p.system.jiffies())


def stop_memalloc_timer(p: Task, gfp_mask: int) -> None:
    lib.kmw_stop_memalloc_timer(p.system.proto_id, p.m, gfp_mask)


# ---- sleeping ----


def schedule_timeout(p: Task, seconds: float | None) -> None:
    """Sleep until the time is up or something wakes the task; the caller
    re-checks what it waits for.  Raises Halt when the machine halts."""
    p.system.check_halted()
    p.wake.wait(seconds)
    p.wake.clear()
    p.system.check_halted()


def _left(deadline: float) -> float:
    return deadline - time.monotonic()


def schedule_timeout_interruptible(p: Task, seconds: float) -> None:
    """The task's think time between requests; a fate cuts it short."""
    p.state = TASK_INTERRUPTIBLE
    deadline = time.monotonic() + seconds
    while not (p.stall_mode or p.exit_pending or p.block_pending):
        left = _left(deadline)
        if left <= 0:
            break
        schedule_timeout(p, left)


def schedule(p: Task) -> None:
    """Sleep uninterruptibly for good: nothing but a halt ends it."""
    p.state = TASK_UNINTERRUPTIBLE
    while True:
        schedule_timeout(p, None)


def __mutex_lock_slowpath(p: Task, lock: str) -> None:
    schedule(p)  # the holder never unlocks: it is stuck in an allocation


def mutex_lock(p: Task, lock: str) -> None:
    """An unkillable lock held by someone who never lets go."""
    __mutex_lock_slowpath(p, lock)


def rwsem_down_read_failed(p: Task, sem: str) -> None:
    schedule(p)


def down_read(p: Task, sem: str) -> None:
    rwsem_down_read_failed(p, sem)


# ---- allocating ----


def wait_iff_congested(p: Task, seconds: float | None) -> None:
    """The slow path's back-off between retries (the task stays runnable:
    the "100% CPU" kind of stall of the seed's documentation)."""
    p.state = TASK_RUNNING
    schedule_timeout(p, seconds)


def shrink_slab(p: Task) -> None:
    """Direct reclaim that itself allocates: a nested request."""
    g = p.group
    __alloc_pages_nodemask(p, g.nest_gfp, g.nest_order, g.nest_request_s.draw(p.rng), False)


def __alloc_pages_slowpath(p: Task, gfp_mask: int, order: int, duration: float | None,
                           nest: bool) -> bool:
    """Retry until the request is satisfied (after ``duration`` seconds),
    never (a stall), or the task is told to exit (the allocation fails)."""
    p.state = TASK_RUNNING
    deadline = None if duration is None else time.monotonic() + duration
    if nest:
        shrink_slab(p)
    while True:
        if p.exit_pending:
            return False
        if p.stall_mode:
            deadline = None  # memory ran out: this request no longer finishes
        left = None if deadline is None else _left(deadline)
        if left is not None and left <= 0:
            return True
        wait_iff_congested(p, left)


def __alloc_pages_nodemask(p: Task, gfp_mask: int, order: int, duration: float | None,
                           nest: bool) -> bool:
    """mm/page_alloc.c as the seed patches it: the timer brackets the slow
    path.  On a halt the slot is left as it is (no stop_memalloc_timer)."""
    start_memalloc_timer(p, gfp_mask, order)
    ok = __alloc_pages_slowpath(p, gfp_mask, order, duration, nest)
    stop_memalloc_timer(p, gfp_mask)
    return ok


def alloc_pages(p: Task) -> None:
    """One request of the task's group: its gfp and order, a duration drawn
    from request_s, or a stall (never finishes) with stall_probability."""
    g = p.group
    p.system.memory.free(p.held)  # the task freed its last allocation
    p.held = None
    stall = p.stall_mode or p.rng.random() < g.stall_probability
    duration = None if stall else g.request_s.draw(p.rng)
    nest = p.rng.random() < g.nest_probability
    p.requests += 1
    if __alloc_pages_nodemask(p, g.gfp, g.order, duration, nest):
        p.held = p.system.memory.alloc(g.order)
    p.state = TASK_INTERRUPTIBLE


# ---- exiting ----


def exit_mm(p: Task, blocked: bool) -> None:
    if blocked:
        down_read(p, "&mm->mmap_sem")  # held by a task stuck in an allocation
    p.system.memory.free(p.held)
    p.held = None


def do_exit(p: Task, blocked: bool) -> None:
    # get_signal() dequeued SIGKILL before do_exit() (the seed prints
    # "exiting" rather than "dying" for such a task), then PF_EXITING.
    p.sigkill = False
    p.exiting = True
    exit_mm(p, blocked)
    p.exited = True  # release_task(): gone from the task list


# ---- the task's life ----


def task_main(p: Task) -> None:
    """The worker thread: think, allocate, repeat; obey the fates."""
    g = p.group
    try:
        while True:
            if p.exit_pending:
                do_exit(p, p.exit_pending == sc.EXIT_BLOCKED)
                return
            if p.block_pending:
                mutex_lock(p, "&inode->i_mutex")
            if not p.stall_mode:
                schedule_timeout_interruptible(p, g.interval_s.draw(p.rng))
                if p.exit_pending or p.block_pending:
                    continue
            alloc_pages(p)
    except Halt:
        pass
    except BaseException as exc:  # surfaced by the run
        p.system.errors.append(exc)
        p.system.halt()


# ---- the OOM killer and the other fates ----


@dataclass(frozen=True)
class Due:
    at_ns: int
    task: Task
    action: str


def apply_fate(p: Task, action: str) -> None:
    """What the OOM killer, a signal or the scenario does to a task."""
    if action == sc.STALL:
        p.stall_mode = True
    elif action == sc.UNINTERRUPTIBLE:
        p.block_pending = True
    elif action == sc.SIGKILL:
        p.sigkill = True
    elif action == sc.VICTIM:
        p.memdie = True
    elif action in (sc.EXIT, sc.EXIT_BLOCKED):
        p.exit_pending = action
    p.wake.set()


def fate_schedule(system: System, tasks: list[Task]) -> list[Due]:
    due = [Due(system.t0_ns + int(at * 1e9), t, a) for t in tasks for at, a in t.fates]
    return sorted(due, key=lambda d: d.at_ns)  # stable: a task's fates keep their order


def oom_killer(system: System, due: list[Due]) -> None:
    """Thread body: apply each fate at its time (since the emulated boot)."""
    try:
        for d in due:
            while True:
                left = (d.at_ns - system.now_ns()) / 1e9
                if left <= 0:
                    break
                if system.halted.wait(left):
                    return
            if system.halted.is_set():
                return
            if not d.task.exited:
                apply_fate(d.task, d.action)
    except BaseException as exc:  # pragma: no cover - surfaced by the run
        system.errors.append(exc)
        system.halt()

