"""A verdict on the compiled binary: can the code stress runs tear on x86?

The model checker's x86 model is x86-TSO plus what a compiler may do to
plain accesses (reorder them, merge the sequence++ pair).  Whether a given
binary tears depends on what its compiler did: this module reads the order
of the slot accesses from the object code stress runs (objorder.py: the
emulator's writer loop and the reader's scan), puts the protocol's events in
that order, and explores them under x86-TSO with no compiler freedom left
(every event in the compiled program order; with one writer that loads
nothing the reader stores, that is the SC exploration of the compiled
program, docs/model.md).  Then either "can tear on x86 as compiled", or
"only a compiler's freedom allows it: this binary cannot tear on x86".

x86-64 object code only; anything it cannot map (another architecture, no
objdump, a load it cannot place) gives no verdict rather than a guess."""

from __future__ import annotations

import ctypes
import os
import platform
import re
from dataclasses import dataclass, field

import kmallocwd.stress.objorder as objorder
from kmallocwd.model.events import (SC, Event, Program, preds_for, reader_events,
                                    writer_events)
from kmallocwd.protocols.spec import Spec, SpecError

CAN_TEAR = "can tear on x86 as compiled"
CANNOT_TEAR = "only a compiler's freedom allows it: this binary cannot tear on x86"
SOUND = "cannot tear on x86 as compiled"
UNKNOWN = "the compiled binary could not be read"
_COPY = ("start", "order", "gfp")
_BARRIERS = ("fence", "lock", "unlock", "call")
_MAX_STEPS = 200_000


@dataclass
class BinaryVerdict:
    """What the binary allows on x86 (``can_tear`` None: not read)."""

    protocol: str
    build: str
    can_tear: bool | None
    model_x86: bool | None = None  # the x86 model (with compiler freedom) says it can
    writer: list[str] = field(default_factory=list)  # the writer's events, compiled order
    reader: list[str] = field(default_factory=list)
    why: str = ""

    @property
    def word(self) -> str:
        if self.can_tear is None:
            return "unread"
        if self.can_tear:
            return "tears"
        return "cannot" if self.model_x86 else "sound"

    @property
    def line(self) -> str:
        if self.can_tear is None:
            return f"{UNKNOWN} ({self.why})"
        if self.can_tear:
            return f"the {self.build} build {CAN_TEAR}"
        if self.model_x86:
            return f"the {self.build} build: {CANNOT_TEAR}"
        return f"the {self.build} build {SOUND}"

    def to_dict(self) -> dict:
        return {"protocol": self.protocol, "build": self.build, "can_tear": self.can_tear,
                "model_x86_sometimes": self.model_x86, "verdict": self.line,
                "writer_order": self.writer, "reader_order": self.reader}


class _Unread(Exception):
    pass


# ---- where the module is ---------------------------------------------------------

class _DlInfo(ctypes.Structure):
    _fields_ = [("dli_fname", ctypes.c_char_p), ("dli_fbase", ctypes.c_void_p),
                ("dli_sname", ctypes.c_char_p), ("dli_saddr", ctypes.c_void_p)]


def module_path(ffi, lib) -> str:
    """The shared object a cffi ``lib`` was loaded from (dladdr)."""
    addr = int(ffi.cast("uintptr_t", ffi.addressof(lib, "kmw_build_name")))
    libc = ctypes.CDLL(None)
    info = _DlInfo()
    if not libc.dladdr(ctypes.c_void_p(addr), ctypes.byref(info)) or not info.dli_fname:
        raise _Unread("dladdr found no module")
    path = info.dli_fname.decode()
    # a module from the compile cache is loaded through the fd of the file that
    # was verified (/proc/self/fd/N): objdump, another process, reads that same
    # file through this process's /proc entry
    if path.startswith("/proc/self/"):
        path = f"/proc/{os.getpid()}/" + path[len("/proc/self/"):]
    return path


# ---- the reader's path -------------------------------------------------------------

