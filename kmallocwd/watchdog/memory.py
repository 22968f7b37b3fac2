"""The emulated memory behind show_mem(): zones with free blocks per order.

Nothing here is the real machine's memory.  Each zone starts with the
scenario's free-block counts; every allocation request that finishes takes
one block of its order (split from a larger one, as the buddy allocator
does, from the highest zone that stays above its min watermark, else none)
and the task gives it back when it makes its next request or exits.  No
coalescing of buddies.  A stalled request takes nothing: it never finishes.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from kmallocwd.watchdog.scenario import MAX_ORDER, Zone

PAGE_KB = 4


@dataclass
class Block:
    zone: int
    order: int


class ZoneState:
    def __init__(self, z: Zone) -> None:
        self.name = z.name
        self.present_kb = z.present_kb
        self.min_kb = z.min_kb
        self.free = list(z.free)

    def free_pages(self) -> int:
        return sum(n << o for o, n in enumerate(self.free))

    def take(self, order: int) -> bool:
        """Take a 2^order block, splitting the smallest larger block."""
        for o in range(order, MAX_ORDER):
            if self.free[o]:
                self.free[o] -= 1
                while o > order:  # the split-off halves go to the lower orders
                    o -= 1
                    self.free[o] += 1
                return True
        return False


class Memory:
    """Zones, lowest first (DMA, DMA32, Normal), as show_mem() lists them."""

    def __init__(self, zones: tuple[Zone, ...]) -> None:
        self.zones = [ZoneState(z) for z in zones]
        self.lock = threading.Lock()
        self.held_pages = 0

    def alloc(self, order: int) -> Block | None:
        """A block for a finished request, from the highest zone whose free
        pages stay at or above its min watermark; None if no zone can."""
        with self.lock:
            for i in range(len(self.zones) - 1, -1, -1):
                z = self.zones[i]
                if z.free_pages() - (1 << order) < z.min_kb // PAGE_KB:
                    continue
                if z.take(order):
                    self.held_pages += 1 << order
                    return Block(i, order)
        return None

    def free(self, block: Block | None) -> None:
        if block is None:
            return
        with self.lock:
            self.zones[block.zone].free[block.order] += 1
            self.held_pages -= 1 << block.order

    def show_mem(self) -> tuple[list[str], dict]:
        """show_mem(0)'s lines, in the shape of Linux 4.4's
        show_free_areas() (emulated fields only), and the same as a dict."""
        with self.lock:
            zones = [(z.name, z.present_kb, z.min_kb, list(z.free), z.free_pages())
                     for z in self.zones]
            held = self.held_pages
        total_free = sum(z[4] for z in zones)
        lines = ["Mem-Info:",
                 f" free:{total_free} held:{held} (emulated pages: in the free lists below / "
                 "held by the tasks' finished requests)"]
        for name, present, min_kb, _, free_pages in zones:
            # mm/page_alloc.c: low = min + min/4, high = min + min/2.
            lines.append(f"Node 0 {name} free:{free_pages * PAGE_KB}kB min:{min_kb}kB "
                         f"low:{min_kb + min_kb // 4}kB high:{min_kb + min_kb // 2}kB "
                         f"present:{present}kB")
        for name, _, _, free, free_pages in zones:
            parts = " ".join(f"{n}*{PAGE_KB << o}kB" for o, n in enumerate(free))
            lines.append(f"Node 0 {name}: {parts} = {free_pages * PAGE_KB}kB")
        ram = sum(z[1] for z in zones) // PAGE_KB
        lines.append(f"{ram} pages RAM")
        data = {
            "free_pages": total_free,
            "held_pages": held,
            "zones": [{"name": n, "present_kb": p, "min_kb": m, "free_kb": fp * PAGE_KB,
                       "free_blocks": f} for n, p, m, f, fp in zones],
            "ram_pages": ram,
        }
        return lines, data
