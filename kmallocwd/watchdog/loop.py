"""kmallocwd(), the patch's watchdog kernel thread, step for step.

The structure is the patch's (mm/page_alloc.c of the v3 patch):

    restart:
        while (1) { t = earliest start + timeout over valid slots;
                    if t <= 0 goto stalling; schedule_timeout_interruptible(t); }
    stalling:
        now = jiffies; expire = now - kmallocwd_timeout;
        pass 1: count TIF_MEMDIE, fatal_signal_pending(), is_stalling_task()
        if (!stalling_tasks) goto restart;
        pr_warn("MemAlloc-Info: ...")
        pass 2: one "MemAlloc: ..." line per task of interest, is_stalling_task()
                evaluated again (so counts may differ under races, as in the kernel)
        pass 3: sched_show_task() and debug_show_held_locks() of every dying
                task, and of each stalling task while its memalloc.dumped++ < 2
        show_mem(0); schedule_timeout_interruptible(kmallocwd_timeout); goto restart

is_stalling_task() is the C core's, with the chosen protocol's reader; its
snapshot goes to one buffer, the patch's static ``memalloc``.  Every snapshot
the reader accepts is also checked with the core's exact witness, and torn
ones are counted (the patch does not know; the emulator tells).
"""

from __future__ import annotations

import threading

from kmallocwd._core import ffi, lib
from kmallocwd.watchdog.carith import first_loop_t, ulong
from kmallocwd.watchdog.printk import Log
from kmallocwd.watchdog.report import Report, TaskLine, Trace
from kmallocwd.watchdog.sched import debug_show_held_locks
from kmallocwd.watchdog.stacks import print_worker_info, sched_show_task
from kmallocwd.watchdog.system import Halt, System
from kmallocwd.watchdog.tasks import TASK_UNINTERRUPTIBLE, Task



class ReaderStats:
    """What is_stalling_task()'s reader did over the whole run: the C core's
    one tally (struct kmw_tally, as stress's scan fills it), read here."""

    def __init__(self) -> None:
        self.tally = ffi.new("struct kmw_tally *")

    def add(self, outcome: int, snap, slot: int) -> None:
        lib.kmw_tally_read(self.tally, outcome, snap, slot)

    @property
    def calls(self) -> int:
        return int(self.tally.attempts)

    @property
    def torn(self) -> int:
        t = self.tally
        return int(t.outcome[lib.KMW_O_TORN_MIXED] + t.outcome[lib.KMW_O_TORN_SEQ]
                   + t.outcome[lib.KMW_O_TORN_INSIDE])

    @property
    def accepted(self) -> int:
        return int(self.tally.outcome[lib.KMW_O_CONSISTENT]) + self.torn

    @property
    def rejected_odd(self) -> int:
        return int(self.tally.outcome[lib.KMW_O_REJECTED_ODD])

    @property
    def rejected_invalid(self) -> int:
        return int(self.tally.outcome[lib.KMW_O_REJECTED_INVALID])

    def to_dict(self) -> dict:
        return {"calls": self.calls, "accepted": self.accepted, "torn": self.torn,
                "rejected_odd": self.rejected_odd, "rejected_invalid": self.rejected_invalid}


