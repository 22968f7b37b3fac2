"""Format 2 of the protocol files (docs/protocols.md): any publish protocol
over any declared struct.  This module reads what format 1 does not have:
the ``[struct]`` table, the writer's frame, and the operations over the
declared fields (per-field loads into the snapshot, the latch's two copies,
``expired()``); then it checks a format-2 Spec's rules.

Format 1 is the special case its shim (spec.py) builds: the fixed struct
memalloc_info, the ``valid`` frame, ``copy`` of every field but the
sequence.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from kmallocwd.protocols.cond import parse_cond
from kmallocwd.protocols.ops import Op
from kmallocwd.protocols.vocab import (ACTIONS, FENCES, LOCK_OPS, LOCKS, RESERVED, VAR_RE, Kind)

MAX_FIELDS = 16
BITS = (8, 16, 32, 64)
COPIES = (1, 2)
FRAMES = ("flag", "bare")
# The values a section stores: a stamp unique to the section (NOW, GFP and
# ORDER are the allocation's own, STAMP any other field's), or an integer.
STAMPS = ("NOW", "GFP", "ORDER", "STAMP")
FIELD_RE = re.compile(r"[a-z][a-z0-9_]{0,15}")
# Names a field may not take: the reader's variables' reserved names, and
# the emulator's own members and the operations' words.
FIELD_RESERVED = RESERVED | frozenset(
    "witness rwlock copy copy_once snap expired odd even smp_wmb smp_rmb smp_mb barrier "
    "READ_ONCE WRITE_ONCE smp_load_acquire smp_store_release NOW GFP ORDER STAMP".split())


@dataclass(frozen=True)
class Field:
    """One field of the declared struct."""

    name: str
    bits: int = 32
    copies: int = 1  # 2: the latch's copy[0] and copy[1]
    line: int = 0

    @property
    def c_type(self) -> str:
        return {8: "uint8_t", 16: "uint16_t", 32: "uint32_t", 64: "uint64_t"}[self.bits]


# Format 1's struct memalloc_info, as the shim declares it.
FORMAT1_FIELDS = (Field("sequence", 32), Field("valid", 8), Field("dumped", 8),
                  Field("start", 64), Field("order", 32), Field("gfp", 32))


def parse_struct(table: dict, lines: list[str], fail, key_line) -> tuple[tuple[Field, ...],
                                                                        tuple[str, ...]]:
    """``[struct]``: the fields and the covered ones; fail(...) on any fault."""
    for k in table:
        if k not in ("fields", "covered"):
            raise fail(key_line(lines, "struct", k), f"struct.{k}",
                       "unknown key (accepted: covered, fields)")
    raw = table.get("fields")
    ln = key_line(lines, "struct", "fields")
    if not isinstance(raw, list) or not raw:
        raise fail(ln, "struct.fields", "must be a list of { name = \"...\", bits = 8|16|32|64, "
                   "copies = 1|2 } (at least one)")
    if len(raw) > MAX_FIELDS:
        raise fail(ln, "struct.fields", f"{len(raw)} fields (accepted: at most {MAX_FIELDS})")
    fields: list[Field] = []
    for i, f in enumerate(raw):
        where = f"struct.fields[{i}]"
        if not isinstance(f, dict) or set(f) - {"name", "bits", "copies"} or "name" not in f:
            raise fail(ln, where, "must be { name = \"...\", bits = 8|16|32|64, copies = 1|2 }")
        name, bits, copies = f["name"], f.get("bits", 32), f.get("copies", 1)
        if not isinstance(name, str) or not FIELD_RE.fullmatch(name) or name in FIELD_RESERVED \
                or name.startswith(("kmw", "memalloc", "__")):
            raise fail(ln, f"{where}.name", f"{name!r} (accepted: a lower-case letter, then up "
                       "to 15 of a-z, 0-9, _; not a C keyword, not witness, copy or snap)")
        if any(x.name == name for x in fields):
            raise fail(ln, f"{where}.name", f"{name!r} is declared twice")
        if type(bits) is not int or bits not in BITS:
            raise fail(ln, f"{where}.bits", f"{bits!r} (accepted: 8, 16, 32, 64)")
        if type(copies) is not int or copies not in COPIES:
            raise fail(ln, f"{where}.copies", f"{copies!r} (accepted: 1, 2)")
        fields.append(Field(name, bits, copies, ln))
    cov = table.get("covered")
    cl = key_line(lines, "struct", "covered")
    if not isinstance(cov, list) or not cov or not all(isinstance(c, str) for c in cov):
        raise fail(cl, "struct.covered", "must be a list of field names (at least one): the "
                   "fields a torn check compares")
    names = [f.name for f in fields]
    for c in cov:
        if c not in names:
            raise fail(cl, "struct.covered", f"{c!r} is not a declared field (accepted: "
                       f"{', '.join(names)})")
    if len(set(cov)) != len(cov):
        raise fail(cl, "struct.covered", "a field is listed twice")
    return tuple(fields), tuple(cov)


# ---- operations ---------------------------------------------------------------

_N = r"[a-z][a-z0-9_]*"
_TARGET = rf"(?:copy\[\s*([01])\s*\]\.)?({_N})"  # F or copy[i].F
_VALUE = r"(NOW|GFP|ORDER|STAMP|[0-9]+)"
_SRC = rf"(?:copy\[\s*({_N})\s*&\s*1\s*\]\.)?({_N})"  # F or copy[VAR & 1].F
_W_INC = re.compile(rf"({_N})\s*\+\+")
_W_INC_M = re.compile(rf"(WRITE_ONCE|smp_store_release)\(\s*({_N})\s*,\s*({_N})\s*\+\s*1\s*\)")
_W_STORE = re.compile(rf"{_TARGET}\s*=\s*{_VALUE}")
_W_STORE_M = re.compile(rf"(WRITE_ONCE|smp_store_release)\(\s*{_TARGET}\s*,\s*{_VALUE}\s*\)")
_W_LATCH = re.compile(rf"raw_write_seqcount_latch\(\s*({_N})\s*\)")
_R_LOAD = re.compile(rf"(snap\.{_N}|{_N})\s*=\s*(?:(READ_ONCE|smp_load_acquire)\(\s*{_SRC}\s*\)"
                     rf"|{_SRC})")
_R_COPY = re.compile(rf"(copy|copy_once)(?:\[\s*({_N})\s*&\s*1\s*\])?")
_FENCE = re.compile(rf"({'|'.join(FENCES)})\(\)")
_LOCK = re.compile(rf"({'|'.join(LOCK_OPS)})\(\s*({'|'.join(LOCKS)})\s*\)")
_COND = re.compile(r"if\s*\((.*)\)\s*(\w+)")
_ACCESS = {"WRITE_ONCE": "once", "smp_store_release": "release",
           "READ_ONCE": "once", "smp_load_acquire": "acquire"}
WRITER_ACCEPTED = ("FIELD++, WRITE_ONCE(FIELD, FIELD + 1), smp_store_release(FIELD, FIELD + 1), "
                   "FIELD = NOW|GFP|ORDER|STAMP|N, copy[0|1].FIELD = VALUE, WRITE_ONCE(TARGET, "
                   "VALUE), smp_store_release(TARGET, VALUE), raw_write_seqcount_latch(FIELD), "
                   "smp_wmb(), smp_rmb(), smp_mb(), barrier(), LOCKOP(global|slot)")
READER_ACCEPTED = ("VAR = FIELD, VAR = READ_ONCE(FIELD), VAR = smp_load_acquire(FIELD), "
                   "snap.FIELD = the same, copy[VAR & 1].FIELD for a two-copy field, copy, "
                   "copy_once, copy[VAR & 1], copy_once[VAR & 1], if (COND) accept|retry|skip, "
                   "smp_rmb(), smp_wmb(), smp_mb(), barrier(), LOCKOP(global|slot)")


def parse_ops(text: str, side: str, line: int, fields: dict[str, Field]) -> list[Op]:
    """One operation as written in a format-2 file: its Ops (a latch update
    is three); ValueError says what is wrong."""
    body, _, comment = text.partition("#")
    body, comment = body.strip(), comment.strip()
    if not body:
        raise ValueError("empty operation")
    if m := _FENCE.fullmatch(body):
        return [Op(Kind.FENCE, body, line, fence=m.group(1), comment=comment)]
    if m := _LOCK.fullmatch(body):
        return [Op(Kind.LOCK, body, line, lockop=m.group(1), lock=m.group(2), comment=comment)]
    if side == "writer":
        return _writer_op(body, line, comment, fields)
    return [_reader_op(body, line, comment, fields)]


def _field(name: str, fields: dict[str, Field], copies: int | None = None) -> Field:
    if name not in fields:
        raise ValueError(f"{name!r} is not a declared field (accepted: {', '.join(fields)})")
    f = fields[name]
    if copies is not None and f.copies != copies:
        raise ValueError(f"{name} has {f.copies} cop{'y' if f.copies == 1 else 'ies'}: "
                         + (f"write copy[0].{name} and copy[1].{name}" if f.copies == 2
                            else f"write {name}, not copy[i].{name}"))
    return f


def _writer_op(body: str, line: int, comment: str, fields: dict[str, Field]) -> list[Op]:
    if m := _W_LATCH.fullmatch(body):
        f = _field(m.group(1), fields, 1)
        # one operation per step, each named for what it is in the latch;
        # the file's comment goes to the switch itself
        return [Op(Kind.FENCE, f"{body}: smp_wmb() before", line, fence="smp_wmb",
                   comment="raw_write_seqcount_latch(): the stores before it, then the "
                   "switch; pairs with the reader's smp_rmb()"),
                Op(Kind.INC, f"{body}: {f.name}++", line, field=f.name, access="plain",
                   comment=comment),
                Op(Kind.FENCE, f"{body}: smp_wmb() after", line, fence="smp_wmb",
                   comment="raw_write_seqcount_latch(): the switch, then the copy's stores")]
    if m := _W_INC.fullmatch(body):
        f = _field(m.group(1), fields, 1)
        return [Op(Kind.INC, body, line, field=f.name, access="plain", comment=comment)]
    if m := _W_INC_M.fullmatch(body):
        if m.group(2) != m.group(3):
            raise ValueError(f"{body}: an increment stores FIELD + 1 into the same FIELD")
        f = _field(m.group(2), fields, 1)
        return [Op(Kind.INC, body, line, field=f.name, access=_ACCESS[m.group(1)],
                   comment=comment)]
    if m := _W_STORE.fullmatch(body):
        return [_store(body, line, m.group(1), m.group(2), m.group(3), "plain", comment, fields)]
    if m := _W_STORE_M.fullmatch(body):
        return [_store(body, line, m.group(2), m.group(3), m.group(4), _ACCESS[m.group(1)],
                       comment, fields)]
    raise ValueError(f"unknown writer operation {body!r} (accepted: {WRITER_ACCEPTED})")


def _store(body: str, line: int, copy: str | None, name: str, value: str, access: str,
           comment: str, fields: dict[str, Field]) -> Op:
    f = _field(name, fields, 2 if copy is not None else 1)
    if value.isdigit() and int(value) >= 1 << f.bits:
        raise ValueError(f"{value} does not fit the {f.bits}-bit {name} (accepted: 0 to "
                         f"{(1 << f.bits) - 1})")
    return Op(Kind.STORE, body, line, field=f.name, access=access, value=value,
              copy=int(copy) if copy is not None else None, comment=comment)


def _var(v: str) -> str:
    if v in RESERVED or not VAR_RE.fullmatch(v) or v.startswith(("kmw", "memalloc", "__")):
        raise ValueError(f"bad variable name {v!r} (accepted: a short lower-case name other "
                         "than a field's)")
    return v


def _reader_op(body: str, line: int, comment: str, fields: dict[str, Field]) -> Op:
    if m := _R_COPY.fullmatch(body):
        acc = "plain" if m.group(1) == "copy" else "once"
        if m.group(2):
            if not any(f.copies == 2 for f in fields.values()):
                raise ValueError(f"{body}: no field has two copies")
            return Op(Kind.COPY, body, line, access=acc, index=_var(m.group(2)),
                      comment=comment)
        return Op(Kind.COPY, body, line, access=acc, with_sequence=True, comment=comment)
    if m := _COND.fullmatch(body):
        action = m.group(2)
        if action not in ACTIONS:
            raise ValueError(f"unknown action {action!r} (accepted: {', '.join(ACTIONS)})")
        return Op(Kind.COND, body, line, cond=parse_cond(m.group(1), 2), action=action,
                  comment=comment)
    if m := _R_LOAD.fullmatch(body):
        dest = m.group(1)
        acc = _ACCESS[m.group(2)] if m.group(2) else "plain"
        index, name = (m.group(3), m.group(4)) if m.group(2) else (m.group(5), m.group(6))
        f = _field(name, fields, 2 if index else 1)
        if dest.startswith("snap."):
            if dest[5:] != name:
                raise ValueError(f"{body}: snap.{dest[5:]} is loaded from {name} (accepted: "
                                 "snap.F = F, each field into its own place)")
        else:
            if dest in fields:
                raise ValueError(f"bad variable name {dest!r} (accepted: a short lower-case "
                                 "name other than a field's)")
            _var(dest)
        return Op(Kind.LOAD, body, line, field=f.name, access=acc, var=dest,
                  index=_var(index) if index else None, comment=comment)
    raise ValueError(f"unknown reader operation {body!r} (accepted: {READER_ACCEPTED})")


# ---- the rules ------------------------------------------------------------------

def snap_fields(spec, op: Op) -> list[str]:
    """The snap.F variables a copy or load operation defines."""
    if op.kind == Kind.LOAD:
        return [op.var] if op.var.startswith("snap.") else []
    if op.kind == Kind.COPY:
        want = 2 if op.index else 1
        return [f"snap.{f.name}" for f in spec.fields if f.copies == want]
    return []


def validate(spec, lines: list[str], fail, key_line) -> None:
    """A format-2 Spec's rules (the lock rules are format 1's, checked by the
    caller)."""
    fields = {f.name: f for f in spec.fields}
    sec = spec.section
    wl = key_line(lines, "writer", "section")
    if spec.frame == "flag":
        if spec.flag not in fields or fields[spec.flag].copies != 1:
            raise fail(key_line(lines, "writer", "flag"), "writer.flag",
                       f"{spec.flag!r} (accepted: a declared one-copy field)")
        if spec.flag in spec.covered:
            raise fail(key_line(lines, "struct", "covered"), "struct.covered",
                       f"{spec.flag} is the frame's flag, written outside the section")
        for op in sec:
            if op.field == spec.flag:
                raise fail(op.line, "writer.section", f"{op.text}: the frame writes "
                           f"{spec.flag} (flag++ after the section, flag-- at stop)")
    counters = {op.field for op in sec if op.kind == Kind.INC}
    for op in sec:
        if op.kind == Kind.STORE and op.field in counters:
            raise fail(op.line, "writer.section", f"{op.text}: {op.field} is incremented in the "
                       "section too (accepted: a field is a counter or stored, not both)")
    for op in sec:
        if op.kind == Kind.STORE and op.field in spec.covered and op.value not in STAMPS:
            raise fail(op.line, "writer.section", f"{op.text}: {op.field} is covered, and a "
                       "constant is the same in every section: it tells no section apart "
                       "(accepted in a covered field: NOW, GFP, ORDER, STAMP)")
    for c in spec.covered:
        if c in counters:
            continue
        for k in range(fields[c].copies):
            if not any(op.kind == Kind.STORE and op.field == c and op.value in STAMPS
                       and (op.copy or 0) == k for op in sec):
                what = f"copy[{k}].{c}" if fields[c].copies == 2 else c
                raise fail(wl, "writer.section", f"the covered field {c}: the section never "
                           f"increments it or stores a stamp (NOW, GFP, ORDER, STAMP) in {what}")
    if not any(op.kind in (Kind.INC, Kind.STORE) for op in sec):
        raise fail(wl, "writer.section", "the section writes nothing")
    for op in spec.prologue:
        if op.kind == Kind.COPY or (op.kind == Kind.LOAD and op.var.startswith("snap.")):
            raise fail(op.line, "reader.prologue", f"{op.text}: the snapshot is taken in "
                       "reader.snapshot")
        if op.kind == Kind.COND and op.action in ("retry", "accept"):
            raise fail(op.line, "reader.prologue", f"{op.text}: {op.action} is only for "
                       "reader.snapshot")
    defined: set[str] = set()
    prologue_vars: set[str] = set()
    for where, lst in (("reader.prologue", spec.prologue), ("reader.snapshot", spec.snapshot)):
        for op in lst:
            if op.index is not None and op.index not in defined:
                raise fail(op.line, where, f"{op.text}: {op.index} is not loaded before it")
            new = snap_fields(spec, op) or ([op.var] if op.kind == Kind.LOAD else [])
            for v in new:
                if v in defined:
                    raise fail(op.line, where, f"{op.text}: {v} is loaded twice (use another "
                               "name; a snapshot holds each field once)")
                defined.add(v)
            if op.kind == Kind.COND:
                for v in sorted(op.cond.vars()):
                    if v not in defined:
                        raise fail(op.line, where, f"{op.text}: {v} is not loaded before it")
                if op.action == "accept":
                    missing = [c for c in spec.covered if f"snap.{c}" not in defined]
                    if missing:
                        raise fail(op.line, where, f"{op.text}: accepts before the snapshot "
                                   f"holds {', '.join(missing)}")
                if op.action == "retry" and op.cond.vars() <= prologue_vars:
                    raise fail(op.line, where, f"{op.text}: retries on values the prologue "
                               "loaded once, so it would retry forever (accepted: a condition "
                               "on a value snapshot loads)")
        if where == "reader.prologue":
            prologue_vars = set(defined)
    missing = [c for c in spec.covered if f"snap.{c}" not in defined]
    if missing:
        raise fail(key_line(lines, "reader", "snapshot"), "reader.snapshot",
                   f"the snapshot never loads {', '.join(missing)} (accepted: snap.F = F for "
                   "every covered field, or copy)")
