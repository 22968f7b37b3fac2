"""What the figures say: ratios, the scan's linearity and its physical
limit, the reference loop, the reader against writer activity, thread
scaling, and the key figures.  Pure functions of a Run, no printing."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable

from .model import (
    BANDWIDTH, BASELINE, DUTY, DUTY_LEVELS, EMULATOR, MATRIX, PROTOCOL, PY_WRITER, PYTHON,
    READ, READER_ALONE, READER_WITH_ALLOCATING, READER_WITH_WRITER, REFERENCE, SCAN,
    SCAN_ROLE, SCAN_SERIES, SIDE, VALID, WRITER_ALONE, WRITER_WITH_READER, Figure, Run,
    round_ratio,
)

# The protocols the seed's changelog compares the seqcount with: read_lock()
# (v2-rwlock) and the seed's own reader (v3).  Key figures about them are
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


# ---- the scan against the physical limit (issue 12, item 5) ----

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


# ---- the reference loop (issue 12, item 2) ----

def reference(run: Run) -> dict | None:
    """The seed's start/stop as a plain C loop, and each protocol's writer
    pair over it: from the side-by-side run when it interleaved the
    reference (ratio round by round), else from the matrix (1 slot, 1
    thread) over the stand-alone reference benchmark."""
    inter = [f for f in run.of(REFERENCE) if f.series == "interleaved"]
    alone = [f for f in run.of(REFERENCE) if f.series != "interleaved"]
    ref_inter = inter[0] if inter else None
    ref_alone = alone[0] if alone else None
    if ref_inter is None and ref_alone is None:
        return None
    rows = []
    for mode in run.modes():
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
    return {"interleaved_ns": ref_inter.ns if ref_inter else None,
            "alone_ns": ref_alone.ns if ref_alone else None,
            "alone_min_ns": ref_alone.ns_min if ref_alone else None, "rows": rows}


# ---- the reader against writer activity (issue 12, item 4) ----

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


# ---- thread scaling (issue 12, item 3) ----

def thread_scaling(run: Run) -> list[dict]:
    """The writer pair by writer threads, at each slot count with more than
    one thread count: ns per pair (a writer's own time) and the aggregate
    throughput (all pairs / the slowest thread's time), alone and with a
    concurrent watchdog scan.  SLOT-IN (issue 12, item 3): the lead's runs
    with 8 threads and the global-lock protocols (v2-rwlock as one global
    rwlock, v1-spinlock) are matrix figures too, and appear here as they
    are, with no change to this code."""
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


# ---- the instrumentation's overhead (issue 12, item 1) ----

def instrumentation_overhead(run: Run) -> list[dict]:
    """Each emulator-mode figure over the same case in protocol mode.
    Empty until the lead's protocol-mode build records mode="protocol"."""
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


# ---- key figures ----

@dataclass(frozen=True)
class KeyFigure:
    key: str
    label: str
    value: float | None
    unit: str
    detail: str = ""


def fmt(x: float | None) -> str:
    if x is None:
        return "-"
    if x >= 1000:
        return f"{x:,.0f}"
    if x >= 100:
        return f"{x:.0f}"
    return f"{x:.3g}" if x >= 1 else f"{x:.2g}"


def _reader_detail(f: Figure) -> str:
    o = f.outcomes
    return (f"retries/read {o.get('retries_per_read', 0):.3g}, accepted "
            f"{100 * o.get('accepted', 0):.1f}%, odd {100 * o.get('rejected_odd', 0):.2f}%, "
            f"invalid {100 * o.get('rejected_invalid', 0):.1f}%")


def key_figures(run: Run, baseline: str = BASELINE, mode: str = EMULATOR) -> list[KeyFigure]:
    """The figures the seed's changelog and the issues ask about: 1 slot, 1
    writer, from the interleaved side-by-side runs when the file has them
    (ratios taken round by round), else from the matrix."""
    have = set(run.protocols())
    others = [p for p in SEED_COMPARED if p in have and p != baseline]

    def k(role: str, proto: str) -> Figure | None:
        threads = None if role == READER_ALONE else 1
        return (run.get(SIDE, role, proto, 1, threads, mode=mode)
                or run.get(MATRIX, role, proto, 1, threads, mode=mode))

    def ns(f: Figure | None) -> float | None:
        return f.ns if f else None

    def how(f: Figure | None) -> str:
        return "interleaved" if f is not None and f.kind == SIDE else "matrix"

    out: list[KeyFigure] = []
    seq = k(WRITER_ALONE, baseline)
    out.append(KeyFigure("writer_pair", f"{baseline} writer start/stop pair alone "
                         "(1 slot, 1 thread)", ns(seq), "ns", how(seq) if seq else ""))
    ref = reference(run)
    if ref:
        row = next((r for r in ref["rows"] if r["protocol"] == baseline
                    and r["mode"] == mode), None)
        out.append(KeyFigure("reference_pair", "the seed's start/stop as a plain C loop "
                             "(reference)", ref["interleaved_ns"] or ref["alone_ns"], "ns"))
        if row:
            out.append(KeyFigure("writer_pair_ratio_reference",
                                 f"{baseline} writer pair / reference ({mode} mode)",
                                 row["ratio"], "x", row["how"]))
    for other in others:
        for role, where in ((WRITER_ALONE, "alone"), (WRITER_WITH_READER, "with a reader")):
            a, b = k(role, baseline), k(role, other)
            out.append(KeyFigure(
                f"writer_pair_ratio_{other}_{'alone' if role == WRITER_ALONE else 'reader'}",
                f"writer pair {baseline} / {other}, {where} (1 slot, 1 thread)",
                run.ratio(a, other), "x",
                f"{fmt(ns(a))} / {fmt(ns(b))} ns, {how(a)}" if a and b else ""))
    py = run.get(PYTHON, PY_WRITER, baseline, 1, 1, mode=mode)
    if py:
        out.append(KeyFigure("python_pair", f"Python-driven start+stop pair, {baseline} "
                             "(one cffi call each)", py.ns, "ns",
                             f"the same pair in a C loop: {fmt(ns(seq))} ns" if seq else ""))
    scans = run.of(SCAN, SCAN_ROLE, protocol=baseline, series=READ, state=VALID, mode=mode)
    if scans:
        f = max(scans, key=lambda f: f.slots)
        idle = run.get(SCAN, SCAN_ROLE, baseline, f.slots, None, READ, "idle", mode=mode)
        lin = [x for x in scan_linearity(run) if x["protocol"] == baseline
               and x["mode"] == mode and x["series"] == READ and x["slot_state"] == VALID]
        detail = [f"idle slots {fmt(ns(idle))}" if idle else "",
                  f"log-log slope {lin[0]['loglog_slope']:.3f}"
                  if lin and lin[0]["loglog_slope"] is not None else ""]
        out.append(KeyFigure("scan_per_slot", f"scan of {f.slots:,} valid slots, {baseline}",
                             f.ns, "ns/slot", "; ".join(d for d in detail if d)))
        bw = bandwidth(run)
        if bw is not None and bw.ns:
            out.append(KeyFigure(
                "scan_per_slot_ratio_limit",
                f"scan of {f.slots:,} valid slots / copy-bandwidth limit, {baseline}",
                f.ns / bw.ns, "x", f"limit {fmt(bw.ns)} ns/slot = {bw.params['slot_bytes']} B "
                f"at {bw.params['slot_bytes'] / bw.ns:.3g} GB/s"))
    for other in [baseline] + [p for p in others if p == "v3"]:
        f = k(READER_WITH_WRITER, other)
        if f:
            out.append(KeyFigure(f"reader_with_writer_{other}",
                                 f"reader with a concurrent writer, {other} (1 slot, 1 writer)",
                                 f.ns, "ns", f"{_reader_detail(f)}; {how(f)}"))
    for other in others:
        a = k(READER_WITH_WRITER, baseline)
        if other == "v3" and a:
            out.append(KeyFigure("reader_with_writer_ratio_v3",
                                 f"reader with a concurrent writer, {baseline} / v3 "
                                 "(1 slot, 1 writer)", run.ratio(a, "v3"), "x", how(a)))
    a = run.get(SIDE, READER_WITH_ALLOCATING, baseline, 1, 1, mode=mode)
    if a:
        alloc = a.background.get("writer_alloc_ns")
        out.append(KeyFigure(f"reader_with_allocating_writer_{baseline}",
                             f"reader with a writer allocating {alloc} ns at a time, {baseline}",
                             a.ns, "ns", f"{_reader_detail(a)}; interleaved"))
        if "v3" in others and run.peer(a, "v3") is not None:
            out.append(KeyFigure("reader_with_allocating_writer_ratio_v3",
                                 f"reader with an allocating writer, {baseline} / v3",
                                 run.ratio(a, "v3"), "x", "interleaved"))
    for lv in ("100%",):
        f = next(iter(run.of(DUTY, protocol=baseline, mode=mode, level=lv)), None)
        if f is not None:
            out.append(KeyFigure(f"reader_duty_{lv}", f"reader against a writer inside "
                                 f"sections {lv} of the time, {baseline}", f.ns, "ns",
                                 _reader_detail(f)))
    if "v3" in others:
        a, b = k(READER_ALONE, baseline), k(READER_ALONE, "v3")
        out.append(KeyFigure("reader_alone_ratio_v3",
                             f"reader alone, {baseline} / v3 (1 valid slot)",
                             run.ratio(a, "v3"), "x",
                             f"{fmt(ns(a))} / {fmt(ns(b))} ns, {how(a)}" if a and b else ""))
    return out
