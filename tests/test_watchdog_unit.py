"""The watchdog's pieces without threads: the writer as tasks use it, the
kernel's jiffies arithmetic, the C scans, and one kmallocwd() report driven
by hand on a machine whose tasks are set up, not running."""

from __future__ import annotations

import io
import random
import re

import pytest

from kmallocwd import protocols
from kmallocwd._core import ffi, lib
from kmallocwd.watchdog import carith, gfpnames
from kmallocwd.watchdog import scenario as sc
from kmallocwd.watchdog import workload as W
from kmallocwd.watchdog.loop import Watchdog
from kmallocwd.watchdog.mm import PF_EXITING
from kmallocwd.watchdog.printk import Log, stamp
from kmallocwd.watchdog.system import Halt, System
from kmallocwd.watchdog.tasks import (TASK_UNINTERRUPTIBLE, Task, make_tasks,
                                      start_memalloc_timer, stop_memalloc_timer)

GFP_KERNEL = gfpnames.NAMES["GFP_KERNEL"]
GFP_NOIO = gfpnames.NAMES["GFP_NOIO"]
ATOMIC_NO_RECLAIM = gfpnames.parse("__GFP_HIGH | __GFP_ATOMIC | __GFP_NOWARN")
PAGECACHE = 0x242014A  # the patch's

TS = r"\[\s*\d+\.\d{6}\] "


def thread(name: str = "t", pid: int = 100, gfp: int = GFP_KERNEL, order: int = 0) -> W.ThreadSpec:
    r = sc.Range(0.001, 0.001)
    return W.ThreadSpec(name=name, pids=(pid,), gfp=gfp, order=order, interval_s=r, burst=1,
                        use=W.BUFFER, hold_s=r, locks=(), killable=False, memalloc_noio=False,
                        start_s=sc.Range(0, 0), idle=False)


def workload(n: int) -> W.Workload:
    procs = tuple(W.ProcessSpec(name=f"task{i}", tgid=100 + i, ppid=1, rss_kb=0, oom_score_adj=0,
                                kthread=False, threads=(thread(f"task{i}", 100 + i),))
                  for i in range(n))
    return W.Workload("unit", "", 10, W.DEFAULT_MEMORY, procs)


def machine(n: int, protocol: str = "v3", hz: int = 1000, initial: int | None = None):
    system = System(protocol, hz, n, W.DEFAULT_MEMORY, initial)
    tasks = make_tasks(system, workload(n), 1)
    system.tasks = tasks
    return system, tasks


# ---- the writer, as a task calls it ----


def test_only_reclaim_requests_start_the_timer():
    system, (p,) = machine(1)
    assert not gfpnames.tracked(ATOMIC_NO_RECLAIM)
    start_memalloc_timer(p, ATOMIC_NO_RECLAIM, 0)
    assert (p.m.valid, p.m.sequence) == (0, 0)
    stop_memalloc_timer(p, ATOMIC_NO_RECLAIM)
    assert p.m.valid == 0
    # GFP_NOWAIT has only the kswapd bit: the patch's test tracks it too.
    start_memalloc_timer(p, gfpnames.NAMES["GFP_NOWAIT"], 0)
    assert (p.m.valid, p.m.sequence) == (1, 2)


def test_nested_requests_keep_the_outer_record():
    system, (p,) = machine(1)
    start_memalloc_timer(p, PAGECACHE, 2)
    outer = (p.m.sequence, p.m.start, p.m.gfp, p.m.order, p.m.witness)
    assert p.m.valid == 1 and outer[0] == 2 and outer[2:4] == (PAGECACHE, 2)
    p.m.dumped = 5
    start_memalloc_timer(p, GFP_NOIO, 0)  # nested: no write section
    assert p.m.valid == 2
    assert (p.m.sequence, p.m.start, p.m.gfp, p.m.order, p.m.witness) == outer
    assert p.m.dumped == 5
    stop_memalloc_timer(p, GFP_NOIO)
    assert p.m.valid == 1
    stop_memalloc_timer(p, PAGECACHE)
    assert p.m.valid == 0
    # The record stays for a vmcore; the next request resets dumped.
    assert (p.m.sequence, p.m.gfp) == (2, PAGECACHE)
    start_memalloc_timer(p, GFP_KERNEL, 0)
    assert (p.m.sequence, p.m.dumped, p.m.gfp) == (4, 0, GFP_KERNEL)


