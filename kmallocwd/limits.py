"""The accepted range of every value a stress run takes, one validator per
value, shared by the CLI's option types (kmallocwd/cli/argtypes.py), the Python
API (kmallocwd/api.py), campaign plans and the pytest plugin, so that they
refuse the same values with the same message and cannot drift apart.

A leaf module: it imports nothing of kmallocwd.

    limits.THREADS.check(4)            # 4, or ValueError naming the range
    limits.THREADS.parse("0x4")        # the CLI's text: 4
    limits.check("threads", -1)        # ValueError: threads=-1 is out of range (accepted: 1 to 1024)
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

_PREFIXED = re.compile(r"[+-]?0[xXoObB]")


def parse_int(text: str) -> int:
    """A whole number: decimal (leading zeros allowed: ``010`` is 10), or
    with a 0x / 0o / 0b prefix; ``_`` between digits as in Python.
    ValueError otherwise."""
    t = text.strip()
    return int(t, 0) if _PREFIXED.match(t) else int(t, 10)


def shown(value: object, limit: int = 60) -> str:
    """A value as given, quoted if text, cut if long (one line)."""
    s = repr(value)
    if len(s) <= limit:
        return s
    return s[: limit - 4] + ("...'" if isinstance(value, str) else "...")


@dataclass(frozen=True)
class IntLimit:
    """A whole number from ``lo`` to ``hi`` (no upper bound if None)."""

    lo: int
    hi: int | None = None

    @property
    def span(self) -> str:
        return f"{self.lo} to {self.hi}" if self.hi is not None else f"{self.lo} or more"

    def check(self, value: object, name: str | None = None) -> int:
        """``value`` if it is a whole number in range; ValueError otherwise,
        naming ``name=value`` (or the value alone) and the accepted range."""
        what = f"{name}={shown(value)}" if name else shown(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{what} is not a whole number (accepted: {self.span})")
        if value < self.lo or (self.hi is not None and value > self.hi):
            raise ValueError(f"{what} is out of range (accepted: {self.span})")
        return value

    def parse(self, text: str) -> int:
        """The CLI's text (decimal, or 0x / 0o / 0b) as a checked number."""
        try:
            value = parse_int(text)
        except ValueError:
            raise ValueError(f"{shown(text)} is not a whole number (accepted: {self.span}; "
                             "decimal, or 0x hex)") from None
        if value < self.lo or (self.hi is not None and value > self.hi):
            raise ValueError(f"{shown(text)} is out of range (accepted: {self.span})")
        return value


@dataclass(frozen=True)
class FloatLimit:
    """A number from ``lo`` (excluded if ``lo_open``) to ``hi``; never NaN."""

    lo: float
    hi: float | None = None
    lo_open: bool = False

    @property
    def span(self) -> str:
        lo = f"more than {self.lo:g}" if self.lo_open else f"{self.lo:g}"
        if self.hi is not None:
            return f"{lo} to {self.hi:g}"
        return lo if self.lo_open else f"{lo} or more"

    def _ok(self, v: float) -> bool:
        return not (math.isnan(v) or v < self.lo or (self.lo_open and v == self.lo)
                    or (self.hi is not None and v > self.hi))

    def check(self, value: object, name: str | None = None) -> float:
        what = f"{name}={shown(value)}" if name else shown(value)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"{what} is not a number (accepted: {self.span})")
        try:
            v = float(value)
        except OverflowError:  # an int too large for a float
            raise ValueError(f"{what} is out of range (accepted: {self.span})") from None
        if not self._ok(v):
            raise ValueError(f"{what} is out of range (accepted: {self.span})")
        return v

    def parse(self, text: str) -> float:
        try:
            v = float(text)
        except ValueError:
            raise ValueError(f"{shown(text)} is not a number (accepted: {self.span})") from None
        if not self._ok(v):
            raise ValueError(f"{shown(text)} is out of range (accepted: {self.span})")
        return v


@dataclass(frozen=True)
class Choice:
    """One of ``names``; ``what`` names the kind of value in the message."""

    names: tuple[str, ...]
    what: str

    @property
    def span(self) -> str:
        return ", ".join(self.names)

    def check(self, value: object, name: str | None = None) -> str:
        if not isinstance(value, str) or value not in self.names:
            what = f"{name}={shown(value)}" if name else shown(value)
            raise ValueError(f"unknown {self.what} {what} (accepted: {self.span})")
        return value

    def parse(self, text: str) -> str:
        return self.check(text)


MAX_THREADS = 1024
MAX_SLOTS = 1 << 28            # 16 GiB of 64-byte slots; memory may allow fewer
MAX_ITERATIONS = 10**12        # pairs per writer: about 1 h at 3 ns a pair

THREADS = IntLimit(1, MAX_THREADS)
SLOTS = IntLimit(1, MAX_SLOTS)
DURATION = FloatLimit(0, 86400, lo_open=True)          # seconds
ITERATIONS = IntLimit(1, MAX_ITERATIONS)
BATCH = IntLimit(1, 1 << 30)
HOLD_NS = IntLimit(0, 10**9)
ALLOC_NS = IntLimit(0, 10**9)
PREEMPT = FloatLimit(0, 1)
SEED = IntLimit(0, 2**63 - 1)
MIN_OVERLAPS = IntLimit(0, 10**15)
REPEAT = IntLimit(1, 100_000)
EXPECT = Choice(("torn",), "expectation")
# kmallocwd check / ablate: the model checker's write sections and reader
# retries; ablate's stress seconds per variant
SECTIONS = IntLimit(1, 4)
MODEL_RETRIES = IntLimit(0, 2)
ABLATE_DURATION = FloatLimit(0, 3600)
# the pytest plugin's --kmallocwd-duration-scale (the scaled duration is then
# checked as a DURATION)
DURATION_SCALE = FloatLimit(0, 1000, lo_open=True)
# a campaign cell's timeout: a cell is a Python process, which takes about a
# second to start
CELL_TIMEOUT = FloatLimit(1, 7 * 86400)

# by the name of the Python API's keyword argument
BY_NAME: dict[str, IntLimit | FloatLimit | Choice] = {
    "threads": THREADS, "slots": SLOTS, "duration": DURATION, "iterations": ITERATIONS,
    "batch": BATCH, "hold_ns": HOLD_NS, "alloc_ns": ALLOC_NS, "preempt": PREEMPT,
    "seed": SEED, "min_overlaps": MIN_OVERLAPS, "repeat": REPEAT, "expect": EXPECT,
}


def check(name: str, value: object):
    """``value`` checked by the validator of the keyword ``name`` (ValueError)."""
    return BY_NAME[name].check(value, name)
