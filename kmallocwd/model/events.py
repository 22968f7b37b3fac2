"""A protocol file as the two threads' events, and which of them each memory
model keeps in program order (docs/model.md).

The writer (thread 0) runs K allocations: section k is the patch's
``start_memalloc_timer()`` -- ``if (!valid) { <writer.section> }; valid++`` --
then ``stop_memalloc_timer()``, ``valid--``.  The writer's load of its own
``valid`` always reads its own last store (0), so it is left out: the section
always runs.  Between ``valid++`` and ``valid--`` is the allocation, and after
``valid--`` the caller's code: both are function calls, which a compiler does
not move shared accesses across (a ``call`` event; no ordering on hardware).

The reader (thread 1) runs ``reader.prologue`` then ``reader.snapshot`` once:
``copy`` is the field-by-field load of valid, dumped, start, order and gfp
(struct order), ``snap = *m`` the same with sequence first.

Values: ``start``, ``gfp`` and ``order`` hold the section index that wrote
them (NOW_k, GFP_k, ORDER_k; 0 is the initial slot); ``sequence``, ``valid``
and ``dumped`` their integer values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import product
from typing import Iterable

from kmallocwd.protocols.spec import Kind, Op, Spec
from kmallocwd.verdicts import MODELS, Model

WRITER, READER = 0, 1
THREAD_NAMES = ("writer", "reader")

# What a copy loads, in struct memalloc_info's order.
STRUCT_ORDER = ("sequence", "valid", "dumped", "start", "order", "gfp")
SYMBOLIC = {"start": "NOW", "gfp": "GFP", "order": "ORDER"}

SC, X86, WEAK = Model.SC, Model.X86, Model.WEAK
MODEL_TITLES = {
    SC: "sequential consistency (interleavings of program order)",
    X86: "x86-TSO store buffers + compiler reordering/merging of plain accesses",
    WEAK: "arm64/POWER-class hardware, LKMM ordering rules",
}


@dataclass(frozen=True)
class Event:
    """One event of a thread's program."""

    tid: int
    kind: str  # store load fence lock unlock cond call
    op: Op | None  # the operation as written (None: implicit, see text)
    text: str  # as written (or the implicit operation)
    line: int = 0
    section: int = 0  # writer: the section (1..K)
    loc: str | None = None  # memory location, or the lock's name
    access: str | None = None  # plain once acquire release
    value: int | None = None  # stores: the value written
    var: str | None = None  # loads: the variable
    fence: str | None = None
    lockop: str | None = None  # read_lock ... spin_unlock
    merged: tuple[int, ...] = ()  # a merged store: the lines of the incs it replaces
    attempt: str = ""  # reader: 'prologue' or 'snapshot'
    # format 2: a load of copy[VAR & 1].F reads loc (F[0]) or alt (F[1]),
    # as the value of the variable ``index`` says
    index: str | None = None
    alt: str | None = None

    @property
    def locs(self) -> tuple[str, ...]:
        """Every location this access may touch."""
        return (self.loc,) if self.alt is None else (self.loc, self.alt)

    def loc_for(self, env: dict) -> str | None:
        """The location this access touches, given the values read so far."""
        if self.alt is None:
            return self.loc
        return self.alt if env.get(self.index, 0) & 1 else self.loc

    @property
    def is_access(self) -> bool:
        return self.kind in ("store", "load")

    @property
    def is_lockop(self) -> bool:
        return self.kind in ("lock", "unlock")

    @property
    def marked(self) -> bool:
        return self.access in ("once", "acquire", "release")

    @property
    def is_acquire(self) -> bool:
        return self.access == "acquire" or self.kind == "lock"

    @property
    def is_release(self) -> bool:
        return self.access == "release" or self.kind == "unlock"

    @property
    def reads(self) -> bool:  # for smp_rmb: loads and lock operations
        return self.kind in ("load", "lock", "unlock")

    @property
    def writes(self) -> bool:  # for smp_wmb: stores and lock operations
        return self.kind in ("store", "lock", "unlock")

    def where(self) -> str:
        return f"line {self.line}" if self.line else "implicit"

    def value_text(self, v: int | None = None) -> str:
        v = self.value if v is None else v
        return value_name(self.loc, v)


def value_name(loc: str | None, v: int | None) -> str:
    if v is None:
        return "?"
    loc = loc.split("[")[0] if loc else loc
    if loc in SYMBOLIC:
        return "0" if v == 0 else f"{SYMBOLIC[loc]}_{v}"
    return str(v)


