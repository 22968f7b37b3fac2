"""The protocol description format (docs/protocols.md): one TOML file per
protocol, parsed into the operations that the C generator, the model
checker, the litmus export and the ablation all read.

This module only parses and validates; it imports nothing that needs the
C extension, so the build (kmallocwd/_build.py) can use it.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path

FORMAT = 1
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

# The slot's fields, as the seed's struct memalloc_info has them.
FIELDS = ("sequence", "valid", "dumped", "start", "order", "gfp")
DATA_FIELDS = ("start", "gfp", "order", "dumped")  # what a write section stores
# The values a write section stores: the allocation's time, mask and order.
VALUES = {"NOW": "start", "GFP": "gfp", "ORDER": "order", "0": None}
FENCES = ("smp_wmb", "smp_rmb", "smp_mb", "barrier")
LOCK_OPS = ("read_lock", "read_unlock", "write_lock", "write_unlock", "spin_lock", "spin_unlock")
LOCKS = ("global", "slot")
ACTIONS = ("accept", "retry", "skip")
MODELS = ("sc", "x86", "weak")
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
switch typedef union unsigned void volatile while typeof asm m c snap emu retry
bool true false nullptr constexpr static_assert alignas alignof thread_local typeof_unqual
noreturn complex imaginary linux unix i386 errno stdin stdout stderr""".split())
VAR_RE = re.compile(r"[a-z_][a-z0-9_]{0,15}")


class SpecError(Exception):
    """A bad protocol file: the message names the file, the line and the key."""


# ---- conditions -------------------------------------------------------------

@dataclass(frozen=True)
class Expr:
    """A reader's condition: ('or'|'and', a, b), ('not', a), ('eq'|'ne', a, b),
    ('odd'|'even', a), ('var', name) or ('int', n).  Variables are the
    reader's loaded values and snap.valid / snap.sequence."""

    op: str
    args: tuple

    def vars(self) -> set[str]:
        if self.op == "var":
            return {self.args[0]}
        if self.op == "int":
            return set()
        out: set[str] = set()
        for a in self.args:
            out |= a.vars()
        return out

    def eval(self, env: dict[str, int]) -> int:
        o, a = self.op, self.args
        if o == "var":
            return env[a[0]]
        if o == "int":
            return a[0]
        if o == "or":
            return int(bool(a[0].eval(env)) or bool(a[1].eval(env)))
        if o == "and":
            return int(bool(a[0].eval(env)) and bool(a[1].eval(env)))
        if o == "not":
            return int(not a[0].eval(env))
        if o == "eq":
            return int(a[0].eval(env) == a[1].eval(env))
        if o == "ne":
            return int(a[0].eval(env) != a[1].eval(env))
        if o == "odd":
            return a[0].eval(env) & 1
        if o == "even":
            return 1 - (a[0].eval(env) & 1)
        raise ValueError(o)

    def render(self, name=lambda v: v, style: str = "c") -> str:
        """As C (``style='c'``), with ``name`` mapping each variable."""
        o, a = self.op, self.args
        if o == "var":
            return name(a[0])
        if o == "int":
            return str(a[0])
        if o in ("or", "and"):
            sym = " || " if o == "or" else " && "
            return "(" + a[0].render(name, style) + sym + a[1].render(name, style) + ")"
        if o == "not":
            return "!" + a[0].render(name, style)
        if o in ("eq", "ne"):
            sym = " == " if o == "eq" else " != "
            return "(" + a[0].render(name, style) + sym + a[1].render(name, style) + ")"
        if o == "odd":
            return "(" + a[0].render(name, style) + " & 1)"
        if o == "even":
            return "!(" + a[0].render(name, style) + " & 1)"
        raise ValueError(o)


_TOKEN = re.compile(r"\s*(snap\.valid|snap\.sequence|odd|even|[a-z_][a-z0-9_]*|[0-9]+"
                    r"|==|!=|&&|\|\||!|\(|\))", re.ASCII)


