"""The wheel is the product: the sdist is built, the wheel is built from it,
installed into a fresh venv, and from another directory (no source tree in
sight) it checks a user's protocol file through the CLI, the Python API, the
pytest fixture and a campaign, and runs ablate (which compiles variants).

Offline: the wheel is built without build isolation (the running Python's
setuptools and cffi), installed with --no-deps, and the venv finds the
dependencies through a .pth file naming the running Python's site-packages
(whose .pth files, the editable install's among them, are not processed)."""

from __future__ import annotations

import json
import os
import site
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from conftest import ROOT

# (make test runs each file on one xdist worker, --dist loadfile: the venv
# fixture builds the sdist in the source tree once, never twice at a time)
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1500)]

MINE = (ROOT / "kmallocwd" / "protocols" / "seqcount.toml").read_text().replace(
    'name = "seqcount"', 'name = "my-wheel"', 1)

PLAN = """
[campaign]
name = "from-the-wheel"
[[stress]]
protocols = ["mine.toml"]
durations = 0.3
[stress.knobs]
alloc_ns = 100
[[ablate]]
args = ["-p", "seqcount", "-d", "0.1"]
[[check]]
args = ["--protocol-file", "mine.toml"]
"""

FIXTURE_TEST = """
def test_my_protocol(kmallocwd):
    kmallocwd.check("mine.toml").assert_no_forbidden()
    r = kmallocwd.stress("mine.toml", duration=0.3, alloc_ns=100)
    assert r.protocol == "my-wheel" and r.accepted > 0 and r.torn == 0
"""

API = """
import json, kmallocwd
r = kmallocwd.stress("mine.toml", duration=0.3, alloc_ns=100)
a = kmallocwd.ablate("mine.toml", duration=0.05)
print(json.dumps({"file": kmallocwd.__file__, "protocol": r.protocol, "accepted": r.accepted,
                  "torn": r.torn, "ablate_protocol": a.protocol, "variants": len(a.rows)}))
"""


def _run(cmd, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=900, **kw)


@pytest.fixture(scope="module")
def venv(tmp_path_factory):
    d = tmp_path_factory.mktemp("wheel")
    # the sdist, then the wheel from the sdist (not from the tree)
    r = _run([sys.executable, "-c", "import sys; from setuptools import build_meta as b; "
              "print(b.build_sdist(sys.argv[1]))", str(d / "sdist")], cwd=ROOT)
    assert r.returncode == 0, r.stderr[-3000:]
    (sdist,) = (d / "sdist").glob("kmallocwd-*.tar.gz")
    r = _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
              "--disable-pip-version-check", "-w", str(d / "dist"), str(sdist)], cwd=d)
    assert r.returncode == 0, r.stderr[-3000:]
    (wheel,) = (d / "dist").glob("kmallocwd-*.whl")
    env_dir = d / "venv"
    r = _run([sys.executable, "-m", "venv", "--without-pip", str(env_dir)])
    assert r.returncode == 0, r.stderr
    py = env_dir / "bin" / "python"
    r = _run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps",
              "--no-index", "--disable-pip-version-check", str(wheel)])
    assert r.returncode == 0, r.stderr[-3000:]
    purelib = Path(_run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()"
                         "['purelib'])"]).stdout.strip())
    deps = [p for p in dict.fromkeys(site.getsitepackages()
                                     + [sysconfig.get_paths()["purelib"]]) if os.path.isdir(p)]
    (purelib / "zz-test-deps.pth").write_text("\n".join(deps) + "\n")
    work = d / "work"
    work.mkdir()
    (work / "mine.toml").write_text(MINE)
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "KMALLOCWD_CACHE", "VIRTUAL_ENV")}
    env.update(KMALLOCWD_CACHE=str(d / "cache"), PATH=f"{env_dir / 'bin'}:{env['PATH']}")
    return {"wheel": wheel, "sdist": sdist, "py": str(py),
            "kmallocwd": str(env_dir / "bin" / "kmallocwd"), "work": work, "env": env}


def test_the_wheel_ships_the_c_core_a_license_and_a_true_tag(venv):
    with zipfile.ZipFile(venv["wheel"]) as z:
        names = z.namelist()
        wheel_meta = z.read(next(n for n in names if n.endswith(".dist-info/WHEEL"))).decode()
        meta = z.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    for f in ("kmallocwd.h", "barriers.h", "loops.h", "memalloc.h", "api.c", "clock.c",
              "slots.c"):
        assert f"kmallocwd/_csrc/{f}" in names
    assert "kmallocwd/protocols/seqcount.toml" in names
    assert "kmallocwd/scenarios/oom-livelock.toml" in names
    lic = next(n for n in names if n.endswith(".dist-info/licenses/LICENSE"))
    with zipfile.ZipFile(venv["wheel"]) as z:
        assert "GNU GENERAL PUBLIC LICENSE" in z.read(lic).decode()
        assert "Version 2, June 1991" in z.read(lic).decode()
    assert "License-Expression: GPL-2.0-only" in meta
    # the tag and the extension's file name agree: both abi3, or neither
    (ext,) = [n for n in names if n.startswith("kmallocwd/_kmallocwd.")]
    tags = [ln.split(": ", 1)[1] for ln in wheel_meta.splitlines() if ln.startswith("Tag: ")]
    assert tags and all(("-abi3-" in t) == ext.endswith(".abi3.so") for t in tags)
    assert all(f"-{t}.whl" in venv["wheel"].name for t in tags)


