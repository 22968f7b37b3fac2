"""printk(), emulated: every line the watchdog prints gets a kernel-style
timestamp, ``[%5lu.%06lu] `` = seconds.microseconds since the emulated boot,
and goes to the log (stdout or ``--log FILE``) as it is printed, like dmesg.
With ``--json`` the log gets one JSON object per line instead (JSON Lines):
each report as a whole once it is complete, and the run's other records."""

from __future__ import annotations

import json
import threading
from typing import Callable, TextIO


def stamp(ns: int) -> str:
    """The kernel's printk time prefix for ``ns`` nanoseconds since boot."""
    sec, rem = divmod(max(ns, 0), 1_000_000_000)
    return f"[{sec:5d}.{rem // 1000:06d}] "


def seconds(ns: int) -> float:
    return round(ns / 1e9, 6)


class Log:
    """The run's log: text lines (dmesg-like) or JSON Lines."""

    def __init__(self, out: TextIO, clock_ns: Callable[[], int], json_lines: bool) -> None:
        self.out = out
        self.clock_ns = clock_ns
        self.json = json_lines
        self.lock = threading.Lock()

    def printk(self, text: str) -> int:
        """Print one line (text mode); returns its timestamp in ns."""
        ns = self.clock_ns()
        if not self.json:
            with self.lock:
                self.out.write(stamp(ns) + text + "\n")
        return ns

    def record(self, obj: dict) -> None:
        """Write one JSON Lines record (JSON mode only)."""
        if self.json:
            with self.lock:
                self.out.write(json.dumps(obj, separators=(",", ":")) + "\n")
                self.out.flush()

    def text(self, lines: list[str]) -> None:
        """Write lines without timestamps (text mode only): the summary."""
        if not self.json:
            with self.lock:
                self.out.write("".join(line + "\n" for line in lines))
                self.out.flush()

    def flush(self) -> None:
        with self.lock:
            self.out.flush()
