"""Format 2 of the protocol files: any publish protocol over any struct, the
patch's posted revisions as built-ins, and the model checker on them."""

from __future__ import annotations

import json

from pathlib import Path

import pytest

from kmallocwd.cli import main
from kmallocwd.model import MODELS, explore
from kmallocwd.model.events import merge_choices, programs
from kmallocwd.model.explore import classify_fields
from kmallocwd.model.litmus import render
from kmallocwd.protocols import BY_NAME, C_NAMES, PROTOCOLS
from kmallocwd.protocols.spec import (CONSISTENT, TORN_INSIDE, TORN_KINDS, TORN_MIXED,
                                      TORN_SEQ, SpecError, load_path, load_text)

ROOT = Path(__file__).resolve().parent.parent
REVISIONS = ("v4", "v5-no-barriers", "v8-in-flight")


def verdicts(spec, k: int = 2) -> dict[str, bool]:
    return {m: explore(spec, m, k).sometimes for m in MODELS}


# ---- the posted revisions ------------------------------------------------------

@pytest.mark.parametrize("name", REVISIONS)
def test_each_posted_revision_is_a_format_2_builtin_that_cites_its_posting(name):
    spec = BY_NAME[name]
    assert spec.format == 2 and name not in C_NAMES
    assert "[PATCH v" in spec.stands_for and "linux-mm, 20" in spec.stands_for
    assert spec.covered == ("sequence", "start", "order", "gfp")


def test_v4_as_posted_reads_the_sequence_after_the_copy_and_valid_again():
    spec = BY_NAME["v4"]
    texts = [op.text for op in spec.snapshot]
    copy_end = texts.index("snap.gfp = gfp")
    assert texts.index("snap.sequence = sequence") > copy_end
    assert any(op.kind == "load" and op.field == "valid" and op.var == "v1"
               for op in spec.snapshot[copy_end:])
    # plain loads, as posted; the format-1 approximation stays as it is
    assert all(op.access == "plain" for op in spec.prologue + spec.snapshot if op.kind == "load")
    assert BY_NAME["v4-parity"].format == 1


def test_v4_tears_under_sc_when_a_whole_section_runs_during_the_copy():
    res = explore(BY_NAME["v4"], "sc", 2)
    assert res.sometimes
    vi, steps, term = res.witness
    assert term.outcome in TORN_KINDS
    # the second read of the sequence is even again: the writer went +2
    assert term.snapshot["sequence"] % 2 == 0 and term.snapshot["sequence"] >= 2
    # with one section there is no whole section to hide: never
    assert not explore(BY_NAME["v4"], "sc", 1).sometimes


def test_v8_tears_only_after_a_stop_and_a_new_start():
    spec = BY_NAME["v8-in-flight"]
    assert verdicts(spec, 2) == {"sc": True, "x86": True, "weak": True}
    # one section: the smp_wmb()/smp_rmb() pair and the in_flight check hold
    assert verdicts(spec, 1) == {"sc": False, "x86": False, "weak": False}


def test_v5_without_barriers_tears_with_one_section_on_x86_and_weak_only():
    spec = BY_NAME["v5-no-barriers"]
    assert verdicts(spec, 1) == {"sc": False, "x86": True, "weak": True}


def test_every_revision_verdict_is_computed_not_copied():
    for name in REVISIONS:
        spec = BY_NAME[name]
        got = {m: "sometimes" if v else "never" for m, v in verdicts(spec).items()}
        assert got == spec.expect


def test_the_readme_table_tells_the_story_in_order():
    names = [p.name for p in PROTOCOLS]
    assert names[:6] == ["v2-rwlock", "v3", "v4-parity", "v4", "v5-no-barriers", "v8-in-flight"]


# ---- format 1 through the shim ---------------------------------------------------

