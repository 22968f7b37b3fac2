"""Scenario files: TOML (read with the standard library's ``tomllib``) that
says which tasks a run has and how they behave over time.

A scenario is written for its own watchdog timeout (``[scenario] timeout``,
seconds, the value ``kmallocwd=`` would have); a run with another
``--timeout`` scales every time in the file by the same ratio, so that a
request written as 1.5 timeouts long stays 1.5 timeouts long.

Every key is checked; a bad one is reported as one line naming the file,
the key, what was expected and what was found (``ScenarioError``).
"""

from __future__ import annotations

import math
import tomllib
import unicodedata
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Any

from kmallocwd.watchdog import gfpnames

TASK_COMM_LEN = 16  # include/linux/sched.h: comm is 15 bytes and a NUL
MAX_ORDER = 11  # orders 0..10, as on x86-64
MAX_TASKS = 256  # worker threads per run
PID_MAX = 4194304  # PID_MAX_LIMIT on 64-bit
MAX_FILE_BYTES = 1 << 20  # a scenario file is at most 1 MiB

# What a fate does to a task at its time.
STALL = "stall"  # requests stop finishing: the one in progress, or one made now
UNINTERRUPTIBLE = "uninterruptible"  # blocks on an unkillable lock, outside allocation
SIGKILL = "sigkill"  # fatal signal pending (the watchdog's "dying")
VICTIM = "victim"  # TIF_MEMDIE (the OOM killer chose it)
EXIT = "exit"  # do_exit() and gone: an allocation in progress fails
EXIT_BLOCKED = "exit-blocked"  # do_exit(), then blocked uninterruptibly in exit_mm()
ACTIONS: tuple[str, ...] = (STALL, UNINTERRUPTIBLE, SIGKILL, VICTIM, EXIT, EXIT_BLOCKED)

# Built-in scenarios: package data of kmallocwd (pyproject.toml ships them).
BUILTIN_DIR = "scenarios"


class ScenarioError(ValueError):
    """A bad scenario file: one line naming the file, the key and the problem."""


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
class Fate:
    at_s: Range  # drawn once per task
    action: str


@dataclass(frozen=True)
class Group:
    name: str  # the comm, at most 15 bytes (UTF-8)
    pids: tuple[int, ...]
    ppid: int
    gfp: int
    order: int
    request_s: Range
    interval_s: Range
    stall_probability: float
    nest_probability: float
    nest_gfp: int
    nest_order: int
    nest_request_s: Range
    fates: tuple[Fate, ...] = ()

    @property
    def count(self) -> int:
        return len(self.pids)

    def scaled(self, k: float) -> "Group":
        return replace(
            self,
            request_s=self.request_s.scaled(k),
            interval_s=self.interval_s.scaled(k),
            nest_request_s=self.nest_request_s.scaled(k),
            fates=tuple(Fate(f.at_s.scaled(k), f.action) for f in self.fates),
        )


@dataclass(frozen=True)
class Zone:
    """An emulated zone for show_mem(): free blocks per order 0..10."""

    name: str
    present_kb: int
    min_kb: int
    free: tuple[int, ...]


DEFAULT_ZONES: tuple[Zone, ...] = (
    Zone("DMA", 15992, 132, (1, 2, 1, 0, 2, 1, 1, 0, 1, 1, 3)),
    Zone("DMA32", 3129216, 27548, (220, 180, 97, 61, 40, 22, 13, 9, 6, 4, 700)),
    Zone("Normal", 1048576, 9208, (340, 210, 130, 77, 41, 19, 10, 4, 2, 1, 150)),
)


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    timeout_s: float  # the timeout the file's times are written for
    groups: tuple[Group, ...]
    zones: tuple[Zone, ...] = DEFAULT_ZONES
    source: str = ""  # the file it came from

    @property
    def tasks(self) -> int:
        return sum(g.count for g in self.groups)

    def scaled(self, k: float) -> "Scenario":
        """Every time in the scenario multiplied by ``k``."""
        return replace(self, groups=tuple(g.scaled(k) for g in self.groups))


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


