"""Comparison detectors on the same run (``--detectors khungtaskd,warn_alloc,psi``).

- **khungtaskd** (kernel/hung_task.c, 4.4): every hung_task_timeout_secs
  (default 120) it checks each task whose ``state == TASK_UNINTERRUPTIBLE``
  (exactly: TASK_KILLABLE sleepers are skipped) and reports it if its
  context-switch count (nvcsw + nivcsw) has not changed since the last
  check: "INFO: task %s:%d blocked for more than %ld seconds.", at most
  hung_task_warnings (10) times; a task that never switched is skipped.
  A task looping in the allocator (R) or sleeping in short congestion
  waits (D, but switched every 20 to 100 ms) is never
  reported: the patch's Documentation's motivation.
- **warn_alloc** (mm/page_alloc.c as of 4.9): the allocating task itself,
  after a failed direct reclaim and past 4.9's ``__GFP_NORETRY`` and
  costly-order (without ``__GFP_REPEAT``) exits, prints "%s: page allocation stalls for
  %ums, order:%u, mode:%#x(%pGg)" once it has been in the slow path longer
  than stall_timeout (10 s, then +10 s each time), rate-limited like
  nopage_rs (10 per 5 s), not for __GFP_NOWARN.  dump_stack() and
  show_mem() that follow are left out.  A task blocked outside the
  allocator (in a lock, in exit_mm()) is never reported.
- **psi** (kernel/sched/psi.c, 4.20+): memory pressure from the tasks'
  stall time, per CPU as 4.20 keeps it (the scenario's ``cpus``; each task
  on its Task.cpu): on a CPU, "some" while NR_MEMSTALL (a task in direct
  reclaim: 4.20 counts reclaim, compaction and refaults, not the waits
  between passes), "full" while NR_MEMSTALL && !NR_RUNNING (its stalled
  tasks sleep, in reclaim's D waits, and nothing else runs there: a task
  reclaiming on the CPU is running); the machine's share is each state's
  time over the CPUs that are not idle (NR_RUNNING, NR_MEMSTALL or
  NR_IOWAIT), as collect_percpu_times() weighs them; triggers are
  post-4.20 (5.2); avg10/avg60/avg300 updated every 2 s as psi does; a trigger
  "some 150000 1000000" (150 ms of stall within 1 s, the example of
  Documentation/accounting/psi.rst) fires at most once per window.  PSI
  prints nothing to dmesg: the summary shows it.
"""

from __future__ import annotations

import collections
import math
import threading
from dataclasses import dataclass, field

from kmallocwd import gfp as G
from kmallocwd.watchdog.carith import time_after, ulong
from kmallocwd.watchdog.sched import TASK_RUNNING, TASK_UNINTERRUPTIBLE
from kmallocwd.watchdog.system import Halt, System

NAMES = ("khungtaskd", "warn_alloc", "psi")
HUNG_TASK_WARNINGS = 10
PSI_FREQ_S = 2.0
PSI_TICK_S = 0.02
PSI_WINDOWS = (10, 60, 300)
TRIGGER_STALL_S, TRIGGER_WINDOW_S = 0.15, 1.0
RATELIMIT_INTERVAL_S, RATELIMIT_BURST = 5.0, 10
GFP_NOWARN_BIT = G.___GFP_NOWARN  # a plain name: a class would mangle "___GFP_..."

