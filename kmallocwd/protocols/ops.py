"""One operation of a protocol file, as written (`sequence++`,
`s0 = READ_ONCE(sequence)`, `if (odd(s0)) retry`, ...): its parser."""

from __future__ import annotations

import re
from dataclasses import dataclass

from kmallocwd.protocols.cond import Expr, parse_cond
from kmallocwd.protocols.vocab import (ACTIONS, DATA_FIELDS, FENCES, FIELDS, LOCK_OPS, LOCKS,
                                       RESERVED, VALUES, VAR_RE, Kind)


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
    # format 2: the copy a store writes (copy[0].F, copy[1].F), the variable
    # whose low bit picks the copy a load reads (copy[VAR & 1].F)
    copy: int | None = None
    index: str | None = None

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


def parse_op(text: str, side: str, line: int = 0) -> Op:
    """One operation as written in a file; ValueError says what is wrong."""
    body, _, comment = text.partition("#")
    body = body.strip()
    comment = comment.strip()
    if not body:
        raise ValueError("empty operation")
    if m := _RE_FENCE.fullmatch(body):
        return Op(Kind.FENCE, body, line, fence=m.group(1), comment=comment)
    if m := _RE_LOCK.fullmatch(body):
        return Op(Kind.LOCK, body, line, lockop=m.group(1), lock=m.group(2), comment=comment)
    if side == "writer":
        if _RE_INC.fullmatch(body):
            return Op(Kind.INC, body, line, field="sequence", access="plain", comment=comment)
        if m := _RE_INC_M.fullmatch(body):
            return Op(Kind.INC, body, line, field="sequence", access=_ACCESS[m.group(1)],
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
        return Op(Kind.COPY, body, line, access="plain" if body == "copy" else "once",
                  comment=comment)
    if re.fullmatch(r"snap\s*=\s*\*m", body):
        return Op(Kind.COPY, body, line, access="plain", with_sequence=True, comment=comment)
    if m := _RE_COND.fullmatch(body):
        action = m.group(2)
        if action not in ACTIONS:
            raise ValueError(f"unknown action {action!r} (accepted: {', '.join(ACTIONS)})")
        return Op(Kind.COND, body, line, cond=parse_cond(m.group(1)), action=action, comment=comment)
    if m := _RE_LOAD.fullmatch(body):
        var = m.group(1)
        if var in RESERVED or var in FIELDS or not VAR_RE.fullmatch(var) or \
                var.startswith(("kmw", "memalloc", "__")):
            raise ValueError(f"bad variable name {var!r} (accepted: a short lower-case name "
                             "other than a field's)")
        if m.group(2):
            return Op(Kind.LOAD, body, line, field=m.group(3), access=_ACCESS[m.group(2)],
                      var=var, comment=comment)
        return Op(Kind.LOAD, body, line, field=m.group(4), access="plain", var=var, comment=comment)
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
    return Op(Kind.STORE, body, line, field=fld, access=access, value=value, comment=comment)


