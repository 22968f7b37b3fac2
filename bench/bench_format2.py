"""Format 2 against format 1, side by side: the same protocol (the built-in
seqcount, and examples/seqcount-format2.toml, its transcription into format
2 over the same fields) run in turn, round by round, the order alternating,
so that the machine's drift falls on both alike; each round's ratio is
taken, then the median.

- ``stress``: what `kmallocwd stress` does (emulator mode, 1 writer, the
  reader scanning): writer pairs and reads per second.
- ``protocol``: the protocol's own operations only (csrc/loops.h and
  loops2.h's protocol-mode loops): ns per start/stop pair, and ns per read
  of a slot inside an allocation.

Every format-2 built-in and example also runs the protocol-mode loops
(``test_format2_protocol_loops``), so that the benchmarks cover each shape.

The figures are in each benchmark's extra_info (bench/results/latest.json);
`kmallocwd bench-report` does not read these kinds (no "kmallocwd" schema
key), so it skips them.
"""

from __future__ import annotations

import statistics
from pathlib import Path

import pytest

from harness import Settings, sig

from kmallocwd import protocols
from kmallocwd.gfp import GFP_KERNEL
from kmallocwd.protocols.backend import Backend, backend
from kmallocwd.stress.clock import make_clock
from kmallocwd.protocols.layout import layout
from kmallocwd.stress.run import StressConfig, combine, run_stress
from kmallocwd.stress.slots import SlotArray

ROOT = Path(__file__).resolve().parent.parent
FORMAT2_FILE = ROOT / "examples" / "seqcount-format2.toml"
FORMAT1 = "seqcount"
SHAPES = [p.name for p in protocols.PROTOCOLS if p.format == 2] + [
    str(ROOT / "examples" / f) for f in ("latch.toml", "three-fields.toml",
                                         "seqcount-format2.toml")]
STRESS_S = 1.0  # seconds per stress round


def _spec(name: str) -> protocols.Spec:
    return protocols.load_path(name) if name.endswith(".toml") else protocols.get(name)


def _ratio_summary(a: list[float], b: list[float]) -> dict:
    ratios = [x / y for x, y in zip(a, b) if y]
    return {"format1": sig(statistics.median(a)), "format2": sig(statistics.median(b)),
            "ratio_format1_over_format2": sig(statistics.median(ratios)) if ratios else None,
            "format1_rounds": [sig(x) for x in a], "format2_rounds": [sig(x) for x in b]}


def test_stress_throughput_format2_vs_format1(benchmark, kmw: Settings) -> None:
    benchmark.group = "format 2 vs format 1"
    cfgs = {1: StressConfig(protocol=FORMAT1, threads=1, slots=1, duration=STRESS_S,
                            alloc_ns=100),
            2: StressConfig(protocol_file=str(FORMAT2_FILE), threads=1, slots=1,
                            duration=STRESS_S, alloc_ns=100)}
    bes = {k: backend(c.spec()) for k, c in cfgs.items()}
    pairs: dict[int, list[float]] = {1: [], 2: []}
    reads: dict[int, list[float]] = {1: [], 2: []}
    calls = [0]

    def one_round() -> None:
        order = (1, 2) if calls[0] % 2 == 0 else (2, 1)
        calls[0] += 1
        for k in order:
            r = combine([run_stress(cfgs[k], bes[k])])
            if r.torn:
                raise AssertionError(f"format {k}: a sound protocol tore ({r.counts})")
            pairs[k].append(r.writer_ops / r.elapsed_s)
            reads[k].append(r.attempts / r.elapsed_s)

    benchmark.pedantic(one_round, rounds=kmw.rounds, warmup_rounds=kmw.warmup, iterations=1)
    w = kmw.warmup
    benchmark.extra_info.update({
        "kind": "format2-vs-format1", "mode": "emulator",
        "format1": FORMAT1, "format2": FORMAT2_FILE.name, "seconds_per_run": STRESS_S,
        "writer_pairs_per_s": _ratio_summary(pairs[1][w:], pairs[2][w:]),
        "reads_per_s": _ratio_summary(reads[1][w:], reads[2][w:]),
    })