def parse_cond(text: str) -> Expr:
    toks: list[str] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            if text[pos:].strip() == "":
                break
            raise ValueError(f"cannot read the condition at {text[pos:]!r}")
        toks.append(m.group(1))
        pos = m.end()
    terms = sum(1 for t in toks if t not in _PUNCT)
    if terms > MAX_COND_TERMS:
        raise ValueError(f"{terms} operands in one condition (accepted: at most "
                         f"{MAX_COND_TERMS})")
    i = 0
    depth = 0

    def nest() -> None:
        nonlocal depth
        depth += 1
        if depth > MAX_COND_DEPTH:
            raise ValueError(f"the condition nests more than {MAX_COND_DEPTH} deep (parentheses, "
                             f"!, odd(), even(); accepted: at most {MAX_COND_DEPTH})")

    def peek() -> str | None:
        return toks[i] if i < len(toks) else None

    def take(want: str | None = None) -> str:
        nonlocal i
        t = peek()
        if t is None or (want is not None and t != want):
            raise ValueError(f"expected {want or 'more'} in condition {text!r}")
        i += 1
        return t

    def p_or() -> Expr:
        e = p_and()
        while peek() == "||":
            take()
            e = Expr("or", (e, p_and()))
        return e

    def p_and() -> Expr:
        e = p_cmp()
        while peek() == "&&":
            take()
            e = Expr("and", (e, p_cmp()))
        return e

    def p_cmp() -> Expr:
        e = p_unary()
        if peek() in ("==", "!="):
            op = "eq" if take() == "==" else "ne"
            e = Expr(op, (e, p_unary()))
        return e

    def p_unary() -> Expr:
        nonlocal depth
        t = peek()
        if t in ("!", "odd", "even", "("):
            nest()
            take()
            if t == "!":
                e = Expr("not", (p_unary(),))
            elif t == "(":
                e = p_or()
                take(")")
            else:
                take("(")
                e = Expr(t, (p_or(),))
                take(")")
            depth -= 1
            return e
        t = take()
        if t.isdigit():
            if int(t) >= 1 << 32:
                raise ValueError(f"{t} does not fit the 32-bit sequence (accepted: 0 to "
                                 f"{(1 << 32) - 1})")
            return Expr("int", (int(t),))
        if t in ("==", "!=", "&&", "||", ")"):
            raise ValueError(f"unexpected {t!r} in condition {text!r}")
        return Expr("var", (t,))

    e = p_or()
    if peek() is not None:
        raise ValueError(f"unexpected {peek()!r} in condition {text!r}")
    return e


# ---- operations -------------------------------------------------------------

@dataclass(frozen=True)
class Op:
    """One operation of a writer's section or a reader's snapshot.

    kind: 'inc' (sequence += 1), 'store', 'load', 'fence', 'lock', 'copy',
    'cond'.  access: 'plain', 'once' (READ_ONCE/WRITE_ONCE), 'acquire',
    'release'.
    """

    kind: str
    text: str
    line: int = 0
    field: str | None = None
    access: str | None = None
    var: str | None = None
    value: str | None = None
    fence: str | None = None
    lockop: str | None = None
    lock: str | None = None
    cond: Expr | None = None
    action: str | None = None
    with_sequence: bool = False  # 'snap = *m': the copy includes the sequence
    comment: str = ""

    @property
    def is_ordering(self) -> bool:
        """An ordering annotation: what ablation removes or weakens."""
        return (self.kind in ("fence", "lock")
                or self.access in ("once", "acquire", "release"))


_F = "|".join(FIELDS)
_V = "|".join(re.escape(v) for v in VALUES)
_RE_INC = re.compile(r"^sequence\s*\+\+$")
_RE_INC_M = re.compile(r"^(WRITE_ONCE|smp_store_release)\(\s*sequence\s*,\s*sequence\s*\+\s*1\s*\)$")
_RE_STORE = re.compile(rf"^({_F})\s*=\s*({_V})$")
_RE_STORE_M = re.compile(rf"^(WRITE_ONCE|smp_store_release)\(\s*({_F})\s*,\s*({_V})\s*\)$")
_RE_FENCE = re.compile(rf"^({'|'.join(FENCES)})\(\)$")
_RE_LOCK = re.compile(rf"^({'|'.join(LOCK_OPS)})\(\s*({'|'.join(LOCKS)})\s*\)$")
_RE_LOAD = re.compile(rf"^([a-z_][a-z0-9_]*)\s*=\s*(?:(READ_ONCE|smp_load_acquire)\(\s*({_F})\s*\)|({_F}))$")
_RE_COND = re.compile(r"^if\s*\((.*)\)\s*(\w+)$")
_ACCESS = {"WRITE_ONCE": "once", "smp_store_release": "release",
           "READ_ONCE": "once", "smp_load_acquire": "acquire"}


