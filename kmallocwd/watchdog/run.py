"""One run of the emulated machine: boot it (tasks, the OOM killer's fates,
the kmallocwd thread), let it run, halt it, then the slot dump and the
summary."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import TextIO

from kmallocwd.watchdog.carith import LONG_MAX
from kmallocwd.watchdog.loop import Watchdog
from kmallocwd.watchdog.printk import Log
from kmallocwd.watchdog.scenario import Scenario
from kmallocwd.watchdog.summary import SlotState, Summary, classify, dump_slots
from kmallocwd.watchdog.system import System
from kmallocwd.watchdog.tasks import fate_schedule, make_tasks, oom_killer

JOIN_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class RunConfig:
    scenario: Scenario
    protocol: str = "v3"
    hz: int = 1000
    timeout_s: float | None = None  # None: the scenario's own
    duration_s: float | None = None  # None: until stopped
    seed: int = 1
    initial_jiffies: int | None = None  # None: the kernel's INITIAL_JIFFIES
    json: bool = False
    dump_slots: bool = False
    time_scale: float | None = None  # None: timeout / the scenario's timeout

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
        """The factor applied to the scenario's times: --time-scale if given,
        else timeout / the scenario's timeout (1 with --timeout 0)."""
        if self.time_scale is not None:
            return self.time_scale
        return self.timeout / self.scenario.timeout_s if self.timeout > 0 else 1.0


class Run:
    def __init__(self, cfg: RunConfig, out: TextIO) -> None:
        self.cfg = cfg
        self.scenario = cfg.scenario.scaled(cfg.scale)
        self.system = System(cfg.protocol, cfg.hz, self.scenario.tasks, self.scenario.zones,
                             cfg.initial_jiffies)
        self.tasks = make_tasks(self.system, self.scenario, cfg.seed)
        self.system.tasks = self.tasks
        self.log = Log(out, self.system.uptime_ns, cfg.json)
        tj = cfg.timeout_jiffies
        self.watchdog = Watchdog(self.system, tj, self.log) if tj else None
        self.killer = threading.Thread(target=oom_killer, name="oom-killer", daemon=True,
                                       args=(self.system, fate_schedule(self.system, self.tasks)))
        self.t_end_ns = 0

    def boot(self) -> None:
        cfg, sys_ = self.cfg, self.system
        self.log.record({
            "type": "boot", "scenario": self.scenario.name, "protocol": cfg.protocol,
            "hz": cfg.hz, "timeout_s": cfg.timeout, "timeout_jiffies": cfg.timeout_jiffies,
            "scale": cfg.scale, "initial_jiffies": int(sys_.clock.initial), "seed": cfg.seed,
            "tasks": [{"comm": t.comm, "pid": t.pid, "ppid": t.ppid, "gfp": f"0x{t.group.gfp:x}",
                       "order": t.group.order} for t in self.tasks],
        })
        for t in self.tasks:
            t.thread.start()
        self.killer.start()
        if self.watchdog is not None:
            self.watchdog.thread.start()

    def wait(self, poll: float = 0.2) -> None:
        """Until --duration is over or the machine halts (a thread failed).
        KeyboardInterrupt (Ctrl-C, SIGTERM) propagates; halt() after it."""
        sys_ = self.system
        deadline = None
        if self.cfg.duration_s is not None:
            deadline = sys_.t0_ns + int(self.cfg.duration_s * 1e9)
        while not sys_.halted.is_set():
            left = poll if deadline is None else (deadline - sys_.now_ns()) / 1e9
            if left <= 0:
                break
            time.sleep(min(left, poll))

    def halt(self) -> None:
        self.system.halt()
        threads = [t.thread for t in self.tasks] + [self.killer]
        if self.watchdog is not None:
            threads.append(self.watchdog.thread)
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
        summary = Summary(
            scenario=self.scenario.name, tasks=len(self.tasks), protocol=cfg.protocol,
            hz=cfg.hz, timeout_s=cfg.timeout, timeout_jiffies=cfg.timeout_jiffies,
            elapsed_s=(self.t_end_ns - sys_.t0_ns) / 1e9, interrupted=interrupted,
            reports=reports,
            verdicts=classify(reports, self.tasks, final, now, cfg.timeout_jiffies),
            reader=self.watchdog.stats if self.watchdog else None,
            scans=self.watchdog.scans if self.watchdog else 0,
        )
        if record:
            self.log.record(summary.to_json())
        return summary

    @property
    def errors(self) -> list[BaseException]:
        return self.system.errors