class _Loops:
    """One protocol's protocol-mode loops through its backend: n start/stop
    pairs on one slot, n reads of one slot inside an allocation."""

    def __init__(self, be: Backend, kmw: Settings) -> None:
        self.be, self.ffi, self.lib = be, be.ffi, be.lib
        own = be.spec.format != 1
        self.slots = SlotArray(1, self.ffi, self.lib,
                               int(self.lib.kmw_slot_size(be.id)) if own else None)
        self.clock = make_clock(1000, ffi=self.ffi)
        self.stop = self.ffi.new("int *")
        self.reqs = self.ffi.new("struct kmw_request[]", 1)
        self.reqs[0].gfp, self.reqs[0].order = GFP_KERNEL, 0
        self.idx = self.ffi.new("uint32_t[]", [0])
        self.st = self.ffi.new("struct kmw_writer *")
        self.el = self.ffi.new("uint64_t *")
        self.tally = self.ffi.new("struct kmw_tally *")
        self.n = kmw.ops(1 << 20)
        # one section, then the frame's flag left set: a task inside its
        # allocation, whose record every read copies
        self.lib.kmw_writer_run(be.id, self.lib.KMW_EMULATOR, self.slots.ptr, self.idx, 1,
                                self.reqs, 1, 1, self.clock, self.st, self.stop, self.el)
        if own and be.spec.frame == "flag":
            lay = layout(be.spec)
            off = lay.offsets[be.spec.flag][0]
            self.ffi.buffer(self.slots.ptr, lay.slot_size)[off] = b"\x01"
        elif not own:
            self.lib.kmw_start_memalloc_timer(be.id, self.slots.ptr, GFP_KERNEL, 0,
                                              self.lib.kmw_jiffies(self.clock))

    def writer_ns(self) -> float:
        # on a copy of the slots: the reader's slot stays inside its allocation
        s = SlotArray(1, self.ffi, self.lib, self.slots.slot_size
                      if self.be.spec.format != 1 else None)
        done = self.lib.kmw_writer_run(self.be.id, self.lib.KMW_PROTOCOL, s.ptr, self.idx, 1,
                                       self.reqs, 1, self.n, self.clock, self.st, self.stop,
                                       self.el)
        return self.el[0] / max(done, 1)

    def reader_ns(self) -> tuple[float, int]:
        expire = (int(self.lib.kmw_jiffies(self.clock)) + 10**6) & (2**64 - 1)
        before = int(self.tally.outcome[self.lib.KMW_O_ACCEPTED])
        done = self.lib.kmw_bench_reads(self.be.id, self.slots.ptr, 1, self.n, expire,
                                        self.stop, self.tally, self.el)
        return self.el[0] / max(done, 1), int(self.tally.outcome[self.lib.KMW_O_ACCEPTED]) - before


def test_protocol_mode_format2_vs_format1(benchmark, kmw: Settings) -> None:
    benchmark.group = "format 2 vs format 1"
    loops = {1: _Loops(backend(protocols.get(FORMAT1)), kmw),
             2: _Loops(backend(_spec(str(FORMAT2_FILE))), kmw)}
    wr: dict[int, list[float]] = {1: [], 2: []}
    rd: dict[int, list[float]] = {1: [], 2: []}
    calls = [0]

    def one_round() -> None:
        order = (1, 2) if calls[0] % 2 == 0 else (2, 1)
        calls[0] += 1
        for k in order:
            wr[k].append(loops[k].writer_ns())
            ns, accepted = loops[k].reader_ns()
            if not accepted:
                raise AssertionError(f"format {k}: the reader accepted nothing")
            rd[k].append(ns)

    benchmark.pedantic(one_round, rounds=kmw.rounds, warmup_rounds=kmw.warmup, iterations=1)
    w = kmw.warmup
    benchmark.extra_info.update({
        "kind": "format2-vs-format1", "mode": "protocol",
        "format1": FORMAT1, "format2": FORMAT2_FILE.name,
        "writer_ns_per_pair": _ratio_summary(wr[1][w:], wr[2][w:]),
        "reader_ns_per_read": _ratio_summary(rd[1][w:], rd[2][w:]),
    })


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: Path(s).stem)
def test_format2_protocol_loops(benchmark, kmw: Settings, shape: str) -> None:
    benchmark.group = "format 2 shapes (protocol mode)"
    loop = _Loops(backend(_spec(shape)), kmw)
    wr, rd = [], []

    def one_round() -> None:
        wr.append(loop.writer_ns())
        rd.append(loop.reader_ns()[0])

    benchmark.pedantic(one_round, rounds=kmw.rounds, warmup_rounds=kmw.warmup, iterations=1)
    w = kmw.warmup
    benchmark.extra_info.update({
        "kind": "format2-shape", "mode": "protocol",
        "protocol": loop.be.name, "writer_ns_per_pair": sig(statistics.median(wr[w:] or wr)),
        "reader_ns_per_read": sig(statistics.median(rd[w:] or rd)),
    })
