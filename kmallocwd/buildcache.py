"""The compile cache of users' protocol modules: one directory per user,
trusted only after it is checked, one entry per key.

Layout: ``ROOT/KEY/`` holds the module (``NAME.so``) and ``manifest.json``
(its name, size and SHA-256, written at build time); ``ROOT/.KEY.lock`` is
the lock a build of KEY holds.  An entry is built in ``ROOT/build-PID-*``,
staged in ``ROOT/.new-PID-*`` with its manifest, then renamed to ``KEY`` in
one step, so another process sees either no entry or a whole one.

ROOT is ``$KMALLOCWD_CACHE``, else ``$XDG_CACHE_HOME/kmallocwd`` (an absolute
XDG_CACHE_HOME only, as the XDG spec says), else ``$HOME/.cache/kmallocwd``
(an absolute, existing HOME only), else ``kmallocwd-cache-UID`` in the temp
directory.  It is created 0700 and must be a directory (not a symlink) owned
by the current user; the directories above it must belong to root or to the
user and be writable by no one else unless sticky, and a symlink on the way
must belong to root or to the user.

An entry is loaded only if its directory and files are ours, not writable by
group or others, regular files (a FIFO or device is never opened blocking),
and the module's content matches the manifest's size and hash.  Anything
else is not an entry: the caller rebuilds it.  The cache keeps at most
``KMALLOCWD_CACHE_MAX_MB`` megabytes (200) and ``KMALLOCWD_CACHE_MAX_ENTRIES``
entries (100); the least recently used go first."""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import hashlib
import json
import os
import re
import shutil
import stat
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from kmallocwd.errors import InstallError, UsageError

MANIFEST = "manifest.json"
MANIFEST_MAX = 64 * 1024
DEFAULT_MAX_MB = 200.0
DEFAULT_MAX_ENTRIES = 100
KEY_RE = re.compile(r"[0-9a-f]{16,64}")
FILE_RE = re.compile(r"_kmw_user_[0-9a-f]{16,64}(\.[A-Za-z0-9_-]+)*\.so")
TEMP_RE = re.compile(r"(build|\.new|\.trash)-([0-9]+)-.*")
HINT = "set KMALLOCWD_CACHE to a directory of yours"


def _show(text: str) -> str:
    return repr(text) if any(not c.isprintable() for c in text) else text


def base_dir() -> Path:
    """The cache's directory, from the environment (not created, not checked)."""
    env = os.environ.get("KMALLOCWD_CACHE")
    if env:
        if not os.path.isabs(env):
            raise UsageError(f"KMALLOCWD_CACHE={_show(env)}: not an absolute path "
                             "(accepted: an absolute directory, or unset)")
        return Path(os.path.normpath(env))
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg and os.path.isabs(xdg):
        return Path(os.path.normpath(xdg)) / "kmallocwd"
    home = os.environ.get("HOME")
    if home and os.path.isabs(home) and os.path.isdir(home):
        return Path(os.path.normpath(home)) / ".cache" / "kmallocwd"
    return Path(tempfile.gettempdir()) / f"kmallocwd-cache-{os.geteuid()}"


def limits() -> tuple[int, int]:
    """(bytes, entries): the cache's cap, from the environment."""
    def get(name: str, default: float, hi: float) -> float:
        raw = os.environ.get(name)
        if raw is None or raw == "":
            return default
        try:
            v = float(raw)
        except ValueError:
            v = -1.0
        if not 0 <= v <= hi:
            raise UsageError(f"{name}={_show(raw)} (accepted: a number from 0 to {hi:g})")
        return v
    mb = get("KMALLOCWD_CACHE_MAX_MB", DEFAULT_MAX_MB, 1e6)
    n = get("KMALLOCWD_CACHE_MAX_ENTRIES", DEFAULT_MAX_ENTRIES, 1e6)
    return int(mb * 1024 * 1024), int(n)


def _refuse(path: Path | str, why: str) -> InstallError:
    return InstallError(f"the compile cache {_show(str(path))}: {why} ({HINT})")