@dataclass
class Program:
    """The events of both threads for one compiler variant, with the
    ordering each model keeps: ``preds[t][i]``, the bit mask of thread
    t's events that must execute before its event i."""

    spec: Spec
    model: str
    sections: int
    writer: list[Event]
    reader: list[Event]
    preds: tuple[list[int], list[int]] = field(default=([], []))
    merges: tuple[int, ...] = ()  # sections whose sequence++ pair is merged
    incs_per_section: int = 2
    oracle: tuple[tuple[int, int], ...] = ()  # (reader event, what its expired() gives)

    @property
    def events(self) -> tuple[list[Event], list[Event]]:
        return (self.writer, self.reader)

    def label(self) -> str:
        parts = []
        if self.merges:
            what = "sequence++" if self.spec.format == 1 else "FIELD++"
            parts.append(f"GCC merged {what} pair in section " + ", ".join(map(str, self.merges)))
        false = [self.reader[i].line for i, v in self.oracle if not v]
        if false:
            parts.append("expired() false at line " + ", ".join(map(str, false)))
        return "; ".join(parts) or "as written"

    def oracle_of(self, index: int) -> int:
        for i, v in self.oracle:
            if i == index:
                return v
        return 1



# ---- building the events ------------------------------------------------------

def _cond_vars(spec: Spec) -> set[str]:
    out: set[str] = set()
    for op in spec.prologue + spec.snapshot:
        if op.kind == Kind.COND:
            out |= op.cond.vars()
    return out


def _loc(op: Op) -> str:
    return op.field if op.copy is None else f"{op.field}[{op.copy}]"


def writer_events(spec: Spec, sections: int, prune: bool = True,
                  merges: Iterable[tuple[int, int]] = ()) -> list[Event]:
    """K sections of start_memalloc_timer() and stop_memalloc_timer() (a
    bare frame: K sections, each followed by the caller's code).
    ``merges``: (section, index of the first inc of a merged pair)."""
    merge_at = {(s, i) for s, i in merges}
    drop = pruned_fields(spec) if prune else set()
    out: list[Event] = []
    count: dict[str, int] = {}
    for k in range(1, sections + 1):
        skip: set[int] = set()
        for i, op in enumerate(spec.section):
            if op.kind == Kind.INC:
                if i in skip:
                    continue
                if (k, i) in merge_at:
                    nxt = _next_inc(spec, i)
                    count[op.field] = count.get(op.field, 0) + 2
                    out.append(Event(WRITER, "store", op, f"{op.text}; {spec.section[nxt].text}",
                                     op.line, k, op.field, "plain", count[op.field],
                                     merged=(op.line, spec.section[nxt].line)))
                    skip.add(nxt)
                    continue
                count[op.field] = count.get(op.field, 0) + 1
                out.append(Event(WRITER, "store", op, op.text, op.line, k, op.field,
                                 op.access, count[op.field]))
            elif op.kind == Kind.STORE:
                if op.field in drop and op.access in ("plain", "once"):
                    continue
                val = int(op.value) if op.value.isdigit() else k
                out.append(Event(WRITER, "store", op, op.text, op.line, k, _loc(op),
                                 op.access, val))
            elif op.kind == Kind.FENCE:
                out.append(Event(WRITER, "fence", op, op.text, op.line, k, fence=op.fence))
            elif op.kind == Kind.LOCK:
                kind = "unlock" if op.lockop.endswith("unlock") else "lock"
                out.append(Event(WRITER, kind, op, op.text, op.line, k, loc=op.lock,
                                 lockop=op.lockop))
            else:  # pragma: no cover - the parser allows no other writer op
                raise ValueError(op.kind)
        if spec.frame == "bare":
            out.append(Event(WRITER, "call", None, "the caller (function calls)", 0, k))
            continue
        acc, flag = spec.valid_access, spec.flag
        inc_text = f"WRITE_ONCE({flag}, {flag} + 1)" if acc == "once" else f"{flag}++"
        dec_text = f"WRITE_ONCE({flag}, {flag} - 1)" if acc == "once" else f"{flag}--"
        out.append(Event(WRITER, "store", None, f"{inc_text}   [start_memalloc_timer()]", 0, k,
                         flag, acc, 1))
        out.append(Event(WRITER, "call", None, "the allocation (function calls)", 0, k))
        out.append(Event(WRITER, "store", None, f"{dec_text}   [stop_memalloc_timer()]", 0, k,
                         flag, acc, 0))
        out.append(Event(WRITER, "call", None, "the caller (function calls)", 0, k))
    return out


def _next_inc(spec: Spec, i: int) -> int:
    """The section's next increment of the field operation i increments."""
    f = spec.section[i].field
    return next(j for j in range(i + 1, len(spec.section))
                if spec.section[j].kind == Kind.INC and spec.section[j].field == f)


def pruned_fields(spec: Spec) -> set[str]:
    """Fields whose plain and ONCE accesses nobody can observe: format 1's
    dumped unless the reader needs it; in format 2 every field that is not
    covered, not the flag, not a counter, and that no condition, acquire or
    copy index reads."""
    if spec.format == 1:
        return set() if _reader_needs(spec, "dumped") else {"dumped"}
    keep = set(spec.covered) | set(spec.counters) | {spec.flag}
    return {f.name for f in spec.fields
            if f.name not in keep and not _reader_needs(spec, f.name)}


