"""The C generator for format 2: a protocol over the struct its file
declares (docs/protocols.md).

For a format-2 protocol P it writes struct P_info (the declared fields, the
two-copy fields as the latch's copy[2], then the emulator's section number
and lock word), struct P_snap (one place per field), P_start_memalloc_timer()
and P_stop_memalloc_timer() in the file's frame, P_read(), P_classify()
(which section explains the snapshot: csrc/loops2.h says how stamps name
sections) and P's loops, whose bodies are csrc/loops2.h's macros.

A file is data, never code: as in cgen.py, everything that becomes code is
checked here again (names by their patterns, the rest from the vocabulary),
and free text only lands in comments, through ``comment_text()``.
"""

from __future__ import annotations

from dataclasses import dataclass

from kmallocwd.protocols.cgen import (C_NAME_RE, UnsafeSpec, _comment, _lock_c, _signature,
                                      _wrap, comment_text, cond_lines, knob_point,
                                      reader_text, vet_expr)
from kmallocwd.protocols.format2 import (BITS, COPIES, FIELD_RE, FIELD_RESERVED, FRAMES,
                                         MAX_FIELDS, STAMPS, Field, snap_fields)
from kmallocwd.protocols.spec import FENCES, LOCK_OPS, LOCKS, VAR_RE, Expr, Kind, Op, Spec

_STAMP_C = {"NOW": "now", "GFP": "gfp_mask", "ORDER": "order", "STAMP": "stamp"}
_LOAD = {"plain": "{x}", "once": "READ_ONCE({x})", "acquire": "smp_load_acquire(&{x})"}
_STORE = {"plain": "{x} = {v};", "once": "WRITE_ONCE({x}, {v});",
          "release": "smp_store_release(&{x}, {v});"}
_INLINE = "static inline __attribute__((always_inline))"


# ---- the checks --------------------------------------------------------------

def _vet(spec: Spec) -> dict[str, Field]:
    """Every code-bearing part of a format-2 Spec, checked; its fields by name."""
    def bad(what: str, value: object) -> UnsafeSpec:
        return UnsafeSpec(f"protocol {spec.name!r}: {what} {value!r} cannot become C")

    if not isinstance(spec.name, str) or not C_NAME_RE.fullmatch(spec.name):
        raise bad("the name", spec.name)
    if not 0 < len(spec.fields) <= MAX_FIELDS:
        raise bad("the number of fields", len(spec.fields))
    fields: dict[str, Field] = {}
    for f in spec.fields:
        if (not isinstance(f, Field) or not isinstance(f.name, str)
                or not FIELD_RE.fullmatch(f.name) or f.name in FIELD_RESERVED
                or f.name.startswith(("kmw", "memalloc", "__")) or f.name in fields):
            raise bad("the field", getattr(f, "name", f))
        if f.bits not in BITS or f.copies not in COPIES:
            raise bad("the field's width or copies", (f.bits, f.copies))
        fields[f.name] = f
    if spec.frame not in FRAMES or (spec.frame == "flag" and spec.flag not in fields):
        raise bad("the frame", (spec.frame, spec.flag))
    if spec.valid_access not in ("plain", "once"):
        raise bad("writer.access", spec.valid_access)
    if not spec.covered or any(c not in fields for c in spec.covered):
        raise bad("struct.covered", spec.covered)
    for op in spec.section + spec.prologue + spec.snapshot:
        checks = ((op.kind, ("inc", "store", "load", "fence", "lock", "copy", "cond")),
                  (op.fence, FENCES + (None,)), (op.lockop, LOCK_OPS + (None,)),
                  (op.lock, LOCKS + (None,)), (op.copy, (0, 1, None)),
                  (op.access, ("plain", "once", "acquire", "release", None)),
                  (op.action, ("accept", "retry", "skip", None)))
        for value, allowed in checks:
            if value not in allowed:
                raise bad("an operation's part", value)
        if op.field is not None and op.field not in fields:
            raise bad("the field", op.field)
        if op.value is not None:
            f = fields.get(op.field)
            if not (op.value in STAMPS or (isinstance(op.value, str) and op.value.isdigit()
                                           and f is not None and int(op.value) < 1 << f.bits)):
                raise bad("the value", op.value)
        for v in (op.var, op.index):
            if v is not None and not _is_var(v, fields):
                raise bad("the variable", v)
        if op.kind == Kind.COND:
            vet_expr(op.cond, bad, lambda v: _is_var(v, fields), bits=64,
                     unary=("not", "odd", "even", "expired"))
    return fields


