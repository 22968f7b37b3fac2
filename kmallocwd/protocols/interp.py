"""A protocol file's reader, run on one slot by itself: what it does with a
slot in a given state when nothing else runs.  The reference the C readers
are tested against (tests/test_bench_loops.py), read from the same file."""

from __future__ import annotations

from typing import Mapping

from kmallocwd.protocols.spec import Kind, Op, Spec

ACCEPT = "accept"
SPINS = "spins"  # waits forever: a retry or a lock that nothing will release


def read_alone(spec: Spec, slot: Mapping[str, int], held: frozenset[str] = frozenset()) -> str:
    """accept, rejected-odd, rejected-invalid, or spins.  ``slot`` maps the
    fields to their values; ``held`` names the locks ('slot', 'global')
    another task holds for writing."""
    env: dict[str, int] = {}

    def run(ops: tuple[Op, ...]) -> str | None:
        for op in ops:
            if op.kind == Kind.LOAD:
                env[op.var] = slot[op.field]
            elif op.kind == Kind.COPY:
                env["snap.valid"] = slot["valid"]
                env["snap.sequence"] = (slot["sequence"] if op.with_sequence
                                        else env[spec.snapshot_sequence])
            elif op.kind == Kind.LOCK and not op.lockop.endswith("unlock") and op.lock in held:
                return SPINS
            elif op.kind == Kind.COND and op.cond.eval(env):
                if op.action == "accept":
                    return ACCEPT
                if op.action == "retry":
                    return SPINS  # the same state, again and again
                return spec.skip_outcome(op)
        return None

    return run(spec.prologue) or run(spec.snapshot) or ACCEPT
