"""A small model of Linux 4.4's page allocator (mm/page_alloc.c, mm/vmscan.c).

Enough for the patch's situations, in pages of 4 kB:

- zones with free blocks per order and min/low/high watermarks (low = min +
  min/4, high = min + min/2, as __setup_per_zone_wmarks() sets them), clean
  and dirty page cache, anonymous and kernel pages;
- the fast path: get_page_from_freelist() above the low watermark;
- __alloc_pages_slowpath(): wake kswapd, retry at the min watermark
  (ALLOC_HIGH/ALLOC_HARDER lower it, TIF_MEMDIE ignores it), direct reclaim
  of clean page cache at the scenario's rate (throttled by
  too_many_isolated()'s congestion_wait()), wait_iff_congested() while
  dirty pages wait for writeback, retry while reclaim "made progress", then
  __alloc_pages_may_oom();
- did_some_progress as 4.4 computes it: pages reclaimed, or else "some zone
  is still reclaimable" (NR_PAGES_SCANNED < 6 x its file pages; any page
  freed to the zone resets the count), which is what lets 4.4 loop without
  ever invoking the OOM killer;
- __alloc_pages_may_oom(): oom_lock, the high-watermark retry, no OOM for
  costly orders, lowmem or !__GFP_FS requests ("keep looping as per
  tradition": did_some_progress = 1), else out_of_memory() (``oom``).

The patch's start_memalloc_timer()/stop_memalloc_timer() bracket the slow
path only, with memalloc_noio_flags()'s mask: a request served by the fast
path never touches the task's memalloc_info.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from kmallocwd import gfp as G
from kmallocwd._core import lib
from kmallocwd.watchdog import sched
from kmallocwd.watchdog.pflags import (PF_EXITING, PF_KTHREAD, PF_MEMALLOC,  # noqa: F401
                                       PF_MEMALLOC_NOIO)
from kmallocwd.watchdog.scenario import MAX_ORDER
from kmallocwd.watchdog.workload import PAGE_KB, MemorySpec

if TYPE_CHECKING:
    from kmallocwd.watchdog.tasks import MMStruct, Task

SWAP_CLUSTER_MAX = 32
BIO_MAX_PAGES = 256  # the pages one bio carries (1 MiB)
PAGE_ALLOC_COSTLY_ORDER = 3
ALLOC_WMARK_MIN, ALLOC_WMARK_LOW, ALLOC_WMARK_HIGH = 0, 1, 2
ALLOC_WMARK_MASK = 3
ALLOC_NO_WATERMARKS = 0x04
ALLOC_HARDER = 0x10
ALLOC_HIGH = 0x20


# gfp bits, as plain names: inside a class Python would mangle "___GFP_...".
GFP_DMA_BIT, GFP_DMA32_BIT = G.___GFP_DMA, G.___GFP_DMA32

# enum migratetype (4.4), the three the model keeps, and show_migration_types()'s letters
MIGRATE_UNMOVABLE, MIGRATE_MOVABLE, MIGRATE_RECLAIMABLE = 0, 1, 2
MIGRATE_TYPES = 3
MIGRATE_LETTERS = "UME"
# fallbacks[] (mm/page_alloc.c, 4.4): where __rmqueue_fallback() looks, in order
FALLBACKS = {MIGRATE_UNMOVABLE: (MIGRATE_RECLAIMABLE, MIGRATE_MOVABLE),
             MIGRATE_RECLAIMABLE: (MIGRATE_UNMOVABLE, MIGRATE_MOVABLE),
             MIGRATE_MOVABLE: (MIGRATE_RECLAIMABLE, MIGRATE_UNMOVABLE)}


def gfpflags_to_migratetype(gfp_mask: int) -> int:
    """__GFP_MOVABLE -> Movable, __GFP_RECLAIMABLE -> Reclaimable, else Unmovable."""
    if gfp_mask & G.___GFP_MOVABLE:
        return MIGRATE_MOVABLE
    if gfp_mask & G.___GFP_RECLAIMABLE:
        return MIGRATE_RECLAIMABLE
    return MIGRATE_UNMOVABLE

# The least time one pass of a retry loop costs (the CPU time of a reclaim
# pass that finds nothing); keeps looping tasks from spinning the host.
COND_RESCHED_S = 0.004


@dataclass(frozen=True)
class Page:
    """A block handed out: zone index, order, and the migratetype it was
    allocated as (the free list it goes back to)."""

    zone: int
    order: int
    mt: int = MIGRATE_MOVABLE

    @property
    def pages(self) -> int:
        return 1 << self.order


class ZoneState:
    def __init__(self, spec, idx: int) -> None:
        z = spec.zone
        self.idx = idx
        self.name = z.name
        self.present = z.present_kb // PAGE_KB
        self.min = z.min_kb // PAGE_KB
        self.low = self.min + self.min // 4
        self.high = self.min + self.min // 2
        self.free = list(z.free)
        # the same free blocks by migratetype, free_area[order].free_list[type]
        # (boot memory is Movable: memmap_init_zone(); _sync_types())
        self.free_mt = [[0] * MIGRATE_TYPES for _ in self.free]
        self.file = spec.file_kb // PAGE_KB  # clean page cache
        self.dirty = spec.dirty_kb // PAGE_KB
        self.writeback = 0  # NR_WRITEBACK: written by kswapd's pageout(), the I/O not done yet
        self.zone_dirty = False  # ZONE_DIRTY: reclaim met only dirty pages not queued for I/O
        self.kernel = spec.kernel_kb // PAGE_KB
        self.anon = 0
        self.pages_scanned = 0  # NR_PAGES_SCANNED
        self.isolated = 0  # NR_ISOLATED_FILE: taken off the LRU by reclaimers in progress
        # the per-cpu free list (one CPU): order-0 pages freed and allocated
        # here, outside NR_FREE_PAGES (free_pages())
        self.pcp_batch, self.pcp_high = pageset_batch_high(self.present)
        self.pcp_count = 0
        self.pcp_mt = [0] * MIGRATE_TYPES  # the per-cpu pages by migratetype
        self.scan_resets = 0  # free_pcppages_bulk()/free_one_page() calls (NR_PAGES_SCANNED := 0)
        self.lowmem_reserve: list[int] = []  # per classzone index: setup_per_zone_lowmem_reserve()

    def free_pages(self) -> int:
        return sum(n << o for o, n in enumerate(self.free))

    def reclaimable(self) -> int:
        """zone_reclaimable_pages(): the file LRU (no swap: anon is not),
        with the pages under writeback, which stay on it."""
        return self.file + self.dirty + self.writeback

    def zone_reclaimable(self) -> bool:
        return self.pages_scanned < self.reclaimable() * 6

    def watermark_ok(self, order: int, mark: int, alloc_flags: int,
                     classzone_idx: int | None = None) -> bool:
        """__zone_watermark_ok() of 4.4: free pages above the mark plus
        lowmem_reserve[classzone_idx] (the protection of a lower zone from
        requests that could use a higher one), then, for order > 0, a free
        block of that order or larger (compaction is left out)."""
        min_ = mark
        if alloc_flags & ALLOC_HIGH:
            min_ -= min_ // 2
        if alloc_flags & ALLOC_HARDER:
            min_ -= min_ // 4
        reserve = 0
        if classzone_idx is not None and classzone_idx < len(self.lowmem_reserve):
            reserve = self.lowmem_reserve[classzone_idx]
        if self.free_pages() - ((1 << order) - 1) <= min_ + reserve:
            return False
        if not order:
            return True
        return any(self.free[o] for o in range(order, MAX_ORDER))

    def _sync_types(self) -> None:
        """Keep free_mt's counts equal to free's: blocks that appeared outside
        the allocator (the scenario's boot state) are Movable, as
        memmap_init_zone() marks every pageblock; blocks gone go from
        Movable first, then Reclaimable, then Unmovable."""
        for o, n in enumerate(self.free):
            types = self.free_mt[o]
            d = n - sum(types)
            if d > 0:
                types[MIGRATE_MOVABLE] += d
            for t in (MIGRATE_MOVABLE, MIGRATE_RECLAIMABLE, MIGRATE_UNMOVABLE):
                if d >= 0:
                    break
                k = min(-d, types[t])
                types[t] -= k
                d += k

    def _del(self, o: int, mt: int) -> None:
        self.free[o] -= 1
        self.free_mt[o][mt] -= 1

    def _expand(self, low: int, high: int, mt: int) -> None:
        """expand(): the halves of a split block onto ``mt``'s free lists."""
        while high > low:
            high -= 1
            self.free[high] += 1
            self.free_mt[high][mt] += 1

    def take(self, order: int, mt: int = MIGRATE_MOVABLE) -> bool:
        """__rmqueue() (4.4): the smallest block of the request's migratetype
        that fits, split (__rmqueue_smallest()); else, as
        __rmqueue_fallback(), the largest block of a fallback type, its
        halves put on the request's lists (the model does not keep
        pageblocks); else smaller blocks put together (what compaction
        would give)."""
        self._sync_types()
        for o in range(order, MAX_ORDER):
            if self.free_mt[o][mt]:
                self._del(o, mt)
                self._expand(order, o, mt)
                return True
        for o in range(MAX_ORDER - 1, order - 1, -1):
            for f in FALLBACKS[mt]:
                if self.free_mt[o][f]:
                    self._del(o, f)
                    self._expand(order, o, mt)
                    return True
        need = 1 << order
        if self.free_pages() < need:
            return False
        for o in range(order - 1, -1, -1):
            for t in (mt, *FALLBACKS[mt]):
                while self.free_mt[o][t] and need > 0:
                    self._del(o, t)
                    need -= 1 << o
        if need < 0:  # the last block was larger than what was left to take
            self._to_buddy(-need, mt)
        return True

    def give(self, pages: int, mt: int = MIGRATE_MOVABLE) -> None:
        """Free ``pages`` order-0 pages (free_hot_cold_page_list(): reclaim,
        exit_mmap(); page cache and anonymous memory are Movable): onto the
        per-cpu list."""
        if pages > 0:
            self.free_hot_cold_page(pages, mt)

    def free_block(self, order: int, mt: int = MIGRATE_MOVABLE) -> None:
        """__free_pages() of one block: order 0 goes to the per-cpu list,
        a larger one straight to the buddy lists (free_one_page())."""
        if order == 0:
            self.free_hot_cold_page(1, mt)
        else:
            self.free_one_page(1 << order, mt)

    def free_hot_cold_page(self, n: int, mt: int = MIGRATE_MOVABLE) -> None:
        """mm/page_alloc.c (4.4), n times: the page goes on the per-cpu
        list; once the list holds pcp->high pages, free_pcppages_bulk()
        gives pcp->batch of them back to the buddy lists."""
        self.pcp_count += n
        self.pcp_mt[mt] += n
        while self.pcp_count >= self.pcp_high and self.pcp_count > 0:
            k = min(self.pcp_batch, self.pcp_count)
            self.free_pcppages_bulk(k)

    def free_pcppages_bulk(self, pages: int) -> None:
        """``pages`` off the per-cpu list, taken from its migratetypes in
        turn as 4.4's round robin does, each back to its type's lists."""
        pages = min(pages, self.pcp_count)
        self.pcp_count -= pages
        back = [0] * MIGRATE_TYPES
        t = 0
        while pages:
            if self.pcp_mt[t]:
                self.pcp_mt[t] -= 1
                back[t] += 1
                pages -= 1
            t = (t + 1) % MIGRATE_TYPES
        for t, n in enumerate(back):
            self._to_buddy(n, t)
        self.pages_scanned = 0  # __mod_zone_page_state(zone, NR_PAGES_SCANNED, -nr_scanned)
        self.scan_resets += 1

    def free_one_page(self, pages: int, mt: int = MIGRATE_MOVABLE) -> None:
        self._to_buddy(pages, mt)
        self.pages_scanned = 0
        self.scan_resets += 1

    def drain_pages(self) -> None:
        """drain_pages_zone(): the whole per-cpu list back, if it holds any."""
        if self.pcp_count:
            self.free_pcppages_bulk(self.pcp_count)

    def rmqueue_pcp(self, mt: int = MIGRATE_MOVABLE) -> bool:
        """buffered_rmqueue() for order 0: from the per-cpu list, refilled
        with pcp->batch pages of the request's type (rmqueue_bulk()) when it
        is empty.  (One list: 4.4 keeps one per type.)"""
        if not self.pcp_count:
            for _ in range(self.pcp_batch):
                if not self.take(0, mt):
                    break
                self.pcp_count += 1
                self.pcp_mt[mt] += 1
            if not self.pcp_count:
                return False
        t = mt if self.pcp_mt[mt] else next(t for t in range(MIGRATE_TYPES) if self.pcp_mt[t])
        self.pcp_count -= 1
        self.pcp_mt[t] -= 1
        return True

    def _to_buddy(self, pages: int, mt: int = MIGRATE_MOVABLE) -> None:
        """``pages`` pages onto ``mt``'s buddy lists, merged as far as they go."""
        if pages <= 0:
            return
        self._sync_types()
        top = MAX_ORDER - 1
        self.free[top] += pages >> top
        self.free_mt[top][mt] += pages >> top
        rest = pages & ((1 << top) - 1)
        for o in range(top):
            if rest >> o & 1:
                self.free[o] += 1
                self.free_mt[o][mt] += 1

    def free_area_types(self) -> list[str]:
        """show_migration_types() per order: the letters of the types whose
        free list of that order is not empty, in enum order ("UME")."""
        self._sync_types()
        return ["".join(MIGRATE_LETTERS[t] for t in range(MIGRATE_TYPES) if types[t])
                for types in self.free_mt]


def pageset_batch_high(managed: int) -> tuple[int, int]:
    """zone_batchsize() and pageset_set_batch() (4.4): batch is about a
    quarter of a 1/1024 of the zone, at most 512 kB, rounded to 2^n - 1
    (31 for a zone of 512 MiB or more); high is 6 * batch.  A zone too small
    for a batch (DMA) gets high 0 and batch 1: every free goes straight on."""
    batch = managed // 1024
    if batch * PAGE_KB > 512:
        batch = 512 // PAGE_KB
    batch //= 4
    if batch < 1:
        batch = 1
    batch = (1 << ((batch + batch // 2).bit_length() - 1)) - 1  # rounddown_pow_of_two() - 1
    return max(1, batch), 6 * batch


# sysctl_lowmem_reserve_ratio (4.4): DMA 256, DMA32 256, Normal 32
LOWMEM_RESERVE_RATIO = {"DMA": 256, "DMA32": 256}
LOWMEM_RESERVE_RATIO_DEFAULT = 32


def setup_per_zone_lowmem_reserve(zones: list[ZoneState]) -> None:
    """zone i's lowmem_reserve[j], j > i: the pages of zones i+1..j divided
    by zone i's ratio; 0 for j <= i."""
    for i, z in enumerate(zones):
        ratio = LOWMEM_RESERVE_RATIO.get(z.name, LOWMEM_RESERVE_RATIO_DEFAULT)
        z.lowmem_reserve = [0] * len(zones)
        above = 0
        for j in range(i + 1, len(zones)):
            above += zones[j].present
            z.lowmem_reserve[j] = above // ratio


class Memory:
    """The machine's memory: zones (lowest first), reclaim and writeback."""

    def __init__(self, spec: MemorySpec, now: Callable[[], float] = time.monotonic) -> None:
        self.zones = [ZoneState(z, i) for i, z in enumerate(spec.zones)]
        setup_per_zone_lowmem_reserve(self.zones)
        self.lock = threading.Lock()
        self.reclaim_rate = spec.reclaim_kbps / PAGE_KB  # pages per second
        self.writeback_rate = spec.writeback_kbps / PAGE_KB
        self.writepage_from_reclaim = spec.writepage_from_reclaim
        self.now = now  # the machine's clock, in seconds
        self._wb_t = now()
        self._wb_carry = 0.0
        self._io_t = now()  # kswapd's pageout() I/O completes at the device's rate
        self._io_carry = 0.0
        self.kswapd_pageouts = 0  # pages kswapd wrote from reclaim (pageout())
        self.flusher = False  # True: a flusher task does the writeback (flush())
        self.timed: list[tuple[float, int, Page]] = []  # "buffer" pages, by the time they go
        self._seq = itertools.count()
        self.oom_lock = threading.Lock()
        self.oom_kills = 0
        self.slowpath_entries = 0
        self.congestion_waits = 0  # too_many_isolated()'s congestion_wait(HZ/10) calls

    # ---- bookkeeping ----

    def zonelist(self, gfp_mask: int) -> list[ZoneState]:
        """The zones a request may use, preferred (highest) first."""
        names = [z.name for z in self.zones]
        if gfp_mask & GFP_DMA_BIT and "DMA" in names:
            top = names.index("DMA")
        elif gfp_mask & GFP_DMA32_BIT and "DMA32" in names:
            top = names.index("DMA32")
        else:
            top = len(self.zones) - 1
        return [self.zones[i] for i in range(top, -1, -1)]

    def lowmem_only(self, gfp_mask: int) -> bool:
        """ac->high_zoneidx < ZONE_NORMAL."""
        return bool(gfp_mask & (GFP_DMA_BIT | GFP_DMA32_BIT)) and len(self.zones) > 1

    def writeback(self, flushing: bool = False) -> None:
        """Dirty page cache becomes clean at the writeback rate: as time goes
        by, or, with a flusher task, only when it writes (``flushing``, after
        its I/O allocation succeeded).  Called under the lock."""
        if self.flusher and not flushing:
            return
        now = self.now()
        self._wb_carry += (now - self._wb_t) * self.writeback_rate
        self._wb_t = now
        if flushing:  # one I/O (a bio) per allocation: the device is not ahead of it
            self._wb_carry = min(self._wb_carry, BIO_MAX_PAGES)
        n = int(self._wb_carry)
        if n <= 0:
            return
        self._wb_carry -= n
        if self._to_clean_cache("dirty", n) > 0:
            self._wb_carry = 0.0

    def hold(self, page: Page, until: float) -> None:
        """A buffer freed at a given time (its user is done with it then,
        whatever that thread is doing)."""
        with self.lock:
            heapq.heappush(self.timed, (until, next(self._seq), page))

    def end_page_writeback(self) -> None:
        """The I/O kswapd's pageout() started completes at the device's rate
        (whether or not a flusher can allocate: it was submitted): the pages
        become clean page cache.  Under the lock."""
        now = self.now()
        busy = any(z.writeback for z in self.zones)
        self._io_carry = self._io_carry + (now - self._io_t) * self.writeback_rate if busy else 0.0
        self._io_t = now
        n = int(self._io_carry)
        if n <= 0:
            return
        self._io_carry -= n
        self._to_clean_cache("writeback", n)

    def _to_clean_cache(self, counter: str, n: int) -> int:
        """Up to n pages of each zone's ``counter`` (dirty, writeback) made
        clean page cache, the highest zone first; the pages left over."""
        for z in reversed(self.zones):
            k = min(n, getattr(z, counter))
            setattr(z, counter, getattr(z, counter) - k)
            z.file += k
            n -= k
        return n

    def tick(self) -> None:
        """Time-driven changes, under the lock: writeback, and the buffers due."""
        self.writeback()
        self.end_page_writeback()
        now = self.now()
        while self.timed and self.timed[0][0] <= now:
            _, _, page = heapq.heappop(self.timed)
            self.zones[page.zone].free_block(page.order, page.mt)

    def congested(self, zones: list[ZoneState]) -> bool:
        """ZONE_CONGESTED, roughly: reclaim meets mostly pages under writeback."""
        return any(z.dirty + z.writeback and (z.dirty + z.writeback) * 2 >= z.reclaimable()
                   for z in zones)

    def free_page(self, page: Page, use: str, mm: "MMStruct | None" = None) -> None:
        with self.lock:
            z = self.zones[page.zone]
            if use == "anon" and mm is not None:
                mm.zone_pages[page.zone] -= page.pages
                z.anon -= page.pages
            z.free_block(page.order, page.mt)

    def account(self, page: Page, use: str, mm: "MMStruct | None") -> None:
        """What the pages of a finished request become."""
        with self.lock:
            z = self.zones[page.zone]
            n = page.pages
            if use == "anon" and mm is not None:
                z.anon += n
                mm.zone_pages[page.zone] += n
            elif use == "pagecache":
                z.file += n
            elif use == "dirty":
                z.dirty += n
            elif use == "kernel":
                z.kernel += n

    def charge_boot_rss(self, mm: "MMStruct", pages: int) -> None:
        """The anonymous memory a process has at boot, in the highest zones."""
        with self.lock:
            for z in reversed(self.zones):
                room = max(0, z.present - z.free_pages() - z.file - z.dirty - z.kernel - z.anon)
                k = min(room, pages) if z.idx else pages
                z.anon += k
                mm.zone_pages[z.idx] += k
                pages -= k
                if pages <= 0:
                    return

    def mmput(self, mm: "MMStruct") -> int:
        """The last user left: the mm's pages go back to their zones."""
        with self.lock:
            freed = 0
            for i, n in enumerate(mm.zone_pages):
                if n:
                    self.zones[i].anon -= n
                    self.zones[i].give(n)
                    freed += n
                mm.zone_pages[i] = 0
            return freed

    def below_high(self) -> list[ZoneState]:
        """The zones kswapd would balance: below the high watermark and still
        zone_reclaimable() (pgdat_balanced() counts the others as balanced)."""
        with self.lock:
            return [z for z in self.zones
                    if z.free_pages() < z.high and z.zone_reclaimable() and z.reclaimable()]

    # ---- show_mem(), in 4.4's units ----

    def show_mem(self) -> tuple[list[str], dict]:
        """lib/show_mem.c and show_free_areas() of 4.4: the global counters in
        pages, each zone in kB, the free lists as N*SIZEkB, then the page
        totals.  Counters the model does not keep print 0."""
        with self.lock:
            self.tick()
            zs = [(z.name, z.free_pages(), z.min, z.low, z.high, z.anon, z.file, z.dirty,
                   z.kernel, z.present, list(z.free), z.pages_scanned, not z.zone_reclaimable(),
                   list(z.lowmem_reserve), z.pcp_count, z.isolated, z.writeback,
                   z.free_area_types()) for z in self.zones]
        anon = sum(z[5] for z in zs)
        file_ = sum(z[6] for z in zs)
        dirty = sum(z[7] for z in zs)
        wb = sum(z[16] for z in zs)
        slab = sum(z[8] for z in zs)
        free = sum(z[1] for z in zs)
        lines = [
            "Mem-Info:",
            f"active_anon:{anon} inactive_anon:0 isolated_anon:0",
            f" active_file:0 inactive_file:{file_ + dirty + wb} "
            f"isolated_file:{sum(z[15] for z in zs)}",
            f" unevictable:0 dirty:{dirty} writeback:{wb} unstable:0",
            f" slab_reclaimable:0 slab_unreclaimable:{slab}",
            f" mapped:0 shmem:0 pagetables:0 bounce:0",
            f" free:{free} free_pcp:{sum(z[14] for z in zs)} free_cma:0",
        ]
        k = PAGE_KB
        for (name, fp, mn, lo, hi, an, fi, di, ke, pr, _, scanned, unrecl, reserve, pcp,
             iso, wbz, _) in zs:
            lines.append(
                f"Node 0 {name} free:{fp * k}kB min:{mn * k}kB low:{lo * k}kB high:{hi * k}kB "
                f"active_anon:{an * k}kB inactive_anon:0kB active_file:0kB "
                f"inactive_file:{(fi + di + wbz) * k}kB unevictable:0kB isolated(anon):0kB "
                f"isolated(file):{iso * k}kB present:{pr * k}kB managed:{pr * k}kB mlocked:0kB "
                f"dirty:{di * k}kB writeback:{wbz * k}kB mapped:0kB shmem:0kB slab_reclaimable:0kB "
                f"slab_unreclaimable:{ke * k}kB kernel_stack:0kB pagetables:0kB unstable:0kB "
                f"bounce:0kB free_pcp:{pcp * k}kB local_pcp:{pcp * k}kB free_cma:0kB "
                f"writeback_tmp:0kB "
                f"pages_scanned:{scanned} all_unreclaimable? {'yes' if unrecl else 'no'}")
            # one entry per zone type, ZONE_MOVABLE's (empty here) last
            lines.append("lowmem_reserve[]: " + " ".join(str(r) for r in reserve + reserve[-1:]))
        for z in zs:
            # show_free_areas(): "%lu*%lukB " per order, then "(%s) " with the
            # migratetype letters of the lists that hold blocks of that order
            parts = " ".join(f"{n}*{k << o}kB" + (f" ({z[17][o]})" if n else "")
                             for o, n in enumerate(z[10]))
            lines.append(f"Node 0 {z[0]}: {parts} = {z[1] * k}kB")
        lines.append(f"{file_ + dirty + wb} total pagecache pages")
        # show_swap_cache_info(): the model has no swap
        lines += ["0 pages in swap cache", "Swap cache stats: add 0, delete 0, find 0/0",
                  "Free swap  = 0kB", "Total swap = 0kB"]
        ram = sum(z[9] for z in zs)
        lines += [f"{ram} pages RAM", "0 pages HighMem/MovableOnly", "0 pages reserved"]
        data = {
            "free_pages": free, "anon_pages": anon, "file_pages": file_, "dirty_pages": dirty,
            "slab_pages": slab, "ram_pages": ram,
            "too_many_isolated_waits": self.congestion_waits,
            "writeback_pages": wb, "kswapd_pageouts": self.kswapd_pageouts,
            "zones": [{"name": z[0], "free_kb": z[1] * k, "min_kb": z[2] * k, "low_kb": z[3] * k,
                       "high_kb": z[4] * k, "present_kb": z[9] * k, "free_blocks": z[10],
                       "pages_scanned": z[11], "all_unreclaimable": z[12],
                       "lowmem_reserve": z[13], "free_pcp_kb": z[14] * k,
                       "free_types": z[17]} for z in zs],
        }
        return lines, data


# ---- the allocator, as the allocating task runs it ----


def memalloc_noio_flags(p: "Task", gfp_mask: int) -> int:
    if p.flags & PF_MEMALLOC_NOIO:
        gfp_mask &= ~(G.___GFP_IO | G.___GFP_FS)
    return gfp_mask


def get_page_from_freelist(p: "Task", gfp_mask: int, order: int, alloc_flags: int) -> Page | None:
    mem = p.system.memory
    with mem.lock:
        mem.tick()
        zones = mem.zonelist(gfp_mask)
        classzone_idx = zones[0].idx  # the preferred zone's
        for z in zones:
            if not alloc_flags & ALLOC_NO_WATERMARKS:
                mark = (z.min, z.low, z.high)[alloc_flags & ALLOC_WMARK_MASK]
                if not z.watermark_ok(order, mark, alloc_flags, classzone_idx):
                    continue
            mt = gfpflags_to_migratetype(gfp_mask)
            if z.rmqueue_pcp(mt) if order == 0 else z.take(order, mt):
                return Page(z.idx, order, mt)
    return None


def gfp_to_alloc_flags(p: "Task", gfp_mask: int) -> int:
    alloc_flags = ALLOC_WMARK_MIN
    if gfp_mask & G.___GFP_HIGH:
        alloc_flags |= ALLOC_HIGH
    if gfp_mask & G.___GFP_ATOMIC and not gfp_mask & G.___GFP_NOMEMALLOC:
        alloc_flags |= ALLOC_HARDER  # (and rt tasks, which the model has none of)
    if not gfp_mask & G.___GFP_NOMEMALLOC:
        if gfp_mask & G.___GFP_MEMALLOC:
            alloc_flags |= ALLOC_NO_WATERMARKS
        elif p.flags & PF_MEMALLOC:
            alloc_flags |= ALLOC_NO_WATERMARKS
        elif p.memdie:  # TIF_MEMDIE, outside interrupts
            alloc_flags |= ALLOC_NO_WATERMARKS
    return alloc_flags


def wake_all_kswapds(p: "Task", order: int) -> None:
    k = p.system.kswapd_task
    if k is not None and k.state & sched.TASK_INTERRUPTIBLE:
        k.wake.set()


def try_to_free_pages(p: "Task", gfp_mask: int, order: int) -> int:
    """Direct reclaim: up to SWAP_CLUSTER_MAX clean page-cache pages from the
    request's zones.  Returns 4.4's did_some_progress: pages reclaimed, or
    1 if some zone is still "reclaimable" (scanned less than 6 times its
    file pages), or 0.

    shrink_inactive_list() once per zone with pages on its LRU: first, while
    too_many_isolated() (other reclaimers have more pages off this zone's
    LRU than it has left on it), congestion_wait(BLK_RW_ASYNC, HZ/10) in D;
    a task with a fatal signal pending leaves that loop at once, with
    SWAP_CLUSTER_MAX "reclaimed" ("We are about to die and free our
    memory"), which do_try_to_free_pages() returns as its progress.  Then
    up to SWAP_CLUSTER_MAX pages are isolated (NR_ISOLATED_FILE) while the
    pass scans; after it, wait_iff_congested(HZ/10) sleeps in D if the zone
    is congested (reclaim met mostly dirty pages).

    Scanning takes time: the pages scanned at the reclaim rate, at most
    0.1 s, during which the pass's pages are isolated; then the rest of one
    cond_resched (COND_RESCHED_S), if the scan took less, with them back on
    the LRU (the kernel isolates a batch only while shrink_page_list() works
    on it: a reclaimer that scans a page or two does not throttle the others
    for a whole cond_resched).  A pass that frees nothing scans every
    priority from DEF_PRIORITY to 0, about twice the file LRU of each zone;
    NR_PAGES_SCANNED grows slice by slice while it scans, and a reset
    meanwhile (free_pcppages_bulk(), free_one_page()) clears it, so
    zone_reclaimable(), asked at the end as shrink_zones() does, sees what
    was scanned since.  Dirty pages are left for writeback: direct reclaim
    does not write file pages."""
    mem = p.system.memory
    hz = p.system.hz
    with mem.lock:
        zones = [z for z in mem.zonelist(gfp_mask) if z.reclaimable()]
    for z in zones:  # shrink_inactive_list()'s throttle, as each zone's pass begins
        while True:
            with mem.lock:
                mem.tick()
                throttled = too_many_isolated(p, z, gfp_mask)
            if not throttled:
                break
            congestion_wait(p, (hz // 10) / hz)  # BLK_RW_ASYNC, HZ/10
            if p.sigkill:  # fatal_signal_pending(): "about to die and free our memory"
                return SWAP_CLUSTER_MAX
    with mem.lock:
        mem.tick()
        taken = [max(0, min(SWAP_CLUSTER_MAX, z.reclaimable() - z.isolated)) for z in zones]
        for z, n in zip(zones, taken):
            z.isolated += n
        reclaimed = 0
        for z, t in zip(zones, taken):
            n = min(z.file, SWAP_CLUSTER_MAX - reclaimed)
            if n:
                z.file -= n
                z.give(n)
                reclaimed += n
            elif t and z.dirty:
                # shrink_page_list(): a dirty file page is kept unless
                # may_pageout() (kswapd only); nr_unqueued_dirty == nr_taken
                if may_pageout(p, z):
                    pageout(mem, z, min(z.dirty, SWAP_CLUSTER_MAX))
                z.zone_dirty = True
            if reclaimed >= SWAP_CLUSTER_MAX:
                break
        scans = [] if reclaimed else [2 * z.reclaimable() for z in zones]
    # the pages are off the LRU while they are scanned (busy); the rest of
    # the pass's least cost (COND_RESCHED_S) runs with them back on it
    busy = min((reclaimed or sum(scans)) / mem.reclaim_rate, 0.1)
    try:
        if reclaimed:
            sched.cond_resched(p, busy)
        elif busy > 0:
            slices = max(1, round(busy / 0.01))
            for _ in range(slices):
                with mem.lock:
                    mem.tick()
                    for z, n in zip(zones, scans):
                        z.pages_scanned += n // slices
                sched.cond_resched(p, busy / slices)
    finally:
        with mem.lock:
            for z, n in zip(zones, taken):
                z.isolated -= n
    if busy < COND_RESCHED_S:
        sched.cond_resched(p, COND_RESCHED_S - busy)
    for z in zones:
        with mem.lock:
            congested = mem.congested([z])
        if congested:  # wait_iff_congested(zone, BLK_RW_ASYNC, HZ/10)
            sched.schedule_timeout(p, (hz // 10) / hz, sched.TASK_UNINTERRUPTIBLE)
    if reclaimed:
        return reclaimed
    with mem.lock:
        mem.tick()  # pages freed while it scanned reset NR_PAGES_SCANNED first
        return 1 if any(z.zone_reclaimable() for z in zones) else 0


def current_is_kswapd(p: "Task") -> bool:
    return p.system.kswapd_task is p


def may_pageout(p: "Task", z: ZoneState) -> bool:
    """shrink_page_list() (4.4) on a dirty file page: "Only kswapd can
    writeback filesystem pages to avoid risk of stack overflow but only
    writeback if many dirty pages have been encountered": kswapd, in a zone
    flagged ZONE_DIRTY (reclaim met only dirty pages not queued for I/O).
    A direct reclaimer keeps the page (SetPageReclaim) and goes on."""
    return current_is_kswapd(p) and z.zone_dirty


def pageout(mem: "Memory", z: ZoneState, n: int) -> int:
    """pageout() of ``n`` dirty pages: ->writepage() submits the I/O and the
    pages stay on the LRU under writeback (NR_WRITEBACK) until the device
    completes it (Memory.end_page_writeback()); or, if the filesystem will
    not write from reclaim (ext4's delayed allocation), it redirties them
    and they stay dirty.  Under the lock."""
    n = max(0, min(n, z.dirty)) if mem.writepage_from_reclaim else 0
    if n:
        if not any(x.writeback for x in mem.zones):
            mem._io_t = mem.now()  # the device starts on it now
        z.dirty -= n
        z.writeback += n
        mem.kswapd_pageouts += n
    return n


def too_many_isolated(p: "Task", z: ZoneState, gfp_mask: int) -> bool:
    """mm/vmscan.c (4.4), for the file LRU of global reclaim (sane_reclaim()):
    never for kswapd; else more pages isolated (NR_ISOLATED_FILE) than left
    on the inactive list (NR_INACTIVE_FILE: the isolated ones are off it).
    A request with both __GFP_IO and __GFP_FS compares with an eighth of the
    inactive list: "GFP_NOIO/GFP_NOFS callers are allowed to isolate more
    pages, so they won't get blocked by normal direct-reclaimers, forming a
    circular deadlock"."""
    if current_is_kswapd(p):
        return False
    isolated = z.isolated
    inactive = max(0, z.reclaimable() - isolated)
    if gfp_mask & (G.___GFP_IO | G.___GFP_FS) == G.___GFP_IO | G.___GFP_FS:
        inactive >>= 3
    return isolated > inactive


def congestion_wait(p: "Task", seconds: float) -> None:
    """mm/backing-dev.c congestion_wait(): io_schedule_timeout() in D, for
    the whole timeout (no device here signals that it became uncongested).
    Counted in the memory's ``congestion_waits`` (show_mem()'s data)."""
    mem = p.system.memory
    with mem.lock:
        mem.congestion_waits += 1
    sched.schedule_timeout(p, seconds, sched.TASK_UNINTERRUPTIBLE)


def __perform_reclaim(p: "Task", gfp_mask: int, order: int) -> int:
    """Direct reclaim, which 4.20's PSI counts as a memory stall
    (psi_memstall_enter()/leave() around it, as around compaction and
    refaults; the waits between passes are not)."""
    p.flags |= PF_MEMALLOC
    p.memstall = True
    try:
        return try_to_free_pages(p, gfp_mask, order)
    finally:
        p.memstall = False
        p.flags &= ~PF_MEMALLOC


def __alloc_pages_direct_reclaim(p: "Task", gfp_mask: int, order: int,
                                 alloc_flags: int) -> tuple[Page | None, int]:
    progress = __perform_reclaim(p, gfp_mask, order)
    if not progress:
        return None, 0
    page = get_page_from_freelist(p, gfp_mask, order, alloc_flags & ~ALLOC_NO_WATERMARKS)
    if page is None:
        # "it could be because pages are pinned on the per-cpu lists.
        # Drain them and try again"
        drain_all_pages(p.system.memory)
        page = get_page_from_freelist(p, gfp_mask, order, alloc_flags & ~ALLOC_NO_WATERMARKS)
    return page, progress


def drain_all_pages(mem: "Memory") -> None:
    with mem.lock:
        for z in mem.zones:
            z.drain_pages()


def wait_iff_congested(p: "Task", seconds: float) -> None:
    """mm/backing-dev.c: sleep (TASK_UNINTERRUPTIBLE, io_schedule_timeout)
    only if a zone is congested; else just cond_resched()."""
    mem = p.system.memory
    with mem.lock:
        congested = mem.congested(mem.zonelist(0))
    if congested:
        sched.schedule_timeout(p, seconds, sched.TASK_UNINTERRUPTIBLE)
    else:
        sched.cond_resched(p, COND_RESCHED_S)


def schedule_timeout_uninterruptible(p: "Task", seconds: float) -> None:
    sched.schedule_timeout(p, seconds, sched.TASK_UNINTERRUPTIBLE)


def __alloc_pages_may_oom(p: "Task", gfp_mask: int, order: int) -> tuple[Page | None, int]:
    from kmallocwd.watchdog.oom import out_of_memory

    mem = p.system.memory
    hz = p.system.hz
    if not mem.oom_lock.acquire(blocking=False):
        schedule_timeout_uninterruptible(p, 1 / hz)  # somebody else is making progress for us
        return None, 1
    try:
        page = get_page_from_freelist(p, gfp_mask | G.___GFP_HARDWALL, order, ALLOC_WMARK_HIGH)
        if page:
            return page, 0
        if not gfp_mask & G.___GFP_NOFAIL:
            if order > PAGE_ALLOC_COSTLY_ORDER:
                return None, 0
            if mem.lowmem_only(gfp_mask):
                return None, 0
            if not gfp_mask & G.___GFP_FS:
                # "XXX: Page reclaim didn't yield anything, and the OOM killer
                # can't be invoked, but keep looping as per tradition."
                return None, 1
            if gfp_mask & G.___GFP_THISNODE:
                return None, 0
        progress = 1 if out_of_memory(p, gfp_mask, order) or gfp_mask & G.___GFP_NOFAIL else 0
        return None, progress
    finally:
        mem.oom_lock.release()


def __alloc_pages_slowpath(p: "Task", gfp_mask: int, order: int) -> Page | None:
    hz = p.system.hz
    can_direct_reclaim = bool(gfp_mask & G.___GFP_DIRECT_RECLAIM)
    pages_reclaimed = 0
    while True:  # retry:
        if gfp_mask & G.___GFP_KSWAPD_RECLAIM:
            wake_all_kswapds(p, order)
        alloc_flags = gfp_to_alloc_flags(p, gfp_mask)
        page = get_page_from_freelist(p, gfp_mask, order, alloc_flags & ~ALLOC_NO_WATERMARKS)
        if page:
            return page
        if alloc_flags & ALLOC_NO_WATERMARKS:
            page = get_page_from_freelist(p, gfp_mask, order, alloc_flags)
            if page:
                return page
        if not can_direct_reclaim:
            return None  # atomic: fail
        if p.flags & PF_MEMALLOC:
            return None  # no recursion into reclaim
        if p.memdie and not gfp_mask & G.___GFP_NOFAIL:
            return None  # "Avoid allocations with no watermarks from looping endlessly"
        page, progress = __alloc_pages_direct_reclaim(p, gfp_mask, order, alloc_flags)
        if page:
            return page
        if gfp_mask & G.___GFP_NORETRY:
            return None
        # 4.9's stall warning (a detector), where 4.9 has it: after its
        # __GFP_NORETRY and costly-order exits
        if not (order > PAGE_ALLOC_COSTLY_ORDER and not gfp_mask & G.___GFP_REPEAT):
            p.system.warn_alloc_check(p, gfp_mask, order)
        pages_reclaimed += progress
        if (progress and order <= PAGE_ALLOC_COSTLY_ORDER) or (
                gfp_mask & G.___GFP_REPEAT and pages_reclaimed < (1 << order)):
            wait_iff_congested(p, (hz // 50) / hz)  # HZ/50
            continue
        page, progress = __alloc_pages_may_oom(p, gfp_mask, order)
        if page:
            return page
        if progress:
            continue
        return None  # nopage (warn_alloc_failed)


def start_memalloc_timer(p: "Task", gfp_mask: int, order: int) -> None:
    lib.kmw_start_memalloc_timer(p.system.proto_id, p.m, gfp_mask, order, p.system.jiffies())


def stop_memalloc_timer(p: "Task", gfp_mask: int) -> None:
    lib.kmw_stop_memalloc_timer(p.system.proto_id, p.m, gfp_mask)


def __alloc_pages_nodemask(p: "Task", gfp_mask: int, order: int) -> Page | None:
    """mm/page_alloc.c as the patch changes it: the fast path first; the
    timer brackets the slow path only, with memalloc_noio_flags()'s mask.
    On a halt the slot is left as it is (no stop_memalloc_timer)."""
    page = get_page_from_freelist(p, gfp_mask | G.___GFP_HARDWALL, order, ALLOC_WMARK_LOW)
    if page:
        return page
    alloc_mask = memalloc_noio_flags(p, gfp_mask)
    p.system.memory.slowpath_entries += 1
    start_memalloc_timer(p, alloc_mask, order)
    p.slowpath_since = p.system.jiffies()
    try:
        page = __alloc_pages_slowpath(p, alloc_mask, order)
    finally:
        p.slowpath_since = None
    stop_memalloc_timer(p, alloc_mask)
    return page


def alloc_pages(p: "Task", gfp_mask: int, order: int) -> Page | None:
    return __alloc_pages_nodemask(p, gfp_mask, order)
