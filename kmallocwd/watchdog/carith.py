"""The kernel's integer arithmetic on jiffies, for Python ints.

jiffies is an ``unsigned long`` (64 bits here) that wraps; the patch mixes it
with ``long`` (``t``, ``min_t(long, ...)``).  These helpers make the Python
code compute exactly what the C code computes, wrap included.
"""

from __future__ import annotations

ULONG_BITS = 64
ULONG_MAX = (1 << ULONG_BITS) - 1
LONG_MAX = (1 << (ULONG_BITS - 1)) - 1


def ulong(x: int) -> int:
    """``(unsigned long)x``."""
    return x & ULONG_MAX


def to_long(x: int) -> int:
    """``(long)x`` for an unsigned long ``x`` (two's complement)."""
    x &= ULONG_MAX
    return x - (1 << ULONG_BITS) if x > LONG_MAX else x


def time_after_eq(a: int, b: int) -> bool:
    """include/linux/jiffies.h: ``((long)((a) - (b)) >= 0)``."""
    return to_long(a - b) >= 0


def time_after(a: int, b: int) -> bool:
    """include/linux/jiffies.h: ``((long)((b) - (a)) < 0)``."""
    return to_long(b - a) < 0


def first_loop_t(timeout: int, jiffies: int, starts) -> int:
    """The patch's first while(1) loop, one pass, over the ``start`` of the
    valid slots: ``t = min_t(long, t, start + delta)`` with
    ``delta = t - jiffies``; stops at the first ``t <= 0`` (goto stalling)."""
    t = to_long(timeout)
    delta = ulong(timeout - jiffies)
    for start in starts:
        t = min(t, to_long(start + delta))
        if t <= 0:
            break
    return t
