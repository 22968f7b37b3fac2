"""JUnit XML from a campaign's results: one testcase per cell.

A cell's status maps to a JUnit element as for every command
(``kmallocwd.junit.STATUS_ELEMENT``): a forbidden outcome (FAIL) and an
unobserved one (UNOBSERVED) are a ``<failure>``; an inconclusive cell and a
cell not run (interrupted) are ``<skipped>``; a cell that could not run
(crash, timeout, bad arguments) is an ``<error>``.  Each testcase carries
properties (values as JSON): seed, machine, arch, exit status, and every
count; the suite, kmallocwd's version and the coordinator's machine."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET

from kmallocwd import junit
from kmallocwd.verdicts import Result

# characters XML 1.0 cannot hold (control characters from a crashed cell's stderr)
_NOT_XML = re.compile("[^\u0009\u000a\u000d\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _clean(text) -> str:
    return _NOT_XML.sub("\ufffd", str(text))


def _prop(props: ET.Element, name: str, value) -> None:
    if value is None:
        return
    ET.SubElement(props, "property", name=_clean(name), value=_clean(junit.value(value)))


# a cell's verdict in the results file -> its status (kmallocwd.junit.STATUS_ELEMENT)
_STATUS = {**{r.cell: str(r) for r in Result if r is not Result.PASS}, "failed": "error"}


def to_junit(doc: dict) -> str:
    plan = doc["plan"]
    by_id = {r["id"]: r for r in doc["cells"]}
    suites = ET.Element("testsuites", name=f"kmallocwd campaign {plan['name']}")
    suite = ET.SubElement(suites, "testsuite", name=f"kmallocwd campaign {plan['name']}",
                          timestamp=doc["started_at"])
    sprops = ET.SubElement(suite, "properties")
    _prop(sprops, "plan", plan["path"])
    _prop(sprops, "plan_digest", plan["digest"])
    _prop(sprops, "verdict", doc["verdict"]["line"])
    _prop(sprops, "exit_status", doc["verdict"]["exit_status"])
    seeds = sorted({r["seed"] for r in doc["cells"] if r.get("seed") is not None})
    for k, v in junit.run_properties(seeds).items():  # the seeds: each cell has its own
        _prop(sprops, k, v)
    tests = failures = errors = skipped = 0
    total_time = 0.0
    order = [r["id"] for r in doc["cells"]] + [p for p in doc["verdict"]["pending"]
                                               if p not in by_id]
    for cid in order:
        rec = by_id.get(cid)
        tests += 1
        kind = cid.split("/", 1)[0]
        protocol = (rec or {}).get("protocol")
        classname = f"kmallocwd.campaign.{kind}" + (f".{protocol}" if protocol else "")
        tc = ET.SubElement(suite, "testcase", classname=_clean(classname), name=_clean(cid))
        if rec is None:
            tc.set("time", "0")
            junit.status_element(tc, "NOT RUN", "NOT RUN: the campaign was interrupted")
            skipped += 1
            continue
        t = float(rec.get("elapsed_s") or 0.0)
        total_time += t
        tc.set("time", f"{t:.3f}")
        m = rec.get("machine") or {}
        props = ET.SubElement(tc, "properties")
        _prop(props, "seed", rec.get("seed"))
        _prop(props, "machine", m.get("hostname"))
        _prop(props, "arch", m.get("arch"))
        _prop(props, "cpu", m.get("cpu"))
        _prop(props, "cores", m.get("cores"))
        _prop(props, "exit_status", rec.get("exit_status"))
        _prop(props, "verdict", rec.get("verdict"))
        _prop(props, "attempts", len(rec.get("attempts", [])))
        _prop(props, "worker", (rec.get("worker") or {}).get("address"))
        for k, v in (rec.get("config") or {}).items():
            _prop(props, f"config.{k}", v)
        for name, n in rec.get("counts", {}).items():
            _prop(props, f"count.{name}", n)
        for name, n in rec.get("counters", {}).items():
            _prop(props, f"counter.{name}", n)
        verdict = rec.get("verdict")
        status = _STATUS.get(verdict, "PASS")
        report = rec.get("report") if isinstance(rec.get("report"), dict) else {}
        if status == "FAIL":
            msg = (f"FAIL: forbidden outcome seen on {m.get('hostname')}: "
                   + ", ".join(rec.get("forbidden") or ["?"]))
            text = msg
            if rec.get("first_torn") is not None:
                text += "\nfirst torn snapshot: " + json.dumps(rec["first_torn"], sort_keys=True)
        elif status == "error":
            msg = "error: " + str(rec.get("error") or "failed")
            text = rec.get("stderr_tail") or msg
        else:
            msg = text = (f"{status}: " + str(report.get("verdict")
                                              or f"exit status {rec.get('exit_status')}"))
        tag = junit.status_element(tc, status, _clean(msg), _clean(text))
        failures += tag == "failure"
        errors += tag == "error"
        skipped += tag == "skipped"
    for el in (suites, suite):
        el.set("tests", str(tests))
        el.set("failures", str(failures))
        el.set("errors", str(errors))
        el.set("skipped", str(skipped))
        el.set("time", f"{total_time:.3f}")
    ET.indent(suites)
    return ET.tostring(suites, encoding="unicode", xml_declaration=True) + "\n"
