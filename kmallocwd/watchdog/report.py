"""What one watchdog report contained, as records: for the JSON Lines
output and for the end-of-run summary (the printed lines stay the patch's)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from kmallocwd.watchdog.printk import seconds


@dataclass
class TaskLine:
    """One ``MemAlloc: %s(%u)%s%s%s%s%s`` line."""

    time_ns: int
    comm: str
    pid: int
    stalling: bool
    seq: int | None  # sequence >> 1, stalling tasks only
    gfp: int | None
    order: int | None
    delay: int | None  # jiffies since memalloc.start
    uninterruptible: bool
    exiting: bool
    dying: bool
    victim: bool
    torn: bool  # the snapshot printed was torn (exact witness check)
    counted_stalling: bool  # what the counting pass said about this task
    text: str
    # the later revisions' fields (None in v3's lines)
    flags: int | None = None
    switches: int | None = None

    def to_json(self) -> dict:
        d = asdict(self)
        d["time"] = seconds(d.pop("time_ns"))
        d["gfp"] = None if self.gfp is None else f"0x{self.gfp:x}"
        return d


@dataclass
class Trace:
    """One emulated sched_show_task()."""

    time_ns: int
    comm: str
    pid: int
    why: str  # "dying" or "stalling"
    header: str
    frames: list[str]
    held_locks: list[str] = field(default_factory=list)  # debug_show_held_locks()'s lines
    workqueue: str = ""  # print_worker_info()'s line, for a kworker

    def to_json(self) -> dict:
        d = asdict(self)
        d["time"] = seconds(d.pop("time_ns"))
        return d


@dataclass
class Report:
    n: int  # 1 for the run's first report
    time_ns: int  # of the MemAlloc-Info line
    jiffies: int  # now
    expire: int
    stalling: int
    dying: int
    victim: int
    info: str
    lines: list[TaskLine] = field(default_factory=list)
    traces: list[Trace] = field(default_factory=list)
    show_mem: dict = field(default_factory=dict)
    # Tasks whose is_stalling_task() verdict changed between the counting
    # pass and the printing pass (the patch reads twice; so does the kernel).
    raced: int = 0
    # the later revisions' MemAlloc-Info fields (None in v3's line)
    exiting: int | None = None
    oom_count: int | None = None
    # read from a log whose task lines for this report are (partly) missing
    partial: bool = False

    def to_json(self) -> dict:
        return {
            "type": "report",
            "n": self.n,
            "time": seconds(self.time_ns),
            "jiffies": self.jiffies,
            "stalling": self.stalling,
            "dying": self.dying,
            "victim": self.victim,
            "info": self.info,
            "tasks": [t.to_json() for t in self.lines],
            "traces": [t.to_json() for t in self.traces],
            "show_mem": self.show_mem,
            "raced": self.raced,
        }
