"""Where threads run and which slots each writer owns: shared by the stress
runs and the benchmarks."""

from __future__ import annotations

import os

import numpy as np


def cpus() -> list[int]:
    """The CPUs this process may run on, in order."""
    if hasattr(os, "sched_getaffinity"):
        return sorted(os.sched_getaffinity(0))
    return list(range(os.cpu_count() or 1))  # pragma: no cover - non-Linux


def round_robin(n: int) -> list[int | None]:
    """A CPU for each of n threads, round-robin over the usable CPUs, the
    reader's first: a reader and a writer never share a core while n <= CPUs."""
    cs = cpus()
    return [cs[i % len(cs)] for i in range(n)]


def pin_to(cpu: int | None) -> None:
    """Pin the calling thread (Linux: pid 0 is the calling thread)."""
    if cpu is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {cpu})


def split_slots(nslots: int, threads: int) -> list[np.ndarray]:
    """Writer w owns slots w, w+T, w+2T, ... (one writer per slot, its task),
    as uint32 index arrays the C writer loop takes."""
    if threads > nslots:
        raise ValueError(f"{threads} writer threads for {nslots} slots")
    return [np.arange(w, nslots, threads, dtype=np.uint32) for w in range(threads)]
