"""The shared slot array: N cache-line-aligned ``struct memalloc_info``
owned by Python (freed by cffi's ``ffi.gc``), with a zero-copy numpy view."""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from typing import Sequence

import kmallocwd.stress.classify as classify
from kmallocwd._core import ffi, lib
from kmallocwd.gfp import STRESS_SEQ, Request

SLOT_SIZE: int = ffi.sizeof("struct memalloc_info")
FIELDS: tuple[tuple[str, str], ...] = (
    ("sequence", "<u4"),
    ("valid", "u1"),
    ("dumped", "u1"),
    ("start", "<u8"),
    ("order", "<u4"),
    ("gfp", "<u4"),
    ("witness", "<u8"),
    ("rwlock", "<i4"),
)
# Offsets come from the compiler (through cffi), not from a second copy.
DTYPE = np.dtype(
    {
        "names": [f for f, _ in FIELDS],
        "formats": [t for _, t in FIELDS],
        "offsets": [ffi.offsetof("struct memalloc_info", f) for f, _ in FIELDS],
        "itemsize": SLOT_SIZE,
    }
)


def max_slots() -> int:
    """The most slots this machine's available memory holds (half of it)."""
    try:
        avail = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError):  # pragma: no cover - non-Linux
        avail = 1 << 30
    return max(1, avail // 2 // SLOT_SIZE)


class SlotArray:
    """``n`` zeroed slots, one per emulated task, each on its own cache line."""

    def __init__(self, n: int, ffi=ffi, lib=lib, slot_size: int | None = None) -> None:
        """``ffi``/``lib``: the protocol module that will run on the slots
        (a user's protocol file has its own; protocols/backend.py).
        ``slot_size``: a format-2 protocol's own slot (kmw_slot_size()), a
        whole number of struct memalloc_info's cache lines; its slots start
        all zero (its section 0)."""
        if n < 1:
            raise ValueError(f"slots must be at least 1, got {n}")
        size = SLOT_SIZE if slot_size is None else slot_size
        if size < SLOT_SIZE or size % SLOT_SIZE:
            raise ValueError(f"slot size {size}: a multiple of {SLOT_SIZE}")
        ptr = lib.kmw_slots_alloc(n * (size // SLOT_SIZE))
        if ptr == ffi.NULL:
            raise MemoryError(f"cannot allocate {n} slots of {size} bytes")
        self.n = n
        self.ffi = ffi
        self.slot_size = size
        self.ptr = ffi.gc(ptr, lib.kmw_slots_free, size=n * size)
        if slot_size is not None:  # not memalloc_info's initial witness: zero
            np.frombuffer(ffi.buffer(ptr, n * size), dtype=np.uint8)[:] = 0

    def __len__(self) -> int:
        return self.n

    def slot(self, i: int):
        """A cdata pointer to slot ``i``."""
        if not 0 <= i < self.n:
            raise IndexError(i)
        return self.ptr + i

    def view(self) -> np.ndarray:
        """A zero-copy structured numpy view; valid while this object lives."""
        buf = self.ffi.buffer(self.ptr, self.n * SLOT_SIZE)
        arr = np.frombuffer(buf, dtype=DTYPE)
        return arr


@dataclass(frozen=True)
class Snapshot:
    """A copy of one slot's fields, as a reader saw it."""

    sequence: int
    valid: int
    dumped: int
    start: int
    order: int
    gfp: int
    witness: int

    @classmethod
    def from_cdata(cls, s) -> "Snapshot":
        return cls(s.sequence, s.valid, s.dumped, s.start, s.order, s.gfp, s.witness)

    def expected_witness(self) -> int:
        """The witness a write section ending with this sequence would store."""
        seq = self.sequence + (self.sequence & 1)
        return classify.witness(seq, self.start, self.order, self.gfp)

    def outcome(self, reqs: Sequence[Request] = STRESS_SEQ) -> str:
        """consistent, torn-mixed, torn-seq or torn-inside (classify.py)."""
        return classify.classify(self.sequence, self.start, self.order, self.gfp,
                                 self.witness, reqs)

    def torn(self) -> bool:
        """True if these fields were not all written by one write section."""
        return self.outcome() != classify.CONSISTENT

    def describe(self) -> str:
        """One line of its fields, for the text report."""
        return (f"seq={self.sequence} valid={self.valid} start=0x{self.start:x} "
                f"order={self.order} gfp=0x{self.gfp:x} witness=0x{self.witness:016x} (these "
                f"fields would give 0x{self.expected_witness():016x})")

    def to_dict(self) -> dict:
        return {
            "sequence": self.sequence,
            "valid": self.valid,
            "dumped": self.dumped,
            "start": self.start,
            "order": self.order,
            "gfp": f"0x{self.gfp:x}",
            "witness": f"0x{self.witness:016x}",
            "expected_witness": f"0x{self.expected_witness():016x}",
        }


@dataclass(frozen=True)
class FieldSnapshot:
    """A format-2 snapshot: each declared field's value as the reader copied
    it (0 where it copied none), and the sections of its slot the read
    could see (csrc/loops2.h: the emulator's section number before and
    after the read)."""

    values: tuple[tuple[str, int], ...]
    sections: tuple[int, int]

    @classmethod
    def from_tally(cls, spec, tally) -> "FieldSnapshot":
        """The first torn snapshot of ``spec`` (format 2) in ``tally``: the
        fields its reader copies, in the struct's order."""
        from kmallocwd.protocols.format2 import snap_fields
        copied = {v for op in spec.prologue + spec.snapshot for v in snap_fields(spec, op)}
        return cls(tuple((f.name, int(tally.first_torn_values[i]))
                         for i, f in enumerate(spec.fields) if f"snap.{f.name}" in copied),
                   (int(tally.first_torn_window[0]), int(tally.first_torn_window[1])))

    def describe(self) -> str:
        """One line of its fields, for the text report."""
        vals = " ".join(f"{n}=0x{v:x}" if v > 0xFFFF else f"{n}={v}" for n, v in self.values)
        lo, hi = self.sections
        return f"{vals} (the read could see sections {lo}..{hi} of its slot)"

    def to_dict(self) -> dict:
        return {**dict(self.values), "sections_seen": list(self.sections)}
