"""Reading an input file with a size limit, regular files only.

A private stand-in with the signature of ``kmallocwd.inputs.read_text`` (being
written on another branch), so that it can be swapped for it: one line, a
UsageError, for anything that is not a readable regular file of at most
``limit`` bytes of UTF-8.  A FIFO does not block (it is opened non-blocking,
then refused), a device such as /dev/zero is refused before any read, and
at most limit + 1 bytes are ever read.
"""

from __future__ import annotations

import errno
import os
import stat

from kmallocwd.errors import UsageError


def _mib(n: int) -> str:
    return f"{n / 2**20:g} MiB" if n >= 2**20 else f"{n:,} bytes"


def read_text(path: str, option: str, limit: int) -> str:
    """The text of the regular file at path (at most limit bytes, UTF-8).
    option names the command-line option in messages ('' for none)."""
    where = f"{option} {path}" if option else str(path)
    if not str(path):
        raise UsageError(f"{option or 'file'}: empty path")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise UsageError(f"{where}: no such file") from None
    except IsADirectoryError:
        raise UsageError(f"{where}: is a directory, not a file") from None
    except OSError as exc:
        raise UsageError(f"{where}: cannot open it ({exc.strerror or exc})") from None
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise UsageError(f"{where}: is a directory, not a file")
        if not stat.S_ISREG(st.st_mode):
            kind = ("a FIFO" if stat.S_ISFIFO(st.st_mode) else
                    "a character device" if stat.S_ISCHR(st.st_mode) else
                    "a block device" if stat.S_ISBLK(st.st_mode) else
                    "a socket" if stat.S_ISSOCK(st.st_mode) else "not a regular file")
            raise UsageError(f"{where}: is {kind}; only a regular file is read")
        if st.st_size > limit:
            raise UsageError(f"{where}: {_mib(st.st_size)}, over the {_mib(limit)} limit")
        chunks, got = [], 0
        while got <= limit:
            try:
                b = os.read(fd, min(1 << 20, limit + 1 - got))
            except OSError as exc:
                if exc.errno == errno.EINTR:
                    continue
                raise UsageError(f"{where}: cannot read it ({exc.strerror or exc})") from None
            if not b:
                break
            chunks.append(b)
            got += len(b)
        if got > limit:  # it grew while being read
            raise UsageError(f"{where}: over the {_mib(limit)} limit")
    finally:
        os.close(fd)
    try:
        return b"".join(chunks).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(f"{where}: not UTF-8 text (byte {exc.start})") from None
