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

    def __init__(self, n: int, ffi=ffi, lib=lib) -> None:
        """``ffi``/``lib``: the protocol module that will run on the slots
        (a user's protocol file has its own; protocols/backend.py)."""
        if n < 1:
            raise ValueError(f"slots must be at least 1, got {n}")
        ptr = lib.kmw_slots_alloc(n)
        if ptr == ffi.NULL:
            raise MemoryError(f"cannot allocate {n} slots of {SLOT_SIZE} bytes")
        self.n = n
        self.ffi = ffi
        self.ptr = ffi.gc(ptr, lib.kmw_slots_free, size=n * SLOT_SIZE)

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
