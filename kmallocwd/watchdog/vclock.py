"""The emulated machine's logical clock and its one CPU.

Time advances by the model's own events, not by the host's: the threads of
the machine run one at a time, each until it sleeps; when none is ready,
the clock jumps to the earliest timeout and wakes whoever set it.  The CPU
time the model charges (a reclaim pass, cond_resched()) is a timed sleep
like any other, and the host's own overhead (Python, the GIL, a busy
machine) costs no emulated time at all.  So ``--time-scale`` scales every
wait exactly, and a run is the same whatever the scale and however busy
the host: the ready queue is FIFO and timeouts that fall at the same
nanosecond fire in the order they were set, so the order of events, and
with the tasks' seeded draws the whole run, is fixed.

``VEvent`` has ``threading.Event``'s interface, with timeouts in emulated
seconds.  A thread of the machine is ``enter()``-ed by whoever starts it
(it then waits for its turn) and calls ``leave()`` when it returns; the
thread that boots the machine takes the CPU with ``boot()``.  A thread that
never entered (a test's helper) runs freely beside them: its sleeps still
follow the clock, but it never holds the CPU.  After ``stop()`` (the
machine halted) every wait returns at once and every thread runs freely.
"""

from __future__ import annotations

import collections
import heapq
import itertools
import threading


class _Waiter:
    __slots__ = ("done", "by_set", "gate", "free")

    def __init__(self, free: bool) -> None:
        self.done = False  # woken (by set() or its timeout): ready to run
        self.by_set = False
        self.gate = threading.Event()  # the host-side wake-up: its turn has come
        self.free = free  # a thread that does not take turns (never entered)


class VirtualClock:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.ns = 0  # emulated nanoseconds since boot
        self.holder: int | None = None  # the thread that has the CPU (its ident)
        self.stopped = False
        self._ready: collections.deque[_Waiter] = collections.deque()
        self._heap: list[tuple[int, int, _Waiter]] = []
        self._seq = itertools.count()
        self._tickets: dict[threading.Thread, _Waiter] = {}

    def now_ns(self) -> int:
        return self.ns

    # ---- threads joining and leaving ----

    def boot(self) -> None:
        """The calling thread takes the CPU (before it enters any other)."""
        with self.lock:
            self.holder = threading.get_ident()

    def enter(self, thread: threading.Thread) -> None:
        """``thread`` (not started yet) joins the machine: ready to run."""
        w = _Waiter(False)
        w.done = True
        with self.lock:
            self._tickets[thread] = w
            self._ready.append(w)
            self._dispatch()

    def begin(self) -> None:
        """Called first by an entered thread: wait for its turn."""
        with self.lock:
            w = self._tickets.pop(threading.current_thread(), None)
        if w is not None:
            self._wait_turn(w)

    def leave(self) -> None:
        """An entered thread returns: the CPU goes to the next one."""
        with self.lock:
            if self.holder == threading.get_ident():
                self.holder = None
                self._dispatch()

    def stop(self) -> None:
        """The machine halted: everyone runs freely from now on."""
        with self.lock:
            self.stopped = True
            self.holder = None
            for w in self._ready:
                w.gate.set()
            self._ready.clear()
            for _, _, w in self._heap:
                w.gate.set()
            self._heap.clear()

    # ---- the scheduler, under the lock ----

    def _dispatch(self) -> None:
        """If nobody has the CPU, give it to the first ready thread; if none
        is ready, jump to the earliest timeout and make its sleepers ready."""
        while self.holder is None and not self.stopped:
            if not self._ready:
                if not self._heap:
                    return  # idle until a free thread wakes somebody
                t = self._heap[0][0]
                while self._heap and self._heap[0][0] == t:
                    w = heapq.heappop(self._heap)[2]
                    if not w.done:
                        w.done = True
                        self._ready.append(w)
                self.ns = max(self.ns, t)
                continue
            w = self._ready.popleft()
            if not w.free:
                self.holder = -1  # taken; the thread sets its ident when it runs
            w.gate.set()

    def _wake(self, w: _Waiter, by_set: bool) -> None:
        if not w.done:
            w.done, w.by_set = True, by_set
            if self.stopped:
                w.gate.set()
            else:
                self._ready.append(w)

    def _wait_turn(self, w: _Waiter) -> None:
        try:
            while not w.gate.wait(0.5):  # bounded: Ctrl-C is seen in the main thread
                pass
        except BaseException:
            self.stop()  # the machine is going down (the caller halts it)
            raise
        if not w.free:
            with self.lock:
                if not self.stopped:
                    self.holder = threading.get_ident()

    # ---- sleeping ----

    def sleep(self, ev: "VEvent", seconds: float | None) -> bool:
        """Sleep until ``ev`` is set or ``seconds`` of emulated time pass;
        True if it was set."""
        return self.sleep_ns(ev, None if seconds is None else max(1, round(seconds * 1e9))
                             if seconds > 0 else 0)

    def sleep_ns(self, ev: "VEvent", ns: int | None) -> bool:
        with self.lock:
            if ev.flag:
                return True
            if self.stopped or (ns is not None and ns <= 0):
                return False
            me = threading.get_ident()
            w = _Waiter(free=self.holder != me)
            ev.waiters[w] = None
            if ns is not None:
                heapq.heappush(self._heap, (self.ns + ns, next(self._seq), w))
            if not w.free:
                self.holder = None
            self._dispatch()
        try:
            self._wait_turn(w)
        finally:
            with self.lock:
                ev.waiters.pop(w, None)
        return w.by_set or ev.flag


class VEvent:
    """threading.Event's interface on the machine's logical clock."""

    def __init__(self, clock: VirtualClock) -> None:
        self.clock = clock
        self.flag = False
        self.waiters: dict[_Waiter, None] = {}  # in the order they slept

    def is_set(self) -> bool:
        return self.flag

    def set(self) -> None:
        with self.clock.lock:
            self.flag = True
            for w in self.waiters:
                self.clock._wake(w, True)
            self.clock._dispatch()

    def clear(self) -> None:
        with self.clock.lock:
            self.flag = False

    def wait(self, timeout: float | None = None) -> bool:
        return self.clock.sleep(self, timeout)
