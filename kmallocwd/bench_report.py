"""``kmallocwd bench-report``: one run of ``make bench`` (the JSON file that
pytest-benchmark writes), as tables of ns per operation with each figure's
ratio to a baseline protocol (``seqcount``) beside it, the key figures the
seed's changelog invites to check, and optionally a PNG chart.

The figures are those the benchmarks timed inside C (``extra_info`` of
each benchmark, see bench/harness.py), not pytest-benchmark's own batch
timings, which include the cffi call and the threads' start.
"""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from kmallocwd import protocols

SCHEMA = 1
BASELINE = "seqcount"

WRITER_ALONE = "writer-alone"
WRITER_WITH_READER = "writer-with-reader"
READER_ALONE = "reader-alone"
READER_WITH_WRITER = "reader-with-writer"
MATRIX_ROLES = (WRITER_ALONE, WRITER_WITH_READER, READER_ALONE, READER_WITH_WRITER)
READER_WITH_ALLOCATING = "reader-with-allocating-writer"
SIDE_ROLES = MATRIX_ROLES + (READER_WITH_ALLOCATING,)
PY_WRITER = "py-writer-pair"
PY_READER = "py-reader-read"
PYTHON_ROLES = (PY_WRITER, PY_READER)
SCAN = "scan"
SIDE = "side-by-side"
KINDS = ("matrix", "scan", "python", SIDE)
# The scan's series: (mode, slot state), the headline first.
SCAN_SERIES = (("read", "valid"), ("read", "idle"), ("checked", "valid"))

ROLE_TITLES = {
    WRITER_ALONE: "writer alone: ns per start/stop pair",
    WRITER_WITH_READER: "writer with a concurrent reader: ns per start/stop pair",
    READER_ALONE: "reader alone (slots valid): ns per slot read",
    READER_WITH_WRITER: "reader with concurrent writers: ns per slot read",
    READER_WITH_ALLOCATING: "reader with a writer whose allocations last a while: ns per read",
    PY_WRITER: "Python-driven start+stop pair (2 cffi calls): ns per pair",
    PY_READER: "Python-driven read (1 cffi call): ns per read",
}
ROLE_SHORT = {PY_WRITER: "start+stop pair", PY_READER: "read", WRITER_ALONE: "writer",
              WRITER_WITH_READER: "writer+reader", READER_ALONE: "reader",
              READER_WITH_WRITER: "reader+writer", READER_WITH_ALLOCATING: "reader+alloc"}
SCAN_TITLES = {
    ("read", "valid"): "scan of N valid slots (protocol read + time check): ns per slot",
    ("read", "idle"): "scan of N idle slots (valid == 0): ns per slot",
    ("checked", "valid"): "emulator's watchdog scan (read + torn-read check), valid slots: "
                          "ns per slot",
}


class BenchReportError(ValueError):
    """The file is not a readable run of ``make bench``; one line."""


class PlotUnavailable(RuntimeError):
    """matplotlib is not installed (the ``plot`` extra)."""


@dataclass(frozen=True)
class Figure:
    """One benchmark's C-timed figure."""

    name: str
    kind: str
    role: str
    protocol: str
    slots: int
    threads: int | None
    ns: float
    ns_min: float
    ns_max: float
    rounds: int
    ops: int
    mode: str | None = None
    state: str | None = None
    aggregate: float | None = None
    outcomes: dict = field(default_factory=dict)
    background: dict = field(default_factory=dict)
    per_round: tuple[float, ...] = ()  # side-by-side: the figure of each round

    @property
    def case(self) -> tuple:
        """What must match for two figures to be compared across protocols."""
        return (self.kind, self.role, self.slots, self.threads, self.mode, self.state)


