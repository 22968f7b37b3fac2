"""The protocol table: every variant declared once, jcstress-style.

Each variant names its writer and reader (see ../shared/protocols.md and
csrc/), and lists the outcomes a reader's snapshot can have, each with an
expectation and a one-line reason.  An outcome a variant does not list is
forbidden for it.  The CLI, the stress verdicts, the reports and the tests
all read this table; nothing else says what a protocol allows.
"""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass


class Expect(str, enum.Enum):
    ACCEPTABLE = "acceptable"
    INTERESTING = "interesting"
    FORBIDDEN = "forbidden"


# Outcomes of one snapshot, as the C reader loop counts them.
CONSISTENT = "consistent"
TORN = "torn"
REJECTED_ODD = "rejected-odd"
REJECTED_INVALID = "rejected-invalid"
OUTCOMES = (CONSISTENT, TORN, REJECTED_ODD, REJECTED_INVALID)

# Who can make an outcome happen.
X86 = "x86-64"  # this machine's hardware (TSO), by timing alone
WEAK = "weak"  # a weaker machine (arm64, POWER) reordering stores or loads
COMPILER = "compiler"  # the compiler reordering or merging accesses


@dataclass(frozen=True)
class Outcome:
    name: str
    expect: Expect
    reason: str
    shown_by: tuple[str, ...] = (X86, WEAK)


@dataclass(frozen=True)
class Protocol:
    name: str
    writer: str
    reader: str
    stands_for: str
    sound: bool  # True: no tear on any machine or compiler
    outcomes: tuple[Outcome, ...]
    note: str

    def outcome(self, name: str) -> Outcome:
        for o in self.outcomes:
            if o.name == name:
                return o
        return Outcome(name, Expect.FORBIDDEN, "not an outcome this protocol can produce", ())

    def forbidden(self, counts: dict[str, int]) -> list[str]:
        """Names of the outcomes seen in ``counts`` that this protocol forbids."""
        return [n for n, c in counts.items() if c and self.outcome(n).expect is Expect.FORBIDDEN]

    def to_dict(self) -> dict:
        d = asdict(self)
        for o in d["outcomes"]:
            o["expect"] = o["expect"].value
            o["shown_by"] = list(o["shown_by"])
        return d


_CONSISTENT = Outcome(CONSISTENT, Expect.ACCEPTABLE, "every field comes from one write section")
_INVALID = Outcome(
    REJECTED_INVALID, Expect.ACCEPTABLE, "valid == 0: no __GFP_RECLAIM allocation in progress"
)
_ODD = Outcome(
    REJECTED_ODD,
    Expect.ACCEPTABLE,
    "odd sequence: a write section was in progress, so the slot is skipped this scan",
)


def _torn(expect: Expect, reason: str, shown_by: tuple[str, ...]) -> Outcome:
    return Outcome(TORN, expect, reason, shown_by)


PROTOCOLS: tuple[Protocol, ...] = (
    Protocol(
        "v2-rwlock", "W-lock", "R-lock", "the patch's v2: a reader-writer lock", True,
        (_CONSISTENT, _INVALID,
         _torn(Expect.FORBIDDEN, "the write lock excludes readers for the whole section", ())),
        "Correct everywhere; the writer pays an atomic read-modify-write per section.",
    ),
    Protocol(
        "v3", "W-seq", "R-v3", "the seed as posted", False,
        (_CONSISTENT, _INVALID, _ODD,
         _torn(Expect.FORBIDDEN,
               "parity is checked, not equality: a whole section can run during the copy",
               (X86, WEAK, COMPILER))),
        "Broken on every machine: the struct copy is not re-validated against the first "
        "sequence read, so a section that starts and ends during the copy goes unnoticed, "
        "and with no smp_rmb() after the copy a weak CPU may also read the copy early.",
    ),
    Protocol(
        "v4-parity", "W-seq", "R-v4-parity", "the next revision's reader", False,
        (_CONSISTENT, _INVALID, _ODD,
         _torn(Expect.FORBIDDEN,
               "barriers now fence the copy, but the re-read still checks parity only (ABA)",
               (X86, WEAK))),
        "Broken on every machine, more rarely than v3: the sequence can advance by 2 "
        "(one whole section) between the two reads and still be even.",
    ),
    Protocol(
        "seqcount", "W-seq", "R-seqcount", "the kernel's seqcount_t", True,
        (_CONSISTENT, _INVALID,
         _torn(Expect.FORBIDDEN,
               "read_seqcount_retry() demands the same sequence, paired smp_wmb/smp_rmb", ())),
        "Correct everywhere: retries while the sequence is odd or has changed.",
    ),
    Protocol(
        "seqcount-acquire", "W-seq", "R-acquire", "the kernel's newer reader", True,
        (_CONSISTENT, _INVALID,
         _torn(Expect.FORBIDDEN,
               "the load-acquire orders the copy after the first sequence read", ())),
        "Correct everywhere: smp_load_acquire() replaces READ_ONCE + smp_rmb().",
    ),
    Protocol(
        "c11", "W-c11", "R-c11", "a C11-clean seqlock (Boehm 2012)", True,
        (_CONSISTENT, _INVALID,
         _torn(Expect.FORBIDDEN,
               "acquire load + acquire fence pair with the writer's release fence and store",
               ())),
        "Correct everywhere, and free of data races in the C11 model (what TSan accepts).",
    ),
    Protocol(
        "no-wmb", "W-nowmb", "R-seqcount", "a writer that forgot its barriers", False,
        (_CONSISTENT, _INVALID,
         _torn(Expect.FORBIDDEN,
               "without smp_wmb() the field stores may become visible outside the odd window",
               (WEAK, COMPILER))),
        "x86-64 keeps stores in order, so only the compiler can break it here: GCC 12 -O2 "
        "merges the two plain sequence++ into one +2 stored between the field stores, so "
        "the odd window is gone; what is left is a one-store window that valid (stored "
        "last) hides from the reader, and 60 s of stress on x86-64 never hit it.",
    ),
    Protocol(
        "no-rmb", "W-seq", "R-normb", "a reader that forgot its barriers", False,
        (_CONSISTENT, _INVALID,
         _torn(Expect.FORBIDDEN,
               "without smp_rmb() the field loads may be satisfied outside the two sequence reads",
               (WEAK, COMPILER))),
        "x86-64 keeps loads in order, so only a weak CPU, or a compiler that moves the plain "
        "field loads past the sequence loads, can break it; GCC 12 -O2 keeps them in "
        "program order here, and 60 s of stress on x86-64 saw no tear.",
    ),
    Protocol(
        "none", "W-seq", "R-none", "the control: no protection", False,
        (_CONSISTENT, _INVALID,
         _torn(Expect.INTERESTING, "no sequence check at all: the control shows tearing exists",
               (X86, WEAK, COMPILER))),
        "The control: any copy that overlaps a write section is torn.",
    ),
)

BY_NAME: dict[str, Protocol] = {p.name: p for p in PROTOCOLS}
NAMES: tuple[str, ...] = tuple(BY_NAME)


def get(name: str) -> Protocol:
    """The protocol called ``name``; KeyError if there is none."""
    return BY_NAME[name]


def cid(name: str) -> int:
    """The C core's number for a protocol (its index in the table)."""
    return NAMES.index(name)