class Watchdog:
    """The kmallocwd kernel thread of one emulated machine."""

    def __init__(self, system: System, timeout_jiffies: int, log: Log) -> None:
        self.sys = system
        self.timeout = timeout_jiffies  # kmallocwd_timeout
        self.log = log
        self.memalloc = ffi.new("struct memalloc_info *")  # filled by is_stalling_task()
        self.outcome = ffi.new("int *")
        self.torn = False  # was the last accepted snapshot torn?
        self.stats = ReaderStats()
        self.reports: list[Report] = []
        self.scans = 0  # passes of the first loop
        self.thread = threading.Thread(target=system.clocked(self.kmallocwd), name="kmallocwd",
                                       daemon=True)

    # ---- the patch's helpers ----

    def is_stalling_task(self, p: Task, expire: int) -> bool:
        stalling = bool(lib.kmw_is_stalling_task(self.sys.proto_id, p.m, expire,
                                                 self.memalloc, self.outcome))
        before = self.stats.torn
        self.stats.add(self.outcome[0], self.memalloc, p.pid)
        self.torn = self.stats.torn != before
        return stalling

    def schedule_timeout_interruptible(self, t: int) -> None:
        """Sleep ``t`` jiffies; raise Halt if the machine halts meanwhile."""
        if self.sys.sleep(max(t, 0) / self.sys.hz):
            raise Halt()

    @staticmethod
    def dumped_inc(p: Task) -> int:
        """``p->memalloc.dumped++``: a plain u8 read-modify-write of the live
        slot, racing with start_memalloc_timer()'s ``dumped = 0`` as in the
        seed; returns the value before the increment."""
        d = int(p.m.dumped)
        p.m.dumped = (d + 1) & 0xFF
        return d

    # ---- the thread ----

    def kmallocwd(self) -> None:
        try:
            while True:
                self.sleep_until_stalled()  # restart:
                self.stalling()
        except Halt:
            return
        except BaseException as exc:  # surfaced by the run
            self.sys.errors.append(exc)
            self.sys.halt()

    def sleep_until_stalled(self) -> None:
        """The patch's first while(1) loop: sleep until the earliest moment a
        stall could be due, computed exactly as the patch computes it."""
        while True:
            self.scans += 1
            # plain reads of valid slots: "we might see outdated values"
            starts = (p.m.start for p in self.sys.for_each_process_thread() if p.m.valid)
            t = first_loop_t(self.timeout, self.sys.jiffies(), starts)
            if t <= 0:
                return  # goto stalling;
            self.schedule_timeout_interruptible(t)

    def stalling(self) -> None:
        sys_, log = self.sys, self.log
        now = sys_.jiffies()
        expire = ulong(now - self.timeout)
        # Count stalling tasks, dying and victim tasks.
        sigkill_pending = memdie_pending = stalling_tasks = 0
        counted: dict[int, bool] = {}
        for p in sys_.for_each_process_thread():
            if p.memdie:
                memdie_pending += 1
            if p.sigkill:
                sigkill_pending += 1
            counted[id(p)] = self.is_stalling_task(p, expire)
            if counted[id(p)]:
                stalling_tasks += 1
        # Do not report if stalling tasks called stop_memalloc_timer().
        if not stalling_tasks:
            return
        # Report stalling tasks, dying and victim tasks.
        info = (f"MemAlloc-Info: {stalling_tasks} stalling task, {sigkill_pending} dying task, "
                f"{memdie_pending} victim task.")
        report = Report(n=len(self.reports) + 1, time_ns=log.printk(info), jiffies=now,
                        expire=expire, stalling=stalling_tasks, dying=sigkill_pending,
                        victim=memdie_pending, info=info)
        for p in sys_.for_each_process_thread():
            kind = 0
            if p.memdie:
                kind |= 1
            if p.sigkill:
                kind |= 2
            if self.is_stalling_task(p, expire):
                kind |= 4
            if bool(kind & 4) != counted.get(id(p), False):
                report.raced += 1
            if not kind:
                continue
            buf = ""
            seq = gfp = order = delay = None
            stalled = bool(kind & 4)
            if stalled:
                m = self.memalloc
                seq, gfp, order = int(m.sequence) >> 1, int(m.gfp), int(m.order)
                delay = ulong(now - m.start)
                buf = f" seq={seq} gfp=0x{gfp:x} order={order} delay={delay}"
            # Victim tasks get pending SIGKILL removed before arriving at
            # do_exit(). Therefore, print " exiting" instead for " dying".
            unint = bool(p.state & TASK_UNINTERRUPTIBLE)  # TASK_KILLABLE too
            exiting = p.exiting
            text = (f"MemAlloc: {p.comm}({p.pid}){buf}"
                    f"{' uninterruptible' if unint else ''}{' exiting' if exiting else ''}"
                    f"{' dying' if kind & 2 else ''}{' victim' if kind & 1 else ''}")
            report.lines.append(TaskLine(
                time_ns=log.printk(text), comm=p.comm, pid=p.pid, stalling=stalled,
                seq=seq, gfp=gfp, order=order, delay=delay,
                uninterruptible=unint, exiting=exiting, dying=bool(kind & 2),
                victim=bool(kind & 1), torn=stalled and self.torn,
                counted_stalling=counted.get(id(p), False), text=text))
        log.flush()
        # Show traces of dying tasks (including victim tasks) and newly
        # reported (or too long) stalling tasks.
        for p in sys_.for_each_process_thread():
            dying = p.sigkill
            if dying or (self.is_stalling_task(p, expire) and self.dumped_inc(p) < 2):
                report.traces.append(self.show_task(p, "dying" if dying else "stalling"))
        log.flush()
        # Show memory information. (SysRq-m)
        lines, report.show_mem = sys_.memory.show_mem()
        for line in lines:
            log.printk(line)
        log.flush()
        self.reports.append(report)
        log.record(report.to_json())
        # Sleep until next timeout duration.
        self.schedule_timeout_interruptible(self.timeout)

    def show_task(self, p: Task, why: str) -> Trace:
        """sched_show_task(p); debug_show_held_locks(p), as lockdep prints
        it (the emulator knows every lock a task holds or waits for)."""
        head, frames = sched_show_task(p)
        t = self.log.printk(head)
        wq = print_worker_info(p)
        if wq is not None:
            self.log.printk(wq)
        self.log.printk("Call Trace:")
        texts = [f.text() for f in frames]
        for line in texts:
            self.log.printk(line)
        held = debug_show_held_locks(p)
        for line in held:
            self.log.printk(line)
        return Trace(t, p.comm, p.pid, why, head, texts, held, wq or "")
