"""Protocols as data: the files are the one table; a user's file is
validated, generated, compiled once (then cached) and stressed like a
built-in; bad files get one line naming the file, the line and the key."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from kmallocwd import protocols
from kmallocwd.cli import main
from kmallocwd.protocols import cgen, spec
from kmallocwd.stress.run import StressConfig, run_stress

from conftest import ROOT

MINE = """\
format = 1
name = "my-seqcount"
stands_for = "seqcount with smp_load_acquire() in place of the first smp_rmb()"

[writer]
section = [
    "sequence++",
    "smp_wmb()        # pairs with the reader's second smp_rmb()",
    "start = NOW",
    "gfp = GFP",
    "order = ORDER",
    "dumped = 0",
    "smp_wmb()        # pairs with the reader's load-acquire",
    "sequence++",
]

[reader]
prologue = ["v = READ_ONCE(valid)", "if (!v) skip"]
snapshot = [
    "s0 = smp_load_acquire(sequence)",
    "if (odd(s0)) retry",
    "copy",
    "smp_rmb()        # pairs with the writer's first smp_wmb()",
    "s1 = READ_ONCE(sequence)",
    "if (s1 != s0) retry",
]
snapshot_sequence = "s0"

[expect]
sc = "never"
x86 = "never"
weak = "never"