_REG64 = {}
for _n in "abcd":
    for _a in (f"r{_n}x", f"e{_n}x", f"{_n}x", f"{_n}l"):
        _REG64[_a] = f"r{_n}x"
for _n in ("si", "di", "bp", "sp"):
    for _a in (f"r{_n}", f"e{_n}", _n, f"{_n}l"):
        _REG64[_a] = f"r{_n}"
for _i in range(8, 16):
    for _s in ("", "d", "w", "b"):
        _REG64[f"r{_i}{_s}"] = f"r{_i}"


def _reg(op: str) -> str | None:
    if not op.startswith("%"):
        return None
    return _REG64.get(op[1:])


def _written(mnem: str, ops: list[str]) -> str | None:
    if not ops or mnem.startswith(("cmp", "test", "push", "j", "call", "ret", "nop", "pause")):
        return None
    if mnem == "xchg" and len(ops) == 2 and ops[0] == ops[1]:
        return None  # a two-byte nop
    return _reg(ops[-1])


def _ended(loads: tuple, looped: bool, best: tuple | None) -> tuple | None:
    """A finished path: its loads up to the emulator's post-read load of
    the sequence (the last load of the sequence alone, after the copy)."""
    copy_at = [k for k, fs in enumerate(loads) if set(fs) & set(_COPY)]
    if not copy_at or not set(_COPY) <= {f for k in copy_at for f in loads[k]}:
        return best
    post = [k for k, fs in enumerate(loads) if fs == ("sequence",) and k > max(copy_at)]
    if not post:
        return best
    cand = (0 if looped else 1, post[-1] + 1, loads[:post[-1] + 1])
    return cand if best is None or cand[:2] < best[:2] else best


def reader_path(insns) -> list[tuple[str, ...]]:
    """The slot loads (their fields) of one read that the reader accepts
    without a retry: from the scan's first slot load to the emulator's
    post-read load of the sequence; of the paths that go on to the next
    read, the one with the fewest loads."""
    bases = set()
    for _, mnem, ops in insns:
        for i, op in enumerate(ops):
            m = objorder._MEM.match(op)
            if m and m.group(1) in ("0x4", "0x5") and objorder._width(mnem, ops, i) <= 2:
                bases.add(_reg(m.group(2)))
    bases.discard(None)
    index = {a: i for i, (a, _, _) in enumerate(insns)}
    best: tuple | None = None
    steps = 0
    # (instruction index, loads so far, alive bases, visited, recording)
    # rec: the index of the first load recorded (-1: none yet); before: the
    # instructions run before it (the scan's loop, not the read's retries)
    stack = [(0, (), {b: 0 for b in bases}, frozenset(), -1, frozenset())]
    while stack and steps < _MAX_STEPS:
        i, loads, alive, seen, rec, before = stack.pop()
        while True:
            steps += 1
            if i >= len(insns) or i in seen:
                # on to the next read (not back into this one's retry loop)
                if rec >= 0 and i in before:
                    best = _ended(loads, True, best)
                break
            seen = seen | {i}
            addr, mnem, ops = insns[i]
            fields = None
            if not mnem.startswith(("lea", "nop")):
                for k, op in enumerate(ops):
                    m = objorder._MEM.match(op)
                    if not m or _reg(m.group(2)) not in alive:
                        continue
                    off = (int(m.group(1), 0) if m.group(1) else 0) + alive[_reg(m.group(2))]
                    if off not in objorder.FIELDS:
                        continue
                    size = objorder._width(mnem, ops, k)
                    fields = tuple(f for o, (f, n) in objorder.FIELDS.items()
                                   if off <= o < off + size)
            if fields and rec < 0:
                rec, before = i, seen - {i}
            if fields:
                loads = loads + (fields,)
            w = _written(mnem, ops)
            if w is not None:
                src = _reg(ops[0]) if mnem in ("mov", "movq") and len(ops) == 2 else None
                lm = objorder._MEM.match(ops[0]) if mnem == "lea" and len(ops) == 2 else None
                if src in alive:  # a copy of the slot pointer
                    alive = {**alive, w: alive[src]}
                elif lm and _reg(lm.group(2)) in alive:  # a pointer to a field
                    alive = {**alive, w: alive[_reg(lm.group(2))]
                             + (int(lm.group(1), 0) if lm.group(1) else 0)}
                elif rec >= 0 and w in alive:
                    alive = {r: o for r, o in alive.items() if r != w}
            if mnem.startswith("ret"):
                if rec >= 0:
                    best = _ended(loads, False, best)
                break
            target = None
            tm = re.match(r"^([0-9a-f]+)$", ops[0]) if ops else None
            if mnem.startswith("j") and tm:
                target = index.get(int(tm.group(1), 16))
            if mnem.startswith("jmp"):
                if target is None:
                    break
                i = target
                continue
            if mnem.startswith("j") and target is not None:
                stack.append((target, loads, alive, seen, rec, before))
            i += 1
    if best is None:
        raise _Unread("no accepting read path found in the reader's scan")
    return list(best[2])