def _check_ancestors(path: Path) -> None:
    """Every directory above ``path``: root's or ours, writable by no one else
    unless sticky; every symlink on the way: root's or ours."""
    uid = os.geteuid()
    given = Path(path)
    for p in list(given.parents)[::-1]:
        st = os.lstat(p)
        if stat.S_ISLNK(st.st_mode) and st.st_uid not in (0, uid):
            raise _refuse(path, f"{p} is a symlink owned by uid {st.st_uid}")
    for p in list(Path(os.path.realpath(given.parent)).parents)[::-1] + \
            [Path(os.path.realpath(given.parent))]:
        st = os.lstat(p)
        if st.st_uid not in (0, uid):
            raise _refuse(path, f"{p} belongs to uid {st.st_uid}")
        if st.st_mode & 0o022 and not st.st_mode & stat.S_ISVTX:
            raise _refuse(path, f"{p} is writable by others")


def _check_root(path: Path) -> None:
    st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode):
        raise _refuse(path, "it is a symlink")
    if not stat.S_ISDIR(st.st_mode):
        raise _refuse(path, "not a directory")
    if st.st_uid != os.geteuid():
        raise _refuse(path, f"it belongs to uid {st.st_uid}, not to this user")
    if st.st_mode & 0o077:
        os.chmod(path, 0o700, follow_symlinks=False)


