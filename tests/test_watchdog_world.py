"""The emulated world's mechanisms, as Linux 4.4 has them: each test shows
one (TIF_MEMDIE's test-and-set, the panic with no killable process, ...)."""

from __future__ import annotations

import contextlib
import io
import json

import pytest

from kmallocwd.cli import main
from kmallocwd.watchdog import oom
from kmallocwd.watchdog import workload as W
from kmallocwd.watchdog.system import Halt, System
from kmallocwd.watchdog.tasks import make_tasks

from conftest import watchdog_machine

MACHINE = """
[memory]
reclaim_kbps = 400000
writeback_kbps = 0
[[memory.zone]]
name = "Normal"
present_kb = 400000
min_kb = 4000
free = [{free}, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]

[[process]]
name = "hog"
pid = 100
rss_kb = 40000
oom_score_adj = {adj}
[[process.thread]]
gfp = "GFP_KERNEL"
use = "anon"
interval_s = 0.001
burst = 64

[[process]]
name = "kthreadd"
pid = 2
kthread = true
[[process.thread]]
idle = true
"""


def machine(free: int = 900, adj: int = 0):
    return watchdog_machine(MACHINE.format(free=free, adj=adj))


def test_mark_oom_victim_is_test_and_set():
    system, t, _ = machine()
    hog = t[100]
    assert oom.mark_oom_victim(hog) is True
    assert oom.mark_oom_victim(hog) is False  # already TIF_MEMDIE: not marked again
    assert hog.memdie and [pid for _, _, pid in system.oom_victims] == [100]
    # a dying task that allocates again and again calls out_of_memory() each
    # time: it stays one victim
    hog.sigkill = True
    for _ in range(5):
        assert oom.out_of_memory(hog, 0x24200CA, 0) is True
    assert [pid for _, _, pid in system.oom_victims] == [100]
    hog.memdie = False  # exit_mm() cleared it: a later OOM kill may mark it again
    assert oom.mark_oom_victim(hog) is True and len(system.oom_victims) == 2


def test_no_killable_process_panics_and_stops_the_machine():
    system, t, printed = machine(adj=-1000)  # the only process with an mm is unkillable
    with pytest.raises(Halt):
        oom.out_of_memory(t[100], 0x24200CA, 0)
    assert printed == ["hog invoked oom-killer: gfp_mask=0x24200ca, order=0, oom_score_adj=-1000",
                       "Kernel panic - not syncing: Out of memory and no killable processes...",
                       "---[ end Kernel panic - not syncing: Out of memory and no killable "
                       "processes..."]
    assert system.halted.is_set() and system.panicked is not None


@pytest.mark.timeout(90)
def test_a_run_that_panics_stops_there_and_says_so(tmp_path):
    path = tmp_path / "unkillable.toml"
    path.write_text("[scenario]\nname = \"unkillable\"\n" + MACHINE.format(free=2000, adj=-1000))
    log = tmp_path / "run.log"
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        # a duration no test would wait for: the panic must end the run
        rc = main(["run", "-q", "--scenario", str(path), "--timeout", "0.2", "--duration", "3600",
                   "--json", "--log", str(log)])
    assert rc == 0
    recs = [json.loads(x) for x in log.read_text().splitlines()]
    summary = recs[-1]
    assert summary["panic"]["message"] == "Out of memory and no killable processes..."
    assert summary["elapsed_s"] < 3600
    texts = [r["text"] for r in recs if r["type"] == "printk"]
    assert "Kernel panic - not syncing: Out of memory and no killable processes..." in texts
    assert "panic at" in out.getvalue()


def _until(cond, what: str) -> None:
    import time

    for _ in range(20000):  # generous: a loaded machine may be slow to schedule a thread
        if cond():
            return
        time.sleep(0.001)
    raise AssertionError(f"never: {what}")


