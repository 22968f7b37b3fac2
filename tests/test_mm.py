"""The allocator and OOM-killer model, step by step, without threads: a
machine is built from a scenario, its tasks are not started, and the test
thread calls the kernel-named functions as a task would."""

from __future__ import annotations

import io
import re

import pytest

from kmallocwd.watchdog import mm as M
from kmallocwd.watchdog import oom
from kmallocwd.watchdog.detectors import Detectors, pgg
from kmallocwd.watchdog.loop import Watchdog
from kmallocwd.watchdog.printk import Log
from kmallocwd.watchdog.sched import (TASK_INTERRUPTIBLE, TASK_KILLABLE, TASK_UNINTERRUPTIBLE,
                                      state_char)
from kmallocwd.watchdog.system import Halt

from conftest import watchdog_machine

MACHINE = """
[memory]
reclaim_kbps = 400000
writeback_kbps = 0
[[memory.zone]]
name = "Normal"
present_kb = 400000
min_kb = 4000                 # 1000 pages; low 1250, high 1500
free = [{free}, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
file_kb = {file_kb}

[[process]]
name = "hog"
pid = 100
rss_kb = 40000
[[process.thread]]
gfp = "GFP_HIGHUSER_MOVABLE"
use = "anon"

[[process]]
name = "child"
pid = 200
ppid = 100
rss_kb = 4000
[[process.thread]]
idle = true
[[process.thread]]
count = 2
gfp = 0x242014a

[[process]]
name = "big"
pid = 300
rss_kb = 80000
[[process.thread]]
gfp = "GFP_KERNEL"
memalloc_noio = true
"""


def machine(free: int = 3000, file_kb: int = 0):
    return watchdog_machine(MACHINE.format(free=free, file_kb=file_kb))


def test_task_list_is_for_each_process_thread_order_with_thread_groups():
    system, t, _ = machine()
    assert [x.pid for x in system.for_each_process_thread()] == [100, 200, 201, 202, 300]
    assert [(x.tgid, x.ppid) for x in system.tasks] == [(100, 1), (200, 100), (200, 100),
                                                        (200, 100), (300, 1)]
    assert t[200].is_leader and not t[201].is_leader
    assert t[201].mm is t[200].mm is not t[100].mm
    assert t[100].mm.rss() == 10000 and t[300].mm.rss() == 20000


def test_seq_counts_slow_path_entries_only():
    system, t, _ = machine(free=3000)  # above the low watermark: fast path
    hog = t[100]
    assert M.alloc_pages(hog, hog.spec.gfp, 0) is not None
    assert (hog.m.sequence, hog.m.valid) == (0, 0)  # the timer never started
    system2, t2, _ = machine(free=1100)  # below low, above min: served in the slow path
    hog2 = t2[100]
    assert M.alloc_pages(hog2, hog2.spec.gfp, 0) is not None
    assert (hog2.m.sequence >> 1, hog2.m.valid, hog2.m.gfp) == (1, 0, hog2.spec.gfp)


def test_memalloc_noio_flags_mask_what_the_seed_records():
    system, t, _ = machine(free=1100)
    big = t[300]  # GFP_KERNEL under PF_MEMALLOC_NOIO
    assert big.flags & M.PF_MEMALLOC_NOIO
    assert M.alloc_pages(big, big.spec.gfp, 0) is not None
    assert big.m.gfp == 0x2400000  # GFP_KERNEL & ~(__GFP_IO | __GFP_FS)


def test_watermarks_and_alloc_flags():
    system, t, _ = machine(free=1100)
    (z,) = system.memory.zones
    assert (z.min, z.low, z.high) == (1000, 1250, 1500)
    assert not z.watermark_ok(0, z.low, M.ALLOC_WMARK_LOW)
    assert z.watermark_ok(0, z.min, M.ALLOC_WMARK_MIN)
    z.free = [900] + [0] * 10
    assert not z.watermark_ok(0, z.min, 0)
    assert z.watermark_ok(0, z.min, M.ALLOC_HIGH | M.ALLOC_HARDER)  # GFP_ATOMIC dips below
    hog = t[100]
    hog.memdie = True  # TIF_MEMDIE ignores the watermarks
    assert M.gfp_to_alloc_flags(hog, hog.spec.gfp) & M.ALLOC_NO_WATERMARKS


