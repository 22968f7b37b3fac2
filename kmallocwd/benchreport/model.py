"""The names and the data of one benchmark run: the kinds and roles the
bench/ suites record in each benchmark's ``extra_info`` (one spelling for
the suites and the report), and the Figure / Run a loaded file becomes.

Protocol names are not listed here: they come from the file, checked
against kmallocwd/protocols.py's table.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

from kmallocwd import protocols
from kmallocwd.errors import UsageError

# extra_info["kmallocwd"]: the layout the suites write (SCHEMA) and the
# ones this report reads.  Schema 1 had no "mode" key and called the scan's
# series "mode" (read / checked); it is read as schema 2 in emulator mode.
SCHEMA = 2
SCHEMAS = (1, 2)
BASELINE = "seqcount"

# ---- modes: what was built into the timed loops ----
# "emulator": the loops with the torn-read witness, the stamps and the
# knobs; "protocol": the protocol's own operations, without instrumentation.
# Every table, ratio and chart is keyed by mode, and
# analyse.instrumentation_overhead() pairs the two.
EMULATOR = "emulator"
PROTOCOL = "protocol"

# ---- kinds of benchmark, and the roles of each ----
MATRIX = "matrix"
SIDE = "side-by-side"
SCAN = "scan"
PYTHON = "python"
REFERENCE = "reference"
BANDWIDTH = "bandwidth"
DUTY = "duty"

WRITER_ALONE = "writer-alone"
WRITER_WITH_READER = "writer-with-reader"
READER_ALONE = "reader-alone"
READER_WITH_WRITER = "reader-with-writer"
MATRIX_ROLES = (WRITER_ALONE, WRITER_WITH_READER, READER_ALONE, READER_WITH_WRITER)
READER_WITH_ALLOCATING = "reader-with-allocating-writer"
SIDE_ROLES = MATRIX_ROLES + (READER_WITH_ALLOCATING,)
PY_WRITER = "py-writer-pair"
PY_READER = "py-reader-read"
PYTHON_ROLES = (PY_WRITER, PY_READER)
SCAN_ROLE = "scan"
REFERENCE_PAIR = "reference-pair"   # the patch's start/stop, plainly, in C
COPY = "memcpy"                     # copy bandwidth, as ns per slot's bytes
DUTY_READER = "reader-vs-duty"      # reader against writers in sections x% of the time

ROLES = {
    MATRIX: MATRIX_ROLES,
    SIDE: SIDE_ROLES,
    SCAN: (SCAN_ROLE,),
    PYTHON: PYTHON_ROLES,
    REFERENCE: (REFERENCE_PAIR,),
    BANDWIDTH: (COPY,),
    DUTY: (DUTY_READER,),
}
KINDS = tuple(ROLES)
# Kinds whose figures belong to no protocol.
UNPROTOCOLLED = (REFERENCE, BANDWIDTH)

# The scan's series: (series, slot state), the headline first.
READ, CHECKED = "read", "checked"
VALID, IDLE = "valid", "idle"
SCAN_SERIES = ((READ, VALID), (READ, IDLE), (CHECKED, VALID))
SLOT_STATES = (VALID, IDLE, "written")

# The reader-vs-writer-activity levels, in order (bench/bench_duty.py).
DUTY_LEVELS = ("idle", "1%", "10%", "100%")

ROLE_TITLES = {
    WRITER_ALONE: "writer alone: ns per start/stop pair",
    WRITER_WITH_READER: "writer with a concurrent reader: ns per start/stop pair",
    READER_ALONE: "reader alone (slots valid): ns per slot read",
    READER_WITH_WRITER: "reader with concurrent writers: ns per slot read",
    READER_WITH_ALLOCATING: "reader with a writer whose allocations last a while: ns per read",
    PY_WRITER: "Python-driven start+stop pair (2 cffi calls): ns per pair",
    PY_READER: "Python-driven read (1 cffi call): ns per read",
}
ROLE_SHORT = {PY_WRITER: "start+stop pair", PY_READER: "read", WRITER_ALONE: "writer",
              WRITER_WITH_READER: "writer+reader", READER_ALONE: "reader",
              READER_WITH_WRITER: "reader+writer", READER_WITH_ALLOCATING: "reader+alloc"}
SCAN_TITLES = {
    (READ, VALID): "scan of N valid slots (protocol read + time check): ns per slot",
    (READ, IDLE): "scan of N idle slots (valid == 0): ns per slot",
    (CHECKED, VALID): "emulator's watchdog scan (read + torn-read check), valid slots: "
                      "ns per slot",
}


class BenchReportError(UsageError):
    """The file is not a readable run of ``make bench``; one line."""


class PlotUnavailable(RuntimeError):
    """matplotlib is not installed (the ``plot``, ``bench`` or ``test`` extra)."""


@dataclass(frozen=True)
class Figure:
    """One C-timed figure: a benchmark's, or one protocol's of a side-by-side
    benchmark.  protocol is None for the yardsticks (reference, bandwidth)."""

    name: str
    kind: str
    role: str
    protocol: str | None
    slots: int
    threads: int | None
    ns: float
    ns_min: float
    ns_max: float
    rounds: int = 0
    ops: int = 0
    mode: str = EMULATOR
    series: str | None = None     # scan: read / checked
    state: str | None = None      # scan: valid / idle
    level: str | None = None      # duty: idle / 1% / 10% / 100%
    aggregate: float | None = None
    outcomes: dict = field(default_factory=dict)
    background: dict = field(default_factory=dict)
    params: dict = field(default_factory=dict)  # kind-specific numbers (duty, bandwidth)
    per_round: tuple[float, ...] = ()  # side-by-side: the figure of each round
    reference_rounds: tuple[float, ...] = ()  # side-by-side writer: the reference's rounds

    @property
    def case(self) -> tuple:
        """What must match for two figures to be compared across protocols."""
        return (self.kind, self.role, self.slots, self.threads, self.mode, self.series,
                self.state, self.level)


@dataclass
class Run:
    path: str
    datetime: str
    machine: dict
    commit: dict
    settings: dict
    figures: list[Figure]
    warnings: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._by: dict[tuple, Figure] = {(f.case, f.protocol): f for f in self.figures}

    def get(self, kind: str, role: str, protocol: str | None, slots: int,
            threads: int | None, series: str | None = None, state: str | None = None, *,
            mode: str = EMULATOR, level: str | None = None) -> Figure | None:
        return self._by.get(((kind, role, slots, threads, mode, series, state, level),
                             protocol))

    def peer(self, f: Figure, protocol: str | None) -> Figure | None:
        """The figure of the same case for another protocol."""
        return self._by.get((f.case, protocol))

    def ratio(self, f: Figure | None, baseline: str = BASELINE) -> float | None:
        """f's figure over the baseline protocol's in the same case."""
        if f is None:
            return None
        b = self.peer(f, baseline)
        if b is None or not b.ns:
            return None
        return round_ratio(f.ns, b.ns, f.per_round, b.per_round)

    def protocols(self) -> list[str]:
        """The protocols of the file, in the protocol table's order."""
        seen = {f.protocol for f in self.figures if f.protocol is not None}
        known = [p for p in protocols.NAMES if p in seen]
        return known + sorted(seen - set(known))

    def modes(self) -> list[str]:
        seen = {f.mode for f in self.figures}
        known = [m for m in (EMULATOR, PROTOCOL) if m in seen]
        return known + sorted(seen - set(known))

    def of(self, kind: str, role: str | None = None, **match: object) -> list[Figure]:
        """The figures of a kind (and role), with attributes equal to match."""
        return [f for f in self.figures if f.kind == kind and (role is None or f.role == role)
                and all(getattr(f, k) == v for k, v in match.items())]

    def cases(self, kind: str, role: str | None = None,
              mode: str | None = None) -> list[tuple[int, int | None]]:
        """(slots, threads) of a kind/role, in order."""
        out = {(f.slots, f.threads) for f in self.figures
               if f.kind == kind and (role is None or f.role == role)
               and (mode is None or f.mode == mode)}
        return sorted(out, key=lambda c: (c[0], c[1] or 0))


def round_ratio(a: float, b: float, a_rounds: tuple[float, ...] = (),
                b_rounds: tuple[float, ...] = ()) -> float | None:
    """a / b; for interleaved rounds (both per-round lists, same length), the
    median of the round-by-round ratios."""
    if a_rounds and len(a_rounds) == len(b_rounds) and all(b_rounds):
        return statistics.median(x / y for x, y in zip(a_rounds, b_rounds))
    return a / b if b else None
