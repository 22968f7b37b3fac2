"""JUnit XML for CI reporters (Jenkins, GitLab, GitHub): one <testsuite> per
command run, one <testcase> per protocol x model (check), per run (stress),
per ablated annotation (ablate) or per cell (campaign).  Every command maps
its statuses to JUnit elements with ``STATUS_ELEMENT`` (the table in docs/ci.md),
writes property values as JSON (a string as itself), and gives the suite
the seed, the machine and kmallocwd's version.  Written with the standard
library's ElementTree."""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import socket
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

# the status of a testcase -> the JUnit element it gets (None: passed)
STATUS_ELEMENT: dict[str, str | None] = {
    "PASS": None,
    "FAIL": "failure",          # a forbidden outcome seen, or a tear the table says never
    "UNOBSERVED": "failure",    # the model says it can tear; this run did not see it
    "INCONCLUSIVE": "skipped",  # no power, or too little evidence
    "NOT RUN": "skipped",       # interrupted before it ran
    "error": "error",           # it could not run (crash, timeout, bad input)
}


def value(v: object) -> str:
    """A property's value: a string as itself, anything else as JSON."""
    if isinstance(v, str):
        return v
    try:
        return json.dumps(v, sort_keys=True, separators=(",", ":"))
    except (TypeError, ValueError):
        return json.dumps(str(v))


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for ln in f:
                if ln.startswith("model name"):
                    return ln.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or ""


def run_properties(seed: object, **more: object) -> dict[str, object]:
    """What every command's suite carries: the seed (null when the command
    draws nothing at random), the machine and kmallocwd's version."""
    from kmallocwd import __version__

    return {"seed": seed, "machine": socket.gethostname(), "arch": platform.machine(),
            "cpu": cpu_model(), "cpus": os.cpu_count(), "kmallocwd": __version__, **more}


def status_element(tc: ET.Element, status: str, message: str = "",
                   text: str | None = None) -> str | None:
    """Add the element STATUS_ELEMENT gives ``status`` under testcase ``tc``
    (type = the status); its tag, or None for a pass."""
    tag = STATUS_ELEMENT[status]
    if tag is None:
        return None
    first = (message.splitlines() or [""])[0][:500]
    el = ET.SubElement(tc, tag, message=first)
    if tag != "skipped":
        el.set("type", status)
    if text and tag != "skipped":
        el.text = text
    return tag


@dataclass
class Case:
    name: str
    classname: str
    time_s: float = 0.0
    status: str = "PASS"  # a key of STATUS_ELEMENT
    message: str = ""  # the status's message (its first line is the attribute)
    details: str = ""  # <system-out>
    properties: dict[str, object] = field(default_factory=dict)

    def set(self, status: str, message: str) -> None:
        if status not in STATUS_ELEMENT:
            raise ValueError(f"unknown status {status!r}")
        self.status, self.message = status, message


def _props(parent: ET.Element, props: dict[str, object]) -> None:
    if not props:
        return
    el = ET.SubElement(parent, "properties")
    for k, v in props.items():
        if v is not None or k == "seed":
            ET.SubElement(el, "property", name=str(k), value=value(v))


def to_xml(suite: str, cases: list[Case], properties: dict[str, object] | None = None) -> str:
    """The document: <testsuites> holding one <testsuite>."""
    tags = [STATUS_ELEMENT[c.status] for c in cases]
    failures, errors, skipped = (tags.count(t) for t in ("failure", "error", "skipped"))
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
        status_element(tc, c.status, c.message, c.message)
        if c.details:
            ET.SubElement(tc, "system-out").text = c.details
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