def _is_var(v: object, fields: dict[str, Field]) -> bool:
    if not isinstance(v, str):
        return False
    if v.startswith("snap."):
        return v[5:] in fields
    return VAR_RE.fullmatch(v) is not None and v not in fields


def _render(e: Expr) -> str:
    """A condition as C: snap.F is snap->F, expired(x) the patch's
    time_after_eq(expire, x)."""
    o, a = e.op, e.args
    if o == "var":
        return a[0].replace("snap.", "snap->")
    if o == "int":
        return str(a[0]) + ("U" if a[0] >= 1 << 31 else "")
    if o in ("or", "and"):
        return "(" + _render(a[0]) + (" || " if o == "or" else " && ") + _render(a[1]) + ")"
    if o == "not":
        return "!" + _render(a[0])
    if o in ("eq", "ne"):
        return "(" + _render(a[0]) + (" == " if o == "eq" else " != ") + _render(a[1]) + ")"
    if o == "odd":
        return "(" + _render(a[0]) + " & 1)"
    if o == "even":
        return "!(" + _render(a[0]) + " & 1)"
    if o == "expired":
        return "time_after_eq(expire, " + _render(a[0]) + ")"
    raise ValueError(o)


def _uses_expired(spec: Spec) -> bool:
    def walk(e: Expr) -> bool:
        return e.op == "expired" or any(walk(x) for x in e.args if isinstance(x, Expr))
    return any(op.kind == Kind.COND and walk(op.cond) for op in spec.prologue + spec.snapshot)


# ---- the struct ----------------------------------------------------------------

def _structs(spec: Spec, fields: dict[str, Field]) -> str:
    P = spec.ident
    one = [f for f in spec.fields if f.copies == 1]
    two = [f for f in spec.fields if f.copies == 2]
    cov = set(spec.covered)

    def decl(f: Field, ind: str) -> str:
        return f"{ind}{f.c_type} {f.name};" + ("\t/* covered */" if f.name in cov else "")

    body = [decl(f, "\t") for f in one]
    if two:
        body.append("\t/* the latch's two copies: the reader picks one by the sequence */")
        body.append("\tstruct {")
        body += [decl(f, "\t\t") for f in two]
        body.append("\t} copy[2];")
    snap = [f"\t{f.c_type} {f.name};" for f in spec.fields]
    return f"""/* {P}'s slot: the fields its file declares, in its order. */
struct {P}_info {{
{chr(10).join(body)}
	/* Emulator only: the slot's section number (loops2.h), its lock word. */
	uint64_t kmw_section;
	int rwlock;
}} __attribute__((aligned(KMW_CACHELINE)));

/* The first torn snapshot's fields go to the tally (kmallocwd.h). */
_Static_assert(KMW_MAX_FIELDS >= {len(spec.fields)}, "the tally holds every field");

/* What {P}'s reader copies out: one place per field. */
struct {P}_snap {{
{chr(10).join(snap)}
}};
"""


# ---- the writer ----------------------------------------------------------------

def _target(op: Op) -> str:
    return f"m->copy[{op.copy}].{op.field}" if op.copy is not None else f"m->{op.field}"


