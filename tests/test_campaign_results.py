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