SEQCOUNT_F2 = """
format = 2
name = "seqcount-two"
[struct]
fields = [{ name = "sequence" }, { name = "valid", bits = 8 }, { name = "dumped", bits = 8 },
          { name = "start", bits = 64 }, { name = "order" }, { name = "gfp" }]
covered = ["sequence", "start", "order", "gfp"]
[writer]
flag = "valid"
section = ["sequence++", "smp_wmb()", "start = NOW", "gfp = GFP", "order = ORDER",
           "dumped = 0", "smp_wmb()", "sequence++"]
[reader]
prologue = ["v = READ_ONCE(valid)", "if (!v) skip"]
snapshot = ["snap.sequence = READ_ONCE(sequence)", "if (odd(snap.sequence)) retry", "smp_rmb()",
            "snap.start = start", "snap.order = order", "snap.gfp = gfp",
            "smp_rmb()", "s1 = READ_ONCE(sequence)", "if (s1 != snap.sequence) retry"]
[expect]
sc = "never"
x86 = "never"
weak = "never"
"""


@pytest.mark.parametrize("ablate", [None, "smp_wmb()", "smp_rmb()"])
def test_a_format_1_protocol_written_in_format_2_gets_the_same_verdicts(ablate):
    one, two = BY_NAME["seqcount"], load_text(SEQCOUNT_F2, "two.toml")
    if ablate is not None:  # the same annotation removed from both
        i1 = next(i for i, o in enumerate(one.section + one.snapshot) if o.text.startswith(ablate))
        i2 = next(i for i, o in enumerate(two.section + two.snapshot) if o.text.startswith(ablate))
        w1 = "section" if i1 < len(one.section) else "snapshot"
        w2 = "section" if i2 < len(two.section) else "snapshot"
        one = one.without(w1, i1 if w1 == "section" else i1 - len(one.section))
        two = two.without(w2, i2 if w2 == "section" else i2 - len(two.section))
    for m in MODELS:
        a, b = explore(one, m, 2), explore(two, m, 2)
        assert a.sometimes == b.sometimes, m
        kinds = lambda r: {o for o in r.outcomes if o in TORN_KINDS}  # noqa: E731
        assert kinds(a) == kinds(b), m


def test_classify_fields_is_format_1s_rule_for_format_1s_fields():
    from kmallocwd.model.explore import classify_values
    for seq in range(0, 7):
        for start in range(0, 3):
            for gfp in range(0, 3):
                for order in range(0, 3):
                    snap = {"sequence": seq, "start": start, "gfp": gfp, "order": order}
                    assert classify_fields(snap, {"sequence": 2}) == \
                        classify_values(seq, start, gfp, order, 2)


def test_classify_fields_needs_one_section_for_every_covered_field():
    assert classify_fields({"seq": 3, "a": 3, "b": 3}, {"seq": 1}) == CONSISTENT
    assert classify_fields({"seq": 3, "a": 2, "b": 2}, {"seq": 1}) == TORN_SEQ
    assert classify_fields({"seq": 3, "a": 3, "b": 2}, {"seq": 1}) == TORN_MIXED
    assert classify_fields({"seq": 3, "a": 1, "b": 1}, {"seq": 2}) == TORN_INSIDE
    assert classify_fields({"a": 0, "b": 0}, {}) == CONSISTENT


# ---- the latch and a user's own struct -----------------------------------------

def test_the_latch_is_correct_and_each_of_its_barriers_is_needed():
    spec = load_path(ROOT / "examples" / "latch.toml")
    assert [f.copies for f in spec.fields] == [1, 2, 2, 2]
    assert verdicts(spec) == {"sc": False, "x86": False, "weak": False}
    # raw_write_seqcount_latch() is smp_wmb(); sequence++; smp_wmb()
    assert [op.kind for op in spec.section[:3]] == ["fence", "inc", "fence"]
    fence = next(i for i, o in enumerate(spec.snapshot) if o.kind == "fence")
    assert verdicts(spec.without("snapshot", fence))["weak"]
    assert verdicts(spec.without("section", 2)) == {"sc": False, "x86": True, "weak": True}