def test_mmap_sem_is_an_rw_semaphore_readers_share_a_waiting_writer_blocks_new_readers():
    import threading

    from kmallocwd.watchdog import sched
    from kmallocwd.watchdog.sched import RWSem

    scen = W.loads(MACHINE.format(free=900, adj=0).replace(
        "[[process.thread]]\ngfp = \"GFP_KERNEL\"",
        "[[process.thread]]\ncount = 4\ngfp = \"GFP_KERNEL\"", 1), "m.toml", "m")
    system = System("v3", 1000, scen.tasks, scen.memory)
    system.tasks = make_tasks(system, scen, 1)
    r1, r2, w, r3 = (t for t in system.tasks if t.comm == "hog")
    sem = r1.mm.mmap_sem
    assert isinstance(sem, RWSem) and sem is w.mm.mmap_sem  # one per mm
    assert sched.down_read(r1, sem) and sched.down_read(r2, sem)  # shared: neither waits
    assert set(sem.readers) == {r1, r2} and sem.owner is None
    done = {}
    tw = threading.Thread(target=lambda: done.setdefault("w", sched.down_write(w, sem)))
    tw.start()
    _until(lambda: len(sem.waiters) == 1, "the writer queues")
    assert "w" not in done and w.blocked_on is sem
    assert w.state == sched.TASK_UNINTERRUPTIBLE  # down_write() sleeps in D
    tr = threading.Thread(target=lambda: done.setdefault("r3", sched.down_read(r3, sem)))
    tr.start()
    _until(lambda: len(sem.waiters) == 2, "the new reader queues behind the writer")
    assert "r3" not in done and r3 not in sem.readers  # a waiting writer blocks new readers
    sched.up_read(r1, sem)
    assert sem.owner is None and "w" not in done  # one reader left: the writer still waits
    sched.up_read(r2, sem)  # the last reader wakes the writer, alone
    tw.join(30)
    assert done.get("w") is True and sem.owner is w and "r3" not in done
    sched.up_write(w, sem)  # the writer's release wakes the reader
    tr.join(30)
    assert done.get("r3") is True and set(sem.readers) == {r3} and not sem.waiters
    sched.up_read(r3, sem)
    assert not sem.readers and sem.owner is None


def test_a_scenario_says_read_or_write_per_use():
    scen = W.loads(MACHINE.format(free=900, adj=0).replace(
        'use = "anon"', 'use = "anon"\nlocks = ["&mm->mmap_sem:read", "&inode->i_mutex", '
        '"&sb->s_umount:write"]'), "m.toml", "m")
    assert [W.split_lock(x) for x in scen.processes[1].threads[0].locks] == [
        ("&mm->mmap_sem", "read"), ("&inode->i_mutex", None), ("&sb->s_umount", "write")]
    with pytest.raises(Exception, match="distinct lock names"):
        W.loads(MACHINE.format(free=900, adj=0).replace(
            'use = "anon"', 'use = "anon"\nlocks = ["&mm->mmap_sem:read", "&mm->mmap_sem:write"]'),
            "m.toml", "m")


def test_khungtaskd_skips_a_task_that_never_switched():
    from kmallocwd.watchdog.detectors import Detectors
    from kmallocwd.watchdog.sched import TASK_UNINTERRUPTIBLE

    system, t, printed = machine()
    det = Detectors(system, ("khungtaskd",), 120, 10)
    hog = t[100]
    hog.state = TASK_UNINTERRUPTIBLE
    assert hog.nvcsw + hog.nivcsw == 0
    for _ in range(3):
        det.check_hung_uninterruptible_tasks()
    assert printed == []  # "it musn't be checked"
    hog.nvcsw = 1  # it slept once: from now on it is checked
    det.check_hung_uninterruptible_tasks()  # first look: the count is recorded
    assert printed == []
    det.check_hung_uninterruptible_tasks()  # unchanged since: reported
    assert printed and printed[0].startswith("INFO: task hog:100 blocked for more than")


class _Warned(Exception):
    pass


