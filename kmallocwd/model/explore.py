"""The exhaustive explorer: every execution of K write sections against one
reader attempt, breadth first, so that the first torn execution found is
a shortest one (docs/model.md).

A state is (variant, the writer's executed events, its store buffer (x86),
the reader's executed events, the values its loads read, its attempt).
A thread may execute any of its events whose predecessors under the model
(events.Program.preds) have executed; so SC runs program order, x86 runs a
compiler's reordering of it through a FIFO store buffer, weak runs the
hardware's.  Reductions, each of which keeps every outcome the reader can
see:

* local steps are taken at once: a condition as soon as the loads it reads
  have executed (it only decides; the attempt ends if it fires), a fence or
  call as soon as it may execute;
* a writer store to a location the reader will not load again (in this
  attempt, or in a retry) is executed, and drained, at once: nobody can
  tell when it happened, and doing it early only enables more;
* once the writer is finished and its buffer drained, memory no longer
  changes, so the reader's remaining loads run in program order;
* states reached twice are explored once.

An execution, as counted, is what the reader can observe: the compiler
variant, the value every load read, and how the attempt ended.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field

from kmallocwd.model.events import READER, SC, WEAK, WRITER, X86, Event, Program, programs
from kmallocwd.protocols.cond import ORACLE
from kmallocwd.protocols.spec import (CONSISTENT, TORN_INSIDE, TORN_KINDS, TORN_MIXED,
                                      TORN_SEQ, Spec)

ACCEPTED = "accepted"
DEADLOCK = "deadlock"


# One step of a trace: (tid, index, kind, value, source): the thread (WRITER
# or READER), the event's index in its thread's list, exec / buffer / drain /
# cond / retry, the value read or written (a condition's result, a retry's
# attempt), and for a load the writer event it read from (-1: initial value).
Step = tuple[int, int, str, "int | None", int]


@dataclass
class Terminal:
    outcome: str  # consistent, torn-*, 'skip@LINE', 'retry@LINE', deadlock
    values: dict
    snapshot: dict | None = None  # sequence, start, gfp, order (accepted only)


@dataclass
class Exploration:
    spec: Spec
    model: str
    sections: int
    retries: int
    programs: list[Program]
    executions: int = 0
    positive: int = 0
    states: int = 0
    outcomes: Counter = field(default_factory=Counter)
    condition: tuple[str, ...] = ()
    witness: tuple[int, list[tuple], Terminal] | None = None  # (variant, steps, end)
    positive_by_variant: list[int] = field(default_factory=list)  # torn executions per program
    seconds: float = 0.0

    @property
    def sometimes(self) -> bool:
        return self.positive > 0

    @property
    def accepts(self) -> bool:
        """Whether some execution ends with the reader accepting a snapshot
        (consistent or torn); a reader that never does checks nothing."""
        return any(o == CONSISTENT or o in TORN_KINDS for o in self.outcomes)


def torn_condition(spec: Spec) -> tuple[str, ...]:
    """The torn kinds the file forbids (or, for a control, finds interesting)."""
    return tuple(k for k in TORN_KINDS if spec.outcome(k).expect in ("forbidden", "interesting"))


def classify_values(seq: int, start: int, gfp: int, order: int, incs: int) -> str:
    """The outcome of an accepted snapshot, from the sections its values
    come from (classify.py's rule: a sequence value 2k-1 or 2k belongs to
    section k; the initial slot is section 0)."""
    if incs:
        sec = -(-seq // incs)
        inside = seq % incs != 0
    else:  # no sequence at all: it vouches for nothing
        sec, inside = start, False
    if sec == start == gfp == order:
        return CONSISTENT
    if inside:
        return TORN_INSIDE
    if start == gfp == order:
        return TORN_SEQ
    return TORN_MIXED


def classify_fields(snap: dict[str, int], counters: dict[str, int]) -> str:
    """The outcome of an accepted snapshot of any struct: the section each
    covered field's value comes from (a field the section increments n
    times holds n*k after section k, and is inside section k between; a
    stamped field holds k), then classify_values()'s rule: one section is
    consistent; else a counter inside a section is torn-inside; else data
    fields that agree are torn-seq; else torn-mixed."""
    secs, inside, data = set(), False, set()
    for f, v in snap.items():
        n = counters.get(f)
        if n:
            secs.add(-(-v // n))
            inside |= v % n != 0
        else:
            secs.add(v)
            data.add(v)
    if len(secs) <= 1:
        return CONSISTENT
    if inside:
        return TORN_INSIDE
    if len(data) <= 1:
        return TORN_SEQ
    return TORN_MIXED


class _Compiled:
    """One program variant in the explorer's form."""

    def __init__(self, prog: Program, model: str, spec: Spec, retries: int,
                 store_buffer: bool = False):
        self.prog = prog
        self.w: list[Event] = prog.writer
        self.r: list[Event] = prog.reader
        self.wpred, self.rpred = prog.preds
        self.nw, self.nr = len(self.w), len(self.r)
        self.wall = (1 << self.nw) - 1
        self.rall = (1 << self.nr) - 1
        self.x86 = model == X86 and store_buffer  # a store buffer to explore
        self.retries = retries
        self.incs = prog.incs_per_section
        # location -> [(writer index, value)] in program (= coherence) order
        self.chain: dict[str, list[tuple[int, int]]] = {}
        for i, e in enumerate(self.w):
            if e.kind == "store":
                self.chain.setdefault(e.loc, []).append((i, e.value))
        for loc, ch in self.chain.items():
            self.chain[loc] = list(reversed(ch))
        # reader: the loads of each location; the snapshot's events
        self.rloads: dict[str, int] = {}
        self.snapmask = 0
        self.prologue_mask = 0
        for i, e in enumerate(self.r):
            if e.kind == "load":
                for loc in e.locs:
                    self.rloads[loc] = self.rloads.get(loc, 0) | (1 << i)
            if e.attempt == "snapshot":
                self.snapmask |= 1 << i
            else:
                self.prologue_mask |= 1 << i
        self.snap_locs = {loc for e in self.r if e.kind == "load" and e.attempt == "snapshot"
                          for loc in e.locs}
        # locks: partner of each acquire, and the acquire's mode
        self.lock_partner = ({}, {})
        for t, evs in enumerate((self.w, self.r)):
            for i, e in enumerate(evs):
                if e.kind == "lock":
                    for j in range(i + 1, len(evs)):
                        f = evs[j]
                        if f.kind == "unlock" and f.loc == e.loc and \
                                f.lockop.split("_")[0] == e.lockop.split("_")[0]:
                            self.lock_partner[t][i] = j
                            break
        # which events are moves (interleaving choices) and which local steps
        self.w_moves = [i for i, e in enumerate(self.w) if e.kind in ("store", "lock", "unlock")]
        self.w_local = [i for i, e in enumerate(self.w) if e.kind in ("store", "fence", "call")]
        self.r_moves = [i for i, e in enumerate(self.r) if e.kind in ("load", "lock", "unlock")]
        self.r_local = [i for i, e in enumerate(self.r) if e.kind in ("cond", "fence")]
        self.loads = [(i, e.var) for i, e in enumerate(self.r) if e.kind == "load"]
        self.r_loads = [i for i, _ in self.loads]
        wstores: dict[str, int] = {}
        for i, e in enumerate(self.w):
            if e.kind == "store":
                wstores[e.loc] = wstores.get(e.loc, 0) | 1 << i
        # per reader load: the writer's stores to its location
        self.rstores = [sum(wstores.get(loc, 0) for loc in set(e.locs)) if e.kind == "load"
                        else 0 for e in self.r]
        # per writer store: the reader's loads of its location
        self.wvis = [self.rloads.get(e.loc, 0) if e.kind == "store" else 0 for e in self.w]
        self.wsnap = [e.kind == "store" and e.loc in self.snap_locs for e in self.w]
        seqvar = spec.snapshot_sequence or "snap.sequence"
        self.seqvar = seqvar
        self.oracle = dict(prog.oracle)  # reader event -> what its expired() gives
        self.spec = spec
        self.covered = spec.covered_fields
        self.counters = spec.counters
        self.var_index = {e.var: i for i, e in enumerate(self.r) if e.kind == "load"}

    # -- memory ---------------------------------------------------------------
    def load(self, e: Event, rvals: tuple, drained: int) -> tuple[int, int]:
        """What the reader's load ``e`` reads (a copy[VAR & 1] load: from
        the copy VAR's value picks)."""
        loc = e.loc if e.alt is None else e.loc_for(self.env(rvals))
        return self.read(loc, drained)

    def read(self, loc: str, drained: int) -> tuple[int, int]:
        for i, v in self.chain.get(loc, ()):
            if drained >> i & 1:
                return v, i
        return 0, -1

    def visible(self, loc: str, rdone: int, attempt: int) -> bool:
        if self.rloads.get(loc, 0) & ~rdone:
            return True
        return attempt < self.retries and loc in self.snap_locs

    def holds(self, t: int, done: int) -> list[Event]:
        evs = self.w if t == WRITER else self.r
        out = []
        for i, j in self.lock_partner[t].items():
            if done >> i & 1 and not done >> j & 1:
                out.append(evs[i])
        return out

    def can_lock(self, t: int, e: Event, wdone: int, rdone: int) -> bool:
        other = self.holds(1 - t, rdone if t == WRITER else wdone)
        excl = not e.lockop.startswith("read")
        for h in other:
            if h.loc != e.loc:
                continue
            if excl or not h.lockop.startswith("read"):
                return False
        return True

    def env(self, rvals: tuple) -> dict:
        env = {}
        for i, var in self.loads:
            if rvals[i] is not None:
                env[var] = rvals[i]
        if self.seqvar in env:
            env["snap.sequence"] = env[self.seqvar]
        return env