@dataclass
class Run:
    path: str
    datetime: str
    machine: dict
    commit: dict
    settings: dict
    figures: list[Figure]

    def __post_init__(self) -> None:
        self._by: dict[tuple, Figure] = {(f.case, f.protocol): f for f in self.figures}

    def get(self, kind: str, role: str, protocol: str, slots: int, threads: int | None,
            mode: str | None = None, state: str | None = None) -> Figure | None:
        return self._by.get(((kind, role, slots, threads, mode, state), protocol))

    def peer(self, f: Figure, protocol: str) -> Figure | None:
        """The figure of the same case for another protocol."""
        return self._by.get((f.case, protocol))

    def ratio(self, f: Figure | None, baseline: str = BASELINE) -> float | None:
        """f's figure over the baseline protocol's in the same case."""
        if f is None:
            return None
        b = self.peer(f, baseline)
        if b is None or not b.ns:
            return None
        if f.per_round and len(f.per_round) == len(b.per_round) and all(b.per_round):
            # interleaved rounds: the median of the round-by-round ratios
            return statistics.median(x / y for x, y in zip(f.per_round, b.per_round))
        return f.ns / b.ns

    def protocols(self) -> list[str]:
        seen = {f.protocol for f in self.figures}
        known = [p for p in protocols.NAMES if p in seen]
        return known + sorted(seen - set(known))

    def cases(self, kind: str, role: str | None = None) -> list[tuple[int, int | None]]:
        """(slots, threads) of a kind/role, in order."""
        out = {(f.slots, f.threads) for f in self.figures
               if f.kind == kind and (role is None or f.role == role)}
        return sorted(out, key=lambda c: (c[0], c[1] or 0))


# ---- loading ----

def _expect(cond: bool, path: str, what: str) -> None:
    if not cond:
        raise BenchReportError(
            f"{path}: {what}; expected the JSON file of a `make bench` run "
            f"(pytest bench --benchmark-only, written under bench/results/)")


