"""What the figures say: the scan's linearity and its physical limit, the
reference loop, the reader against writer activity, thread scaling, the
instrumentation's overhead.  Pure functions of a Run, no printing."""

from __future__ import annotations

import math
from typing import Iterable

from .model import (
    BANDWIDTH, DUTY, DUTY_LEVELS, EMULATOR, MATRIX, PROTOCOL, READ, REFERENCE, SCAN,
    SCAN_SERIES, SIDE, VALID, WRITER_ALONE, WRITER_WITH_READER, Figure, Run, round_ratio,
)

# The protocols the patch's changelog compares the seqcount with: read_lock()
# (v2-rwlock) and the patch's own reader (v3).  Key figures about them are
# given only when the file has them.
SEED_COMPARED = ("v2-rwlock", "v3")


def loglog_slope(points: Iterable[tuple[float, float]]) -> float | None:
    """Least-squares slope of log(total time) against log(N), from (N, ns per
    slot) points: 1.0 is a linear scan."""
    pts = [(math.log(n), math.log(ns * n)) for n, ns in points if n > 0 and ns > 0]
    if len(pts) < 2:
        return None
    mx = sum(x for x, _ in pts) / len(pts)
    my = sum(y for _, y in pts) / len(pts)
    sxx = sum((x - mx) ** 2 for x, _ in pts)
    if not sxx:
        return None
    return sum((x - mx) * (y - my) for x, y in pts) / sxx


def scan_points(run: Run, proto: str, series: str = READ, state: str = VALID,
                mode: str = EMULATOR) -> list[tuple[int, float]]:
    return sorted((f.slots, f.ns) for f in run.of(SCAN, protocol=proto, series=series,
                                                  state=state, mode=mode))


def scan_linearity(run: Run) -> list[dict]:
    out = []
    for mode in run.modes():
        for series, state in SCAN_SERIES:
            for proto in run.protocols():
                pts = scan_points(run, proto, series, state, mode)
                if not pts:
                    continue
                out.append({
                    "protocol": proto, "mode": mode, "series": series, "slot_state": state,
                    "ns_per_slot": {str(n): ns for n, ns in pts},
                    "growth": pts[-1][1] / pts[0][1] if len(pts) > 1 and pts[0][1] else None,
                    "loglog_slope": loglog_slope(pts),
                })
    return out


# ---- the scan against the physical limit ----

def bandwidth(run: Run) -> Figure | None:
    """The copy-bandwidth figure: ns to copy one slot's bytes (the limit)."""
    figs = run.of(BANDWIDTH)
    return figs[0] if figs else None


def scan_limit(run: Run) -> dict | None:
    """ns per slot of the scan next to the limit bytes-per-slot / bandwidth,
    and their ratio (1.0: the scan runs at the copy bandwidth; below 1 it
    beats it: a scan only reads, and small N run from the caches)."""
    bw = bandwidth(run)
    if bw is None or not bw.ns:
        return None
    slot = bw.params["slot_bytes"]
    llc = bw.params.get("llc_bytes")
    rows = []
    for mode in run.modes():
        for series, state in SCAN_SERIES:
            for proto in run.protocols():
                pts = scan_points(run, proto, series, state, mode)
                if pts:
                    rows.append({
                        "protocol": proto, "mode": mode, "series": series,
                        "slot_state": state,
                        "points": [{"slots": n, "ns_per_slot": ns, "ratio": ns / bw.ns,
                                    "in_cache": bool(llc) and n * slot <= llc}
                                   for n, ns in pts],
                    })
    return {"limit_ns_per_slot": bw.ns, "slot_bytes": slot,
            "bytes_per_ns": slot / bw.ns, "buffer_bytes": bw.params["buffer_bytes"],
            "llc_bytes": llc, "rows": rows}


# ---- the reference loop ----

def reference(run: Run) -> dict | None:
    """The patch's start/stop as a plain C loop, and each protocol's writer
    pair over it: from the side-by-side run when it interleaved the
    reference (ratio round by round), else from the matrix (1 slot, 1
    thread) over the stand-alone reference benchmark."""
    inter = {f.mode: f for f in run.of(REFERENCE) if f.series == "interleaved"}
    alone = [f for f in run.of(REFERENCE) if f.series != "interleaved"]
    # the reference interleaved with the emulator-mode side-by-side run is
    # the headline; each mode's rows take the one interleaved with them
    ref_inter = inter.get(EMULATOR) or next(iter(inter.values()), None)
    ref_alone = alone[0] if alone else None
    if ref_inter is None and ref_alone is None:
        return None
    rows = []
    for mode in run.modes():
        ref_inter = inter.get(mode) or inter.get(EMULATOR) or next(iter(inter.values()), None)
        for proto in run.protocols():
            side = run.get(SIDE, WRITER_ALONE, proto, 1, 1, mode=mode)
            mat = run.get(MATRIX, WRITER_ALONE, proto, 1, 1, mode=mode)
            if side is not None and ref_inter is not None:
                r = round_ratio(side.ns, ref_inter.ns, side.per_round, side.reference_rounds)
                rows.append({"protocol": proto, "mode": mode, "ns": side.ns,
                             "reference_ns": ref_inter.ns, "ratio": r, "how": "interleaved"})
            elif mat is not None and (ref_alone or ref_inter) is not None:
                ref = ref_alone or ref_inter
                rows.append({"protocol": proto, "mode": mode, "ns": mat.ns,
                             "reference_ns": ref.ns, "ratio": mat.ns / ref.ns if ref.ns else None,
                             "how": "matrix"})
    ref_inter = inter.get(EMULATOR) or next(iter(inter.values()), None)
    return {"interleaved_ns": ref_inter.ns if ref_inter else None,
            "alone_ns": ref_alone.ns if ref_alone else None,
            "alone_min_ns": ref_alone.ns_min if ref_alone else None, "rows": rows}


