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

import harness

from harness import (
    MODE, PROTOCOLS, READER_ALONE, READER_WITH_ALLOCATING, READER_WITH_WRITER, SCHEMA,
    WRITER_ALONE, WRITER_WITH_READER, ReferenceCase, RoleCase, Settings, sig,
)

# The writer-alone rounds also run the patch's start/stop as a plain C loop
# (csrc/reference.c) in turn with the protocols: extra_info["reference"].
REF = "reference"

# The matrix's four roles at 1 slot, 1 writer, and a reader against a writer
# whose allocations last harness.ALLOC_NS (slots valid, sections now and then).
CASES = [(WRITER_ALONE, 1, 1), (WRITER_WITH_READER, 1, 1), (READER_ALONE, 1, None),
         (READER_WITH_WRITER, 1, 1), (READER_WITH_ALLOCATING, 1, 1)]


@pytest.mark.parametrize("mode", harness.MODES)
@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_side_by_side(benchmark, kmw: Settings, case, mode: str) -> None:
    role, nslots, threads = case
    benchmark.group = f"side-by-side {mode}"
    entries = PROTOCOLS + ((REF,) if role == WRITER_ALONE else ())
    per: dict[str, list[float]] = {p: [] for p in entries}
    info: dict[str, dict] = {}
    calls = [0]

    def one_round() -> None:
        k = calls[0]
        calls[0] += 1
        order = entries[k % len(entries):] + entries[:k % len(entries)]
        for p in order:
            case = (ReferenceCase(kmw) if p == REF
                    else RoleCase(p, role, nslots, threads, kmw, mode))
            with case as c:
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
    extra = {}
    if REF in per:
        v = per[REF][w:] or per[REF]
        extra["reference"] = {"ns_per_op": sig(statistics.median(v)), "ns_per_op_min": sig(min(v)),
                              "ns_per_op_max": sig(max(v)), "ns_per_op_rounds": [sig(x) for x in v],
                              "ops_per_round": info[REF]["ops_per_round"]}
    benchmark.extra_info.update({
        "kmallocwd": SCHEMA, "mode": mode, **extra, "kind": "side-by-side", "role": role,
        "slots": nslots,
        "threads": threads, "rounds": len(per[PROTOCOLS[0]][w:] or per[PROTOCOLS[0]]),
        "protocols": protos,
    })
