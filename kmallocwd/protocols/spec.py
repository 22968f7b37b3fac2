"""The protocol description format (docs/protocols.md): one TOML file per
protocol, loaded into a Spec: the operations that the C generator, the model
checker, the litmus export and the ablation all read.

This module holds the Spec and its loader; the vocabulary is in vocab.py,
the condition parser in cond.py, the operation parser in ops.py (all
re-exported here).  It imports nothing that needs the C extension, so the
build (kmallocwd/_build.py) can use it.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path

from kmallocwd.protocols.cond import _TOKEN, Expr, parse_cond  # noqa: F401 (re-exported)
from kmallocwd.protocols import format2
from kmallocwd.protocols.format2 import FORMAT1_FIELDS, Field  # noqa: F401 (re-exported)
from kmallocwd.protocols.lines import _key_line, _locate, _table_line  # noqa: F401
from kmallocwd.protocols.ops import Op, _store, parse_op  # noqa: F401 (re-exported)
from kmallocwd.protocols.vocab import (  # noqa: F401 (re-exported)
    ACTIONS, CONSISTENT, DATA_FIELDS, EXPECTS, FENCES, FIELDS, FORMAT, FORMATS, LOCK_OPS,
    LOCKS, MAX_COND_DEPTH, MAX_COND_TERMS, MAX_FILE_BYTES, MAX_NOTE, MAX_OPS, MAX_TEXT, MODELS,
    NAME_RE, OUTCOMES, REJECTED_INVALID, REJECTED_ODD, RESERVED, TORN_INSIDE, TORN_KINDS,
    TORN_MIXED, TORN_SEQ, VALUES, VAR_RE, VERDICTS, WHO_RE, Kind, SpecError)


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
    # Format 2 (format 1's shim: struct memalloc_info, the valid frame)
    format: int = 1
    fields: tuple[Field, ...] = FORMAT1_FIELDS
    covered: tuple[str, ...] = ()  # format 1: covered_fields() decides
    frame: str = "flag"  # flag: if (!FLAG) { section } FLAG++, stop FLAG--; bare: the section
    flag: str | None = "valid"

    @property
    def covered_fields(self) -> tuple[str, ...]:
        """The fields a torn check compares: format 1's sequence (when the
        writer counts), start, gfp and order; format 2's [struct] covered."""
        if self.format != 1:
            return self.covered
        data = ("start", "gfp", "order")
        return (("sequence",) + data) if self.counters else data

    @property
    def counters(self) -> dict[str, int]:
        """Each field the section increments, and how many times."""
        out: dict[str, int] = {}
        for op in self.section:
            if op.kind == Kind.INC:
                out[op.field] = out.get(op.field, 0) + 1
        return out

    def field_of(self, name: str) -> Field:
        return next(f for f in self.fields if f.name == name)

    @property
    def ident(self) -> str:
        """The name as a C identifier."""
        return self.name.replace("-", "_")

    @property
    def is_lock(self) -> bool:
        return any(op.kind == Kind.LOCK for op in self.section)

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
        if name == CONSISTENT:  # format 2 (format 1 lists it)
            return Outcome(name, "acceptable", "every covered field comes from one write section")
        return Outcome(name, "forbidden", "not an outcome this protocol can produce")

    def forbidden(self, counts: dict[str, int]) -> list[str]:
        return [n for n, c in counts.items() if c and self.outcome(n).expect == "forbidden"]

    def skip_outcome(self, op: Op) -> str:
        """What ``if (...) skip`` rejects as: rejected-invalid when the
        condition looks at valid (a variable loaded from it, or snap.valid),
        else rejected-odd (a section in progress)."""
        flag = self.flag if self.frame == "flag" else None
        invalid = {o.var for o in self.prologue + self.snapshot
                   if o.kind == Kind.LOAD and o.field == flag and flag} | {f"snap.{flag}"}
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
        if op.kind == Kind.FENCE:
            del ops[index]
        elif op.kind == Kind.LOCK:
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
            **({} if self.format == 1 else {
                "format": self.format, "frame": self.frame, "flag": self.flag,
                "struct": [{"name": f.name, "bits": f.bits, "copies": f.copies}
                           for f in self.fields], "covered": list(self.covered)}),
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
        if o.kind == Kind.LOCK and o.lock == op.lock and o.lockop.startswith(base) \
                and o.lockop.endswith("unlock") != unlocking:
            return j
    return index


