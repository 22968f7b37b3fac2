"""Every output option (``--json PATH``, ``--log FILE``, ``--png PATH``, and
any later one) goes through here, so that no output path can destroy
anything.

``check_output()`` is called *before* the run.  It refuses, with a
``UsageError`` of one line naming the option and the path:

- ``''``, a path ending in ``/``, a name or path too long, a NUL;
- a path in a missing directory, or in one where no file can be created
  (``/proc``, ``/sys``, a read-only mount): writability is proven by creating
  the temporary file now, in the target's directory;
- an existing path that is not a regular file: a device, FIFO, socket or
  directory, or a symlink to one of those (or to nothing);
- a path that is one of the command's input files;
- a path that names the same file as another output of the command (the
  same path, a hard link, a symlink to it; or ``-`` twice);
- a path through a symlink that the kernel's ``protected_symlinks`` rule
  would not follow: one in a sticky, world-writable directory (``/tmp``)
  owned by neither the current user nor the directory's owner -- checked
  here whatever the sysctl says, since we run as root.

``-`` means stdout.  A symlink to a regular file is written *through*: its
target is replaced (atomically), the link is kept.

``write_text()`` writes the whole text into the temporary file, then
renames it over the target: a reader sees the old file or the new one,
never half of one.  A failure raises ``WriteFailed`` (exit 74); the old
file is left as it was.  ``open_stream()`` / ``commit()`` do the same for an
output written as the run goes (``run --log``).
"""

from __future__ import annotations

import atexit
import errno
import io
import os
import stat
import sys
import tempfile
from dataclasses import dataclass, field
from typing import Callable, Sequence, TextIO

from kmallocwd.errors import UsageError, WriteFailed

ACCEPTED = "a writable regular file path, or '-' for stdout"

# Temporary files created by check_output() and not yet committed or
# discarded: removed at exit, whatever happens.
_pending: dict[str, "OutputTarget"] = {}

# The outputs the command being run has checked (between begin_command()
# and end_command(), i.e. inside cli.main): no two may name one file.
_claimed: "list[OutputTarget] | None" = None


def begin_command() -> None:
    """From now on, check_output() refuses a file claimed by another output."""
    global _claimed
    _claimed = []


def end_command() -> None:
    global _claimed
    _claimed = None


def show(path: str) -> str:
    """A path as an error line shows it: as given, or quoted when it holds a
    control character (so that the line stays one line)."""
    return path if path and path.isprintable() else repr(path)


def kind(mode: int) -> str:
    """What a non-regular file is, in words."""
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISLNK(mode):
        return "a symlink"
    return "not a regular file"


@dataclass
class OutputTarget:
    """A checked output: stdout, or a regular file to be replaced."""

    option: str
    path: str  # as given
    stdout: bool = False
    real: str = ""  # the file that is replaced (a symlink's target)
    tmp: str = ""  # the temporary file beside it, created by check_output()
    mode: int = 0o644
    owner: tuple[int, int] | None = None  # uid, gid of the file it replaces
    stream: "GuardedStream | None" = field(default=None, repr=False)
    fd: int = -1  # the temporary file, open since check_output() (written through it)
    resolved: str = ""  # the real path, every symlink resolved
    ident: tuple[int, int] | None = None  # (st_dev, st_ino) of the file, if it exists

    def label(self) -> str:
        return f"{self.option} {show(self.path)}"


def _refuse(option: str, path: str, why: str, accepted: str = ACCEPTED) -> UsageError:
    return UsageError(f"{option} {show(path)}: {why} (accepted: {accepted})")


