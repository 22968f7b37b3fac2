"""Side by side in one process: the C loops of an earlier revision (built from
git into a temporary directory) against this tree's, per protocol, for the
writer's start/stop pair and the reader's snapshot, interleaved round by
round so that the machine's drift falls on both alike.

    .venv/bin/python bench/before_after.py [--rev e5f6c82] [--rounds 15] [--json OUT]

The earlier revision is the last one with the hand-written loops (writer_*.h,
readers.h), whose witness stored jiffies as `start`.  Its `v2-rwlock` was a
lock in each slot: it is compared with this tree's `slot-rwlock`.
Figures are medians over the rounds of ns per operation, one thread, one slot.
"""

from __future__ import annotations

import argparse
import importlib.machinery
import importlib.util
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kmallocwd import protocols  # noqa: E402
from kmallocwd._core import ffi, lib  # noqa: E402
from kmallocwd.stress.clock import make_clock  # noqa: E402
from kmallocwd.gfp import GFP_KERNEL, STRESS_MIX, STRESS_SEQ  # noqa: E402
from kmallocwd.stress.slots import SlotArray  # noqa: E402

RENAMED = {"v2-rwlock": "slot-rwlock"}  # before's name -> this tree's


def build_before(rev: str, where: Path):
    """Build ``rev``'s extension under ``where``; its (ffi, lib)."""
    src = where / "src"
    src.mkdir()
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev], check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(src)], input=archive, check=True)
    subprocess.run([sys.executable, "setup.py", "-q", "build_ext", "--inplace"], cwd=src,
                   check=True, capture_output=True)
    so = next((src / "kmallocwd").glob("_kmallocwd*.so"))
    loader = importlib.machinery.ExtensionFileLoader("kmw_before._kmallocwd", str(so))
    spec = importlib.util.spec_from_file_location("kmw_before._kmallocwd", so, loader=loader)
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    return mod.ffi, mod.lib