# ---- loading ----------------------------------------------------------------

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
    if doc.get("format") == 2:
        known_top.add("struct")
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
    if fmt not in FORMATS:
        raise fail(_key_line(lines, "", "format"), "format",
                   f"{fmt} (accepted: {', '.join(map(str, FORMATS))})")
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
    w_keys = {"name", "section", "valid"} if fmt == 1 else {"name", "section", "frame", "flag",
                                                             "access"}
    r_keys = {"name", "prologue", "snapshot"} | ({"snapshot_sequence"} if fmt == 1 else set())
    for tname, table, allowed in (("writer", w, w_keys), ("reader", r, r_keys)):
        for k in table:
            if k not in allowed:
                raise fail(_key_line(lines, tname, k), f"{tname}.{k}",
                           f"unknown key (accepted: {', '.join(sorted(allowed))})")
    akey = "valid" if fmt == 1 else "access"
    valid_access = get(w, "writer", akey, str, "plain", required=False)
    if valid_access not in ("plain", "once"):
        raise fail(_key_line(lines, "writer", akey), f"writer.{akey}",
                   f"{valid_access!r} (accepted: plain, once)")
    extra: dict = {}
    if fmt == 2:
        st = get(doc, "", "struct", dict)
        fields, covered = format2.parse_struct(st, lines, fail, _key_line)
        frame = get(w, "writer", "frame", str, "flag", required=False)
        if frame not in format2.FRAMES:
            raise fail(_key_line(lines, "writer", "frame"), "writer.frame",
                       f"{frame!r} (accepted: {', '.join(format2.FRAMES)})")
        flag = get(w, "writer", "flag", str, None, required=frame == "flag")
        if frame == "bare" and flag is not None:
            raise fail(_key_line(lines, "writer", "flag"), "writer.flag",
                       "a bare frame has no flag (accepted: frame = \"flag\" with it)")
        if flag is not None and not format2.FIELD_RE.fullmatch(flag):
            raise fail(_key_line(lines, "writer", "flag"), "writer.flag",
                       f"{flag!r} (accepted: a declared one-copy field)")
        extra = {"format": 2, "fields": fields, "covered": covered, "frame": frame,
                 "flag": flag}
        by_name = {f.name: f for f in fields}

    def ops(table: dict, tname: str, key: str, side: str, required: bool = True) -> tuple[Op, ...]:
        raw = get(table, tname, key, list, [] if not required else None, required=required)
        if len(raw) > MAX_OPS:  # (a latch update counts once here, as written)
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
                if fmt == 1:
                    out.append(parse_op(item, side, ln))
                else:
                    out += format2.parse_ops(item, side, ln, by_name)
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

    out_t = get(doc, "", "outcomes", dict, {} if fmt == 2 else None, required=fmt == 1)
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
    if CONSISTENT not in out_t and fmt == 1:
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
                outcomes=tuple(outcomes), path=path, source=text, **extra)
    if fmt == 2:
        _check_locks(spec, lines, fail)
        format2.validate(spec, lines, fail, _key_line)
        for o in spec.outcomes:
            if o.name in TORN_KINDS and o.expect == "acceptable":
                raise fail(o.line, f"outcomes.{o.name}", "a torn snapshot is never acceptable "
                           "(accepted: forbidden, or interesting for a control)")
        return spec
    _validate(spec, lines, fail)
    return spec