# 4.9's __def_gfpflag_names (include/trace/events/mmflags.h), in its order:
# format_flags() prints each entry whose bits are all set and clears them.
# (The masks whose 4.9 value needs bits 4.4 does not have are left out.)
_PGG = (("GFP_TRANSHUGE", G.GFP_TRANSHUGE), ("GFP_HIGHUSER_MOVABLE", G.GFP_HIGHUSER_MOVABLE),
        ("GFP_HIGHUSER", G.GFP_HIGHUSER), ("GFP_USER", G.GFP_USER),
        ("GFP_KERNEL", G.GFP_KERNEL), ("GFP_NOFS", G.GFP_NOFS), ("GFP_ATOMIC", G.GFP_ATOMIC),
        ("GFP_NOIO", G.GFP_NOIO), ("GFP_NOWAIT", G.GFP_NOWAIT), ("GFP_DMA", G.GFP_DMA),
        ("__GFP_HIGHMEM", G.___GFP_HIGHMEM), ("GFP_DMA32", G.GFP_DMA32),
        ("__GFP_HIGH", G.___GFP_HIGH), ("__GFP_ATOMIC", G.___GFP_ATOMIC),
        ("__GFP_IO", G.___GFP_IO), ("__GFP_FS", G.___GFP_FS), ("__GFP_COLD", G.___GFP_COLD),
        ("__GFP_NOWARN", G.___GFP_NOWARN), ("__GFP_REPEAT", G.___GFP_REPEAT),
        ("__GFP_NOFAIL", G.___GFP_NOFAIL), ("__GFP_NORETRY", G.___GFP_NORETRY),
        ("__GFP_COMP", G.___GFP_COMP), ("__GFP_ZERO", G.___GFP_ZERO),
        ("__GFP_NOMEMALLOC", G.___GFP_NOMEMALLOC), ("__GFP_MEMALLOC", G.___GFP_MEMALLOC),
        ("__GFP_HARDWALL", G.___GFP_HARDWALL), ("__GFP_THISNODE", G.___GFP_THISNODE),
        ("__GFP_RECLAIMABLE", G.___GFP_RECLAIMABLE), ("__GFP_MOVABLE", G.___GFP_MOVABLE),
        ("__GFP_NOTRACK", G.___GFP_NOTRACK), ("__GFP_WRITE", G.___GFP_WRITE),
        ("__GFP_RECLAIM", G.__GFP_RECLAIM), ("__GFP_DIRECT_RECLAIM", G.___GFP_DIRECT_RECLAIM),
        ("__GFP_KSWAPD_RECLAIM", G.___GFP_KSWAPD_RECLAIM),
        ("__GFP_OTHER_NODE", G.___GFP_OTHER_NODE))


def pgg(mask: int) -> str:
    """%pGg: the flag names of a gfp mask as 4.9's format_flags() prints
    them, in __def_gfpflag_names' order; what is left, in hex."""
    names = []
    for name, m in _PGG:
        if m and mask & m == m:
            names.append(name)
            mask &= ~m
    if mask:
        names.append(f"{mask:#x}")
    return "|".join(names)


@dataclass
class Event:
    detector: str
    time_ns: int
    text: str

    def to_json(self) -> dict:
        return {"detector": self.detector, "time": round(self.time_ns / 1e9, 6), "text": self.text}


@dataclass
class PsiState:
    some_total: float = 0.0
    full_total: float = 0.0
    some_period: float = 0.0
    full_period: float = 0.0
    avg: dict = field(default_factory=lambda: {k: {w: 0.0 for w in PSI_WINDOWS}
                                               for k in ("some", "full")})
    max_avg10: dict = field(default_factory=lambda: {"some": 0.0, "full": 0.0})
    window: collections.deque = field(default_factory=collections.deque)  # (t, some dt)
    window_sum: float = 0.0
    last_fire: float = -1e9
    fired: int = 0


