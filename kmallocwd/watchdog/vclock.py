"""The emulated machine's logical clock.

Time advances by the model's own events, not by the host's: while any
thread of the machine can run, the clock stands still; when every one of
them sleeps, it jumps to the earliest timeout and wakes whoever set it.
The CPU time the model charges (a reclaim pass, cond_resched()) is a timed
sleep like any other, and the host's own overhead (Python, the GIL, a busy
machine) costs no emulated time at all.  So ``--time-scale`` scales every
wait exactly, and a run's outcome does not depend on how fast the host is.

``VEvent`` has ``threading.Event``'s interface, with timeouts in emulated
seconds.  A thread of the machine is counted as runnable from ``enter()``
(called by whoever starts it, before it starts) until ``leave()``; a thread
that never entered (a test's helper thread) is still counted while it
sleeps, so the clock never waits for it.
"""

from __future__ import annotations

import heapq
import itertools
import threading


class _Waiter:
    __slots__ = ("done", "by_set", "ev")

    def __init__(self) -> None:
        self.done = False  # woken (by set() or its timeout); counted runnable again
        self.by_set = False
        self.ev = threading.Event()  # the host-side wake-up


class VirtualClock:
    def __init__(self) -> None:
        self.cond = threading.Lock()
        self.ns = 0  # emulated nanoseconds since boot
        self.running = 0  # threads of the machine that are not asleep
        self._heap: list[tuple[int, int, _Waiter]] = []
        self._seq = itertools.count()

    def now_ns(self) -> int:
        return self.ns

    def enter(self) -> None:
        """A thread joins the machine (call before it starts)."""
        with self.cond:
            self.running += 1

    def leave(self) -> None:
        """A thread leaves the machine (it returned)."""
        with self.cond:
            self.running -= 1
            self._advance()

    def _wake(self, w: _Waiter, by_set: bool) -> None:
        """Under the lock."""
        if not w.done:
            w.done, w.by_set = True, by_set
            self.running += 1
            w.ev.set()

    def _advance(self) -> None:
        """Under the lock: if nobody can run, jump to the earliest timeout
        and wake everyone whose timeout it is."""
        while self.running <= 0 and self._heap:
            t = self._heap[0][0]
            woke = False
            while self._heap and self._heap[0][0] == t:
                w = heapq.heappop(self._heap)[2]
                if not w.done:
                    woke = True
                    self._wake(w, False)
            if woke:
                self.ns = max(self.ns, t)

    def sleep(self, ev: "VEvent", seconds: float | None) -> bool:
        """Sleep until ``ev`` is set or ``seconds`` of emulated time pass."""
        with self.cond:
            if ev.flag:
                return True
            if seconds is not None and seconds <= 0:
                return False
            w = _Waiter()
            ev.waiters.add(w)
            if seconds is not None:
                heapq.heappush(self._heap, (self.ns + max(1, round(seconds * 1e9)),
                                            next(self._seq), w))
            self.running -= 1
            self._advance()
        try:
            while not w.ev.wait(0.5):  # a bounded wait: Ctrl-C is seen in the main thread
                pass
        except BaseException:
            with self.cond:
                self._wake(w, False)
            raise
        finally:
            with self.cond:
                ev.waiters.discard(w)
        return w.by_set


class VEvent:
    """threading.Event's interface on the machine's logical clock."""

    def __init__(self, clock: VirtualClock) -> None:
        self.clock = clock
        self.flag = False
        self.waiters: set[_Waiter] = set()

    def is_set(self) -> bool:
        return self.flag

    def set(self) -> None:
        with self.clock.cond:
            self.flag = True
            for w in list(self.waiters):
                self.clock._wake(w, True)

    def clear(self) -> None:
        with self.clock.cond:
            self.flag = False

    def wait(self, timeout: float | None = None) -> bool:
        return self.clock.sleep(self, timeout)
