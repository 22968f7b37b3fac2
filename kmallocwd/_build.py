"""cffi (API mode) builder for the C core: ``kmallocwd._kmallocwd``.

setup.py points ``cffi_modules`` here; ``make`` rebuilds it whenever a file
in ``csrc/`` or a protocol file changes.  The built-in protocols' C is
generated here, from kmallocwd/protocols/*.toml, into build/gen/.  A user's
protocol file is compiled the same way at run time (protocols/usermod.py).

The declarations, sources and flags are in kmallocwd/_cdefs.py (shared with
the run-time compilation); this file is the setup-time builder only, run from
the source tree (cffi executes it: it is never imported at run time).
"""

from __future__ import annotations

import sys
from pathlib import Path

from cffi import FFI

ROOT = Path(__file__).resolve().parent.parent
CSRC = ROOT / "csrc"
GEN = ROOT / "build" / "gen"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from kmallocwd._cdefs import (CDEF, CDEF_WATCHDOG, COMMON_SOURCES,  # noqa: E402,F401
                              COMPILE_ARGS, SOURCES)


def _write_if_changed(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or path.read_text() != text:
        path.write_text(text)


def generate_builtins() -> Path:
    """Write the built-in protocols' C to build/gen/; its path."""
    from kmallocwd.protocols.cgen import generate
    from kmallocwd.protocols.spec import builtin_specs

    out = GEN / "kmw_protocols.c"
    _write_if_changed(out, generate([s for s in builtin_specs() if s.format == 1]))
    return out


ffibuilder = FFI()
ffibuilder.cdef(CDEF + CDEF_WATCHDOG)
ffibuilder.set_source(
    "kmallocwd._kmallocwd",
    '#include "kmallocwd.h"\n#include "reference.h"\n#include "replay.h"',
    sources=[str((CSRC / s).relative_to(ROOT)) for s in SOURCES]
    + [str(generate_builtins().relative_to(ROOT))],
    include_dirs=[str(CSRC.relative_to(ROOT))],
    extra_compile_args=COMPILE_ARGS,
    depends=[str(p.relative_to(ROOT)) for p in sorted(CSRC.glob("*.h"))],
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
