"""``kmallocwd classify``'s library side: a console log's text -> the same
Summary a run ends with (reports, per-task seq progress, trends, the
classification with its evidence), computed, not printed."""

from __future__ import annotations

from kmallocwd.watchdog.classify import classify_reports
from kmallocwd.watchdog.logparse import ParsedLog, parse
from kmallocwd.watchdog.printk import seconds
from kmallocwd.watchdog.progress import per_task
from kmallocwd.watchdog.summary import Summary

LOG_LIMIT = 256 << 20  # bytes of log text read at most (a day of a busy serial console)


def summarize(text: str, source: str) -> Summary:
    log = parse(text)
    reports = log.reports
    verdicts = per_task(reports)
    times = ([r.time_ns for r in reports if r.time_ns >= 0]
             + [e.time_ns for e in log.events if e.time_ns is not None])
    span = (max(times) - min(times)) / 1e9 if times else 0.0
    pids = {x.pid for r in reports for x in r.lines}
    killed = [e for e in log.events if e.kind == "killed"]
    panics = [e for e in log.events if e.kind == "panic"]
    panic = None
    if panics:
        p = panics[0]
        panic = (-1.0 if p.time_ns is None else seconds(p.time_ns),
                 p.text.split(": ", 1)[1] if ": " in p.text else p.text)
    return Summary(
        scenario=None, tasks=len(pids), protocol=None, hz=None, timeout_s=None,
        timeout_jiffies=None, elapsed_s=span, interrupted=None, reports=reports,
        verdicts=verdicts, reader=None, scans=0,
        classification=classify_reports(reports, verdicts), detectors=None,
        oom_kills=[(None if e.time_ns is None else seconds(e.time_ns), e.comm, e.pid)
                   for e in killed],
        memory=None, source=source, log=_log_info(log), panic=panic)


def _log_info(log: ParsedLog) -> dict:
    events: dict[str, list[dict]] = {}
    for e in log.events:
        events.setdefault(e.kind, []).append(
            {"time": None if e.time_ns is None else seconds(e.time_ns), "comm": e.comm,
             "pid": e.pid, "text": e.text})
    return {"lines": log.lines, "recognised": log.recognised, "formats": log.formats,
            "order": log.order, "orphans": log.orphans, "events": events}
