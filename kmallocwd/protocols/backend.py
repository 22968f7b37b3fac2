"""Where a protocol's C runs: the built-ins in the main extension
(kmallocwd._kmallocwd), a user's file in a module compiled for it
(usermod.py).  Everything a run allocates comes from its backend's ffi."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kmallocwd.protocols import BY_NAME
from kmallocwd.protocols.builds import DEFAULT, KERNEL
from kmallocwd.protocols.spec import Spec


@dataclass(frozen=True)
class Backend:
    spec: Spec
    ffi: Any
    lib: Any
    id: int  # the protocol's row in the module's table
    build: str = DEFAULT  # which barriers.h definitions it was compiled with

    @property
    def name(self) -> str:
        return self.spec.name


def _ids(ffi, lib) -> dict[str, int]:
    return {ffi.string(lib.kmw_protocol_name(i)).decode(): i
            for i in range(lib.kmw_nr_protocols())}


_MAIN_IDS: dict[str, int] | None = None


def cid(name: str) -> int:
    """The main extension's number for a built-in protocol."""
    global _MAIN_IDS
    if _MAIN_IDS is None:
        from kmallocwd._core import ffi, lib
        _MAIN_IDS = _ids(ffi, lib)
    return _MAIN_IDS[name]


def is_builtin(spec: Spec) -> bool:
    return BY_NAME.get(spec.name) is spec or (
        spec.name in BY_NAME and BY_NAME[spec.name].source == spec.source)


def backend(spec: Spec, build: str = DEFAULT) -> Backend:
    """The compiled C for ``spec`` in ``build`` (compiling a user's file, or
    a built-in's c11 build or a format-2 file, on first use)."""
    if is_builtin(spec) and build == KERNEL and spec.format == 1:
        from kmallocwd._core import ffi, lib
        return Backend(spec, ffi, lib, cid(spec.name), _built(ffi, lib))
    from kmallocwd.protocols.usermod import load_module
    ffi, lib = load_module(spec, build)
    return Backend(spec, ffi, lib, 0, _built(ffi, lib))


def _built(ffi, lib) -> str:
    """The build a module says it was compiled with."""
    return ffi.string(lib.kmw_build_name()).decode()
