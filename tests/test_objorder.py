"""The knobs change the timing, not the program: read from the object code.

The emulator has one writer loop per protocol, whatever the knobs
(--hold-ns, --alloc-ns, --preempt are tested at run time), so a knob run
executes the very instructions a no-knob run does; its start_memalloc_timer()
is a function of its own, which the loop's code cannot reschedule.  And the
knobs' code inside a section adds no ordering: compiled with it and without
it (-DKMW_NO_KNOB_HOOK), every data store lands in the same place relative to
the sequence stores."""

from __future__ import annotations

import glob
import platform
import shutil
import subprocess

import pytest

from conftest import ROOT
import kmallocwd.stress.objorder as objorder
from kmallocwd.protocols import C_PROTOCOLS
from kmallocwd.protocols.cgen import knob_point

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(platform.machine() != "x86_64" or not shutil.which("objdump")
                       or not shutil.which("cc"), reason="x86-64 objdump and cc"),
]

FLAGS = ["-O2", "-std=gnu11", "-Wall", "-Wno-unused-function", "-fPIC", "-Icsrc"]


@pytest.fixture(scope="module")
def module_code():
    so = glob.glob(str(ROOT / "kmallocwd" / "_kmallocwd*.so"))
    assert so, "the extension is built (make build)"
    return objdump(so[0])


def objdump(path):
    return objorder.disassemble(path)


@pytest.fixture(scope="module")
def objects(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("objorder")
    out = {}
    for name, extra in (("hook", []), ("nohook", ["-DKMW_NO_KNOB_HOOK"])):
        o = tmp / f"{name}.o"
        subprocess.run(["cc", *FLAGS, *extra, "-c", "build/gen/kmw_protocols.c", "-o", str(o)],
                       cwd=ROOT, check=True, capture_output=True)
        out[name] = objdump(o)
    return out


@pytest.mark.parametrize("spec", C_PROTOCOLS, ids=lambda s: s.name)
def test_one_emulator_loop_whatever_the_knobs(module_code, spec):
    emu = objorder.function(module_code, f"{spec.ident}_writer_emu")
    assert emu  # the one loop stress runs, for any knob
    stores = objorder.writer_stores(module_code, spec.ident)
    fields = {f for _, fs in stores for f in fs}
    assert {"sequence", "start", "order", "gfp", "valid"} <= fields, stores


@pytest.mark.parametrize("spec", C_PROTOCOLS, ids=lambda s: s.name)
def test_the_knobs_add_no_ordering(objects, module_code, spec):
    """With the knobs' code and without it, every data store lands in the
    same place relative to the sequence stores; a section with no compiler
    barrier has no knob code at all, so its stores keep their exact order."""
    hook = objorder.writer_stores(objects["hook"], spec.ident)
    nohook = objorder.writer_stores(objects["nohook"], spec.ident)
    assert objorder.window_signature(hook) == objorder.window_signature(nohook)
    if knob_point(spec) < 0:
        assert hook == nohook
    # and the module stress runs is that same object code
    assert objorder.writer_stores(module_code, spec.ident) == hook


def test_the_odd_window_is_read_from_the_code(module_code):
    """Both sides: no-wmb's two sequence++ are one store, with start moved
    out of the window (the tear); seqcount keeps every field inside it."""
    nowmb = objorder.window_signature(objorder.writer_stores(module_code, "no_wmb"))
    seq = objorder.window_signature(objorder.writer_stores(module_code, "seqcount"))
    assert seq == (2, (("dumped", 1), ("gfp", 1), ("order", 1), ("start", 1)))
    assert nowmb[0] == 1  # the pair merged into one +2 store: no odd window at all