def test_comm_is_cut_to_15_characters_like_the_kernels():
    assert sc.comm("abcdefghijklmnopqrstuvwxyz") == "abcdefghijklmno"
    assert sc.comm("kworker/1:2") == "kworker/1:2"


# ---- jiffies arithmetic and the C scans ----


def test_time_after_eq_is_wrap_safe():
    m = carith.ULONG_MAX
    assert carith.time_after_eq(5, 5)
    assert carith.time_after_eq(6, 5) and not carith.time_after_eq(5, 6)
    assert carith.time_after_eq(3, m - 2)  # 3 is 6 ticks after ULONG_MAX - 2
    assert not carith.time_after_eq(m - 2, 3)
    assert carith.time_after(3, m) and not carith.time_after(m, 3)
    assert carith.to_long(m) == -1 and carith.to_long(carith.LONG_MAX) == carith.LONG_MAX


@pytest.mark.parametrize("base", [1000, (1 << 64) - 5000, (-300 * 1000) & 0xFFFFFFFF])
def test_first_loop_matches_the_seed_in_c_and_python(base):
    rng = random.Random(base)
    n, timeout = 500, 10_000
    slots = ffi.new("struct memalloc_info[]", n)
    for i in range(n):
        slots[i].valid = rng.random() < 0.3
        slots[i].start = carith.ulong(base + rng.randint(-12_000, 3_000))
    for now in (base, carith.ulong(base + 4_000), carith.ulong(base + 9_000)):
        starts = [slots[i].start for i in range(n) if slots[i].valid]
        py = carith.first_loop_t(timeout, now, starts)
        assert lib.kmw_watchdog_due(slots, n, timeout, now) == py
        due = [carith.to_long(s + timeout - now) for s in starts]
        if min(due) > 0:
            assert py == min(min(due), timeout)  # sleep until the earliest due
        else:
            assert py <= 0  # goto stalling


@pytest.mark.parametrize("protocol", ["v3", "seqcount", "v2-rwlock"])
def test_c_count_pass_equals_is_stalling_task_per_slot(protocol):
    proto = protocols.cid(protocol)
    rng = random.Random(7)
    n, now = 300, (1 << 64) - 100
    slots = ffi.new("struct memalloc_info[]", n)
    for i in range(n):
        if rng.random() < 0.6:
            lib.kmw_start_memalloc_timer(proto, slots + i, PAGECACHE, i % 4,
                                         carith.ulong(now - rng.randint(0, 400)))
    expire = carith.ulong(now + 50 - 300)  # timeout 300, jiffies now + 50 (wrapped)
    r = ffi.new("struct kmw_tally *")
    lib.kmw_watchdog_count(proto, slots, n, expire, r)
    snap, out = ffi.new("struct memalloc_info *"), ffi.new("int *")
    want = sum(lib.kmw_is_stalling_task(proto, slots + i, expire, snap, out) for i in range(n))
    valid = sum(1 for i in range(n) if slots[i].valid)
    assert 0 < r.stalling == want < valid
    assert (r.outcome[lib.KMW_O_CONSISTENT], r.outcome[lib.KMW_O_REJECTED_INVALID]) == \
        (valid, n - valid)
    assert not any(r.outcome[o] for o in (lib.KMW_O_TORN_MIXED, lib.KMW_O_TORN_SEQ,
                                          lib.KMW_O_TORN_INSIDE))


# ---- one report, by hand ----


def report(system: System, timeout: int) -> tuple[Watchdog, list[str]]:
    """Run the patch's stalling: part once; the halted machine makes its
    closing schedule_timeout_interruptible() raise Halt."""
    out = io.StringIO()
    wd = Watchdog(system, timeout, Log(out, system.uptime_ns, False))
    system.halted.set()
    with pytest.raises(Halt):
        wd.stalling()
    return wd, out.getvalue().splitlines()


def age(p: Task, jiffies: int, gfp: int = PAGECACHE, order: int = 0) -> None:
    lib.kmw_start_memalloc_timer(p.system.proto_id, p.m, gfp, order, carith.ulong(jiffies))


