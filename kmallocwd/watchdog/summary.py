"""The end-of-run summary (of a run, or of a console log read by
``kmallocwd classify``), and the slot dump.

The per-task verdicts (which stalling task made progress) are
kmallocwd.watchdog.progress's; the classification, kmallocwd.watchdog.classify's.
The patch's own lines are never changed; this is printed after them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

from kmallocwd import protocols
from kmallocwd.watchdog.carith import ulong
from kmallocwd.watchdog.classify import Classification
from kmallocwd.watchdog.progress import (CLASSES, NO_PROGRESS, PROGRESS, UNDECIDED, Verdict,
                                         per_task)
from kmallocwd.watchdog.printk import seconds
from kmallocwd.watchdog.report import Report

if TYPE_CHECKING:
    from kmallocwd.watchdog.loop import ReaderStats
    from kmallocwd.watchdog.tasks import Task

__all__ = ["CLASSES", "NO_PROGRESS", "PROGRESS", "UNDECIDED", "SlotState", "Summary", "Verdict",
           "classify", "dump_slots"]

@dataclass(frozen=True)
class SlotState:
    """A slot read after the run stopped (no writer left)."""

    valid: int
    seq: int  # sequence >> 1
    start: int
    gfp: int
    order: int
    dumped: int

    @classmethod
    def read(cls, p: "Task") -> "SlotState":
        m = p.m
        return cls(int(m.valid), int(m.sequence) >> 1, int(m.start), int(m.gfp), int(m.order),
                   int(m.dumped))


def classify(reports: list[Report], tasks: "list[Task]", final: dict[int, SlotState],
             now: int, timeout: int) -> list[Verdict]:
    """One verdict per task reported as stalling at least once, in a run:
    ``final`` is each live task's slot after the run (by pid), ``now`` the
    jiffies then."""
    gone = frozenset(t.pid for t in tasks if t.exited)
    return per_task(reports, final, now, timeout, gone)


@dataclass
class Summary:
    scenario: str
    tasks: int
    protocol: str
    hz: int
    timeout_s: float
    timeout_jiffies: int
    elapsed_s: float
    interrupted: str | None  # the signal's name ("SIGINT", "SIGTERM", "SIGHUP", ...) or None
    reports: list[Report]
    verdicts: list[Verdict]
    reader: "ReaderStats | None"  # None: the watchdog was disabled (--timeout 0)
    scans: int
    classification: Classification | None = None  # None: the watchdog was disabled
    detectors: dict | None = None  # Detectors.summary(), with --detectors
    oom_kills: list = field(default_factory=list)  # (seconds, comm, pid) of TIF_MEMDIE marks
    memory: dict | None = None  # show_mem() at the end
    # kmallocwd classify: the log read (None for a run), and what else it said
    source: str | None = None
    panic: tuple[float, str] | None = None  # (seconds, message): the machine panicked and stopped
    log: dict | None = None  # lines, recognised, formats, order, orphans, events

    @property
    def raced(self) -> int:
        return sum(r.raced for r in self.reports)

    def lines(self) -> list[str]:
        wd = (f"timeout {self.timeout_s:g} s = {self.timeout_jiffies} jiffies"
              if self.timeout_jiffies else "watchdog disabled (--timeout 0)")
        how = f", interrupted by {self.interrupted}" if self.interrupted else ""
        if self.source is not None:
            out = ["", "==== kmallocwd classify summary ===="] + self._log_header()
        else:
            out = ["", "==== kmallocwd run summary ====",
                   f"scenario {self.scenario} ({self.tasks} tasks), protocol {self.protocol}, "
                   f"HZ={self.hz}, {wd}; ran {self.elapsed_s:.1f} s{how}"]
        if not self.reports:
            out.append("reports: none (no MemAlloc-Info line in the log)" if self.source is not None
                       else "reports: none (no task's allocation stalled for a timeout)"
                       if self.timeout_jiffies else "reports: none (watchdog disabled)")
        else:
            out.append(f"reports: {len(self.reports)}")
            n = len(self.reports)
            for i, r in enumerate(self.reports):
                if n > 6 and 3 <= i < n - 2:  # first three, last two
                    if i == 3:
                        out.append(f"  ... {n - 5} more")
                    continue
                exiting = "" if r.exiting is None else f", {r.exiting} exiting"
                oom = "" if r.oom_count is None else f", oom_count={r.oom_count}"
                cut = f" ({len(r.lines)} task lines in the log)" if r.partial else ""
                at = f"at {r.time_ns / 1e9:.3f} s" if r.time_ns >= 0 else "(no timestamp)"
                out.append(f"  report {r.n} {at}: {r.stalling} stalling, "
                           f"{r.dying} dying{exiting}, {r.victim} victim task{oom}{cut}")
            out.append(trends(self.reports))
        if self.reports:
            out.append("stalling tasks, seq compared between reports:")
            for cls in CLASSES:
                vs = [v for v in self.verdicts if v.verdict == cls]
                out.append(f"  {cls} ({len(vs)}){':' if vs else ': none'}")
                out.extend(f"    {v.who:<24} {v.detail}" for v in vs)
        if self.reader is not None:
            r = self.reader
            sound = protocols.get(self.protocol).sound
            note = ("a sound protocol: none may be torn" if sound
                    else "not sound: a few may be torn under load")
            out.append(f"watchdog: {self.scans} passes of its first loop; its reader "
                       f"({self.protocol}, {note}): {r.accepted} snapshots "
                       f"accepted, {r.torn} of them torn; rejected: {r.rejected_odd} odd "
                       f"sequence, {r.rejected_invalid} not allocating")
            out.append(f"count/print races: {self.raced} (a stalling verdict that changed "
                       "between the counting and the printing pass)")
        if self.classification is not None:
            tent = " (tentative)" if self.classification.tentative else ""
            out.append(f"classification: {self.classification.value}{tent}")
            out.append(f"  evidence: {self.classification.evidence}")
        if self.panic is not None:
            out.append(f"panic at {self.panic[0]:.3f} s: 'Kernel panic - not syncing: "
                       f"{self.panic[1]}'; the machine stopped there")
        if self.source is not None:
            out.extend(log_event_lines(self.log or {}))
        elif self.oom_kills:
            marks = ", ".join(f"{c}({p}) at {t:.3f} s" for t, c, p in self.oom_kills[:5])
            more = f" and {len(self.oom_kills) - 5} more" if len(self.oom_kills) > 5 else ""
            out.append(f"OOM killer (the emulator's view, not from the reports): TIF_MEMDIE "
                       f"given to {marks}{more}")
        else:
            out.append("OOM killer (the emulator's view, not from the reports): never chose a "
                       "victim")
        if self.detectors is not None:
            out.extend(detector_lines(self.detectors, self.reports))
        return out

    def to_json(self) -> dict:
        return {
            "type": "summary",
            "scenario": self.scenario,
            "tasks": self.tasks,
            "protocol": self.protocol,
            "hz": self.hz,
            "timeout_s": self.timeout_s,
            "timeout_jiffies": self.timeout_jiffies,
            "elapsed_s": round(self.elapsed_s, 3),
            "interrupted": self.interrupted,
            "reports": [{"n": r.n, "time": seconds(r.time_ns) if r.time_ns >= 0 else None,
                         "stalling": r.stalling, "dying": r.dying, "victim": r.victim,
                         "raced": r.raced, "exiting": r.exiting, "oom_count": r.oom_count,
                         "partial": r.partial}
                        for r in self.reports],
            "progress": {cls: [asdict(v) for v in self.verdicts if v.verdict == cls]
                         for cls in CLASSES},
            "reader": None if self.reader is None else self.reader.to_dict(),
            "raced": self.raced,
            "classification": None if self.classification is None else self.classification.value,
            "evidence": None if self.classification is None else self.classification.evidence,
            "tentative": None if self.classification is None else self.classification.tentative,
            "oom_victims": [{"time": t, "comm": c, "pid": p} for t, c, p in self.oom_kills],
            "detectors": self.detectors,
            "memory": self.memory,
            "source": self.source,
            "panic": None if self.panic is None else {"time": self.panic[0],
                                                      "message": self.panic[1]},
            "log": self.log,
        }

    def _log_header(self) -> list[str]:
        lg = self.log or {}
        formats = ", ".join(lg.get("formats") or []) or "none recognised"
        orphans = (f"; {lg['orphans']} task line(s) before the first report ignored"
                   if lg.get("orphans") else "")
        return [f"log {self.source}: {lg.get('lines', 0)} lines, {lg.get('recognised', 0)} "
                f"recognised (formats: {formats}; MemAlloc-Info line "
                f"{'after' if lg.get('order') == 'info-last' else 'before'} its task lines), "
                f"spanning {self.elapsed_s:.1f} s, {self.tasks} task(s) listed{orphans}"]


def trends(reports: list[Report]) -> str:
    """The counts (and oom_count) from the first report to the last."""
    def chain(values: list[int]) -> str:
        if len(values) <= 6:
            return " -> ".join(str(v) for v in values)
        return (" -> ".join(str(v) for v in values[:3]) + " -> ... -> "
                + " -> ".join(str(v) for v in values[-2:]))
    parts = [f"stalling {chain([r.stalling for r in reports])}",
             f"dying {chain([r.dying for r in reports])}",
             f"victim {chain([r.victim for r in reports])}"]
    ooms = [r.oom_count for r in reports if r.oom_count is not None]
    if ooms:
        parts.append(f"oom_count {chain(ooms)}")
    return "trends over the reports: " + "; ".join(parts)


def log_event_lines(lg: dict) -> list[str]:
    """What the log's other lines said: the OOM killer, warn_alloc, khungtaskd."""
    ev = lg.get("events") or {}
    out = []
    inv, killed = ev.get("oom-invoked", []), ev.get("killed", [])
    if inv or killed:
        who = ", ".join(f"{k['comm']}({k['pid']})" + (f" at {k['time']:.3f} s"
                                                      if k["time"] is not None else "")
                        for k in killed[:5])
        more = f" and {len(killed) - 5} more" if len(killed) > 5 else ""
        out.append(f"OOM killer (from the log): invoked {len(inv)} time(s); killed "
                   f"{len(killed)} process(es){': ' + who + more if killed else ''}")
    else:
        out.append("OOM killer (from the log): no 'invoked oom-killer' or 'Killed process' line")
    for kind, what in (("warn_alloc", "'page allocation stalls for' (4.9's warn_alloc)"),
                       ("khungtaskd", "'blocked for more than' (khungtaskd)")):
        xs = ev.get(kind, [])
        if xs:
            t = xs[0]["time"]
            at = f" at {t:.3f} s" if t is not None else ""
            out.append(f"  {what}: {len(xs)} line(s), first{at}: {xs[0]['text']}")
        else:
            out.append(f"  {what}: none")
    return out


