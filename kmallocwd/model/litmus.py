"""A protocol as a C litmus test for herd7 with the Linux-kernel memory
model (tools/memory-model), in that directory's litmus-test format:

    C name
    { initial state }
    P0(int *sequence, ...) { the writer: K sections }
    P1(int *sequence, ...) { the reader: one attempt }
    exists (the snapshot was accepted and is torn)

How the protocol maps (docs/model.md, "The litmus export"):

* Plain accesses are written READ_ONCE()/WRITE_ONCE() with a comment.  The
  LKMM gives a racy plain access no meaning beyond a data-race flag (newer
  versions) or does not know plain accesses at all (the first ones), so a
  herd7 verdict on plain accesses is either undefined or about marked ones.
  What herd7 checks is therefore the hardware half, our ``weak`` model; the
  compiler's freedom with plain accesses is our ``x86`` model's business.
* ``sequence++`` is the writer's own counter: it stores the next value
  (1, 2, 3, ...), a constant, since no one else writes it.  The writer's
  ``if (!valid)`` always reads its own 0 and is left out.
* ``barrier()`` orders nothing in the LKMM's hardware view: a comment.
* ``read_lock``/``write_lock`` become ``spin_lock`` on the same lock: with
  one caller and one watchdog the read side is never shared, so the rwlock
  excludes exactly as a spinlock does (the LKMM has no rwlocks).
* The reader's ``skip``/``retry`` end the attempt with no snapshot: the rest
  of the attempt is the body of an ``if``; accepting sets ``r_ok = 1`` and
  computes which section each value comes from, so the ``exists`` clause is
  the torn condition.
* A two-copy field F (the latch's) is two locations, F0 and F1.  The
  reader's ``copy[VAR & 1]`` computes ``r_idx_VAR = VAR & 1`` and
  ``r_dep_VAR = r_idx_VAR ^ r_idx_VAR`` (0, computed from VAR's value), and
  loads ``*(F0 + r_dep_VAR)`` or ``*(F1 + r_dep_VAR)`` as ``r_idx_VAR`` says:
  every copied load's address depends on the value VAR's load returned, so
  herd7 sees the address dependency (``addr``) the latch relies on, as in
  the kernel's ``&latch->data[seq & 1]``.  (An ``int F[2]`` array would be
  closer to the C, but herd7 gives ``F + 1`` no initial write, so a load of
  it could never read the initial 0.)
"""

from __future__ import annotations

from kmallocwd.model.events import STRUCT_ORDER, SYMBOLIC
from kmallocwd.model.explore import torn_condition
from kmallocwd.protocols.spec import TORN_INSIDE, TORN_MIXED, TORN_SEQ, Expr, Kind, Op, Spec

LOCS = ("sequence", "valid", "dumped", "start", "order", "gfp")


def _reg(var: str) -> str:
    return var.replace(".", "_")


def _num(e: Expr, seqreg: str) -> str:
    """An expression as a number."""
    if e.op == "var":
        v = e.args[0]
        return seqreg if v == "snap.sequence" else _reg(v)
    if e.op == "int":
        return str(e.args[0])
    return _bool(e, seqreg)


def _bool(e: Expr, seqreg: str) -> str:
    """An expression as 0 or 1 (herd7's C has &, |, ==, != but no ! && ||)."""
    o, a = e.op, e.args
    if o in ("var", "int"):
        return f"({_num(e, seqreg)} != 0)"
    if o == "not":
        return f"({_bool(a[0], seqreg)} == 0)"
    if o in ("eq", "ne"):
        sym = "==" if o == "eq" else "!="
        return f"({_num(a[0], seqreg)} {sym} {_num(a[1], seqreg)})"
    if o == "odd":
        return f"(({_num(a[0], seqreg)} & 1) == 1)"
    if o == "even":
        return f"(({_num(a[0], seqreg)} & 1) == 0)"
    if o in ("and", "or"):
        sym = "&" if o == "and" else "|"
        return f"({_bool(a[0], seqreg)} {sym} {_bool(a[1], seqreg)})"
    if o == "expired":
        return "1"  # the stall filter: true (the attempt goes on to accept)
    raise ValueError(o)


def _locs(spec: Spec) -> list[str]:
    """The shared locations: format 1's struct, or the declared fields (a
    two-copy field F as F0 and F1)."""
    if spec.format == 1:
        return list(LOCS)
    return [f"{f.name}{i}" if f.copies == 2 else f.name
            for f in spec.fields for i in range(f.copies)]


def _idx(var: str) -> str:
    """The register holding ``var & 1``, the latch's copy index."""
    return f"r_idx_{_reg(var)}"


def _dep(var: str) -> str:
    """The register holding 0 computed from ``var``: the address dependency."""
    return f"r_dep_{_reg(var)}"


def _comment(op: Op) -> str:
    return f"  /* line {op.line}: {op.text} */" if op.line else ""