def test_a_report_is_the_seeds_lines_in_the_seeds_order():
    system, t = machine(6, hz=1000, initial=(1 << 64) - 2_000)  # jiffies wrap meanwhile
    timeout = 1_000
    now = system.jiffies()
    age(t[0], now - 5_000, GFP_NOIO, 0)  # stalling
    age(t[1], now - 10, PAGECACHE, 0)  # allocating, not for long
    t[1].sigkill = True  # dying
    t[2].sigkill = True  # dying, stalling, uninterruptible
    age(t[2], now - 3_000, PAGECACHE, 3)
    t[2].state = TASK_UNINTERRUPTIBLE
    t[3].memdie, t[3].state = True, TASK_UNINTERRUPTIBLE  # the victim
    t[3].flags |= PF_EXITING
    # t[4]: idle; t[5]: exited (gone from the task list), even if stalling
    age(t[5], now - 9_000)
    t[5].exited = True
    wd, lines = report(system, timeout)
    body = [re.sub("^" + TS, "", line) for line in lines]
    assert all(re.match(TS, line) for line in lines)
    assert body[0] == "MemAlloc-Info: 2 stalling task, 2 dying task, 1 victim task."
    assert re.fullmatch(r"MemAlloc: task0\(100\) seq=1 gfp=0x2400000 order=0 delay=50\d\d", body[1])
    assert body[2] == "MemAlloc: task1(101) dying"
    assert re.fullmatch(r"MemAlloc: task2\(102\) seq=1 gfp=0x242014a order=3 delay=30\d\d "
                        r"uninterruptible dying", body[3])
    assert body[4] == "MemAlloc: task3(103) uninterruptible exiting victim"
    assert body[5].startswith("task0 ") and "Call Trace:" in body
    (rep,) = wd.reports
    assert [x.pid for x in rep.traces] == [100, 101, 102]  # dying ones, and stalling task0
    # show_mem() in 4.4's shape and units: pages, kB per zone, N*4kB (UME) free lists.
    assert body[-3].endswith("pages RAM") and body[-1] == "0 pages reserved"
    assert "Mem-Info:" in body
    assert any(re.fullmatch(r"Node 0 Normal free:\d+kB min:\d+kB low:\d+kB high:\d+kB .*"
                            r"present:\d+kB managed:\d+kB .* all_unreclaimable\? (yes|no)", x)
               for x in body)
    assert any(re.fullmatch(r"Node 0 DMA32: (\d+\*\d+kB (\([UME]+\) )?){11}= \d+kB", x)
               for x in body)
    # delay is now - start, in jiffies, across the wrap.
    assert rep.lines[0].delay == carith.ulong(rep.jiffies - t[0].m.start) >= 5_000


def test_no_report_when_nothing_stalls():
    system, t = machine(2)
    now = system.jiffies()
    age(t[0], now - 10)
    t[1].sigkill = t[1].memdie = True  # dying and victim alone do not make a report
    out = io.StringIO()
    wd = Watchdog(system, 1_000, Log(out, system.uptime_ns, False))
    wd.stalling()  # returns: goto restart
    assert out.getvalue() == "" and wd.reports == []


def test_stalling_traces_twice_per_stall_dying_every_time():
    system, t = machine(2)
    now = system.jiffies()
    age(t[0], now - 5_000)
    age(t[1], now - 5_000)
    t[1].sigkill = True
    traced = []
    for _ in range(4):
        system.halted.clear()
        wd, _ = report(system, 1_000)
        traced.append([x.pid for x in wd.reports[0].traces])
    assert traced == [[100, 101], [100, 101], [101], [101]]
    assert t[0].m.dumped == 4 and t[1].m.dumped == 0  # dying short-circuits dumped++
    stop_memalloc_timer(t[0], PAGECACHE)
    age(t[0], system.jiffies() - 5_000)  # a new stall resets dumped
    assert t[0].m.dumped == 0
    system.halted.clear()
    wd, _ = report(system, 1_000)
    assert [x.pid for x in wd.reports[0].traces] == [100, 101]


def test_printk_timestamp_format():
    assert stamp(95_444_132_000) == "[   95.444132] "
    assert stamp(105_879_267_999) == "[  105.879267] "
    assert stamp(0) == "[    0.000000] "