def _writer(spec: Spec) -> str:
    P = spec.ident
    hook = knob_point(spec)
    body: list[str] = []
    for i, op in enumerate(spec.section):
        c = _comment(op)
        if op.kind == Kind.INC:
            x = f"m->{op.field}"
            body.append((f"{x}++;" if op.access == "plain" else
                         _STORE[op.access].format(x=x, v=f"{x} + 1")) + c)
        elif op.kind == Kind.STORE:
            v = _STAMP_C.get(op.value) or op.value
            body.append(_STORE[op.access].format(x=_target(op), v=v) + c)
        elif op.kind == Kind.FENCE:
            body.append(f"{op.fence}();" + c)
        elif op.kind == Kind.LOCK:
            body.append(_lock_c(op, "NULL") + c)
        if i == hook:
            body.append("kmw_in_section(k, knobs);	/* at a compiler barrier: no new one */")
    used = {op.value for op in spec.section if op.kind == Kind.STORE}
    unused = [f"(void){c};" for v, c in _STAMP_C.items() if v not in used]
    if hook < 0:
        unused += ["(void)k;", "(void)knobs;"]
    head = f"""/* {comment_text(spec.writer_name)}: start_memalloc_timer() of {spec.name}. */
{_INLINE} void
{_signature(P + "_start_memalloc_timer", [f"struct {P}_info *m", "gfp_t gfp_mask", "unsigned int order", "unsigned long now", "uint64_t stamp", "const struct kmw_pause k", "const int knobs"])}
{{
""" + (f"\t{' '.join(unused)}\n" if unused else "")
    if spec.frame == "flag":
        x = f"m->{spec.flag}"
        once = spec.valid_access == "once"
        test = f"!READ_ONCE({x})" if once else f"!{x}"
        inc = f"WRITE_ONCE({x}, READ_ONCE({x}) + 1);" if once else f"{x}++;"
        dec = f"WRITE_ONCE({x}, READ_ONCE({x}) - 1);" if once else f"{x}--;"
        ind = "\n\t\t"
        lines = "".join(ind + b.replace("\n", ind) for b in body)
        text = head + f"""	/* Nested sections are not tracked: the frame's flag is set. */
	if ({test}) {{{lines}
	}}
	{inc}
}}

{_INLINE} void
{P}_stop_memalloc_timer(struct {P}_info *m, gfp_t gfp_mask)
{{
	(void)gfp_mask;
	{dec}
}}
"""
    else:
        ind = "\n\t"
        lines = "".join(ind + b.replace("\n", ind) for b in body)
        text = head + f"""	/* A bare frame: every call runs the section. */{lines}
}}

{_INLINE} void
{P}_stop_memalloc_timer(struct {P}_info *m, gfp_t gfp_mask)
{{
	/* A bare frame has nothing to undo. */
	(void)m;
	(void)gfp_mask;
}}
"""
    return text


# ---- the reader ----------------------------------------------------------------

def _src(op: Op) -> str:
    return f"m->copy[{op.index} & 1].{op.field}" if op.index else f"m->{op.field}"


def _reader(spec: Spec, fields: dict[str, Field]) -> str:
    P = spec.ident
    types: dict[str, str] = {}
    for op in spec.prologue + spec.snapshot:
        if op.kind == Kind.LOAD and not op.var.startswith("snap."):
            types[op.var] = fields[op.field].c_type
    loops = any(op.kind == Kind.COND and op.action == "retry" for op in spec.snapshot)
    locks = any(op.kind == Kind.LOCK for op in spec.prologue + spec.snapshot)

    def emit(op: Op, out: list[str]) -> None:
        c = _comment(op)
        if op.kind == Kind.LOAD:
            dest = op.var.replace("snap.", "snap->")
            out.append(f"{dest} = {_LOAD[op.access].format(x=_src(op))};{c}")
        elif op.kind == Kind.FENCE:
            out.append(f"{op.fence}();{c}")
        elif op.kind == Kind.LOCK:
            out.append(_lock_c(op, "c") + c)
        elif op.kind == Kind.COPY:
            want = 2 if op.index else 1
            load = "READ_ONCE({x})" if op.access == "once" else "{x}"
            first = True
            for f in spec.fields:
                if f.copies != want:
                    continue
                x = f"m->copy[{op.index} & 1].{f.name}" if op.index else f"m->{f.name}"
                out.append(f"snap->{f.name} = {load.format(x=x)};" + (c if first else ""))
                first = False
        elif op.kind == Kind.COND:
            out += cond_lines(spec, op, _render(op.cond))

    unused = ([] if loops or locks else ["(void)c;"]) + (
        [] if _uses_expired(spec) else ["(void)expire;"])
    pro: list[str] = []
    for op in spec.prologue:
        emit(op, pro)
    snap: list[str] = []
    for op in spec.snapshot:
        emit(op, snap)
    sig = _signature(P + "_read", [f"struct {P}_info *m", f"struct {P}_snap *snap",
                                   "struct kmw_rctx *c", "unsigned long expire"])
    return reader_text(spec, sig, types, unused, pro, snap, loops)