def _num(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _figures(path: str, b: dict) -> list[Figure]:
    info = b.get("extra_info")
    if not isinstance(info, dict) or "kmallocwd" not in info:
        return []  # some other benchmark in the same file: not ours
    name = str(b.get("name", "?"))
    if info.get("kmallocwd") != SCHEMA:
        raise BenchReportError(f"{path}: benchmark {name} has extra_info schema "
                               f"{info.get('kmallocwd')!r}; this report reads schema {SCHEMA}")
    for k in ("kind", "role"):
        _expect(isinstance(info.get(k), str), path, f"benchmark {name} has no '{k}' in extra_info")
    _expect(info["kind"] in KINDS, path, f"benchmark {name} has an unknown kind {info['kind']!r}")
    _expect(isinstance(info.get("slots"), int), path, f"benchmark {name} has no 'slots'")
    threads = info.get("threads")
    _expect(threads is None or isinstance(threads, int), path,
            f"benchmark {name} has a non-integer 'threads'")
    if info["kind"] == SIDE:
        protos = info.get("protocols")
        _expect(isinstance(protos, dict) and bool(protos), path,
                f"benchmark {name} has no 'protocols' in extra_info")
        return [_one(path, f"{name}[{p}]", {**info, **d, "protocol": p}, SIDE)
                for p, d in protos.items() if isinstance(d, dict)]
    _expect(isinstance(info.get("protocol"), str), path,
            f"benchmark {name} has no 'protocol' in extra_info")
    return [_one(path, name, info, info["kind"])]


def _one(path: str, name: str, info: dict, kind: str) -> Figure:
    try:
        return _figure(path, name, info, kind)
    except (TypeError, ValueError, KeyError) as exc:
        if isinstance(exc, BenchReportError):
            raise
        raise BenchReportError(f"{path}: benchmark {name} has a malformed extra_info "
                               f"({type(exc).__name__}: {exc})") from None


def _figure(path: str, name: str, info: dict, kind: str) -> Figure:
    for k in ("ns_per_op", "ns_per_op_min", "ns_per_op_max"):
        _expect(_num(info.get(k)) and info[k] >= 0, path,
                f"benchmark {name} has no number '{k}' in extra_info")
    agg = info.get("aggregate_ns_per_op")
    rounds = info.get("ns_per_op_rounds")
    per_round = tuple(float(x) for x in rounds) if isinstance(rounds, list) and all(
        _num(x) for x in rounds) else ()
    return Figure(
        name=name, kind=kind, role=info["role"], protocol=info["protocol"],
        slots=info["slots"], threads=info.get("threads"), ns=float(info["ns_per_op"]),
        ns_min=float(info["ns_per_op_min"]), ns_max=float(info["ns_per_op_max"]),
        rounds=int(info.get("rounds", 0)), ops=int(info.get("ops_per_round", 0)),
        mode=info.get("mode"), state=info.get("slot_state") if kind == "scan" else None,
        aggregate=float(agg) if _num(agg) else None,
        outcomes=info.get("outcomes") or {}, background=info.get("background") or {},
        per_round=per_round,
    )


def load(path: str | Path) -> Run:
    """Read and check one run; BenchReportError (one line) if it is not one."""
    p = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BenchReportError(f"{p}: no such file; expected the JSON file of a `make bench` "
                               f"run (under bench/results/)") from None
    except IsADirectoryError:
        raise BenchReportError(f"{p}: is a directory; expected the JSON file of a "
                               f"`make bench` run (under bench/results/)") from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise BenchReportError(f"{p}: cannot read it ({reason})") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BenchReportError(
            f"{p}: not JSON ({exc.msg} at line {exc.lineno}); expected the JSON file of a "
            f"`make bench` run (under bench/results/)") from None
    _expect(isinstance(doc, dict) and isinstance(doc.get("benchmarks"), list), p,
            "not a pytest-benchmark file (no 'benchmarks' list)")
    figures = []
    for b in doc["benchmarks"]:
        _expect(isinstance(b, dict), p, "a 'benchmarks' entry is not an object")
        figures += _figures(p, b)
    _expect(bool(figures), p, "no kmallocwd benchmark in it (none has extra_info from bench/)")
    mi = doc.get("machine_info") if isinstance(doc.get("machine_info"), dict) else {}
    km = doc.get("kmallocwd") if isinstance(doc.get("kmallocwd"), dict) else {}
    cpu = mi.get("cpu") if isinstance(mi.get("cpu"), dict) else {}
    machine = {
        "cpu": km.get("cpu_model") or cpu.get("brand_raw") or mi.get("processor") or "?",
        "cpus": km.get("cpus") or cpu.get("count"),
        "arch": mi.get("machine"),
        "system": " ".join(str(x) for x in (mi.get("system"), mi.get("release")) if x),
        "python": " ".join(str(x) for x in (mi.get("python_implementation"),
                                             mi.get("python_version")) if x),
        "node": mi.get("node"),
    }
    ci = doc.get("commit_info") if isinstance(doc.get("commit_info"), dict) else {}
    commit = {"id": ci.get("id"), "dirty": ci.get("dirty"), "branch": ci.get("branch")}
    settings = {k: km.get(k) for k in ("scale", "rounds", "pinned") if k in km}
    return Run(path=p, datetime=str(doc.get("datetime", "?")), machine=machine,
               commit=commit, settings=settings, figures=figures)


# ---- analysis ----

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


def scan_linearity(run: Run) -> list[dict]:
    out = []
    for mode, state in SCAN_SERIES:
        for proto in run.protocols():
            pts = sorted((f.slots, f.ns) for f in run.figures
                         if f.kind == "scan" and f.protocol == proto and f.mode == mode
                         and f.state == state)
            if not pts:
                continue
            out.append({
                "protocol": proto, "mode": mode, "slot_state": state,
                "ns_per_slot": {str(n): ns for n, ns in pts},
                "growth": pts[-1][1] / pts[0][1] if len(pts) > 1 and pts[0][1] else None,
                "loglog_slope": loglog_slope(pts),
            })
    return out


@dataclass(frozen=True)
class KeyFigure:
    key: str
    label: str
    value: float | None
    unit: str
    detail: str = ""


def key_figures(run: Run, baseline: str = BASELINE) -> list[KeyFigure]:
    """The figures the seed's changelog and the issue ask about: 1 slot, 1
    writer, from the interleaved side-by-side runs when the file has them
    (ratios taken round by round), else from the matrix."""
    def k(role: str, proto: str) -> Figure | None:
        threads = None if role == READER_ALONE else 1
        return run.get(SIDE, role, proto, 1, threads) or run.get("matrix", role, proto, 1,
                                                                  threads)

    def ns(f: Figure | None) -> float | None:
        return f.ns if f else None

    def how(f: Figure | None) -> str:
        return "interleaved" if f is not None and f.kind == SIDE else "matrix"

    out: list[KeyFigure] = []
    seq = k(WRITER_ALONE, baseline)
    out.append(KeyFigure("writer_pair", f"{baseline} writer start/stop pair alone "
                         "(1 slot, 1 thread)", ns(seq), "ns", how(seq) if seq else ""))
    for other in ("v2-rwlock", "v3"):
        for role, where in ((WRITER_ALONE, "alone"), (WRITER_WITH_READER, "with a reader")):
            a, b = k(role, baseline), k(role, other)
            out.append(KeyFigure(
                f"writer_pair_ratio_{other}_{'alone' if role == WRITER_ALONE else 'reader'}",
                f"writer pair {baseline} / {other}, {where} (1 slot, 1 thread)",
                run.ratio(a, other), "x",
                f"{_fmt(ns(a))} / {_fmt(ns(b))} ns, {how(a)}" if a and b else ""))
    best = [f for f in run.figures if f.kind == "matrix" and f.role == WRITER_ALONE
            and f.protocol == baseline and f.threads == 1]
    if best:
        f = min(best, key=lambda f: f.ns)
        out.append(KeyFigure("writer_pair_best", f"{baseline} writer pair alone, fastest "
                             f"slot count ({f.slots} slots, 1 thread)", f.ns, "ns", "matrix"))
    py = run.get("python", PY_WRITER, baseline, 1, 1)
    out.append(KeyFigure("python_pair", f"Python-driven start+stop pair, {baseline} "
                         "(one cffi call each)", ns(py), "ns",
                         f"the same pair in a C loop: {_fmt(ns(seq))} ns" if seq else ""))
    scans = [f for f in run.figures if f.kind == "scan" and f.protocol == baseline
             and f.mode == "read" and f.state == "valid"]
    if scans:
        f = max(scans, key=lambda f: f.slots)
        idle = run.get("scan", SCAN, baseline, f.slots, None, "read", "idle")
        chk = run.get("scan", SCAN, baseline, f.slots, None, "checked", "valid")
        lin = [x for x in scan_linearity(run) if x["protocol"] == baseline
               and x["mode"] == "read" and x["slot_state"] == "valid"]
        detail = [f"idle slots {_fmt(ns(idle))}" if idle else "",
                  f"with the torn-read check {_fmt(ns(chk))}" if chk else "",
                  f"log-log slope {lin[0]['loglog_slope']:.3f}"
                  if lin and lin[0]["loglog_slope"] is not None else ""]
        out.append(KeyFigure("scan_per_slot", f"scan of {f.slots:,} valid slots, {baseline}",
                             f.ns, "ns/slot", "; ".join(d for d in detail if d)))
    a, b = k(READER_WITH_WRITER, baseline), k(READER_WITH_WRITER, "v3")
    for f, proto in ((a, baseline), (b, "v3")):
        if f:
            o = f.outcomes
            out.append(KeyFigure(
                f"reader_with_writer_{proto}",
                f"reader with a concurrent writer, {proto} (1 slot, 1 writer)", f.ns, "ns",
                f"retries/read {o.get('retries_per_read', 0):.3g}, accepted "
                f"{100 * o.get('accepted', 0):.1f}%, odd {100 * o.get('rejected_odd', 0):.2f}%, "
                f"invalid {100 * o.get('rejected_invalid', 0):.1f}%; {how(f)}"))
    out.append(KeyFigure("reader_with_writer_ratio_v3",
                         f"reader with a concurrent writer, {baseline} / v3 (1 slot, 1 writer)",
                         run.ratio(a, "v3"), "x", how(a) if a else ""))
    a, b = (run.get(SIDE, READER_WITH_ALLOCATING, p, 1, 1) for p in (baseline, "v3"))
    for f, proto in ((a, baseline), (b, "v3")):
        if f:
            o = f.outcomes
            alloc = f.background.get("writer_alloc_ns")
            out.append(KeyFigure(
                f"reader_with_allocating_writer_{proto}",
                f"reader with a writer allocating {alloc} ns at a time, {proto}", f.ns, "ns",
                f"retries/read {o.get('retries_per_read', 0):.3g}, accepted "
                f"{100 * o.get('accepted', 0):.1f}%, odd {100 * o.get('rejected_odd', 0):.2f}%, "
                f"invalid {100 * o.get('rejected_invalid', 0):.1f}%; interleaved"))
    if a and b:
        out.append(KeyFigure("reader_with_allocating_writer_ratio_v3",
                             f"reader with an allocating writer, {baseline} / v3",
                             run.ratio(a, "v3"), "x", "interleaved"))
    a, b = k(READER_ALONE, baseline), k(READER_ALONE, "v3")
    out.append(KeyFigure("reader_alone_ratio_v3",
                         f"reader alone, {baseline} / v3 (1 valid slot)", run.ratio(a, "v3"), "x",
                         f"{_fmt(ns(a))} / {_fmt(ns(b))} ns, {how(a)}" if a and b else ""))
    return out


# ---- text ----

def _fmt(x: float | None) -> str:
    if x is None:
        return "-"
    if x >= 1000:
        return f"{x:,.0f}"
    if x >= 100:
        return f"{x:.0f}"
    return f"{x:.3g}" if x >= 1 else f"{x:.2g}"


def _case_label(slots: int, threads: int | None) -> str:
    return f"S={slots}" + (f" T={threads}" if threads else "")


def _ns(f: Figure | None) -> float | None:
    return None if f is None else f.ns


def _table(run: Run, title: str, cols: list[tuple[str, Any]], baseline: str,
           value) -> list[str]:
    """Rows: protocols; cols: (label, key); value(proto, key) -> a Figure, ns
    or None.  Each cell: the figure and, in brackets, its ratio to the
    baseline's (for a Figure, Run.ratio: round by round when interleaved)."""
    protos = run.protocols()
    width = max([14] + [len(c) + 2 for c, _ in cols])
    pw = max(len(p) for p in protos) + 2
    lines = [title, "protocol".ljust(pw) + "".join(c.rjust(width) for c, _ in cols)]
    for p in protos:
        cells = []
        for _, k in cols:
            v, b = value(p, k), value(baseline, k)
            if isinstance(v, Figure):
                r = run.ratio(v, baseline)
                txt = _fmt(v.ns) + (f" ({r:.2f})" if r is not None else "")
            else:
                txt = _fmt(v) + (f" ({v / b:.2f})" if v is not None and b else "")
            cells.append(txt.rjust(width))
        if all(c.strip() == "-" for c in cells):
            continue
        lines.append(p.ljust(pw) + "".join(cells))
    return lines + [""]


def render(run: Run, baseline: str = BASELINE) -> str:
    m = run.machine
    head = [
        f"kmallocwd bench-report: {run.path}",
        f"run {run.datetime}; CPU {m['cpu']} x {m['cpus']}; {m['system']}; {m['python']}",
    ]
    if run.commit.get("id"):
        head.append(f"commit {str(run.commit['id'])[:12]}"
                    + (" (uncommitted changes)" if run.commit.get("dirty") else ""))
    if run.settings:
        head.append("settings: " + ", ".join(f"{k} {v}" for k, v in run.settings.items()))
    head += [
        "Figures are medians over the rounds of ns per operation timed inside C (the cffi",
        f"call excluded); (x.xx) is the ratio to {baseline} in the same case.  S = slots,",
        "T = writer threads (2 cores here: T=4, and T=2 with a reader, oversubscribe).",
        "",
    ]
    lines = head + ["Key figures"]
    for k in key_figures(run, baseline):
        val = "-" if k.value is None else (f"{k.value:.3f}" if k.unit == "x" else _fmt(k.value))
        unit = "" if k.value is None or k.unit == "x" else f" {k.unit}"
        lines.append(f"  {k.label + ':':<72} {val}{unit}" + (f"  ({k.detail})" if k.detail else ""))
    lines.append("")

    side = [r for r in SIDE_ROLES if any(f.kind == SIDE and f.role == r for f in run.figures)]
    if side:
        cols = [(ROLE_SHORT[r], r) for r in side]
        lines += _table(run, "side by side, 1 slot, 1 writer, protocols interleaved round by "
                        "round: ns per operation (median of the per-round ratios); "
                        "reader+alloc: the writer's allocations last a while", cols,
                        baseline, lambda p, r: run.get(SIDE, r, p, 1,
                                                       None if r == READER_ALONE else 1))

    for role in MATRIX_ROLES:
        cases = run.cases("matrix", role)
        if not cases:
            continue
        cols = [(_case_label(s, t), (s, t)) for s, t in cases]
        lines += _table(run, ROLE_TITLES[role], cols, baseline,
                        lambda p, k, role=role: _ns(run.get("matrix", role, p, k[0], k[1])))
        if role == WRITER_ALONE and any(t and t > 1 for _, t in cases):
            tcols = [(_case_label(s, t), (s, t)) for s, t in cases if t and t > 1]
            lines += _table(run, "writer alone, all threads together: slowest thread's time / "
                            "all pairs (throughput), ns per pair", tcols, baseline,
                            lambda p, k: _agg(run.get("matrix", WRITER_ALONE, p, k[0], k[1])))

    cases = run.cases("scan")
    for mode, state in SCAN_SERIES:
        ns_ = sorted({s for s, _ in cases})
        figs = [f for f in run.figures if f.kind == "scan" and f.mode == mode
                and f.state == state]
        if not figs:
            continue
        cols = [(f"N={n:,}", n) for n in ns_]
        lines += _table(run, SCAN_TITLES.get((mode, state), f"scan {mode} {state}"), cols,
                        baseline, lambda p, n, mode=mode, state=state:
                        _ns(run.get("scan", SCAN, p, n, None, mode, state)))
    lin = scan_linearity(run)
    if lin:
        lines.append("scan linearity: ns per slot at the largest N / at the smallest, and the "
                     "log-log slope of scan time against N (1.00 = linear)")
        series = [(m_, s_) for m_, s_ in SCAN_SERIES if any(x["mode"] == m_ and
                                                            x["slot_state"] == s_ for x in lin)]
        pw = max(len(p) for p in run.protocols()) + 2
        lines.append("protocol".ljust(pw) + "".join(f"{m_} {s_}".rjust(22) for m_, s_ in series))
        by = {(x["protocol"], x["mode"], x["slot_state"]): x for x in lin}
        for p in run.protocols():
            cells = []
            for m_, s_ in series:
                x = by.get((p, m_, s_))
                if x is None or x["growth"] is None:
                    cells.append("-".rjust(22))
                else:
                    cells.append(f"x{x['growth']:.2f}, slope {x['loglog_slope']:.3f}".rjust(22))
            lines.append(p.ljust(pw) + "".join(cells))
        lines.append("")

    py = [f for f in run.figures if f.kind == "python"]
    if py:
        cols = [(r, r) for r in PYTHON_ROLES if any(f.role == r for f in py)]
        lines += _table(run, "Python-driven (timed in Python around a loop of cffi calls; "
                        "one slot): ns per operation", [(ROLE_SHORT[r], r) for _, r in cols],
                        baseline, lambda p, r: _ns(run.get("python", r, p, 1, 1)))
        c1 = [(f"C: {ROLE_SHORT[r]}", r) for _, r in cols]
        c_role = {PY_WRITER: WRITER_ALONE, PY_READER: READER_ALONE}
        lines += _table(run, "the same operations timed in one C loop (matrix, 1 slot, "
                        "1 thread), for comparison", c1, baseline,
                        lambda p, r: _ns(run.get("matrix", c_role[r], p, 1,
                                                 1 if r == PY_WRITER else None)))
    return "\n".join(lines).rstrip() + "\n"


def _agg(f: Figure | None) -> float | None:
    """f's aggregate (throughput) ns per pair."""
    return None if f is None else f.aggregate


# ---- JSON ----

def to_dict(run: Run, baseline: str = BASELINE) -> dict:
    figs = []
    for f in run.figures:
        r = run.ratio(f, baseline)
        d = {
            "name": f.name, "kind": f.kind, "role": f.role, "protocol": f.protocol,
            "slots": f.slots, "threads": f.threads, "ns_per_op": f.ns,
            "ns_per_op_min": f.ns_min, "ns_per_op_max": f.ns_max,
            f"ratio_to_{baseline}": None if r is None else round(r, 4),
            "rounds": f.rounds, "ops_per_round": f.ops,
        }
        if f.kind == "scan":
            d["mode"], d["slot_state"] = f.mode, f.state
        if f.aggregate is not None:
            d["aggregate_ns_per_op"] = f.aggregate
        if f.per_round:
            d["ns_per_op_rounds"] = list(f.per_round)
        if f.outcomes:
            d["outcomes"] = f.outcomes
        if f.background:
            d["background"] = f.background
        figs.append(d)
    return {
        "file": run.path,
        "datetime": run.datetime,
        "machine": run.machine,
        "commit": run.commit,
        "settings": run.settings,
        "baseline": baseline,
        "key_figures": [{"key": k.key, "label": k.label, "value": k.value, "unit": k.unit,
                         "detail": k.detail} for k in key_figures(run, baseline)],
        "figures": figs,
        "scan_linearity": scan_linearity(run),
    }


# ---- chart ----

def plot(run: Run, path: str | Path, baseline: str = BASELINE) -> None:
    """Write a PNG: ns per operation by protocol and role (one panel per role,
    one bar per slots/threads case, log scale), the Python-driven costs, and
    the scan's ns per slot against N.  PlotUnavailable without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise PlotUnavailable("--png needs matplotlib, which is not installed: install the "
                              "plot extra (pip install 'kmallocwd[plot]', or "
                              "pip install -e '.[plot]' in the source tree)") from None

    protos = run.protocols()
    fig, axes = plt.subplots(3, 2, figsize=(16, 15))
    m = run.machine
    fig.suptitle(f"kmallocwd benchmarks, {run.datetime[:19]}, {m['cpu']} x {m['cpus']} "
                 f"(ns per operation timed in C, median; log scale)", fontsize=12)
    panels = [(axes[0][0], WRITER_ALONE), (axes[0][1], WRITER_WITH_READER),
              (axes[1][0], READER_ALONE), (axes[1][1], READER_WITH_WRITER)]
    for ax, role in panels:
        cases = run.cases("matrix", role)
        _bars(ax, protos, [(_case_label(s, t),
                            [run.get("matrix", role, p, s, t) for p in protos])
                           for s, t in cases])
        ax.set_title(ROLE_TITLES[role], fontsize=10)
    ax = axes[2][0]
    _bars(ax, protos, [(ROLE_SHORT[r] + " (Python)", [run.get("python", r, p, 1, 1)
                                                       for p in protos])
                       for r in PYTHON_ROLES]
          + [("pair (C loop)", [run.get("matrix", WRITER_ALONE, p, 1, 1) for p in protos]),
             ("read (C loop)", [run.get("matrix", READER_ALONE, p, 1, None) for p in protos])])
    ax.set_title("driving from Python (one cffi call per start, stop, read) vs the C loop, "
                  "1 slot", fontsize=10)
    ax = axes[2][1]
    styles = {("read", "valid"): "-", ("read", "idle"): ":", ("checked", "valid"): "--"}
    cmap = plt.get_cmap("tab10")
    for i, p in enumerate(protos):
        for (mode, state), ls in styles.items():
            pts = sorted((f.slots, f.ns) for f in run.figures if f.kind == "scan"
                         and f.protocol == p and f.mode == mode and f.state == state)
            if pts:
                ax.plot([n for n, _ in pts], [v for _, v in pts], ls, marker="o",
                        color=cmap(i % 10), label=p if (mode, state) == ("read", "valid")
                        else None, markersize=3)
    ax.set_xscale("log")
    ax.set_xlabel("N slots")
    ax.set_ylabel("ns per slot")
    ax.set_ylim(bottom=0)
    ax.set_title("scan ns per slot against N (solid: valid slots; dotted: idle; "
                 "dashed: with torn-read check)", fontsize=10)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7, ncol=3)
    ax.grid(True, alpha=0.3)
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    fig.savefig(str(path), dpi=90)
    plt.close(fig)


def _bars(ax, protos: list[str], series: list[tuple[str, list[Figure | None]]]) -> None:
    series = [(lab, figs) for lab, figs in series if any(figs)]
    n = max(len(series), 1)
    width = 0.8 / n
    for i, (label, figs) in enumerate(series):
        xs = [j - 0.4 + width * (i + 0.5) for j in range(len(protos))]
        ax.bar(xs, [f.ns if f else 0 for f in figs], width, label=label)
    ax.set_xticks(range(len(protos)))
    ax.set_xticklabels(protos, rotation=30, ha="right", fontsize=8)
    ax.set_yscale("log")
    from matplotlib.ticker import FuncFormatter, NullFormatter

    plain = FuncFormatter(lambda v, _: f"{v:g}")
    ax.yaxis.set_major_formatter(plain)
    lo, hi = ax.get_ylim()
    few_decades = lo > 0 and hi / lo < 30
    if lo > 0:  # head room for the legend
        ax.set_ylim(lo, hi * (hi / lo) ** 0.35)
    if few_decades:  # label the minor ticks too
        ax.yaxis.set_minor_formatter(plain)
        ax.tick_params(axis="y", which="minor", labelsize=7)
    else:
        ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set_ylabel("ns per operation")
    ax.grid(True, axis="y", alpha=0.3)
    if series:
        ax.legend(fontsize=7, ncol=2)
