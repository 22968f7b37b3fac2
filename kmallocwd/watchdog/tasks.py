"""Emulated tasks: one worker thread per task, running its workload through
the allocator model (``mm``), the OOM killer (``oom``) and the locks
(``sched``).

A task's fields that the watchdog reads are the task_struct bits the patch
reads: ``state`` (p->state, a bit mask: ``state & TASK_UNINTERRUPTIBLE``),
``flags`` (PF_EXITING), ``sigkill`` (fatal_signal_pending()), ``memdie``
(TIF_MEMDIE); the per-task ``dumped`` counter is in the slot, as in the
seed.  Nothing is scripted: SIGKILL and TIF_MEMDIE come from the OOM killer
that an allocating task runs, and a task blocks only on a lock some other
task holds.

Functions are module-level and named after the kernel's, so that the
watchdog's sched_show_task() (the worker's Python stack) reads like a
kernel trace.  (Module-level on purpose: in a class, Python would mangle the
``__`` names.)
"""

from __future__ import annotations

import random
import threading

from kmallocwd.watchdog import mm as M
from kmallocwd.watchdog import sched
from kmallocwd.watchdog import workload as W
from kmallocwd.watchdog.sched import (TASK_INTERRUPTIBLE, TASK_RUNNING, TASK_UNINTERRUPTIBLE,
                                      Mutex, RWSem)
from kmallocwd.watchdog.system import Halt, System

# Kept for the modules that import them from here.
__all__ = ["TASK_RUNNING", "TASK_INTERRUPTIBLE", "TASK_UNINTERRUPTIBLE", "Task", "make_tasks",
           "start_memalloc_timer", "stop_memalloc_timer"]

start_memalloc_timer = M.start_memalloc_timer
stop_memalloc_timer = M.stop_memalloc_timer


class MMStruct:
    """An mm_struct: the anonymous pages per zone, its users, its locks."""

    def __init__(self, guard: threading.Lock, nzones: int) -> None:
        self.zone_pages = [0] * nzones
        self.users = 0
        self.guard = guard
        self.locks: dict[str, Mutex | RWSem] = {}
        self.mmap_sem = self.lock(W.MMAP_SEM, rw=True)

    def lock(self, name: str, rw: bool = False) -> "Mutex | RWSem":
        if name not in self.locks:
            self.locks[name] = (RWSem if rw else Mutex)(name, self.guard)
        return self.locks[name]

    def rss(self) -> int:
        return sum(self.zone_pages)


class Process:
    """A thread group (signal_struct + the shared mm)."""

    def __init__(self, system: System, spec: W.ProcessSpec) -> None:
        self.spec = spec
        self.comm = spec.name
        self.tgid = spec.tgid
        self.ppid = spec.ppid
        self.oom_score_adj = spec.oom_score_adj
        self.kthread = spec.kthread
        self.mm = None if spec.kthread else MMStruct(system.lock_guard, len(system.memory.zones))
        self.threads: list[Task] = []


class Task:
    """One emulated task: comm, pid, tgid, a slot, flags, a worker thread."""

    def __init__(self, system: System, process: Process, spec: W.ThreadSpec, pid: int, slot: int,
                 rng: random.Random) -> None:
        self.system = system
        self.process = process
        self.spec = spec
        self.comm = spec.name
        self.pid = pid
        self.tgid = process.tgid
        self.ppid = process.ppid
        self.slot = slot
        self.m = system.slots.slot(slot)  # &p->memalloc
        self.rng = rng
        # The task_struct bits the watchdog reads.
        self.state = TASK_RUNNING
        self.flags = (M.PF_KTHREAD if process.kthread else 0) | (
            M.PF_MEMALLOC_NOIO if spec.memalloc_noio else 0)
        self.sigkill = False  # fatal_signal_pending()
        self.memdie = False  # TIF_MEMDIE
        self.mm = process.mm
        self.exited = False  # released: gone from the task list
        self.wake = system.event()  # on the machine's logical clock
        self.nvcsw = 0  # voluntary context switches (khungtaskd compares them)
        self.nivcsw = 0
        self.memstall = False  # in direct reclaim (4.20 PSI's memstall)
        self.cpu = 0  # the CPU it runs on (task_cpu(); make_tasks() spreads them)
        self.slowpath_since: int | None = None  # jiffies at the slow path's entry
        self.blocked_on: Mutex | RWSem | None = None
        self.held_locks: list[sched.HeldLock] = []  # lockdep's held_locks[]
        self.requests = 0  # allocation requests made
        self.failed = 0  # requests that returned no page
        self.thread = threading.Thread(target=task_thread, args=(self,),
                                       name=f"{self.comm}({pid})", daemon=True)

    @property
    def is_leader(self) -> bool:
        return self.pid == self.tgid

    @property
    def exiting(self) -> bool:
        return bool(self.flags & M.PF_EXITING)

    def lock(self, name: str, rw: bool = False) -> "Mutex | RWSem":
        if name.startswith(W.MM_LOCK_PREFIX) and self.process.mm is not None:
            return self.process.mm.lock(name, rw)
        return self.system.named_lock(name, rw)

    def __repr__(self) -> str:
        return f"{self.comm}({self.pid})"


