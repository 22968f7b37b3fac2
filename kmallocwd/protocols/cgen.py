"""The C generator: a protocol file's operations as kernel-style C.

For each protocol P it writes P_start_memalloc_timer(),
P_stop_memalloc_timer() and P_read() (the patch's is_stalling_task() read),
each barrier with the comment its file gives it, then P's loops (their
bodies are csrc/loops.h's macros) and its row of the protocol table.

``generate(specs)`` is one translation unit; the build writes the built-ins'
(``kmallocwd protocols --c NAME`` prints one), and a user's file is
generated and compiled at run time (kmallocwd/protocols/usermod.py).

A file is data, never code.  What becomes code is checked here again,
whoever built the Spec: names and variables by their patterns, every other
part from the vocabulary.  Free text (an operation's comment, stands_for,
the writer's and reader's names) only ever lands inside a comment, through
``comment_text()``, which cannot end it or the line.  No path reaches the C.
"""

from __future__ import annotations

import re
from typing import Sequence

from kmallocwd.protocols.builds import DEFAULT, prelude
from kmallocwd.protocols.spec import (FENCES, FIELDS, LOCK_OPS, LOCKS, REJECTED_INVALID, VALUES,
                                      VAR_RE, Expr, Kind, Op, Spec)

GENERATOR_VERSION = 3

_VAR_TYPES = {"sequence": "unsigned int", "valid": "unsigned char", "dumped": "unsigned char",
              "start": "unsigned long", "order": "unsigned int", "gfp": "unsigned int"}
_VALUE_C = {"NOW": "now", "GFP": "gfp_mask", "ORDER": "order", "0": "0"}
_LOAD = {"plain": "m->{f}", "once": "READ_ONCE(m->{f})", "acquire": "smp_load_acquire(&m->{f})"}
_STORE = {"plain": "m->{f} = {v};", "once": "WRITE_ONCE(m->{f}, {v});",
          "release": "smp_store_release(&m->{f}, {v});"}
_COPY_FIELDS = ("valid", "dumped", "start", "order", "gfp")


def _signature(head: str, args: Sequence[str]) -> str:
    """``head(args...)``, wrapped at 80 columns with the arguments aligned."""
    pad = " " * (len(head) + 1)
    lines, cur = [], head + "("
    for i, a in enumerate(args):
        piece = a + (", " if i < len(args) - 1 else ")")
        if len(cur) + len(piece.rstrip()) > 80 and not cur.endswith("("):
            lines.append(cur.rstrip())
            cur = pad
        cur += piece
    return "\n".join(lines + [cur])


# A protocol's name as C may hold it (identifiers, a string literal): the
# loader's pattern, longer, for the ablation's variants (NAME-without-...).
C_NAME_RE = re.compile(r"[a-z][a-z0-9-]{0,99}")
_COMMENT_BREAK = re.compile(r"(?<=/)(?=\*)|(?<=\*)(?=/)")


def comment_text(text: str) -> str:
    """Free text made safe inside a C block comment: a space between any
    '/' and '*' that touch (no '*/' to end it, no '/*' to nest), each
    character that is not printable (control characters, line and
    paragraph separators) a space, so that the comment stays on its line."""
    text = "".join(ch if ch.isprintable() else " " for ch in text)
    return _COMMENT_BREAK.sub(" ", text)


def _comment(op: Op) -> str:
    return f" /* {comment_text(op.comment)} */" if op.comment else ""


class UnsafeSpec(ValueError):
    """A Spec whose code-bearing parts are not the loader's vocabulary."""


def _vet(spec: Spec) -> None:
    """Every part of ``spec`` that becomes code, checked against the
    vocabulary (the loader checked it; a Spec built by hand may not be)."""
    def bad(what: str, value: object) -> UnsafeSpec:
        return UnsafeSpec(f"protocol {spec.name!r}: {what} {value!r} cannot become C")

    if not isinstance(spec.name, str) or not C_NAME_RE.fullmatch(spec.name):
        raise bad("the name", spec.name)
    if spec.valid_access not in ("plain", "once"):
        raise bad("writer.valid", spec.valid_access)
    if spec.snapshot_sequence is not None and not _is_var(spec.snapshot_sequence):
        raise bad("snapshot_sequence", spec.snapshot_sequence)
    for op in spec.section + spec.prologue + spec.snapshot:
        checks = ((op.kind, ("inc", "store", "load", "fence", "lock", "copy", "cond")),
                  (op.field, FIELDS + (None,)), (op.value, tuple(VALUES) + (None,)),
                  (op.fence, FENCES + (None,)), (op.lockop, LOCK_OPS + (None,)),
                  (op.lock, LOCKS + (None,)),
                  (op.access, ("plain", "once", "acquire", "release", None)),
                  (op.action, ("accept", "retry", "skip", None)))
        for value, allowed in checks:
            if value not in allowed:
                raise bad("an operation's part", value)
        if op.var is not None and not _is_var(op.var):
            raise bad("the variable", op.var)
        if op.kind == Kind.COND:
            vet_expr(op.cond, bad)


