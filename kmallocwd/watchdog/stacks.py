"""sched_show_task(), emulated: a task's header line as Linux 4.4 prints it,
then its worker thread's Python stack (from ``sys._current_frames()``), the
innermost call first, as a kernel "Call Trace:" lists it.

debug_show_held_locks() is sched.debug_show_held_locks(), lockdep's lines.
"""

from __future__ import annotations

import os
import sys
import threading
import traceback
from dataclasses import dataclass

from kmallocwd.watchdog.sched import TASK_RUNNING, state_char
from kmallocwd.watchdog.tasks import Task

# arch/x86/include/asm/thread_info.h (4.4): the bits the header shows.
TIF_SIGPENDING = 1 << 2
TIF_MEMDIE = 1 << 20

_THREADING = os.path.normcase(threading.__file__)


@dataclass(frozen=True)
class Frame:
    function: str
    file: str
    line: int

    def text(self) -> str:
        return f" [<{os.path.basename(self.file)}:{self.line}>] {self.function}"


def task_frames(p: Task) -> tuple[list[Frame], int]:
    """The task's stack, innermost first, without the threading module's
    frames; and an address standing for thread_saved_pc() (the innermost
    frame object's id)."""
    ident = p.thread.ident
    frame = sys._current_frames().get(ident) if ident is not None else None
    if frame is None:
        return [], 0
    summary = traceback.extract_stack(frame)
    frames = [Frame(f.name, f.filename, f.lineno or 0) for f in reversed(summary)
              if os.path.normcase(f.filename) != _THREADING]
    return frames, id(frame)


def header(p: Task, pc: int) -> str:
    """kernel/sched/core.c sched_show_task()'s first line (64-bit):
    ``"%-15.15s %c"``, then ``"  running task    "`` or ``" %016lx "``,
    then ``"%5lu %5d %6d 0x%08lx"`` (free stack, pid, ppid, TIF flags)."""
    state = p.state
    flags = (TIF_SIGPENDING if p.sigkill else 0) | (TIF_MEMDIE if p.memdie else 0)
    mid = "  running task    " if state == TASK_RUNNING else f" {pc & (2**64 - 1):016x} "
    return f"{p.comm:<15.15} {state_char(state)}{mid}{0:5d} {p.pid:5d} {p.ppid:6d} 0x{flags:08x}"


def print_worker_info(p: Task) -> str | None:
    """kernel/workqueue.c print_worker_info(): a kworker's work item,
    printed between the header and the stack ("Workqueue: %s %pf")."""
    wq = p.spec.workqueue
    return f"Workqueue: {wq}" if wq else None


def sched_show_task(p: Task) -> tuple[str, list[Frame]]:
    """The header line and the frames; the caller prints print_worker_info()'s
    line, if any, then "Call Trace:"."""
    frames, pc = task_frames(p)
    return header(p, pc), frames
