"""Replay a counterexample on real threads and a real slot (csrc/replay.c).

The trace's steps run in the trace's order: each thread executes its own
steps and hands over to the next through a step counter (acquire/release),
so a reordering the model found runs as the reordered program text.  The
values are stress's: section k writes ``start = classify.stamp(k, q)`` and
the request ``gfp.STRESS_SEQ[q]`` (gfp and order), and the emulator's
``witness`` (the mix of the section's end sequence and fields) right after
the section's last data store; the reader reads the witness right after the
copy's last load, and ``classify.classify`` names the snapshot, exactly as
stress does.  A replay reproduces its tear when the reader accepts and the
classifier names the torn kind the model found.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from kmallocwd.stress.classify import classify, stamp, witness
from kmallocwd.gfp import STRESS_SEQ, Request
from kmallocwd.model.events import READER, WRITER
from kmallocwd.model.explore import Exploration, explore
from kmallocwd.model.report import Row, trace_rows
from kmallocwd.protocols.spec import Kind, Spec

FIELDS = {"sequence": 0, "valid": 1, "dumped": 2, "start": 3, "order": 4, "gfp": 5,
          "witness": 6}
FENCES = {"barrier": 0, "smp_mb": 1, "smp_wmb": 2, "smp_rmb": 3}
LOAD, STORE, FENCE, NOP = 0, 1, 2, 3
TIMEOUT_S = 20.0


def section_requests(sections: int) -> list[int]:
    """For each section 1..K, an index q into STRESS_SEQ: pairwise different
    gfp and order, order never 0 (the initial slot's), so that a torn kind
    is told apart by values as the model tells it by sections."""
    out: list[int] = []
    used_g, used_o = {0}, {0}
    for q, r in enumerate(STRESS_SEQ):
        if r.gfp not in used_g and r.order not in used_o and q < 256:
            out.append(q)
            used_g.add(r.gfp)
            used_o.add(r.order)
    if len(out) < sections:  # pragma: no cover - K is at most 4
        raise ValueError(f"replay supports at most {len(out)} sections")
    return out[:sections]


@dataclass
class Plan:
    steps: list[tuple[int, int, int, int]]  # thread, kind, field, value
    rows: list[Row | None]  # the trace row of each step (None: witness)
    loads: dict[int, str]  # step index -> reader variable
    witness_load: int  # step index of the reader's witness load
    reqs: list[Request]
    qs: list[int]
    incs: int


@dataclass
class ReplayResult:
    protocol: str
    model: str
    expected: str
    runs: int = 0
    reproduced: int = 0
    outcomes: dict = field(default_factory=dict)
    last_snapshot: dict | None = None

    @property
    def ok(self) -> bool:
        return self.runs > 0 and self.reproduced == self.runs

    def add(self, got: str, snapshot: dict) -> None:
        """One run's outcome and the snapshot it read."""
        self.runs += 1
        self.outcomes[got] = self.outcomes.get(got, 0) + 1
        self.last_snapshot = snapshot
        if got == self.expected:
            self.reproduced += 1


def c_value(loc: str, v: int, qs: list[int]) -> int:
    if loc == "start":
        return 0 if v == 0 else stamp(v, qs[v - 1])
    if loc == "gfp":
        return 0 if v == 0 else STRESS_SEQ[qs[v - 1]].gfp
    if loc == "order":
        return 0 if v == 0 else STRESS_SEQ[qs[v - 1]].order
    return v


def plan(res: Exploration) -> Plan:
    """The counterexample as the interpreter's steps."""
    rows = trace_rows(res)
    prog = res.programs[res.witness[0]]
    incs = prog.incs_per_section
    qs = section_requests(res.sections)
    copy_loads = sum(1 for e in prog.reader if e.kind == "load" and e.var.startswith("snap."))
    steps: list[tuple[int, int, int, int]] = []
    srows: list[Row | None] = []
    loads: dict[int, str] = {}
    stored: dict[int, set] = {}
    copied = 0
    wl = -1
    for r in rows:
        e = r.event
        if r.tid == WRITER and e.kind == "store" and r.kind in ("store", "drain"):
            steps.append((WRITER, STORE, FIELDS[e.loc], c_value(e.loc, e.value, qs)))
            srows.append(r)
            if e.loc in ("start", "gfp", "order"):
                got = stored.setdefault(e.section, set())
                got.add(e.loc)
                if got == {"start", "gfp", "order"}:
                    k = e.section
                    steps.append((WRITER, STORE, FIELDS["witness"],
                                  witness(k * incs, c_value("start", k, qs),
                                          c_value("order", k, qs), c_value("gfp", k, qs))))
                    srows.append(None)
        elif e.kind == "fence":
            steps.append((r.tid, FENCE, 0, FENCES[e.fence]))
            srows.append(r)
        elif e.kind == "load" and r.tid == READER:
            loads[len(steps)] = e.var
            steps.append((READER, LOAD, FIELDS[e.loc], 0))
            srows.append(r)
            if r.copy:
                copied += 1
                if copied == copy_loads:
                    wl = len(steps)
                    steps.append((READER, LOAD, FIELDS["witness"], 0))
                    srows.append(None)
        elif e.kind in ("lock", "unlock"):
            steps.append((r.tid, NOP, 0, 0))  # the trace's order already is the exclusion
            srows.append(r)
    return Plan(steps, srows, loads, wl, list(STRESS_SEQ), qs, incs)


def run_threads(body, counter, n: int, stop, lib) -> None:
    """The writer's and the reader's body(thread) on threads of their own,
    handing over step by step; RuntimeError if they have not done all ``n``
    steps within TIMEOUT_S (both are then stopped)."""
    ths = [threading.Thread(target=body, args=(t,), daemon=True) for t in (WRITER, READER)]
    for th in ths:
        th.start()
    for th in ths:
        th.join(TIMEOUT_S)
    if any(th.is_alive() for th in ths) or counter[0] != n:
        lib.kmw_request_stop(stop)
        for th in ths:
            th.join(5)
        raise RuntimeError(f"replay stalled at step {counter[0]} of {n}")


def run_plan(p: Plan) -> tuple[dict[str, int], int]:
    """Execute the steps once on two threads; the reader's loaded values by
    variable (raw C values) and the witness it read."""
    from kmallocwd._core import ffi, lib
    n = len(p.steps)
    csteps = ffi.new("struct kmw_step[]", n)
    for i, (t, k, f, v) in enumerate(p.steps):
        csteps[i].thread, csteps[i].kind, csteps[i].field, csteps[i].value = t, k, f, v
    counter = ffi.new("uint32_t *", 0)
    loaded = ffi.new("uint64_t[]", max(n, 1))
    stop = ffi.new("int *", 0)
    slot = lib.kmw_slots_alloc(1)
    if slot == ffi.NULL:  # pragma: no cover
        raise MemoryError("kmw_slots_alloc")
    try:
        slot.witness = witness(0, 0, 0, 0)  # the initial slot is section 0
        run_threads(lambda t: lib.kmw_replay_thread(slot, csteps, n, t, counter, loaded, stop),
                    counter, n, stop, lib)
        vals = {var: int(loaded[i]) for i, var in p.loads.items()}
        wit = int(loaded[p.witness_load]) if p.witness_load >= 0 else 0
        return vals, wit
    finally:
        lib.kmw_slots_free(slot)


def judge(spec: Spec, p: Plan, vals: dict[str, int], wit: int) -> tuple[str, dict]:
    """Did the reader accept, and what does the classifier call the snapshot?"""
    back = {}
    for k in range(1, len(p.qs) + 1):
        for loc in ("start", "gfp", "order"):
            back[(loc, c_value(loc, k, p.qs))] = k
    env = {}
    for op in spec.prologue + spec.snapshot:
        if op.kind == Kind.LOAD and op.var in vals:
            env[op.var] = back.get((op.field, vals[op.var]), vals[op.var])
    for var, v in vals.items():
        if var.startswith("snap."):
            env[var] = back.get((var[5:], v), v)
    seqvar = spec.snapshot_sequence or "snap.sequence"
    if seqvar in env:
        env["snap.sequence"] = env[seqvar]
    for op in spec.prologue + spec.snapshot:
        if op.kind == Kind.COND:
            if not op.cond.vars() <= env.keys():
                return "not-run", {}
            if op.cond.eval(env):
                if op.action == "accept":
                    break
                return f"{op.action}@{op.line}", {}
    raw = {"sequence": vals.get(seqvar, 0), "start": vals.get("snap.start", 0),
           "order": vals.get("snap.order", 0), "gfp": vals.get("snap.gfp", 0), "witness": wit}
    out = classify(raw["sequence"], raw["start"], raw["order"], raw["gfp"], wit, p.reqs)
    return out, raw


def replay(spec: Spec, model: str, sections: int = 2, runs: int = 1,
           res: Exploration | None = None) -> ReplayResult:
    """Replay the shortest counterexample of ``spec`` under ``model``
    ``runs`` times; ReplayResult.ok when every run reproduced its tear."""
    res = res or explore(spec, model, sections)
    if spec.format != 1:  # the declared struct, over a byte buffer
        from kmallocwd.model.replay2 import replay2
        return replay2(spec, model, sections, runs, res)
    if res.witness is None:
        return ReplayResult(spec.name, model, "none")
    expected = res.witness[2].outcome
    p = plan(res)
    out = ReplayResult(spec.name, model, expected)
    for _ in range(runs):
        vals, wit = run_plan(p)
        out.add(*judge(spec, p, vals, wit))
    return out
