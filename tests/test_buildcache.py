"""The compile cache trusts nothing: a tampered entry is rebuilt, never
loaded and never crashes the process; the key is what changes the binary
and nothing else; the cache has a cap; a kill during compilation leaves no
compiler running and no build directory; an install problem exits 69."""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from kmallocwd import buildcache
from kmallocwd.cli import main
from kmallocwd.errors import EXIT_UNAVAILABLE, InstallError

from conftest import ROOT

NOBODY = 65534
MINE = (ROOT / "kmallocwd" / "protocols" / "seqcount.toml").read_text().replace(
    'name = "seqcount"', 'name = "my-cached"', 1)


def _env(cache: Path, **extra: str) -> dict:
    env = {k: v for k, v in os.environ.items()
           if k not in ("KMALLOCWD_CACHE", "XDG_CACHE_HOME") + tuple(buildcache_env())}
    env.update(PYTHONPATH=str(ROOT), KMALLOCWD_CACHE=str(cache), **extra)
    return env


def buildcache_env() -> tuple[str, ...]:
    from kmallocwd.protocols.usermod import BUILD_ENV
    return BUILD_ENV + ("KMALLOCWD_CACHE_MAX_MB", "KMALLOCWD_CACHE_MAX_ENTRIES")


def stress(cache: Path, proto: Path, timeout: float = 300, **extra: str):
    return subprocess.run([sys.executable, "-m", "kmallocwd", "stress", "-q", "--protocol-file",
                           str(proto), "-n", "2000", "--json", "-"], cwd=proto.parent,
                          env=_env(cache, **extra), capture_output=True, text=True,
                          timeout=timeout)


def entries(cache: Path) -> list[Path]:
    return sorted(p for p in cache.iterdir() if buildcache.KEY_RE.fullmatch(p.name))


def module(entry: Path) -> Path:
    (so,) = entry.glob("*.so")
    return so


def assert_ran(r) -> None:
    assert r.returncode in (0, 3), r.stderr
    assert json.loads(r.stdout)["protocol"] == "my-cached"