def test_reclaim_progress_is_4_4s_zone_reclaimable():
    system, t, _ = machine(free=900, file_kb=0)
    hog = t[100]
    (z,) = system.memory.zones
    assert M.try_to_free_pages(hog, hog.spec.gfp, 0) == 0  # nothing reclaimable at all
    z.dirty = 1000  # under writeback to a stuck device: not freed, but "reclaimable"
    assert [M.try_to_free_pages(hog, hog.spec.gfp, 0) for _ in range(3)] == [1, 1, 0]
    z.give(1)  # an order-0 page goes on the per-cpu list: no reset
    assert z.pages_scanned == 6000 and z.pcp_count == 1
    z.free_block(2)  # a larger block: free_one_page() resets NR_PAGES_SCANNED
    assert z.pages_scanned == 0 and M.try_to_free_pages(hog, hog.spec.gfp, 0) == 1
    z.file = 10
    assert M.try_to_free_pages(hog, hog.spec.gfp, 0) == 10


def test_no_gfp_fs_never_invokes_the_oom_killer():
    system, t, printed = machine(free=900)
    writer = t[201]  # 0x242014a: no __GFP_FS
    page, progress = M.__alloc_pages_may_oom(writer, writer.spec.gfp, 0)
    assert (page, progress) == (None, 1)  # "keep looping as per tradition"
    assert system.oom_victims == [] and printed == []
    page, progress = M.__alloc_pages_may_oom(writer, writer.spec.gfp, 4)
    assert (page, progress) == (None, 0)  # costly orders do not loop either


def test_oom_kill_sacrifices_the_child_sigkills_its_group_and_then_aborts():
    system, t, printed = machine(free=900)
    hog = t[100]
    system.halted.set()  # out_of_memory() ends with schedule_timeout_killable(1)
    with pytest.raises(Halt):
        M.__alloc_pages_may_oom(hog, hog.spec.gfp, 0)
    # "big" has the largest RSS and no child: it is the victim.
    assert re.fullmatch(r"hog invoked oom-killer: gfp_mask=0x24200ca, order=0, oom_score_adj=0",
                        printed[0])
    assert printed[1].startswith("Out of memory: Kill process 300 (big)")
    assert t[300].memdie and t[300].sigkill
    assert not any(t[p].memdie for p in (100, 200, 201, 202))
    # While a TIF_MEMDIE task exists, every other invocation aborts.
    system.halted.clear()
    assert oom.select_bad_process(hog)[0] is oom.ABORT
    assert oom.out_of_memory(hog, hog.spec.gfp, 0) is True and len(system.oom_victims) == 1


def test_or_sacrifice_child():
    system, t, printed = machine(free=900)
    t[300].process.oom_score_adj = -1000  # "big" is unkillable: the hog is the largest
    system.halted.set()
    with pytest.raises(Halt):
        oom.out_of_memory(t[100], t[100].spec.gfp, 0)
    assert printed[1].startswith("Out of memory: Kill process 100 (hog)")
    assert printed[2].startswith("Killed process 200 (child)")  # its child, with its own mm
    assert t[200].memdie and not t[201].memdie  # TIF_MEMDIE: the task found with the mm
    assert all(t[p].sigkill for p in (200, 201, 202))  # SIGKILL: the whole group
    assert not t[100].sigkill


def test_a_dying_current_task_becomes_the_victim_itself():
    system, t, printed = machine(free=900)
    t[201].sigkill = True
    assert oom.out_of_memory(t[201], 0x24200CA, 0) is True
    assert t[201].memdie and printed == []