def explore(spec: Spec, model: str, sections: int = 2, retries: int = 0,
            prune: bool = True, store_buffer: bool = False,
            progs: list[Program] | None = None) -> Exploration:
    """Explore every execution of ``spec`` under ``model``.

    ``store_buffer``: explore x86's store buffer step by step (buffer, then
    drain).  Off by default: with one writer that loads nothing another
    thread stores and a reader whose only stores are lock operations (which
    drain it), a TSO execution is the SC execution of the same compiled
    program with each store placed at its drain (docs/model.md), so the
    buffer adds no outcome; the tests check that on small K."""
    t0 = time.perf_counter()
    if progs is None:  # else: given (binverdict.py: the order a binary has)
        progs = programs(spec, model, sections, prune)
    comp = [_Compiled(p, model, spec, retries, store_buffer) for p in progs]
    res = Exploration(spec, model, sections, retries, progs, condition=torn_condition(spec))
    cond_set = set(res.condition)
    terminals: dict = {}
    parents: dict = {}
    settled: dict = {}  # a state before its local steps -> after them
    frontier = []
    for vi, c in enumerate(comp):
        st0 = (vi, 0, (), 0, (None,) * c.nr, 0)
        steps: list[Step] = []
        out = _settle(c, st0, steps)
        if isinstance(out, Terminal):
            _record(res, terminals, cond_set, (vi, out), None, steps, parents, vi)
            continue
        if out not in parents:
            parents[out] = (None, steps)
            frontier.append(out)
    while frontier:
        nxt = []
        for st in frontier:
            c = comp[st[0]]
            moved = False
            for step, st1 in _moves(c, st):
                moved = True
                hit = settled.get(st1)
                if hit is None:
                    steps = [step]
                    out = _settle(c, st1, steps)
                    settled[st1] = (out, steps)
                    if not isinstance(out, Terminal) and out in parents:
                        continue
                else:
                    out, steps = hit
                    if not isinstance(out, Terminal):
                        continue  # reached before, from this same raw state
                if isinstance(out, Terminal):
                    _record(res, terminals, cond_set, (st[0], out), st, steps, parents, st[0])
                elif out not in parents:
                    parents[out] = (st, steps)
                    nxt.append(out)
            if not moved:  # both threads blocked
                _record(res, terminals, cond_set, (st[0], Terminal(DEADLOCK, c.env(st[4]))),
                        st, [], parents, st[0])
        frontier = nxt
    res.states = len(parents)
    res.executions = len(terminals)
    res.positive = sum(1 for k, o in terminals.items() if o in cond_set)
    res.positive_by_variant = [0] * len(progs)
    for k, o in terminals.items():
        if o in cond_set:
            res.positive_by_variant[k[0]] += 1
    res.outcomes = Counter(terminals.values())
    res.seconds = time.perf_counter() - t0
    return res