_PUNCT = frozenset(("odd", "even", "==", "!=", "&&", "||", "!", "(", ")"))


def parse_op(text: str, side: str, line: int = 0) -> Op:
    """One operation as written in a file; ValueError says what is wrong."""
    body, _, comment = text.partition("#")
    body = body.strip()
    comment = comment.strip()
    if not body:
        raise ValueError("empty operation")
    if m := _RE_FENCE.fullmatch(body):
        return Op("fence", body, line, fence=m.group(1), comment=comment)
    if m := _RE_LOCK.fullmatch(body):
        return Op("lock", body, line, lockop=m.group(1), lock=m.group(2), comment=comment)
    if side == "writer":
        if _RE_INC.fullmatch(body):
            return Op("inc", body, line, field="sequence", access="plain", comment=comment)
        if m := _RE_INC_M.fullmatch(body):
            return Op("inc", body, line, field="sequence", access=_ACCESS[m.group(1)],
                      comment=comment)
        if m := _RE_STORE.fullmatch(body):
            return _store(body, line, m.group(1), m.group(2), "plain", comment)
        if m := _RE_STORE_M.fullmatch(body):
            return _store(body, line, m.group(2), m.group(3), _ACCESS[m.group(1)], comment)
        raise ValueError(f"unknown writer operation {body!r} (accepted: sequence++, "
                         "WRITE_ONCE(sequence, sequence + 1), smp_store_release(sequence, "
                         "sequence + 1), FIELD = NOW|GFP|ORDER|0, WRITE_ONCE(FIELD, VALUE), "
                         "smp_store_release(FIELD, VALUE), smp_wmb(), smp_rmb(), smp_mb(), "
                         "barrier(), LOCKOP(global|slot))")
    if body in ("copy", "copy_once"):
        return Op("copy", body, line, access="plain" if body == "copy" else "once",
                  comment=comment)
    if re.fullmatch(r"snap\s*=\s*\*m", body):
        return Op("copy", body, line, access="plain", with_sequence=True, comment=comment)
    if m := _RE_COND.fullmatch(body):
        action = m.group(2)
        if action not in ACTIONS:
            raise ValueError(f"unknown action {action!r} (accepted: {', '.join(ACTIONS)})")
        return Op("cond", body, line, cond=parse_cond(m.group(1)), action=action, comment=comment)
    if m := _RE_LOAD.fullmatch(body):
        var = m.group(1)
        if var in RESERVED or var in FIELDS or not VAR_RE.fullmatch(var) or \
                var.startswith(("kmw", "memalloc", "__")):
            raise ValueError(f"bad variable name {var!r} (accepted: a short lower-case name "
                             "other than a field's)")
        if m.group(2):
            return Op("load", body, line, field=m.group(3), access=_ACCESS[m.group(2)],
                      var=var, comment=comment)
        return Op("load", body, line, field=m.group(4), access="plain", var=var, comment=comment)
    raise ValueError(f"unknown reader operation {body!r} (accepted: VAR = FIELD, VAR = "
                     "READ_ONCE(FIELD), VAR = smp_load_acquire(FIELD), copy, copy_once, "
                     "snap = *m, if (COND) accept|retry|skip, smp_rmb(), smp_wmb(), smp_mb(), "
                     "barrier(), LOCKOP(global|slot))")


def _store(body: str, line: int, fld: str, value: str, access: str, comment: str) -> Op:
    if fld not in DATA_FIELDS:
        raise ValueError(f"a write section stores {', '.join(DATA_FIELDS)} (the sequence "
                         f"with ++), not {fld!r}")
    want = VALUES[value]
    if want is not None and want != fld:
        raise ValueError(f"{fld} = {value}: {value} goes in {want}")
    if want is None and fld != "dumped":
        raise ValueError(f"{fld} = {value}: a section stores the allocation's own value "
                         "(start = NOW, gfp = GFP, order = ORDER; only dumped = 0)")
    return Op("store", body, line, field=fld, access=access, value=value, comment=comment)


# ---- the protocol -------------------------------------------------------------

@dataclass(frozen=True)
class Outcome:
    name: str
    expect: str
    reason: str
    line: int = 0


