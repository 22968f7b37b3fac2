"""The two builds of a protocol's C: which definitions of the kernel's
barrier vocabulary (csrc/barriers.h) it is compiled with.

``kernel`` (the default) is what Linux compiles: volatile READ_ONCE/
WRITE_ONCE and, on x86-64, a compiler barrier for smp_rmb()/smp_wmb(), so
that GCC keeps the freedoms it has with kernel code.  ``c11`` maps every
name to a C11 fence or atomic access, the mapping ThreadSanitizer checks."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

KERNEL = "kernel"
C11 = "c11"
BUILDS = (KERNEL, C11)
DEFAULT = KERNEL
# The macro the c11 build is compiled with.
C11_MACRO = "KMW_BUILD_C11"

_NAMES = ("barrier", "READ_ONCE", "WRITE_ONCE", "smp_mb", "smp_rmb", "smp_wmb",
          "smp_load_acquire", "smp_store_release", "cpu_relax")
_PKG = Path(__file__).resolve().parent.parent
# the C core's barriers.h: the installed package's copy (kmallocwd/_csrc, the
# wheel), else the source tree's
BARRIERS_H_PLACES = (_PKG / "_csrc" / "barriers.h", _PKG.parent / "csrc" / "barriers.h")


def prelude(build: str) -> str:
    """The generated C's first lines for ``build`` (none for the kernel's)."""
    if build not in BUILDS:
        raise ValueError(f"unknown build {build!r}")
    return f"#ifndef {C11_MACRO}\n#define {C11_MACRO} 1\n#endif\n" if build == C11 else ""


def definitions(build: str) -> list[str]:
    """``#define`` lines of barriers.h as the C compiler sees them for
    ``build`` on this machine (its preprocessor's -dM); [] without one."""
    cc = shutil.which("cc") or shutil.which("gcc")
    header = next((h for h in BARRIERS_H_PLACES if h.is_file()), None)
    if cc is None or header is None:
        return []
    cmd = [cc, "-E", "-dM", *([f"-D{C11_MACRO}"] if build == C11 else []), str(header)]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    keep = []
    for line in out.splitlines():
        m = re.match(r"#define (\w+)", line)
        if m and m.group(1) in _NAMES:
            keep.append(" ".join(line.split()))
    return sorted(keep, key=lambda ln: _NAMES.index(re.match(r"#define (\w+)", ln).group(1)))