# ---- the events in compiled order -------------------------------------------------

def _segments(evs: list[Event]) -> list[list[int]]:
    out, cur = [], []
    for i, e in enumerate(evs):
        if e.kind in _BARRIERS:
            if cur:
                out.append(cur)
            out.append([i])
            cur = []
        else:
            cur.append(i)
    if cur:
        out.append(cur)
    return out


def _nth_positions(compiled: list[tuple[str, ...]], fld: str) -> list[int]:
    return [p for p, fs in enumerate(compiled) if fld in fs]


def writer_in_compiled_order(evs: list[Event], compiled: list[tuple[str, ...]]) -> list[Event]:
    """Each section's stores in the order the writer loop stores them
    (never across a compiler barrier, which the compiler cannot cross)."""
    out: list[Event] = []
    seq_pos = _nth_positions(compiled, "sequence")
    if not seq_pos:
        raise _Unread("no sequence store in the writer loop")
    for k in sorted({e.section for e in evs}):
        sec = [e for e in evs if e.section == k]
        seq_seen = 0
        keys: dict[int, float] = {}
        for i, e in enumerate(sec):
            if e.kind != "store":
                continue
            if e.loc == "sequence":
                keys[i] = seq_pos[min(seq_seen, len(seq_pos) - 1)] + seq_seen * 1e-3
                seq_seen += 1
            elif e.loc in ("valid",):
                keys[i] = float("inf")  # valid++ / valid--: where it is written
            else:
                pos = _nth_positions(compiled, e.loc)
                if not pos:
                    raise _Unread(f"no store of {e.loc} in the writer loop")
                keys[i] = pos[0]
        for seg in _segments(sec):
            out.extend(sec[i] for i in sorted(seg, key=lambda i: (keys.get(i, 0.0), i)))
    return out


def _cond_vars(e: Event, spec: Spec) -> set[str]:
    vs = set(e.op.cond.vars())
    if "snap.sequence" in vs and spec.snapshot_sequence:
        vs.add(spec.snapshot_sequence)
    return vs


