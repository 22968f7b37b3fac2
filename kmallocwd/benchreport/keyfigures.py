"""The key figures: the few numbers the seed's changelog and the issues ask
about, each with a one-line label and how it was measured."""

from __future__ import annotations

from dataclasses import dataclass

from .analyse import SEED_COMPARED, bandwidth, fmt, reference, scan_linearity
from .model import (
    BASELINE, DUTY, EMULATOR, MATRIX, PY_WRITER, PYTHON, READ, READER_ALONE,
    READER_WITH_ALLOCATING, READER_WITH_WRITER, SCAN, SCAN_ROLE, SIDE, VALID, WRITER_ALONE,
    WRITER_WITH_READER, Figure, Run,
)


@dataclass(frozen=True)
class KeyFigure:
    key: str
    label: str
    value: float | None
    unit: str
    detail: str = ""


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
