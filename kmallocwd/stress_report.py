"""The stress run's report: a compact table for people, a JSON document for
machines (schema: README, "Stress report JSON")."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path

from kmallocwd import __version__, protocols
from kmallocwd.stress import StressResult

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


def verdict(res: StressResult, expect: str | None) -> tuple[int, str]:
    """(exit status, one-line verdict) for a finished or interrupted run."""
    if expect == protocols.TORN:
        if res.counts.get(protocols.TORN, 0):
            return 0, "PASS: a torn snapshot was seen, as --expect torn requires"
        return 1, "FAIL: no torn snapshot was seen, but --expect torn requires one"
    bad = res.forbidden_seen()
    if bad:
        return 1, f"FAIL: forbidden outcome seen for {res.config.protocol}: {', '.join(bad)}"
    return 0, f"PASS: no outcome forbidden for {res.config.protocol} was seen"


def to_dict(res: StressResult, expect: str | None = None) -> dict:
    cfg = res.config
    status, line = verdict(res, expect)
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
            "hold_ns": cfg.hold_ns, "preempt": cfg.preempt, "seed": cfg.seed,
        },
        "machine": machine(),
        "elapsed_s": res.elapsed_s,
        "interrupted": res.interrupted,
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
        "forbidden_seen": res.forbidden_seen(),
        "expect": expect,
        "verdict": line,
        "exit_status": status,
    }


def render(res: StressResult, expect: str | None = None) -> str:
    cfg = res.config
    proto = protocols.get(cfg.protocol)
    head = (f"kmallocwd stress: {cfg.protocol} ({proto.writer} + {proto.reader}), "
            f"{cfg.threads} writer{'s' if cfg.threads != 1 else ''}, {cfg.slots} "
            f"slot{'s' if cfg.slots != 1 else ''}, {res.elapsed_s:.2f} s"
            + ("  [INTERRUPTED: partial]" if res.interrupted else ""))
    rows = [head, f"  {'outcome':<17} {'count':>14}  {'expect':<12} reason"]
    for name in protocols.OUTCOMES:
        o = proto.outcome(name)
        n = res.counts.get(name, 0)
        if not n and o.reason.startswith("not an outcome"):
            continue
        exp = o.expect.value.upper() if (n and o.expect is protocols.Expect.FORBIDDEN) else o.expect.value
        rows.append(f"  {name:<17} {n:>14,}  {exp:<12} {o.reason}")
    rows.append(f"  retries {res.retries:,}  writer ops {res.writer_ops:,}  "
                f"reader snapshots {res.snapshots:,}  scans {res.scans:,}")
    if res.first_torn is not None:
        s = res.first_torn
        rows.append(
            f"  first torn after {res.first_torn_after_s:.6f} s, slot {res.first_torn_slot}: "
            f"seq={s.sequence} valid={s.valid} start={s.start} order={s.order} "
            f"gfp=0x{s.gfp:x} witness=0x{s.witness:016x} "
            f"(these fields would give 0x{s.expected_witness():016x})")
    rows.append(verdict(res, expect)[1])
    return "\n".join(rows) + "\n"


def write_json(path: str, res: StressResult, expect: str | None) -> None:
    doc = to_dict(res, expect)
    if path == "-":
        print(json.dumps(doc, indent=2))
        return
    tmp = Path(path + ".tmp")
    tmp.write_text(json.dumps(doc, indent=2) + "\n")
    tmp.replace(path)
