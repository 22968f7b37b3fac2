"""The verdict on the compiled binary: the protocol's events in the order
the object code has them, explored under x86-TSO with no compiler freedom.

Both sides, first on orders given by hand (no compiler involved), then on
the module stress runs."""

from __future__ import annotations

import platform
import shutil
import subprocess
import sys

import pytest

from conftest import ROOT
from kmallocwd.stress.binverdict import CANNOT_TEAR, binary_verdict, tears_in_order
from kmallocwd.protocols import BY_NAME, C_PROTOCOLS

SEQ, VALID = ("sequence",), ("valid",)
COPY = [("valid", "dumped"), ("start",), ("order", "gfp")]
# the writer: sequence++, the fields, sequence++ (a seqcount's order)
IN_WINDOW = [SEQ, ("start",), ("order", "gfp"), ("dumped",), SEQ, VALID]


def test_a_copy_sunk_past_the_second_sequence_load_tears():
    spec = BY_NAME["no-rmb"]
    # pre, v, s0, s1, the copy, post: what GCC makes of no-rmb's reader
    sunk = [SEQ, VALID, SEQ, SEQ, *COPY, SEQ]
    kept = [SEQ, VALID, SEQ, *COPY, SEQ, SEQ]
    assert tears_in_order(spec, IN_WINDOW, sunk)[0]
    assert not tears_in_order(spec, IN_WINDOW, kept)[0]


def test_a_field_stored_before_the_merged_sequence_store_tears():
    spec = BY_NAME["no-wmb"]
    reader = [SEQ, VALID, SEQ, *COPY, SEQ, SEQ]
    merged_first = [SEQ, ("start",), ("order", "gfp"), VALID]   # +2 first: no window at all
    merged_last = [("start",), ("order", "gfp"), SEQ, VALID]    # start before the +2
    assert not tears_in_order(spec, merged_first, reader)[0]
    assert tears_in_order(spec, merged_last, reader)[0]
    assert not tears_in_order(spec, IN_WINDOW, reader)[0]


binary = pytest.mark.skipif(platform.machine() != "x86_64" or not shutil.which("objdump"),
                            reason="reads x86-64 object code with objdump")


@binary
@pytest.mark.parametrize("spec", C_PROTOCOLS, ids=lambda s: s.name)
@pytest.mark.slow
def test_every_builtin_binary_is_read(spec):
    v = binary_verdict(spec, "kernel")
    assert v.can_tear is not None, v.why
    assert v.writer and v.reader
    if spec.expect.get("sc") == "sometimes":  # torn in program order: in any order GCC keeps
        assert v.can_tear


@binary
@pytest.mark.slow
def test_the_kernel_build_verdicts_both_ways():
    assert binary_verdict(BY_NAME["no-rmb"], "kernel").can_tear
    seq = binary_verdict(BY_NAME["seqcount"], "kernel")
    assert seq.can_tear is False and not seq.model_x86


@binary
def test_the_c11_build_keeps_no_rmb_from_tearing():
    """C11 fences order plain loads for GCC: only the x86 model's compiler
    freedom lets no-rmb tear, not this binary."""
    v = binary_verdict(BY_NAME["no-rmb"], "c11")
    assert v.can_tear is False and v.model_x86
    assert CANNOT_TEAR in v.line


@binary
@pytest.mark.slow
def test_check_shows_the_binary_column():
    r = subprocess.run([sys.executable, "-m", "kmallocwd", "check", "-p", "no-rmb",
                        "--no-trace"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    head = next(ln for ln in r.stdout.splitlines() if ln.strip().startswith("model"))
    x86 = next(ln for ln in r.stdout.splitlines() if ln.strip().startswith("x86"))
    assert head.split()[-1] == "binary" and x86.split()[-1] == "tears"
    assert "can tear on x86 as compiled" in r.stdout


@binary
@pytest.mark.parametrize("name", ["plain-copy", "plain-stores"])
def test_the_plain_access_examples_can_tear_as_compiled(name):
    from kmallocwd.protocols import load_path

    v = binary_verdict(load_path(str(ROOT / "examples" / f"{name}.toml")), "kernel")
    assert v.can_tear, v.line
