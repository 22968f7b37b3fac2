"""The end-of-run summary, and the slot dump.

The seed's documentation says to compare each reported task's seq between
reports to tell a livelock from a slow system.  The summary does it: every
task reported as stalling is classed as

- made progress: its seq grew between two reports, or the reported request
  finished after its last report (its slot, read after the run, has moved on);
- no progress: the same request (same seq) in two or more reports, or still
  pending at the end of the run after two timeouts or more (livelock?);
- cannot tell yet: reported once, and the run ended before a second look.

The seed's own lines are never changed; this is printed after them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from kmallocwd import protocols
from kmallocwd.watchdog.carith import ulong
from kmallocwd.watchdog.classify import Classification
from kmallocwd.watchdog.loop import ReaderStats
from kmallocwd.watchdog.printk import seconds
from kmallocwd.watchdog.report import Report
from kmallocwd.watchdog.tasks import Task

PROGRESS = "made progress"
NO_PROGRESS = "no progress"
UNDECIDED = "cannot tell yet"
CLASSES = (PROGRESS, NO_PROGRESS, UNDECIDED)


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
    def read(cls, p: Task) -> "SlotState":
        m = p.m
        return cls(int(m.valid), int(m.sequence) >> 1, int(m.start), int(m.gfp), int(m.order),
                   int(m.dumped))


@dataclass(frozen=True)
class Verdict:
    comm: str
    pid: int
    verdict: str
    seqs: tuple[int, ...]  # the seq of each report that listed it as stalling
    reports: tuple[int, ...]
    detail: str

    @property
    def who(self) -> str:
        return f"{self.comm}({self.pid})"


def classify(reports: list[Report], tasks: list[Task], final: dict[int, SlotState],
             now: int, timeout: int) -> list[Verdict]:
    """One verdict per task reported as stalling at least once.  ``final``:
    each live task's slot after the run (by pid); ``now``: jiffies then."""
    seen: dict[int, list[tuple[int, int]]] = {}
    comm: dict[int, str] = {}
    for r in reports:
        for t in r.lines:
            if t.stalling and t.seq is not None:
                seen.setdefault(t.pid, []).append((r.n, t.seq))
                comm[t.pid] = t.comm
    by_pid = {t.pid: t for t in tasks}
    out = []
    for pid, hist in seen.items():
        ns = tuple(n for n, _ in hist)
        seqs = tuple(s for _, s in hist)
        chain = " -> ".join(str(s) for s in seqs)
        task = by_pid.get(pid)
        end = final.get(pid)
        if any(b != a for a, b in zip(seqs, seqs[1:])):
            v, detail = PROGRESS, f"seq {chain} over reports {_span(ns)}"
        elif end is None:
            gone = "exited" if task is not None and task.exited else "gone"
            v, detail = UNDECIDED, f"seq {seqs[-1]} in {_n(ns)}; {gone} before the end"
        elif not end.valid or end.seq != seqs[-1]:
            after = "finished" if end.seq == seqs[-1] else f"finished; seq {end.seq} at the end"
            v, detail = PROGRESS, f"seq {chain}; that request {after}"
        else:
            age = ulong(now - end.start)
            pending = f"still pending at the end, {age} jiffies"
            if len(seqs) >= 2 or age >= 2 * timeout:
                v, detail = NO_PROGRESS, f"seq {seqs[-1]} in {_n(ns)}; {pending}"
            else:
                v, detail = UNDECIDED, f"seq {seqs[-1]} in {_n(ns)}; {pending}"
        out.append(Verdict(comm[pid], pid, v, seqs, ns, detail))
    out.sort(key=lambda x: (CLASSES.index(x.verdict), x.pid))
    return out


def _n(ns: tuple[int, ...]) -> str:
    return f"report {ns[0]}" if len(ns) == 1 else f"reports {_span(ns)}"


def _span(ns: tuple[int, ...]) -> str:
    return ",".join(str(n) for n in ns)


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
    reader: ReaderStats | None  # None: the watchdog was disabled (--timeout 0)
    scans: int
    classification: Classification | None = None  # None: the watchdog was disabled
    detectors: dict | None = None  # Detectors.summary(), with --detectors
    oom_kills: list = field(default_factory=list)  # (seconds, comm, pid) of TIF_MEMDIE marks
    memory: dict | None = None  # show_mem() at the end

    @property
    def raced(self) -> int:
        return sum(r.raced for r in self.reports)

    def lines(self) -> list[str]:
        wd = (f"timeout {self.timeout_s:g} s = {self.timeout_jiffies} jiffies"
              if self.timeout_jiffies else "watchdog disabled (--timeout 0)")
        how = f", interrupted by {self.interrupted}" if self.interrupted else ""
        out = ["", "==== kmallocwd run summary ====",
               f"scenario {self.scenario} ({self.tasks} tasks), protocol {self.protocol}, "
               f"HZ={self.hz}, {wd}; ran {self.elapsed_s:.1f} s{how}"]
        if not self.reports:
            out.append("reports: none (no task's allocation stalled for a timeout)"
                       if self.timeout_jiffies else "reports: none (watchdog disabled)")
        else:
            out.append(f"reports: {len(self.reports)}")
            n = len(self.reports)
            for i, r in enumerate(self.reports):
                if n > 6 and 3 <= i < n - 2:  # first three, last two
                    if i == 3:
                        out.append(f"  ... {n - 5} more")
                    continue
                out.append(f"  report {r.n} at {r.time_ns / 1e9:.3f} s: {r.stalling} stalling, "
                           f"{r.dying} dying, {r.victim} victim task")
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
            out.append(f"classification: {self.classification.value}")
            out.append(f"  evidence: {self.classification.evidence}")
        if self.oom_kills:
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
            "reports": [{"n": r.n, "time": seconds(r.time_ns), "stalling": r.stalling,
                         "dying": r.dying, "victim": r.victim, "raced": r.raced}
                        for r in self.reports],
            "progress": {cls: [asdict(v) for v in self.verdicts if v.verdict == cls]
                         for cls in CLASSES},
            "reader": None if self.reader is None else self.reader.to_dict(),
            "raced": self.raced,
            "classification": None if self.classification is None else self.classification.value,
            "evidence": None if self.classification is None else self.classification.evidence,
            "oom_victims": [{"time": t, "comm": c, "pid": p} for t, c, p in self.oom_kills],
            "detectors": self.detectors,
            "memory": self.memory,
        }


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
                       f"{ps['some_pct']:.0f}% (some) / {ps['full_pct']:.0f}% (full) of the run")
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


def dump_slots(tasks: list[Task], final: dict[int, SlotState], now: int) -> tuple[list[str], dict]:
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