def assert_sound(entry: Path) -> None:
    """The entry passes every check a load makes (what a rebuild leaves)."""
    so = module(entry)
    st = so.lstat()
    assert stat.S_ISREG(st.st_mode) and st.st_uid == os.geteuid() and not st.st_mode & 0o022
    man = json.loads((entry / "manifest.json").read_text())
    import hashlib
    assert man["sha256"] == hashlib.sha256(so.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def seed(tmp_path_factory):
    """A cache holding the user's file's module (compiled once for this module)."""
    d = tmp_path_factory.mktemp("seed")
    proto = d / "mine.toml"
    proto.write_text(MINE)
    cache = d / "cache"
    assert_ran(stress(cache, proto))
    assert len(entries(cache)) == 1
    return cache, proto


@pytest.fixture
def warm(seed, tmp_path):
    cache, proto = seed
    mine = tmp_path / "cache"
    shutil.copytree(cache, mine, symlinks=True)
    p = tmp_path / "mine.toml"
    p.write_text(MINE)
    (entry,) = entries(mine)
    return mine, p, entry


@pytest.mark.slow
def test_a_warm_cache_is_used_as_is(warm):
    cache, proto, entry = warm
    so = module(entry)
    before = (so.stat().st_ino, so.stat().st_mtime_ns)
    assert_ran(stress(cache, proto))
    assert (so.stat().st_ino, so.stat().st_mtime_ns) == before


@pytest.mark.slow
def test_the_same_file_from_another_path_hits(warm, tmp_path):
    cache, proto, entry = warm
    other = tmp_path / "elsewhere" / "copy-of-mine.toml"
    other.parent.mkdir()
    other.write_text(MINE)
    ino = module(entry).stat().st_ino
    assert_ran(stress(cache, other))
    assert entries(cache) == [entry] and module(entry).stat().st_ino == ino


def _rebuilt(cache: Path, proto: Path, entry: Path, old_ino: int) -> None:
    r = stress(cache, proto)
    assert_ran(r)
    assert entries(cache) == [entry]
    assert module(entry).stat().st_ino != old_ino   # a new module, not the one tampered with
    assert_sound(entry)


@pytest.mark.slow
def test_a_world_writable_entry_is_rebuilt(warm):
    cache, proto, entry = warm
    so = module(entry)
    os.chmod(so, 0o666)
    _rebuilt(cache, proto, entry, so.stat().st_ino)


@pytest.mark.slow
def test_an_entry_owned_by_another_user_is_rebuilt(warm):
    if os.geteuid() != 0:
        pytest.skip("chown needs root")
    cache, proto, entry = warm
    so = module(entry)
    os.chown(so, NOBODY, NOBODY)
    _rebuilt(cache, proto, entry, so.stat().st_ino)


@pytest.mark.slow
def test_a_truncated_module_is_rebuilt_not_loaded(warm):
    cache, proto, entry = warm
    so = module(entry)
    ino = so.stat().st_ino
    with open(so, "r+b") as f:       # same inode, half its size: SIGBUS if it were loaded
        f.truncate(so.stat().st_size // 2)
    _rebuilt(cache, proto, entry, ino)


@pytest.mark.slow
def test_a_module_with_other_content_is_rebuilt(warm):
    cache, proto, entry = warm
    so = module(entry)
    ino = so.stat().st_ino
    data = bytearray(so.read_bytes())
    data[len(data) // 2] ^= 0xFF     # same size, one byte changed
    so.write_bytes(bytes(data))
    _rebuilt(cache, proto, entry, ino)


@pytest.mark.slow
def test_a_fifo_in_place_of_the_module_is_never_opened(warm):
    cache, proto, entry = warm
    so = module(entry)
    ino = so.stat().st_ino
    so.unlink()
    os.mkfifo(so, 0o600)
    _rebuilt(cache, proto, entry, ino)   # (a blocking open would hang: the run's timeout)


@pytest.mark.slow
def test_a_symlinked_entry_is_not_followed(warm, tmp_path):
    cache, proto, entry = warm
    elsewhere = tmp_path / "planted"
    shutil.move(entry, elsewhere)
    os.symlink(elsewhere, entry)
    planted = {p.name: p.stat().st_mtime_ns for p in elsewhere.iterdir()}
    r = stress(cache, proto)
    assert_ran(r)
    assert not entry.is_symlink() and entry.is_dir()
    assert_sound(entry)
    assert {p.name: p.stat().st_mtime_ns for p in elsewhere.iterdir()} == planted


@pytest.mark.slow
def test_a_manifest_that_names_another_file_is_refused(warm):
    cache, proto, entry = warm
    man = json.loads((entry / "manifest.json").read_text())
    man["file"] = "../../evil.so"
    (entry / "manifest.json").write_text(json.dumps(man))
    _rebuilt(cache, proto, entry, module(entry).stat().st_ino)


@pytest.mark.slow
def test_cflags_give_another_key(warm):
    cache, proto, entry = warm
    assert_ran(stress(cache, proto, CFLAGS="-DKMW_UNUSED_FLAG=1"))
    assert len(entries(cache)) == 2 and entry in entries(cache)
    # and the clean run still uses the clean entry
    ino = module(entry).stat().st_ino
    assert_ran(stress(cache, proto))
    assert len(entries(cache)) == 2 and module(entry).stat().st_ino == ino


@pytest.mark.slow
def test_two_processes_building_one_key_share_one_entry(seed, tmp_path):
    _, _ = seed
    cache = tmp_path / "cache"
    proto = tmp_path / "mine.toml"
    proto.write_text(MINE)
    cmd = [sys.executable, "-m", "kmallocwd", "stress", "-q", "--protocol-file", str(proto),
           "-n", "2000", "--json", "-"]
    procs = [subprocess.Popen(cmd, env=_env(cache), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode in (0, 3), err
        assert json.loads(out)["protocol"] == "my-cached"
    (entry,) = entries(cache)
    assert_sound(entry)
    assert not [p for p in os.listdir(cache) if buildcache.TEMP_RE.fullmatch(p)]


# ---------------------------------------------------------------- eviction (no compiler)

def _fake_entry(root: Path, key: str, size: int, used: float) -> None:
    import hashlib
    d = root / key
    d.mkdir(mode=0o700)
    name = f"_kmw_user_{key}.so"
    data = os.urandom(size)
    (d / name).write_bytes(data)
    os.chmod(d / name, 0o600)
    (d / "manifest.json").write_text(json.dumps({
        "key": key, "file": name, "size": size, "sha256": hashlib.sha256(data).hexdigest(),
        "protocol": "fake"}))
    os.chmod(d / "manifest.json", 0o600)
    os.utime(d, (used, used))


def test_the_least_recently_used_entries_are_evicted(tmp_path, monkeypatch):
    root = tmp_path / "cache"
    monkeypatch.setenv("KMALLOCWD_CACHE", str(root))
    monkeypatch.setenv("KMALLOCWD_CACHE_MAX_MB", "1")
    monkeypatch.delenv("KMALLOCWD_CACHE_MAX_ENTRIES", raising=False)
    c = buildcache.Cache()
    now = time.time()
    keys = [f"{i:032x}" for i in range(5)]
    for i, k in enumerate(keys):          # 5 x 400 KB; keys[0] least recently used
        _fake_entry(root, k, 400 * 1024, now - 1000 + i)
    fd = c.lookup(keys[0])                # a use makes keys[0] the most recent
    assert fd is not None
    os.close(fd)
    removed = c.evict(keep=keys[4])
    left = sorted(e.key for e in c.entries())
    assert sorted(removed) == sorted(keys[1:4]) and left == sorted([keys[0], keys[4]])
    # a cap on the number of entries
    monkeypatch.setenv("KMALLOCWD_CACHE_MAX_ENTRIES", "1")
    assert buildcache.Cache().evict(keep=keys[4]) == [keys[0]]


def test_an_entry_being_built_is_not_evicted(tmp_path, monkeypatch):
    root = tmp_path / "cache"
    monkeypatch.setenv("KMALLOCWD_CACHE", str(root))
    monkeypatch.setenv("KMALLOCWD_CACHE_MAX_ENTRIES", "0")
    c = buildcache.Cache()
    _fake_entry(root, "a" * 32, 10, time.time())
    with c.lock("a" * 32):
        assert c.evict() == []
    assert c.evict() == ["a" * 32]


@pytest.mark.parametrize("var,value", [("KMALLOCWD_CACHE_MAX_MB", "-1"),
                                       ("KMALLOCWD_CACHE_MAX_ENTRIES", "lots")])
def test_a_bad_cap_is_one_line(monkeypatch, capsys, tmp_path, var, value):
    monkeypatch.setenv("KMALLOCWD_CACHE", str(tmp_path / "c"))
    monkeypatch.setenv(var, value)
    assert main(["cache"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and var in err and "accepted" in err


# ---------------------------------------------------------------- where the cache is

def _no_cache_env(monkeypatch, tmp_path):
    for v in ("KMALLOCWD_CACHE", "XDG_CACHE_HOME", "HOME"):
        monkeypatch.delenv(v, raising=False)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))


@pytest.mark.parametrize("home", [None, "", "relative/home", "/no/such/home"])
def test_a_missing_or_odd_home_falls_back_to_a_private_temp_dir(monkeypatch, tmp_path, home):
    _no_cache_env(monkeypatch, tmp_path)
    if home is not None:
        monkeypatch.setenv("HOME", home)
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/cache")   # ignored, as the XDG spec says
    want = tmp_path / f"kmallocwd-cache-{os.geteuid()}"
    assert buildcache.base_dir() == want
    c = buildcache.Cache()
    st = os.lstat(want)
    assert c.root == want and stat.S_IMODE(st.st_mode) == 0o700 and st.st_uid == os.geteuid()


def test_an_absolute_xdg_cache_home_is_used(monkeypatch, tmp_path):
    _no_cache_env(monkeypatch, tmp_path)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("HOME", str(tmp_path))
    assert buildcache.base_dir() == tmp_path / "xdg" / "kmallocwd"


def test_a_fallback_dir_planted_by_another_user_is_refused(monkeypatch, tmp_path, capsys):
    if os.geteuid() != 0:
        pytest.skip("chown needs root")
    _no_cache_env(monkeypatch, tmp_path)
    planted = tmp_path / f"kmallocwd-cache-{os.geteuid()}"
    planted.mkdir(mode=0o777)
    os.chown(planted, NOBODY, NOBODY)
    with pytest.raises(InstallError, match="belongs to uid 65534"):
        buildcache.Cache()
    assert main(["cache"]) == EXIT_UNAVAILABLE
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "KMALLOCWD_CACHE" in err


def test_a_symlinked_cache_root_is_refused(monkeypatch, tmp_path):
    real = tmp_path / "real"
    real.mkdir(mode=0o700)
    os.symlink(real, tmp_path / "link")
    monkeypatch.setenv("KMALLOCWD_CACHE", str(tmp_path / "link"))
    with pytest.raises(InstallError, match="symlink"):
        buildcache.Cache()


def test_a_cache_under_a_directory_others_can_write_is_refused(monkeypatch, tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o777)            # world-writable, not sticky: a rename away
    monkeypatch.setenv("KMALLOCWD_CACHE", str(shared / "cache"))
    with pytest.raises(InstallError, match="writable by others"):
        buildcache.Cache()


def test_a_relative_kmallocwd_cache_is_one_line(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("KMALLOCWD_CACHE", "rel/cache")
    assert main(["cache"]) == 2
    assert "KMALLOCWD_CACHE=rel/cache: not an absolute path" in capsys.readouterr().err


# ---------------------------------------------------------------- kmallocwd cache

@pytest.mark.slow
def test_cache_info_and_clear(warm, monkeypatch, capsys):
    cache, proto, entry = warm
    monkeypatch.setenv("KMALLOCWD_CACHE", str(cache))
    assert main(["cache", "--info", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["root"] == str(cache) and info["entries"] == 1
    assert info["items"][0]["key"] == entry.name and info["items"][0]["ok"] is True
    assert info["bytes"] == sum(p.stat().st_size for p in entry.iterdir())
    assert main(["cache"]) == 0
    out = capsys.readouterr().out
    assert str(cache) in out and "entries: 1" in out and "my-cached" in out
    assert main(["cache", "--clear"]) == 0
    assert "removed 1 entry" in capsys.readouterr().out
    assert entries(cache) == []
    assert main(["cache", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["entries"] == 0


# ---------------------------------------------------------------- install problems, kills

def test_no_compiler_is_exit_69_saying_how_to_fix_it(tmp_path):
    proto = tmp_path / "mine.toml"
    proto.write_text(MINE)
    r = stress(tmp_path / "cache", proto, CC="/nonexistent/cc")
    assert r.returncode == EXIT_UNAVAILABLE and not r.stdout
    assert len(r.stderr.strip().splitlines()) == 1
    assert "no C compiler" in r.stderr and "set CC" in r.stderr


def test_missing_c_sources_are_exit_69(tmp_path, monkeypatch, capsys):
    from kmallocwd.protocols import usermod
    monkeypatch.setattr(usermod, "CSRC_DIRS", (tmp_path / "none",))
    monkeypatch.setenv("KMALLOCWD_CACHE", str(tmp_path / "cache"))
    proto = tmp_path / "mine.toml"
    proto.write_text(MINE)
    assert main(["stress", "-q", "--protocol-file", str(proto), "-n", "100"]) == 69
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "C sources are missing" in err
    assert "pip install" in err


def test_missing_python_headers_are_exit_69(tmp_path, monkeypatch, capsys):
    from kmallocwd.protocols import usermod
    real = usermod.sysconfig.get_paths
    monkeypatch.setattr(usermod.sysconfig, "get_paths",
                        lambda *a, **k: {**real(*a, **k), "include": str(tmp_path / "none")})
    monkeypatch.setenv("KMALLOCWD_CACHE", str(tmp_path / "cache"))
    proto = tmp_path / "mine.toml"
    proto.write_text(MINE.replace("my-cached", "my-headerless"))   # a build is needed
    assert main(["stress", "-q", "--protocol-file", str(proto), "-n", "100"]) == 69
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Python.h" in err and "python3-dev" in err


SLOW_CC = """#!/bin/sh
case "$*" in *--version*) exec gcc "$@";; esac
echo $$ > "{mark}"
exec sleep 600
"""


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.timeout(300)
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGKILL])
@pytest.mark.slow
def test_a_kill_during_compilation_leaves_no_compiler_and_no_build_dir(tmp_path, sig):
    if shutil.which("gcc") is None:
        pytest.skip("needs gcc")
    mark = tmp_path / "cc.pid"
    cc = tmp_path / "slow-cc"
    cc.write_text(SLOW_CC.format(mark=mark))
    cc.chmod(0o755)
    proto = tmp_path / "mine.toml"
    proto.write_text(MINE)
    cache = tmp_path / "cache"
    p = subprocess.Popen([sys.executable, "-m", "kmallocwd", "stress", "-q", "--protocol-file",
                          str(proto), "-n", "100"], env=_env(cache, CC=str(cc)),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while not (mark.exists() and mark.read_text().strip()) and time.monotonic() < deadline:
        assert p.poll() is None, p.communicate()
        time.sleep(0.05)
    compiler = int(mark.read_text())
    assert _alive(compiler)
    assert [n for n in os.listdir(cache) if n.startswith("build-")]
    p.send_signal(sig)
    _, err = p.communicate(timeout=120)
    assert p.returncode == {signal.SIGTERM: 143, signal.SIGINT: 130,
                            signal.SIGKILL: -signal.SIGKILL}[sig], err
    # after SIGKILL the compiler's own process group cleans up: wait for it
    while (_alive(compiler) or [n for n in os.listdir(cache) if n.startswith("build-")]) \
            and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(compiler)
    assert not [n for n in os.listdir(cache) if buildcache.TEMP_RE.fullmatch(n)]
    assert entries(cache) == []


def _tree(root: Path) -> dict[str, tuple[int, int]]:
    """Every file of the checkout (but the venv, git's and the caches'
    folders) with its size and modification time."""
    skip = {".venv", ".git", "__pycache__", ".pytest_cache", ".hypothesis", ".benchmarks"}
    out = {}
    for d, dirs, files in os.walk(root):
        dirs[:] = [x for x in dirs if x not in skip]
        for f in files:
            st = os.lstat(os.path.join(d, f))
            out[os.path.join(d, f)] = (st.st_size, st.st_mtime_ns)
    return out


def test_compiling_a_users_file_writes_nothing_into_the_checkout(tmp_path):
    """The compile takes its declarations from a module with no side effect:
    nothing under the checkout (build/gen/ included) is written or touched."""
    proto = tmp_path / "mine.toml"
    proto.write_text(MINE.replace("my-cached", "my-untouched"))
    before = _tree(ROOT)
    r = stress(tmp_path / "cache", proto)
    assert r.returncode in (0, 3), r.stderr
    assert entries(tmp_path / "cache")  # it did compile, into the cache
    after = _tree(ROOT)
    changed = sorted(p for p in set(before) | set(after) if before.get(p) != after.get(p))
    assert changed == []
