"""ThreadSanitizer on the C loops themselves (csrc/tools/race.c), in the c11
build (C11 atomics, which TSan understands; the kernel build's volatile accesses
it would call races everywhere): the C11
seqlock is free of data races; the kernel-style protocols, whose plain
accesses race by the C11 rules, are reported."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from conftest import ROOT

SOURCES = ["csrc/tools/race.c", "csrc/api.c", "build/gen/kmw_protocols.c", "csrc/clock.c",
           "csrc/slots.c"]
RACE = "WARNING: ThreadSanitizer: data race"


@pytest.fixture(scope="module")
def race_bin(tmp_path_factory):
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler")
    tmp = tmp_path_factory.mktemp("tsan")
    probe_c = tmp / "probe.c"
    probe_c.write_text("int main(void) { return 0; }\n")
    r = subprocess.run([cc, "-fsanitize=thread", str(probe_c), "-o", str(tmp / "probe")],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"this compiler cannot build with -fsanitize=thread: {r.stderr[-300:]}")
    out = tmp / "race"
    r = subprocess.run([cc, "-fsanitize=thread", "-Wno-tsan", "-O1", "-g", "-DKMW_BUILD_C11",
                        "-Icsrc", *SOURCES,
                        "-lpthread", "-o", str(out)], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]  # our C must build; TSan support is checked above
    probe = subprocess.run([str(out), "c11", "10"], capture_output=True, text=True)
    if "ThreadSanitizer" in probe.stderr and "data race" not in probe.stderr:
        pytest.skip(f"the TSan runtime does not start here: {probe.stderr[-300:]}")
    return out


@pytest.mark.slow
def test_c11_is_free_of_data_races(race_bin):
    r = subprocess.run([str(race_bin), "c11", "200000"], capture_output=True, text=True,
                       timeout=120)
    assert RACE not in r.stderr, r.stderr[-2000:]
    assert r.returncode == 0
    assert "c11: consistent" in r.stdout and " torn 0 " in r.stdout


@pytest.mark.parametrize("name", ["seqcount", "v3"])
@pytest.mark.slow
def test_kernel_style_protocols_are_reported(race_bin, name):
    r = subprocess.run([str(race_bin), name, "200000"], capture_output=True, text=True,
                       timeout=120)
    assert RACE in r.stderr
    assert f"{name}_start_memalloc_timer" in r.stderr  # the writer's plain stores
