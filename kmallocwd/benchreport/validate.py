"""Checking one benchmark's ``extra_info`` and turning it into Figures.

Malformed values are refused: a BenchReportError of one line naming the
benchmark, the key (its path under extra_info), the value and what was
expected.  A figure this report does not know (an unknown kind, role or
protocol) is dropped, never silently: it comes back as a Drop, and load()
turns the drops into warning lines that name them.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from typing import Any, NoReturn

from kmallocwd import protocols

from .model import (
    BANDWIDTH, CHECKED, DUTY, EMULATOR, READ, REFERENCE, REFERENCE_PAIR, ROLES, SCAN,
    SCHEMAS, SIDE, SLOT_STATES, UNPROTOCOLLED, BenchReportError, Figure,
)

MAX_SLOTS = 2**32          # slot indices are uint32_t in the C loops
MAX_THREADS = 1 << 16
MAX_ROUNDS = 1 << 20
_WORD = re.compile(r"[a-z0-9][a-z0-9%.+-]{0,31}\Z")


@dataclass(frozen=True)
class Drop:
    """A figure left out: what was unknown (kind, role, protocol), its value,
    and the benchmark it came from."""

    what: str
    value: str
    benchmark: str


def show(value: Any, width: int = 40) -> str:
    """A value for a one-line message: repr, cut to width."""
    try:
        text = repr(value)
    except (RecursionError, ValueError):
        text = f"<{type(value).__name__}>"
    return text if len(text) <= width else text[:width - 3] + "..."


class Checker:
    """Checks the values of one benchmark; fail() raises the one-line error."""

    def __init__(self, path: str, name: str) -> None:
        self.path, self.name = path, name

    def fail(self, key: str, value: Any, expected: str) -> NoReturn:
        raise BenchReportError(f"{self.path}: benchmark {self.name}: '{key}' is {show(value)}; "
                               f"expected {expected}")

    def missing(self, key: str, expected: str) -> NoReturn:
        raise BenchReportError(f"{self.path}: benchmark {self.name}: no '{key}' in it; "
                               f"expected {expected}")

    def number(self, d: dict, key: str, where: str, *, lo: float = 0.0,
               hi: float | None = None, required: bool = True) -> float | None:
        full = f"{where}.{key}"
        if key not in d or d[key] is None:
            if required:
                self.missing(full, f"a number {_span(lo, hi)}")
            return None
        v = d[key]
        if not is_number(v) or v < lo or (hi is not None and v > hi):
            self.fail(full, v, f"a number {_span(lo, hi)}")
        return float(v)

    def integer(self, d: dict, key: str, where: str, *, lo: int = 0, hi: int | None = None,
                required: bool = True) -> int | None:
        full = f"{where}.{key}"
        if key not in d or d[key] is None:
            if required:
                self.missing(full, f"a whole number {_span(lo, hi)}")
            return None
        v = d[key]
        if type(v) is not int or v < lo or (hi is not None and v > hi):
            self.fail(full, v, f"a whole number {_span(lo, hi)}")
        return v

    def word(self, d: dict, key: str, where: str, *, required: bool = True,
             default: str | None = None) -> str | None:
        full = f"{where}.{key}"
        if key not in d or d[key] is None:
            if required:
                self.missing(full, "a name")
            return default
        v = d[key]
        if not isinstance(v, str) or not _WORD.match(v):
            self.fail(full, v, "a name (lower-case letters, digits, '-', at most 32)")
        return v

    def numbers(self, d: dict, key: str, where: str) -> dict:
        """An optional object of numbers (>= 0) by name."""
        full = f"{where}.{key}"
        v = d.get(key)
        if v is None:
            return {}
        if not isinstance(v, dict):
            self.fail(full, v, "an object of numbers")
        for k, x in v.items():
            if not is_number(x) or x < 0:
                self.fail(f"{full}.{keyname(k)}", x, "a number >= 0")
        return dict(v)

    def background(self, d: dict, where: str) -> dict:
        """An optional object of numbers, nulls, or objects of numbers."""
        full = f"{where}.background"
        v = d.get("background")
        if v is None:
            return {}
        if not isinstance(v, dict):
            self.fail(full, v, "an object (what the other side of the benchmark did)")
        out = {}
        for k, x in v.items():
            if isinstance(x, dict):
                out[k] = self.numbers(v, k, full)
            elif x is None or (is_number(x) and x >= 0):
                out[k] = x
            else:
                self.fail(f"{full}.{keyname(k)}", x,
                          "a number >= 0, null or an object of numbers")
        return out

    def rounds_list(self, d: dict, key: str, where: str) -> tuple[float, ...]:
        full = f"{where}.{key}"
        v = d.get(key)
        if v is None:
            return ()
        if not isinstance(v, list) or len(v) > MAX_ROUNDS:
            self.fail(full, v, f"a list of at most {MAX_ROUNDS:,} numbers")
        for i, x in enumerate(v):
            if not is_number(x) or x < 0:
                self.fail(f"{full}[{i}]", x, "a number >= 0")
        return tuple(float(x) for x in v)


_PLAIN_KEY = re.compile(r"[A-Za-z0-9_.%+-]{1,40}\Z")


def keyname(k: Any) -> str:
    """A JSON key for a message's key path: as is when plain, else its repr
    (cut), so that a key with a newline cannot split the line."""
    return k if isinstance(k, str) and _PLAIN_KEY.match(k) else show(k, 30)


def is_number(x: Any) -> bool:
    """A finite JSON number (not a bool); huge integers included."""
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return False
    try:
        return math.isfinite(x)
    except OverflowError:  # an int too large for a float
        return False


def _span(lo: float, hi: float | None) -> str:
    lo_t = f"{lo:g}" if isinstance(lo, float) else f"{lo:,}"
    if hi is None:
        return f">= {lo_t}"
    hi_t = f"{hi:g}" if isinstance(hi, float) else f"{hi:,}"
    return f"from {lo_t} to {hi_t}"


def figures_of(path: str, name: str, info: dict) -> tuple[list[Figure], list[Drop]]:
    """The figures of one benchmark whose extra_info has a "kmallocwd" key."""
    c = Checker(path, name)
    w = "extra_info"
    schema = info.get("kmallocwd")
    if type(schema) is not int or schema not in SCHEMAS:
        raise BenchReportError(f"{path}: benchmark {name} has extra_info schema {show(schema)}; "
                               f"this report reads schema {' or '.join(map(str, SCHEMAS))}")
    kind = c.word(info, "kind", w)
    role = info.get("role")
    if not isinstance(role, str):
        c.fail(f"{w}.role", role, "a role name")
    if kind not in ROLES:
        return [], [Drop("kind", kind, name)]
    if role not in ROLES[kind]:
        return [], [Drop(f"{kind} role", role, name)]
    if kind == SIDE:
        return _side_by_side(c, info, role, schema)
    proto = None
    if kind not in UNPROTOCOLLED:
        proto = info.get("protocol")
        if not isinstance(proto, str):
            c.fail(f"{w}.protocol", proto, "a protocol name")
        if proto not in protocols.NAMES:
            return [], [Drop("protocol", proto, name)]
    return [_figure(c, name, info, kind, role, proto, schema, w)], []


def _side_by_side(c: Checker, info: dict, role: str,
                  schema: int) -> tuple[list[Figure], list[Drop]]:
    w = "extra_info"
    # the keys every protocol's figure shares, checked where they are
    c.integer(info, "slots", w, lo=1, hi=MAX_SLOTS)
    c.integer(info, "threads", w, lo=1, hi=MAX_THREADS, required=False)
    c.word(info, "mode", w, required=False)
    protos = info.get("protocols")
    if not isinstance(protos, dict) or not protos:
        c.fail(f"{w}.protocols", protos, "an object of figures by protocol")
    figs, drops = [], []
    ref = info.get("reference")
    ref_rounds: tuple[float, ...] = ()
    if ref is not None:
        if not isinstance(ref, dict):
            c.fail(f"{w}.reference", ref, "an object (the reference loop's figure)")
        rf = _figure(c, f"{c.name}[reference]", {**info, **ref}, REFERENCE, REFERENCE_PAIR,
                     None, schema, f"{w}.reference", series="interleaved")
        ref_rounds = rf.per_round
        figs.append(rf)
    for p, d in protos.items():
        where = f"{w}.protocols.{keyname(p)}"
        if not isinstance(d, dict):
            c.fail(where, d, "an object (that protocol's figure)")
        if p not in protocols.NAMES:
            drops.append(Drop("protocol", p, c.name))
            continue
        f = _figure(c, f"{c.name}[{keyname(p)}]", {**info, **d}, SIDE, role, p, schema, where)
        if ref_rounds:
            f = replace(f, reference_rounds=ref_rounds)
        figs.append(f)
    return figs, drops


def _figure(c: Checker, name: str, info: dict, kind: str, role: str, proto: str | None,
            schema: int, where: str, series: str | None = None) -> Figure:
    w = where
    slots = c.integer(info, "slots", w, lo=1, hi=MAX_SLOTS)
    threads = c.integer(info, "threads", w, lo=1, hi=MAX_THREADS, required=False)
    ns = c.number(info, "ns_per_op", w)
    lo = c.number(info, "ns_per_op_min", w)
    hi = c.number(info, "ns_per_op_max", w)
    if lo > hi:
        c.fail(f"{w}.ns_per_op_min", info["ns_per_op_min"],
               f"at most ns_per_op_max ({show(info['ns_per_op_max'])})")
    if not lo <= ns <= hi:
        c.fail(f"{w}.ns_per_op", info["ns_per_op"],
               f"between ns_per_op_min and ns_per_op_max ({show(lo)} to {show(hi)})")
    mode = EMULATOR
    state = level = None
    if schema >= 2:
        mode = c.word(info, "mode", w, required=False, default=EMULATOR)
    if kind == SCAN:
        key = "mode" if schema == 1 else "series"
        series = c.word(info, key, w)
        if series not in (READ, CHECKED):
            c.fail(f"{w}.{key}", series, f"'{READ}' or '{CHECKED}'")
    if kind == SCAN or "slot_state" in info and kind != DUTY:
        state = c.word(info, "slot_state", w, required=kind == SCAN)
        if state is not None and state not in SLOT_STATES:
            c.fail(f"{w}.slot_state", state, "one of " + ", ".join(SLOT_STATES))
        if kind != SCAN:
            state = None  # informative only outside the scan
    params: dict = {}
    if kind == DUTY:
        level = c.word(info, "level", w)
        params = {
            "hold_ns": c.integer(info, "hold_ns", w, lo=0, hi=10**12),
            "alloc_ns": c.integer(info, "alloc_ns", w, lo=0, hi=10**12),
            "duty": c.number(info, "duty", w, hi=1.0),
            "duty_measured": c.number(info, "duty_measured", w, hi=1.0, required=False),
        }
    if kind == BANDWIDTH:
        params = {
            "buffer_bytes": c.integer(info, "buffer_bytes", w, lo=1),
            "slot_bytes": c.integer(info, "slot_bytes", w, lo=1, hi=1 << 20),
            "llc_bytes": c.integer(info, "llc_bytes", w, lo=0, required=False),
        }
    agg = c.number(info, "aggregate_ns_per_op", w, required=False)
    return Figure(
        name=name, kind=kind, role=role, protocol=proto, slots=slots, threads=threads,
        ns=ns, ns_min=lo, ns_max=hi,
        rounds=c.integer(info, "rounds", w, hi=MAX_ROUNDS, required=False) or 0,
        ops=c.integer(info, "ops_per_round", w, required=False) or 0,
        mode=mode, series=series, state=state, level=level, aggregate=agg,
        outcomes=c.numbers(info, "outcomes", w), background=c.background(info, w),
        params=params, per_round=c.rounds_list(info, "ns_per_op_rounds", w),
    )