def _is_var(v: object) -> bool:
    return isinstance(v, str) and (v in ("snap.valid", "snap.sequence")
                                   or VAR_RE.fullmatch(v) is not None)


def vet_expr(e: object, bad, is_var=None, bits: int = 32,
             unary: tuple[str, ...] = ("not", "odd", "even")) -> None:
    """A condition's every part from the vocabulary: variables by
    ``is_var``, integers below 2**bits, the operators (the unary ones
    ``unary``); ``bad(what, value)`` makes the error."""
    is_var = is_var or _is_var
    stack = [e]
    while stack:
        x = stack.pop()
        if not isinstance(x, Expr):
            raise bad("a condition's part", x)
        if x.op == "var":
            if len(x.args) != 1 or not is_var(x.args[0]):
                raise bad("the variable", x.args)
        elif x.op == "int":
            if len(x.args) != 1 or type(x.args[0]) is not int or not 0 <= x.args[0] < 1 << bits:
                raise bad("the integer", x.args)
        elif x.op in ("or", "and", "eq", "ne"):
            if len(x.args) != 2:
                raise bad("a condition's part", x.op)
            stack += x.args
        elif x.op in unary:
            if len(x.args) != 1:
                raise bad("a condition's part", x.op)
            stack += x.args
        else:
            raise bad("the operator", x.op)


def _lock_c(op: Op, waiter: str) -> str:
    """A lock operation; ``waiter`` is the read context ('NULL' for a caller)."""
    word = "&m->rwlock" if op.lock == "slot" else (
        "&kmw_global.spinlock" if op.lockop.startswith("spin") else "&kmw_global.rwlock")
    fn = f"kmw_{op.lockop}"
    if op.lockop.endswith("unlock"):
        return f"{fn}({word});"
    if waiter == "NULL":
        return f"{fn}({word}, NULL);"
    return f"if ({fn}({word}, {waiter}))\n\t\treturn KMW_ABORTED;"


# ---- the writer --------------------------------------------------------------

def knob_point(spec: Spec) -> int:
    """Where the knobs (--hold-ns, --preempt) go in the write section: after
    its last fence or lock before the first data field store, a compiler
    barrier in both builds, so that a knob adds no ordering the protocol
    lacks; -1 if the section has none there (the knobs then do nothing)."""
    sec = spec.section
    data = [i for i, op in enumerate(sec)
            if op.kind == Kind.STORE and (spec.format != 1 or op.field in (
                "start", "gfp", "order", "dumped"))]
    end = data[0] if data else len(sec)
    points = [i for i in range(end)
              if sec[i].kind == "fence" or (sec[i].kind == "lock"
                                            and not sec[i].lockop.endswith("unlock"))]
    return points[-1] if points else -1