@dataclass(frozen=True)
class Spec:
    """One protocol, as its file declares it."""

    name: str
    stands_for: str
    note: str
    writer_name: str
    reader_name: str
    valid_access: str  # how the writer reads and updates valid: 'plain' or 'once'
    section: tuple[Op, ...]
    prologue: tuple[Op, ...]
    snapshot: tuple[Op, ...]
    snapshot_sequence: str | None  # the variable the snapshot's sequence is
    expect: dict[str, str]  # model -> 'never' | 'sometimes'
    outcomes: tuple[Outcome, ...]
    path: str = ""
    source: str = field(default="", repr=False, compare=False)

    @property
    def ident(self) -> str:
        """The name as a C identifier."""
        return self.name.replace("-", "_")

    @property
    def is_lock(self) -> bool:
        return any(op.kind == "lock" for op in self.section)

    @property
    def sound(self) -> bool:
        """True when the table expects no tear under any model."""
        return all(v == "never" for v in self.expect.values())

    def outcome(self, name: str) -> Outcome:
        for o in self.outcomes:
            if o.name == name:
                return o
        if name in (REJECTED_ODD, REJECTED_INVALID):
            return Outcome(name, "acceptable", "the reader refused the slot (not listed in "
                           "the file: a refusal is never wrong)")
        return Outcome(name, "forbidden", "not an outcome this protocol can produce")

    def forbidden(self, counts: dict[str, int]) -> list[str]:
        return [n for n, c in counts.items() if c and self.outcome(n).expect == "forbidden"]

    def skip_outcome(self, op: Op) -> str:
        """What ``if (...) skip`` rejects as: rejected-invalid when the
        condition looks at valid (a variable loaded from it, or snap.valid),
        else rejected-odd (a section in progress)."""
        invalid = {o.var for o in self.prologue + self.snapshot
                   if o.kind == "load" and o.field == "valid"} | {"snap.valid"}
        return REJECTED_INVALID if op.cond.vars() & invalid else REJECTED_ODD

    def ordering_ops(self) -> list[tuple[str, int, Op]]:
        """Every ordering annotation, as (list, index, op): what ablation drops."""
        out = []
        for where in ("section", "prologue", "snapshot"):
            for i, op in enumerate(getattr(self, where)):
                if op.is_ordering:
                    out.append((where, i, op))
        return out

    def without(self, where: str, index: int) -> "Spec":
        """This protocol with one ordering annotation removed (a fence, or a
        lock pair) or weakened to a plain access."""
        ops = list(getattr(self, where))
        op = ops[index]
        if op.kind == "fence":
            del ops[index]
        elif op.kind == "lock":
            partner = _lock_partner(ops, index)
            for j in sorted((index, partner), reverse=True):
                del ops[j]
        else:
            ops[index] = replace(op, access="plain", text=f"{op.text} [plain]")
        return replace(self, name=f"{self.name}-without-{where}-{index}", **{where: tuple(ops)})

    def to_dict(self) -> dict:
        return {
            "name": self.name, "stands_for": self.stands_for, "note": self.note,
            "writer": self.writer_name, "reader": self.reader_name,
            "path": self.path, "sound": self.sound, "expect": dict(self.expect),
            "section": [op.text for op in self.section],
            "prologue": [op.text for op in self.prologue],
            "snapshot": [op.text for op in self.snapshot],
            "outcomes": [{"name": o.name, "expect": o.expect, "reason": o.reason}
                         for o in self.outcomes],
        }


def _lock_partner(ops: list[Op], index: int) -> int:
    op = ops[index]
    base = op.lockop.replace("_unlock", "").replace("_lock", "")
    unlocking = op.lockop.endswith("unlock")
    rng = range(index - 1, -1, -1) if unlocking else range(index + 1, len(ops))
    for j in rng:
        o = ops[j]
        if o.kind == "lock" and o.lock == op.lock and o.lockop.startswith(base) \
                and o.lockop.endswith("unlock") != unlocking:
            return j
    return index


# ---- loading ----------------------------------------------------------------

def _locate(lines: list[str], start: int, needle: str) -> int:
    """The 1-based line at or after ``start`` holding ``needle``; 0 if none."""
    for i in range(max(start - 1, 0), len(lines)):
        if needle in lines[i]:
            return i + 1
    return 0