[outcomes]
consistent = { expect = "acceptable", reason = "one section" }
torn-mixed = { expect = "forbidden", reason = "the sequence must not change" }
"""


@pytest.fixture
def cache(tmp_path, monkeypatch):
    d = tmp_path / "cache"
    monkeypatch.setenv("KMALLOCWD_CACHE", str(d))
    return d


# The built-ins, in the table's order (the docs, the CLI and the C table list them so).
BUILTINS = ("v2-rwlock", "v3", "v4-parity", "v4", "v5-no-barriers", "v8-in-flight",
            "seqcount", "seqcount-acquire", "c11", "no-wmb", "no-rmb", "none", "slot-rwlock",
            "global-spinlock")


def test_every_builtin_is_one_file_and_the_table_reads_them():
    assert protocols.NAMES == BUILTINS
    for name in BUILTINS:
        # each file loads on its own, names itself as its file does, and says
        # what the model checker must find under every model
        f = ROOT / "kmallocwd" / "protocols" / f"{name}.toml"
        alone = protocols.load_path(f)
        assert alone.name == name
        assert set(alone.expect) == set(protocols.MODELS)
        assert set(alone.expect.values()) <= {"never", "sometimes"}
        assert alone.source == protocols.get(name).source
    for p in protocols.PROTOCOLS:
        assert p.path == f"kmallocwd/protocols/{p.name}.toml"
        for op in p.section + p.prologue + p.snapshot:
            assert op.line > 0  # every operation knows its line


def test_every_barrier_of_a_builtin_says_what_it_pairs_with():
    for p in protocols.PROTOCOLS:
        for op in p.section + p.snapshot:
            if op.kind == "fence" or (op.kind == "lock" and p.name != "none"):
                assert op.comment, f"{p.name}:{op.line} {op.text}"


@pytest.mark.slow
def test_the_docs_table_is_generated_from_the_files(capsys):
    """The stress page's protocol table is `kmallocwd protocols --markdown`,
    put in by the docs build's hook: one row per built-in, in order, read from
    the files."""
    page = (ROOT / "docs" / "stress.md").read_text()
    assert "<!-- generated: protocol-table -->" in page
    hook = importlib.util.spec_from_file_location(  # the hook `make docs` runs
        "generated", ROOT / "docs" / "hooks" / "generated.py")
    generated = importlib.util.module_from_spec(hook)
    hook.loader.exec_module(generated)
    md = generated.on_page_markdown(page, None, None, None)
    assert "<!-- generated: protocol-table -->" not in md
    assert main(["protocols", "--markdown"]) == 0
    table = capsys.readouterr().out
    assert table in md
    rows = [ln for ln in table.splitlines() if ln.startswith("| `")]
    assert [r.split("`")[1] for r in rows] == list(BUILTINS)
    for p in protocols.PROTOCOLS:
        row = next(r for r in rows if r.startswith(f"| `{p.name}` |"))
        assert p.stands_for in row
        assert " / ".join(p.expect[m] for m in protocols.MODELS) in row


def test_generated_c_reads_like_the_kernel():
    c = cgen.one_protocol_c(protocols.get("seqcount"))
    assert "seqcount_start_memalloc_timer(struct memalloc_info *m" in c
    assert "smp_wmb(); /* block is_stalling_task(): pairs with its second smp_rmb() */" in c
    assert "s1 = READ_ONCE(m->sequence);" in c
    # ctags-visible definitions: every entry point is a function at column 0
    for fn in ("seqcount_writer_run", "seqcount_reader_scan", "seqcount_bench_reads"):
        assert f"\n{'static uint64_t ' if 'scan' not in fn else 'static void '}{fn}(" in c


def test_the_build_uses_the_generated_c():
    gen = (ROOT / "build" / "gen" / "kmw_protocols.c").read_text()
    assert gen == cgen.generate(protocols.C_PROTOCOLS)


@pytest.mark.slow
def test_a_users_protocol_file_is_compiled_once_and_stressed(tmp_path, cache):
    f = tmp_path / "my.toml"
    f.write_text(MINE)
    mine = protocols.load_path(f)
    assert mine.name == "my-seqcount" and mine.outcome("rejected-invalid").expect == "acceptable"
    res = run_stress(StressConfig(protocol_file=str(f), duration=0.5, alloc_ns=100))
    assert res.spec.name == "my-seqcount" and res.accepted > 0 and res.torn == 0
    built = list(cache.rglob("*.so"))
    assert len(built) == 1
    assert not list(cache.rglob("build-*"))  # the build directory is removed
    mtime = built[0].stat().st_mtime_ns
    # a second process finds the cache and compiles nothing
    r = subprocess.run([sys.executable, "-m", "kmallocwd", "stress", "-q", "--protocol-file",
                        str(f), "-d", "0.2", "--alloc-ns", "100", "--json", "-"],
                       cwd=ROOT, capture_output=True, text=True,
                       env={"KMALLOCWD_CACHE": str(cache), "PATH": "/usr/bin:/bin"})
    assert r.returncode in (0, 3), r.stderr
    assert '"protocol": "my-seqcount"' in r.stdout
    assert [p.stat().st_mtime_ns for p in cache.rglob("*.so")] == [mtime]


@pytest.mark.slow
def test_a_compile_error_is_one_line(tmp_path, cache, monkeypatch, capsys):
    f = tmp_path / "my.toml"
    f.write_text(MINE.replace("my-seqcount", "my-broken"))
    from kmallocwd.protocols import usermod
    monkeypatch.setattr(usermod, "generate", lambda specs, origin, build: "int this is not C;\n")
    code = main(["stress", "-q", "--protocol-file", str(f), "-d", "0.1"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "does not compile" in err and "error" in err


BAD = [
    ('name = "my-seqcount"', "name: must be a str", "name = 3"),
    ('"sequence++",', "unknown writer operation 'sequence += 2'", '"sequence += 2",'),
    ('"start = NOW",', "start = GFP: GFP goes in gfp", '"start = GFP",'),
    ('"start = NOW",', "unknown writer operation 'flags = NOW'", '"flags = NOW",'),
    ('"copy",', "0 copies", '"smp_mb()",'),
    ('"if (s1 != s0) retry",', "s2 is not loaded before it", '"if (s2 != s0) retry",'),
    ('sc = "never"', "'maybe' (accepted: never, sometimes)", 'sc = "maybe"'),
    ('"if (odd(s0)) retry",', "unknown action 'explode'", '"if (odd(s0)) explode",'),
    ('"s0 = smp_load_acquire(sequence)",', "bad variable name 'int'",
     '"int = smp_load_acquire(sequence)",'),
    ('torn-mixed = {', "unknown outcome", 'torn-blended = {'),
    ("format = 1", "format: 3 (accepted: 1, 2)", "format = 3"),
]


@pytest.mark.parametrize("old,message,new", BAD, ids=[b[1][:30] for b in BAD])
def test_bad_file_is_one_line_naming_file_line_and_key(tmp_path, capsys, old, message, new):
    assert old in MINE
    text = MINE.replace(old, new, 1)
    f = tmp_path / "bad.toml"
    f.write_text(text)
    line = next(i + 1 for i, ln in enumerate(text.splitlines()) if new.strip() in ln)
    code = main(["stress", "-q", "--protocol-file", str(f), "-d", "0.1"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1, err
    assert f"{f}:" in err and message in err, err
    if "copies" not in message:
        assert f"{f}:{line}:" in err, err


def test_a_writer_that_never_touches_the_sequence_is_refused(tmp_path):
    text = MINE.replace('    "sequence++",\n', "", 2)
    with pytest.raises(spec.SpecError, match="increment the sequence"):
        spec.load_text(text, "w.toml")


@pytest.mark.parametrize("path", ["/dev/zero", "/nonexistent.toml"])
def test_unreadable_or_special_files_are_refused(path):
    with pytest.raises(spec.SpecError):
        protocols.load_path(path)


def test_an_unusable_cache_is_one_line(tmp_path, monkeypatch, capsys):
    f = tmp_path / "my.toml"
    # a name of its own: the same file from another path is the same module,
    # which an earlier test may have loaded into this process already
    f.write_text(MINE.replace("my-seqcount", "my-uncached"))
    monkeypatch.setenv("KMALLOCWD_CACHE", "/proc/kmallocwd-no-cache")
    code = main(["stress", "-q", "--protocol-file", str(f), "-d", "0.1"])
    err = capsys.readouterr().err
    assert code == 69 and len(err.strip().splitlines()) == 1 and "KMALLOCWD_CACHE" in err


MORE_BAD = [
    ('snapshot_sequence = "s0"', 'snapshot_sequence = "v"', "loaded from valid"),
    ('"gfp = GFP",', '"gfp = 0",', "only dumped = 0"),
    ('"s0 = smp_load_acquire(sequence)",', '"s0 = smp_load_acquire(sequence)", "if (1) accept",',
     "accepts before the copy"),
    ('torn-mixed = { expect = "forbidden"', 'torn-mixed = { expect = "acceptable"',
     "never acceptable"),
    ('"if (odd(s0)) retry",', '"if (!v) retry",', "retry forever"),
    ('name = "my-seqcount"', 'name = "kmw-thing"', "not starting with kmw"),
    ('"if (s1 != s0) retry",', '"if (s1 != 99999999999) retry",', "does not fit"),
]


@pytest.mark.parametrize("old,new,message", MORE_BAD, ids=[b[2] for b in MORE_BAD])
def test_files_that_would_accuse_or_misbehave_are_refused(old, new, message):
    assert old in MINE
    with pytest.raises(spec.SpecError, match=message):
        spec.load_text(MINE.replace(old, new, 1), "m.toml")


LOCKS = """
[writer]
section = ["LOCK_W", "sequence++", "start = NOW", "gfp = GFP", "order = ORDER", "sequence++",
           "UNLOCK_W"]
[reader]
snapshot = ["LOCK_R", "s0 = sequence", "copy", "UNLOCK_R"]
snapshot_sequence = "s0"
"""


@pytest.mark.parametrize("w,r,message", [
    (("spin_lock(slot)", "spin_unlock(slot)"), ("read_lock(slot)", "read_unlock(slot)"),
     "one lock, one kind"),
    (("spin_lock(global)", "spin_unlock(global)"),
     ("read_lock(slot)\", \"spin_lock(global)", "spin_unlock(global)\", \"read_unlock(slot)"),
     "one lock at a time"),
])
def test_lock_files_that_could_deadlock_are_refused(w, r, message):
    head = MINE.split("[writer]")[0]
    tail = "[expect]" + MINE.split("[expect]")[1]
    body = (LOCKS.replace("UNLOCK_W", w[1]).replace("LOCK_W", w[0])
            .replace("UNLOCK_R", r[1]).replace("LOCK_R", r[0]))
    with pytest.raises(spec.SpecError, match=message):
        spec.load_text(head + body + tail, "l.toml")
