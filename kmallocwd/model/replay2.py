"""Replay a format-2 protocol's counterexample on real threads and a real
byte buffer (csrc/replay.c, kmw_replay2_thread()).

The buffer is the protocol's slot as stress compiles it (protocols/layout.py:
the declared fields at natural alignment, the two-copy fields in copy[2]).  The steps are
the trace's, in the trace's order, as for format 1 (model/replay.py), each
naming an offset and a width; a load of the latch's copy[VAR & 1].F takes
its copy from the value the real load of VAR returned.

Values: a counter holds its count (n*k after section k), the frame's flag 1
or 0, a constant store its constant, and a stamp (NOW, GFP, ORDER, STAMP) of
section k a value unique to the field and the section, with k in the
field's top byte (so a read of the wrong width or offset cannot pass for
it).  The reader's values are mapped back to sections, its decisions
re-evaluated on them, and an accepted snapshot classified by the model's own
rule (classify_fields): exact, since no two sections write the same stamp.
"""

from __future__ import annotations

from dataclasses import dataclass

from kmallocwd.model.events import READER, WRITER
from kmallocwd.model.explore import Exploration, classify_fields
from kmallocwd.model.replay import FENCES, LOAD, NOP, STORE, FENCE, ReplayResult, run_threads
from kmallocwd.model.report import trace_rows
from kmallocwd.protocols.cond import ORACLE
from kmallocwd.protocols.format2 import STAMPS
from kmallocwd.protocols.layout import layout as struct_layout
from kmallocwd.protocols.spec import Kind, Spec

GARBAGE = "unexpected-value"  # a value no step stored: the replay went wrong


@dataclass(frozen=True)
class Slot:
    """Where one location (F, or F[0]/F[1]) lives in the buffer."""

    offset: int
    width: int  # bytes


def layout(spec: Spec) -> tuple[dict[str, Slot], int]:
    """Each location (F, or F[0] and F[1] for a two-copy field) where the
    generated struct has it (protocols/layout.py: stress's slot), and the
    buffer's size."""
    lay = struct_layout(spec)
    out = {(f.name if f.copies == 1 else f"{f.name}[{c}]"): Slot(off, lay.widths[f.name])
           for f in spec.fields for c, off in enumerate(lay.offsets[f.name])}
    return out, lay.slot_size


def stamp_value(spec: Spec, field: str, k: int) -> int:
    """The value section k's stamp store writes into ``field``: k in the
    top byte, and below it a pattern of the field's own."""
    i, f = next((i, f) for i, f in enumerate(spec.fields) if f.name == field)
    if f.bits == 8:
        return k
    low = ((0xA5 + i) * 0x0101010101010101) & ((1 << (f.bits - 8)) - 1)
    return (k << (f.bits - 8)) | low


def _field(loc: str) -> str:
    return loc.split("[")[0]


def _stamped(spec: Spec) -> set[str]:
    return {op.field for op in spec.section if op.kind == Kind.STORE and op.value in STAMPS}


@dataclass
class Plan2:
    steps: list[tuple[int, int, int, int, int, int, int]]  # thread kind off width value idx stride
    loads: dict[int, tuple[str, str]]  # step -> (reader variable, field)
    conds: list[int]  # each reader condition in order: what expired() gives in the trace's variant
    size: int