# ---- the reader against writer activity ----

def duty_levels(run: Run) -> list[str]:
    seen = {f.level for f in run.of(DUTY)}
    return [lv for lv in DUTY_LEVELS if lv in seen] + sorted(seen - set(DUTY_LEVELS))


def duty(run: Run) -> list[dict]:
    """Per protocol (and mode): the reader's ns per snapshot and retries per
    read at each share of time the writer spends inside write sections."""
    out = []
    levels = duty_levels(run)
    for mode in run.modes():
        for proto in run.protocols():
            cells = {}
            for lv in levels:
                f = next(iter(run.of(DUTY, protocol=proto, mode=mode, level=lv)), None)
                if f is not None:
                    o = f.outcomes
                    cells[lv] = {"ns": f.ns, "retries_per_read": o.get("retries_per_read"),
                                 "accepted": o.get("accepted"),
                                 "rejected_odd": o.get("rejected_odd"),
                                 "rejected_invalid": o.get("rejected_invalid"),
                                 "duty": f.params.get("duty"),
                                 "duty_measured": f.params.get("duty_measured"),
                                 "hold_ns": f.params.get("hold_ns"),
                                 "alloc_ns": f.params.get("alloc_ns")}
            if cells:
                out.append({"protocol": proto, "mode": mode, "levels": cells})
    return out


# ---- thread scaling ----

def thread_scaling(run: Run) -> list[dict]:
    """The writer pair by writer threads, at each slot count with more than
    one thread count: ns per pair (a writer's own time) and the aggregate
    throughput (all pairs / the writers' wall time), alone and with a
    concurrent watchdog scan (bench/bench_scaling.py's runs of seqcount,
    v2-rwlock and global-spinlock with 1 to 8 writers are matrix figures)."""
    out = []
    for mode in run.modes():
        for role in (WRITER_ALONE, WRITER_WITH_READER):
            by_slots: dict[int, set] = {}
            for s, t in run.cases(MATRIX, role, mode):
                if t:
                    by_slots.setdefault(s, set()).add(t)
            for s, ts in sorted(by_slots.items()):
                if len(ts) < 2:
                    continue
                for proto in run.protocols():
                    pts = []
                    for t in sorted(ts):
                        f = run.get(MATRIX, role, proto, s, t, mode=mode)
                        if f is not None:
                            agg = f.aggregate if f.aggregate is not None else f.ns / t
                            pts.append({"threads": t, "ns_per_pair": f.ns,
                                        "aggregate_ns_per_pair": agg,
                                        "mpairs_per_s": 1e3 / agg if agg else None})
                    if pts:
                        out.append({"protocol": proto, "mode": mode, "role": role, "slots": s,
                                    "points": pts})
    return out


# ---- the instrumentation's overhead ----

def instrumentation_overhead(run: Run) -> list[dict]:
    """Each emulator-mode figure over the same case in protocol mode: what
    the instrumentation (stamps, witness, classification) costs."""
    out = []
    for f in run.figures:
        if f.mode != EMULATOR or f.protocol is None:
            continue
        key = (f.kind, f.role, f.protocol, f.slots, f.threads, f.series, f.state)
        g = run.get(f.kind, f.role, f.protocol, f.slots, f.threads, f.series, f.state,
                    mode=PROTOCOL, level=f.level)
        if g is not None and g.ns:
            out.append({"kind": key[0], "role": key[1], "protocol": key[2], "slots": key[3],
                        "threads": key[4], "emulator_ns": f.ns, "protocol_ns": g.ns,
                        "overhead": round_ratio(f.ns, g.ns, f.per_round, g.per_round)})
    return out


# ---- formatting shared by the tables, key figures and charts ----

def fmt(x: float | None) -> str:
    if x is None:
        return "-"
    if x >= 1000:
        return f"{x:,.0f}"
    if x >= 100:
        return f"{x:.0f}"
    return f"{x:.3g}" if x >= 1 else f"{x:.2g}"
