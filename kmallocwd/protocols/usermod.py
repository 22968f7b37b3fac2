"""A user's protocol file, compiled at run time: the generated C of that one
protocol with the common C core, built with cffi into a cache keyed by the
hash of everything that goes into it (the generated C, the C core, the
compiler, the flags, the Python), so that the second run compiles nothing.
The compiler runs in a child process (its output never mixes with this
process's); a compile error becomes one line: the compiler's first error."""

from __future__ import annotations

import hashlib
import importlib.machinery
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

from kmallocwd.protocols.builds import DEFAULT
from kmallocwd.protocols.cgen import GENERATOR_VERSION, generate
from kmallocwd.protocols.spec import Spec, SpecError

CSRC = Path(__file__).resolve().parent.parent.parent / "csrc"
_loaded: dict[str, tuple] = {}


def cache_dir() -> Path:
    base = os.environ.get("KMALLOCWD_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "kmallocwd")
    return Path(base)


def _compiler_id() -> str:
    cc = (sysconfig.get_config_var("CC") or "cc").split()[0]
    try:
        return subprocess.run([cc, "--version"], capture_output=True, text=True,
                              timeout=30).stdout.splitlines()[0]
    except (OSError, IndexError, subprocess.SubprocessError):
        return cc


def _key(c_text: str) -> str:
    from kmallocwd import _build

    h = hashlib.sha256()
    h.update(f"{GENERATOR_VERSION}|{sys.version}|{_build.COMPILE_ARGS}|{_compiler_id()}|"
             .encode())
    h.update(c_text.encode())
    for p in sorted(CSRC.glob("*.h")) + [CSRC / s for s in _build.COMMON_SOURCES]:
        h.update(p.name.encode())
        h.update(p.read_bytes())
    return h.hexdigest()[:20]


def _first_error(log: str) -> str:
    for line in log.splitlines():
        if re.search(r"\berror\b", line):
            return line.strip()
    lines = [ln for ln in log.splitlines() if ln.strip()]
    return lines[-1].strip() if lines else "the compiler failed"


def load_module(spec: Spec, build: str = DEFAULT):
    """(ffi, lib) of the module compiled for ``spec`` in ``build``; SpecError
    (one line) if it cannot be compiled or the cache cannot be written."""
    if not CSRC.is_dir():
        raise SpecError(f"{spec.path}: protocol files need kmallocwd's C sources "
                        f"({CSRC}); install from the source tree (pip install -e .)")
    # no path: the same file anywhere hits
    c_text = generate([spec], origin=spec.name, build=build)
    key = _key(c_text)
    if key in _loaded:
        return _loaded[key]
    name = f"_kmw_user_{key}"
    where = cache_dir() / key
    try:
        built = sorted(where.glob(f"{name}*.so")) if where.is_dir() else []
        if not built:
            built = [_compile(spec, c_text, name, where)]
    except OSError as exc:
        raise SpecError(f"{spec.path}: cannot use the compile cache {cache_dir()} "
                        f"({exc.strerror or exc}; set KMALLOCWD_CACHE to a writable "
                        "directory)") from None
    loader = importlib.machinery.ExtensionFileLoader(name, str(built[0]))
    mod_spec = importlib.util.spec_from_file_location(name, str(built[0]), loader=loader)
    mod = importlib.util.module_from_spec(mod_spec)
    loader.exec_module(mod)
    _loaded[key] = (mod.ffi, mod.lib)
    return _loaded[key]


def _compile(spec: Spec, c_text: str, name: str, where: Path) -> Path:
    from kmallocwd import _build

    where.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="build-", dir=where))
    try:
        gen = tmp / f"{spec.ident}.c"
        gen.write_text(c_text)
        script = (
            "import sys; from cffi import FFI; from kmallocwd import _build as b\n"
            "ffi = FFI(); ffi.cdef(b.CDEF)\n"
            "ffi.set_source(sys.argv[1], '#include \"kmallocwd.h\"', sources=sys.argv[4:] ,"
            " include_dirs=[sys.argv[3]], extra_compile_args=b.COMPILE_ARGS)\n"
            "print(ffi.compile(tmpdir=sys.argv[2], verbose=False))\n")
        sources = [str(CSRC / s) for s in _build.COMMON_SOURCES] + [str(gen)]
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(
            [str(CSRC.parent)] + [p for p in [os.environ.get("PYTHONPATH")] if p]))
        r = subprocess.run([sys.executable, "-c", script, name, str(tmp), str(CSRC), *sources],
                           capture_output=True, text=True, env=env)
        if r.returncode != 0:
            raise SpecError(f"{spec.path}: the generated C does not compile: "
                            f"{_first_error(r.stderr + r.stdout)}")
        so = Path(r.stdout.strip().splitlines()[-1])
        final = where / so.name
        os.replace(so, final)
        return final
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
