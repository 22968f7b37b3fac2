"""The report as text tables: one table per figure family, protocols as
rows, each cell the figure and (x.xx) its ratio to the baseline."""

from __future__ import annotations

from typing import Any, Callable

import kmallocwd.benchreport.analyse as analyse
import kmallocwd.benchreport.keyfigures as keyfigures
from .analyse import fmt
from .model import (
    BASELINE, MATRIX, MATRIX_ROLES, PY_READER, PY_WRITER, PYTHON, PYTHON_ROLES,
    READER_ALONE, ROLE_SHORT, ROLE_TITLES, SCAN, SCAN_ROLE, SCAN_SERIES, SCAN_TITLES, SIDE,
    SIDE_ROLES, WRITER_ALONE, WRITER_WITH_READER, Figure, Run,
)


def case_label(slots: int, threads: int | None) -> str:
    return f"S={slots}" + (f" T={threads}" if threads else "")


def _ns(f: Figure | None) -> float | None:
    return None if f is None else f.ns


def _grid(title: str, rows: list[tuple[str, list[str]]], cols: list[str]) -> list[str]:
    """A table of text cells; rows whose cells are all '-' are left out."""
    rows = [(r, cells) for r, cells in rows if any(c.strip() != "-" for c in cells)]
    if not rows:
        return []
    widths = [max([14, len(c) + 2] + [len(cs[i]) + 2 for _, cs in rows])
              for i, c in enumerate(cols)]
    pw = max([10] + [len(r) + 2 for r, _ in rows])
    lines = [title, "protocol".ljust(pw) + "".join(c.rjust(w) for c, w in zip(cols, widths))]
    lines += [r.ljust(pw) + "".join(x.rjust(w) for x, w in zip(cells, widths))
              for r, cells in rows]
    return lines + [""]


def ratio_table(run: Run, title: str, cols: list[tuple[str, Any]], baseline: str,
                value: Callable[[str, Any], Any]) -> list[str]:
    """Rows: protocols; cols: (label, key); value(proto, key) -> a Figure, ns
    or None.  Each cell: the figure and, in brackets, its ratio to the
    baseline's (for a Figure, Run.ratio: round by round when interleaved)."""
    rows = []
    for p in run.protocols():
        cells = []
        for _, k in cols:
            v, b = value(p, k), value(baseline, k)
            if isinstance(v, Figure):
                r = run.ratio(v, baseline)
                cells.append(fmt(v.ns) + (f" ({r:.2f})" if r is not None else ""))
            else:
                cells.append(fmt(v) + (f" ({v / b:.2f})" if v is not None and b else ""))
        rows.append((p, cells))
    return _grid(title, rows, [c for c, _ in cols])


def _m(run: Run, mode: str) -> str:
    """A title's mode tag, when the file has more than one mode."""
    return f" [{mode} mode]" if len(run.modes()) > 1 else ""


def header(run: Run, baseline: str) -> list[str]:
    m = run.machine
    head = [
        f"kmallocwd bench-report: {run.path}",
        f"run {run.datetime}; CPU {m['cpu']} x {m['cpus'] or '?'}; {m['system']}; {m['python']}",
    ]
    if run.commit.get("id"):
        head.append(f"commit {str(run.commit['id'])[:12]}"
                    + (" (uncommitted changes)" if run.commit.get("dirty") else ""))
    if run.settings:
        head.append("settings: " + ", ".join(f"{k} {v}" for k, v in run.settings.items()))
    head.append("modes: " + ", ".join(run.modes()) + " (emulator: the loops with the "
                "torn-read witness and knobs)")
    return head + [
        "Figures are medians over the rounds of ns per operation timed inside C (the cffi",
        f"call excluded); (x.xx) is the ratio to {baseline} in the same case.  S = slots,",
        "T = writer threads (2 cores here: T=4, and T=2 with a reader, oversubscribe).",
        "",
    ]


def key_lines(run: Run, baseline: str) -> list[str]:
    lines = []
    for mode in run.modes():
        lines.append("Key figures" + _m(run, mode))
        for k in keyfigures.key_figures(run, baseline, mode):
            val = "-" if k.value is None else (f"{k.value:.3f}" if k.unit == "x"
                                               else fmt(k.value))
            unit = "" if k.value is None or k.unit == "x" else f" {k.unit}"
            lines.append(f"  {k.label + ':':<72} {val}{unit}"
                         + (f"  ({k.detail})" if k.detail else ""))
        lines.append("")
    lines.append("Targets (judged in protocol mode)")
    for t in keyfigures.targets(run, baseline):
        verdict = {True: "met", False: "NOT met", None: "not judged"}[t.met]
        val = "-" if t.value is None else f"{t.value:.3f}"
        lines.append(f"  {t.label + ':':<72} {val}  {verdict} ({t.detail})")
    lines.append("")
    return lines