def _store(fld: str, value: str, access: str, note: str) -> str:
    if access == "release":
        return f"smp_store_release({fld}, {value});{note}"
    plain = "" if access != "plain" else " /* plain */"
    return f"WRITE_ONCE(*{fld}, {value});{plain}{note}"


def _load(reg: str, fld: str, access: str) -> str:
    if access == "acquire":
        return f"{reg} = smp_load_acquire({fld});"
    plain = "" if access != "plain" else " /* plain */"
    return f"{reg} = READ_ONCE(*{fld});{plain}"


def _lock(op: Op) -> tuple[str, str]:
    name = f"lk_{op.lock}"
    fn = "spin_unlock" if op.lockop.endswith("unlock") else "spin_lock"
    note = "" if op.lockop.startswith("spin") else f" /* {op.lockop}: one caller, one watchdog */"
    return name, f"{fn}({name});{note}"


def not_exportable(spec: Spec) -> str | None:
    """Why ``spec`` cannot be written as a litmus test (None: it can; every
    protocol file can now, the latch's indexed copy included)."""
    return None


def ablation_variants(spec: Spec) -> list[tuple[str, Spec]]:
    """Each ordering annotation's ablated variant, in ``kmallocwd ablate``'s
    row order (Spec.ordering_ops(), Spec.without()), with a label naming the
    annotation by its line: (label, variant)."""
    out = []
    for where, index, op in spec.ordering_ops():
        change = ("without" if op.kind in (Kind.FENCE, Kind.LOCK) else "plain")
        text = op.text.split("#")[0].strip()
        what = op.fence + "()" if op.kind == Kind.FENCE else text
        out.append((f"line {op.line} {what} ({where} {index}): {change}",
                    spec.without(where, index)))
    return out


def render(spec: Spec, sections: int = 2) -> str:
    """The litmus test (text) for ``spec`` with ``sections`` write sections."""
    name = f"kmallocwd-{spec.name}-K{sections}"
    locks = sorted({op.lock for op in spec.section + spec.prologue + spec.snapshot
                    if op.kind == Kind.LOCK})
    why = not_exportable(spec)
    if why:
        raise ValueError(why)
    params = ", ".join([f"int *{loc}" for loc in _locs(spec)]
                       + [f"spinlock_t *lk_{lk}" for lk in locks])
    out = [f"C {name}", "",
           f"(* kmallocwd check's litmus export of {spec.name}: {sections} write "
           "section(s) by",
           " * P0 (start_memalloc_timer()/stop_memalloc_timer()) against one attempt of",
           " * P1 (is_stalling_task()'s reader).  Section k stores NOW_k = GFP_k = ORDER_k = k"
           + ("." if spec.format == 1 else " (and STAMP_k = k)."),
           " * Plain accesses are written READ_ONCE()/WRITE_ONCE() (marked /* plain */):",
           " * the LKMM gives racy plain accesses no meaning, so this checks the hardware",
           " * ordering (kmallocwd check --model weak), not a compiler's freedom. *)",
           "", "{}", ""]
    # the writer
    w = [f"P0({params})", "{"]
    count: dict[str, int] = {}
    for k in range(1, sections + 1):
        w.append(f"\t/* section {k}: start_memalloc_timer() */")
        for op in spec.section:
            note = _comment(op)
            if op.kind == Kind.INC:
                count[op.field] = count.get(op.field, 0) + 1
                w.append("\t" + _store(op.field, str(count[op.field]), op.access, note))
            elif op.kind == Kind.STORE:
                val = op.value if op.value.isdigit() else str(k)
                loc = op.field if op.copy is None else f"{op.field}{op.copy}"
                w.append("\t" + _store(loc, val, op.access, note))
            elif op.kind == Kind.FENCE:
                w.append(f"\t{op.fence}();{note}" if op.fence != "barrier" else
                         f"\t/* barrier(): compiler only, no hardware ordering */{note}")
            elif op.kind == Kind.LOCK:
                w.append("\t" + _lock(op)[1] + note)
        if spec.frame == "bare":
            continue
        flag = spec.flag
        w.append("\t" + _store(flag, "1", spec.valid_access, f"  /* {flag}++ */"))
        w.append("\t" + _store(flag, "0", spec.valid_access,
                               f"  /* {flag}--: stop_memalloc_timer() */"))
    w.append("}")
    # the reader
    regs: list[str] = []
    body: list[str] = []
    seqreg = _reg(spec.snapshot_sequence) if spec.snapshot_sequence else "snap_sequence"
    depth = [1]

    def emit(line: str) -> None:
        body.append("\t" * depth[0] + line)

    closes = 0
    indexed: set[str] = set()

    def through_index(op: Op, loads: list[tuple[str, str]]) -> None:
        """Loads (register, field) of copy[VAR & 1]: the index and the
        dependency registers (computed once, after VAR's load), then the
        loads of copy 0 or copy 1 at an address computed from VAR."""
        i, d = _idx(op.index), _dep(op.index)
        if op.index not in indexed:
            indexed.add(op.index)
            regs.extend([i, d])
            emit(f"{i} = {_reg(op.index)} & 1;  /* the copy index */")
            emit(f"{d} = {i} ^ {i};  /* 0, computed from {op.index}: the address dependency */")
        for c in (0, 1):
            emit(f"if ({i} == {c}) {{")
            for reg, f in loads:
                emit(f"\t{_load(reg, f'({f}{c} + {d})', op.access)}")
            emit("}")

    for op in spec.prologue + spec.snapshot:
        note = _comment(op)
        if op.kind == Kind.LOAD:
            regs.append(_reg(op.var))
            if op.index is None:
                emit(_load(_reg(op.var), op.field, op.access) + note)
            else:
                emit(f"/* line {op.line}: {op.text} */")
                through_index(op, [(_reg(op.var), op.field)])
        elif op.kind == Kind.COPY:
            want = 2 if op.index else 1
            fields = (STRUCT_ORDER if op.with_sequence else STRUCT_ORDER[1:]) \
                if spec.format == 1 else [f.name for f in spec.fields if f.copies == want]
            emit(f"/* line {op.line}: {op.text} */")
            regs.extend(f"snap_{f}" for f in fields)
            if op.index is None:
                for f in fields:
                    emit(_load(f"snap_{f}", f, op.access))
            else:
                through_index(op, [(f"snap_{f}", f) for f in fields])
        elif op.kind == Kind.FENCE:
            emit(f"{op.fence}();{note}" if op.fence != "barrier" else
                 f"/* barrier(): compiler only, no hardware ordering */{note}")
        elif op.kind == Kind.LOCK:
            emit(_lock(op)[1] + note)
        elif op.kind == Kind.COND:
            c = _bool(op.cond, seqreg)
            if op.action == "accept":
                emit(f"if {c} {{{note}")
                depth[0] += 1
                _accept(emit, spec, seqreg)
                depth[0] -= 1
                emit("} else {")
                depth[0] += 1
                closes += 1
            else:
                emit(f"if ({c} == 0) {{{note}  /* else: {op.action}, no snapshot */")
                depth[0] += 1
                closes += 1
    _accept(emit, spec, seqreg)
    for _ in range(closes):
        depth[0] -= 1
        emit("}")
    aux = ["r_ok", "r_sec", "r_same", "r_inside", "r_data"]
    decl = [f"\tint {r} = 0;" for r in regs + aux]
    r = [f"P1({params})", "{"] + decl + [""] + body + ["}"]
    out += w + [""] + r + ["", _exists(spec)]
    return "\n".join(out) + "\n"


