"""The protocol format's modules: one job each, and the old import path
still works."""

import enum

from kmallocwd.protocols import cond, ops, spec, vocab


def test_spec_reexports_the_vocabulary_and_parsers():
    assert spec.Expr is cond.Expr and spec.parse_cond is cond.parse_cond
    assert spec.Op is ops.Op and spec.parse_op is ops.parse_op
    assert spec.SpecError is vocab.SpecError and spec.TORN_KINDS is vocab.TORN_KINDS


def test_operation_kinds_are_an_enum():
    assert issubclass(vocab.Kind, enum.StrEnum)
    op = ops.parse_op("s0 = READ_ONCE(sequence)", "reader")
    assert op.kind is vocab.Kind.LOAD and op.kind == "load"
    kinds = {ops.parse_op(t, side).kind for t, side in (
        ("sequence++", "writer"), ("start = NOW", "writer"), ("smp_wmb()", "writer"),
        ("spin_lock(global)", "writer"), ("copy", "reader"), ("if (odd(s0)) retry", "reader"))}
    assert kinds == {vocab.Kind.INC, vocab.Kind.STORE, vocab.Kind.FENCE, vocab.Kind.LOCK,
                     vocab.Kind.COPY, vocab.Kind.COND}


def _kmallocwd_imports(path: str) -> set[str]:
    import ast
    tree = ast.parse(open(path).read())
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    return {m for m in imported if m and m.startswith("kmallocwd")}


def test_the_vocabulary_is_a_leaf():
    """It imports only the package's leaves: the errors (SpecError is a
    UsageError) and the verdicts (the models), which import nothing else."""
    from kmallocwd import errors, verdicts

    assert _kmallocwd_imports(vocab.__file__) <= {"kmallocwd.errors", "kmallocwd.verdicts"}
    assert _kmallocwd_imports(verdicts.__file__) <= {"kmallocwd.errors"}
    assert _kmallocwd_imports(errors.__file__) == set()