def test_killable_is_uninterruptible_for_the_seed_but_not_for_khungtaskd():
    system, t, _ = machine()
    assert (state_char(TASK_KILLABLE), state_char(TASK_UNINTERRUPTIBLE),
            state_char(TASK_INTERRUPTIBLE), state_char(0)) == ("D", "D", "S", "R")
    out = io.StringIO()
    wd = Watchdog(system, 1000, Log(out, system.uptime_ns, False))
    now = system.jiffies()
    for p in (t[201], t[202]):
        M.start_memalloc_timer(p, 0x242014A, 0)
        p.m.start = now - 5000
    t[201].state, t[202].state = TASK_KILLABLE, TASK_UNINTERRUPTIBLE
    t[201].nvcsw = t[202].nvcsw = 1  # they slept once (a task that never did is skipped)
    system.halted.set()
    with pytest.raises(Halt):
        wd.stalling()
    lines = out.getvalue()
    assert re.search(r"MemAlloc: child\(201\) seq=1 .* uninterruptible$", lines, re.M)
    assert re.search(r"MemAlloc: child\(202\) seq=1 .* uninterruptible$", lines, re.M)
    det = Detectors(system, ("khungtaskd",), 120, 10)
    for _ in range(2):
        det.check_hung_uninterruptible_tasks()
    assert [e.text for e in det.events] == [
        "INFO: task child:202 blocked for more than 120 seconds."]


def test_warn_alloc_pgg_names():
    assert pgg(0x24280CA) == "GFP_HIGHUSER_MOVABLE|__GFP_ZERO"
    # composite names first, greedily, as format_flags() does with gfpflag_names
    # 4.9's order, not the bits' (as in "GFP_NOFS|__GFP_HIGHMEM|__GFP_HARDWALL|__GFP_MOVABLE")
    assert pgg(0x242014A) == "GFP_NOFS|__GFP_HIGHMEM|__GFP_COLD|__GFP_HARDWALL|__GFP_MOVABLE"
    assert pgg(0x2420848) == "GFP_NOFS|__GFP_NOFAIL|__GFP_HARDWALL|__GFP_MOVABLE"
    assert pgg(0x2400000) == "GFP_NOIO"


def test_show_mem_is_in_4_4s_units():
    system, t, _ = machine(free=3000, file_kb=400)
    lines, data = system.memory.show_mem()
    assert lines[0] == "Mem-Info:"
    assert lines[1] == "active_anon:31000 inactive_anon:0 isolated_anon:0"  # pages
    assert " free:3000 free_pcp:0 free_cma:0" in lines
    zone = next(x for x in lines if x.startswith("Node 0 Normal free:"))
    assert zone.startswith("Node 0 Normal free:12000kB min:4000kB low:5000kB high:6000kB "
                           "active_anon:124000kB")
    assert "Node 0 Normal: 3000*4kB (M) 0*8kB 0*16kB" in "\n".join(lines)
    assert lines[-3:] == ["100000 pages RAM", "0 pages HighMem/MovableOnly", "0 pages reserved"]
    assert data["free_pages"] == 3000 and data["file_pages"] == 100


def test_a_killable_lock_wait_ends_on_sigkill_an_uninterruptible_one_does_not():
    """Threads, but no timing: each waiter is released by an event, and the
    test waits for states, with generous limits."""
    import threading
    import time

    from kmallocwd.watchdog import sched

    system, t, _ = machine()
    holder, killable, unkillable = t[100], t[201], t[202]
    lock = system.named_lock("&inode->i_mutex")
    assert sched.mutex_lock(holder, lock)
    got: dict[int, bool] = {}

    def waiter(p, fn):
        try:
            got[p.pid] = fn(p, lock)
        except Halt:
            got[p.pid] = None

    threads = [threading.Thread(target=waiter, args=(killable, sched.mutex_lock_killable)),
               threading.Thread(target=waiter, args=(unkillable, sched.mutex_lock))]
    for th in threads:
        th.start()
    deadline = time.monotonic() + 30
    while len(lock.waiters) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert killable.state == TASK_KILLABLE and unkillable.state == TASK_UNINTERRUPTIBLE
    oom.do_send_sig_info_sigkill_group(killable)  # SIGKILL to the child's whole group
    threads[0].join(30)
    assert got[201] is False  # -EINTR
    assert unkillable.sigkill and 202 not in got  # still waiting, dying
    sched.mutex_unlock(holder, lock)  # hand-off to the uninterruptible waiter
    threads[1].join(30)
    assert got[202] is True and lock.owner is unkillable