def _validate(spec: Spec, lines: list[str], fail) -> None:
    sec = spec.section
    incs = [op for op in sec if op.kind == Kind.INC]
    if not spec.is_lock and len(incs) < 2:
        raise fail(_key_line(lines, "writer", "section"), "writer.section",
                   "a writer must increment the sequence (twice: odd, then even) unless it "
                   "takes a lock")
    if len(incs) % 2:
        raise fail(_key_line(lines, "writer", "section"), "writer.section",
                   f"the sequence goes up {len(incs)} times a section (accepted: an even "
                   "number, so that it is even between sections)")
    stored = {op.field for op in sec if op.kind == Kind.STORE}
    missing = [f for f in ("start", "gfp", "order") if f not in stored]
    if missing:
        raise fail(_key_line(lines, "writer", "section"), "writer.section",
                   f"the section never stores {', '.join(missing)}")
    _check_locks(spec, lines, fail)
    for op in spec.prologue:
        if op.kind == Kind.COPY:
            raise fail(op.line, "reader.prologue", "the copy belongs in reader.snapshot")
        if op.kind == Kind.COND and op.action == "retry":
            raise fail(op.line, "reader.prologue", "retry is only for reader.snapshot")
        if op.kind == Kind.COND and op.action == "accept":
            raise fail(op.line, "reader.prologue", f"{op.text}: accepts before the copy "
                       "(accepted: accept only in reader.snapshot, after the copy)")
    copies = [op for op in spec.snapshot if op.kind == Kind.COPY]
    if len(copies) != 1:
        raise fail(_key_line(lines, "reader", "snapshot"), "reader.snapshot",
                   f"{len(copies)} copies (accepted: exactly one of copy, copy_once, snap = *m)")
    copy = copies[0]
    defined: set[str] = set()
    for op in spec.prologue:
        if op.kind == Kind.LOAD:
            defined.add(op.var)
        if op.kind == Kind.COND:
            _check_vars(op, defined, fail, "reader.prologue")
    copied = False
    for op in spec.snapshot:
        if op.kind == Kind.LOAD:
            defined.add(op.var)
        elif op.kind == Kind.COPY:
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
        elif op.kind == Kind.COND:
            _check_vars(op, defined, fail, "reader.snapshot")
            if "snap.valid" in op.cond.vars() and not copied:
                raise fail(op.line, "reader.snapshot", "snap.valid before the copy")
    if spec.snapshot_sequence is not None:
        src = {o.var: o.field for o in spec.prologue + spec.snapshot if o.kind == Kind.LOAD}
        if src.get(spec.snapshot_sequence, "sequence") != "sequence":
            raise fail(_key_line(lines, "reader", "snapshot_sequence"),
                       "reader.snapshot_sequence",
                       f"{spec.snapshot_sequence!r} is loaded from "
                       f"{src[spec.snapshot_sequence]} (accepted: a variable loaded from "
                       "sequence)")
    prologue_vars = {o.var for o in spec.prologue if o.kind == Kind.LOAD}
    copied = False
    for op in spec.snapshot:
        if op.kind == Kind.COPY:
            copied = True
        if op.kind == Kind.COND and op.action == "accept" and not copied:
            raise fail(op.line, "reader.snapshot", f"{op.text}: accepts before the copy "
                       "(accepted: accept only after copy)")
        if op.kind == Kind.COND and op.action == "retry" and op.cond.vars() <= prologue_vars:
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
    loads = [op for op in spec.prologue + spec.snapshot if op.kind == Kind.LOAD]
    seen: set[str] = set()
    for op in loads:
        if op.var in seen:
            raise fail(op.line, "reader", f"{op.var} is loaded twice (use another name)")
        seen.add(op.var)


def _check_locks(spec: Spec, lines: list[str], fail) -> None:
    """Every lock is released in the same list, one at a time, one kind per
    lock, no decision while one is held."""
    sec = spec.section
    kinds: dict[str, tuple[str, int]] = {}  # lock name -> (spin or rw, first line)
    for tname, key, lst in (("writer", "section", sec), ("reader", "prologue", spec.prologue),
                            ("reader", "snapshot", spec.snapshot)):
        held: list[Op] = []
        for op in lst:
            if op.kind == Kind.LOCK:
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
            elif op.kind == Kind.COND and held:
                raise fail(op.line, f"{tname}.{key}",
                           f"{op.text}: a decision while holding {held[-1].text} (unlock first)")
        if held:
            raise fail(held[-1].line, f"{tname}.{key}", f"{held[-1].text} is never unlocked")


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
BUILTIN_ORDER = ("v2-rwlock", "v3", "v4-parity", "v4", "v5-no-barriers", "v8-in-flight",
                 "seqcount", "seqcount-acquire", "c11", "no-wmb", "no-rmb", "none",
                 "slot-rwlock", "global-spinlock")


def builtin_specs() -> tuple[Spec, ...]:
    files = {p.stem: p for p in BUILTIN_DIR.glob("*.toml")}
    order = [n for n in BUILTIN_ORDER if n in files] + sorted(set(files) - set(BUILTIN_ORDER))
    specs = []
    for n in order:
        s = load_path(files[n])
        specs.append(replace(s, path=f"kmallocwd/protocols/{files[n].name}"))
    return tuple(specs)