class Side:
    """One build's loops on its own slot, for one protocol."""

    def __init__(self, ffi_, lib_, proto: int, new: bool, mode: int = 0) -> None:
        self.ffi, self.lib, self.proto, self.new, self.mode = ffi_, lib_, proto, new, mode
        self.slots = lib_.kmw_slots_alloc(1)
        self.stop = ffi_.new("int *")
        self.el = ffi_.new("uint64_t *")
        self.idx = ffi_.new("uint32_t[]", [0])
        mix = STRESS_SEQ if new else STRESS_MIX
        self.reqs = ffi_.new("struct kmw_request[]", len(mix))
        for i, r in enumerate(mix):
            self.reqs[i].gfp, self.reqs[i].order = r.gfp, r.order
        self.nreqs = len(mix)
        self.clock = ffi_.new("struct kmw_clock *")
        self.clock.hz, self.clock.t0_ns = 1000, lib_.kmw_now_ns()
        if new:
            self.w = ffi_.new("struct kmw_writer *")
            self.w.stamp = 1 << 40

    def writer_ns(self, n: int) -> float:
        if self.new:
            done = self.lib.kmw_writer_run(self.proto, self.mode, self.slots, self.idx, 1,
                                           self.reqs, self.nreqs, n, self.clock, self.w,
                                           self.stop, self.el)
        else:
            done = self.lib.kmw_writer_run(self.proto, self.slots, self.idx, 1, self.reqs,
                                           self.nreqs, n, self.clock, self.ffi.NULL,
                                           self.stop, self.el)
        return self.el[0] / done

    def reader_ns(self, n: int) -> float:
        """The protocol's read of a valid slot, the reader alone: the
        benchmarks' loop (before, and protocol mode), or the watchdog scan
        with the torn-read check (emulator mode)."""
        self.lib.kmw_start_memalloc_timer(self.proto, self.slots, GFP_KERNEL, 0, 1000)
        try:
            if self.new and self.mode == self.lib.KMW_EMULATOR:
                t = self.ffi.new("struct kmw_tally *")
                self.lib.kmw_reader_scan(self.proto, self.slots, 1, n, self.reqs, self.nreqs,
                                         self.stop, t)
                return t.elapsed_ns / n
            t = self.ffi.new("struct kmw_tally *" if self.new else "struct kmw_bench_counts *")
            done = self.lib.kmw_bench_reads(self.proto, self.slots, 1, n, 0, self.stop, t,
                                            self.el)
            return self.el[0] / done
        finally:
            self.lib.kmw_stop_memalloc_timer(self.proto, self.slots, GFP_KERNEL)

    def scan_ns(self, n: int) -> float:
        """before's watchdog scan with its witness check (kmw_reader_scan)."""
        self.lib.kmw_start_memalloc_timer(self.proto, self.slots, GFP_KERNEL, 0, 1000)
        try:
            st = self.ffi.new("struct kmw_reader_stats *")
            self.lib.kmw_reader_scan(self.proto, self.slots, 1, n, self.stop, st)
            return st.elapsed_ns / n
        finally:
            self.lib.kmw_stop_memalloc_timer(self.proto, self.slots, GFP_KERNEL)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rev", default="e5f6c82", help="the earlier revision (default e5f6c82)")
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--pairs", type=int, default=1 << 20, help="operations per timing")
    ap.add_argument("--json", default=None, help="also write the figures as JSON here")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="kmw-before-") as tmp:
        bffi, blib = build_before(args.rev, Path(tmp))
        before_names = {bffi.string(blib.kmw_protocol_name(i)).decode(): i
                        for i in range(blib.KMW_NR_PROTOCOLS)}
        rows = {}
        for old, i in before_names.items():
            new = RENAMED.get(old, old)
            if new not in protocols.BY_NAME:
                continue
            cid = protocols.cid(new)
            sides = {"before": Side(bffi, blib, i, False),
                     "emulator": Side(ffi, lib, cid, True, lib.KMW_EMULATOR),
                     "protocol": Side(ffi, lib, cid, True, lib.KMW_PROTOCOL)}
            got: dict[str, list[float]] = {k: [] for k in (
                "writer_before", "writer_emulator", "writer_protocol", "read_before",
                "read_protocol", "scan_before", "scan_emulator")}
            for r in range(args.rounds + 1):
                jobs = [("writer_before", lambda: sides["before"].writer_ns(args.pairs)),
                        ("writer_emulator", lambda: sides["emulator"].writer_ns(args.pairs)),
                        ("writer_protocol", lambda: sides["protocol"].writer_ns(args.pairs)),
                        ("read_before", lambda: sides["before"].reader_ns(args.pairs)),
                        ("read_protocol", lambda: sides["protocol"].reader_ns(args.pairs)),
                        ("scan_before", lambda: sides["before"].scan_ns(args.pairs)),
                        ("scan_emulator", lambda: sides["emulator"].reader_ns(args.pairs))]
                k = r % len(jobs)
                for key, job in jobs[k:] + jobs[:k]:
                    v = job()
                    if r:  # round 0 warms up
                        got[key].append(v)
            rows[new] = {k: statistics.median(v) for k, v in got.items()}
            print(new, {k: round(v, 2) for k, v in rows[new].items()}, file=sys.stderr,
                  flush=True)
    head = ("protocol", "writer: before", "emulator", "ratio", "protocol", "ratio",
            "read: before", "protocol", "ratio", "scan: before", "emulator", "ratio")
    print(" | ".join(head))
    print("|".join("---" for _ in head))
    for name, d in rows.items():
        wb, rb, sb = d["writer_before"], d["read_before"], d["scan_before"]
        print(" | ".join([
            name, f"{wb:.2f}", f"{d['writer_emulator']:.2f}", f"{d['writer_emulator'] / wb:.2f}",
            f"{d['writer_protocol']:.2f}", f"{d['writer_protocol'] / wb:.2f}",
            f"{rb:.2f}", f"{d['read_protocol']:.2f}", f"{d['read_protocol'] / rb:.2f}",
            f"{sb:.2f}", f"{d['scan_emulator']:.2f}", f"{d['scan_emulator'] / sb:.2f}"]))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