_SCENARIO_KEYS = ("name", "description", "timeout")
_TOP_KEYS = ("scenario", "memory", "group")
_GROUP_KEYS = ("name", "count", "pid", "ppid", "gfp", "order", "request_s", "interval_s",
               "stall_probability", "nest_probability", "nest_gfp", "nest_order",
               "nest_request_s", "fate")
_FATE_KEYS = ("at_s", "do")
_ZONE_KEYS = ("name", "present_kb", "min_kb", "free")


def comm(name: str) -> str:
    """The kernel keeps at most TASK_COMM_LEN - 1 bytes of a name (UTF-8
    here); a character the cut would split is dropped whole."""
    return name.encode("utf-8")[: TASK_COMM_LEN - 1].decode("utf-8", "ignore")


def parse(data: dict, file: str, default_name: str) -> Scenario:
    """Check a decoded TOML document and build the Scenario."""
    c = _Check(file)
    c.keys("", data, _TOP_KEYS)
    head = c.table("scenario", data.get("scenario", {}))
    c.keys("scenario", head, _SCENARIO_KEYS)
    name = c.name("scenario.name", head.get("name", default_name))
    description = c.string("scenario.description", head.get("description", ""), lo=0)
    timeout = c.number("scenario.timeout", head.get("timeout", 10), 0, 86400, lo_open=True)

    zones = DEFAULT_ZONES
    if "memory" in data:
        mem = c.table("memory", data["memory"])
        c.keys("memory", mem, ("zone",))
        raw = mem.get("zone", [])
        if not isinstance(raw, list) or not raw:
            raise c.fail("memory.zone", "an array of tables ([[memory.zone]])", raw)
        zones = tuple(_zone(c, f"memory.zone[{i}]", z) for i, z in enumerate(raw))

    raw_groups = data.get("group")
    if not isinstance(raw_groups, list) or not raw_groups:
        raise c.fail("group", "an array of tables ([[group]]), at least one", raw_groups)
    groups: list[Group] = []
    next_pid = 1000
    seen: dict[int, str] = {}
    for i, g in enumerate(raw_groups):
        grp = _group(c, f"group[{i}]", g, next_pid)
        for p in grp.pids:
            if p in seen:
                raise c.fail(f"group[{i}].pid", f"pids not used by another task ({p} is "
                             f"{seen[p]}'s)", g.get("pid", p))
            seen[p] = grp.name
        next_pid = max(grp.pids) + 1
        groups.append(grp)
    total = sum(g.count for g in groups)
    if total > MAX_TASKS:
        raise c.fail("group", f"at most {MAX_TASKS} tasks in all", f"{total} tasks")
    return Scenario(name, description, timeout, tuple(groups), zones, file)


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