def test_warn_alloc_every_10_s_of_one_slow_path_entry():
    system, t, printed = machine()
    det = Detectors(system, ("warn_alloc",), 120, 10)
    hog = t[100]
    now = system.jiffies()
    hog.slowpath_since = now - 10_500  # in the slow path for 10.5 s
    det.warn_alloc(hog, 0x24280CA, 0)
    det.warn_alloc(hog, 0x24280CA, 0)  # the next one is due at 20 s
    assert len(printed) == 1
    assert re.fullmatch(r"hog: page allocation stalls for 105\d\dms, order:0, "
                        r"mode:0x24280ca\(GFP_HIGHUSER_MOVABLE\|__GFP_ZERO\)", printed[0])
    hog.slowpath_since = now - 1_000  # a new request: stall_timeout starts again at 10 s
    det.warn_alloc(hog, 0x24280CA, 0)
    assert len(printed) == 1
    hog.slowpath_since = now - 30_000
    det.warn_alloc(hog, 0x24280CA | 0x200, 0)  # __GFP_NOWARN: silent
    assert len(printed) == 1


def test_psi_averages_are_psis_exponential_moving_averages():
    import math

    system, t, _ = machine()
    det = Detectors(system, ("psi",), 120, 10)
    for p in t.values():
        p.state = TASK_INTERRUPTIBLE  # sleeping: idle for PSI
    t[100].memstall = True  # one task stalled, the others idle: some == full
    for i in range(100):
        det.psi_sample(0.02, i * 0.02)
    det.psi_update_averages(2.0)
    avg = det.psi.avg
    assert avg["some"][10] == pytest.approx(100 * (1 - math.exp(-2 / 10)))
    assert avg["some"][300] == pytest.approx(100 * (1 - math.exp(-2 / 300)))
    assert avg["full"][60] == avg["some"][60]
    assert det.psi.fired == 2  # the 150 ms / 1 s trigger, at most once per window


