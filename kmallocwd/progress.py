"""A progress bar on stderr for long runs (stress --repeat, ablate,
campaigns, make bench): tqdm's, shown only when stderr is a terminal and
not asked to be quiet."""

from __future__ import annotations

import sys
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
