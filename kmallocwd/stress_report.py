"""The stress report: a compact table for people, a JSON document for
machines (schema: README, "Stress report JSON").  A report covers one run
or, with --repeat, several runs of one configuration added up."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import statistics
import tempfile
from pathlib import Path

from kmallocwd import __version__, protocols
from kmallocwd.stress import StressResult, combine

SCHEMA = "kmallocwd.stress/1"


def machine() -> dict:
    model = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"arch": platform.machine(), "cpu": model, "cpus": os.cpu_count(),
            "python": platform.python_version()}


def verdict(runs: list[StressResult], expect: str | None) -> tuple[int, str]:
    """(exit status, one-line verdict).  With --expect torn every finished
    run must have seen a torn snapshot; otherwise no run may have seen an
    outcome the protocol forbids."""
    total = combine(runs)
    proto = total.config.protocol
    if expect == protocols.TORN:
        missed = sum(1 for r in runs if not r.counts.get(protocols.TORN, 0))
        if not missed:
            return 0, f"PASS: torn snapshots seen in {len(runs)} of {len(runs)} run(s), as --expect torn requires"
        return 1, (f"FAIL: no torn snapshot in {missed} of {len(runs)} run(s), "
                   "but --expect torn requires one in each")
    bad = total.forbidden_seen()
    if bad:
        return 1, f"FAIL: forbidden outcome seen for {proto}: {', '.join(bad)}"
    if not conclusive(total):
        return 0, (f"PASS, but INCONCLUSIVE: the reader accepted no snapshot, so nothing was "
                   f"tested (give allocations a duration with --alloc-ns, or run longer)")
    return 0, f"PASS: no outcome forbidden for {proto} was seen"


def conclusive(res: StressResult) -> bool:
    """False when the reader accepted no snapshot at all: a PASS then tells
    nothing about the protocol."""
    return res.counts.get(protocols.CONSISTENT, 0) + res.counts.get(protocols.TORN, 0) > 0


def repeat_summary(runs: list[StressResult]) -> dict:
    times = [r.first_torn_after_s for r in runs if r.first_torn_after_s is not None]
    return {
        "runs": len(runs),
        "torn_runs": len(times),
        "first_torn_after_s": None if not times else {
            "median": statistics.median(times), "max": max(times), "min": min(times)},
        "per_run": [{"elapsed_s": r.elapsed_s, "torn": r.counts.get(protocols.TORN, 0),
                     "first_torn_after_s": r.first_torn_after_s} for r in runs],
    }


def to_dict(runs: list[StressResult], expect: str | None = None) -> dict:
    res = combine(runs)
    cfg = res.config
    status, line = verdict(runs, expect)
    proto = protocols.get(cfg.protocol)
    return {
        "schema": SCHEMA,
        "kmallocwd": __version__,
        "protocol": cfg.protocol,
        "writer": proto.writer,
        "reader": proto.reader,
        "config": {
            "threads": cfg.threads, "slots": cfg.slots, "duration": cfg.duration,
            "iterations": cfg.iterations, "batch": cfg.batch, "pin": cfg.pin,
            "hold_ns": cfg.hold_ns, "alloc_ns": cfg.alloc_ns, "preempt": cfg.preempt,
            "seed": cfg.seed, "until_torn": cfg.until_torn, "repeat": len(runs),
        },
        "machine": machine(),
        "elapsed_s": res.elapsed_s,
        "interrupted": res.interrupted,
        "stop_latency_s": res.stop_latency_s,
        "outcomes": {
            name: {"count": res.counts.get(name, 0),
                   "expect": proto.outcome(name).expect.value}
            for name in protocols.OUTCOMES
        },
        "retries": res.retries,
        "writer_ops": res.writer_ops,
        "reader_snapshots": res.snapshots,
        "scans": res.scans,
        "first_torn": None if res.first_torn is None else {
            "after_s": res.first_torn_after_s,
            "slot": res.first_torn_slot,
            "snapshot": res.first_torn.to_dict(),
        },
        "repeat": repeat_summary(runs),
        "forbidden_seen": res.forbidden_seen(),
        "conclusive": conclusive(res),
        "expect": expect,
        "verdict": line,
        "exit_status": status,
    }


def render(runs: list[StressResult], expect: str | None = None) -> str:
    res = combine(runs)
    cfg = res.config
    proto = protocols.get(cfg.protocol)
    reps = f", {len(runs)} runs" if len(runs) > 1 else ""
    head = (f"kmallocwd stress: {cfg.protocol} ({proto.writer} + {proto.reader}), "
            f"{cfg.threads} writer{'s' if cfg.threads != 1 else ''}, {cfg.slots} "
            f"slot{'s' if cfg.slots != 1 else ''}, {res.elapsed_s:.2f} s{reps}"
            + ("  [INTERRUPTED: partial]" if res.interrupted else ""))
    rows = [head, f"  {'outcome':<17} {'count':>14}  {'expect':<12} reason"]
    for name in protocols.OUTCOMES:
        o = proto.outcome(name)
        n = res.counts.get(name, 0)
        if not n and o.reason.startswith("not an outcome"):
            continue
        exp = o.expect.value
        if n and o.expect is protocols.Expect.FORBIDDEN:
            exp = exp.upper()
        rows.append(f"  {name:<17} {n:>14,}  {exp:<12} {o.reason}")
    rows.append(f"  retries {res.retries:,}  writer ops {res.writer_ops:,}  "
                f"reader snapshots {res.snapshots:,}  scans {res.scans:,}  "
                f"stopped in {res.stop_latency_s * 1e3:.1f} ms")
    if len(runs) > 1:
        rs = repeat_summary(runs)
        t = rs["first_torn_after_s"]
        times = "" if t is None else (f"; first torn after median {t['median']:.4f} s, "
                                      f"worst {t['max']:.4f} s")
        rows.append(f"  torn seen in {rs['torn_runs']} of {rs['runs']} runs{times}")
    if res.first_torn is not None:
        s = res.first_torn
        rows.append(
            f"  first torn after {res.first_torn_after_s:.6f} s, slot {res.first_torn_slot}: "
            f"seq={s.sequence} valid={s.valid} start={s.start} order={s.order} "
            f"gfp=0x{s.gfp:x} witness=0x{s.witness:016x} "
            f"(these fields would give 0x{s.expected_witness():016x})")
    rows.append(verdict(runs, expect)[1])
    return "\n".join(rows) + "\n"


def check_writable(path: str) -> None:
    """Raise UsageError now, before a run, if ``--json PATH`` cannot be written."""
    from kmallocwd.errors import UsageError

    if path == "-":
        return
    p = Path(path)
    parent = p.parent if str(p.parent) else Path(".")
    if p.is_dir():
        raise UsageError(f"--json {path}: is a directory (accepted: a file path, or '-')")
    if not parent.is_dir():
        raise UsageError(f"--json {path}: no directory {parent} (accepted: a file path in an "
                         "existing directory, or '-')")
    if not os.access(parent, os.W_OK) or (p.exists() and not os.access(p, os.W_OK)):
        raise UsageError(f"--json {path}: not writable (accepted: a writable file path, or '-')")


def write_json(path: str, runs: list[StressResult], expect: str | None) -> None:
    """Write the report; a file is replaced whole (a temporary file beside it
    is renamed), so a reader never sees half a report."""
    text = json.dumps(to_dict(runs, expect), indent=2) + "\n"
    if path == "-":
        print(text, end="")
        return
    target = Path(path)
    fd, tmp = tempfile.mkstemp(dir=target.parent if str(target.parent) else ".",
                               prefix=f".{target.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o644)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