def _writer(spec: Spec) -> str:
    P = spec.ident
    sec = spec.section
    incs = [i for i, op in enumerate(sec) if op.kind == Kind.INC]
    marked = any(sec[i].access != "plain" for i in incs)
    stores = [i for i, op in enumerate(sec) if op.kind == Kind.STORE]
    hook = knob_point(spec)
    # the witness follows the last store of a field it covers (not dumped's)
    covered = [i for i in stores if sec[i].field in ("start", "gfp", "order")]
    witness_after = covered[-1] if covered else -1
    total = len(incs)
    body: list[str] = []
    if marked:
        body.append("unsigned int seq = READ_ONCE(m->sequence);")
        body.append("")
    done = 0
    for i, op in enumerate(sec):
        if op.kind == Kind.INC:
            done += 1
            if marked:
                fmt = _STORE["plain" if op.access == "plain" else op.access]
                body.append(fmt.format(f="sequence", v=f"seq + {done}") + _comment(op))
            else:
                body.append("m->sequence++;" + _comment(op))
        elif op.kind == Kind.STORE:
            body.append(_STORE[op.access].format(f=op.field, v=_VALUE_C[op.value]) + _comment(op))
        elif op.kind == Kind.FENCE:
            body.append(f"{op.fence}();" + _comment(op))
        elif op.kind == Kind.LOCK:
            body.append(_lock_c(op, "NULL") + _comment(op))
        if i == hook:
            body.append("kmw_in_section(k, knobs);	/* at a compiler barrier: no new one */")
        if i == witness_after:
            end = f"seq + {total}" if marked else (
                f"m->sequence + {total - done}" if total - done else "m->sequence")
            wit = f"memalloc_witness({end}, now, order, gfp_mask)"
            body.append("if (emu)	/* the emulator's torn-read witness (memalloc.h) */")
            body.append(f"\tm->witness = {wit};" if op.access == "plain"
                        else f"\tWRITE_ONCE(m->witness, {wit});")
    valid_test = "!READ_ONCE(m->valid)" if spec.valid_access == "once" else "!m->valid"
    valid_inc = ("WRITE_ONCE(m->valid, READ_ONCE(m->valid) + 1);"
                 if spec.valid_access == "once" else "m->valid++;")
    valid_dec = ("WRITE_ONCE(m->valid, READ_ONCE(m->valid) - 1);"
                 if spec.valid_access == "once" else "m->valid--;")
    # no compiler barrier in the section: nowhere to hold it open without
    # changing its code, so --hold-ns and --preempt do nothing in it
    after = "" if hook >= 0 else "\n\t(void)k;"
    ind = "\n\t\t"
    lines = "".join(ind + b.replace("\n", ind) if b else "\n" for b in body)
    return f"""/* {comment_text(spec.writer_name)}: start_memalloc_timer() of {spec.name}. */
static inline __attribute__((always_inline)) void
{_signature(P + "_start_memalloc_timer", ["struct memalloc_info *m", "gfp_t gfp_mask", "unsigned int order", "unsigned long now", "const struct kmw_pause k", "const int emu", "const int knobs"])}
{{
	/* We don't check for stalls for !__GFP_RECLAIM allocations. */
	if (!(gfp_mask & __GFP_RECLAIM))
		return;
	/* We don't check for stalls for nested __GFP_RECLAIM allocations */
	if ({valid_test}) {{{lines}
	}}
	{valid_inc}{after}
}}

static inline __attribute__((always_inline)) void
{P}_stop_memalloc_timer(struct memalloc_info *m, gfp_t gfp_mask)
{{
	if (gfp_mask & __GFP_RECLAIM)
		{valid_dec}
}}
"""


# ---- the reader --------------------------------------------------------------

def _reader(spec: Spec) -> str:
    P = spec.ident
    vars_: dict[str, str] = {}
    for op in spec.prologue + spec.snapshot:
        if op.kind == Kind.LOAD:
            vars_[op.var] = op.field
    loops = any(op.kind == Kind.COND and op.action == "retry" for op in spec.snapshot)

    def cname(v: str) -> str:
        return {"snap.valid": "snap->valid", "snap.sequence": "snap->sequence"}.get(v, v)

    def emit(op: Op, out: list[str]) -> None:
        c = _comment(op)
        if op.kind == Kind.LOAD:
            out.append(f"{op.var} = {_LOAD[op.access].format(f=op.field)};{c}")
        elif op.kind == Kind.FENCE:
            out.append(f"{op.fence}();{c}")
        elif op.kind == Kind.LOCK:
            out.append(_lock_c(op, "c") + c)
        elif op.kind == Kind.COPY:
            if op.with_sequence:
                out.append(f"if (emu){c}")
                out.append("\t*snap = *m;")
                out.append("else	/* the patch's fields alone */")
                out.append("\tKMW_COPY_SEQ(snap, m);")
            else:
                if spec.snapshot_sequence:
                    out.append(f"snap->sequence = {spec.snapshot_sequence};")
                mac = "KMW_COPY_ONCE" if op.access == "once" else "KMW_COPY"
                out.append(f"{mac}(snap, m, emu);{c}")
        elif op.kind == Kind.COND:
            out += cond_lines(spec, op, op.cond.render(cname))

    pro: list[str] = []
    for op in spec.prologue:
        emit(op, pro)
    snap: list[str] = []
    for op in spec.snapshot:
        emit(op, snap)
    sig = _signature(P + "_read", ["struct memalloc_info *m", "struct memalloc_info *snap",
                                   "struct kmw_rctx *c", "const int emu"])
    return reader_text(spec, sig, {v: _VAR_TYPES[f] for v, f in vars_.items()},
                       [] if loops else ["(void)c;"], pro, snap, loops)


