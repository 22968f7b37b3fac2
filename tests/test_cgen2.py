"""The C of a format-2 file (kmallocwd/protocols/cgen2.py): it compiles
cleanly for every shape, free text only ever lands in comments, and a Spec
built by hand with code-bearing parts outside the vocabulary is refused."""

from __future__ import annotations

from dataclasses import replace

import pytest

from kmallocwd import protocols
from kmallocwd.protocols import cgen
from kmallocwd.protocols.format2 import Field
from kmallocwd.protocols.spec import SpecError, load_text

from test_protocol_hostile import (GCC, HOSTILE, assert_text_only_in_comments, compiles,
                                   toml_str)
from test_stress_format2 import ALL2, EXAMPLES, spec_of

needs_gcc = pytest.mark.skipif(GCC is None, reason="needs gcc")


@needs_gcc
@pytest.mark.parametrize("name", ALL2)
def test_every_format2_shape_compiles_without_a_warning(name):
    c = cgen.one_protocol_c(spec_of(name))
    r = compiles(c)
    assert r.returncode == 0 and "warning" not in r.stderr, r.stderr
    assert "struct " + spec_of(name).ident + "_info {" in c


LATCH = EXAMPLES["latch"].read_text()
OP = '"copy[s0 & 1]",'


@pytest.mark.parametrize("i", range(len(HOSTILE)))
def test_hostile_text_in_a_format2_file_stays_in_its_comment(i):
    assert OP in LATCH
    text = LATCH.replace(OP, toml_str("copy[s0 & 1]   # " + HOSTILE[i]) + ",")
    try:
        s = load_text(text, "hostile.toml")
    except SpecError as exc:
        assert "\n" not in str(exc)
        return
    assert_text_only_in_comments(s)


def _bad(spec, **kw):
    return replace(spec, **kw)


@pytest.mark.parametrize("how", ["field", "value", "var", "flag", "name"])
def test_code_bearing_parts_outside_the_vocabulary_are_refused(how):
    s = spec_of("v8-in-flight")
    if how == "field":
        s = replace(s, fields=s.fields + (Field("x; int evil", 32),))
    elif how == "value":
        op = next(o for o in s.section if o.kind == "store")
        s = replace(s, section=(replace(op, value="1; evil()"),) + s.section[1:])
    elif how == "var":
        op = next(o for o in s.prologue if o.kind == "load")
        s = replace(s, prologue=(replace(op, var="f = 0; evil"),) + s.prologue[1:])
    elif how == "flag":
        s = replace(s, flag="in_flight) evil(")
    else:
        s = replace(s, name="v8; evil")
    with pytest.raises(cgen.UnsafeSpec):
        cgen.one_protocol_c(s)


def test_protocols_c_prints_a_format2_protocol(capsys):
    from kmallocwd.cli import main
    assert main(["protocols", "--c", "v8-in-flight"]) == 0
    out = capsys.readouterr().out
    assert "struct v8_in_flight_info {" in out and "v8_in_flight_classify(" in out


def test_the_tally_holds_as_many_fields_as_a_file_may_declare():
    from kmallocwd._core import ffi
    from kmallocwd.protocols.format2 import MAX_FIELDS
    assert len(ffi.new("struct kmw_tally *").first_torn_values) == MAX_FIELDS


def test_a_constant_in_a_covered_field_is_refused_in_one_line():
    text = LATCH.replace('"copy[0].gfp = GFP",', '"copy[0].gfp = GFP",\n    "copy[0].gfp = 7",')
    with pytest.raises(SpecError, match=r"^c\.toml:\d+: writer\.section: .*gfp is covered"):
        load_text(text, "c.toml")


def test_a_reader_variable_named_expire_is_refused():
    text = LATCH.replace('"s1 = READ_ONCE(sequence)",', '"expire = READ_ONCE(sequence)",').replace(
        "if (s1 != s0) retry", "if (expire != s0) retry")
    with pytest.raises(SpecError, match="expire"):
        load_text(text, "e.toml")