def _table_line(lines: list[str], table: str) -> int:
    return _locate(lines, 1, f"[{table}]") if table else 1


def _key_line(lines: list[str], table: str, key: str) -> int:
    start = _table_line(lines, table) if table else 1
    pat = re.compile(rf'^\s*"?{re.escape(key)}"?\s*=')
    for i in range(max(start - 1, 0), len(lines)):
        if pat.match(lines[i]):
            return i + 1
        if table and i + 1 > start and lines[i].lstrip().startswith("[") and not \
                lines[i].lstrip().startswith("[["):
            if re.match(r"^\s*\[[a-z]", lines[i]):
                break
    return start


def load_text(text: str, path: str = "<string>") -> Spec:
    """Parse and validate a protocol file's text; SpecError on any fault."""
    lines = text.splitlines()
    shown = path if path.isprintable() else repr(path)

    def fail(line: int, key: str, msg: str) -> SpecError:
        return SpecError(f"{shown}:{line}: {key}: {msg}")

    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = re.search(r"line (\d+)", str(exc))
        raise SpecError(f"{shown}:{m.group(1) if m else 0}: not valid TOML: {exc}") from None
    except RecursionError:
        raise SpecError(f"{shown}:0: not valid TOML: nested too deeply") from None

    _check_strings(doc, lines, fail)
    known_top = {"format", "name", "stands_for", "note", "writer", "reader", "expect", "outcomes"}
    for k in doc:
        if k not in known_top:
            raise fail(_key_line(lines, "", k), k, f"unknown key (accepted: {', '.join(sorted(known_top))})")

    def get(table: dict, tname: str, key: str, typ: type, default=None, required=True):
        if key not in table:
            if required and default is None:
                raise fail(_table_line(lines, tname), f"{tname + '.' if tname else ''}{key}",
                           "missing")
            return default
        v = table[key]
        if not isinstance(v, typ) or isinstance(v, bool) and typ is not bool:
            raise fail(_key_line(lines, tname, key), f"{tname + '.' if tname else ''}{key}",
                       f"must be a {typ.__name__}, not {type(v).__name__}")
        return v

    fmt = get(doc, "", "format", int)
    if fmt != FORMAT:
        raise fail(_key_line(lines, "", "format"), "format", f"{fmt} (accepted: {FORMAT})")
    name = get(doc, "", "name", str)
    if not NAME_RE.fullmatch(name) or name.replace("-", "_") in RESERVED or \
            name.startswith(("kmw", "memalloc")):
        raise fail(_key_line(lines, "", "name"), "name",
                   f"{name!r} (accepted: a lower-case letter, then up to 39 of a-z, 0-9, -; "
                   "not a C keyword, not starting with kmw or memalloc)")
    stands_for = get(doc, "", "stands_for", str, "", required=False)
    note = get(doc, "", "note", str, "", required=False)

    w = get(doc, "", "writer", dict)
    r = get(doc, "", "reader", dict)
    for tname, table, allowed in (("writer", w, {"name", "section", "valid"}),
                                  ("reader", r, {"name", "prologue", "snapshot",
                                                 "snapshot_sequence"})):
        for k in table:
            if k not in allowed:
                raise fail(_key_line(lines, tname, k), f"{tname}.{k}",
                           f"unknown key (accepted: {', '.join(sorted(allowed))})")
    valid_access = get(w, "writer", "valid", str, "plain", required=False)
    if valid_access not in ("plain", "once"):
        raise fail(_key_line(lines, "writer", "valid"), "writer.valid",
                   f"{valid_access!r} (accepted: plain, once)")

    def ops(table: dict, tname: str, key: str, side: str, required: bool = True) -> tuple[Op, ...]:
        raw = get(table, tname, key, list, [] if not required else None, required=required)
        if len(raw) > MAX_OPS:
            raise fail(_key_line(lines, tname, key), f"{tname}.{key}",
                       f"{len(raw)} operations (accepted: at most {MAX_OPS})")
        out = []
        cursor = _key_line(lines, tname, key)
        for i, item in enumerate(raw):
            if not isinstance(item, str):
                raise fail(cursor, f"{tname}.{key}[{i}]", "must be a string")
            ln = _locate(lines, cursor, item) or cursor
            cursor = ln
            try:
                out.append(parse_op(item, side, ln))
            except ValueError as exc:
                raise fail(ln, f"{tname}.{key}[{i}]", str(exc)) from None
        return tuple(out)

    section = ops(w, "writer", "section", "writer")
    prologue = ops(r, "reader", "prologue", "reader", required=False)
    snapshot = ops(r, "reader", "snapshot", "reader")
    snap_seq = get(r, "reader", "snapshot_sequence", str, None, required=False)

    expect_t = get(doc, "", "expect", dict)
    expect: dict[str, str] = {}
    for mdl in MODELS:
        v = get(expect_t, "expect", mdl, str)
        if v not in VERDICTS:
            raise fail(_key_line(lines, "expect", mdl), f"expect.{mdl}",
                       f"{v!r} (accepted: {', '.join(VERDICTS)})")
        expect[mdl] = v
    for k in expect_t:
        if k not in MODELS:
            raise fail(_key_line(lines, "expect", k), f"expect.{k}",
                       f"unknown model (accepted: {', '.join(MODELS)})")

    out_t = get(doc, "", "outcomes", dict)
    outcomes = []
    for oname, o in out_t.items():
        ln = _key_line(lines, "outcomes", oname)
        if oname not in OUTCOMES:
            raise fail(ln, f"outcomes.{oname}", f"unknown outcome (accepted: {', '.join(OUTCOMES)})")
        if not isinstance(o, dict) or set(o) - {"expect", "reason"} or "expect" not in o:
            raise fail(ln, f"outcomes.{oname}", "must be { expect = \"...\", reason = \"...\" }")
        if o["expect"] not in EXPECTS:
            raise fail(ln, f"outcomes.{oname}.expect",
                       f"{o['expect']!r} (accepted: {', '.join(EXPECTS)})")
        outcomes.append(Outcome(oname, o["expect"], str(o.get("reason", "")), ln))
    if CONSISTENT not in out_t:
        raise fail(_table_line(lines, "outcomes"), "outcomes.consistent", "missing")

    who = {}
    for tname, table in (("writer", w), ("reader", r)):
        who[tname] = get(table, tname, "name", str, f"{tname[0].upper()}-{name}", required=False)
        if not WHO_RE.fullmatch(who[tname]):
            raise fail(_key_line(lines, tname, "name"), f"{tname}.name",
                       f"{who[tname]!r} (accepted: a letter, then up to 39 of A-Z, a-z, 0-9, "
                       "_ . + -)")
    spec = Spec(name=name, stands_for=stands_for, note=note,
                writer_name=who["writer"], reader_name=who["reader"],
                valid_access=valid_access, section=section, prologue=prologue,
                snapshot=snapshot, snapshot_sequence=snap_seq, expect=expect,
                outcomes=tuple(outcomes), path=path, source=text)
    _validate(spec, lines, fail)
    return spec