def cond_lines(spec: Spec, op: Op, cond: str) -> list[str]:
    """A reader's ``if (COND) accept|skip|retry``, its condition rendered as C."""
    if cond.startswith("(") and cond.endswith(")") and _balanced(cond[1:-1]):
        cond = cond[1:-1]
    if op.action == "accept":
        then = "\treturn KMW_ACCEPT;"
    elif op.action == "skip":
        then = "\treturn " + ("KMW_REJECT_INVALID" if spec.skip_outcome(op) == REJECTED_INVALID
                              else "KMW_REJECT_ODD") + ";"
    else:
        then = "\tgoto retry;"
    return [f"if ({cond}){_comment(op)}", then]


def reader_text(spec: Spec, signature: str, types: dict[str, str], unused: list[str],
                pro: list[str], snap: list[str], loops: bool) -> str:
    """A reader's function: its variables (name -> C type), the casts of
    what it leaves unused, its prologue, then its snapshot (in a retry loop
    when one of its conditions retries) ending in an accept."""
    decl: dict[str, list[str]] = {}
    for v, t in types.items():
        decl.setdefault(t, []).append(v)
    head = [f"{t} {', '.join(vs)};" for t, vs in decl.items()]
    snap = snap + ["return KMW_ACCEPT;"]
    ind1, ind2 = "\n\t", "\n\t\t"
    text = f"""/* {comment_text(spec.reader_name)}: the read of {spec.name}'s is_stalling_task(). */
static inline __attribute__((always_inline)) int
{signature}
{{"""
    if head:
        text += ind1 + ind1.join(head) + "\n"
    if unused:
        text += "\n\t" + " ".join(unused) + "\n"
    if pro:
        text += ind1 + ind1.join(pro) + "\n"
    if loops:
        text += "\tfor (;;) {" + ind2 + ind2.join(s.replace("\n\t", "\n\t\t\t") for s in snap)
        text += "\nretry:\n\t\tif (kmw_retry(c))\n\t\t\treturn KMW_ABORTED;\n\t}\n}\n"
    else:
        text += ind1 + ind1.join(snap) + "\n}\n"
    return text.replace("\n\n\n", "\n\n").replace("{\n\n", "{\n")


def _balanced(s: str) -> bool:
    depth = 0
    for ch in s:
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if depth < 0:
            return False
    return depth == 0


# ---- the loops and the table -------------------------------------------------

def _loops(spec: Spec) -> str:
    P = spec.ident
    args = ["struct memalloc_info *m", "gfp_t gfp_mask", "unsigned int order",
            "unsigned long now", "const struct kmw_pause k"]
    emu = f"""/*
 * The emulator's start_memalloc_timer(): a function of its own, as the
 * kernel's is, so that what the loop around it does (the knobs, the
 * stamps) cannot change how its accesses are compiled.
 */
{_signature("static KMW_NOIPA void " + P + "_start_emu", args)}
{{
	{P}_start_memalloc_timer(m, gfp_mask, order, now, k, 1, KMW_KNOBS);
}}

static inline __attribute__((always_inline)) void
{_signature(P + "_start_call", args + ["const int emu", "const int knobs"])}
{{
	(void)emu;
	(void)knobs;
	{P}_start_emu(m, gfp_mask, order, now, k);
}}

static __attribute__((noinline)) uint64_t {P}_writer_emu(const struct kmw_wargs *a)
{{
	KMW_WRITER_PASS(a, {P}_start_call, {P}_stop_memalloc_timer, 1, KMW_KNOBS);
}}

"""
    return emu + f"""static uint64_t {P}_writer_run(const struct kmw_wargs *a, int mode)
{{
	KMW_WRITER_LOOP(a, mode, {P}_start_memalloc_timer, {P}_stop_memalloc_timer,
			{P}_writer_emu);
}}

static void {P}_reader_scan(const struct kmw_sargs *a)
{{
	KMW_READER_SCAN(a, {P}_read);
}}

static uint64_t {P}_bench_reads(const struct kmw_sargs *a)
{{
	KMW_BENCH_READS(a, {P}_read);
}}

{_signature("static void " + P + "_start", ["struct memalloc_info *m", "gfp_t gfp_mask", "unsigned int order", "unsigned long jiffies"])}
{{
	{P}_start_memalloc_timer(m, gfp_mask, order, jiffies, (struct kmw_pause){{ 0, 0 }}, 1, 0);
}}

static void {P}_stop(struct memalloc_info *m, gfp_t gfp_mask)
{{
	{P}_stop_memalloc_timer(m, gfp_mask);
}}

{_signature("static int " + P + "_read_one", ["struct memalloc_info *m", "struct memalloc_info *snap", "struct kmw_rctx *c"])}
{{
	return {P}_read(m, snap, c, 1);
}}
"""