def _remove_tree(path: Path) -> None:
    """Remove an entry or a temporary directory (never following a symlink)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def _open_regular(path: Path, max_size: int | None = None) -> tuple[int, os.stat_result]:
    """An fd on ``path`` if it is a regular file of ours, not writable by
    group or others (and at most ``max_size`` bytes); ValueError if not.
    A FIFO or device is not opened (and O_NONBLOCK if one appears between)."""
    st = os.lstat(path)
    if not stat.S_ISREG(st.st_mode):
        raise ValueError("not a regular file")
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        fst = os.fstat(fd)
        if (not stat.S_ISREG(fst.st_mode) or (fst.st_dev, fst.st_ino) != (st.st_dev, st.st_ino)):
            raise ValueError("replaced while opened")
        if fst.st_uid != os.geteuid():
            raise ValueError(f"owned by uid {fst.st_uid}")
        if fst.st_mode & 0o022:
            raise ValueError("writable by group or others")
        if max_size is not None and fst.st_size > max_size:
            raise ValueError("too large")
        return fd, fst
    except BaseException:
        os.close(fd)
        raise


def _read_all(fd: int, size: int) -> Iterator[bytes]:
    off = 0
    while off < size:
        chunk = os.pread(fd, min(1 << 20, size - off), off)
        if not chunk:
            raise ValueError("shorter than it was")
        off += len(chunk)
        yield chunk


def _sha256_fd(fd: int, size: int) -> str:
    h = hashlib.sha256()
    for chunk in _read_all(fd, size):
        h.update(chunk)
    return h.hexdigest()


@dataclass(frozen=True)
class Entry:
    key: str
    size: int            # bytes on disk (the module and its manifest)
    last_used: float     # the entry directory's mtime (touched on each use)
    protocol: str | None
    ok: bool             # passes the checks a load makes


@dataclass
class Info:
    root: str
    exists: bool
    entries: list[Entry] = field(default_factory=list)
    max_bytes: int = 0
    max_entries: int = 0

    @property
    def size(self) -> int:
        return sum(e.size for e in self.entries)

    def to_dict(self) -> dict:
        return {"root": self.root, "exists": self.exists, "entries": len(self.entries),
                "bytes": self.size, "max_bytes": self.max_bytes,
                "max_entries": self.max_entries,
                "items": [{"key": e.key, "bytes": e.size, "protocol": e.protocol, "ok": e.ok,
                           "last_used": datetime.datetime.fromtimestamp(
                               e.last_used, datetime.timezone.utc).isoformat(
                                   timespec="seconds")}
                          for e in self.entries]}


class Cache:
    """The checked cache directory (created 0700 if missing)."""

    def __init__(self, root: Path | None = None, create: bool = True) -> None:
        self.root = root or base_dir()
        self.max_bytes, self.max_entries = limits()
        try:
            if create:
                os.makedirs(self.root.parent, mode=0o700, exist_ok=True)
                with contextlib.suppress(FileExistsError):
                    os.mkdir(self.root, 0o700)
            _check_ancestors(self.root)
            if create or os.path.lexists(self.root):
                _check_root(self.root)
        except OSError as exc:
            raise _refuse(self.root, exc.strerror or str(exc)) from None

    # -- entries ---------------------------------------------------------

    def _manifest(self, key: str) -> dict:
        d = self.root / key
        st = os.lstat(d)
        if not stat.S_ISDIR(st.st_mode):
            raise ValueError("not a directory")
        if st.st_uid != os.geteuid() or st.st_mode & 0o022:
            raise ValueError("not ours, or writable by others")
        fd, fst = _open_regular(d / MANIFEST, MANIFEST_MAX)
        try:
            man = json.loads(b"".join(_read_all(fd, fst.st_size)).decode("utf-8"))
        finally:
            os.close(fd)
        if not (isinstance(man, dict) and man.get("key") == key
                and isinstance(man.get("file"), str) and FILE_RE.fullmatch(man["file"])
                and isinstance(man.get("size"), int) and isinstance(man.get("sha256"), str)):
            raise ValueError("a malformed manifest")
        return man

    def lookup(self, key: str) -> int | None:
        """An fd on KEY's module, checked (owner, mode, type, size, hash); None
        if there is no such entry, or it fails a check (never loaded then)."""
        try:
            man = self._manifest(key)
            fd, fst = _open_regular(self.root / key / man["file"])
        except (OSError, ValueError, UnicodeDecodeError):
            return None
        try:
            if fst.st_size != man["size"] or _sha256_fd(fd, fst.st_size) != man["sha256"]:
                raise ValueError("its content is not what was built")
        except (OSError, ValueError):
            os.close(fd)
            return None
        with contextlib.suppress(OSError):   # least recently used goes first
            os.utime(self.root / key, follow_symlinks=False)
        return fd

    def discard(self, key: str) -> None:
        """Remove KEY's entry, whatever is there (call with KEY's lock held)."""
        p = self.root / key
        if os.path.lexists(p):
            trash = self.root / f".trash-{os.getpid()}-{key}"
            _remove_tree(trash)
            try:
                os.rename(p, trash)
            except OSError:
                trash = p
            _remove_tree(trash)

    def store(self, key: str, module: Path, protocol: str) -> None:
        """Put the built ``module`` (a file under a build_dir()) in as KEY's entry,
        with its manifest, in one rename (call with KEY's lock held)."""
        stage = Path(tempfile.mkdtemp(prefix=f".new-{os.getpid()}-", dir=self.root))
        try:
            name = module.name
            if not FILE_RE.fullmatch(name):
                raise ValueError(f"unexpected module name {name!r}")
            os.replace(module, stage / name)
            os.chmod(stage / name, 0o600)
            data = (stage / name).read_bytes()
            man = {"key": key, "file": name, "size": len(data),
                   "sha256": hashlib.sha256(data).hexdigest(), "protocol": protocol}
            with open(os.open(stage / MANIFEST, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600),
                      "w", encoding="utf-8") as f:
                json.dump(man, f)
                f.flush()
                os.fsync(f.fileno())
            self.discard(key)
            os.rename(stage, self.root / key)
        finally:
            _remove_tree(stage)

    @contextlib.contextmanager
    def build_dir(self) -> Iterator[Path]:
        """A fresh directory to build in, removed afterwards (and by a later
        run if this process dies first)."""
        self.clean_stale()
        tmp = Path(tempfile.mkdtemp(prefix=f"build-{os.getpid()}-", dir=self.root))
        try:
            yield tmp
        finally:
            _remove_tree(tmp)

    @contextlib.contextmanager
    def lock(self, key: str, blocking: bool = True) -> Iterator[bool]:
        """KEY's build lock (flock); yields False if not ``blocking`` and busy."""
        path = self.root / f".{key}.lock"
        while True:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK
                         | os.O_CLOEXEC, 0o600)
            try:
                st = os.fstat(fd)
                if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid():
                    raise _refuse(self.root, f"{path.name} is not a lock file of ours")
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
                except BlockingIOError:
                    yield False
                    return
                try:
                    same = os.lstat(path).st_ino == st.st_ino
                except FileNotFoundError:
                    same = False
                if same:        # not removed by an eviction while we waited
                    yield True
                    return
            finally:
                os.close(fd)

    # -- housekeeping ----------------------------------------------------

    def clean_stale(self) -> None:
        """Remove the temporary directories of processes that died."""
        with contextlib.suppress(OSError):
            for name in os.listdir(self.root):
                m = TEMP_RE.fullmatch(name)
                if m and not _pid_alive(int(m.group(2))):
                    _remove_tree(self.root / name)

    def entries(self) -> list[Entry]:
        out = []
        try:
            names = os.listdir(self.root)
        except FileNotFoundError:
            return out
        for name in sorted(names):
            if not KEY_RE.fullmatch(name):
                continue
            p = self.root / name
            try:
                st = os.lstat(p)
                size, protocol, ok = 0, None, False
                if stat.S_ISDIR(st.st_mode):
                    for f in os.scandir(p):
                        size += f.stat(follow_symlinks=False).st_size
                    try:
                        man = self._manifest(name)
                        protocol = man.get("protocol") if isinstance(
                            man.get("protocol"), str) else None
                        fd = self.lookup_quiet(name)
                        ok = fd is not None
                        if fd is not None:
                            os.close(fd)
                    except (OSError, ValueError, UnicodeDecodeError):
                        pass
                out.append(Entry(name, size, st.st_mtime, protocol, ok))
            except OSError:
                continue
        return out

    def lookup_quiet(self, key: str) -> int | None:
        """lookup() without marking the entry used."""
        p = self.root / key
        try:
            st = os.lstat(p)
        except OSError:
            return None
        fd = self.lookup(key)
        with contextlib.suppress(OSError):
            os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)
        return fd

    def _remove_entry(self, key: str) -> bool:
        with self.lock(key, blocking=False) as got:
            if not got:
                return False
            self.discard(key)
            with contextlib.suppress(OSError):
                os.unlink(self.root / f".{key}.lock")
            return True

    def evict(self, keep: str | None = None) -> list[str]:
        """Remove the least recently used entries beyond the cap (an entry
        being built or removed elsewhere is skipped); the keys removed."""
        entries = sorted(self.entries(), key=lambda e: e.last_used)
        total, count = sum(e.size for e in entries), len(entries)
        removed = []
        for e in entries:
            if total <= self.max_bytes and count <= self.max_entries:
                break
            if e.key == keep:
                continue
            if self._remove_entry(e.key):
                removed.append(e.key)
                total -= e.size
                count -= 1
        return removed

    def clear(self) -> tuple[int, int, int]:
        """Remove every entry not in use by a build: (removed, busy, bytes)."""
        self.clean_stale()
        removed = busy = freed = 0
        for e in self.entries():
            if self._remove_entry(e.key):
                removed += 1
                freed += e.size
            else:
                busy += 1
        return removed, busy, freed


def info() -> Info:
    """What the cache holds (it is not created if missing)."""
    root = base_dir()
    max_bytes, max_entries = limits()
    if not os.path.lexists(root):
        return Info(str(root), False, [], max_bytes, max_entries)
    c = Cache(root, create=False)
    return Info(str(root), True, c.entries(), max_bytes, max_entries)


def clear() -> tuple[str, int, int, int]:
    """Empty the cache: (root, removed, busy, bytes freed)."""
    root = base_dir()
    if not os.path.lexists(root):
        return str(root), 0, 0, 0
    return (str(root), *Cache(root, create=False).clear())