def test_the_sdist_ships_the_c_core_and_the_license(venv):
    import tarfile
    with tarfile.open(venv["sdist"]) as t:
        names = {n.split("/", 1)[1] for n in t.getnames() if "/" in n}
    assert {"LICENSE", "csrc/kmallocwd.h", "csrc/api.c", "csrc/watchdog.c",
            "kmallocwd/_build.py", "kmallocwd/_cdefs.py", "setup.py"} <= names


def test_the_installed_wheel_runs_stress_on_a_users_file(venv):
    r = _run([venv["kmallocwd"], "stress", "--protocol-file", "mine.toml", "-n", "20000",
              "--json", "-"], cwd=venv["work"], env=venv["env"])
    assert r.returncode in (0, 3), r.stderr
    doc = json.loads(r.stdout)
    assert doc["protocol"] == "my-wheel"
    where = _run([venv["py"], "-c", "import kmallocwd; print(kmallocwd.__file__)"],
                 cwd=venv["work"], env=venv["env"]).stdout
    assert where.startswith(str(Path(venv["py"]).parent.parent)), where
    # nothing written into the install, the cache holds the module
    info = json.loads(_run([venv["kmallocwd"], "cache", "--json"], cwd=venv["work"],
                           env=venv["env"]).stdout)
    assert any(i["protocol"] == "my-wheel" and i["ok"] for i in info["items"])


def test_the_installed_wheel_runs_stress_on_a_format2_builtin_and_file(venv):
    """The built-in v8-in-flight and the latch example (its own struct):
    generated and compiled from the install, in the user's cache."""
    (venv["work"] / "latch.toml").write_text((ROOT / "examples" / "latch.toml").read_text())
    for args in (["-p", "v8-in-flight"], ["--protocol-file", "latch.toml"]):
        r = _run([venv["kmallocwd"], "stress", *args, "-n", "20000", "--json", "-"],
                 cwd=venv["work"], env=venv["env"])
        assert r.returncode in (0, 1, 3, 4), r.stderr
        doc = json.loads(r.stdout)
        assert doc["attempts"] > 0 and doc["writer_ops"] >= 20000
        if args[0] == "--protocol-file":
            assert doc["torn"] == 0  # the latch is sound
    # its C, with the barriers.h definitions the install ships (not the tree's)
    r = _run([venv["kmallocwd"], "protocols", "--c", "latch.toml"], cwd=venv["work"],
             env=venv["env"])
    assert r.returncode == 0 and "struct latch_info {" in r.stdout, r.stderr
    assert "#define smp_wmb()" in r.stdout


def test_the_installed_wheel_runs_ablate(venv):
    r = _run([venv["kmallocwd"], "ablate", "-p", "seqcount", "-d", "0.5", "-q"],
             cwd=venv["work"], env=venv["env"])
    assert r.returncode == 0, r.stderr
    assert "smp_rmb()" in r.stdout and "removed" in r.stdout


def test_the_installed_wheel_runs_the_api_on_a_users_file(venv):
    r = _run([venv["py"], "-c", API], cwd=venv["work"], env=venv["env"])
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout.strip().splitlines()[-1])
    assert doc["file"].startswith(str(Path(venv["py"]).parent.parent))
    assert doc["protocol"] == "my-wheel" and doc["accepted"] > 0 and doc["torn"] == 0
    assert doc["ablate_protocol"] == "my-wheel" and doc["variants"] > 1


def test_the_installed_wheel_runs_the_pytest_fixture_on_a_users_file(venv):
    (venv["work"] / "test_mine.py").write_text(FIXTURE_TEST)
    r = _run([venv["py"], "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_mine.py"],
             cwd=venv["work"], env=venv["env"])
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    assert "1 passed" in r.stdout


def test_a_campaign_from_the_wheel_runs_every_kind_of_cell(venv):
    pytest.importorskip("distributed")
    (venv["work"] / "plan.toml").write_text(PLAN)
    out = venv["work"] / "results.json"
    r = _run([venv["kmallocwd"], "campaign", "plan.toml", "--workers", "1", "-q",
              "--json", str(out)], cwd=venv["work"], env=venv["env"])
    assert r.returncode in (0, 3), r.stdout[-2000:] + r.stderr[-3000:]
    doc = json.loads(out.read_text())
    kinds = {c["id"].split("/")[0]: c for c in doc["cells"]}
    assert set(kinds) == {"stress", "ablate", "check"}
    for kind, c in kinds.items():
        assert c["verdict"] != "failed", (kind, c)