def _record(res, terminals, cond_set, key, parent, steps, parents, vi) -> None:
    vi_, term = key
    outcome = term.outcome
    k = (vi_, tuple(sorted(term.values.items())), outcome)
    if k in terminals:
        return
    terminals[k] = outcome
    if outcome in cond_set and res.witness is None:
        chain = list(steps)
        st = parent
        while st is not None:
            p, s = parents[st]
            chain = list(s) + chain
            st = p
        res.witness = (vi, chain, term)


def _moves(c: _Compiled, st):
    """Every non-local step from a settled state.  A step is a tuple
    (thread, event index, kind, value, source): kind 'exec', 'buffer',
    'drain', 'cond' (value: 1 if it fired) or 'retry'."""
    vi, wdone, wbuf, rdone, rvals, att = st
    w, wpred = c.w, c.wpred
    for i in c.w_moves:
        if wdone >> i & 1 or wpred[i] & ~wdone:
            continue
        e = w[i]
        if e.kind == "store":
            if c.x86:
                yield ((WRITER, i, "buffer", e.value, -1),
                       (vi, wdone | 1 << i, wbuf + (i,), rdone, rvals, att))
            else:
                yield ((WRITER, i, "exec", e.value, -1),
                       (vi, wdone | 1 << i, wbuf, rdone, rvals, att))
        else:  # lock, unlock
            if c.x86 and wbuf:
                continue
            if e.kind == "lock" and not c.can_lock(WRITER, e, wdone, rdone):
                continue
            yield ((WRITER, i, "exec", None, -1), (vi, wdone | 1 << i, wbuf, rdone, rvals, att))
    drained = wdone
    if wbuf:
        i = wbuf[0]
        yield ((WRITER, i, "drain", w[i].value, -1), (vi, wdone, wbuf[1:], rdone, rvals, att))
        for i in wbuf:
            drained &= ~(1 << i)
    r, rpred = c.r, c.rpred
    for i in c.r_moves:
        if rdone >> i & 1 or rpred[i] & ~rdone:
            continue
        e = r[i]
        if e.kind == "load":
            v, src = c.load(e, rvals, drained)
            yield ((READER, i, "exec", v, src),
                   (vi, wdone, wbuf, rdone | 1 << i, rvals[:i] + (v,) + rvals[i + 1:], att))
        else:
            if e.kind == "lock" and not c.can_lock(READER, e, wdone, rdone):
                continue
            yield ((READER, i, "exec", None, -1), (vi, wdone, wbuf, rdone | 1 << i, rvals, att))