def detector_lines(d: dict, reports: list[Report]) -> list[str]:
    """Which comparison detector fired, and when, next to kmallocwd's first report."""
    first = f"{reports[0].time_ns / 1e9:.3f} s" if reports else "never"
    out = [f"detectors (kmallocwd's first report: {first}):"]
    for name in d["enabled"]:
        f = d["fired"][name]
        if name == "psi":
            ps = d["psi"]
            avg = ps["avg"]
            state = (f"trigger 'some 150ms/1s' first fired at {f['first']:.3f} s, {f['count']} "
                     "time(s)" if f["count"] else "trigger 'some 150ms/1s' never fired")
            out.append(f"  psi: {state}; memory some avg10={avg['some']['avg10']:.2f} "
                       f"avg60={avg['some']['avg60']:.2f} avg300={avg['some']['avg300']:.2f}, "
                       f"full avg10={avg['full']['avg10']:.2f} avg60={avg['full']['avg60']:.2f} "
                       f"avg300={avg['full']['avg300']:.2f} at the end; stalled "
                       f"{ps['some_pct']:.0f}% (some) / {ps['full_pct']:.0f}% (full) of the run, "
                       f"per CPU over {ps.get('cpus', 1)} CPU(s)")
            continue
        what = {"khungtaskd": f"hung_task_timeout_secs={d['hung_task_timeout_s']:g}",
                "warn_alloc": f"stall_timeout={d['warn_alloc_stall_s']:g} s"}[name]
        if f["count"]:
            out.append(f"  {name} ({what}): fired {f['count']} time(s), first at "
                       f"{f['first']:.3f} s: {f['first_text']}")
        else:
            out.append(f"  {name} ({what}): silent")
    return out


