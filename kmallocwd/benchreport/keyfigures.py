"""The key figures: the few numbers the patch's changelog and the benchmarks' targets ask
about, each with a one-line label and how it was measured."""

from __future__ import annotations

from dataclasses import dataclass

from .analyse import SEED_COMPARED, bandwidth, fmt, reference, scan_linearity
from .model import (
    BASELINE, DUTY, EMULATOR, MATRIX, PROTOCOL, PY_WRITER, PYTHON, READ, READER_ALONE,
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
    """The figures the patch's changelog and the targets ask about: 1 slot, 1
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
        out.append(KeyFigure("reference_pair", "the patch's start/stop as a plain C loop "
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


# ---- the benchmarks' targets ----

REFERENCE_TARGET = 1.15   # seqcount's writer pair in protocol mode / the reference, at most
SCALING_TARGET = 0.2      # seqcount / v2-rwlock writer pair, 2 threads, at most (the patch's claim)


@dataclass(frozen=True)
class Target:
    key: str
    label: str
    value: float | None
    limit: float
    met: bool | None      # None: the file cannot tell
    detail: str


def targets(run: Run, baseline: str = BASELINE) -> list[Target]:
    """The benchmarks' two targets, judged on the file's figures: protocol mode
    when it has them, else emulator mode with a note that the target is for
    protocol mode."""
    out = []
    modes = run.modes()
    mode = PROTOCOL if PROTOCOL in modes else (modes[0] if modes else EMULATOR)
    note = "" if mode == PROTOCOL else f"; no protocol-mode figure yet: {mode} mode shown"
    ref = reference(run)
    row = next((r for r in ref["rows"] if r["protocol"] == baseline and r["mode"] == mode),
               None) if ref else None
    v = row["ratio"] if row else None
    out.append(Target(
        "writer_pair_over_reference",
        f"{baseline} writer pair / the patch's plain loop (1 slot, 1 thread) <= "
        f"{REFERENCE_TARGET}", v, REFERENCE_TARGET,
        None if v is None or mode != PROTOCOL else v <= REFERENCE_TARGET,
        (f"{fmt(row['ns'])} / {fmt(row['reference_ns'])} ns, {row['how']}" if row
         else "no reference or writer figure") + note))
    other = "v2-rwlock"
    pairs = [(s, run.get(MATRIX, WRITER_ALONE, baseline, s, 2, mode=mode),
              run.get(MATRIX, WRITER_ALONE, other, s, 2, mode=mode))
             for s, t in run.cases(MATRIX, WRITER_ALONE, mode) if t == 2]
    pairs = [(s, a, b) for s, a, b in pairs if a is not None and b is not None and b.ns]
    if pairs:
        s, a, b = pairs[0]
        v = a.ns / b.ns
        out.append(Target(
            "writer_pair_2_threads_over_rwlock",
            f"{baseline} / {other} writer pair, 2 threads ({s} slots) <= {SCALING_TARGET}",
            v, SCALING_TARGET, None if mode != PROTOCOL else v <= SCALING_TARGET,
            f"{fmt(a.ns)} / {fmt(b.ns)} ns per pair{note}"))
    else:
        out.append(Target("writer_pair_2_threads_over_rwlock",
                          f"{baseline} / {other} writer pair, 2 threads <= {SCALING_TARGET}",
                          None, SCALING_TARGET, None, f"no 2-thread figures of both{note}"))
    return out