def _settle(c: _Compiled, st, steps: list):
    """Take every local step (see the module doc); a Terminal if the
    reader's attempt ended."""
    vi, wdone, wbuf, rdone, rvals, att = st
    r, rpred, w, wpred = c.r, c.rpred, c.w, c.wpred
    while True:
        changed = False
        # reader: conditions and fences
        for i in c.r_local:
            if rdone >> i & 1 or rpred[i] & ~rdone:
                continue
            e = r[i]
            rdone |= 1 << i
            changed = True
            if e.kind == "fence":
                steps.append((READER, i, "exec", None, -1))
                continue
            env = c.env(rvals)
            if i in c.oracle:
                env[ORACLE] = c.oracle[i]
            fired = e.op.cond.eval(env)
            steps.append((READER, i, "cond", int(bool(fired)), -1))
            if fired:
                act = e.op.action
                if act == "skip":
                    return Terminal(f"skip@{e.line}", env)
                if act == "accept":
                    return _accept(c, rvals)
                if att >= c.retries:
                    return Terminal(f"retry@{e.line}", env)
                att += 1
                rdone &= ~c.snapmask
                rvals = tuple(None if c.snapmask >> j & 1 else v for j, v in enumerate(rvals))
                steps.append((READER, i, "retry", att, -1))
                break
        if rdone == c.rall:
            return _accept(c, rvals)
        # writer: fences, calls, stores nobody will read
        for i in c.w_local:
            if wdone >> i & 1 or wpred[i] & ~wdone:
                continue
            e = w[i]
            if e.kind == "store":
                if c.wvis[i] & ~rdone or (att < c.retries and c.wsnap[i]):
                    continue  # visible: a move, not a local step
                wdone |= 1 << i
                if c.x86:
                    wbuf = wbuf + (i,)
                    steps.append((WRITER, i, "buffer", e.value, -1))
                else:
                    steps.append((WRITER, i, "exec", e.value, -1))
            else:
                if c.x86 and wbuf and e.fence == "smp_mb":
                    continue
                wdone |= 1 << i
                steps.append((WRITER, i, "exec", None, -1))
            changed = True
        while wbuf and not c.visible(w[wbuf[0]].loc, rdone, att):
            steps.append((WRITER, wbuf[0], "drain", w[wbuf[0]].value, -1))
            wbuf = wbuf[1:]
            changed = True
        # reader: a load of a location the writer will not store to again
        # reads a fixed value, so when it runs does not matter
        if not wbuf:
            for i in c.r_loads:
                if rdone >> i & 1 or rpred[i] & ~rdone or c.rstores[i] & ~wdone:
                    continue
                v, src = c.load(r[i], rvals, wdone)
                rvals = rvals[:i] + (v,) + rvals[i + 1:]
                rdone |= 1 << i
                steps.append((READER, i, "exec", v, src))
                changed = True
        if changed:
            continue
        if wdone != c.wall or wbuf:
            return (vi, wdone, wbuf, rdone, rvals, att)
        # a finished writer: memory is fixed, the reader runs in program order
        for i in c.r_moves:
            if rdone >> i & 1 or rpred[i] & ~rdone:
                continue
            e = r[i]
            rdone |= 1 << i
            if e.kind == "load":
                v, src = c.load(e, rvals, wdone)
                rvals = rvals[:i] + (v,) + rvals[i + 1:]
                steps.append((READER, i, "exec", v, src))
            else:
                steps.append((READER, i, "exec", None, -1))
            changed = True
            break
        if not changed:
            return Terminal(DEADLOCK, c.env(rvals))


def _accept(c: _Compiled, rvals: tuple) -> Terminal:
    env = c.env(rvals)
    if c.spec.format != 1:
        snap = {f: env.get(f"snap.{f}", 0) for f in c.covered}
        return Terminal(classify_fields(snap, c.counters), env, snap)
    snap = {"sequence": env.get("snap.sequence", 0), "start": env.get("snap.start", 0),
            "gfp": env.get("snap.gfp", 0), "order": env.get("snap.order", 0)}
    outcome = classify_values(snap["sequence"], snap["start"], snap["gfp"], snap["order"],
                              c.incs)
    return Terminal(outcome, env, snap)