def _reader_needs(spec: Spec, fld: str) -> bool:
    """True if a value loaded from ``fld`` feeds a condition or a load of
    it is ordered (acquire); then its accesses cannot be pruned."""
    cv = _cond_vars(spec)
    cv |= {op.index for op in spec.prologue + spec.snapshot if op.index}
    for op in spec.prologue + spec.snapshot:
        if op.kind == Kind.LOAD and op.field == fld and (op.var in cv or op.access == "acquire"):
            return True
    return False


def reader_events(spec: Spec, prune: bool = True) -> list[Event]:
    drop = pruned_fields(spec) if prune else set()
    out: list[Event] = []
    for where, ops in (("prologue", spec.prologue), ("snapshot", spec.snapshot)):
        for op in ops:
            if op.kind == Kind.LOAD:
                if op.field in drop and op.access in ("plain", "once"):
                    continue
                out.append(_load(op, op.field, op.var, op.access, op.text, where))
            elif op.kind == Kind.COPY:
                if spec.format == 1:
                    fields = STRUCT_ORDER if op.with_sequence else STRUCT_ORDER[1:]
                else:
                    want = 2 if op.index else 1
                    fields = tuple(f.name for f in spec.fields if f.copies == want)
                for f in fields:
                    if f in drop:
                        continue
                    acc = op.access
                    src = f if not op.index else f"copy[{op.index} & 1].{f}"
                    text = f"{op.text}: snap.{f} = " + (f"READ_ONCE({src})" if acc == "once"
                                                         else src)
                    out.append(_load(op, f, f"snap.{f}", acc, text, where))
            elif op.kind == Kind.COND:
                out.append(Event(READER, "cond", op, op.text, op.line, attempt=where))
            elif op.kind == Kind.FENCE:
                out.append(Event(READER, "fence", op, op.text, op.line, fence=op.fence,
                                 attempt=where))
            elif op.kind == Kind.LOCK:
                kind = "unlock" if op.lockop.endswith("unlock") else "lock"
                out.append(Event(READER, kind, op, op.text, op.line, loc=op.lock,
                                 lockop=op.lockop, attempt=where))
            else:  # pragma: no cover
                raise ValueError(op.kind)
    return out


def _load(op: Op, fld: str, var: str, access: str, text: str, where: str) -> Event:
    if op.index is None:
        return Event(READER, "load", op, text, op.line, loc=fld, access=access, var=var,
                     attempt=where)
    return Event(READER, "load", op, text, op.line, loc=f"{fld}[0]", access=access, var=var,
                 attempt=where, index=op.index, alt=f"{fld}[1]")


# ---- the ordering each model keeps ----------------------------------------------

def _uses(cond: Event, load: Event) -> bool:
    if cond.kind != "cond" or load.kind != "load":
        return False
    return load.var in cond.op.cond.vars()


def ordered(model: str, a: Event, b: Event, spec: Spec) -> bool:
    """Must ``a`` (before ``b`` in program order, same thread) execute
    before ``b`` under ``model``?  Only direct reasons: the explorer's
    scheduler makes the relation transitive."""
    if model == SC:
        return True
    if b.index is not None and a.kind == "load" and a.var == b.index:
        return True  # an address dependency: copy[VAR & 1] needs VAR
    # Both models: a condition needs the loads it reads; a decision to
    # accept needs the whole snapshot; no decision while a lock is held
    # (the file format forbids it), so a condition waits for lock ops.
    if b.kind == "cond":
        if _uses(b, a) or _uses_seq(b, a, spec):
            return True
        if b.op.action == "accept":
            return True
        return a.is_lockop
    if a.kind == "cond":
        if b.kind in ("store", "lock", "unlock"):
            return True  # no speculative stores (control dependency to a store)
        if model == X86:
            # A compiler may hoist a plain load above a branch (the slot is
            # known to be there), never a volatile one, nor a barrier.
            return not (b.kind == "load" and b.access == "plain") and b.kind != "cond"
        return False  # weak: control dependencies do not order loads
    if model == X86:
        return _ordered_compiler(a, b)
    return _ordered_weak(a, b)


def _uses_seq(cond: Event, load: Event, spec: Spec) -> bool:
    """'snap.sequence' in a condition is the copy's sequence, or the
    variable named by reader.snapshot_sequence."""
    if load.kind != "load" or "snap.sequence" not in cond.op.cond.vars():
        return False
    return spec.snapshot_sequence is not None and load.var == spec.snapshot_sequence