def _validate(spec: Spec, lines: list[str], fail) -> None:
    sec = spec.section
    incs = [op for op in sec if op.kind == "inc"]
    if not spec.is_lock and len(incs) < 2:
        raise fail(_key_line(lines, "writer", "section"), "writer.section",
                   "a writer must increment the sequence (twice: odd, then even) unless it "
                   "takes a lock")
    if len(incs) % 2:
        raise fail(_key_line(lines, "writer", "section"), "writer.section",
                   f"the sequence goes up {len(incs)} times a section (accepted: an even "
                   "number, so that it is even between sections)")
    stored = {op.field for op in sec if op.kind == "store"}
    missing = [f for f in ("start", "gfp", "order") if f not in stored]
    if missing:
        raise fail(_key_line(lines, "writer", "section"), "writer.section",
                   f"the section never stores {', '.join(missing)}")
    kinds: dict[str, tuple[str, int]] = {}  # lock name -> (spin or rw, first line)
    for tname, key, lst in (("writer", "section", sec), ("reader", "prologue", spec.prologue),
                            ("reader", "snapshot", spec.snapshot)):
        held: list[Op] = []
        for op in lst:
            if op.kind == "lock":
                kind = "spin" if op.lockop.startswith("spin") else "rw"
                first = kinds.setdefault(op.lock, (kind, op.line))
                if first[0] != kind:
                    raise fail(op.line, f"{tname}.{key}",
                               f"{op.text}: the {op.lock} lock is a "
                               f"{'spinlock' if first[0] == 'spin' else 'rwlock'} (line "
                               f"{first[1]}); one lock, one kind")
                if not op.lockop.endswith("unlock") and held:
                    raise fail(op.line, f"{tname}.{key}",
                               f"{op.text} while holding {held[-1].text} (accepted: one lock "
                               "at a time, so that no lock order can deadlock)")
                if op.lockop.endswith("unlock"):
                    want = op.lockop.replace("unlock", "lock")
                    if not held or held[-1].lockop != want or held[-1].lock != op.lock:
                        raise fail(op.line, f"{tname}.{key}", f"{op.text} without {want}({op.lock})")
                    held.pop()
                else:
                    held.append(op)
            elif op.kind == "cond" and held:
                raise fail(op.line, f"{tname}.{key}",
                           f"{op.text}: a decision while holding {held[-1].text} (unlock first)")
        if held:
            raise fail(held[-1].line, f"{tname}.{key}", f"{held[-1].text} is never unlocked")
    for op in spec.prologue:
        if op.kind == "copy":
            raise fail(op.line, "reader.prologue", "the copy belongs in reader.snapshot")
        if op.kind == "cond" and op.action == "retry":
            raise fail(op.line, "reader.prologue", "retry is only for reader.snapshot")
        if op.kind == "cond" and op.action == "accept":
            raise fail(op.line, "reader.prologue", f"{op.text}: accepts before the copy "
                       "(accepted: accept only in reader.snapshot, after the copy)")
    copies = [op for op in spec.snapshot if op.kind == "copy"]
    if len(copies) != 1:
        raise fail(_key_line(lines, "reader", "snapshot"), "reader.snapshot",
                   f"{len(copies)} copies (accepted: exactly one of copy, copy_once, snap = *m)")
    copy = copies[0]
    defined: set[str] = set()
    for op in spec.prologue:
        if op.kind == "load":
            defined.add(op.var)
        if op.kind == "cond":
            _check_vars(op, defined, fail, "reader.prologue")
    copied = False
    for op in spec.snapshot:
        if op.kind == "load":
            defined.add(op.var)
        elif op.kind == "copy":
            copied = True
            if not op.with_sequence:
                sv = spec.snapshot_sequence
                if sv is None:
                    raise fail(op.line, "reader.snapshot_sequence",
                               "missing: name the variable the snapshot's sequence is "
                               "(or copy it with 'snap = *m')")
                if sv not in defined:  # a variable loaded before the copy, not snap.*
                    raise fail(_key_line(lines, "reader", "snapshot_sequence"),
                               "reader.snapshot_sequence",
                               f"{sv!r} is not loaded before the copy (accepted: a variable "
                               "loaded from sequence before the copy)")
                defined.add("snap.sequence")
            defined |= {"snap.valid"} | ({"snap.sequence"} if op.with_sequence else set())
        elif op.kind == "cond":
            _check_vars(op, defined, fail, "reader.snapshot")
            if "snap.valid" in op.cond.vars() and not copied:
                raise fail(op.line, "reader.snapshot", "snap.valid before the copy")
    if spec.snapshot_sequence is not None:
        src = {o.var: o.field for o in spec.prologue + spec.snapshot if o.kind == "load"}
        if src.get(spec.snapshot_sequence, "sequence") != "sequence":
            raise fail(_key_line(lines, "reader", "snapshot_sequence"),
                       "reader.snapshot_sequence",
                       f"{spec.snapshot_sequence!r} is loaded from "
                       f"{src[spec.snapshot_sequence]} (accepted: a variable loaded from "
                       "sequence)")
    prologue_vars = {o.var for o in spec.prologue if o.kind == "load"}
    copied = False
    for op in spec.snapshot:
        if op.kind == "copy":
            copied = True
        if op.kind == "cond" and op.action == "accept" and not copied:
            raise fail(op.line, "reader.snapshot", f"{op.text}: accepts before the copy "
                       "(accepted: accept only after copy)")
        if op.kind == "cond" and op.action == "retry" and op.cond.vars() <= prologue_vars:
            raise fail(op.line, "reader.snapshot", f"{op.text}: retries on values the "
                       "prologue loaded once, so it would retry forever (accepted: a "
                       "condition on a value snapshot loads)")
    for o in spec.outcomes:
        if o.name in TORN_KINDS and o.expect == "acceptable":
            raise fail(o.line, f"outcomes.{o.name}", "a torn snapshot is never acceptable "
                       "(accepted: forbidden, or interesting for a control)")
    if copy.with_sequence and spec.snapshot_sequence is not None:
        raise fail(copy.line, "reader.snapshot_sequence",
                   "'snap = *m' copies the sequence itself; drop snapshot_sequence")
    loads = [op for op in spec.prologue + spec.snapshot if op.kind == "load"]
    seen: set[str] = set()
    for op in loads:
        if op.var in seen:
            raise fail(op.line, "reader", f"{op.var} is loaded twice (use another name)")
        seen.add(op.var)


