"""A protocol file is data, never code: hostile files through the loader and
the C generator.

Free text reaches the C by five routes: an operation's `# comment`,
`stands_for`, `[writer] name`, `[reader] name` and the file's own path.
For each route and each hostile string, the loader refuses the file in one
line (exit 2), or accepts it and its C, with comments stripped by the
preprocessor, equals the C of the same file with every free-text field
blanked: the text changed nothing but comments.  The generator is also fed
the hostile strings directly (a Spec built by hand skips the loader)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kmallocwd import protocols
from kmallocwd.cli import main
from kmallocwd.protocols import cgen, spec
from kmallocwd.protocols.spec import Expr, SpecError, load_text

from conftest import ROOT

GCC = shutil.which("gcc")
needs_gcc = pytest.mark.skipif(GCC is None, reason="needs gcc")
CSRC = ROOT / "csrc"
BASE = protocols.get("seqcount")

# A reader op and a writer op that carry a comment in seqcount.toml.
R_OP = "smp_rmb()        # pairs with the writer's second smp_wmb()"
W_NAME = 'name = "W-seq"'
R_NAME = 'name = "R-seqcount"'
STANDS = 'stands_for = "the kernel\'s seqcount_t: raw_write_seqcount_begin/end, ' \
    'read_seqcount_begin/retry"'

PWN = ('W */ extern int system(const char *); __attribute__((constructor)) static void '
       'p(void) { system("touch PWNED"); } /*')

HOSTILE = [
    PWN,
    "*/", "/*", "/*/", "*//*", "**/", "x */ int evil; /* y",
    "a\nint evil;", "line\r\nint evil;", "a\rb",
    "\x1b[31mred\x1b[0m", "\x07bell", "a\x00b", "\x7f",
    "trailing backslash \\", "\\", "*\\", "// a line comment \\",
    "*\\\n/ int evil;", "\\\nint evil;",
    "??/", "trigraph ??/\nint evil;", "??= define X", "??' ??( ??) ??! ??< ??> ??-",
    "#define seqcount_read evil", "\n#include </etc/passwd>\n", "# pragma once",
    "x" * 201, "y" * 5000,
    "\u2028int evil;", "\u2029", "\u0085", "\u202e gnp.exe", "\ufeff", "\u00a0nbsp",
    "tab\there",
    '" quote \' and more "',
]


def toml_str(s: str) -> str:
    """``s`` as a TOML basic string (JSON's escapes are TOML's, for the BMP)."""
    return json.dumps(s)


def routes(h: str) -> dict[str, str]:
    """The seqcount file with ``h`` put in each free-text route."""
    src = BASE.source
    for needle in (R_OP, W_NAME, R_NAME, STANDS):
        assert needle in src
    return {
        "comment": src.replace(json.dumps(R_OP), toml_str("smp_rmb()   # " + h)),
        "writer.name": src.replace(W_NAME, "name = " + toml_str(h)),
        "reader.name": src.replace(R_NAME, "name = " + toml_str(h)),
        "stands_for": src.replace(STANDS, "stands_for = " + toml_str(h)),
    }


# The rules docs/protocols.md states, written out here.
WHO = re.compile(r"[A-Za-z][A-Za-z0-9_.+-]{0,39}")
MAX_TEXT = 200


def should_pass(route: str, h: str) -> bool:
    if route.endswith(".name"):
        return bool(WHO.fullmatch(h))
    body = ("smp_rmb()   # " + h) if route == "comment" else h
    return body.isprintable() and len(body) <= MAX_TEXT


def strip_comments(c_text: str) -> list[str]:
    """The C without its comments (the preprocessor's own reading, no macro
    expanded, no header read), as its non-empty lines."""
    r = subprocess.run([GCC, "-fpreprocessed", "-dD", "-E", "-P", "-x", "c", "-"],
                       input=c_text.encode(), capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr.decode(errors="replace")
    out = r.stdout.decode()
    return [ln.rstrip() for ln in out.splitlines() if ln.strip()]


def blanked(s: spec.Spec) -> spec.Spec:
    """``s`` with every free-text field empty."""
    def ops(lst):
        return tuple(replace(op, comment="") for op in lst)
    return replace(s, stands_for="", note="", writer_name="", reader_name="",
                   section=ops(s.section), prologue=ops(s.prologue), snapshot=ops(s.snapshot))


def assert_text_only_in_comments(s: spec.Spec) -> None:
    c = cgen.one_protocol_c(s)
    assert strip_comments(c) == strip_comments(cgen.one_protocol_c(blanked(s)))
    for line in c.splitlines():  # every line of the C is printable: no line ends early
        assert line.replace("\t", " ").isprintable(), repr(line)


def compiles(c_text: str) -> subprocess.CompletedProcess:
    return subprocess.run([GCC, "-fsyntax-only", "-std=gnu11", "-Wall", "-Wno-unused-function",
                           f"-I{CSRC}", "-x", "c", "-"], input=c_text, text=True,
                          capture_output=True, timeout=60)


# ---- the corpus, through the loader ----------------------------------------------

CASES = [(route, i) for i in range(len(HOSTILE)) for route in ("comment", "writer.name",
                                                                 "reader.name", "stands_for")]


@needs_gcc
@pytest.mark.parametrize("route,i", CASES, ids=[f"{r}-{i}" for r, i in CASES])
def test_hostile_text_is_refused_in_one_line_or_stays_in_a_comment(route, i):
    h = HOSTILE[i]
    text = routes(h)[route]
    try:
        s = load_text(text, "hostile.toml")
    except SpecError as exc:
        msg = str(exc)
        assert not should_pass(route, h), f"refused: {msg}"
        assert "\n" not in msg and msg.isprintable(), repr(msg)
        key = {"comment": "reader.snapshot[2]"}.get(route, route)
        assert msg.startswith("hostile.toml:") and f": {key}: " in msg, msg
        return
    assert should_pass(route, h), f"accepted {h!r} in {route}"
    assert_text_only_in_comments(s)


def test_the_repro_is_refused_at_load():
    text = routes(PWN)["writer.name"]
    with pytest.raises(SpecError, match=r"^w\.toml:8: writer\.name: .*accepted: a letter"):
        load_text(text, "w.toml")


@pytest.mark.parametrize("old,new", [
    ('name = "seqcount"', 'name = "seqcount\\n"'),       # a trailing newline in a name
    ('name = "W-seq"', 'name = "W-seq\\n"'),
    ('name = "R-seqcount"', 'name = "R-seqcount\\n"'),
    (STANDS, 'stands_for = "the seqcount\\n"'),
    ('note = "', 'note = "\\u001b]0;title\\u0007'),       # escape sequences anywhere
    ('"if (s1 != s0) retry",', '"if (s1 != s0) retry   # why\\r",'),
    (STANDS, "stands_for = " + json.dumps("z" * 201)),   # too long
    ('note = "', 'note = "' + "n" * 1001),
    ('consistent = { expect = "acceptable", reason = "', 'consistent = { expect = "acceptable", '
     'reason = "\\u2028'),
    ('[outcomes]', '[outcomes]\n"bad\\u0000key" = { expect = "acceptable" }'),
])
def test_names_match_whole_and_no_string_holds_a_control_character(tmp_path, capsys, old, new):
    assert old in BASE.source
    f = tmp_path / "bad.toml"
    f.write_text(BASE.source.replace(old, new, 1))
    code = main(["protocols", "--c", str(f)])
    out, err = capsys.readouterr()
    assert code == 2 and out == "", out
    assert len(err.strip().splitlines()) == 1 and err.strip().isprintable(), err
    assert f"{f}:" in err


# ---- the corpus, straight into the generator --------------------------------------

@needs_gcc
@pytest.mark.parametrize("i", range(len(HOSTILE)))
def test_the_generator_keeps_any_text_inside_its_comment(i):
    """A Spec built by hand (the API takes one) skips the loader: the
    generator alone keeps every free-text field inside its comment."""
    h = HOSTILE[i]
    ops = tuple(replace(op, comment=h) for op in BASE.snapshot)
    s = replace(BASE, stands_for=h, writer_name=h, reader_name=h, snapshot=ops,
                section=tuple(replace(op, comment=h) for op in BASE.section))
    assert_text_only_in_comments(s)
    r = compiles(cgen.one_protocol_c(s))
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("hand_built", [
    lambda b: replace(b, name="x */ int evil; /*"),
    lambda b: replace(b, name="seqcount\n"),
    lambda b: replace(b, snapshot_sequence="s0; evil()"),
    lambda b: replace(b, snapshot=(replace(b.snapshot[0], var="s0 = 1; evil()"),)
                      + b.snapshot[1:]),
    lambda b: replace(b, section=(replace(b.section[0], field="sequence = evil()"),)
                      + b.section[1:]),
    lambda b: replace(b, snapshot=b.snapshot[:-1] + (replace(
        b.snapshot[-1], cond=Expr("int", ("1) evil(); if (1",))),)),
])
def test_the_generator_refuses_code_bearing_parts_outside_the_vocabulary(hand_built):
    with pytest.raises(cgen.UnsafeSpec):
        cgen.one_protocol_c(hand_built(BASE))


def test_no_path_reaches_the_c(tmp_path, capsys):
    """The file's path is the fifth route: it never reaches the C, so the
    same file gives the same C (and the same compiled module) anywhere."""
    d = tmp_path / "x */ int evil; /* y"
    d.mkdir(parents=True)  # the slashes make it three directories
    f = d / "p\\.toml"
    f.write_text(BASE.source.replace('name = "seqcount"', 'name = "my-proto"'))
    assert main(["protocols", "--c", str(f)]) == 0
    out = capsys.readouterr().out
    assert "evil" not in out and str(tmp_path) not in out and "p\\" not in out
    g = tmp_path / "other.toml"
    g.write_text(f.read_text())
    assert main(["protocols", "--c", str(g)]) == 0
    assert capsys.readouterr().out == out
    assert cgen.one_protocol_c(protocols.load_path(g)) in out
    with pytest.raises(cgen.UnsafeSpec):
        cgen.generate([protocols.load_path(g)], origin=str(g))


# ---- properties (Hypothesis) -------------------------------------------------------

HOSTILE_CHARS = st.sampled_from(list("/*\\?#\"' \n\r\t\x00\x1b\x7f\u2028\u2029\u0085\u00a0=(){};"
                                     "aZ9-_.+"))
TEXT = st.text(alphabet=st.one_of(HOSTILE_CHARS, st.characters(max_codepoint=0xFFFF,
                                                                exclude_categories=("Cs",))),
               max_size=80)


@needs_gcc
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(route=st.sampled_from(["comment", "writer.name", "reader.name", "stands_for"]), h=TEXT)
def test_any_text_is_refused_or_only_changes_comments(route, h):
    text = routes(h)[route]
    try:
        s = load_text(text, "prop.toml")
    except SpecError as exc:
        assert "\n" not in str(exc) and str(exc).isprintable()
        assert not should_pass(route, h)
        return
    assert should_pass(route, h)
    assert_text_only_in_comments(s)


# ---- end to end: the repro runs nothing ---------------------------------------------

def test_the_pwned_repro_does_not_run(tmp_path):
    marker = tmp_path / "PWNED"
    f = tmp_path / "pwn.toml"
    f.write_text(routes(PWN.replace("touch PWNED", f"touch {marker}"))["writer.name"])
    r = subprocess.run([sys.executable, "-m", "kmallocwd", "stress", "--protocol-file", str(f),
                        "-n", "1000"], cwd=ROOT, capture_output=True, text=True, timeout=300,
                       env=dict(os.environ, KMALLOCWD_CACHE=str(tmp_path / "cache")))
    assert r.returncode == 2, r.stdout + r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "writer.name" in r.stderr, r.stderr
    assert not marker.exists()
    assert not (tmp_path / "cache").exists()  # refused before anything is compiled


# ---- conditions are bounded ---------------------------------------------------------

@pytest.mark.parametrize("cond,says", [
    ("(" * 300 + "s1" + ")" * 300 + " != s0", "characters long (accepted: at most 200)"),
    ("!" * 2000 + "s1", "characters long (accepted: at most 200)"),
    (" || ".join(["s1 != s0"] * 3000), "characters long (accepted: at most 200)"),
    ("(" * 17 + "s1" + ")" * 17 + " != s0", "nests more than 16 deep"),
    ("!" * 17 + "s1", "nests more than 16 deep"),
    ("||".join(["s1"] * 33), "33 operands in one condition (accepted: at most 32)"),
])
def test_a_condition_is_bounded_in_one_line(tmp_path, capsys, cond, says):
    old = '"if (s1 != s0) retry",'
    assert old in BASE.source
    f = tmp_path / "deep.toml"
    f.write_text(BASE.source.replace(old, json.dumps(f"if ({cond}) retry") + ","))
    code = main(["check", "--protocol-file", str(f), "--no-trace"])
    out, err = capsys.readouterr()
    assert code == 2 and out == "", out
    assert len(err.strip().splitlines()) == 1 and says in err, err
    assert f"{f}:" in err and "reader.snapshot[6]" in err


def test_a_condition_within_the_bounds_is_read():
    cond = "(" * 15 + "s1" + ")" * 15 + " != s0 || " + "||".join(["!s1"] * 29) + "||s0"
    s = load_text(BASE.source.replace('"if (s1 != s0) retry"', json.dumps(f"if ({cond}) retry")))
    assert s.snapshot[6].cond.eval({"s1": 2, "s0": 0}) == 1


# ---- what the loader accepts compiles ---------------------------------------------

def test_the_snapshot_sequence_is_a_variable_loaded_from_sequence():
    for sv, says in (("snap.valid", "'snap.valid' is not loaded before the copy"),
                     ("snap.sequence", "'snap.sequence' is not loaded before the copy"),
                     ("s1", "'s1' is not loaded before the copy"),
                     ("v", "'v' is loaded from valid")):
        text = BASE.source.replace('snapshot_sequence = "s0"', f"snapshot_sequence = \"{sv}\"")
        with pytest.raises(SpecError, match=r"^s\.toml:\d+: reader\.snapshot_sequence: "
                           + re.escape(says)):
            load_text(text, "s.toml")


def test_an_accept_in_the_prologue_is_refused():
    text = BASE.source.replace('"if (!v) skip",', '"if (v) accept",', 1)
    with pytest.raises(SpecError, match=r"reader\.prologue: if \(v\) accept: accepts before"):
        load_text(text, "p.toml")


def _object_macros() -> set[str]:
    r = subprocess.run([GCC, "-dM", "-E", "-std=gnu11", f"-I{CSRC}", "-x", "c", "-"],
                       input=cgen.one_protocol_c(BASE), text=True, capture_output=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    names = set()
    for line in r.stdout.splitlines():
        parts = line.split(maxsplit=2)
        if len(parts) >= 2 and "(" not in parts[1] and spec.VAR_RE.fullmatch(parts[1]):
            names.add(parts[1])
    return names


@needs_gcc
def test_a_variable_named_like_a_predefined_macro_is_refused_or_compiles():
    """gcc predefines `linux` and `unix` (as 1) in GNU C: a reader variable
    so named does not compile, so the loader refuses it, and every other
    object-like macro in scope."""
    names = _object_macros()
    assert {"linux", "unix"} <= names
    for name in sorted(names):
        text = BASE.source.replace('"s1 = READ_ONCE(sequence)"', f'"{name} = READ_ONCE(sequence)"')
        text = text.replace('"if (s1 != s0) retry"', f'"if ({name} != s0) retry"')
        try:
            s = load_text(text, "m.toml")
        except SpecError as exc:
            assert "bad variable name" in str(exc)
            continue
        r = compiles(cgen.one_protocol_c(s))
        assert r.returncode == 0, f"{name}: {r.stderr}"


# A protocol file mutated from a built-in by the vocabulary's operations: what
# the loader accepts must compile.  Cheap by default; KMALLOCWD_FUZZ_EXAMPLES
# raises the count (a few thousand found snapshot_sequence = "snap.valid").
FUZZ_EXAMPLES = int(os.environ.get("KMALLOCWD_FUZZ_EXAMPLES", "50"))
_VARS = ["v", "s0", "s1", "x", "snap.valid", "snap.sequence"]
_FIELDS = list(spec.FIELDS)


def _cond() -> st.SearchStrategy[str]:
    leaf = st.sampled_from(_VARS + ["0", "1", "2"])
    return st.recursive(leaf, lambda c: st.one_of(
        c.map(lambda a: "!" + a), st.tuples(st.sampled_from(["odd", "even"]), c).map(
            lambda t: f"{t[0]}({t[1]})"),
        st.tuples(c, st.sampled_from([" == ", " != ", " && ", " || "]), c).map(
            lambda t: f"({t[0]}{t[1]}{t[2]})")), max_leaves=4)


READER_OP = st.one_of(
    st.tuples(st.sampled_from(_VARS[:4]), st.sampled_from(["{}", "READ_ONCE({})",
                                                           "smp_load_acquire({})"]),
              st.sampled_from(_FIELDS)).map(lambda t: f"{t[0]} = {t[1].format(t[2])}"),
    st.tuples(_cond(), st.sampled_from(spec.ACTIONS)).map(lambda t: f"if ({t[0]}) {t[1]}"),
    st.sampled_from(["copy", "copy_once", "snap = *m"]),
    st.sampled_from([f + "()" for f in spec.FENCES]),
    st.tuples(st.sampled_from(spec.LOCK_OPS), st.sampled_from(spec.LOCKS)).map(
        lambda t: f"{t[0]}({t[1]})"))
WRITER_OP = st.one_of(
    st.sampled_from(["sequence++", "WRITE_ONCE(sequence, sequence + 1)",
                     "smp_store_release(sequence, sequence + 1)"]),
    st.sampled_from([f"{m}({f}, {v})" if m else f"{f} = {v}"
                     for f, v in (("start", "NOW"), ("gfp", "GFP"), ("order", "ORDER"),
                                  ("dumped", "0"))
                     for m in ("", "WRITE_ONCE", "smp_store_release")]),
    st.sampled_from([f + "()" for f in spec.FENCES]),
    st.tuples(st.sampled_from(spec.LOCK_OPS), st.sampled_from(spec.LOCKS)).map(
        lambda t: f"{t[0]}({t[1]})"))


@st.composite
def mutated(draw) -> str:
    base = draw(st.sampled_from(protocols.PROTOCOLS))
    lists = {"section": [op.text for op in base.section],
             "prologue": [op.text for op in base.prologue],
             "snapshot": [op.text for op in base.snapshot]}
    for _ in range(draw(st.integers(1, 3))):
        key = draw(st.sampled_from(["section", "prologue", "snapshot", "snapshot"]))
        lst = lists[key]
        op = draw(WRITER_OP if key == "section" else READER_OP)
        how = draw(st.sampled_from(["insert", "replace", "delete"]))
        i = draw(st.integers(0, len(lst)))
        if how == "insert":
            lst.insert(i, op)
        elif lst:
            if how == "replace":
                lst[min(i, len(lst) - 1)] = op
            else:
                del lst[min(i, len(lst) - 1)]
    sv = draw(st.one_of(st.just(base.snapshot_sequence), st.sampled_from(_VARS)))
    out = ["format = 1", f'name = "{base.name}"', "[writer]",
           f'valid = "{base.valid_access}"', f"section = {json.dumps(lists['section'])}",
           "[reader]", f"prologue = {json.dumps(lists['prologue'])}",
           f"snapshot = {json.dumps(lists['snapshot'])}"]
    if sv is not None:
        out.append(f'snapshot_sequence = "{sv}"')
    out += ["[expect]", 'sc = "never"', 'x86 = "never"', 'weak = "never"', "[outcomes]",
            'consistent = { expect = "acceptable", reason = "r" }']
    return "\n".join(out) + "\n"


@needs_gcc
@settings(max_examples=FUZZ_EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(text=mutated())
def test_what_the_loader_accepts_compiles(text):
    try:
        s = load_text(text, "fuzz.toml")
    except SpecError as exc:
        assert "\n" not in str(exc)
        return
    r = compiles(cgen.one_protocol_c(s))
    assert r.returncode == 0, f"{r.stderr}\n{text}"


# ---- check: a reader that never accepts checks nothing -------------------------------

NEVER = {"skip": ('"if (s1 != s0) retry",', '"if (1) skip",'),
         "retry": ('"if (s1 != s0) retry",', '"if (s1 == s1) retry",')}


@pytest.mark.parametrize("how", sorted(NEVER))
def test_check_says_a_reader_that_never_accepts_is_inconclusive(tmp_path, capsys, how):
    old, new = NEVER[how]
    f = tmp_path / "never.toml"
    f.write_text(BASE.source.replace(old, new, 1).replace('name = "seqcount"',
                                                          'name = "never-accepts"'))
    out_json = tmp_path / "check.json"
    code = main(["check", "--protocol-file", str(f), "--no-trace", "--json", str(out_json)])
    out = capsys.readouterr().out
    assert code == 3, out
    assert out.strip().splitlines()[-1].startswith(
        "INCONCLUSIVE: the reader never accepts a snapshot"), out
    doc = json.loads(out_json.read_text())
    assert all(m["accepts"] is False for m in doc["models"].values())
    from kmallocwd import api
    rep = api.check(protocols.load_path(f), model="sc")
    assert rep.exit_status == 3
    with pytest.raises(api.ProtocolFailure, match="never accepts a snapshot"):
        rep.assert_no_forbidden()


def test_check_still_passes_a_reader_that_accepts(capsys):
    code = main(["check", "-p", "seqcount", "--no-trace", "--model", "sc"])
    out = capsys.readouterr().out
    assert code == 0 and out.strip().splitlines()[-1] == "OK: every verdict equals [expect]"
    from kmallocwd.model import explore
    assert explore(BASE, "sc").accepts


def test_no_path_reaches_the_litmus_export(tmp_path):
    from kmallocwd.model import litmus

    d = tmp_path / "a *) exists (0:r0=1) (* b"
    d.mkdir()
    f = d / "p.toml"
    f.write_text(BASE.source)
    text = litmus.render(protocols.load_path(f))
    assert "exists (0:r0=1)" not in text and str(tmp_path) not in text


def test_checks_table_shows_an_unprintable_path_quoted(tmp_path, capsys):
    f = tmp_path / "a\x1b[2Jb.toml"
    f.write_text(BASE.source)
    assert main(["check", "--protocol-file", str(f), "--no-trace", "--model", "sc"]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "a\\x1b[2Jb.toml" in out
