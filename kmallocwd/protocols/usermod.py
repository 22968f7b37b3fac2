"""A user's protocol file, compiled at run time: the generated C of that one
protocol with the common C core, built with cffi into a cache keyed by the
hash of everything that goes into it, so that the second run compiles
nothing.  A compile error becomes one line (the compiler's first error)."""

from __future__ import annotations

import hashlib
import importlib.machinery
import importlib.util
import os
import re
import sys
import tempfile
from pathlib import Path

from kmallocwd.protocols.cgen import GENERATOR_VERSION, one_protocol_c
from kmallocwd.protocols.spec import Spec, SpecError

CSRC = Path(__file__).resolve().parent.parent.parent / "csrc"
_loaded: dict[str, tuple] = {}


def cache_dir() -> Path:
    base = os.environ.get("KMALLOCWD_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "kmallocwd")
    return Path(base)


def _key(c_text: str) -> str:
    from kmallocwd import _build

    h = hashlib.sha256()
    h.update(f"{GENERATOR_VERSION}|{sys.version}|{_build.COMPILE_ARGS}|".encode())
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


def load_module(spec: Spec):
    """(ffi, lib) of the module compiled for ``spec``."""
    if not CSRC.is_dir():
        raise SpecError(f"{spec.path}: protocol files need kmallocwd's C sources "
                        f"({CSRC}); install from the source tree (pip install -e .)")
    c_text = one_protocol_c(spec)
    key = _key(c_text)
    if key in _loaded:
        return _loaded[key]
    name = f"_kmw_user_{key}"
    where = cache_dir() / key
    built = list(where.glob(f"{name}*.so")) if where.is_dir() else []
    if not built:
        built = [_compile(spec, c_text, name, where)]
    loader = importlib.machinery.ExtensionFileLoader(name, str(built[0]))
    mod_spec = importlib.util.spec_from_file_location(name, str(built[0]), loader=loader)
    mod = importlib.util.module_from_spec(mod_spec)
    loader.exec_module(mod)
    _loaded[key] = (mod.ffi, mod.lib)
    return _loaded[key]


def _compile(spec: Spec, c_text: str, name: str, where: Path) -> Path:
    from cffi import FFI

    from kmallocwd import _build

    where.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="build-", dir=where))
    gen = tmp / f"{spec.ident}.c"
    gen.write_text(c_text)
    ffi = FFI()
    ffi.cdef(_build.CDEF)
    ffi.set_source(name, '#include "kmallocwd.h"',
                   sources=[str(CSRC / s) for s in _build.COMMON_SOURCES] + [str(gen)],
                   include_dirs=[str(CSRC)], extra_compile_args=_build.COMPILE_ARGS)
    log = tmp / "compile.log"
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    saved = os.dup(1), os.dup(2)
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        so = ffi.compile(tmpdir=str(tmp), verbose=False)
    except Exception as exc:  # cffi's VerificationError, a CompileError
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        raise SpecError(f"{spec.path}: the generated C does not compile: "
                        f"{_first_error(log.read_text(errors='replace') or str(exc))}") from None
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        os.close(fd)
        os.close(saved[0])
        os.close(saved[1])
    final = where / Path(so).name
    os.replace(so, final)
    return final