def test_the_latch_reader_reads_the_copy_its_index_picks():
    spec = load_path(ROOT / "examples" / "latch.toml")
    res = explore(spec, "sc", 1)
    accepted = [o for o in res.outcomes if o == CONSISTENT]
    assert accepted and not res.sometimes
    # a reader that ignores the index (always copy[0]) is torn: the writer's
    # first half writes copy[0] while the sequence is odd
    bad = spec.source.replace('"copy[s0 & 1]"', '"z = READ_ONCE(sequence)", "copy[z & 1]"')
    assert load_text(bad, "bad.toml")  # still a valid file: the index is any variable
    fixed0 = spec.source.replace('"s0 = READ_ONCE(sequence)', '"zero = READ_ONCE(start)')
    with pytest.raises(SpecError, match="start has 2 copies"):
        load_text(fixed0, "x.toml")


def test_a_users_three_field_struct():
    spec = load_path(ROOT / "examples" / "three-fields.toml")
    assert [(f.name, f.bits) for f in spec.fields] == [("seq", 32), ("head", 64), ("tail", 32),
                                                       ("mode", 8)]
    assert verdicts(spec) == {"sc": False, "x86": False, "weak": False}
    # per-field READ_ONCE loads: without the reader's smp_rmb() only a weak
    # machine reorders them; with plain loads the compiler may too
    rmb = next(i for i, o in enumerate(spec.snapshot) if o.kind == "fence")
    assert verdicts(spec.without("snapshot", rmb)) == {"sc": False, "x86": False, "weak": True}
    plain = load_text(spec.source.replace("snap.head = READ_ONCE(head)", "snap.head = head")
                      .replace('    "smp_rmb()        # pairs with the writer\'s second smp_wmb()",\n',
                               ""), "plain.toml")
    assert verdicts(plain) == {"sc": False, "x86": True, "weak": True}


FLAG = """
format = 2
name = "publish"
[struct]
fields = [{ name = "ready", bits = 8 }, { name = "a", bits = 64 }, { name = "b", bits = 16 }]
covered = ["a", "b"]
[writer]
frame = "flag"
flag = "ready"
section = ["a = STAMP", "b = STAMP", "smp_wmb()     # pairs with the reader's smp_rmb()"]
[reader]
snapshot = ["r = READ_ONCE(ready)", "if (!r) skip", "smp_rmb()", "snap.a = a", "snap.b = b"]
[expect]
sc = "never"
x86 = "never"
weak = "never"
"""


def test_a_flag_publish_writer_one_section():
    spec = load_text(FLAG, "flag.toml")
    assert verdicts(spec, 1) == {"sc": False, "x86": False, "weak": False}
    # without smp_wmb(): plain stores move past the plain flag++ (compiler, x86)
    nowmb = load_text(FLAG.replace(', "smp_wmb()     # pairs with the reader\'s smp_rmb()"', ""),
                      "x.toml")
    assert verdicts(nowmb, 1) == {"sc": False, "x86": True, "weak": True}
    # WRITE_ONCE everywhere and no barrier: x86 keeps the order, weak does not
    once = load_text(FLAG.replace('"a = STAMP", "b = STAMP"',
                                  '"WRITE_ONCE(a, STAMP)", "WRITE_ONCE(b, STAMP)"')
                     .replace(', "smp_wmb()     # pairs with the reader\'s smp_rmb()"', "")
                     .replace('flag = "ready"', 'flag = "ready"\naccess = "once"')
                     .replace('"snap.a = a", "snap.b = b"',
                              '"snap.a = READ_ONCE(a)", "snap.b = READ_ONCE(b)"'), "y.toml")
    assert verdicts(once, 1) == {"sc": False, "x86": False, "weak": True}


def test_the_compiler_may_merge_a_fields_plain_increments():
    two = FLAG.replace('section = ["a = STAMP"', 'section = ["n++", "a = STAMP", "n++"')
    two = two.replace('{ name = "b", bits = 16 }]', '{ name = "b", bits = 16 }, { name = "n" }]')
    spec = load_text(two, "m.toml")
    assert merge_choices(spec) == [0]
    assert len(programs(spec, "x86", 2)) == 4 and len(programs(spec, "sc", 2)) == 1