@pytest.mark.parametrize("gfp,order,warned", [
    (0x24200CA | 0x1000, 0, False),  # __GFP_NORETRY: 4.9 leaves before the check
    (0x24200CA, 4, False),  # a costly order without __GFP_REPEAT: likewise
    (0x24200CA | 0x400, 4, True),  # with __GFP_REPEAT it stays, and is checked
    (0x2400040, 0, True),  # order 0: checked
])
def test_warn_alloc_is_checked_where_4_9_checks_it(monkeypatch, gfp, order, warned):
    from kmallocwd.watchdog import mm as M

    system, t, _ = machine(free=900)  # below min, nothing reclaimable
    hog = t[100]

    def warn(p, g, o):
        raise _Warned()

    monkeypatch.setattr(system, "warn_alloc_check", warn)
    if warned:
        with pytest.raises(_Warned):
            M.__alloc_pages_slowpath(hog, gfp, order)
    else:
        assert M.__alloc_pages_slowpath(hog, gfp, order) is None


def test_debug_show_held_locks_lists_what_a_task_holds_and_waits_for():
    import threading

    from kmallocwd.watchdog import sched
    from kmallocwd.watchdog import tasks as T

    scen = W.loads(MACHINE.format(free=900, adj=0).replace(
        'use = "anon"', 'use = "anon"\ncount = 2\nlocks = ["&mm->mmap_sem:read", "&inode->i_mutex"]'),
        "m.toml", "m")
    system = System("v3", 1000, scen.tasks, scen.memory)
    system.tasks = make_tasks(system, scen, 1)
    a, b = (t for t in system.tasks if t.comm == "hog")
    assert sched.debug_show_held_locks(a) == ["no locks held by hog/100."]
    held = T.take_locks(a)
    lines = sched.debug_show_held_locks(a)
    assert lines[0] == "2 locks held by hog/100:"
    assert lines[1].startswith(" #0:  (&mm->mmap_sem){++++++}, at: [<tasks.py:")
    assert lines[1].endswith("] take_locks")
    assert lines[2].startswith(" #1:  (&inode->i_mutex){+.+.+.}, at: ")
    # b shares mmap_sem (a reader) and waits for i_mutex: lockdep lists both
    tb = threading.Thread(target=lambda: T.release_locks(b, T.take_locks(b)))
    tb.start()
    _until(lambda: len(b.held_locks) == 2, "b asks for i_mutex")
    assert [h.name for h in b.held_locks] == ["&mm->mmap_sem", "&inode->i_mutex"]
    T.release_locks(a, held)
    assert sched.debug_show_held_locks(a) == ["no locks held by hog/100."]
    tb.join(30)
    assert b.held_locks == []


THREE_ZONES = """
[memory]
[[memory.zone]]
name = "DMA"
present_kb = 15992
min_kb = 132
free = [40, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
[[memory.zone]]
name = "DMA32"
present_kb = 2080640
min_kb = 5980
free = [{dma32}, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
[[memory.zone]]
name = "Normal"
present_kb = 1048576
min_kb = 3004
free = [700, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]

[[process]]
name = "hog"
pid = 100
[[process.thread]]
gfp = "GFP_KERNEL"
"""


