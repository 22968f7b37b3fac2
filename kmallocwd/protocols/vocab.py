"""The protocol files' vocabulary (docs/protocols.md): the formats, the
limits, the fields, the operations' names, the outcomes, the name patterns,
and the error a bad file raises.  A leaf: it imports nothing of the project."""

from __future__ import annotations

import enum
import re

from kmallocwd.errors import UsageError
from kmallocwd.verdicts import MODELS  # noqa: F401 (sc, x86, weak: one definition)

FORMAT = 1  # the original format (fixed struct memalloc_info)
FORMATS = (1, 2)  # every format the loader reads
MAX_FILE_BYTES = 64 * 1024
MAX_OPS = 64
# Every string of a file is bounded: free text (stands_for, an operation with
# its comment, a reason) at MAX_TEXT characters, the note at MAX_NOTE, names by
# their patterns below.  A condition: at most MAX_COND_TERMS operands, nested
# (parentheses, !, odd(), even()) at most MAX_COND_DEPTH deep.
MAX_TEXT = 200
MAX_NOTE = 1000
MAX_COND_TERMS = 32
MAX_COND_DEPTH = 16

# The slot's fields, as the patch's struct memalloc_info has them.
FIELDS = ("sequence", "valid", "dumped", "start", "order", "gfp")
DATA_FIELDS = ("start", "gfp", "order", "dumped")  # what a write section stores
# The values a write section stores: the allocation's time, mask and order.
VALUES = {"NOW": "start", "GFP": "gfp", "ORDER": "order", "0": None}
FENCES = ("smp_wmb", "smp_rmb", "smp_mb", "barrier")
LOCK_OPS = ("read_lock", "read_unlock", "write_lock", "write_unlock", "spin_lock", "spin_unlock")
LOCKS = ("global", "slot")
ACTIONS = ("accept", "retry", "skip")
VERDICTS = ("never", "sometimes")

# The outcomes of one snapshot (what stress counts, what the table rates).
CONSISTENT = "consistent"
TORN_MIXED = "torn-mixed"
TORN_SEQ = "torn-seq"
TORN_INSIDE = "torn-inside"
REJECTED_ODD = "rejected-odd"
REJECTED_INVALID = "rejected-invalid"
TORN_KINDS = (TORN_MIXED, TORN_SEQ, TORN_INSIDE)
OUTCOMES = (CONSISTENT, TORN_MIXED, TORN_SEQ, TORN_INSIDE, REJECTED_ODD, REJECTED_INVALID)
EXPECTS = ("acceptable", "interesting", "forbidden")

# Names are matched whole (re.fullmatch: no trailing newline slips through).
NAME_RE = re.compile(r"[a-z][a-z0-9-]{0,39}")
WHO_RE = re.compile(r"[A-Za-z][A-Za-z0-9_.+-]{0,39}")  # [writer] name, [reader] name
# Names a reader's variable may not take: C's keywords (C23's too), the
# predefined object-like macros of GNU C (linux, unix) and the ones the
# headers may define, and the generated reader's own names (csrc/loops.h,
# cgen.py).
RESERVED = frozenset("""auto break case char const continue default do double else enum extern
float for goto if inline int long register restrict return short signed sizeof static struct
switch typedef union unsigned void volatile while typeof asm m c snap emu retry expire
bool true false nullptr constexpr static_assert alignas alignof thread_local typeof_unqual
noreturn complex imaginary linux unix i386 errno stdin stdout stderr""".split())
VAR_RE = re.compile(r"[a-z_][a-z0-9_]{0,15}")




class Kind(enum.StrEnum):
    """What an operation of a file is (Op.kind)."""

    INC = "inc"  # FIELD += 1 (format 1: the sequence)
    STORE = "store"
    LOAD = "load"
    FENCE = "fence"
    LOCK = "lock"
    COPY = "copy"
    COND = "cond"


class SpecError(UsageError):
    """A bad protocol file: the message names the file, the line and the key."""