# ---- which section a snapshot comes from ------------------------------------------

def _stamps(spec: Spec) -> dict[str, list[str]]:
    """Each covered field the section stores: the stamps it stores there."""
    out: dict[str, list[str]] = {}
    for op in spec.section:
        if op.kind == Kind.STORE and op.field in spec.covered and op.value in STAMPS:
            vals = out.setdefault(op.field, [])
            if op.value not in vals:
                vals.append(op.value)
    return out


@dataclass(frozen=True)
class _Anchor:
    """A covered field whose value names the section it comes from: exactly
    (``period`` None: ``k`` is the section), as one candidate below hi (a
    counter narrower than 64 bits), or modulo ``period`` (a narrow stamp:
    ``k`` is the latest section at or below hi that it allows)."""

    field: str
    bits: int  # how many bits of the section number it carries
    k: str  # C: the (latest) section it names
    exact: bool = False
    period: int | None = None


def _anchors(spec: Spec, fields: dict[str, Field], names) -> _Anchor | None:
    """The covered field among ``names`` that tells the most about its section."""
    counters, stamps = spec.counters, _stamps(spec)
    best: _Anchor | None = None
    for name in names:
        f, v = fields[name], f"snap->{name}"
        n = counters.get(name)
        if n:
            lg = (n - 1).bit_length()
            a = (_Anchor(name, 64, f"({v} + {n - 1}) / {n}", exact=True) if f.bits == 64 else
                 _Anchor(name, f.bits - lg, f"hi - ({f.c_type})({n}U * hi - {v}) / {n}U"))
        elif stamps.get(name) == ["STAMP"]:
            a = (_Anchor(name, 64, v, exact=True) if f.bits == 64 else
                 _Anchor(name, f.bits, f"hi - ({f.c_type})(hi - {v})", period=1 << f.bits))
        elif stamps.get(name) == ["NOW"] and f.bits > 8:
            b = f.bits - 8
            a = (_Anchor(name, 64, f"{v} >> KMW_STAMP_SHIFT", exact=True) if f.bits == 64 else
                 _Anchor(name, b, f"hi - ((hi - ({v} >> KMW_STAMP_SHIFT)) & 0x{(1 << b) - 1:x}U)",
                         period=1 << b))
        else:
            continue
        if best is None or (a.exact, a.bits) > (best.exact, best.bits):
            best = a
    return best


