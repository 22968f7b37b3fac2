"""JUnit XML for CI reporters (Jenkins, GitLab, GitHub): one <testsuite> per
command run, one <testcase> per protocol x model (check), per run (stress) or
per ablated annotation (ablate); a forbidden outcome is a <failure>, an
inconclusive run <skipped>, and the seed, the machine and the counts are
<property> elements.  Written with the standard library's ElementTree."""

from __future__ import annotations

import datetime as _dt
import socket
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field


@dataclass
class Case:
    name: str
    classname: str
    time_s: float = 0.0
    failure: str | None = None  # the message of a <failure>
    failure_type: str = "forbidden-outcome"
    skipped: str | None = None  # the message of a <skipped>
    error: str | None = None
    details: str = ""  # <system-out>
    properties: dict[str, object] = field(default_factory=dict)


def _props(parent: ET.Element, props: dict[str, object]) -> None:
    if not props:
        return
    el = ET.SubElement(parent, "properties")
    for k, v in props.items():
        ET.SubElement(el, "property", name=str(k), value=str(v))


def to_xml(suite: str, cases: list[Case], properties: dict[str, object] | None = None) -> str:
    """The document: <testsuites> holding one <testsuite>."""
    failures = sum(1 for c in cases if c.failure is not None)
    errors = sum(1 for c in cases if c.error is not None)
    skipped = sum(1 for c in cases if c.skipped is not None)
    total = sum(c.time_s for c in cases)
    root = ET.Element("testsuites", name="kmallocwd", tests=str(len(cases)),
                      failures=str(failures), errors=str(errors), skipped=str(skipped),
                      time=f"{total:.3f}")
    ts = ET.SubElement(root, "testsuite", name=suite, tests=str(len(cases)),
                       failures=str(failures), errors=str(errors), skipped=str(skipped),
                       time=f"{total:.3f}",
                       timestamp=_dt.datetime.now().replace(microsecond=0).isoformat(),
                       hostname=socket.gethostname())
    _props(ts, properties or {})
    for c in cases:
        tc = ET.SubElement(ts, "testcase", name=c.name, classname=c.classname,
                           time=f"{c.time_s:.3f}")
        _props(tc, c.properties)
        if c.failure is not None:
            f = ET.SubElement(tc, "failure", message=c.failure.splitlines()[0][:500],
                              type=c.failure_type)
            f.text = c.failure
        if c.error is not None:
            e = ET.SubElement(tc, "error", message=c.error.splitlines()[0][:500], type="error")
            e.text = c.error
        if c.skipped is not None:
            ET.SubElement(tc, "skipped", message=c.skipped[:500])
        if c.details:
            ET.SubElement(tc, "system-out").text = c.details
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
