"""A reader's condition (`if (COND) skip|retry|accept`): its parser and
its value."""

from __future__ import annotations

import re
from dataclasses import dataclass

from kmallocwd.protocols.vocab import MAX_COND_DEPTH, MAX_COND_TERMS

_PUNCT = frozenset(("odd", "even", "==", "!=", "&&", "||", "!", "(", ")"))
# The oracle expired() reads in the model: env[ORACLE] is 1 or 0 (both are
# explored); without it (stress, the interpreter) expired() is true.
ORACLE = "?expired"


@dataclass(frozen=True)
class Expr:
    """A reader's condition: ('or'|'and', a, b), ('not', a), ('eq'|'ne', a, b),
    ('odd'|'even'|'expired', a), ('var', name) or ('int', n).  Variables are
    the reader's loaded values and snap.valid / snap.sequence (format 2: any
    snap.FIELD).  expired(x) is the stall filter, time_after_eq(expire, x):
    its value is not the model's to know, so it is an oracle (ORACLE)."""

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
        if o == "expired":
            return int(env.get(ORACLE, 1))
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
        if o == "expired":
            return "expired(" + a[0].render(name, style) + ")"
        raise ValueError(o)


_TOKEN = re.compile(r"\s*(snap\.valid|snap\.sequence|odd|even|[a-z_][a-z0-9_]*|[0-9]+"
                    r"|==|!=|&&|\|\||!|\(|\))", re.ASCII)


# Format 2: any snap.FIELD, and expired().
_TOKEN2 = re.compile(r"\s*(snap\.[a-z][a-z0-9_]*|odd|even|expired|[a-z_][a-z0-9_]*|[0-9]+"
                     r"|==|!=|&&|\|\||!|\(|\))", re.ASCII)


def parse_cond(text: str, fmt: int = 1) -> Expr:
    toks: list[str] = []
    pos = 0
    token = _TOKEN if fmt == 1 else _TOKEN2
    while pos < len(text):
        m = token.match(text, pos)
        if not m:
            if text[pos:].strip() == "":
                break
            raise ValueError(f"cannot read the condition at {text[pos:]!r}")
        toks.append(m.group(1))
        pos = m.end()
    punct = _PUNCT if fmt == 1 else _PUNCT | {"expired"}
    funcs = ("!", "odd", "even", "(") if fmt == 1 else ("!", "odd", "even", "expired", "(")
    terms = sum(1 for t in toks if t not in punct)
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
        if t in funcs:
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