def _group(c: _Check, key: str, g: Any, next_pid: int) -> Group:
    g = c.table(key, g)
    c.keys(key, g, _GROUP_KEYS)
    if "name" not in g:
        raise c.fail(f"{key}.name", "the task's name (its comm)", "nothing")
    name = comm(c.name(f"{key}.name", g["name"]))
    raw_pid = g.get("pid", next_pid)
    if isinstance(raw_pid, list):
        if "count" in g and g["count"] != len(raw_pid):
            raise c.fail(f"{key}.count", f"{len(raw_pid)}, the length of pid", g["count"])
        if not raw_pid:
            raise c.fail(f"{key}.pid", "a pid or a non-empty list of pids", raw_pid)
        pids = tuple(c.integer(f"{key}.pid[{j}]", p, 1, PID_MAX) for j, p in enumerate(raw_pid))
        if len(set(pids)) != len(pids):
            raise c.fail(f"{key}.pid", "distinct pids", raw_pid)
    else:
        first = c.integer(f"{key}.pid", raw_pid, 1, PID_MAX)
        count = c.integer(f"{key}.count", g.get("count", 1), 1, MAX_TASKS)
        if first + count - 1 > PID_MAX:
            raise c.fail(f"{key}.pid", f"a first pid of at most {PID_MAX - count + 1}", first)
        pids = tuple(range(first, first + count))
    fates_raw = g.get("fate", [])
    if not isinstance(fates_raw, list):
        raise c.fail(f"{key}.fate", "an array of tables ([[group.fate]])", fates_raw)
    fates = []
    for j, f in enumerate(fates_raw):
        fk = f"{key}.fate[{j}]"
        f = c.table(fk, f)
        c.keys(fk, f, _FATE_KEYS)
        if "at_s" not in f or "do" not in f:
            missing = "at_s" if "at_s" not in f else "do"
            raise c.fail(f"{fk}.{missing}", "a value (every fate has at_s and do)", "nothing")
        at = c.seconds(f"{fk}.at_s", f["at_s"])
        action = f["do"]
        if action not in ACTIONS:
            raise c.fail(f"{fk}.do", f"one of {', '.join(ACTIONS)}", action)
        fates.append(Fate(at, action))
    request_s = c.seconds(f"{key}.request_s", g.get("request_s", 0.001))
    interval_s = c.seconds(f"{key}.interval_s", g.get("interval_s", 0.1))
    if request_s.hi == 0 and interval_s.hi == 0:
        # The task would allocate in a loop that never sleeps, never yields
        # and never sees the halt: refused rather than emulated.
        raise c.fail(f"{key}.request_s", "more than 0 when interval_s is 0 (a task must "
                     "wait somewhere)", g.get("request_s", 0.001))
    return Group(
        name=name,
        pids=pids,
        ppid=c.integer(f"{key}.ppid", g.get("ppid", 1), 0, PID_MAX),
        gfp=c.gfp(f"{key}.gfp", g.get("gfp", "GFP_KERNEL")),
        order=c.integer(f"{key}.order", g.get("order", 0), 0, MAX_ORDER - 1),
        request_s=request_s,
        interval_s=interval_s,
        stall_probability=c.number(f"{key}.stall_probability", g.get("stall_probability", 0), 0, 1),
        nest_probability=c.number(f"{key}.nest_probability", g.get("nest_probability", 0), 0, 1),
        nest_gfp=c.gfp(f"{key}.nest_gfp", g.get("nest_gfp", "GFP_NOIO")),
        nest_order=c.integer(f"{key}.nest_order", g.get("nest_order", 0), 0, MAX_ORDER - 1),
        nest_request_s=c.seconds(f"{key}.nest_request_s", g.get("nest_request_s", 0.0005)),
        fates=tuple(fates),
    )


# ---- loading ----


def loads(text: str, file: str = "<string>", default_name: str = "scenario") -> Scenario:
    try:
        data = tomllib.loads(text)
        return parse(data, file, default_name)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"scenario {file}: not valid TOML: {exc}") from None
    except RecursionError:
        raise ScenarioError(f"scenario {file}: not a scenario: nested too deeply") from None


def load_file(path: str | Path, option: str = "--scenario") -> Scenario:
    """A scenario file, read with a bound (MAX_FILE_BYTES, regular files
    only): UsageError (from kmallocwd.inputs) if it cannot be read."""
    from kmallocwd.inputs import read_text

    p = Path(path)
    text = read_text(str(path), option, MAX_FILE_BYTES)
    return loads(text, str(p), p.stem)


def builtin_names() -> tuple[str, ...]:
    files = resources.files("kmallocwd").joinpath(BUILTIN_DIR).iterdir()
    return tuple(sorted(f.name[:-5] for f in files if f.name.endswith(".toml")))


def builtin_text(name: str) -> str:
    path = resources.files("kmallocwd").joinpath(BUILTIN_DIR, f"{name}.toml")
    return path.read_text(encoding="utf-8")


def load_builtin(name: str) -> Scenario:
    return loads(builtin_text(name), f"{name} (built-in)", name)


def resolve(spec: str) -> Scenario:
    """A built-in scenario's name, or the path of a scenario file."""
    if spec in builtin_names():
        return load_builtin(spec)
    p = Path(spec)
    if p.exists() or p.suffix == ".toml" or "/" in spec:
        return load_file(spec)
    raise ScenarioError(f"scenario {spec}: no built-in scenario or file of that name "
                        f"(built-ins: {', '.join(builtin_names())})")
