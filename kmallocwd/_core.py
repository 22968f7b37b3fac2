"""Loads the cffi extension built from csrc/ (``make`` builds it)."""

from __future__ import annotations

try:
    from kmallocwd._kmallocwd import ffi, lib  # type: ignore[import-not-found]
except ImportError as exc:  # pragma: no cover - only without a build
    raise ImportError(
        "kmallocwd's C extension is not built: run 'make build' "
        "(or 'pip install -e .') in the source tree"
    ) from exc

__all__ = ["ffi", "lib"]
