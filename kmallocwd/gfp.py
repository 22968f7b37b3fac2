"""The kernel's gfp flags as of the patch (Linux 4.4, include/linux/gfp.h),
and the realistic allocation requests emulated tasks make."""

from __future__ import annotations

from dataclasses import dataclass

___GFP_DMA = 0x01
___GFP_HIGHMEM = 0x02
___GFP_DMA32 = 0x04
___GFP_MOVABLE = 0x08
___GFP_RECLAIMABLE = 0x10
___GFP_HIGH = 0x20
___GFP_IO = 0x40
___GFP_FS = 0x80
___GFP_COLD = 0x100
___GFP_NOWARN = 0x200
___GFP_REPEAT = 0x400
___GFP_NOFAIL = 0x800
___GFP_NORETRY = 0x1000
___GFP_MEMALLOC = 0x2000
___GFP_COMP = 0x4000
___GFP_ZERO = 0x8000
___GFP_NOMEMALLOC = 0x10000
___GFP_HARDWALL = 0x20000
___GFP_THISNODE = 0x40000
___GFP_ATOMIC = 0x80000
___GFP_NOACCOUNT = 0x100000
___GFP_NOTRACK = 0x200000
___GFP_DIRECT_RECLAIM = 0x400000
___GFP_OTHER_NODE = 0x800000
___GFP_WRITE = 0x1000000
___GFP_KSWAPD_RECLAIM = 0x2000000

__GFP_RECLAIM = ___GFP_DIRECT_RECLAIM | ___GFP_KSWAPD_RECLAIM

GFP_ATOMIC = ___GFP_HIGH | ___GFP_ATOMIC | ___GFP_KSWAPD_RECLAIM
GFP_NOWAIT = ___GFP_KSWAPD_RECLAIM
GFP_NOIO = __GFP_RECLAIM
GFP_NOFS = __GFP_RECLAIM | ___GFP_IO
GFP_KERNEL = __GFP_RECLAIM | ___GFP_IO | ___GFP_FS
GFP_USER = GFP_KERNEL | ___GFP_HARDWALL
GFP_HIGHUSER = GFP_USER | ___GFP_HIGHMEM
GFP_HIGHUSER_MOVABLE = GFP_HIGHUSER | ___GFP_MOVABLE
GFP_DMA = ___GFP_DMA
GFP_DMA32 = ___GFP_DMA32
GFP_TRANSHUGE = (GFP_HIGHUSER_MOVABLE | ___GFP_COMP | ___GFP_NOMEMALLOC | ___GFP_NORETRY
                 | ___GFP_NOWARN) & ~___GFP_KSWAPD_RECLAIM

NAMED: dict[str, int] = {
    "GFP_ATOMIC": GFP_ATOMIC,
    "GFP_NOWAIT": GFP_NOWAIT,
    "GFP_NOIO": GFP_NOIO,
    "GFP_NOFS": GFP_NOFS,
    "GFP_KERNEL": GFP_KERNEL,
    "GFP_USER": GFP_USER,
    "GFP_HIGHUSER": GFP_HIGHUSER,
    "GFP_HIGHUSER_MOVABLE": GFP_HIGHUSER_MOVABLE,
    "GFP_DMA": GFP_DMA,
    "GFP_DMA32": GFP_DMA32,
    "GFP_TRANSHUGE": GFP_TRANSHUGE,
}


def tracked(gfp: int) -> bool:
    """True if start_memalloc_timer() records a request with this mask."""
    return bool(gfp & __GFP_RECLAIM)


@dataclass(frozen=True)
class Request:
    """One allocation request: a gfp mask and an order."""

    gfp: int
    order: int


# The stress writers cycle through this mix: mostly order-0 page-cache and
# anonymous-memory faults, some slab refills of order 1 to 3, a THP attempt,
# and one request with no reclaim bit, which start_memalloc_timer() skips.
STRESS_MIX: tuple[Request, ...] = (
    Request(GFP_HIGHUSER_MOVABLE | ___GFP_ZERO, 0),  # 0x24280ca, the patch's
    Request(GFP_KERNEL, 0),
    Request(GFP_HIGHUSER_MOVABLE, 0),
    Request((GFP_HIGHUSER_MOVABLE | ___GFP_COLD) & ~___GFP_FS, 0),  # 0x242014a
    Request(GFP_KERNEL | ___GFP_COMP | ___GFP_NOWARN, 1),
    Request(GFP_NOFS, 0),
    Request(GFP_KERNEL | ___GFP_COMP | ___GFP_NOWARN | ___GFP_NORETRY, 3),
    Request(GFP_NOIO, 0),  # 0x2400000, the patch's kworker
    Request(GFP_KERNEL | ___GFP_ZERO, 0),
    Request(GFP_USER, 0),
    Request(GFP_KERNEL | ___GFP_COMP, 2),
    Request(___GFP_HIGH | ___GFP_ATOMIC | ___GFP_NOWARN, 0),  # no reclaim bit
    Request(GFP_ATOMIC, 0),  # KSWAPD bit only: tracked, as the patch's test is
    Request(GFP_HIGHUSER_MOVABLE | ___GFP_COMP | ___GFP_NORETRY, 9),  # THP
    Request(GFP_NOFS | ___GFP_NOWARN, 1),
    Request(GFP_NOWAIT, 0),  # KSWAPD bit only
)


def _alternating(mix: tuple[Request, ...]) -> tuple[Request, ...]:
    """The stress writers' request sequence: STRESS_MIX arranged so that any
    two consecutive write sections (requests with a reclaim bit; the others
    write none) differ in gfp *and* order, cyclically.  Order-0 requests
    alternate with higher-order ones (these repeat, as they are fewer); the
    request with no reclaim bit sits between two that differ."""
    zero = [r for r in mix if tracked(r.gfp) and r.order == 0]
    high = [r for r in mix if tracked(r.gfp) and r.order != 0]
    skipped = [r for r in mix if not tracked(r.gfp)]
    seq: list[Request] = []
    for i, z in enumerate(zero):
        seq += [z, high[i % len(high)]]
    return tuple(seq[:3] + skipped + seq[3:])


# What `kmallocwd stress` writes: section k of slot j makes request
# STRESS_SEQ[(k + j) % len(STRESS_SEQ)], so that consecutive sections of a
# slot, and the same section of neighbouring slots, write different values.
STRESS_SEQ: tuple[Request, ...] = _alternating(STRESS_MIX)