def _same_file(a: os.stat_result, b: os.stat_result) -> bool:
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def check_output(path: str, option: str, inputs: Sequence[str] = ()) -> OutputTarget:
    """Check an output path before the run and create its temporary file;
    UsageError (one line) if it cannot or must not be written."""
    if path == "-":
        target = OutputTarget(option, path, stdout=True)
        _claim(target)
        return target
    if path == "":
        raise _refuse(option, path, "an empty path")
    if "\0" in path:
        raise _refuse(option, path, "a path with a NUL character")
    if path.endswith("/"):
        raise _refuse(option, path, "ends with '/', which names a directory")
    try:
        path_max = os.pathconf("/", "PC_PATH_MAX")
    except (OSError, ValueError):
        path_max = 4096
    if len(os.fsencode(path)) >= path_max:
        raise _refuse(option, path, f"the path is longer than {path_max - 1} bytes")
    link = _unprotected_link(path)
    if link is not None:
        lpath, luid, ldir = link
        raise _refuse(option, path, f"goes through the symlink {show(lpath)}, owned by uid "
                      f"{luid}, in the sticky world-writable directory {show(ldir)}: "
                      "followed only if owned by you or by the directory's owner (the "
                      "kernel's protected_symlinks rule)",
                      "a path through no other user's symlink in a sticky directory")
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        st = None
    except OSError as exc:
        raise _refuse(option, path, _reason(exc)) from None
    real = path
    mode = None
    owner = None
    if st is not None:
        if stat.S_ISLNK(st.st_mode):
            try:
                tst = os.stat(path)
            except OSError as exc:
                why = ("a symlink to nothing" if exc.errno == errno.ENOENT
                       else f"a symlink that cannot be followed: {_reason(exc)}")
                raise _refuse(option, path, why) from None
            if not stat.S_ISREG(tst.st_mode):
                raise _refuse(option, path, f"a symlink to {kind(tst.st_mode)}, not to a "
                              "regular file")
            real = os.path.realpath(path)
            st = tst
        elif not stat.S_ISREG(st.st_mode):
            raise _refuse(option, path, f"{kind(st.st_mode)}, not a regular file")
        if not os.access(real, os.W_OK):
            raise _refuse(option, path, "the file is not writable")
        mode = stat.S_IMODE(st.st_mode)
        owner = (st.st_uid, st.st_gid)
    directory, name = os.path.split(real)
    directory = directory or "."
    name_max = 255
    try:
        name_max = os.pathconf(directory, "PC_NAME_MAX")
    except (OSError, ValueError):
        pass
    if len(os.fsencode(name)) > name_max:
        raise _refuse(option, path, f"the file name is longer than {name_max} bytes")
    try:
        dst = os.stat(directory)
    except OSError as exc:
        why = (f"no directory {show(directory)}" if exc.errno in (errno.ENOENT, errno.ENOTDIR)
               else f"directory {show(directory)}: {_reason(exc)}")
        raise _refuse(option, path, why) from None
    if not stat.S_ISDIR(dst.st_mode):
        raise _refuse(option, path, f"{show(directory)} is not a directory")
    for inp in inputs:
        if inp in ("", "-"):
            continue
        try:
            ist = os.stat(inp)
        except (OSError, ValueError):
            continue
        if st is not None and _same_file(st, ist):
            raise _refuse(option, path, f"this is the input file {show(inp)}",
                          "a path other than the command's input files")
    claim = OutputTarget(option, path, real=real, resolved=os.path.realpath(real),
                         ident=None if st is None else (st.st_dev, st.st_ino))
    _claim(claim)
    # Prove the directory takes a new file: create the temporary file now.
    # Its name: ".NAME.XXXXXXXX.tmpEXT", NAME cut to 40 bytes and EXT (the
    # target's extension, for writers that go by it) to 16, so it fits.
    ext = os.fsdecode(os.fsencode(os.path.splitext(name)[1])[:16])
    short = os.fsdecode(os.fsencode(name)[:40])
    try:
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{short}.", suffix=f".tmp{ext}")
    except OSError as exc:
        raise _refuse(option, path, f"cannot create a file in {show(directory)}: "
                      f"{_reason(exc)}") from None
    if mode is None:
        mask = os.umask(0)
        os.umask(mask)
        mode = 0o666 & ~mask
    target = OutputTarget(option, path, real=real, tmp=tmp, mode=mode, owner=owner, fd=fd,
                          resolved=claim.resolved, ident=claim.ident)
    _release(claim)
    _claim(target)
    _pending[tmp] = target
    return target


def _claim(target: OutputTarget) -> None:
    """Refuse (UsageError) a file another output of this command names; else
    record it.  Outside a command (no begin_command()), nothing is checked."""
    if _claimed is None:
        return
    for other in _claimed:
        if target.stdout or other.stdout:
            if target.stdout and other.stdout:
                raise _refuse(target.option, "-", f"stdout already takes {other.label()}",
                              "a file path")
            continue
        if target.resolved == other.resolved or (
                target.ident is not None and target.ident == other.ident):
            raise _refuse(target.option, target.path, f"the same file as {other.label()}",
                          "a path of its own for each output")
    _claimed.append(target)


def _release(target: OutputTarget) -> None:
    if _claimed is not None:
        for i, other in enumerate(_claimed):
            if other is target:
                del _claimed[i]
                break


