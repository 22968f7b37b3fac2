"""Output paths that never destroy anything: a private stand-in for
``kmallocwd.outpath`` (being written on another branch), with its signatures,
so that it can be swapped for the shared module by changing one import.

``check_output(path, option, inputs=())`` is called before a run.  It refuses
(UsageError, one line naming the option) an empty path, a trailing slash, a
name too long, a missing directory, an existing path that is not a regular
file (device, FIFO, socket, directory, or a symlink to one of those), and a
path that resolves to one of ``inputs``; it proves the directory writable by
creating (and removing) the temporary file the write will use.  A symlink to
a regular file is written through: the file it points to is replaced, the
link stays.  ``write_text(target, text)`` writes atomically: a temporary file
in the same directory, fsync, rename.  ``-`` means stdout."""

from __future__ import annotations

import os
import stat
import sys
import tempfile
from dataclasses import dataclass

from kmallocwd.errors import UsageError


@dataclass(frozen=True)
class OutputTarget:
    path: str          # as given
    option: str        # the option that named it, for messages
    real: str | None   # the regular file written (symlinks resolved); None for stdout

    @property
    def stdout(self) -> bool:
        return self.real is None


def _same(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.realpath(a) == os.path.realpath(b)


def check_output(path: str, option: str, inputs=()) -> OutputTarget:
    if path == "-":
        return OutputTarget(path, option, None)
    if not path:
        raise UsageError(f"{option} '': empty path (accepted: a file path, or '-')")
    if path.endswith(os.sep):
        raise UsageError(f"{option} {path}: ends with '/' (accepted: a file path, not a directory)")
    real = os.path.realpath(path)
    for name in os.path.basename(real), os.path.basename(path):
        if len(os.fsencode(name)) > 255:
            raise UsageError(f"{option} {path[:60]}...: file name too long "
                             "(accepted: at most 255 bytes)")
    try:
        st = os.stat(real)
    except FileNotFoundError:
        st = None
    except OSError as exc:
        raise UsageError(f"{option} {path}: {exc.strerror or exc}") from None
    if st is not None and not stat.S_ISREG(st.st_mode):
        kind = ("a directory" if stat.S_ISDIR(st.st_mode) else
                "a FIFO" if stat.S_ISFIFO(st.st_mode) else
                "a device" if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode) else
                "a socket" if stat.S_ISSOCK(st.st_mode) else "not a regular file")
        raise UsageError(f"{option} {path}: is {kind}, which is never replaced "
                         "(accepted: a regular file path)")
    for inp in inputs:
        if inp and inp != "-" and os.path.exists(inp) and _same(real if st else path, inp):
            raise UsageError(f"{option} {path}: is an input of this command ({inp}); "
                             "it is never overwritten (accepted: another path)")
    parent = os.path.dirname(real) or "."
    if not os.path.isdir(parent):
        raise UsageError(f"{option} {path}: no directory {parent} (accepted: a file path "
                         "in an existing directory)")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(real)}.", suffix=".tmp",
                                   dir=parent)
    except OSError as exc:
        raise UsageError(f"{option} {path}: not writable ({exc.strerror or exc})") from None
    os.close(fd)
    os.unlink(tmp)
    if st is not None and not os.access(real, os.W_OK):
        raise UsageError(f"{option} {path}: not writable (accepted: a writable file path)")
    return OutputTarget(path, option, real)


def write_text(target: OutputTarget, text: str) -> None:
    """Write ``text`` to ``target`` atomically (or to stdout); OSError on failure."""
    if target.stdout:
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    parent = os.path.dirname(target.real) or "."
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(target.real)}.", suffix=".tmp",
                               dir=parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        try:
            mode = os.stat(target.real).st_mode & 0o777
        except FileNotFoundError:
            mode = 0o666 & ~_umask()
        os.chmod(tmp, mode)
        os.replace(tmp, target.real)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