def _search(P: str, anchor: _Anchor | None, pred: str, found: str, why: str) -> str:
    """C that runs ``found`` for the first section k the anchor allows for
    which ``pred`` holds (every section lo..hi without an anchor); a search
    longer than KMW2_MAX_WINDOW sections ends in ``why`` (not shown torn)."""
    if anchor is not None and anchor.exact:
        return f"""	/* {anchor.field} names its section exactly */
	k = {anchor.k};
	if ({pred})
		{found};
"""
    if anchor is not None and anchor.period is None:
        return f"""	/* {anchor.field}, a counter, names its section below hi */
	k = {anchor.k};
	if ({pred})
		{found};
"""
    if anchor is not None:
        head = (f"\t/* {anchor.field} names its section modulo 2^{anchor.bits}: each one "
                "lo..hi allows */\n"
                f"\tfor (k = {anchor.k}, n = 0;\n\t     k <= hi && k + 1 > lo; "
                f"k -= 0x{anchor.period:x}ULL, n++) {{")
    else:
        head = ("\t/* no field names its section: each section lo..hi */\n"
                "\tfor (k = hi, n = 0; k + 1 > lo; k--, n++) {")
    return head + f"""
		if (n > KMW2_MAX_WINDOW)
			{why};
		if ({pred})
			{found};
	}}
"""


def _classify(spec: Spec, fields: dict[str, Field]) -> str:
    P = spec.ident
    counters = {c: n for c, n in spec.counters.items() if c in spec.covered}
    stamps = _stamps(spec)
    data = [c for c in spec.covered if c not in counters]

    def stamp_c(name: str, s: str) -> str:
        t = fields[name].c_type
        return {"STAMP": f"({t})k", "NOW": f"({t})((k << KMW_STAMP_SHIFT) | q)",
                "GFP": f"({t})reqs[q].gfp", "ORDER": f"({t})reqs[q].order"}[s]

    data_terms = []
    for name in data:
        alts = [f"snap->{name} == {stamp_c(name, s)}" for s in stamps[name]]
        data_terms.append(alts[0] if len(alts) == 1 else "(" + " || ".join(alts) + ")")
    uses_q = any(s != "STAMP" for name in data for s in stamps[name])
    zero = [f"!snap->{c}" for c in spec.covered]
    count_terms = [f"({fields[c].c_type})({n}U * k - snap->{c}) < {n}U"
                   for c, n in counters.items()]
    inside = [f"snap->{c} % {n}U" for c, n in counters.items() if n > 1]
    ind = "\n\t       && "
    q_line = ("\tconst uint32_t q = (uint32_t)((k + slot) % nreqs);\n\n" if uses_q
              else "\t(void)slot;\n\t(void)reqs;\n\t(void)nreqs;\n")
    text = f"""/*
 * {_wrap(f"Whether every covered data field of {spec.name} holds what section k of slot `slot` stores (loops2.h); section 0 is the slot's initial contents.")}
 */
{_INLINE} int
{_signature(P + "_data_in", [f"const struct {P}_snap *snap", "uint64_t k", "size_t slot", "const struct kmw_request *reqs", "uint32_t nreqs"])}
{{
{q_line}	if (!k)
		return {" && ".join(f"!snap->{c}" for c in data) or "1"};
	return {ind.join(data_terms) or "1"};
}}

/* Whether every covered counter is inside section k or at its end. */
{_INLINE} int
{_signature(P + "_counters_in", [f"const struct {P}_snap *snap", "uint64_t k"])}
{{
"""
    if count_terms:
        text += f"\treturn {ind.join(count_terms)};\n}}\n"
    else:
        text += "\t(void)snap;\n\t(void)k;\n\treturn 1;\n}\n"
    text += f"""
/*
 * {_wrap(f"The outcome of an accepted snapshot of {spec.name}: consistent when one section explains every covered value ({', '.join(spec.covered)}), else torn. Its read could see sections lo..hi of its slot.")}
 */
{_signature("static int " + P + "_classify", [f"const struct {P}_snap *snap", "uint64_t lo", "uint64_t hi", "size_t slot", "const struct kmw_request *reqs", "uint32_t nreqs"])}
{{
	uint64_t k, n;

	(void)n;
	if ({" && ".join(zero)})
		return KMW_O_CONSISTENT;	/* the initial contents: section 0 */
"""
    both = f"{P}_data_in(snap, k, slot, reqs, nreqs) &&\n\t    {P}_counters_in(snap, k)"
    text += _search(P, _anchors(spec, fields, spec.covered), both,
                    "return KMW_O_CONSISTENT",
                    "return KMW_O_CONSISTENT;	/* too many to try: not shown torn */")
    if inside:
        text += f"""	if ({" || ".join(inside)})
		return KMW_O_TORN_INSIDE;	/* a counter inside a section */
"""
    copied = {v for op in spec.prologue + spec.snapshot for v in snap_fields(spec, op)}
    sink = " ^\n\t       ".join(f"(uint64_t)snap->{f.name}" for f in spec.fields
                                   if f"snap.{f.name}" in copied)
    text += f"""	/* do the data fields agree on one section? */
""" + _search(P, _anchors(spec, fields, data), f"{P}_data_in(snap, k, slot, reqs, nreqs)",
              "return KMW_O_TORN_SEQ", "break") + f"""	return KMW_O_TORN_MIXED;
}}

/* The snapshot's fields, in the struct's order, for the first torn one. */
{_INLINE} void
{_signature(P + "_values", ["uint64_t *v", f"const struct {P}_snap *snap"])}
{{
{chr(10).join(f"	v[{i}] = snap->{f.name};" for i, f in enumerate(spec.fields))}
}}

/* The benchmarks' sink: every field the reader copies. */
{_INLINE} uint64_t
{_signature(P + "_sink", [f"const struct {P}_snap *snap"])}
{{
	return {sink};
}}
"""
    return text