def _unprotected_link(path: str) -> tuple[str, int, str] | None:
    """The first symlink on the way to ``path`` that the kernel's
    protected_symlinks rule would not let us follow -- one in a sticky,
    world-writable directory, owned by neither us nor the directory's
    owner -- as (link, its owner's uid, its directory); else None.  A path
    that cannot be walked (a missing or unreadable part, a loop) is left to
    the checks that follow."""
    euid = os.geteuid()
    cur = "/" if path.startswith("/") else os.getcwd()
    parts = [p for p in path.split("/") if p not in ("", ".")]
    hops = 0
    while parts:
        name = parts.pop(0)
        if name == "..":
            cur = os.path.dirname(cur) or "/"
            continue
        nxt = os.path.join(cur, name)
        try:
            st = os.lstat(nxt)
        except OSError:
            return None
        if not stat.S_ISLNK(st.st_mode):
            cur = nxt
            continue
        hops += 1
        try:
            dst = os.stat(cur)
            dest = os.readlink(nxt)
        except OSError:
            return None
        sticky_open = stat.S_ISVTX | stat.S_IWOTH
        if (dst.st_mode & sticky_open) == sticky_open and st.st_uid not in (euid, dst.st_uid):
            return nxt, st.st_uid, cur
        if hops > 40:
            return None  # a loop: stat() says so below
        if dest.startswith("/"):
            cur = "/"
        parts = [p for p in dest.split("/") if p not in ("", ".")] + parts
    return None


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def _close(target: OutputTarget) -> None:
    if target.fd >= 0:
        try:
            os.close(target.fd)
        except OSError:
            pass
        target.fd = -1


def discard(target: OutputTarget) -> None:
    """Give up an output: remove its temporary file, the target untouched
    (and no longer claimed by this command)."""
    _release(target)
    _close(target)
    if target.tmp:
        try:
            os.unlink(target.tmp)
        except OSError:
            pass
        _pending.pop(target.tmp, None)


@atexit.register
def discard_all() -> None:
    """Remove every temporary file not committed (a refused or failed run)."""
    for target in list(_pending.values()):
        discard(target)


def _fail(target: OutputTarget, exc: BaseException) -> WriteFailed:
    return WriteFailed(f"{target.label()}: cannot write it: {_reason(exc)}")


def _install(target: OutputTarget) -> None:
    """Rename the written temporary file over the target (still regular or
    absent: checked again, so a device put there meanwhile survives)."""
    try:
        st = os.lstat(target.real)
    except FileNotFoundError:
        st = None
    except OSError as exc:
        raise _fail(target, exc) from None
    if st is not None and not stat.S_ISREG(st.st_mode):
        raise WriteFailed(f"{target.label()}: became {kind(st.st_mode)} during the run; "
                          "left as it is")
    try:
        if target.fd >= 0:  # written through the descriptor: set its mode there
            os.fchmod(target.fd, target.mode)
            if target.owner is not None and os.geteuid() == 0:
                os.fchown(target.fd, *target.owner)
            os.fsync(target.fd)
            _close(target)
        else:  # written by path (write_file)
            os.chmod(target.tmp, target.mode)
            if target.owner is not None and os.geteuid() == 0:
                os.chown(target.tmp, *target.owner)
        os.replace(target.tmp, target.real)
    except OSError as exc:
        raise _fail(target, exc) from None
    _pending.pop(target.tmp, None)


def _rearm(target: OutputTarget) -> None:
    """A new temporary file beside a target already written once (a results
    file rewritten as a campaign goes)."""
    directory = os.path.dirname(target.real) or "."
    name = os.path.basename(target.real)
    ext = os.fsdecode(os.fsencode(os.path.splitext(name)[1])[:16])
    short = os.fsdecode(os.fsencode(name)[:40])
    try:
        target.fd, target.tmp = tempfile.mkstemp(dir=directory, prefix=f".{short}.",
                                                 suffix=f".tmp{ext}")
    except OSError as exc:
        raise _fail(target, exc) from None
    _pending[target.tmp] = target


