"""Each report is worked out once, in the library: one `kmallocwd stress`
run that writes the table, the JSON, the JUnit XML and the GitHub
annotations adds the runs up once, decides the verdict once (and once per
run for the JUnit testcases) and asks the model checker once."""

from __future__ import annotations

import json

from kmallocwd import model
import kmallocwd.stress.report as stress_report
import kmallocwd.stress.run as stressrun
from kmallocwd.cli import main


def _count(monkeypatch, module, name, counts):
    real = getattr(module, name)

    def counted(*args, **kwargs):
        counts[name] = counts.get(name, 0) + 1
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, counted)


def test_one_stress_run_decides_its_verdict_once(monkeypatch, tmp_path, capsys):
    counts: dict[str, int] = {}
    _count(monkeypatch, stress_report, "combine", counts)  # imported by name there
    _count(monkeypatch, stressrun, "combine", counts)
    _count(monkeypatch, stress_report, "verdict", counts)
    _count(monkeypatch, model, "verdicts", counts)
    rc = main(["stress", "-p", "seqcount", "-d", "0.2", "--repeat", "2", "--alloc-ns", "100",
               "--json", str(tmp_path / "r.json"), "--junit", str(tmp_path / "r.xml"),
               "--annotate", "github", "-q"])
    doc = json.loads((tmp_path / "r.json").read_text())
    assert rc == doc["exit_status"]
    assert (tmp_path / "r.xml").read_text().count("<testcase") == 2
    assert doc["result"] in capsys.readouterr().out
    # once for the report, once for each of the two runs' testcases
    assert counts == {"combine": 1, "verdict": 3, "verdicts": 1}
