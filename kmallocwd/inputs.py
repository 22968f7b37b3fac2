"""Input files, bounded: ``read_text(path, option, limit)`` reads a regular
file of at most ``limit`` bytes of UTF-8, or refuses it with a one-line
``UsageError`` naming the option, the path and what is accepted.

Nothing here can block or grow without bound: the path is stat()ed first and
a non-regular file (a FIFO, a device such as /dev/zero, a directory, a
socket) is refused without reading; the file is opened with O_NONBLOCK (a
FIFO swapped in meanwhile does not block) and checked again on its
descriptor; at most ``limit + 1`` bytes are read, whatever size the file
claims (files in /proc claim 0)."""

from __future__ import annotations

import os
import stat

from kmallocwd.errors import UsageError
from kmallocwd.outpath import kind, show


def _size(n: int) -> str:
    if n >= 1 << 20 and n % (1 << 20) == 0:
        return f"{n >> 20} MiB"
    if n >= 1 << 10 and n % (1 << 10) == 0:
        return f"{n >> 10} KiB"
    return f"{n} bytes"


def read_text(path: str, option: str, limit: int) -> str:
    """The text of the regular file ``path``; UsageError if it is not a
    readable regular file of at most ``limit`` bytes of UTF-8."""
    accepted = f"a readable regular file of at most {_size(limit)} of UTF-8 text"

    def refuse(why: str) -> UsageError:
        return UsageError(f"{option} {show(path)}: {why} (accepted: {accepted})")

    if path == "":
        raise refuse("an empty path")
    if "\0" in path:
        raise refuse("a path with a NUL character")
    try:
        st = os.stat(path)
    except OSError as exc:
        raise refuse(f"cannot read it: {_reason(exc)}") from None
    if not stat.S_ISREG(st.st_mode):
        raise refuse(f"{kind(st.st_mode)}, not a regular file")
    if st.st_size > limit:
        raise refuse(f"{st.st_size} bytes, over the limit")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | getattr(os, "O_NOCTTY", 0))
    except OSError as exc:
        raise refuse(f"cannot read it: {_reason(exc)}") from None
    try:
        fst = os.fstat(fd)
        if not stat.S_ISREG(fst.st_mode):
            raise refuse(f"{kind(fst.st_mode)}, not a regular file")
        chunks: list[bytes] = []
        got = 0
        while got <= limit:
            chunk = os.read(fd, min(1 << 20, limit + 1 - got))
            if not chunk:
                break
            chunks.append(chunk)
            got += len(chunk)
    except OSError as exc:
        raise refuse(f"cannot read it: {_reason(exc)}") from None
    finally:
        os.close(fd)
    if got > limit:
        raise refuse("more than the limit")
    data = b"".join(chunks)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise refuse(f"not UTF-8: byte 0x{data[exc.start]:02x} at offset {exc.start}") from None


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc)


def read_stdin(option: str, limit: int) -> str:
    """Standard input's text, at most ``limit`` bytes of UTF-8 (the same
    refusals as read_text, one line each)."""
    import sys

    accepted = f"at most {_size(limit)} of UTF-8 text on standard input"
    stream = getattr(sys.stdin, "buffer", None)
    if stream is None:
        raise UsageError(f"{option} -: standard input is closed (accepted: {accepted})")
    chunks: list[bytes] = []
    got = 0
    try:
        while got <= limit:
            chunk = stream.read(min(1 << 20, limit + 1 - got))
            if not chunk:
                break
            chunks.append(chunk)
            got += len(chunk)
    except OSError as exc:
        raise UsageError(f"{option} -: cannot read it: {_reason(exc)} (accepted: {accepted})"
                         ) from None
    if got > limit:
        raise UsageError(f"{option} -: more than the limit (accepted: {accepted})")
    data = b"".join(chunks)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(f"{option} -: not UTF-8: byte 0x{data[exc.start]:02x} at offset "
                         f"{exc.start} (accepted: {accepted})") from None
