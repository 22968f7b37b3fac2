"""Bounded reading of input files: a private stand-in for ``kmallocwd.inputs``
(being written on another branch), with its signature, so that it can be
swapped for the shared module by changing one import.

``read_text(path, option, limit)`` refuses, with a UsageError naming the
option and the path, anything that is not a regular file (a FIFO would block,
a device never ends) and any file larger than ``limit`` bytes."""

from __future__ import annotations

import os
import stat

from kmallocwd.errors import UsageError


def read_text(path: str, option: str, limit: int) -> str:
    if not path:
        raise UsageError(f"{option} '': empty path (accepted: a regular file)")
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise UsageError(f"{option} {path}: cannot read it ({exc.strerror or exc})") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise UsageError(f"{option} {path}: not a regular file (accepted: a regular file)")
        if st.st_size > limit:
            raise UsageError(f"{option} {path}: {st.st_size} bytes is too large "
                             f"(accepted: at most {limit} bytes)")
        chunks = []
        total = 0
        while True:
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                break
            total += len(chunk)
            if total > limit:
                raise UsageError(f"{option} {path}: grew past {limit} bytes while read "
                                 f"(accepted: at most {limit} bytes)")
            chunks.append(chunk)
    except OSError as exc:
        raise UsageError(f"{option} {path}: cannot read it ({exc.strerror or exc})") from None
    finally:
        os.close(fd)
    try:
        return b"".join(chunks).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(f"{option} {path}: not UTF-8 text (byte {exc.start})") from None
