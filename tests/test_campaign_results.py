"""A campaign's results file read back: a record of the right plan but the
wrong shapes is one line naming the record, never a traceback; and no text
from the file (or from a protocol file) reaches the terminal or a CI log as
control characters or as a workflow command."""

from __future__ import annotations

import copy
import json

import pytest

from kmallocwd.campaign import Campaign, parse_plan, render
from kmallocwd.cli import main

PLAN = "[[stress]]\nprotocols = ['seqcount']\nseeds = [1, 2]\n"
MACHINE = {"hostname": "arm1", "cpu": "Neoverse-N1", "arch": "aarch64", "cores": 4,
           "python": "3.11", "kmallocwd": "0.1.0"}


def _doc(plan) -> dict:
    c = Campaign(plan)
    for cell in plan.cells:
        c.add(cell, [{"status": "done", "exit_status": 0, "machine": dict(MACHINE),
                      "worker": {"address": "tcp://a:1", "pid": 1}, "elapsed_s": 1.0,
                      "started_at": "2026-01-01T00:00:00+00:00",
                      "report": {"outcomes": {"consistent": {"count": 10,
                                                             "expect": "acceptable"}},
                                 "overlaps": 7, "verdict": "PASS: fine"}}])
    return c.to_dict()


BREAKAGES = [
    ("counts", [1]),
    ("counts", {"consistent": "ten"}),
    ("counters", {"overlaps": 1.5}),
    ("machine", "arm1"),
    ("machine", {"hostname": ["a"]}),
    ("machine", {"hostname": "a", "cores": "four"}),
    ("worker", {"address": 5}),
    ("attempts", [1]),
    ("attempts", {"a": 1}),
    ("forbidden", "torn"),
    ("exit_status", "0"),
    ("exit_status", 7),
    ("verdict", "forbidden"),
    ("elapsed_s", "1 s"),
    ("report", [1]),
    ("error", {"x": 1}),
]


@pytest.mark.parametrize("key,value", BREAKAGES)
def test_a_malformed_record_is_one_line_naming_it(tmp_path, capsys, key, value):
    plan_path = tmp_path / "plan.toml"
    plan_path.write_text(PLAN)
    doc = _doc(parse_plan(PLAN, str(plan_path)))
    doc["cells"][1][key] = value
    out = tmp_path / "r.json"
    out.write_text(json.dumps(doc))
    before = out.read_text()
    assert main(["campaign", str(plan_path), "--json", str(out), "--dry-run"]) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert "cells[1]" in lines[0] and repr(key) in lines[0] and "--fresh" in lines[0], lines[0]
    assert out.read_text() == before


def test_a_well_formed_file_resumes_and_the_plan_decides_what_a_cell_is(tmp_path):
    plan = parse_plan(PLAN, "plan.toml")
    doc = _doc(plan)
    doc["cells"][0]["argv"] = ["rm", "-rf", "/"]       # not the file's to say
    doc["cells"][0]["group"] = "forged"
    c = Campaign(plan)
    assert c.resume_from(json.dumps(doc), "--json r.json") == 2
    rec = c.records[plan.cells[0].id]
    assert rec["argv"] == plan.cells[0].argv and rec["group"] == plan.cells[0].group
    assert "PASS" in render(c.to_dict())


def test_a_results_file_of_the_right_plan_with_no_cells_list_resumes_nothing():
    plan = parse_plan(PLAN, "plan.toml")
    doc = _doc(plan)
    doc["cells"] = {"x": 1}
    assert Campaign(plan).resume_from(json.dumps(doc), "--json r.json") == 0
    doc = copy.deepcopy(_doc(plan))
    doc["history"] = "x"
    assert Campaign(plan).resume_from(json.dumps(doc), "--json r.json") == 2


# ---------------------------------------------------------------- hostile text

from kmallocwd import annotate  # noqa: E402
from kmallocwd.escape import github_data, github_property, one_line  # noqa: E402

FORGED = "\n::warning file=README.md,line=1::forged\x1b[2J\x9b31m\u202e ##[error]old"


def _clean_log(text: str) -> None:
    """No control character but newline; no line that is a workflow command,
    except our own ::error annotations (whose payload is escaped)."""
    for ln in text.splitlines():
        assert all(c.isprintable() or c == " " for c in ln), repr(ln)
        assert "##[" not in ln, ln
        if ln.lstrip().startswith("::"):
            assert ln.startswith("::error file=") and "::warning" not in ln.split("::", 2)[1], ln


def test_one_line_escapes_controls_and_defuses_workflow_commands():
    assert one_line("a\x1bb\nc\x9bd\u202e") == "a\\x1bb\\nc\\x9bd\\u202e"
    assert one_line("::warning file=x::y") == "\\x3a:warning file=x::y"
    assert one_line("   ::error::y") == "   \\x3a:error::y"
    assert one_line("a ##[error]b") == "a #\\x23[error]b"
    assert one_line("plain: text, 100%") == "plain: text, 100%"
    assert github_data("50%\r\n::x\x1b") == "50%25%0D%0A::x\\x1b"
    assert github_property("a:b,c%") == "a%3Ab%2Cc%25"
    ln = annotate.line("p,1:x.toml", 3, FORGED, title="t:1")
    assert ln.startswith("::error file=p%2C1%3Ax.toml,line=3,title=t%3A1::")
    _clean_log(ln)


def test_a_results_file_cannot_forge_a_workflow_command_or_an_escape(tmp_path, capsys):
    plan_path = tmp_path / "plan.toml"
    plan_path.write_text(PLAN)
    plan = parse_plan(PLAN, str(plan_path))
    doc = _doc(plan)
    for rec in doc["cells"]:
        rec["machine"].update(hostname=FORGED, cpu=FORGED, arch="\x1b]0;title\x07")
        rec["counts"] = {FORGED: 3, "consistent": 10}
        rec["attempts"][0]["hostname"] = FORGED
    doc["cells"][0].update(exit_status=1, verdict="forbidden", forbidden=[FORGED])
    out = tmp_path / "r.json"
    out.write_text(json.dumps(doc))
    assert main(["campaign", str(plan_path), "--json", str(out)]) == 1
    cap = capsys.readouterr()
    assert "forged" in cap.out and "FAIL" in cap.out       # shown, escaped
    _clean_log(cap.out)
    _clean_log(cap.err)


def test_a_protocol_files_reasons_cannot_forge_one_in_the_stress_table(tmp_path, cli):
    """A reason with control characters is refused at load, in one line
    that holds none of them (it never reaches the table)."""
    from kmallocwd import protocols

    text = protocols.builtin_path("v3").read_text().replace('name = "v3"', 'name = "hostile"')
    toml_forged = FORGED.replace("\n", "\\n").replace("\x1b", "\\u001b") \
        .replace("\x9b", "\\u009b").replace("\u202e", "\\u202e")
    text = text.replace('reason = "', f'reason = "{toml_forged} ')
    f = tmp_path / "hostile.toml"
    f.write_text(text)
    r = cli("stress", "--protocol-file", str(f), "-d", "10", "--until-torn", "--alloc-ns", "100",
            "--annotate", "github", "-q", timeout=240)
    assert r.returncode == 2, r.stderr
    assert "unprintable character" in r.stderr and len(r.stderr.splitlines()) == 1
    assert r.stdout == ""
    _clean_log(r.stderr)
