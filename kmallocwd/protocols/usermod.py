"""A user's protocol file, compiled at run time: the generated C of that one
protocol with the common C core, built with cffi into the compile cache
(kmallocwd/buildcache.py), keyed by the hash of everything that changes the
binary (the generated C, the C core, the declarations and flags, the
compiler's identity and version, the build variables of the environment,
cffi and the Python ABI) and nothing else, so that the second run compiles
nothing.  A cached module is checked before it is loaded, and loaded from
the very file that was checked.

The compiler runs in a child process of its own session (its output never
mixes with this process's); an interrupt kills it and its gcc, and removes
its build directory.  A compile error becomes one line: the compiler's
first error.  An install problem (no compiler, no Python headers, no C
sources) is an InstallError (exit 69) saying how to fix it."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import importlib.machinery
import importlib.util
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import sysconfig
from pathlib import Path

from kmallocwd import _cdefs
from kmallocwd.buildcache import Cache
from kmallocwd.errors import InstallError
from kmallocwd.protocols.builds import DEFAULT
from kmallocwd.protocols.cgen import GENERATOR_VERSION, generate
from kmallocwd.protocols.spec import Spec, SpecError

PKG = Path(__file__).resolve().parent.parent
# the C core: shipped in the package (kmallocwd/_csrc, the wheel), or the source tree's
CSRC_DIRS = (PKG / "_csrc", PKG.parent / "csrc")
# the variables distutils reads when it builds (customize_compiler)
BUILD_ENV = ("CC", "CXX", "CPP", "LDSHARED", "CFLAGS", "CPPFLAGS", "LDFLAGS", "AR", "ARFLAGS",
             "CCSHARED")
_loaded: dict[str, tuple] = {}

REINSTALL = "reinstall kmallocwd from its wheel or sdist (pip install --force-reinstall kmallocwd)"


def csrc_dir() -> Path:
    """The directory of the C core's sources; InstallError if this install has none."""
    for d in CSRC_DIRS:
        if (d / "kmallocwd.h").is_file() and all((d / s).is_file()
                                                 for s in _cdefs.COMMON_SOURCES):
            return d
    raise InstallError(f"kmallocwd's C sources are missing from this install ({CSRC_DIRS[0]}): "
                       f"{REINSTALL}")