def test_lowmem_reserve_protects_the_lower_zones():
    from kmallocwd.watchdog import mm as M

    def setup(dma32: int):
        scen = W.loads(THREE_ZONES.format(dma32=dma32), "z.toml", "z")
        system = System("v3", 1000, scen.tasks, scen.memory)
        system.tasks = make_tasks(system, scen, 1)
        return system, system.tasks[0]

    system, hog = setup(2000)  # DMA32: min 1495 pages, free 2000
    dma, dma32, normal = system.memory.zones
    # setup_per_zone_lowmem_reserve(): the higher zones' pages / the ratio (256)
    assert dma32.lowmem_reserve == [0, 0, 262144 // 256]
    assert dma.lowmem_reserve == [0, 520160 // 256, (520160 + 262144) // 256]
    assert normal.lowmem_reserve == [0, 0, 0]
    # Normal is below its min: a GFP_KERNEL request (classzone Normal) may not
    # take DMA32's pages below min + 1024, nor DMA's; a GFP_DMA32 request may
    assert M.get_page_from_freelist(hog, M.G.GFP_KERNEL, 0, M.ALLOC_WMARK_MIN) is None
    page = M.get_page_from_freelist(hog, M.G.GFP_KERNEL | M.G.___GFP_DMA32, 0,
                                    M.ALLOC_WMARK_MIN)
    assert page is not None and page.zone == 1
    system, hog = setup(2600)  # above min + reserve: GFP_KERNEL falls back to DMA32
    page = M.get_page_from_freelist(hog, M.G.GFP_KERNEL, 0, M.ALLOC_WMARK_MIN)
    assert page is not None and page.zone == 1
    lines, data = system.memory.show_mem()
    assert "lowmem_reserve[]: 0 0 1024 1024" in lines
    assert lines[-4:-3] == ["Total swap = 0kB"]  # show_swap_cache_info(): no swap


def test_zone_watermark_ok_wants_a_block_of_the_order_compaction_is_left_out():
    system, t, _ = machine(free=3000)
    (z,) = system.memory.zones
    from kmallocwd.watchdog import mm as M

    assert z.watermark_ok(0, z.min, 0) and not z.watermark_ok(2, z.min, 0)  # order-0 pages only
    z.free[3] = 1
    assert z.watermark_ok(2, z.min, 0)  # a larger block will do (split)
    assert M.get_page_from_freelist(t[100], 0x24200CA, 2, M.ALLOC_WMARK_MIN) is not None
    assert z.free[3] == 0 and z.free[2] == 1


def test_a_kworkers_trace_has_its_workqueue_line():
    from kmallocwd.watchdog.loop import Watchdog
    from kmallocwd.watchdog.printk import Log

    text = MACHINE.format(free=900, adj=0) + """
[[process]]
name = "kworker/u8:1"
pid = 180
kthread = true
[[process.thread]]
gfp = "GFP_NOIO"
writeback = true
[[process]]
name = "kworker/1:2"
pid = 407
kthread = true
[[process.thread]]
gfp = "GFP_NOIO"
use = "kernel"
workqueue = "events_freezable_power_ disk_events_workfn"
"""
    scen = W.loads(text, "m.toml", "m")
    system = System("v3", 1000, scen.tasks, scen.memory)
    system.tasks = make_tasks(system, scen, 1)
    by = {t.pid: t for t in system.tasks}
    out = io.StringIO()
    wd = Watchdog(system, 1000, Log(out, system.uptime_ns, False))
    traces = [wd.show_task(by[pid], "stalling") for pid in (180, 407, 100)]
    assert [t.workqueue for t in traces] == [
        "Workqueue: writeback wb_workfn (flush-8:0)",
        "Workqueue: events_freezable_power_ disk_events_workfn", ""]
    lines = [x.split("] ", 1)[1] for x in out.getvalue().splitlines()]
    i = lines.index("Workqueue: writeback wb_workfn (flush-8:0)")
    assert lines[i - 1].startswith("kworker/u8:1 ") and lines[i + 1] == "Call Trace:"
    with pytest.raises(Exception, match="workqueue"):
        W.loads(MACHINE.format(free=900, adj=0).replace('use = "anon"',
                                                        'use = "anon"\nworkqueue = "x y"'),
                "m.toml", "m")  # not a kernel thread


@pytest.mark.parametrize("free,dirty,woken,sleeps", [
    (3000, 0, False, [0.1, None]),  # balanced after its nap: sleeps until woken
    (3000, 0, True, [0.1]),  # woken during the nap: back to balance_pgdat()
    (900, 1000, False, [0.1]),  # still below the high watermark: back to work
    # below it but with nothing on the LRU: not zone_reclaimable(), which
    # pgdat_balanced() counts as balanced
    (900, 0, False, [0.1, None]),
])
def test_kswapd_naps_then_sleeps_until_woken(monkeypatch, free, dirty, woken, sleeps):
    from kmallocwd.watchdog import sched
    from kmallocwd.watchdog import tasks as T

    system, t, _ = machine(free=free)  # min 1000 pages, high 1500
    system.memory.zones[0].dirty = dirty
    got: list[float | None] = []

    def schedule_timeout(p, seconds, state):
        got.append(seconds)
        return woken

    monkeypatch.setattr(sched, "schedule_timeout", schedule_timeout)
    T.kswapd_try_to_sleep(t[100])
    assert got == sleeps
