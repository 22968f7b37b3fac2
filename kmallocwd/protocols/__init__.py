"""The protocol table: every protocol declared once, in its own file
(kmallocwd/protocols/*.toml, format in docs/protocols.md), jcstress-style:
its writer and reader as operations, the outcomes a snapshot can have, each
with an expectation and a one-line reason, and the verdict the model checker
must find under each memory model.  The CLI, stress, the checker, the bench,
the tests and the README's table all read these files; nothing else says
what a protocol does.

Importing this package needs no C extension (the build uses it).
"""

from __future__ import annotations

from pathlib import Path

from kmallocwd.protocols.spec import (  # noqa: F401 (the table's vocabulary)
    CONSISTENT, EXPECTS, MODELS, OUTCOMES, REJECTED_INVALID, REJECTED_ODD, TORN_INSIDE,
    TORN_KINDS, TORN_MIXED, TORN_SEQ, Outcome, Spec, SpecError, builtin_specs, load_path)

ACCEPTABLE, INTERESTING, FORBIDDEN = EXPECTS
TORN = "torn"  # all three torn kinds together

PROTOCOLS: tuple[Spec, ...] = builtin_specs()
BY_NAME: dict[str, Spec] = {p.name: p for p in PROTOCOLS}
NAMES: tuple[str, ...] = tuple(BY_NAME)
# The ones in the main C extension (struct memalloc_info; run, the
# benchmarks' tables, the object-code checks): format 1.  A format-2 file
# (its own struct) is compiled on first use, as a user's file is, and runs
# in stress, campaigns and the benchmarks' loops too.
C_PROTOCOLS: tuple[Spec, ...] = tuple(p for p in PROTOCOLS if p.format == 1)
C_NAMES: tuple[str, ...] = tuple(p.name for p in C_PROTOCOLS)


def get(name: str) -> Spec:
    """The built-in protocol called ``name``; KeyError if there is none."""
    return BY_NAME[name]


def resolve(name: str | None = None, path: str | None = None) -> Spec:
    """A built-in by name, or a user's protocol file (SpecError if bad)."""
    if path is not None:
        return load_path(path)
    if name is None:
        raise SpecError("name a protocol (-p NAME) or a protocol file (--protocol-file F)")
    try:
        return BY_NAME[name]
    except KeyError:
        raise SpecError(f"unknown protocol {name!r} (accepted: {', '.join(NAMES)})") from None


def builtin_path(name: str) -> Path:
    return Path(__file__).resolve().parent / f"{name}.toml"


def cid(name: str) -> int:
    """The main C extension's number for a built-in protocol (by name)."""
    from kmallocwd.protocols.backend import cid as _cid
    return _cid(name)