def reader_in_compiled_order(evs: list[Event], compiled: list[tuple[str, ...]],
                             spec: Spec) -> list[Event]:
    """The reader's loads in the order the scan loads them (never across a
    fence or a lock operation); each condition right after the last load it
    reads, the decision to accept after every load."""
    # the emulator's own loads of the sequence, before and after the read
    # (volatile: the first and the last of the sequence alone)
    alone = [k for k, fs in enumerate(compiled) if fs == ("sequence",)]
    if len(alone) < 2:
        raise _Unread("the emulator's loads of the sequence are not in the scan's code")
    inner = [fs for k, fs in enumerate(compiled) if k not in (alone[0], alone[-1])]
    keys: dict[int, float] = {}
    taken: dict[str, int] = {}
    for i, e in enumerate(evs):
        if e.kind != "load":
            continue
        pos = _nth_positions(inner, e.loc)
        n = taken.get(e.loc, 0)
        if n >= len(pos):
            if e.access != "plain" or not n:
                raise _Unread(f"the reader's load {n + 1} of {e.loc} is not in the scan's code")
            # GCC reused an earlier plain load's value: read right after it
            # (every execution of the merged load is one of these)
            keys[i] = pos[n - 1] + 1e-3 * n
            continue
        keys[i] = pos[n]
        taken[e.loc] = n + 1
    var_key = {e.var: keys[i] for i, e in enumerate(evs) if e.kind == "load"}
    out: list[Event] = []
    for seg in _segments(evs):
        prev = -1.0
        seg_keys: dict[int, float] = {}
        for i in seg:
            e = evs[i]
            if e.kind == "load":
                seg_keys[i] = keys[i]
            elif e.kind == "cond":
                if e.op.action == "accept":
                    seg_keys[i] = float("inf")
                else:
                    mine = [var_key[v] for v in _cond_vars(e, spec)
                            if v in var_key and any(evs[j].var == v for j in seg)]
                    seg_keys[i] = (max(mine) if mine else prev) + 0.5
            else:
                seg_keys[i] = prev + 0.5
            prev = seg_keys[i] if seg_keys[i] != float("inf") else prev
        out.extend(evs[i] for i in sorted(seg, key=lambda i: (seg_keys[i], i)))
    return out


def _describe(evs: list[Event]) -> list[str]:
    return [e.text for e in evs if e.kind != "call"]


def tears_in_order(spec: Spec, writer: list[tuple[str, ...]], reader: list[tuple[str, ...]],
                   sections: int = 2) -> tuple[bool, list[Event], list[Event]]:
    """Can ``spec`` tear on x86-TSO when its writer stores and its reader
    loads the slot's fields in these orders (each entry: the fields one
    instruction accesses; the reader's from the emulator's load of the
    sequence before the read to the one after it), with no compiler
    freedom left?  Also the two threads' events in that order."""
    from kmallocwd.model import explore

    w = writer_in_compiled_order(writer_events(spec, sections), writer)
    r = reader_in_compiled_order(reader_events(spec), reader, spec)
    prog = Program(spec, SC, sections, w, r,
                   incs_per_section=sum(1 for op in spec.section if op.kind == "inc"))
    prog.preds = (preds_for(SC, w, spec), preds_for(SC, r, spec))
    return explore(spec, SC, sections, progs=[prog]).sometimes, w, r


_CACHE: dict = {}


def binary_verdict(spec: Spec, build: str = "kernel", sections: int = 2,
                   broken: list[str] | None = None) -> BinaryVerdict:
    """The verdict on the binary stress runs for ``spec`` in ``build``;
    ``broken``: the models under which the model checker finds a tear, when
    the caller has them."""
    key = (spec.name, spec.path, spec.source, build, sections)
    if key in _CACHE:
        return _CACHE[key]
    from kmallocwd.model import verdicts
    from kmallocwd.protocols.backend import backend

    v = BinaryVerdict(spec.name, build, None)
    try:
        if platform.machine() not in ("x86_64", "AMD64"):
            raise _Unread(f"reads x86-64 object code, this is {platform.machine()}")
        be = backend(spec, build)
        funcs = objorder.disassemble(module_path(be.ffi, be.lib))
        wcomp = [fs for _, fs in objorder.writer_stores(funcs, spec.ident)]
        rcomp = reader_path(objorder.function(funcs, f"{spec.ident}_reader_scan"))
        v.can_tear, w, r = tears_in_order(spec, wcomp, rcomp, sections)
        v.model_x86 = ("x86" in broken if broken is not None
                       else verdicts(spec)["x86"] == "sometimes")
        v.writer, v.reader = _describe(w), _describe(r)
    except (_Unread, objorder.ObjdumpError, KeyError, OSError, ImportError, SpecError) as exc:
        v.why = str(exc) or type(exc).__name__
    _CACHE[key] = v
    return v
