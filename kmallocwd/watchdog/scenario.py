"""What scenario files (kmallocwd/watchdog/workload.py reads them) share:
the checker of their keys, value ranges, zones, task names, and the error a
bad value raises.

Every key is checked; a bad one is reported as one line naming the file,
the key, what was expected and what was found (``ScenarioError``).
"""

from __future__ import annotations

import math
import unicodedata
from dataclasses import dataclass
from typing import Any

from kmallocwd.errors import UsageError
from kmallocwd.watchdog import gfpnames

TASK_COMM_LEN = 16  # include/linux/sched.h: comm is 15 bytes and a NUL
MAX_ORDER = 11  # orders 0..10, as on x86-64
MAX_TASKS = 256  # worker threads per run
PID_MAX = 4194304  # PID_MAX_LIMIT on 64-bit
# Built-in scenarios: package data of kmallocwd (pyproject.toml ships them).
BUILTIN_DIR = "scenarios"


class ScenarioError(UsageError):
    """A bad scenario file: one line naming the file, the key and the problem
    (a usage error: exit 2)."""


@dataclass(frozen=True)
class Range:
    """Seconds: a fixed value (lo == hi) or a uniform draw from [lo, hi]."""

    lo: float
    hi: float

    def scaled(self, k: float) -> "Range":
        return Range(self.lo * k, self.hi * k)

    def draw(self, rng) -> float:
        return self.lo if self.lo == self.hi else rng.uniform(self.lo, self.hi)

    def __str__(self) -> str:
        return f"{self.lo:g}" if self.lo == self.hi else f"[{self.lo:g}, {self.hi:g}]"


@dataclass(frozen=True)
class Zone:
    """An emulated zone for show_mem(): free blocks per order 0..10."""

    name: str
    present_kb: int
    min_kb: int
    free: tuple[int, ...]


# ---- checking ----


@dataclass
class _Check:
    """Type and range checks that name the file and the key."""

    file: str

    def fail(self, key: str, expected: str, got: Any) -> ScenarioError:
        return ScenarioError(f"scenario {self.file}: key '{key}': expected {expected}, "
                             f"got {_show(got)}")

    def table(self, key: str, v: Any) -> dict:
        if not isinstance(v, dict):
            raise self.fail(key, "a table", v)
        return v

    def keys(self, key: str, tbl: dict, allowed: tuple[str, ...]) -> None:
        for k in tbl:
            if k not in allowed:
                where = f"{key}.{k}" if key else k
                raise self.fail(where, f"no such key (accepted here: {', '.join(allowed)})",
                                tbl[k])

    def string(self, key: str, v: Any, lo: int = 1) -> str:
        if not isinstance(v, str) or len(v) < lo:
            raise self.fail(key, "a non-empty string" if lo else "a string", v)
        return v

    def name(self, key: str, v: Any) -> str:
        """A name that is printed in the log: no control characters (a
        newline would forge log lines), nothing that splits a line."""
        v = self.string(key, v)
        if any(unicodedata.category(ch) in _CONTROL for ch in v):
            raise self.fail(key, "a name without control characters", v)
        return v

    def integer(self, key: str, v: Any, lo: int, hi: int) -> int:
        if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
            raise self.fail(key, f"an integer {lo} to {hi}", v)
        return v

    def number(self, key: str, v: Any, lo: float, hi: float, lo_open: bool = False) -> float:
        ok = (isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
              and (v > lo if lo_open else v >= lo) and v <= hi)
        if not ok:
            span = f"more than {lo:g} and at most {hi:g}" if lo_open else f"{lo:g} to {hi:g}"
            raise self.fail(key, f"a number {span}", v)
        return float(v)

    def seconds(self, key: str, v: Any) -> Range:
        expected = "seconds: a number 0 to 86400, or [min, max] with 0 <= min <= max <= 86400"
        if isinstance(v, list):
            if len(v) != 2:
                raise self.fail(key, expected, v)
            lo = self.number(key, v[0], 0, 86400) if _isnum(v[0]) else None
            hi = self.number(key, v[1], 0, 86400) if _isnum(v[1]) else None
            if lo is None or hi is None or lo > hi:
                raise self.fail(key, expected, v)
            return Range(lo, hi)
        if not _isnum(v) or not 0 <= v <= 86400:
            raise self.fail(key, expected, v)
        return Range(float(v), float(v))

    def gfp(self, key: str, v: Any) -> int:
        expected = (f"a gfp mask: an integer 0 to {gfpnames.GFP_MAX:#x}, or flag names "
                    "joined by '|' (e.g. \"GFP_KERNEL | __GFP_COMP\")")
        if isinstance(v, str):
            try:
                mask = gfpnames.parse(v)
            except ValueError as exc:
                raise self.fail(key, f"{expected}; {exc}", v) from None
        elif isinstance(v, int) and not isinstance(v, bool):
            mask = v
        else:
            raise self.fail(key, expected, v)
        if not 0 <= mask <= gfpnames.GFP_MAX:
            raise self.fail(key, expected, v)
        return mask


def _isnum(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


# Unicode categories refused in names: control (Cc: \n, \0, \x1b...), format
# (Cf: bidi overrides), line and paragraph separators.
_CONTROL = ("Cc", "Cf", "Zl", "Zp")


def _show(v: Any, limit: int = 80) -> str:
    """A found value, as the error line shows it (TOML spelling for booleans),
    cut to ``limit`` characters."""
    if isinstance(v, dict):
        return "a table"
    if isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
        return "an array of tables"
    if isinstance(v, bool):
        return "true" if v else "false"
    try:
        text = repr(v)
    except RecursionError:
        text = "a value nested too deeply"
    return text if len(text) <= limit else text[: limit - 3] + "..."


_ZONE_KEYS = ("name", "present_kb", "min_kb", "free")


def comm(name: str) -> str:
    """The kernel keeps at most TASK_COMM_LEN - 1 bytes of a name (UTF-8
    here); a character the cut would split is dropped whole."""
    return name.encode("utf-8")[: TASK_COMM_LEN - 1].decode("utf-8", "ignore")


def _zone(c: _Check, key: str, z: Any) -> Zone:
    z = c.table(key, z)
    c.keys(key, z, _ZONE_KEYS)
    name = c.name(f"{key}.name", z.get("name"))
    present = c.integer(f"{key}.present_kb", z.get("present_kb", 0), 0, 1 << 40)
    min_kb = c.integer(f"{key}.min_kb", z.get("min_kb", 0), 0, 1 << 40)
    if min_kb > present:
        raise c.fail(f"{key}.min_kb", f"at most present_kb ({present})", min_kb)
    free = z.get("free", [0] * MAX_ORDER)
    if not isinstance(free, list) or len(free) != MAX_ORDER:
        raise c.fail(f"{key}.free", f"{MAX_ORDER} block counts, one per order 0..10", free)
    blocks = tuple(c.integer(f"{key}.free[{o}]", n, 0, 1 << 32) for o, n in enumerate(free))
    return Zone(name, present, min_kb, blocks)