def _check_strings(doc: dict, lines: list[str], fail) -> None:
    """Every string of the file, keys included: printable (no control, format
    or line-separator character: str.isprintable, which refuses tabs and
    newlines too) and at most MAX_TEXT characters (the note MAX_NOTE).  Names
    are held to their own patterns after this."""
    stack: list[tuple[tuple[str, ...], object]] = [((), doc)]
    while stack:  # depth first, in the file's order; no recursion
        where, v = stack.pop()
        if isinstance(v, dict):
            for k in v:
                _check_string(where + (k,), k, MAX_TEXT, lines, fail, is_key=True)
            stack += [(where + (k,), x) for k, x in reversed(v.items())]
        elif isinstance(v, list):
            stack += [(where[:-1] + (f"{where[-1]}[{i}]",), x)
                      for i, x in reversed(list(enumerate(v)))]
        elif isinstance(v, str):
            _check_string(where, v, MAX_NOTE if where == ("note",) else MAX_TEXT, lines, fail)


def _check_string(where: tuple[str, ...], v: str, limit: int, lines: list[str], fail,
                  is_key: bool = False) -> None:
    bad = next((i for i, ch in enumerate(v) if not ch.isprintable()), None)
    if bad is None and len(v) <= limit:
        return
    key = ".".join(p if p.isprintable() and len(p) <= 60 else repr(p[:60]) for p in where)
    # the line: the key's (a top-level key, or a key of a top-level table),
    # then, for an array's element, the element's own if it is written plainly
    table, name = (where[0], where[1]) if len(where) > 1 else ("", where[0])
    line = _key_line(lines, table, name.split("[")[0])
    if bad is None and where[-1].endswith("]"):
        line = _locate(lines, line, v[:40]) or line
    what = "key" if is_key else "string"
    if bad is not None:
        raise fail(line, key, f"the {what} holds the unprintable character {v[bad]!r} at "
                   f"position {bad} (accepted: printable text: no control, format or "
                   "line-separator character, no tab)")
    raise fail(line, key, f"the {what} is {len(v)} characters long (accepted: at most {limit})")