def plan2(spec: Spec, res: Exploration) -> Plan2:
    """The counterexample as kmw_replay2_thread()'s steps."""
    slots, size = layout(spec)
    stamped = _stamped(spec)
    prog = res.programs[res.witness[0]]
    steps: list[tuple[int, int, int, int, int, int, int]] = []
    loads: dict[int, tuple[str, str]] = {}
    var_step: dict[str, int] = {}
    for r in trace_rows(res):
        e = r.event
        if r.tid == WRITER and e.kind == "store" and r.kind in ("store", "drain"):
            s = slots[e.loc]
            f = _field(e.loc)
            stamp = e.op is not None and e.op.kind == Kind.STORE and e.op.value in STAMPS
            v = stamp_value(spec, f, e.value) if stamp and f in stamped else e.value
            steps.append((WRITER, STORE, s.offset, s.width, v, -1, 0))
        elif e.kind == "fence":
            steps.append((r.tid, FENCE, 0, 0, FENCES[e.fence], -1, 0))
        elif e.kind == "load" and r.tid == READER:
            s = slots[e.loc]
            idx, stride = -1, 0
            if e.alt is not None:
                idx = var_step[e.index]
                stride = slots[e.alt].offset - s.offset
            var_step[e.var] = len(steps)
            loads[len(steps)] = (e.var, _field(e.loc))
            steps.append((READER, LOAD, s.offset, s.width, 0, idx, stride))
        elif e.kind in ("lock", "unlock"):
            steps.append((r.tid, NOP, 0, 0, 0, -1, 0))  # the trace's order is the exclusion
    conds = [prog.oracle_of(i) for i, e in enumerate(prog.reader) if e.kind == "cond"]
    return Plan2(steps, loads, conds, size)


def run_plan2(p: Plan2) -> dict[str, int]:
    """Execute the steps once on two threads over a fresh zeroed buffer; the
    reader's loaded values (raw) by variable."""
    from kmallocwd._core import ffi, lib
    n = len(p.steps)
    csteps = ffi.new("struct kmw_step2[]", max(n, 1))
    for i, (t, k, off, w, v, idx, stride) in enumerate(p.steps):
        c = csteps[i]
        c.thread, c.kind, c.offset, c.width, c.value = t, k, off, w, v
        c.index_step, c.stride = idx, stride
    words = ffi.new("uint64_t[]", p.size // 8)  # 8-aligned, zeroed: every field 0
    buf = ffi.cast("unsigned char *", words)
    counter = ffi.new("uint32_t *", 0)
    loaded = ffi.new("uint64_t[]", max(n, 1))
    stop = ffi.new("int *", 0)
    run_threads(lambda t: lib.kmw_replay2_thread(buf, csteps, n, t, counter, loaded, stop),
                counter, n, stop, lib)
    return {var: int(loaded[i]) for i, (var, _f) in p.loads.items()}


def judge2(spec: Spec, p: Plan2, sections: int, vals: dict[str, int]) -> tuple[str, dict]:
    """Did the reader accept, and which torn kind (if any) is its snapshot?"""
    stamped = _stamped(spec)
    back = {(f, stamp_value(spec, f, k)): k for f in stamped for k in range(1, sections + 1)}
    env: dict[str, int] = {}
    field_of = dict(p.loads.values())
    for var, raw in vals.items():
        f = field_of[var]
        if f in stamped and raw != 0:
            if (f, raw) not in back:
                return GARBAGE, {var: raw}
            env[var] = back[(f, raw)]
        else:
            env[var] = raw
    seqvar = spec.snapshot_sequence or "snap.sequence"
    if seqvar in env:
        env["snap.sequence"] = env[seqvar]
    cond_ops = [op for op in spec.prologue + spec.snapshot if op.kind == Kind.COND]
    for n, op in enumerate(cond_ops):  # the reader's conditions, in the events' order
        if not op.cond.vars() <= env.keys():
            return "not-run", {}
        env[ORACLE] = p.conds[n] if n < len(p.conds) else 1
        if op.cond.eval(env):
            if op.action == "accept":
                break
            return f"{op.action}@{op.line}", {}
    snap = {f: env.get(f"snap.{f}", 0) for f in spec.covered}
    raw = {f"snap.{f}": vals.get(f"snap.{f}", 0) for f in spec.covered}
    return classify_fields(snap, spec.counters), raw


def replay2(spec: Spec, model: str, sections: int, runs: int, res: Exploration) -> ReplayResult:
    """model/replay.replay() for a format-2 protocol."""
    if res.witness is None:
        return ReplayResult(spec.name, model, "none")
    expected = res.witness[2].outcome
    p = plan2(spec, res)
    out = ReplayResult(spec.name, model, expected)
    for _ in range(runs):
        out.add(*judge2(spec, p, sections, run_plan2(p)))
    return out
