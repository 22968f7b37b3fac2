"""Emulated jiffies: the C core's clock, as the kernel keeps it."""

from __future__ import annotations

from kmallocwd._core import ffi, lib


def initial_jiffies(hz: int) -> int:
    """The kernel's INITIAL_JIFFIES, ((unsigned long)(unsigned int)(-300*HZ)):
    the 32-bit counter wraps five minutes after boot."""
    return (-300 * hz) & 0xFFFFFFFF


def make_clock(hz: int = 1000, initial: int | None = None, ffi=ffi):
    """A ``struct kmw_clock *`` whose jiffies start at ``initial`` now
    (``ffi``: the protocol module's that will read it)."""
    c = ffi.new("struct kmw_clock *")
    c.hz = hz
    c.initial = initial_jiffies(hz) if initial is None else initial
    c.t0_ns = lib.kmw_now_ns()
    return c


def jiffies(clock) -> int:
    return int(lib.kmw_jiffies(clock))
