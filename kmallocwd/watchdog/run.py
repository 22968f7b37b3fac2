"""One run of the emulated machine: boot it (the workload's tasks, kswapd,
the kmallocwd thread, the comparison detectors), let it run, halt it, then
the slot dump and the summary with its classification."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TextIO

from kmallocwd.watchdog.carith import LONG_MAX
from kmallocwd.watchdog.classify import classify_reports
from kmallocwd.watchdog.detectors import Detectors
from kmallocwd.watchdog.loop import Watchdog
from kmallocwd.watchdog.printk import Log, seconds
from kmallocwd.watchdog.summary import SlotState, Summary, classify, dump_slots
from kmallocwd.watchdog.system import System
from kmallocwd.watchdog.tasks import make_tasks
from kmallocwd.watchdog.workload import Workload

JOIN_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class RunConfig:
    scenario: Workload
    protocol: str = "v3"
    hz: int = 1000
    timeout_s: float | None = None  # None: the scenario's own
    duration_s: float | None = None  # None: until stopped
    seed: int = 1
    initial_jiffies: int | None = None  # None: the kernel's INITIAL_JIFFIES
    json: bool = False
    dump_slots: bool = False
    time_scale: float | None = None  # None: 1 (the workload's own pace, whatever the timeout)
    detectors: tuple[str, ...] = ()  # of "khungtaskd", "warn_alloc", "psi"
    hung_task_timeout_s: float = 120.0  # /proc/sys/kernel/hung_task_timeout_secs
    warn_alloc_s: float = 10.0  # 4.9's stall_timeout step (10 * HZ)

    @property
    def timeout(self) -> float:
        return self.scenario.timeout_s if self.timeout_s is None else self.timeout_s

    @property
    def timeout_jiffies(self) -> int:
        """kmallocwd_config(): ``min(timeout * HZ, LONG_MAX)``; 0 disables.
        A fraction of a second (tests, demos) rounds to at least 1 jiffy."""
        if self.timeout <= 0:
            return 0
        return max(1, min(round(self.timeout * self.hz), LONG_MAX))

    @property
    def scale(self) -> float:
        """--time-scale, 1 by default: the machine's jiffies and timestamps
        are the workload's own time (every wait, rate and CPU time of the
        model) times it.  The watchdog's timeout does not change the
        workload."""
        return 1.0 if self.time_scale is None else self.time_scale


class Run:
    def __init__(self, cfg: RunConfig, out: TextIO) -> None:
        self.cfg = cfg
        self.scenario = cfg.scenario  # run on its own time; the scale maps it to jiffies
        self.system = System(cfg.protocol, cfg.hz, self.scenario.tasks, self.scenario.memory,
                             cfg.initial_jiffies, cfg.scale)
        self.tasks = make_tasks(self.system, self.scenario, cfg.seed)
        self.system.tasks = self.tasks
        self.log = Log(out, self.system.uptime_ns, cfg.json)
        self.system.set_printk(self.printk)
        tj = cfg.timeout_jiffies
        self.watchdog = Watchdog(self.system, tj, self.log) if tj else None
        self.detectors = (Detectors(self.system, cfg.detectors, cfg.hung_task_timeout_s,
                                    cfg.warn_alloc_s) if cfg.detectors else None)
        self.system.detectors = self.detectors
        self.t_end_ns = 0

    def printk(self, text: str) -> int:
        """The OOM killer's and the detectors' dmesg lines: text lines, or
        ``printk`` records in JSON Lines (the watchdog's own lines are in its
        ``report`` records)."""
        ns = self.log.printk(text)
        if self.cfg.json:
            self.log.record({"type": "printk", "time": seconds(ns), "text": text})
        return ns

    def boot(self) -> None:
        cfg, sys_ = self.cfg, self.system
        self.log.record({
            "type": "boot", "scenario": self.scenario.name, "protocol": cfg.protocol,
            "hz": cfg.hz, "timeout_s": cfg.timeout, "timeout_jiffies": cfg.timeout_jiffies,
            "scale": cfg.scale, "initial_jiffies": int(sys_.clock.initial), "seed": cfg.seed,
            "detectors": list(cfg.detectors),
            "tasks": [{"comm": t.comm, "pid": t.pid, "tgid": t.tgid, "ppid": t.ppid,
                       "gfp": f"0x{t.spec.gfp:x}", "order": t.spec.order, "use": t.spec.use,
                       "locks": list(t.spec.locks)} for t in self.tasks],
        })
        sys_ = self.system
        sys_.vclock.boot()  # this thread has the CPU until it waits in wait()
        for t in self.tasks:
            sys_.start(t.thread)
        if self.watchdog is not None:
            sys_.start(self.watchdog.thread)
        if self.detectors is not None:
            sys_.start(self.detectors.thread)

    def wait(self) -> None:
        """Until --duration is over on the machine's clock, or the machine
        halts (a thread failed).  KeyboardInterrupt (Ctrl-C, SIGTERM)
        propagates; halt() after it."""
        sys_ = self.system
        deadline = None
        if self.cfg.duration_s is not None:
            deadline = sys_.t0_ns + int(self.cfg.duration_s * 1e9)
        while not sys_.halted.is_set():
            left = None if deadline is None else (deadline - sys_.now_ns()) / 1e9
            if left is not None and left <= 0:
                break
            sys_.sleep(left)

    def halt(self) -> None:
        self.system.halt()
        threads = [t.thread for t in self.tasks]
        if self.watchdog is not None:
            threads.append(self.watchdog.thread)
        if self.detectors is not None:
            threads.append(self.detectors.thread)
        end = time.monotonic() + JOIN_TIMEOUT_S
        for th in threads:
            if th.is_alive():
                th.join(max(0.0, end - time.monotonic()))
        self.t_end_ns = self.system.now_ns()
        self.log.flush()

    def finish(self, interrupted: str | None = None, record: bool = True) -> Summary:
        """Halt, then the slot dump (--dump-slots) and the summary records
        (``record=False``: the caller writes the summary record, with its
        exit status)."""
        self.halt()
        cfg, sys_ = self.cfg, self.system
        now = sys_.jiffies()
        final = {t.pid: SlotState.read(t) for t in self.tasks if not t.exited}
        if cfg.dump_slots:
            lines, rec = dump_slots(self.tasks, final, now)
            self.log.text(lines)
            self.log.record(rec)
        reports = self.watchdog.reports if self.watchdog else []
        elapsed = (self.t_end_ns - sys_.t0_ns) / 1e9
        verdicts = classify(reports, self.tasks, final, now, cfg.timeout_jiffies)
        summary = Summary(
            scenario=self.scenario.name, tasks=len(self.tasks), protocol=cfg.protocol,
            hz=cfg.hz, timeout_s=cfg.timeout, timeout_jiffies=cfg.timeout_jiffies,
            elapsed_s=elapsed, interrupted=interrupted,
            reports=reports,
            verdicts=verdicts,
            reader=self.watchdog.stats if self.watchdog else None,
            scans=self.watchdog.scans if self.watchdog else 0,
            classification=classify_reports(reports, verdicts) if self.watchdog else None,
            detectors=self.detectors.summary(elapsed) if self.detectors else None,
            oom_kills=[(round(ns / 1e9, 3), comm, pid) for ns, comm, pid in sys_.oom_victims],
            memory=sys_.memory.show_mem()[1],
            panic=None if sys_.panicked is None else (seconds(sys_.panicked[0]),
                                                      sys_.panicked[1]),
        )
        if record:
            self.log.record(summary.to_json())
        return summary

    @property
    def errors(self) -> list[BaseException]:
        return self.system.errors
