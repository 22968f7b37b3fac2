"""One campaign at a time per results file: an exclusive ``fcntl.flock`` on
a lock file beside it (``.NAME.lock``, where NAME is the results file's
name), held while the campaign runs.  The holder writes its pid there, so
that a second campaign can say which process holds the file.  The lock file
is left in place afterwards (removing it would race with the next holder);
the kernel drops the lock when its holder exits, however it exits."""

from __future__ import annotations

import errno
import fcntl
import os
import stat
from dataclasses import dataclass

from kmallocwd.errors import UsageError


def lock_path(results: str) -> str:
    directory, name = os.path.split(results)
    return os.path.join(directory or ".", f".{name}.lock")


@dataclass
class ResultsLock:
    path: str
    fd: int

    def release(self) -> None:
        if self.fd >= 0:
            try:
                os.close(self.fd)  # closing the descriptor drops the flock
            except OSError:
                pass
            self.fd = -1


def _holder(fd: int) -> str:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return "unknown"
    return text if text.isdigit() else "unknown"


def acquire(results: str, label: str) -> ResultsLock:
    """Lock the results file ``results`` (its real path) for this process;
    UsageError (exit 2) naming the holder's pid if another process has it.
    ``label`` names the option in the message (``--json OUT``)."""
    path = lock_path(results)
    try:
        # no symlink followed, no FIFO waited on, not inherited by the cells
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK
                     | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        raise UsageError(f"{label}: cannot open its lock file {path}: "
                         f"{exc.strerror or exc} (accepted: a results file in a directory "
                         "where a regular file beside it can be created)") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise UsageError(f"{label}: its lock file {path} is not a regular file "
                             "(accepted: a results file whose lock file is one)")
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise UsageError(f"{label}: cannot lock {path}: {exc.strerror or exc}") \
                    from None
            raise UsageError(f"{label}: in use by another campaign (pid {_holder(fd)}, "
                             f"holding {path}); wait for it to end, or give another path") \
                from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
    except BaseException:
        os.close(fd)
        raise
    return ResultsLock(path, fd)