def test_nr_pages_scanned_resets_at_the_per_cpu_lists_rate():
    """free_hot_cold_page(): an order-0 page goes on the per-cpu list; only
    when it reaches pcp->high (186 for a zone of 512 MiB or more) does
    free_pcppages_bulk() give pcp->batch (31) pages back and reset
    NR_PAGES_SCANNED: once per 31 frees in the steady state."""
    assert M.pageset_batch_high(1_048_576 // 4) == (31, 186)  # a 1 GiB zone
    assert M.pageset_batch_high(15_992 // 4) == (1, 0)  # DMA: every free goes straight on
    system, t, _ = machine(free=900)
    (z,) = system.memory.zones
    z.present = 1_048_576 // 4
    z.pcp_batch, z.pcp_high = M.pageset_batch_high(z.present)
    resets = []
    for i in range(1, 186 + 31 * 9 + 1):
        z.pages_scanned = 1000
        z.free_block(0)
        if z.pages_scanned == 0:
            resets.append(i)
    assert resets[0] == 186  # the list filled up to high
    assert [b - a for a, b in zip(resets, resets[1:])] == [31] * 9  # then every 31st free
    assert z.scan_resets == 10 and z.pcp_count == 186 - 31
    # a block of order > 0 is freed by free_one_page(): a reset every time
    z.pages_scanned = 1000
    z.free_block(2)
    assert z.pages_scanned == 0
    # and the direct reclaimer's drain_all_pages() after a failed allocation
    z.pages_scanned = 1000
    M.drain_all_pages(system.memory)
    assert z.pages_scanned == 0 and z.pcp_count == 0
    z.pages_scanned = 1000
    M.drain_all_pages(system.memory)  # an empty list: nothing freed, no reset
    assert z.pages_scanned == 1000


def test_direct_reclaim_waits_in_d_state_after_a_pass_over_a_congested_zone():
    """shrink_inactive_list()'s wait_iff_congested(HZ/10) (4.4): a direct
    reclaimer sleeps in D after a pass over a zone whose reclaim met mostly
    dirty pages; the pages it isolated meanwhile go back to the LRU."""
    system, t, _ = machine(free=900, file_kb=0)
    hog = t[100]
    (z,) = system.memory.zones
    z.dirty = 800  # mostly dirty: congested
    assert system.memory.congested([z])
    waits: list[tuple[float, int, int]] = []
    real = M.sched.schedule_timeout

    def schedule_timeout(p, seconds, state):
        waits.append((seconds, state, z.isolated))
        return False

    M.sched.schedule_timeout = schedule_timeout
    try:
        assert M.try_to_free_pages(hog, hog.spec.gfp, 0) == 1  # still "reclaimable"
        assert waits == [(0.1, M.sched.TASK_UNINTERRUPTIBLE, 0)]  # after the pass
        z.dirty, waits[:] = 10, []
        z.file = 1000  # mostly clean: not congested, no wait
        assert M.try_to_free_pages(hog, hog.spec.gfp, 0) == M.SWAP_CLUSTER_MAX
        assert waits == []
    finally:
        M.sched.schedule_timeout = real
    # while a pass scans, its pages are off the LRU (isolated(file) in show_mem)
    seen = []
    real_cr = M.sched.cond_resched
    M.sched.cond_resched = lambda p, s: seen.append(z.isolated)
    try:
        z.dirty, z.file = 800, 0
        M.try_to_free_pages(hog, hog.spec.gfp, 0)
    finally:
        M.sched.cond_resched = real_cr
    assert seen and set(seen) == {M.SWAP_CLUSTER_MAX} and z.isolated == 0


def test_kswapd_scanning_counts_towards_nr_pages_scanned_until_the_zone_is_unreclaimable():
    """kswapd's pass over a zone below its high watermark that it can free
    nothing from scans it (twice its file LRU), and that counts towards
    NR_PAGES_SCANNED as a direct reclaimer's scanning does; once the zone is
    no longer zone_reclaimable(), pgdat_balanced() counts it as balanced and
    kswapd leaves it alone."""
    from kmallocwd.watchdog.tasks import balance_pgdat

    system, t, _ = machine(free=900, file_kb=0)
    k = t[100]  # any task can run kswapd's pass
    (z,) = system.memory.zones
    z.dirty = 1000  # dirty behind a device that does not write: nothing to free
    assert system.memory.below_high() == [z]
    scanned = []
    for _ in range(4):
        balance_pgdat(k)
        scanned.append(z.pages_scanned)
    assert scanned == [2000, 4000, 6000, 6000]  # the fourth pass found nothing to balance
    assert not z.zone_reclaimable() and system.memory.below_high() == []
    z.free_block(1)  # a free resets the count: kswapd's again
    assert system.memory.below_high() == [z]


def test_too_many_isolated_makes_a_direct_reclaimer_wait_in_congestion_wait():
    """shrink_inactive_list() (4.4): while more pages are isolated than are
    left on the inactive list, a direct reclaimer sleeps in
    congestion_wait(BLK_RW_ASYNC, HZ/10), in D, before it isolates any; the
    waits are counted in show_mem()'s data.  A __GFP_IO|__GFP_FS request
    compares with an eighth of the inactive list, a GFP_NOFS one with all of
    it; kswapd is never throttled; a task with SIGKILL pending leaves after
    one wait with SWAP_CLUSTER_MAX "reclaimed", isolating nothing."""
    system, t, _ = machine(free=900, file_kb=0)
    hog, nofs, other = t[100], t[201], t[300]
    mem = system.memory
    (z,) = mem.zones
    z.file, z.dirty = 0, 100
    z.isolated = 20  # other reclaimers' pages: 80 left on the list
    assert M.too_many_isolated(hog, z, hog.spec.gfp)  # 20 > 80 >> 3
    assert not M.too_many_isolated(nofs, z, nofs.spec.gfp)  # 20 <= 80
    z.isolated = 60  # 40 left: now GFP_NOFS callers wait too
    assert M.too_many_isolated(nofs, z, nofs.spec.gfp)
    system.kswapd_task = other  # current_is_kswapd(): never throttled
    assert not M.too_many_isolated(other, z, 0x24200CA)
    system.kswapd_task = None

    waits: list[tuple[float, int, int]] = []
    real = M.sched.schedule_timeout

    def schedule_timeout(p, seconds, state):
        waits.append((seconds, state, p.pid))
        z.isolated -= 30  # meanwhile the other reclaimers put pages back
        return False

    M.sched.schedule_timeout = schedule_timeout
    try:
        assert mem.show_mem()[1]["too_many_isolated_waits"] == 0
        assert M.try_to_free_pages(nofs, nofs.spec.gfp, 0) == 1  # then its pass: "reclaimable"
        # 60 > 40, then 30 > 70 is false: one wait of HZ/10, in D, before the pass
        assert waits[0] == (0.1, TASK_UNINTERRUPTIBLE, 201)
        assert mem.congestion_waits == 1
        assert mem.show_mem()[1]["too_many_isolated_waits"] == 1
        # a dying task leaves the loop after one wait, with SWAP_CLUSTER_MAX
        z.isolated, waits[:] = 90, []
        nofs.sigkill = True
        assert M.try_to_free_pages(nofs, nofs.spec.gfp, 0) == M.SWAP_CLUSTER_MAX
        assert [w[:2] for w in waits] == [(0.1, TASK_UNINTERRUPTIBLE)]
        assert z.isolated == 60 and mem.congestion_waits == 2  # it isolated nothing
    finally:
        M.sched.schedule_timeout = real


def test_the_flusher_writes_one_bio_per_allocation_not_the_backlog():
    """The device writes at its rate while the flusher can allocate; after
    a stall, one allocation carries one bio (BIO_MAX_PAGES), not everything
    the device could have written meanwhile."""
    system, t, _ = machine(free=900, file_kb=0)
    mem = system.memory
    (z,) = mem.zones
    z.dirty = 5000
    mem.writeback_rate = 25_000  # 100 MB/s: 250 pages in 10 ms
    mem.flusher = True
    mem._wb_t = mem.now() - 0.01
    mem.writeback(flushing=True)
    assert z.dirty == 5000 - 250
    mem._wb_t = mem.now() - 0.5  # stalled half a second: 12500 pages' worth
    mem.writeback(flushing=True)
    assert z.dirty == 5000 - 250 - M.BIO_MAX_PAGES


def test_only_kswapd_writes_dirty_pages_from_reclaim_in_a_zone_flagged_dirty():
    """shrink_page_list() (4.4): a direct reclaimer keeps a dirty file page
    (it only flags the zone ZONE_DIRTY when it met nothing else); kswapd, in
    a zone so flagged, writes it (pageout()): the page goes under writeback
    and becomes clean page cache when the device completes the I/O."""
    from kmallocwd.watchdog.tasks import balance_pgdat

    system, t, _ = machine(free=900, file_kb=0)
    hog, k = t[100], t[300]
    mem = system.memory
    (z,) = mem.zones
    z.dirty = 1000  # only dirty pages on the LRU; the device is stuck for now
    assert not z.zone_dirty
    assert M.try_to_free_pages(hog, hog.spec.gfp, 0) == 1  # nothing freed, "reclaimable"
    assert (z.dirty, z.writeback, z.zone_dirty) == (1000, 0, True)
    M.try_to_free_pages(hog, hog.spec.gfp, 0)  # flagged or not: a direct reclaimer never writes
    assert (z.dirty, z.writeback, mem.kswapd_pageouts) == (1000, 0, 0)
    assert not M.may_pageout(hog, z)

    system.kswapd_task = k  # the same pass, run by kswapd
    z.zone_dirty = False
    balance_pgdat(k)  # its first pass meets only dirty pages: it flags the zone
    assert (z.dirty, z.writeback, z.zone_dirty) == (1000, 0, True)
    z.pages_scanned = 0
    balance_pgdat(k)  # flagged: it writes them
    assert (z.dirty, z.writeback) == (1000 - M.SWAP_CLUSTER_MAX, M.SWAP_CLUSTER_MAX)
    assert mem.kswapd_pageouts == M.SWAP_CLUSTER_MAX and z.reclaimable() == 1000
    lines, data = mem.show_mem()
    assert f"writeback:{M.SWAP_CLUSTER_MAX * 4}kB" in next(x for x in lines
                                                          if x.startswith("Node 0 Normal free:"))
    assert data["writeback_pages"] == data["kswapd_pageouts"] == M.SWAP_CLUSTER_MAX
    # the device answers again: the I/O completes, the pages are clean, and
    # a direct reclaimer frees them
    mem.writeback_rate = 25_000  # pages/s: 250 in 10 ms
    mem.flusher = True  # (a flusher that does not run: the dirty pages stay dirty)
    with mem.lock:
        mem.tick()
    system.vclock.ns += 10_000_000
    with mem.lock:
        mem.tick()
    assert (z.writeback, z.file) == (0, M.SWAP_CLUSTER_MAX)
    assert M.try_to_free_pages(hog, hog.spec.gfp, 0) == M.SWAP_CLUSTER_MAX
    # a balanced zone loses the flag
    z.free[0] = z.high
    balance_pgdat(k)
    assert not z.zone_dirty


def test_a_filesystem_that_will_not_write_from_reclaim_keeps_kswapds_pages_dirty():
    """writepage_from_reclaim = false (ext4's delayed allocation): kswapd's
    pageout() hands the page to ->writepage(), which redirties it."""
    from kmallocwd.watchdog.tasks import balance_pgdat

    system, t, _ = watchdog_machine(MACHINE.format(free=900, file_kb=0).replace(
        "writeback_kbps = 0", "writeback_kbps = 0\nwritepage_from_reclaim = false"))
    k = t[300]
    system.kswapd_task = k
    (z,) = system.memory.zones
    z.dirty, z.zone_dirty = 1000, True
    balance_pgdat(k)
    assert (z.dirty, z.writeback, system.memory.kswapd_pageouts) == (1000, 0, 0)


def test_free_areas_carry_their_migratetypes_as_4_4s_show_free_areas_prints_them():
    """Boot memory is Movable; a request takes from its own type's lists
    (gfpflags_to_migratetype()), else steals the largest block of a
    fallback type and puts the halves on its own lists; a freed block goes
    back to its type's.  show_free_areas() prints, after each non-empty
    order, the letters of the types that hold it: "4*4kB (UME) 2*8kB (M)"."""
    system, t, _ = machine(free=0)
    mem = system.memory
    (z,) = mem.zones
    z.free = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]  # two 4 MB blocks at boot
    assert M.gfpflags_to_migratetype(0x24200CA) == M.MIGRATE_MOVABLE  # GFP_HIGHUSER_MOVABLE
    assert M.gfpflags_to_migratetype(0x24000C0) == M.MIGRATE_UNMOVABLE  # GFP_KERNEL
    assert M.gfpflags_to_migratetype(0x24000D0) == M.MIGRATE_RECLAIMABLE  # | __GFP_RECLAIMABLE
    assert z.free_area_types()[10] == "M"
    # an unmovable order-0 page: no Unmovable block, so the largest Movable
    # one is split and its halves go on the Unmovable lists
    assert z.take(0, M.MIGRATE_UNMOVABLE)
    assert z.free == [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]
    assert z.free_area_types() == ["U"] * 10 + ["M"]
    # a movable order-1 block comes from the Movable lists (the other 4 MB block)
    assert z.take(1, M.MIGRATE_MOVABLE)
    assert z.free_area_types()[:3] == ["U", "UM", "UM"] and z.free[10] == 0
    # a reclaimable page (slab): no Reclaimable block; Unmovable is its first fallback
    assert z.take(0, M.MIGRATE_RECLAIMABLE)
    # an order-2 block freed by the Reclaimable user goes back to its lists
    z.free_one_page(4, M.MIGRATE_RECLAIMABLE)
    types = z.free_area_types()
    assert types[2] == "UME"
    lines, data = mem.show_mem()
    line = next(x for x in lines if x.startswith("Node 0 Normal: "))
    assert line.startswith(f"Node 0 Normal: {z.free[0]}*4kB ({types[0]}) {z.free[1]}*8kB "
                           f"({types[1]}) {z.free[2]}*16kB (UME) ")
    assert line.endswith(f" 0*4096kB = {z.free_pages() * 4}kB")
    assert data["zones"][0]["free_types"] == types
    # an allocation through the allocator records its type; freeing it puts it back there
    z.free = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4]
    z.pcp_batch, z.pcp_high = 1, 0  # no per-cpu list: every order-0 free goes straight on
    page = M.get_page_from_freelist(t[300], 0x24000C0, 0, M.ALLOC_NO_WATERMARKS)
    assert page is not None and page.mt == M.MIGRATE_UNMOVABLE
    mem.free_page(page, "buffer")
    assert "U" in z.free_area_types()[0]