class Detectors:
    def __init__(self, system: System, names: tuple[str, ...], hung_task_timeout_s: float,
                 warn_alloc_s: float) -> None:
        self.sys = system
        self.names = names
        self.hung_timeout = hung_task_timeout_s
        self.warn_s = warn_alloc_s
        self.events: list[Event] = []
        self.first: dict[str, float] = {}
        self.lock = threading.Lock()
        self.hung_warnings = HUNG_TASK_WARNINGS
        self.last_switch: dict[int, int] = {}
        self.warn_state: dict[int, tuple[int, int]] = {}  # pid -> (slow path entry, next stall)
        self.rate: collections.deque = collections.deque()
        self.suppressed = 0
        self.psi = PsiState()
        self.thread = threading.Thread(target=self.sys.clocked(self.main), name="detectors",
                                       daemon=True)

    def emit(self, detector: str, text: str, printk: bool = True) -> None:
        ns = self.sys.uptime_ns()
        if printk:
            self.sys.printk(text)
        with self.lock:
            self.events.append(Event(detector, ns, text))
            self.first.setdefault(detector, ns / 1e9)

    # ---- warn_alloc: called by the allocating task ----

    def warn_alloc(self, p, gfp_mask: int, order: int) -> None:
        if "warn_alloc" not in self.names or p.slowpath_since is None:
            return
        since = p.slowpath_since
        hz = self.sys.hz
        step = max(1, round(self.warn_s * hz))
        entry, stall = self.warn_state.get(p.pid, (None, step))
        if entry != since:
            stall = step
        now = self.sys.jiffies()
        if time_after(now, ulong(since + stall)):
            stall += step
            if not gfp_mask & GFP_NOWARN_BIT and self._ratelimit():
                ms = ulong(now - since) * 1000 // hz
                self.emit("warn_alloc", f"{p.comm}: page allocation stalls for {ms}ms, "
                          f"order:{order}, mode:{gfp_mask:#x}({pgg(gfp_mask)})")
        self.warn_state[p.pid] = (since, stall)

    def _ratelimit(self) -> bool:
        now = self.sys.now_s()
        with self.lock:
            while self.rate and now - self.rate[0] > RATELIMIT_INTERVAL_S:
                self.rate.popleft()
            if len(self.rate) >= RATELIMIT_BURST:
                self.suppressed += 1
                return False
            self.rate.append(now)
            return True

    # ---- khungtaskd ----

    def check_hung_uninterruptible_tasks(self) -> None:
        for t in self.sys.for_each_process_thread():
            if t.state == TASK_UNINTERRUPTIBLE:  # "==": TASK_KILLABLE is skipped
                self.check_hung_task(t)

    def check_hung_task(self, t) -> None:
        switch_count = t.nvcsw + t.nivcsw
        # "When a freshly created task is scheduled once, changes its state to
        # TASK_UNINTERRUPTIBLE without having ever been switched out once, it
        # musn't be checked."
        if not switch_count:
            return
        if switch_count != self.last_switch.get(t.pid):
            self.last_switch[t.pid] = switch_count
            return
        if not self.hung_warnings:
            return
        self.hung_warnings -= 1
        from kmallocwd.watchdog.stacks import print_worker_info, sched_show_task

        self.emit("khungtaskd", f"INFO: task {t.comm}:{t.pid} blocked for more than "
                  f"{self.hung_timeout:g} seconds.")
        self.sys.printk("      Not tainted 4.4.0-kmallocwd #1")
        self.sys.printk('"echo 0 > /proc/sys/kernel/hung_task_timeout_secs" disables this '
                        "message.")
        head, frames = sched_show_task(t)
        self.sys.printk(head)
        wq = print_worker_info(t)
        if wq is not None:
            self.sys.printk(wq)
        self.sys.printk("Call Trace:")
        for f in frames:
            self.sys.printk(f.text())

    # ---- PSI ----

    def psi_cpu_states(self) -> list[tuple[bool, bool, bool]]:
        """Per CPU: (some, full, nonidle) from its tasks' NR_MEMSTALL,
        NR_RUNNING and NR_IOWAIT counts (test_state() of 4.20)."""
        cpus = max(1, self.sys.cpus)
        memstall, running, iowait = [0] * cpus, [0] * cpus, [0] * cpus
        for t in self.sys.for_each_process_thread():
            if t is self.sys.kswapd_task:
                continue
            c = t.cpu % cpus
            if t.memstall:
                memstall[c] += 1
            if t.state == TASK_RUNNING and not t.spec.idle:
                running[c] += 1
            elif t.state == TASK_UNINTERRUPTIBLE and t.blocked_on is None:
                iowait[c] += 1  # io_schedule_timeout(): congestion waits
        return [(bool(m), bool(m) and not r, bool(m or r or w))
                for m, r, w in zip(memstall, running, iowait)]

    def psi_sample(self, dt: float, now: float) -> None:
        states = self.psi_cpu_states()
        nonidle = sum(1 for _, _, n in states if n)
        ps = self.psi
        some = dt * sum(1 for s, _, n in states if s and n) / nonidle if nonidle else 0.0
        full = dt * sum(1 for _, f, n in states if f and n) / nonidle if nonidle else 0.0
        ps.some_total += some
        ps.full_total += full
        ps.some_period += some
        ps.full_period += full
        ps.window.append((now, some))
        ps.window_sum += some
        while ps.window and now - ps.window[0][0] > TRIGGER_WINDOW_S:
            ps.window_sum -= ps.window.popleft()[1]
        if "psi" in self.names and ps.window_sum >= TRIGGER_STALL_S and \
                now - ps.last_fire >= TRIGGER_WINDOW_S:
            ps.last_fire = now
            ps.fired += 1
            self.emit("psi", "memory some trigger (150000 us in 1000000 us, a 5.2+ trigger) "
                      f"fired, "
                      f"{ps.window_sum * 1000:.0f} ms stalled in the last second",
                      printk=False)

    def psi_update_averages(self, period: float) -> None:
        ps = self.psi
        for kind, stall in (("some", ps.some_period), ("full", ps.full_period)):
            pct = min(100.0, 100.0 * stall / period) if period > 0 else 0.0
            for w in PSI_WINDOWS:
                e = math.exp(-period / w)
                ps.avg[kind][w] = ps.avg[kind][w] * e + pct * (1 - e)
            ps.max_avg10[kind] = max(ps.max_avg10[kind], ps.avg[kind][10])
        ps.some_period = ps.full_period = 0.0

    # ---- the thread ----

    def main(self) -> None:
        try:
            start = self.sys.now_s()
            last = start
            next_psi = start + PSI_FREQ_S
            next_hung = start + self.hung_timeout
            while not self.sys.sleep(PSI_TICK_S):
                now = self.sys.now_s()
                self.psi_sample(now - last, now)
                last = now
                if now >= next_psi:
                    self.psi_update_averages(PSI_FREQ_S)
                    next_psi += PSI_FREQ_S
                if "khungtaskd" in self.names and now >= next_hung:
                    self.check_hung_uninterruptible_tasks()
                    next_hung = now + self.hung_timeout
        except Halt:
            return
        except BaseException as exc:  # surfaced by the run
            self.sys.errors.append(exc)
            self.sys.halt()

    def summary(self, elapsed_s: float) -> dict:
        ps = self.psi
        out: dict = {"enabled": list(self.names), "hung_task_timeout_s": self.hung_timeout,
                     "warn_alloc_stall_s": self.warn_s, "fired": {}}
        for name in self.names:
            evs = [e for e in self.events if e.detector == name]
            out["fired"][name] = {"count": len(evs),
                                  "first": round(evs[0].time_ns / 1e9, 3) if evs else None,
                                  "first_text": evs[0].text if evs else None}
        if "warn_alloc" in self.names:
            out["fired"]["warn_alloc"]["suppressed"] = self.suppressed
        if "psi" in self.names:
            el = max(elapsed_s, 1e-9)
            out["psi"] = {
                "cpus": self.sys.cpus,
                "some_total_s": round(ps.some_total, 3), "full_total_s": round(ps.full_total, 3),
                "some_pct": round(100 * ps.some_total / el, 1),
                "full_pct": round(100 * ps.full_total / el, 1),
                "avg": {k: {f"avg{w}": round(v, 2) for w, v in d.items()}
                        for k, d in ps.avg.items()},
                "max_avg10": {k: round(v, 2) for k, v in ps.max_avg10.items()},
            }
        return out


def parse_names(text: str) -> tuple[str, ...]:
    """``khungtaskd,warn_alloc,psi`` (any subset, any order; ``all``)."""
    if text.strip() == "all":
        return NAMES
    names = tuple(dict.fromkeys(w.strip() for w in text.split(",") if w.strip()))
    bad = [n for n in names if n not in NAMES]
    if bad or not names:
        raise ValueError(f"unknown detector {bad[0]!r}" if bad else "no detector named")
    return names