def reference_lines(run: Run) -> list[str]:
    ref = analyse.reference(run)
    if ref is None:
        return []
    parts = []
    if ref["interleaved_ns"] is not None:
        parts.append(f"{fmt(ref['interleaved_ns'])} ns interleaved with the protocols")
    if ref["alone_ns"] is not None:
        parts.append(f"{fmt(ref['alone_ns'])} ns alone (fastest round "
                     f"{fmt(ref['alone_min_ns'])})")
    lines = ["the patch's start_memalloc_timer()/stop_memalloc_timer() as a plain C loop "
             "(csrc/reference.c): " + "; ".join(parts)]
    modes = run.modes()
    cols = [m for m in modes if any(r["mode"] == m for r in ref["rows"])]
    rows = []
    for p in run.protocols():
        cells = []
        for m in cols:
            r = next((r for r in ref["rows"] if r["protocol"] == p and r["mode"] == m), None)
            cells.append("-" if r is None or r["ratio"] is None else
                         f"{fmt(r['ns'])} ns x{r['ratio']:.2f}")
        rows.append((p, cells))
    how = {r["how"] for r in ref["rows"]}
    lines += _grid("each protocol's writer pair alone (1 slot, 1 thread) and its ratio to the "
                   "reference (" + ", ".join(sorted(how)) + "; interleaved: median of the "
                   "round-by-round ratios)", rows, [f"{m} mode" for m in cols])
    return lines


def scan_limit_lines(run: Run, baseline: str) -> list[str]:
    lim = analyse.scan_limit(run)
    if lim is None:
        return []
    llc = lim["llc_bytes"]
    lines = [f"scan against the physical limit: memcpy of {lim['buffer_bytes'] / 2**20:.0f} MiB "
             f"(LLC {llc / 2**20:.0f} MiB) copies {lim['bytes_per_ns']:.3g} GB/s, so reading "
             f"one {lim['slot_bytes']}-byte slot costs at least {fmt(lim['limit_ns_per_slot'])} "
             f"ns at that bandwidth" if llc else
             f"scan against the physical limit: memcpy copies {lim['bytes_per_ns']:.3g} GB/s: "
             f"{fmt(lim['limit_ns_per_slot'])} ns per {lim['slot_bytes']}-byte slot"]
    for mode in run.modes():
        for series, state in SCAN_SERIES:
            rows = [r for r in lim["rows"] if r["mode"] == mode and r["series"] == series
                    and r["slot_state"] == state]
            if not rows:
                continue
            ns_ = sorted({p["slots"] for r in rows for p in r["points"]})
            cols = [f"N={n:,}" + ("*" if any(p["slots"] == n and p["in_cache"]
                                            for r in rows for p in r["points"]) else "")
                    for n in ns_]
            grid = []
            for r in rows:
                by = {p["slots"]: p for p in r["points"]}
                grid.append((r["protocol"], [f"{fmt(by[n]['ns_per_slot'])} x{by[n]['ratio']:.2f}"
                                             if n in by else "-" for n in ns_]))
            lines += _grid(f"{series} {state} slots: ns per slot and its ratio to the limit"
                           + _m(run, mode), grid, cols)
    lines.append("(* the slots fit in the LLC: below 1 is the cache's doing; a scan only "
                 "reads, a copy reads and writes)")
    return lines + [""]


def duty_lines(run: Run) -> list[str]:
    rows = analyse.duty(run)
    if not rows:
        return []
    levels = analyse.duty_levels(run)
    lines = []
    for mode in run.modes():
        mine = [r for r in rows if r["mode"] == mode]
        if not mine:
            continue
        grid = []
        for r in mine:
            cells = []
            for lv in levels:
                c = r["levels"].get(lv)
                cells.append("-" if c is None else
                             f"{fmt(c['ns'])} ({c['retries_per_read'] or 0:.2g})")
            grid.append((r["protocol"], cells))
        measured = []
        for lv in levels:
            ds = [r["levels"][lv]["duty_measured"] for r in mine
                  if lv in r["levels"] and r["levels"][lv]["duty_measured"] is not None]
            measured.append(f"{100 * sum(ds) / len(ds):.2g}%" if ds else "-")
        grid.append(("(measured)", measured))
        lines += _grid("reader against one writer that spends a share of its time inside write "
                       "sections (hold_ns / alloc_ns knobs), 1 slot: ns per snapshot "
                       "(retries per read)" + _m(run, mode), grid,
                       [f"{lv} in sections" if lv != "idle" else "idle" for lv in levels])
    return lines


def scaling_lines(run: Run, baseline: str) -> list[str]:
    rows = analyse.thread_scaling(run)
    if not rows:
        return []
    lines = []
    for mode in run.modes():
        for role in (WRITER_ALONE, WRITER_WITH_READER):
            for s in sorted({r["slots"] for r in rows if r["mode"] == mode
                             and r["role"] == role}):
                mine = [r for r in rows if r["mode"] == mode and r["role"] == role
                        and r["slots"] == s]
                ts = sorted({p["threads"] for r in mine for p in r["points"]})
                grid = []
                for r in mine:
                    by = {p["threads"]: p for p in r["points"]}
                    grid.append((r["protocol"], [
                        f"{fmt(by[t]['ns_per_pair'])} / {by[t]['mpairs_per_s']:.0f}"
                        if t in by and by[t]["mpairs_per_s"] else "-" for t in ts]))
                what = "alone" if role == WRITER_ALONE else "with a concurrent watchdog scan"
                lines += _grid(f"thread scaling, writer {what}, {s} slots: ns per pair "
                               f"(a writer's own time) / aggregate Mpairs/s" + _m(run, mode),
                               grid, [f"T={t}" for t in ts])
    return lines


