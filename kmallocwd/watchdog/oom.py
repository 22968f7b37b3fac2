"""The OOM killer of Linux 4.4 (mm/oom_kill.c), run by the allocating task
from __alloc_pages_may_oom(), as in the kernel.

- out_of_memory(): a current task that is dying or exiting becomes the
  victim itself; else select_bad_process() walks for_each_process_thread():
  oom_scan_process_thread() *aborts* the whole selection while any task
  has TIF_MEMDIE (or is exiting with its mm), so no second victim is chosen
  while the first has not left exit_mm(); else the largest oom_badness()
  (the mm's RSS, adjusted by oom_score_adj), the thread group leader
  preferred among equals;
- no killable process at all: dump_header() and panic(); the emulated
  machine prints the panic lines and halts, as the kernel would stop;
- mark_oom_victim() is a test-and-set of TIF_MEMDIE: a task is marked once;
- oom_kill_process(): a child process with its own mm is sacrificed for its
  parent (the child with the highest badness, if above 0); SIGKILL goes to
  the victim's whole thread group, TIF_MEMDIE to the task found with the mm.

The messages are 4.4's (the first line of dump_header(), then "Out of
memory: Kill process ..." and "Killed process ...").
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kmallocwd.watchdog import sched
from kmallocwd.watchdog.pflags import PF_EXITING, PF_KTHREAD
from kmallocwd.watchdog.workload import PAGE_KB

if TYPE_CHECKING:
    from kmallocwd.watchdog.tasks import Task

OOM_SCAN_OK, OOM_SCAN_CONTINUE, OOM_SCAN_ABORT = 0, 1, 2
OOM_SCORE_ADJ_MIN = -1000
ABORT = object()  # select_bad_process()'s (struct task_struct *)-1UL


def task_will_free_mem(t: "Task") -> bool:
    return bool(t.flags & PF_EXITING)


def oom_unkillable_task(t: "Task") -> bool:
    return t.pid == 1 or t.tgid == 1 or bool(t.flags & PF_KTHREAD)


def find_lock_task_mm(t: "Task") -> "Task | None":
    """The first thread of t's group that still has its mm."""
    for u in t.process.threads:
        if u.mm is not None and not u.exited:
            return u
    return None


def totalpages(t: "Task") -> int:
    return max(1, sum(z.present for z in t.system.memory.zones))


def oom_badness(t: "Task") -> int:
    if oom_unkillable_task(t):
        return 0
    u = find_lock_task_mm(t)
    if u is None:
        return 0
    adj = t.process.oom_score_adj
    if adj == OOM_SCORE_ADJ_MIN:
        return 0
    points = u.mm.rss()
    points += adj * (totalpages(t) // 1000)
    return points if points > 0 else 1


def oom_scan_process_thread(t: "Task") -> int:
    if oom_unkillable_task(t):
        return OOM_SCAN_CONTINUE
    if t.memdie:
        return OOM_SCAN_ABORT  # "This task already has access to memory reserves"
    if t.mm is None:
        return OOM_SCAN_CONTINUE
    if task_will_free_mem(t):
        return OOM_SCAN_ABORT
    return OOM_SCAN_OK


def select_bad_process(current: "Task"):
    chosen, chosen_points = None, 0
    for t in current.system.for_each_process_thread():
        scan = oom_scan_process_thread(t)
        if scan == OOM_SCAN_CONTINUE:
            continue
        if scan == OOM_SCAN_ABORT:
            return ABORT, 0
        points = oom_badness(t)
        if not points or points < chosen_points:
            continue
        if points == chosen_points and chosen is not None and chosen.is_leader:
            continue  # prefer thread group leaders for display purposes
        chosen, chosen_points = t, points
    return chosen, chosen_points


def mark_oom_victim(t: "Task") -> bool:
    """4.4: ``if (test_and_set_tsk_thread_flag(tsk, TIF_MEMDIE)) return;``:
    a task already marked is not marked (nor counted) again.  True if this
    call set TIF_MEMDIE."""
    with t.system.lock_guard:  # the atomic test_and_set_bit()
        if t.memdie:
            return False
        t.memdie = True
    t.system.oom_victims.append((t.system.uptime_ns(), t.comm, t.pid))
    return True


def do_send_sig_info_sigkill_group(victim: "Task") -> None:
    """SIGKILL to the whole thread group: every thread has it pending."""
    for t in victim.process.threads:
        if t.exited:
            continue
        t.sigkill = True
        sched.signal_wake_up(t, fatal=True)


def oom_kill_process(current: "Task", p: "Task", points: int, gfp_mask: int, order: int) -> None:
    sys_ = current.system
    total = totalpages(current)
    if p.mm is not None and task_will_free_mem(p):
        mark_oom_victim(p)
        return
    sys_.printk(f"{current.comm} invoked oom-killer: gfp_mask=0x{gfp_mask:x}, order={order}, "
                f"oom_score_adj={current.process.oom_score_adj}")
    sys_.printk(f"Out of memory: Kill process {p.pid} ({p.comm}) score {points * 1000 // total} "
                "or sacrifice child")
    victim, victim_points = p, 0
    for t in p.process.threads:
        if t.exited:
            continue
        for child in sys_.processes:
            if child.ppid != t.pid or child.mm is p.process.mm:
                continue
            leader = child.threads[0]
            child_points = oom_badness(leader)
            if child_points > victim_points:
                victim, victim_points = leader, child_points
    v = find_lock_task_mm(victim)
    if v is None:
        return
    rss_kb = v.mm.rss() * PAGE_KB
    do_send_sig_info_sigkill_group(v)  # SIGKILL before TIF_MEMDIE, as 4.4 does
    mark_oom_victim(v)
    sys_.memory.oom_kills += 1
    sys_.printk(f"Killed process {v.pid} ({v.comm}) total-vm:{rss_kb}kB, anon-rss:{rss_kb}kB, "
                "file-rss:0kB")


def out_of_memory(current: "Task", gfp_mask: int, order: int) -> bool:
    """True: the caller retries (did_some_progress = 1)."""
    if current.mm is not None and (current.sigkill or task_will_free_mem(current)):
        mark_oom_victim(current)
        return True
    p, points = select_bad_process(current)
    if p is None:
        # dump_header(), then panic(): the machine stops here.
        current.system.printk(f"{current.comm} invoked oom-killer: gfp_mask=0x{gfp_mask:x}, "
                              f"order={order}, oom_score_adj={current.process.oom_score_adj}")
        current.system.panic("Out of memory and no killable processes...")
    if p is not ABORT:
        oom_kill_process(current, p, points, gfp_mask, order)
        # "Give the killed process a good chance to exit"
        sched.schedule_timeout(current, 1 / current.system.hz, sched.TASK_KILLABLE)
    return True