def test_expired_takes_both_values_in_the_model():
    spec = BY_NAME["v8-in-flight"]
    res = explore(spec, "sc", 1)
    skips = {o for o in res.outcomes if o.startswith("skip@")}
    lines = {op.line for op in spec.prologue + spec.snapshot if op.kind == "cond"
             and "expired" in op.text}
    assert {f"skip@{ln}" for ln in lines} <= skips
    assert CONSISTENT in res.outcomes
    assert len(programs(spec, "sc", 1)) == 4  # two expired() conditions


# ---- the loader's errors ----------------------------------------------------------

@pytest.mark.parametrize("old,new,says", [
    ('{ name = "a", bits = 64 }', '{ name = "a", bits = 12 }', "struct.fields[1].bits: 12 (accepted: 8, 16, 32, 64)"),
    ('{ name = "a", bits = 64 }', '{ name = "a", copies = 3 }', "struct.fields[1].copies: 3 (accepted: 1, 2)"),
    ('{ name = "a", bits = 64 }', '{ name = "int" }', "struct.fields[1].name: 'int'"),
    ('{ name = "a", bits = 64 }', '{ name = "witness" }', "struct.fields[1].name: 'witness'"),
    ('covered = ["a", "b"]', 'covered = ["a", "c"]', "struct.covered: 'c' is not a declared field"),
    ('covered = ["a", "b"]', 'covered = ["a", "ready"]', "struct.covered: ready is the frame's flag"),
    ('"b = STAMP"', '"b = 7"', "writer.section: b = 7: b is covered, and a constant is the same"),
    ('"b = STAMP"', '"b = 70000"', "70000 does not fit the 16-bit b"),
    ('"b = STAMP"', '"c = STAMP"', "'c' is not a declared field"),
    ('"b = STAMP"', '"copy[1].b = STAMP"', "b has 1 copy"),
    ('"b = STAMP"', '"b = STAMP", "ready = 1"', "the frame writes ready"),
    ('"snap.b = b"', '"snap.b = a"', "snap.b is loaded from a"),
    ('"snap.b = b"', '"snap.a = b"', "snap.a is loaded from b"),
    ('"snap.b = b"', '"snap.b = b", "snap.b = READ_ONCE(b)"', "snap.b is loaded twice"),
    ('"snap.b = b"', '"if (snap.b) accept", "snap.b = b"', "snap.b is not loaded before it"),
    ('"snap.a = a", "snap.b = b"', '"snap.a = a", "if (1) accept", "snap.b = b"', "accepts before the snapshot holds b"),
    ('"snap.b = b"', '"q = b"', "the snapshot never loads b"),
    ('snapshot = [', 'prologue = ["if (1) retry"]\nsnapshot = [', "retry is only for reader.snapshot"),
    ('frame = "flag"', 'frame = "fence"', "writer.frame: 'fence' (accepted: flag, bare)"),
    ('flag = "ready"', 'flag = "a"', "struct.covered: a is the frame's flag"),
    ('[reader]', '[reader]\nsnapshot_sequence = "r"', "reader.snapshot_sequence: unknown key"),
    ('snapshot = [', 'prologue = ["snap.a = a"]\nsnapshot = [', "reader.prologue"),
])
def test_format_2_errors_name_the_file_line_and_key(tmp_path, capsys, old, new, says):
    assert old in FLAG
    f = tmp_path / "bad.toml"
    f.write_text(FLAG.replace(old, new, 1))
    code = main(["check", "--protocol-file", str(f)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1, err
    assert f"{f}:" in err and says in err, err
    line = int(err.split(f"{f}:", 1)[1].split(":", 1)[0])
    assert line >= 1


def test_format_2_strings_are_checked_like_format_1s(tmp_path):
    with pytest.raises(SpecError, match="unprintable character"):
        load_text(FLAG.replace('name = "a"', 'name = "a\\u202e"'), "x.toml")
    with pytest.raises(SpecError, match="characters long"):
        load_text(FLAG.replace('"b = STAMP"', '"b = STAMP  # ' + "x" * 300 + '"'), "x.toml")
    with pytest.raises(SpecError, match="32 operands|operands in one condition"):
        load_text(FLAG.replace('"if (!r) skip"',
                               '"if (' + "||".join(["r"] * 40) + ') skip"'), "x.toml")
    many = ", ".join(f'{{ name = "f{i}" }}' for i in range(17))
    with pytest.raises(SpecError, match="20 fields .accepted: at most 16."):
        load_text(FLAG.replace('fields = [{ name = "ready", bits = 8 }',
                               f'fields = [{many}, {{ name = "ready", bits = 8 }}'), "x.toml")


def test_outcomes_are_optional_in_format_2_and_default_sensibly():
    spec = load_text(FLAG, "flag.toml")
    assert spec.outcome(CONSISTENT).expect == "acceptable"
    assert all(spec.outcome(k).expect == "forbidden" for k in TORN_KINDS)
    assert spec.outcome("rejected-invalid").expect == "acceptable"
    skip = next(op for op in spec.snapshot if op.kind == "cond")
    assert spec.skip_outcome(skip) == "rejected-invalid"  # it reads the flag


def test_stress_and_protocols_c_take_a_format_2_file(capsys):
    # FAIL, INCONCLUSIVE or UNOBSERVED: what 0.1 s shows is up to the machine
    assert main(["stress", "-q", "-p", "v8-in-flight", "-d", "0.1", "--json", "-"]) in (1, 3, 4)
    doc = json.loads(capsys.readouterr().out)
    assert doc["protocol"] == "v8-in-flight" and doc["attempts"] > 0
    assert main(["protocols", "--c", "v4"]) == 0
    assert "struct v4_info {" in capsys.readouterr().out


def test_check_litmus_and_ablate_take_format_2_files(tmp_path, capsys):
    assert main(["check", "--protocol-file", str(ROOT / "examples" / "latch.toml"),
                 "--no-trace"]) == 0
    assert main(["ablate", "--protocol-file", str(ROOT / "examples" / "three-fields.toml")]) == 0
    capsys.readouterr()
    text = render(BY_NAME["v8-in-flight"], 1)
    assert "P0(int *in_flight, int *report, int *idx, int *sequence" in text
    assert "WRITE_ONCE(*in_flight, 1); /* plain */  /* in_flight++ */" in text
    assert text.count("smp_wmb();") == 1 and text.count("smp_rmb();") == 1


# ---- whatever the operations: refused in one line, or explored -------------------

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_F2_BASES = [BY_NAME[n].source for n in REVISIONS] + [
    (ROOT / "examples" / f).read_text() for f in ("latch.toml", "three-fields.toml")] + [FLAG]
_F2_FIELDS = ["sequence", "start", "order", "gfp", "valid", "in_flight", "seq", "head", "mode",
              "a", "b", "ready", "nope"]
_F2_VARS = ["s0", "s1", "r", "v", "t", "snap.start", "snap.sequence", "snap.a", "x"]
_F2_WRITER = st.one_of(
    st.sampled_from(_F2_FIELDS).map(lambda f: f"{f}++"),
    st.tuples(st.sampled_from(_F2_FIELDS), st.sampled_from(["NOW", "STAMP", "0", "300"]),
              st.sampled_from(["", "copy[0].", "copy[1]."])).map(
        lambda t: f"{t[2]}{t[0]} = {t[1]}"),
    st.sampled_from(_F2_FIELDS).map(lambda f: f"raw_write_seqcount_latch({f})"),
    st.sampled_from(["smp_wmb()", "smp_mb()", "barrier()", "spin_lock(global)",
                     "spin_unlock(global)"]))
_F2_READER = st.one_of(
    st.tuples(st.sampled_from(_F2_VARS), st.sampled_from(_F2_FIELDS),
              st.sampled_from(["{}", "READ_ONCE({})", "smp_load_acquire({})"])).map(
        lambda t: f"{t[0]} = {t[2].format(t[1])}"),
    st.tuples(st.sampled_from(_F2_FIELDS), st.sampled_from(_F2_VARS)).map(
        lambda t: f"snap.{t[0]} = copy[{t[1]} & 1].{t[0]}"),
    st.sampled_from(["copy", "copy_once", "copy[s0 & 1]", "smp_rmb()"]),
    st.tuples(st.sampled_from(_F2_VARS), st.sampled_from(["skip", "retry", "accept"]),
              st.sampled_from(["!{}", "odd({})", "{} != s0", "!expired({})"])).map(
        lambda t: f"if ({t[2].format(t[0])}) {t[1]}"))


@st.composite
def _mutated2(draw) -> str:
    text = draw(st.sampled_from(_F2_BASES))
    spec = load_text(text, "base.toml")
    for _ in range(draw(st.integers(1, 3))):
        side = draw(st.sampled_from(["section", "snapshot", "snapshot"]))
        ops = list(dict.fromkeys(op.text for op in getattr(spec, side)))
        if not ops:
            continue
        old = draw(st.sampled_from(ops))
        new = draw(_F2_WRITER if side == "section" else _F2_READER)
        how = draw(st.sampled_from(["replace", "insert", "delete"]))
        quoted = f'"{old}'
        if quoted not in text:
            continue
        if how == "replace":
            text = text.replace(quoted, f'"{new}  #', 1)
        elif how == "insert":
            text = text.replace(quoted, f'"{new}", {quoted}', 1)
        else:
            i = text.index(quoted)
            j = text.index('"', i + 1) + 1
            text = text[:i] + text[j:].lstrip(",")
    return text


@settings(max_examples=int(__import__("os").environ.get("KMALLOCWD_FUZZ_EXAMPLES", "50")),
          deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=_mutated2())
def test_a_mutated_format_2_file_is_refused_in_one_line_or_checked(text):
    try:
        spec = load_text(text, "fuzz.toml")
    except SpecError as exc:
        assert "\n" not in str(exc) and str(exc).startswith("fuzz.toml:")
        return
    for m in MODELS:
        explore(spec, m, 1)
    assert render(spec, 1).splitlines()[-1].startswith("exists (")


def test_a_campaign_stresses_a_format_2_protocol(tmp_path):
    from kmallocwd.campaign import load_plan
    (tmp_path / "latch.toml").write_text((ROOT / "examples" / "latch.toml").read_text())
    for proto in ("v8-in-flight", "latch.toml"):
        plan = tmp_path / "plan.toml"
        plan.write_text(f"[[stress]]\nprotocols = ['{proto}']\ndurations = 1\n")
        cells = load_plan(str(plan)).cells
        assert len(cells) == 1 and "stress" in cells[0].argv
    plan.write_text("[[check]]\nargs = ['-p', 'v8-in-flight']\n")
    assert load_plan(str(plan)).cells


def test_the_watchdog_emulation_offers_only_the_protocols_it_runs(capsys):
    try:
        code = main(["run", "-p", "v8-in-flight"])
    except SystemExit as exc:  # argparse's own refusal
        code = exc.code
    assert code == 2
    err = capsys.readouterr().err
    assert "unknown protocol 'v8-in-flight'" in err and "v4-parity" in err


def test_litmus_exports_the_latch_and_a_users_struct(capsys):
    assert main(["litmus", "--protocol-file", str(ROOT / "examples" / "latch.toml")]) == 0
    assert "r_idx_s0 = s0 & 1;" in capsys.readouterr().out
    assert main(["litmus", "--protocol-file", str(ROOT / "examples" / "three-fields.toml"),
                 "-k", "1"]) == 0
    out = capsys.readouterr().out
    assert "P0(int *seq, int *head, int *tail, int *mode)" in out