def protocol_c(spec: Spec) -> str:
    """One protocol's C: its writer, its reader and its loops."""
    if spec.format != 1:
        from kmallocwd.protocols.cgen2 import protocol_c2
        return protocol_c2(spec)
    _vet(spec)
    rule = "-" * max(4, 68 - len(spec.name))
    return (f"/* ---- {spec.name} {rule} */\n"
            + "/*\n * " + _wrap(comment_text(f"{spec.name}: {spec.stands_for}.")) + "\n */\n\n"
            + _writer(spec) + "\n" + _reader(spec) + "\n" + _loops(spec))


def _wrap(text: str, width: int = 72) -> str:
    words, lines, cur = text.split(), [], ""
    for w in words:
        if cur and len(cur) + 1 + len(w) > width:
            lines.append(cur)
            cur = w
        else:
            cur = f"{cur} {w}" if cur else w
    if cur:
        lines.append(cur)
    return "\n * ".join(lines)


def generate(specs: Sequence[Spec], origin: str | None = None, build: str = DEFAULT) -> str:
    """The translation unit for these protocols, with their table, for
    ``build`` (builds.py: which barriers.h definitions it is compiled with).

    ``origin``: None for the built-ins (the files in kmallocwd/protocols/),
    else the name of the protocol whose file this is; never a path (a path
    would put the user's text in the C, and make the same file compile
    again from another directory).  UnsafeSpec for anything else."""
    if origin is None:
        source = "the files in kmallocwd/protocols/: edit those files, not this one."
    elif isinstance(origin, str) and C_NAME_RE.fullmatch(origin):
        source = f"the protocol file of {origin}: edit that file, not this one."
    else:
        raise UnsafeSpec(f"origin {origin!r}: a protocol's name, not a path or text")
    parts = [prelude(build) + f"""/*
 * GENERATED by kmallocwd/protocols/cgen.py (version {GENERATOR_VERSION}) from
 * {source}
 *
 * Each protocol's start_memalloc_timer() / stop_memalloc_timer() and its
 * is_stalling_task() read, as its file declares them, then its loops (the
 * bodies are csrc/loops.h's), then the table api.c dispatches through.
 */
#include "loops.h"
""" + ('#include "loops2.h"\n' if any(s.format != 1 for s in specs) else "")]
    for s in specs:
        parts.append(protocol_c(s))
    rows = "\n".join(_row(s) for s in specs)
    parts.append(f"""const struct kmw_protocol kmw_protocol_table[] = {{
{rows}
}};

const int kmw_protocol_count = {len(specs)};

/* Which barriers.h definitions this module was compiled with. */
const char *kmw_build_name(void)
{{
	return KMW_BUILD_NAME;
}}
""")
    return "\n".join(parts)


def _row(s: Spec) -> str:
    if s.format != 1:
        from kmallocwd.protocols.cgen2 import table_row
        return table_row(s)
    return (f"\t{{ \"{s.name}\", {s.ident}_writer_run, {s.ident}_reader_scan, "
            f"{s.ident}_bench_reads,\n\t  {s.ident}_start, {s.ident}_stop, {s.ident}_read_one }},")


def one_protocol_c(spec: Spec, build: str = DEFAULT) -> str:
    """What ``kmallocwd protocols --c NAME`` prints: one protocol's C."""
    return generate([spec], origin=spec.name, build=build)