# ---- the slot dump (--dump-slots) ----


def dump_slots(tasks: "list[Task]", final: dict[int, SlotState], now: int
               ) -> tuple[list[str], dict]:
    """The slots as a vmcore would keep them: every live task's last
    request, whether or not the watchdog ran."""
    lines = [f"slot dump (what a vmcore keeps of each task's last request), jiffies={now}:",
             f"  {'task':<24} {'valid':>5} {'seq':>7} {'gfp':>10} {'order':>5} "
             f"{'start':>20} {'age':>12} {'dumped':>6}"]
    rows = []
    for p in tasks:
        s = final.get(p.pid)
        if s is None:
            continue
        age = ulong(now - s.start) if s.seq else 0
        lines.append(f"  {f'{p.comm}({p.pid})':<24} {s.valid:>5} {s.seq:>7} {f'0x{s.gfp:x}':>10} "
                     f"{s.order:>5} {s.start:>20} {age:>12} {s.dumped:>6}")
        rows.append({"comm": p.comm, "pid": p.pid, "valid": s.valid, "seq": s.seq,
                     "gfp": f"0x{s.gfp:x}", "order": s.order, "start": s.start, "age": age,
                     "dumped": s.dumped})
    return lines, {"type": "slots", "jiffies": now, "slots": rows}
