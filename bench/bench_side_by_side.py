"""The key comparisons, interleaved: for 1 slot and 1 writer, each round runs
one batch of every protocol in turn (the order rotating each round), so that
the machine's drift (other work, the host's) falls on all protocols alike,
and the ratio to a baseline is taken round by round, then its median.

One benchmark per role; pytest-benchmark's time is that of a whole round of
all protocols (set-ups included); the figures are in extra_info["protocols"].
"""

from __future__ import annotations

import statistics

import pytest

from harness import (
    PROTOCOLS, READER_ALONE, READER_WITH_ALLOCATING, READER_WITH_WRITER, SCHEMA, WRITER_ALONE,
    WRITER_WITH_READER, RoleCase, Settings, sig,
)

# The matrix's four roles at 1 slot, 1 writer, and a reader against a writer
# whose allocations last harness.ALLOC_NS (slots valid, sections now and then).
CASES = [(WRITER_ALONE, 1, 1), (WRITER_WITH_READER, 1, 1), (READER_ALONE, 1, None),
         (READER_WITH_WRITER, 1, 1), (READER_WITH_ALLOCATING, 1, 1)]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_side_by_side(benchmark, kmw: Settings, case) -> None:
    role, nslots, threads = case
    benchmark.group = "side-by-side"
    per: dict[str, list[float]] = {p: [] for p in PROTOCOLS}
    info: dict[str, dict] = {}
    calls = [0]

    def one_round() -> None:
        k = calls[0]
        calls[0] += 1
        order = PROTOCOLS[k % len(PROTOCOLS):] + PROTOCOLS[:k % len(PROTOCOLS)]
        for p in order:
            with RoleCase(p, role, nslots, threads, kmw) as c:
                c.batch(max(16, c.n // 8))  # warm the slots, the caches, the other side
                ops, ns, _ = c.batch()
                if ops <= 0:
                    raise RuntimeError(f"{p}: the measured C loop did no operation")
                per[p].append(ns / ops)
                info[p] = c.info()
                info[p]["ops_per_round"] = ops

    benchmark.pedantic(one_round, rounds=kmw.rounds, warmup_rounds=kmw.warmup, iterations=1)
    w = kmw.warmup
    protos = {}
    for p in PROTOCOLS:
        v = per[p][w:] or per[p]
        protos[p] = {
            "ns_per_op": sig(statistics.median(v)),
            "ns_per_op_min": sig(min(v)),
            "ns_per_op_max": sig(max(v)),
            "ns_per_op_rounds": [sig(x) for x in v],
            **info[p],
        }
    benchmark.extra_info.update({
        "kmallocwd": SCHEMA, "kind": "side-by-side", "role": role, "slots": nslots,
        "threads": threads, "rounds": len(per[PROTOCOLS[0]][w:] or per[PROTOCOLS[0]]),
        "protocols": protos,
    })