def overhead_lines(run: Run) -> list[str]:
    rows = analyse.instrumentation_overhead(run)
    if not rows:
        return []
    grid = [(f"{r['protocol']}", [f"{r['kind']} {r['role']} {case_label(r['slots'], r['threads'])}",
                                  f"{fmt(r['emulator_ns'])} / {fmt(r['protocol_ns'])}",
                                  f"x{r['overhead']:.2f}"]) for r in rows]
    return _grid("the instrumentation's overhead: emulator-mode ns / protocol-mode ns", grid,
                 ["case", "ns", "overhead"])


def render(run: Run, baseline: str = BASELINE) -> str:
    lines = header(run, baseline) + key_lines(run, baseline)
    for mode in run.modes():
        tag = _m(run, mode)
        side = [r for r in SIDE_ROLES if run.of(SIDE, r, mode=mode)]
        if side:
            lines += ratio_table(
                run, "side by side, 1 slot, 1 writer, protocols interleaved round by round: "
                "ns per operation (median of the per-round ratios); reader+alloc: the "
                "writer's allocations last a while" + tag,
                [(ROLE_SHORT[r], r) for r in side], baseline,
                lambda p, r, mode=mode: run.get(SIDE, r, p, 1, None if r == READER_ALONE else 1,
                                                mode=mode))
        for role in MATRIX_ROLES:
            cases = run.cases(MATRIX, role, mode)
            if not cases:
                continue
            lines += ratio_table(run, ROLE_TITLES[role] + tag,
                                 [(case_label(s, t), (s, t)) for s, t in cases], baseline,
                                 lambda p, k, role=role, mode=mode: _ns(
                                     run.get(MATRIX, role, p, k[0], k[1], mode=mode)))
        for series, state in SCAN_SERIES:
            if not run.of(SCAN, series=series, state=state, mode=mode):
                continue
            ns_ = sorted({s for s, _ in run.cases(SCAN, mode=mode)})
            lines += ratio_table(run, SCAN_TITLES[(series, state)] + tag,
                                 [(f"N={n:,}", n) for n in ns_], baseline,
                                 lambda p, n, series=series, state=state, mode=mode: _ns(
                                     run.get(SCAN, SCAN_ROLE, p, n, None, series, state,
                                             mode=mode)))
    lines += linearity_lines(run)
    lines += scan_limit_lines(run, baseline)
    lines += reference_lines(run)
    lines += scaling_lines(run, baseline)
    lines += duty_lines(run)
    lines += overhead_lines(run)
    lines += python_lines(run, baseline)
    return "\n".join(lines).rstrip() + "\n"


def linearity_lines(run: Run) -> list[str]:
    lin = analyse.scan_linearity(run)
    if not lin:
        return []
    lines = ["scan linearity: ns per slot at the largest N / at the smallest, and the "
             "log-log slope of scan time against N (1.00 = linear)"]
    series = [(m, s, st) for m in run.modes() for s, st in SCAN_SERIES
              if any(x["mode"] == m and x["series"] == s and x["slot_state"] == st for x in lin)]
    by = {(x["protocol"], x["mode"], x["series"], x["slot_state"]): x for x in lin}
    grid = []
    for p in run.protocols():
        cells = []
        for m, s, st in series:
            x = by.get((p, m, s, st))
            cells.append("-" if x is None or x["growth"] is None else
                         f"x{x['growth']:.2f}, slope {x['loglog_slope']:.3f}")
        grid.append((p, cells))
    tag = len(run.modes()) > 1
    table = _grid("", grid, [f"{s} {st}" + (f" [{m}]" if tag else "") for m, s, st in series])
    return lines + table[1:] if table else []


def python_lines(run: Run, baseline: str) -> list[str]:
    py = run.of(PYTHON)
    if not py:
        return []
    roles = [r for r in PYTHON_ROLES if any(f.role == r for f in py)]
    lines = ratio_table(run, "Python-driven (timed in Python around a loop of cffi calls; "
                        "one slot): ns per operation", [(ROLE_SHORT[r], r) for r in roles],
                        baseline, lambda p, r: _ns(run.get(PYTHON, r, p, 1, 1)))
    c_role = {PY_WRITER: WRITER_ALONE, PY_READER: READER_ALONE}
    lines += ratio_table(run, "the same operations timed in one C loop (matrix, 1 slot, "
                         "1 thread), for comparison",
                         [(f"C: {ROLE_SHORT[r]}", r) for r in roles], baseline,
                         lambda p, r: _ns(run.get(MATRIX, c_role[r], p, 1,
                                                  1 if r == PY_WRITER else None)))
    return lines