def test_psi_full_is_per_cpu_memstall_with_nothing_running_as_4_20():
    """4.20's test_state(): on each CPU, some = NR_MEMSTALL, full =
    NR_MEMSTALL && !NR_RUNNING; the machine's share weighs the CPUs that are
    not idle.  A task reclaiming on its CPU is running: some, not full; the
    same task asleep in reclaim's congestion wait, alone on its CPU: full,
    even while another CPU runs something else (which halves the share)."""
    system, t, _ = watchdog_machine("[scenario]\ncpus = 2\n" + MACHINE.format(free=900,
                                                                             file_kb=0))
    assert system.cpus == 2
    assert [x.cpu for x in system.tasks] == [0, 1, 0, 1, 0]  # in task-list order
    det = Detectors(system, ("psi",), 120, 10)
    for p in t.values():
        p.state = TASK_INTERRUPTIBLE
    hog = t[100]
    hog.memstall, hog.state = True, M.sched.TASK_RUNNING  # reclaiming on CPU 0
    assert det.psi_cpu_states() == [(True, False, True), (False, False, False)]
    det.psi_sample(1.0, 1.0)
    assert (det.psi.some_total, det.psi.full_total) == (1.0, 0.0)
    hog.state = TASK_UNINTERRUPTIBLE  # asleep in congestion_wait(), still in reclaim
    assert det.psi_cpu_states()[0] == (True, True, True)
    det.psi_sample(1.0, 2.0)
    assert (det.psi.some_total, det.psi.full_total) == (2.0, 1.0)
    t[202].state = M.sched.TASK_RUNNING  # CPU 1 busy with something else
    det.psi_sample(1.0, 3.0)
    assert (det.psi.some_total, det.psi.full_total) == (2.5, 1.5)
    t[201].state = M.sched.TASK_RUNNING  # and a runnable task on CPU 0: not full there
    assert det.psi_cpu_states() == [(True, False, True), (False, False, True)]
    # (a single-CPU machine counts the same tasks as all on CPU 0)
    one, t1, _ = machine(free=900)
    assert one.cpus == 1 and {x.cpu for x in one.tasks} == {0}
    # the trigger is labelled as what it is: post-4.20
    det.psi_sample(1.0, 4.0)
    assert det.events and "5.2+ trigger" in det.events[0].text


def test_a_per_cpu_kworker_runs_on_its_cpu():
    from kmallocwd.watchdog.tasks import task_cpu

    assert task_cpu("kworker/1:2", 0, 4) == 1
    assert task_cpu("kworker/u8:1", 5, 4) == 1  # unbound: spread like any task
    assert task_cpu("kworker/7:0", 2, 4) == 2  # no such CPU here