def _compiler() -> list[str]:
    return shlex.split(os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc") or ["cc"]


@functools.lru_cache(maxsize=8)
def _compiler_id(cc: tuple[str, ...], where: str | None, mtime: int) -> str:
    if where is None:
        return "no compiler"
    try:
        r = subprocess.run([*cc, "--version"], capture_output=True, text=True, timeout=60,
                           stdin=subprocess.DEVNULL)
        return f"{where}|{r.returncode}|{r.stdout}"
    except (OSError, subprocess.SubprocessError) as exc:
        return f"{where}|{exc}"


def compiler_identity() -> str:
    """The compiler the build would run: its command, real path and --version."""
    cc = _compiler()
    where = shutil.which(cc[0])
    real = os.path.realpath(where) if where else None
    try:
        mtime = os.stat(real).st_mtime_ns if real else 0
    except OSError:
        mtime = 0
    return f"{shlex.join(cc)}|{real}|{_compiler_id(tuple(cc), real, mtime)}"


def key(c_text: str, csrc: Path) -> str:
    """The cache key: a hash of everything that changes the binary."""
    import cffi

    h = hashlib.sha256()
    material = {
        "generator": GENERATOR_VERSION, "cdef": _cdefs.CDEF, "args": _cdefs.COMPILE_ARGS,
        "sources": _cdefs.COMMON_SOURCES, "cffi": cffi.__version__,
        "python": [sys.version, sys.implementation.cache_tag, sys.platform,
                   sysconfig.get_platform()],
        "config": {v: sysconfig.get_config_var(v) for v in
                   ("CC", "CFLAGS", "CCSHARED", "LDSHARED", "EXT_SUFFIX", "SOABI")},
        "env": {v: os.environ.get(v) for v in BUILD_ENV},
        "compiler": compiler_identity(),
    }
    h.update(json.dumps(material, sort_keys=True, default=str).encode())
    h.update(b"\0" + c_text.encode())
    for p in sorted(csrc.glob("*.h")) + [csrc / s for s in _cdefs.COMMON_SOURCES]:
        h.update(b"\0" + p.name.encode() + b"\0" + p.read_bytes())
    return h.hexdigest()[:32]


def check_toolchain() -> None:
    """InstallError if a module cannot be built here: no compiler, no Python.h."""
    cc = _compiler()
    if shutil.which(cc[0]) is None:
        raise InstallError(f"no C compiler ({cc[0]} not found), needed to compile a protocol "
                           "file: install one (e.g. apt-get install gcc) or set CC")
    inc = sysconfig.get_paths().get("include") or ""
    if not os.path.isfile(os.path.join(inc, "Python.h")):
        raise InstallError(f"Python's C headers are missing ({inc}/Python.h), needed to "
                           "compile a protocol file: install them (e.g. apt-get install "
                           "python3-dev)")


def _first_error(log: str) -> str:
    for line in log.splitlines():
        if re.search(r"\berror\b", line):
            return line.strip()
    lines = [ln for ln in log.splitlines() if ln.strip()]
    return lines[-1].strip() if lines else "the compiler failed"


def _load(name: str, fd: int, path: Path):
    # the file that was checked, through its fd: not a path that could change
    # since.  The fd stays open for the life of the process (as the module
    # does): the dynamic loader knows a library by the name it was opened by,
    # so that name must never be reused for another module.
    origin = f"/proc/self/fd/{fd}" if os.path.isdir("/proc/self/fd") else str(path)
    loader = importlib.machinery.ExtensionFileLoader(name, origin)
    mod_spec = importlib.util.spec_from_file_location(name, origin, loader=loader)
    mod = importlib.util.module_from_spec(mod_spec)
    loader.exec_module(mod)
    return mod


def load_module(spec: Spec, build: str = DEFAULT):
    """(ffi, lib) of the module compiled for ``spec`` in ``build``; SpecError
    (one line) if its C does not compile, InstallError if it cannot be built or
    cached here."""
    csrc = csrc_dir()
    # without the file's path: it is not the C's business, and the same file
    # anywhere must hit the same entry
    c_text = generate([dataclasses.replace(spec, path="")], origin=spec.name, build=build)
    k = key(c_text, csrc)
    if k in _loaded:
        return _loaded[k][:2]
    name = f"_kmw_user_{k}"
    cache = Cache()
    try:
        fd = cache.lookup(k)
        if fd is None:
            check_toolchain()
            with cache.lock(k):
                fd = cache.lookup(k)
                if fd is None:              # missing, or failed a check: rebuilt
                    with cache.build_dir() as tmp:
                        so = _compile(spec, c_text, name, tmp, csrc)
                        cache.store(k, so, spec.name)
                    fd = cache.lookup(k)
            if fd is None:
                raise InstallError(f"the compile cache {cache.root}: the module just built "
                                   "fails its checks (set KMALLOCWD_CACHE to a directory "
                                   "of yours)")
            cache.evict(keep=k)
        try:
            mod = _load(name, fd, cache.root / k)
        except BaseException:
            os.close(fd)
            raise
    except OSError as exc:
        raise InstallError(f"cannot use the compile cache {cache.root} "
                           f"({exc.strerror or exc}; set KMALLOCWD_CACHE to a writable "
                           "directory of yours)") from None
    _loaded[k] = (mod.ffi, mod.lib, fd)
    return _loaded[k][:2]


# The child: cffi's build of one module, leader of its own process group (the
# compiler's processes join it).  It reads its job on stdin (JSON) and imports
# nothing of kmallocwd.  If this process dies, even by SIGKILL, the child gets
# SIGTERM (PR_SET_PDEATHSIG): it then stops the compiler and removes the build
# directory, so that a kill leaves neither a running gcc nor a build-* directory.
_SCRIPT = """\
import json, os, shutil, signal, sys
job = json.load(sys.stdin)

def parent_died(signum, frame):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    os.killpg(0, signal.SIGTERM)
    while True:
        try:
            os.wait()
        except OSError:
            break
    shutil.rmtree(job["tmpdir"], ignore_errors=True)
    os._exit(143)

signal.signal(signal.SIGTERM, parent_died)
if os.getppid() != job["parent"]:
    parent_died(0, None)
from cffi import FFI
ffi = FFI()
ffi.cdef(job["cdef"])
ffi.set_source(job["name"], '#include "kmallocwd.h"', sources=job["sources"],
               include_dirs=[job["include"]], extra_compile_args=job["args"])
print(ffi.compile(tmpdir=job["tmpdir"], verbose=False))
"""


def _die_with_parent() -> None:  # in the child, before exec
    try:
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:
        pass


def _stop(proc: subprocess.Popen) -> None:
    """Stop the child: SIGTERM makes it stop its compiler, reap it and remove
    the build directory; SIGKILL to the whole group if it does not."""
    try:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except OSError:
        pass
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass


def _compile(spec: Spec, c_text: str, name: str, tmp: Path, csrc: Path) -> Path:
    gen = tmp / "protocol.c"
    gen.write_text(c_text)
    job = {"cdef": _cdefs.CDEF, "name": name, "tmpdir": str(tmp), "include": str(csrc),
           "sources": [str(csrc / s) for s in _cdefs.COMMON_SOURCES] + [str(gen)],
           "args": _cdefs.COMPILE_ARGS, "parent": os.getpid()}
    # its own session: a Ctrl-C at the terminal reaches this process, which
    # then kills the whole group (the compiler included), never half of it
    proc = subprocess.Popen([sys.executable, "-c", _SCRIPT], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=tmp, start_new_session=True, preexec_fn=_die_with_parent)
    try:
        out, err = proc.communicate(json.dumps(job))
    except BaseException:
        _stop(proc)
        raise
    if proc.returncode != 0:
        raise SpecError(f"{spec.path}: the generated C does not compile: "
                        f"{_first_error(err + out)}")
    lines = out.strip().splitlines()
    so = Path(lines[-1]) if lines else tmp / "missing"
    if not so.is_file() or so.parent.resolve() != tmp.resolve():
        raise InstallError(f"{spec.path}: cffi built no module in {tmp}: reinstall cffi "
                           "(pip install --force-reinstall cffi)")
    return so