def _ordered_compiler(a: Event, b: Event) -> bool:
    """x86: the CPU keeps program order (TSO: only the store buffer delays
    stores), so what reorders is the compiler: plain accesses to different
    locations that no compiler barrier separates."""
    if a.kind in ("fence", "call", "lock", "unlock") or b.kind in ("fence", "call", "lock",
                                                                    "unlock"):
        return True  # barrier(), smp_*(), lock ops and calls are compiler barriers
    if set(a.locs) & set(b.locs):
        return True
    if a.marked and b.marked:
        return True  # volatile accesses stay in order
    if a.access == "acquire" or b.access == "release":
        return True  # smp_load_acquire()/smp_store_release() carry a barrier()
    return False


def _ordered_weak(a: Event, b: Event) -> bool:
    """arm64/POWER-class, as the LKMM orders these two-thread shapes."""
    if a.is_access and b.is_access and set(a.locs) & set(b.locs):
        return True  # coherence (a copy[VAR & 1] load: either copy)
    if a.is_lockop and b.is_lockop:
        return True
    if a.is_acquire and a.kind != "fence":
        return True  # acquire: before everything after it
    if b.is_release and b.kind != "fence":
        return True  # release: after everything before it
    for f, x in ((a, b), (b, a)):
        if f.kind != "fence":
            continue
        if f.fence == "smp_mb":
            return x.kind != "cond" and x.kind != "call"
        if f.fence == "smp_wmb":
            return x.writes or (x.kind == "fence" and x.fence in ("smp_wmb", "smp_mb"))
        if f.fence == "smp_rmb":
            return x.reads or (x.kind == "fence" and x.fence in ("smp_rmb", "smp_mb"))
        # barrier(): compiler only, no hardware ordering
    return False


def preds_for(model: str, evs: list[Event], spec: Spec) -> list[int]:
    out = []
    for j, b in enumerate(evs):
        m = 0
        for i in range(j):
            if ordered(model, evs[i], b, spec):
                m |= 1 << i
        out.append(m)
    return out


# ---- compiler variants ------------------------------------------------------------

def merge_choices(spec: Spec) -> list[int]:
    """Indices (in writer.section) of incs a compiler may merge with the
    next one of the same field: both plain, nothing but plain stores to
    other locations between them (no compiler barrier, no other access to
    the field)."""
    ops = spec.section
    out = []
    for a, op in enumerate(ops):
        if op.kind != Kind.INC or op.access != "plain":
            continue
        nxt = [j for j in range(a + 1, len(ops))
               if ops[j].kind == Kind.INC and ops[j].field == op.field]
        if not nxt or ops[nxt[0]].access != "plain":
            continue
        b = nxt[0]
        between = ops[a + 1:b]
        if all(o.kind == Kind.STORE and o.access == "plain" and o.field != op.field
               for o in between):
            out.append(a)
    return out


def _non_overlapping(choices: list[int], spec: Spec) -> list[tuple[int, ...]]:
    out = []
    for mask in product((0, 1), repeat=len(choices)):
        pick = tuple(c for c, m in zip(choices, mask) if m)
        used: set[int] = set()
        ok = True
        for c in pick:
            nxt = _next_inc(spec, c)
            if c in used or nxt in used:
                ok = False
            used |= {c, nxt}
        if ok:
            out.append(pick)
    return out


def _has_expired(e) -> bool:
    stack = [e]
    while stack:
        x = stack.pop()
        if x.op == "expired":
            return True
        if x.op not in ("var", "int"):
            stack += x.args
    return False


def programs(spec: Spec, model: str, sections: int = 2, prune: bool = True) -> list[Program]:
    """Every program variant the model runs: one, or (x86) one per choice
    of the FIELD++ pairs the compiler merges; times (format 2) each value
    the reader's expired() conditions may take."""
    reader = reader_events(spec, prune)
    variants: list[tuple[tuple[int, int], ...]] = [()]
    if model == X86:
        per_section = _non_overlapping(merge_choices(spec), spec)
        variants = []
        for combo in product(per_section, repeat=sections):
            variants.append(tuple((k + 1, i) for k, pick in enumerate(combo) for i in pick))
    oracles = [i for i, e in enumerate(reader) if e.kind == "cond" and _has_expired(e.op.cond)]
    choices = [tuple(zip(oracles, bits)) for bits in product((1, 0), repeat=len(oracles))]
    out = []
    incs = sum(1 for op in spec.section if op.kind == Kind.INC)
    rpreds = preds_for(model, reader, spec)
    for v in variants:
        w = writer_events(spec, sections, prune, v)
        wpreds = preds_for(model, w, spec)
        for oracle in choices:
            p = Program(spec, model, sections, w, reader,
                        merges=tuple(sorted({k for k, _ in v})), incs_per_section=incs,
                        oracle=oracle)
            p.preds = (wpreds, rpreds)
            out.append(p)
    return out