# ---- the loops -------------------------------------------------------------------

def _loops(spec: Spec) -> str:
    P = spec.ident
    args = [f"struct {P}_info *m", "gfp_t gfp_mask", "unsigned int order", "unsigned long now",
            "uint64_t stamp", "const struct kmw_pause k"]
    return f"""/*
 * The emulator's start_memalloc_timer(): a function of its own, so that
 * what the loop around it does (the knobs, the section number) cannot
 * change how its accesses are compiled.
 */
{_signature("static KMW_NOIPA void " + P + "_start_emu", args)}
{{
	{P}_start_memalloc_timer(m, gfp_mask, order, now, stamp, k, KMW_KNOBS);
}}

static uint64_t {P}_writer_run(const struct kmw_wargs *a, int mode)
{{
	if (mode == KMW_PROTOCOL)
		KMW2_WRITER_PROTO(a, {P}_info, {P}_start_memalloc_timer,
				  {P}_stop_memalloc_timer);
	KMW2_WRITER_PASS(a, {P}_info, {P}_start_emu,
			 {P}_stop_memalloc_timer);
}}

static void {P}_reader_scan(const struct kmw_sargs *a)
{{
	KMW2_READER_SCAN(a, {P}_info, {P}_snap, {P}_read, {P}_classify,
			 {P}_values);
}}

static uint64_t {P}_bench_reads(const struct kmw_sargs *a)
{{
	KMW2_BENCH_READS(a, {P}_info, {P}_snap, {P}_read, {P}_sink);
}}
"""


def protocol_c2(spec: Spec) -> str:
    """One format-2 protocol's C: its structs, writer, reader, classifier, loops."""
    fields = _vet(spec)
    rule = "-" * max(4, 68 - len(spec.name))
    return (f"/* ---- {spec.name} {rule} */\n"
            + "/*\n * " + _wrap(comment_text(f"{spec.name}: {spec.stands_for}.")) + "\n */\n\n"
            + _structs(spec, fields) + "\n" + _writer(spec) + "\n" + _reader(spec, fields)
            + "\n" + _classify(spec, fields) + "\n" + _loops(spec))


def table_row(spec: Spec) -> str:
    """P's row of the protocol table: no one-shot entry points (its slots
    are not struct memalloc_info), its own slot size."""
    P = spec.ident
    return (f"\t{{ \"{spec.name}\", {P}_writer_run, {P}_reader_scan, {P}_bench_reads,\n"
            f"\t  NULL, NULL, NULL, sizeof(struct {P}_info) }},")
