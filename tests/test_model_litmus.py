"""The litmus export: herd7's C litmus format, tools/memory-model style."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from kmallocwd.model.litmus import render
from kmallocwd.protocols import BY_NAME, PROTOCOLS


@pytest.mark.parametrize("name", [s.name for s in PROTOCOLS])
def test_litmus_structure(name):
    text = render(BY_NAME[name], 2)
    lines = text.splitlines()
    assert lines[0] == f"C kmallocwd-{name}-K2"
    assert "{}" in lines  # the initial state: every location 0
    assert sum(1 for x in lines if re.match(r"^P0\(int \*sequence, ", x)) == 1
    assert sum(1 for x in lines if re.match(r"^P1\(int \*sequence, ", x)) == 1
    assert not any(x.startswith("P2(") for x in lines)
    assert lines[-1].startswith("exists (1:r_ok=1 /\\ 1:r_same=0")
    assert text.count("{") == text.count("}")
    body = text.split("P0(", 1)[1]
    assert "++" not in body.split("exists")[0].replace("sequence++", "").replace("valid++", "")


def test_litmus_marks_plain_and_keeps_barriers():
    text = render(BY_NAME["seqcount"], 2)
    assert text.count("smp_wmb();") == 4 and text.count("smp_rmb();") == 2
    assert "WRITE_ONCE(*start, 1); /* plain */" in text
    assert "WRITE_ONCE(*sequence, 4);" in text
    acq = render(BY_NAME["c11"], 1)
    assert "smp_load_acquire(sequence)" in acq and "smp_store_release(sequence, 2)" in acq
    lock = render(BY_NAME["v2-rwlock"], 1)
    assert "spinlock_t *lk_global" in lock and "spin_lock(lk_global);" in lock


HERD = shutil.which("herd7")


@pytest.mark.skipif(HERD is None, reason="herd7 is not installed")
def test_herd7_parses_a_small_litmus(tmp_path):  # pragma: no cover - needs herd7 + LKMM
    import os
    lkmm = os.environ.get("KMW_LKMM_DIR")
    if not lkmm:
        pytest.skip("KMW_LKMM_DIR (tools/memory-model) is not set")
    f = tmp_path / "t.litmus"
    f.write_text(render(BY_NAME["v3"], 1))
    out = subprocess.run([HERD, "-conf", "linux-kernel.cfg", str(f)], cwd=lkmm,
                         capture_output=True, text=True, timeout=600).stdout
    assert "Observation kmallocwd-v3-K1" in out