def make_tasks(system: System, scen: W.Workload, seed: int) -> list[Task]:
    """The workload's tasks in for_each_process_thread() order (processes in
    fork order, each with its threads), one slot each."""
    tasks = []
    system.processes = []
    system.cpus = scen.cpus
    for spec in scen.processes:
        proc = Process(system, spec)
        system.processes.append(proc)
        if proc.mm is not None and spec.rss_kb:
            system.memory.charge_boot_rss(proc.mm, spec.rss_kb // W.PAGE_KB)
        for th in spec.threads:
            for pid in th.pids:
                rng = random.Random(seed * 1_000_003 + pid)
                t = Task(system, proc, th, pid, len(tasks), rng)
                t.cpu = task_cpu(t.comm, len(tasks), scen.cpus)
                proc.threads.append(t)
                if th.writeback:
                    system.memory.flusher = True
                if proc.mm is not None:
                    proc.mm.users += 1
                tasks.append(t)
    return tasks


def task_cpu(comm: str, index: int, cpus: int) -> int:
    """The CPU a task runs on: a per-cpu kworker ("kworker/N:M") on CPU N,
    every other task on CPU index % cpus (no migration)."""
    if comm.startswith("kworker/") and ":" in comm:
        n = comm[len("kworker/"):].split(":")[0]
        if n.isdigit() and int(n) < cpus:
            return int(n)
    return index % cpus


# ---- sleeping between requests ----


def schedule_timeout_interruptible(p: Task, seconds: float) -> None:
    """Think time; a signal cuts it short, a halt ends the task.  No think
    time at all still yields (cond_resched()), so that a workload with
    interval_s = 0 cannot hold the machine past its halt."""
    p.system.check_halted()
    if seconds <= 0:
        sched.cond_resched(p, 1e-6)  # the loop's own CPU time: the clock moves on
        return
    deadline = p.system.model_s() + seconds
    while not p.sigkill:
        left = deadline - p.system.model_s()
        if left <= 0:
            break
        sched.schedule_timeout(p, left, TASK_INTERRUPTIBLE)
    p.state = TASK_RUNNING


def do_wait(p: Task) -> None:
    """An idle thread (a main thread in wait4(), a daemon's sleeping thread):
    sleeps interruptibly until a signal comes."""
    while not p.sigkill:
        sched.schedule(p, TASK_INTERRUPTIBLE)
    p.state = TASK_RUNNING


# ---- what the pages are for: each a kernel path that allocates ----


def _alloc_one(p: Task) -> M.Page | None:
    s = p.spec
    p.requests += 1
    page = M.alloc_pages(p, s.gfp, s.order)
    if page is None:
        p.failed += 1
        return None
    if s.use == W.BUFFER:
        p.system.memory.hold(page, p.system.model_s() + s.hold_s.draw(p.rng))
    else:
        p.system.memory.account(page, s.use, p.mm)
    return page


def handle_mm_fault(p: Task) -> bool:
    return _alloc_one(p) is not None


def generic_perform_write(p: Task) -> bool:
    return _alloc_one(p) is not None


def page_cache_read(p: Task) -> bool:
    return _alloc_one(p) is not None


def kmem_cache_alloc(p: Task) -> bool:
    return _alloc_one(p) is not None


def __get_free_pages(p: Task) -> bool:
    return _alloc_one(p) is not None


_PATHS = {W.ANON: handle_mm_fault, W.DIRTY: generic_perform_write, W.PAGECACHE: page_cache_read,
          W.KERNEL: kmem_cache_alloc, W.BUFFER: __get_free_pages}


def do_requests(p: Task) -> None:
    """One burst of requests, under the thread's locks.  A fatal signal ends
    it: a write checks fatal_signal_pending() before each page, as
    generic_perform_write() does (so a killed writer that gets the lock
    does not allocate); other paths notice it after a page."""
    path = _PATHS[p.spec.use]
    writes = p.spec.use in (W.DIRTY, W.PAGECACHE)
    for _ in range(p.spec.burst):
        if writes and p.sigkill:
            break
        if not path(p) or p.sigkill:
            break


def take_locks(p: Task) -> list[tuple["Mutex | RWSem", str | None]]:
    """The thread's locks in order: a mutex with mutex_lock() (or
    mutex_lock_killable()), an rw_semaphore with down_read() or down_write()
    as the scenario says (4.4 has no killable rwsem waits)."""
    held: list[tuple[Mutex | RWSem, str | None]] = []
    for spec in p.spec.locks:
        name, mode = W.split_lock(spec)
        lock = p.lock(name, W.is_rwsem(name, mode))
        if isinstance(lock, RWSem):
            mode = mode or "write"
            ok = sched.down_read(p, lock) if mode == "read" else sched.down_write(p, lock)
        else:
            mode = None
            ok = (sched.mutex_lock_killable(p, lock) if p.spec.killable
                  else sched.mutex_lock(p, lock))
        if not ok:
            break
        held.append((lock, mode))
    p.state = TASK_RUNNING
    return held


def release_locks(p: Task, held: list[tuple["Mutex | RWSem", str | None]]) -> None:
    for lock, mode in reversed(held):
        if mode == "read":
            sched.up_read(p, lock)
        elif mode == "write":
            sched.up_write(p, lock)
        else:
            sched.mutex_unlock(p, lock)


# ---- exiting ----


def exit_oom_victim(p: Task) -> None:
    p.memdie = False


def exit_mm(p: Task) -> None:
    """down_read(&mm->mmap_sem) (blocks while a task holding it allocates),
    drop the task's mm; the last user frees the pages (mmput); then
    TIF_MEMDIE is cleared, as 4.4 does."""
    mm = p.mm
    if mm is None:
        return
    sched.down_read(p, mm.mmap_sem)
    p.state = TASK_RUNNING
    p.mm = None
    mm.users -= 1
    sched.up_read(p, mm.mmap_sem)
    if mm.users == 0:
        p.system.memory.mmput(mm)
    if p.memdie:
        exit_oom_victim(p)


def do_exit(p: Task) -> None:
    # get_signal() dequeued SIGKILL before do_exit() (the patch prints
    # "exiting" rather than "dying" for such a task); exit_signals() sets
    # PF_EXITING.
    p.sigkill = False
    p.flags |= M.PF_EXITING
    exit_mm(p)
    p.exited = True  # release_task(): gone from the task list


# ---- kswapd ----


def balance_pgdat(p: Task) -> None:
    """kswapd's pass (4.4): reclaim clean page cache from the zones below
    their high watermark; a zone it can free nothing from is scanned whole
    (its file LRU twice over, as a direct reclaimer's failed pass), which
    counts towards its NR_PAGES_SCANNED.  A zone no longer
    zone_reclaimable() counts as balanced (pgdat_balanced()), so kswapd
    leaves it alone.  Dirty pages: a pass that meets only dirty ones flags
    the zone ZONE_DIRTY, and in a ZONE_DIRTY zone kswapd, alone of the
    reclaimers, writes them (pageout(): at most SWAP_CLUSTER_MAX per zone
    per pass); a balanced zone loses the flag."""
    mem = p.system.memory
    while True:
        zones = mem.below_high()
        with mem.lock:
            for z in mem.zones:
                if z.free_pages() >= z.high:
                    z.zone_dirty = False  # zone_balanced(): clear_bit(ZONE_DIRTY)
        if not zones:
            return
        reclaimed = 0
        with mem.lock:
            mem.tick()
            scans = []
            for z in zones:
                n = min(z.file, M.SWAP_CLUSTER_MAX)
                if n:
                    z.file -= n
                    z.give(n)
                    reclaimed += n
                else:
                    if z.dirty:  # shrink_page_list() on dirty pages
                        if M.may_pageout(p, z):
                            M.pageout(mem, z, M.SWAP_CLUSTER_MAX)
                        z.zone_dirty = True  # nr_unqueued_dirty == nr_taken
                    scans.append((z, 2 * z.reclaimable()))
        if scans and mem.reclaim_rate:
            cost = max(M.COND_RESCHED_S, min(sum(n for _, n in scans) / mem.reclaim_rate, 0.1))
            slices = max(1, round(cost / 0.01))
            for _ in range(slices):
                with mem.lock:
                    mem.tick()
                    for z, n in scans:
                        z.pages_scanned += n // slices
                sched.cond_resched(p, cost / slices)
        if not reclaimed:
            return
        cost = reclaimed / mem.reclaim_rate if mem.reclaim_rate else 0.0
        sched.cond_resched(p, max(M.COND_RESCHED_S, min(cost, 0.1)))


def kswapd_try_to_sleep(p: Task) -> None:
    """4.4's kswapd_try_to_sleep(): a short nap (HZ/10) first; if nobody
    woke it and the zones are still balanced after it, sleep until an
    allocation's wakeup_kswapd() (schedule())."""
    woken = sched.schedule_timeout(p, 0.1, TASK_INTERRUPTIBLE)  # HZ/10
    if woken or p.system.memory.below_high():
        return
    sched.schedule(p, TASK_INTERRUPTIBLE)


def kswapd(p: Task) -> None:
    """Sleeps until an allocation wakes it, then reclaims clean page cache
    until every zone is above its high watermark or nothing is left."""
    p.system.kswapd_task = p
    while True:
        kswapd_try_to_sleep(p)
        balance_pgdat(p)


# ---- the flusher ----


def wb_writeback(p: Task) -> None:
    """A flusher thread: each batch of writeback needs a page for the I/O (a
    bio, a buffer head); while that allocation stalls, no dirty page is
    written back."""
    mem = p.system.memory
    s = p.spec
    page = M.alloc_pages(p, s.gfp, s.order)
    if page is None:
        return
    with mem.lock:
        mem.writeback(flushing=True)
    mem.free_page(page, W.BUFFER)  # the I/O completed


def wb_workfn(p: Task) -> None:
    mem = p.system.memory
    with mem.lock:
        mem.writeback(flushing=True)  # starts the writeback clock now
    while True:
        schedule_timeout_interruptible(p, p.spec.interval_s.draw(p.rng))
        wb_writeback(p)


# ---- the task's life ----


def task_thread(p: Task) -> None:
    """The thread's body: the task's life, then it leaves the machine's
    clock (it was entered by whoever started it)."""
    p.system.vclock.begin()
    try:
        task_main(p)
    finally:
        p.system.vclock.leave()


def task_main(p: Task) -> None:
    s = p.spec
    try:
        if p.comm.startswith("kswapd"):
            kswapd(p)
            return
        if s.writeback:
            wb_workfn(p)
            return
        start = s.start_s.draw(p.rng)
        if start > 0:
            schedule_timeout_interruptible(p, start)
        while True:
            if p.sigkill and not p.process.kthread:
                do_exit(p)
                return
            if s.idle:
                do_wait(p)
                continue
            schedule_timeout_interruptible(p, s.interval_s.draw(p.rng))
            if p.sigkill:
                continue
            held = take_locks(p)
            try:
                if len(held) == len(s.locks):
                    do_requests(p)
            finally:
                release_locks(p, held)
    except Halt:
        pass
    except BaseException as exc:  # surfaced by the run
        p.system.errors.append(exc)
        p.system.halt()
