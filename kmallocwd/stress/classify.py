"""What a snapshot is: consistent, or torn and how (docs/protocols.md, "A
torn snapshot").  The C scan (csrc/memalloc.h, memalloc_classify()) does the
same in the hot loop; this is the Python twin, for reports, replay and tests.

Every write section of `kmallocwd stress` stores values no earlier section of
the same slot stored: ``start`` is a per-section stamp whose low 8 bits index
the request (gfp, order) the section wrote, and the emulator's ``witness``
mixes the sequence the section ends with and every field it writes.
"""

from __future__ import annotations

from typing import Sequence

from kmallocwd.gfp import Request
from kmallocwd.protocols.spec import CONSISTENT, TORN_INSIDE, TORN_MIXED, TORN_SEQ

STAMP_SHIFT = 8  # start = (stamp << 8) | request index
MASK64 = (1 << 64) - 1


def witness(end_seq: int, start: int, order: int, gfp: int) -> int:
    """csrc/memalloc.h's memalloc_witness(), bit for bit."""
    h = ((((end_seq & 0xFFFFFFFF) << 32) | (order & 0xFFFFFFFF)) * 0x9E3779B97F4A7C15) & MASK64
    h ^= (start + 0x632BE59BD9B4E019) & MASK64
    h = (h * 0xBF58476D1CE4E5B9) & MASK64
    h ^= (h >> 31) ^ (gfp & 0xFFFFFFFF)
    h = (h * 0x94D049BB133111EB) & MASK64
    return h ^ (h >> 29)


def stamp(counter: int, q: int) -> int:
    """The ``start`` a stress section writes: a unique counter, then q."""
    return ((counter << STAMP_SHIFT) | q) & MASK64


def classify(sequence: int, start: int, order: int, gfp: int, wit: int,
             reqs: Sequence[Request]) -> str:
    """The outcome of an accepted snapshot with these fields.

    consistent: every field from one section (an odd sequence too, when the
    snapshot was taken inside a section after all of its stores);
    torn-inside: an odd sequence, some field from before the section;
    torn-seq: start, gfp and order from one section, the sequence or the
    witness from another; torn-mixed: data fields from two or more sections.
    """
    if wit == witness(sequence + (sequence & 1), start, order, gfp):
        return CONSISTENT
    if sequence & 1:
        return TORN_INSIDE
    q = start & ((1 << STAMP_SHIFT) - 1)
    if start == 0 and gfp == 0 and order == 0:  # the slot's initial contents
        return TORN_SEQ
    if q < len(reqs) and reqs[q].gfp == gfp and reqs[q].order == order:
        return TORN_SEQ
    return TORN_MIXED
