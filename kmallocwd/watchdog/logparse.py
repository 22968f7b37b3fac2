"""A kernel console log, read as the watchdog's reader would: the reports
(MemAlloc-Info and MemAlloc lines) and the other lines that bear on them.

Recognised anywhere in a line (dmesg or serial console, with or without the
``[%5lu.%06lu]`` timestamp or a syslog prefix, other lines interleaved):

- v3's ``MemAlloc-Info: $X stalling task, $Y dying task, $Z victim task.``
  and the later revisions' ``MemAlloc-Info: stalling=%u dying=%u
  exiting=%u victim=%u oom_count=%u`` (some print ``exiting=%u,`` or
  ``oom_count=%u/%u``);
- ``MemAlloc: $name($pid)`` task lines, v3's (``seq= gfp=0x%x order=
  delay=``) and the later ones (``flags=0x%x switches=%lu``,
  ``gfp=0x%x(%pGg)``), with their state words;
- the OOM killer's ``invoked oom-killer:`` and ``Killed process`` lines,
  4.9's ``page allocation stalls for %ums`` (warn_alloc) and khungtaskd's
  ``blocked for more than``; ``Kernel panic - not syncing:``;
- the JSON Lines that ``kmallocwd run --json`` writes (its ``report`` and
  ``printk`` records).

v3 prints the MemAlloc-Info line before its task lines; some later
revisions print it after them.  Which one a log uses is decided by which
grouping makes more reports' stalling lines agree with their counts.

Nothing here prints: the text of a line is kept as it was (the caller
escapes it before showing it).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from kmallocwd.watchdog.report import Report, TaskLine

STAMP = re.compile(r"\[\s*(\d{1,10})\.(\d{1,9})\]")
INFO_V3 = re.compile(r"MemAlloc-Info: (\d+) stalling tasks?, (\d+) dying tasks?, "
                     r"(\d+) victim tasks?\.?")
INFO_KV = re.compile(r"MemAlloc-Info:((?:[ ,]*[a-z_]+=\d+(?:/\d+)?)+)")
KV = re.compile(r"([a-z_]+)=(\d+)(?:/(\d+))?")
TASK = re.compile(r"MemAlloc: (.{0,64}?)\((\d{1,10})\)((?: .*)?)$")
OOM_INVOKED = re.compile(r"^(.{0,64}?) invoked oom-killer: gfp_mask=(0x[0-9a-fA-F]+)")
KILLED = re.compile(r"Killed process (\d+) \((.{0,64}?)\)")
STALL_WARN = re.compile(r"^(.{0,64}?): page allocation stalls for (\d+)ms, order:(\d+), "
                        r"mode:(0x[0-9a-fA-F]+)")
SYSLOG = re.compile(r"^.{0,80}? kernel: ")
RUN_SUMMARY = "==== kmallocwd run summary ===="  # kmallocwd run's own text, not the kernel's
HUNG = re.compile(r"INFO: task (.{0,64}?):(\d+) blocked for more than (\d+(?:\.\d+)?) seconds")
PANIC = re.compile(r"^Kernel panic - not syncing: (.{0,200})")
STATE_WORDS = ("uninterruptible", "exiting", "dying", "victim")


@dataclass(frozen=True)
class Event:
    """One OOM killer, warn_alloc or khungtaskd line."""

    kind: str  # "oom-invoked", "killed", "warn_alloc", "khungtaskd", "panic"
    time_ns: int | None
    comm: str
    pid: int | None
    text: str


@dataclass
class ParsedLog:
    reports: list[Report]
    events: list[Event]
    lines: int  # lines read
    recognised: int  # lines that were one of the above
    order: str  # "info-first" or "info-last": where the MemAlloc-Info line stands
    formats: list[str] = field(default_factory=list)  # "v3", "later", "json"
    orphans: int = 0  # task lines that belong to no report (cut off by the log's start)


@dataclass
class _Info:
    time_ns: int | None
    stalling: int
    dying: int
    victim: int
    exiting: int | None
    oom_count: int | None
    text: str


def _stamp(line: str, end: int) -> int | None:
    """The last printk timestamp before position ``end`` of the line."""
    found = None
    for m in STAMP.finditer(line, 0, end):
        found = m
    if found is None:
        return None
    frac = found.group(2)
    return int(found.group(1)) * 1_000_000_000 + int(frac.ljust(9, "0")[:9])


def _body(line: str) -> str:
    """The message of a line: after its printk timestamp, or its syslog
    ``... kernel: `` prefix."""
    found = None
    for m in STAMP.finditer(line):
        found = m
        break
    if found is not None:
        return line[found.end():].lstrip(" ")
    m = SYSLOG.match(line)
    return line[m.end():] if m else line.lstrip(" ")


def _task(line: str, m: re.Match, t: int | None) -> TaskLine:
    comm, pid, rest = m.group(1), int(m.group(2)), m.group(3)
    fields: dict[str, str] = {}
    words: set[str] = set()
    for tok in rest.split():
        key, eq, value = tok.partition("=")
        if eq:
            fields.setdefault(key, value)
        else:
            words.add(tok)

    def num(key: str, base: int = 10) -> int | None:
        v = fields.get(key)
        if v is None:
            return None
        v = v.split("(", 1)[0].rstrip(",")
        try:
            return int(v, base)
        except ValueError:
            return None

    seq = num("seq")
    gfp = num("gfp", 16)
    text = line[m.start():].rstrip("\r\n")
    return TaskLine(
        time_ns=-1 if t is None else t, comm=comm, pid=pid, stalling=seq is not None, seq=seq,
        gfp=gfp,
        order=num("order"), delay=num("delay"), uninterruptible="uninterruptible" in words,
        exiting="exiting" in words, dying="dying" in words, victim="victim" in words,
        torn=False, counted_stalling=seq is not None, text=text,
        flags=num("flags", 16), switches=num("switches"))


def _json_lines(line: str) -> list[str] | None:
    """A ``kmallocwd run --json`` record as the text lines it stands for."""
    try:
        rec = json.loads(line)
    except ValueError:
        return None
    if not isinstance(rec, dict):
        return None
    stamp = ""
    if isinstance(rec.get("time"), (int, float)):
        stamp = f"[{float(rec['time']):12.6f}] "
    if rec.get("type") == "report" and isinstance(rec.get("info"), str):
        out = [stamp + rec["info"]]
        for t in rec.get("tasks") or []:
            if isinstance(t, dict) and isinstance(t.get("text"), str):
                out.append(stamp + t["text"])
        return out
    if rec.get("type") == "printk" and isinstance(rec.get("text"), str):
        return [stamp + rec["text"]]
    return []


def parse(text: str) -> ParsedLog:
    items: list[tuple[str, object]] = []
    events: list[Event] = []
    formats: set[str] = set()
    n_lines = recognised = 0
    pending = text.splitlines()
    queue: list[str] = []
    i = 0
    in_summary = False
    while queue or i < len(pending):
        if queue:
            line = queue.pop(0)
        else:
            line = pending[i]
            i += 1
            n_lines += 1
            if RUN_SUMMARY in line:
                in_summary = True
                continue
            if in_summary:
                if not STAMP.match(line.lstrip()):
                    continue
                in_summary = False
            if line.lstrip().startswith("{"):
                expanded = _json_lines(line.strip())
                if expanded is not None:
                    if expanded:
                        formats.add("json")
                    queue.extend(expanded)
                    continue
        hit = _one(line, items, events, formats)
        recognised += hit
    order, reports, orphans = _group(items)
    return ParsedLog(reports, events, n_lines, recognised, order, sorted(formats), orphans)


def _one(line: str, items: list, events: list[Event], formats: set[str]) -> int:
    m = INFO_V3.search(line)
    if m:
        formats.add("v3")
        items.append(("info", _Info(_stamp(line, m.start()), int(m.group(1)), int(m.group(2)),
                                    int(m.group(3)), None, None, line[m.start():])))
        return 1
    m = INFO_KV.search(line)
    if m:
        kv = {k: int(v) for k, v, _ in KV.findall(m.group(1))}
        if "stalling" in kv:
            formats.add("later")
            items.append(("info", _Info(_stamp(line, m.start()), kv["stalling"],
                                        kv.get("dying", 0), kv.get("victim", 0),
                                        kv.get("exiting"), kv.get("oom_count"),
                                        line[m.start():])))
            return 1
    m = TASK.search(line)
    if m:
        items.append(("task", _task(line, m, _stamp(line, m.start()))))
        return 1
    body = _body(line)
    for kind, rx in (("oom-invoked", OOM_INVOKED), ("killed", KILLED),
                     ("warn_alloc", STALL_WARN), ("khungtaskd", HUNG), ("panic", PANIC)):
        m = rx.search(body)
        if m:
            pid = int(m.group(1)) if kind == "killed" else (
                int(m.group(2)) if kind == "khungtaskd" else None)
            comm = m.group(2) if kind == "killed" else "" if kind == "panic" else m.group(1)
            events.append(Event(kind, _stamp(line, len(line) - len(body)), comm.strip(), pid,
                                body[m.start():].strip()))
            return 1
    return 0


def _group(items: list[tuple[str, object]]) -> tuple[str, list[Report], int]:
    """Reports from the info and task lines, grouped both ways; the
    grouping whose reports agree better with their counts wins (ties: v3's,
    the MemAlloc-Info line first)."""
    first = _build(items, info_first=True)
    last = _build(items, info_first=False)
    if _score(last[0]) > _score(first[0]):
        return "info-last", last[0], last[1]
    return "info-first", first[0], first[1]


def _score(reports: list[Report]) -> int:
    return sum(1 for r in reports if r.lines and sum(x.stalling for x in r.lines) == r.stalling)


def _build(items: list[tuple[str, object]], info_first: bool) -> tuple[list[Report], int]:
    reports: list[Report] = []
    block: list[TaskLine] = []
    orphans = 0

    def new(info: _Info, lines: list[TaskLine]) -> Report:
        seen: set[int] = set()
        kept = []
        for x in lines:
            if x.pid not in seen:
                seen.add(x.pid)
                kept.append(x)
        stalling = sum(x.stalling for x in kept)
        t = info.time_ns if info.time_ns is not None else -1  # -1: no timestamp
        return Report(n=len(reports) + 1, time_ns=t, jiffies=0, expire=0,
                      stalling=info.stalling, dying=info.dying, victim=info.victim,
                      info=info.text, lines=kept, exiting=info.exiting,
                      oom_count=info.oom_count, partial=stalling < info.stalling)

    current: _Info | None = None
    for kind, obj in items:
        if kind == "task":
            block.append(obj)  # type: ignore[arg-type]
            continue
        info: _Info = obj  # type: ignore[assignment]
        if info_first:
            if current is not None:
                reports.append(new(current, block))
            else:
                orphans += len(block)
            current, block = info, []
        else:
            reports.append(new(info, block))
            block = []
    if info_first and current is not None:
        reports.append(new(current, block))
    else:
        orphans += len(block)
    return reports, orphans