def write_text(target: OutputTarget, text: str) -> None:
    """Write ``text`` to the target: stdout, or the file replaced whole
    (temporary file, then rename).  WriteFailed on any error.  A target may
    be written again: each write replaces the file whole."""
    if not target.stdout and target.fd < 0:
        _rearm(target)
    if target.stdout:
        try:
            sys.stdout.write(text)
            sys.stdout.flush()
        except (OSError, ValueError, AttributeError) as exc:
            raise WriteFailed(f"{target.label()}: cannot write to stdout: {_reason(exc)}") from None
        return
    try:
        try:
            data = text.encode("utf-8")
            view = memoryview(data)
            while view:
                view = view[os.write(target.fd, view):]
        except (OSError, ValueError) as exc:
            raise _fail(target, exc) from None
        _install(target)
    except BaseException:
        discard(target)
        raise


def write_outputs(command: str, outputs: Sequence[tuple["OutputTarget | None",
                                                          Callable[[], str]]]) -> bool:
    """Write each checked output (target, text producer) that was asked for;
    a failure is one line on stderr and the others are still written.
    False if any failed (the command then exits 74)."""
    ok = True
    for target, produce in outputs:
        if target is None:
            continue
        try:
            write_text(target, produce())
        except WriteFailed as exc:
            sys.stderr.write(f"{command}: error: {exc}\n")
            ok = False
    return ok


def write_file(target: OutputTarget, produce: Callable[[str], None]) -> None:
    """Like write_text, for a writer that wants a path (a chart library):
    ``produce(tmp_path)`` writes the temporary file (it keeps the target's
    extension), which then replaces the target.  Exceptions of ``produce``
    other than OSError propagate; the target is untouched."""
    if target.stdout:
        raise WriteFailed(f"{target.label()}: cannot write this output to stdout")
    _close(target)  # the writer opens the path itself
    try:
        try:
            produce(target.tmp)
        except OSError as exc:
            raise _fail(target, exc) from None
        _install(target)
    except BaseException:
        discard(target)
        raise


class GuardedStream(io.TextIOBase):
    """A text stream whose write errors are kept, not raised: the run goes
    on, and whoever owns the stream reports ``error`` at the end.  Used for
    stdout (cli.main) and for streamed outputs (``run --log``)."""

    def __init__(self, real: TextIO | None, closed_reason: str = "it is closed") -> None:
        self.real = real
        self.error: OSError | None = None
        if real is None:
            self.error = OSError(errno.EBADF, closed_reason)

    def write(self, s: str) -> int:
        if self.error is None:
            try:
                self.real.write(s)
            except (OSError, ValueError) as exc:
                self.error = exc if isinstance(exc, OSError) else OSError(errno.EBADF, str(exc))
        return len(s)

    def flush(self) -> None:
        if self.error is None and self.real is not None:
            try:
                self.real.flush()
            except (OSError, ValueError) as exc:
                self.error = exc if isinstance(exc, OSError) else OSError(errno.EBADF, str(exc))

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        try:
            return self.real is not None and self.real.isatty()
        except (OSError, ValueError):
            return False

    def fileno(self) -> int:
        if self.real is None:
            raise io.UnsupportedOperation("stdout is closed")
        return self.real.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self.real, "encoding", None) or "utf-8"


def stream_error(stream: object) -> OSError | None:
    """The write error a GuardedStream kept, or None."""
    return getattr(stream, "error", None) if isinstance(stream, GuardedStream) else None


def stdout_failure() -> OSError | None:
    """The error that makes stdout a failed output (exit 74): any write
    error but a broken pipe, which only says the reader stopped reading."""
    err = stream_error(sys.stdout)
    return None if err is None or err.errno == errno.EPIPE else err


def open_stream(target: OutputTarget) -> TextIO:
    """A text stream into the target's temporary file, for an output
    written as the run goes; ``commit()`` puts it in place.  For ``-``,
    sys.stdout itself."""
    if target.stdout:
        return sys.stdout
    try:
        real = open(target.fd, "w", encoding="utf-8", closefd=False)
    except OSError as exc:
        discard(target)
        raise _fail(target, exc) from None
    target.stream = GuardedStream(real)
    return target.stream  # type: ignore[return-value]


def commit(target: OutputTarget) -> None:
    """Close the stream of open_stream() and rename it over the target;
    WriteFailed (the target untouched) if any write failed."""
    if target.stdout:
        return
    s = target.stream
    try:
        if s is not None:
            s.flush()
            try:
                s.real.close()  # not the descriptor: _install() syncs and closes it
            except OSError as exc:
                s.error = s.error or exc
            if s.error is not None:
                raise _fail(target, s.error)
        _install(target)
    except BaseException:
        discard(target)
        raise