def _check_vars(op: Op, defined: set[str], fail, key: str) -> None:
    for v in op.cond.vars():
        if v not in defined:
            raise fail(op.line, key, f"{op.text}: {v} is not loaded before it")


def load_path(path: str | Path, option: str = "--protocol-file") -> Spec:
    """Read and parse a protocol file (kmallocwd.inputs: size-bounded,
    regular files only, UTF-8); SpecError with one line on any fault."""
    from kmallocwd.errors import UsageError
    from kmallocwd.inputs import read_text

    try:
        text = read_text(str(path), option, MAX_FILE_BYTES)
    except UsageError as exc:
        raise SpecError(str(exc)) from None
    return load_text(text, str(path))


BUILTIN_DIR = Path(__file__).resolve().parent
# The built-ins, in the order the tables list them.
BUILTIN_ORDER = ("v2-rwlock", "v3", "v4-parity", "seqcount", "seqcount-acquire", "c11",
                 "no-wmb", "no-rmb", "none", "slot-rwlock", "global-spinlock")


def builtin_specs() -> tuple[Spec, ...]:
    files = {p.stem: p for p in BUILTIN_DIR.glob("*.toml")}
    order = [n for n in BUILTIN_ORDER if n in files] + sorted(set(files) - set(BUILTIN_ORDER))
    specs = []
    for n in order:
        s = load_path(files[n])
        specs.append(replace(s, path=f"kmallocwd/protocols/{files[n].name}"))
    return tuple(specs)
