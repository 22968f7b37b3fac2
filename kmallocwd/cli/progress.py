"""A progress bar on stderr for long runs (stress, ablate, campaigns, make
bench): tqdm's, shown only when stderr is a terminal and not asked to be
quiet."""

from __future__ import annotations

import sys
import threading
import time
from typing import Any


class Progress:
    """``with Progress(total, unit) as bar: bar.update(1, key=value)``."""

    def __init__(self, total: int, unit: str, quiet: bool = False, desc: str = "") -> None:
        self.bar: Any = None
        if quiet or not sys.stderr.isatty():
            return
        from tqdm import tqdm

        self.bar = tqdm(total=total, unit=unit, desc=desc or None, file=sys.stderr,
                        leave=False, dynamic_ncols=True)

    def __enter__(self) -> "Progress":
        return self

    def update(self, n: int = 1, **post: object) -> None:
        if self.bar is not None:
            if post:
                self.bar.set_postfix(post, refresh=False)
            self.bar.update(n)

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.close()


class Clock:
    """A bar over a run of known length (one long stress run): a thread
    moves it with the time while the run, which releases the GIL, goes on.
    ``with Clock(seconds, desc=...):``."""

    TICK_S = 0.25

    def __init__(self, seconds: float, quiet: bool = False, desc: str = "") -> None:
        self.seconds = seconds
        self.bar: Any = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if quiet or not sys.stderr.isatty():
            return
        from tqdm import tqdm

        self.bar = tqdm(total=round(seconds, 1), unit="s", desc=desc or None, file=sys.stderr,
                        leave=False, dynamic_ncols=True,
                        bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.1f}/{total:.1f} s")

    def _run(self) -> None:
        t0 = time.monotonic()
        while not self._stop.wait(self.TICK_S):
            done = min(time.monotonic() - t0, self.seconds)
            self.bar.update(round(done - self.bar.n, 2))

    def __enter__(self) -> "Clock":
        if self.bar is not None:
            self._thread = threading.Thread(target=self._run, name="kmallocwd-progress",
                                            daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(1.0)
        if self.bar is not None:
            self.bar.close()