def _accept(emit, spec: Spec, seqreg: str) -> None:
    if spec.format != 1:
        return _accept2(emit, spec)
    n = sum(1 for op in spec.section if op.kind == Kind.INC)
    emit("r_ok = 1;  /* accepted: which section does each value come from? */")
    if n:
        emit(f"r_sec = ({seqreg} + {n - 1}) / {n};")
        emit(f"r_inside = ({seqreg} - r_sec * {n}) != 0;")
    else:
        emit("r_sec = snap_start;")
    emit("r_data = (snap_start == snap_gfp) & (snap_gfp == snap_order);")
    emit("r_same = (r_sec == snap_start) & r_data;")


def _accept2(emit, spec: Spec) -> None:
    """Format 2: the section of every covered field, as classify_fields()."""
    emit("r_ok = 1;  /* accepted: which section does each covered value come from? */")
    counters = spec.counters
    secs, data, inside = [], [], []
    for f in spec.covered:
        n = counters.get(f)
        if n:
            secs.append(f"((snap_{f} + {n - 1}) / {n})")
            inside.append(f"((snap_{f} - {secs[-1]} * {n}) != 0)")
        else:
            secs.append(f"snap_{f}")
            data.append(f"snap_{f}")
    emit(f"r_sec = {secs[0]};")
    emit("r_inside = " + (" | ".join(inside) if inside else "0") + ";")
    emit("r_data = " + (" & ".join(f"({a} == {b})" for a, b in zip(data, data[1:])) or "1")
         + ";")
    emit("r_same = " + " & ".join(f"(r_sec == {x})" for x in secs) + ";")


def _exists(spec: Spec) -> str:
    kinds = set(torn_condition(spec))
    base = "1:r_ok=1 /\\ 1:r_same=0"
    if kinds >= {TORN_INSIDE, TORN_SEQ, TORN_MIXED}:
        return f"exists ({base})"
    if not kinds:
        return f"exists ({base} /\\ 1:r_ok=2)  (* no torn kind is forbidden *)"
    alts = []
    if TORN_INSIDE in kinds:
        alts.append("1:r_inside=1")
    if TORN_SEQ in kinds:
        alts.append("(1:r_inside=0 /\\ 1:r_data=1)")
    if TORN_MIXED in kinds:
        alts.append("(1:r_inside=0 /\\ 1:r_data=0)")
    sep = " \\/ "
    return f"exists ({base} /\\ ({sep.join(alts)}))"


__all__ = ["render", "SYMBOLIC"]
