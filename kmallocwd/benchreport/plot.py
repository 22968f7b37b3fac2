"""The PNG charts: one file per chart, ``BASE-<chart>.png``.

- ns-per-op: ns per operation by protocol and mode, 1 slot, 1 writer, the
  four roles, with the reference loop beside the writer's;
- threads:   the writer pair by writer threads (ns per pair, and aggregate
  throughput), alone and with a concurrent watchdog scan;
- scan:      scan ns per slot against N, with the copy-bandwidth limit;
- duty:      the reader's ns per snapshot and retries against the share of
  time the writer spends inside write sections.

What every chart follows, so that a new reader can read it:

- a protocol has one colour and one marker, the same in every chart
  (``protocol_style``): Paul Tol's colour-blind-safe "muted" scheme, with
  black and a dark grey for the last two built-ins;
- at most ``MAX_SERIES`` lines a panel: more protocols are split over more
  panels (``split_series``), the baseline repeated in each as the yardstick;
  the two modes (protocol, emulator) get panels of their own;
- legends sit outside the data, to the right of each row of panels;
- whiskers span the min and max of the rounds (``ns_per_op_min`` /
  ``ns_per_op_max`` in the JSON) wherever the file has them;
- an axis goes logarithmic when the largest value it draws (a whisker's
  end included) is more than ``LOG_RATIO`` times the smallest
  (``needs_log``), so that one value cannot flatten the others.

A chart whose data the file does not have is skipped, with a note.
"""

from __future__ import annotations

import math
import zlib
from pathlib import Path
from typing import Iterable, Iterator, Sequence

from . import analyse
from .model import (
    BASELINE, DUTY, MATRIX, READ, READER_ALONE, READER_WITH_WRITER, ROLE_TITLES, SCAN, SIDE,
    VALID, IDLE, WRITER_ALONE, WRITER_WITH_READER, Figure, PlotUnavailable, Run,
)

CHARTS = ("ns-per-op", "threads", "scan", "duty")

# ---- the rules: colours, panels, scales ----

MAX_SERIES = 6      # lines a panel at most
LOG_RATIO = 8.0     # largest / smallest value drawn above which an axis goes log

# Paul Tol's "muted" qualitative scheme: nine colours told apart under the
# common colour-vision deficiencies (https://personal.sron.nl/~pault/).
TOL_MUTED = ("#CC6677", "#332288", "#DDCC77", "#117733", "#88CCEE", "#882255", "#44AA99",
             "#999933", "#AA4499")
SAFE_COLOURS = TOL_MUTED + ("#000000", "#777777")
MARKERS = ("o", "s", "D", "^", "v", "P", "X", "<", ">", "p", "h")

# The built-ins, fixed by name: the patch and its fixes in cool colours,
# seqcount (the usual baseline) green, the broken variants in wine and
# purple, the control grey, the locks rose, olive and black.  A second
# channel, the marker, tells them apart in grey scale too.
PROTOCOL_STYLE: dict[str, tuple[str, str]] = {
    "v2-rwlock": ("#CC6677", "s"),
    "v3": ("#332288", "o"),
    "v4-parity": ("#88CCEE", "D"),
    "seqcount": ("#117733", "^"),
    "seqcount-acquire": ("#44AA99", "v"),
    "c11": ("#DDCC77", "P"),
    "no-wmb": ("#882255", "X"),
    "no-rmb": ("#AA4499", "<"),
    "none": ("#777777", ">"),
    "slot-rwlock": ("#999933", "p"),
    "global-spinlock": ("#000000", "h"),
}


def protocol_style(name: str) -> tuple[str, str]:
    """(colour, marker) of a protocol: fixed for the built-ins, and for any
    other name derived from the name alone (never from the run's other
    protocols), so a protocol looks the same in every chart."""
    if name in PROTOCOL_STYLE:
        return PROTOCOL_STYLE[name]
    h = zlib.crc32(name.encode())
    return SAFE_COLOURS[h % len(SAFE_COLOURS)], MARKERS[(h // len(SAFE_COLOURS)) % len(MARKERS)]


def split_series(names: Sequence[str], baseline: str | None = BASELINE,
                 limit: int = MAX_SERIES) -> list[list[str]]:
    """The protocols of a chart as panels of at most ``limit`` each, in
    order, as even as can be.  When they do not fit in one panel, the
    baseline (if it is among them) is in every panel, as the yardstick."""
    names = list(dict.fromkeys(names))
    if limit < 1:
        raise ValueError("limit must be at least 1")
    if len(names) <= limit:
        return [names] if names else []
    keep = baseline in names and limit > 1
    rest = [n for n in names if not (keep and n == baseline)]
    room = limit - 1 if keep else limit
    panels = math.ceil(len(rest) / room)
    size, extra = divmod(len(rest), panels)
    out, i = [], 0
    for k in range(panels):
        chunk = rest[i:i + size + (1 if k < extra else 0)]
        i += len(chunk)
        if keep:  # in the baseline's own place in the order, or first
            pos = sum(1 for n in names[:names.index(baseline)] if n in chunk)
            chunk = chunk[:pos] + [baseline] + chunk[pos:]
        out.append(chunk)
    return out


def needs_log(values: Iterable[float | None], ratio: float = LOG_RATIO) -> bool:
    """True when the largest positive value is more than ``ratio`` times the
    smallest: on a linear axis it would flatten the rest."""
    pos = [v for v in values if v is not None and math.isfinite(v) and v > 0]
    return len(pos) >= 2 and max(pos) / min(pos) > ratio


def whiskers(figs: Sequence[Figure | None]) -> list[list[float]] | None:
    """yerr for matplotlib: the distance from each figure's median down to
    its min and up to its max over the rounds (0 for a missing figure)."""
    if not any(f is not None for f in figs):
        return None
    lo = [max(f.ns - f.ns_min, 0.0) if f is not None else 0.0 for f in figs]
    hi = [max(f.ns_max - f.ns, 0.0) if f is not None else 0.0 for f in figs]
    return [lo, hi]


# ---- files ----

def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise PlotUnavailable("charts need matplotlib, which is not installed: install the "
                              "plot extra (pip install 'kmallocwd[plot]', or "
                              "pip install -e '.[plot]' in the source tree)") from None
    return plt


def chart_paths(base: str | Path) -> dict[str, Path]:
    """Where each chart goes: BASE-<chart>.png (BASE without .png/.json)."""
    b = str(base)
    for suffix in (".png", ".json"):
        if b.endswith(suffix):
            b = b[: -len(suffix)]
    return {c: Path(f"{b}-{c}.png") for c in CHARTS}


def check_target(path: Path) -> None:
    """Refuse to write over anything but a regular file (a FIFO would block,
    a device or a symlink be replaced): OSError.  A minimal stand-in, to be
    swapped for kmallocwd.outpath.check_output when that lands."""
    import errno
    import stat

    try:
        st = path.lstat()
    except FileNotFoundError:
        return
    if not stat.S_ISREG(st.st_mode):
        raise OSError(errno.EEXIST, "it exists and is not a regular file", str(path))


def _save(fig, path: Path) -> None:
    """Write a chart whole: through a temporary file beside it, renamed over
    it (kmallocwd.outpath), never over anything but a regular file."""
    import errno

    from kmallocwd import outpath
    from kmallocwd.errors import UsageError, WriteFailed

    try:
        target = outpath.check_output(str(path), "--png")
        outpath.write_file(target, lambda tmp: fig.savefig(tmp, dpi=90, format="png"))
    except (UsageError, WriteFailed) as exc:
        raise OSError(errno.EIO, str(exc).split(": ", 1)[-1], str(path)) from None


def figures(run: Run, baseline: str = BASELINE,
            notes: list[str] | None = None) -> Iterator[tuple[str, object]]:
    """Each chart the run has data for, as (name, matplotlib figure); the
    caller closes them.  Notes on the charts skipped or incomplete go to
    ``notes``.  PlotUnavailable without matplotlib."""
    plt = _pyplot()
    notes = notes if notes is not None else []
    for name, fn in (("ns-per-op", _ns_per_op), ("threads", _threads), ("scan", _scan),
                     ("duty", _duty)):
        fig, why = fn(plt, run, baseline, notes)
        if fig is None:
            notes.append(f"chart {name} skipped: {why}")
            continue
        yield name, fig


def plot_all(run: Run, base: str | Path, baseline: str = BASELINE) -> tuple[list[Path], list[str]]:
    """Write every chart the run has data for; (paths written, notes on the
    charts skipped or incomplete).  PlotUnavailable without matplotlib;
    OSError if a file cannot be written."""
    plt = _pyplot()
    paths = chart_paths(base)
    for p in paths.values():
        check_target(p)
    written: list[Path] = []
    notes: list[str] = []
    for name, fig in figures(run, baseline, notes):
        try:
            _save(fig, paths[name])
        finally:
            plt.close(fig)
        written.append(paths[name])
    return written, notes


# ---- drawing helpers ----

def _title(fig, run: Run, what: str) -> None:
    m = run.machine
    fig.suptitle(f"kmallocwd: {what}\n{run.datetime[:19]}, {m['cpu']} x {m['cpus'] or '?'}; "
                 "whiskers: min and max over the rounds, where the file has them", fontsize=11)


def _grid(plt, rows: int, cols: int, panel: tuple[float, float] = (4.6, 3.4)):
    """rows x cols panels, with room on the right for the row legends."""
    fig, axes = plt.subplots(rows, cols, squeeze=False, layout="constrained",
                             figsize=(panel[0] * cols + 2.4, panel[1] * rows + 1.0))
    return fig, axes


def _scale(ax, values: Iterable[float | None], *, floor_zero: bool = True) -> None:
    """A log axis when one value would flatten the rest (symlog if some are
    0), else a linear one from 0."""
    values = [v for v in values if v is not None and math.isfinite(v)]
    if needs_log(values):
        from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

        pos = [v for v in values if v > 0]
        if any(v <= 0 for v in values):  # zeros: linear up to the smallest decade
            ax.set_yscale("symlog", linthresh=10 ** math.floor(math.log10(min(pos))),
                          linscale=1.0)
            ax.set_ylim(bottom=-0.2 * ax.get_yaxis().get_transform().linthresh)
        else:
            ax.set_yscale("log")
            ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.yaxis.set_minor_formatter(NullFormatter())
        ax.set_ylabel(ax.get_ylabel() + " (log scale)")
    elif floor_zero:
        top = ax.get_ylim()[1]
        # from 0; a little below it when a value is 0, so that its marker shows whole
        ax.set_ylim(-0.03 * top if any(v == 0 for v in values) else 0, top)


def _row_legend(axes_row, title: str | None = None, source=None) -> None:
    """One legend for a row of panels that share their series, to the right
    of the row's last panel: outside the data."""
    src = source if source is not None else axes_row[0]
    handles, labels = src.get_legend_handles_labels()
    if handles:
        axes_row[-1].legend(handles, labels, loc="center left", bbox_to_anchor=(1.03, 0.5),
                            fontsize=8, frameon=False, title=title, title_fontsize=8,
                            alignment="left")


def _series(ax, proto: str, xs: Sequence[float], ys: Sequence[float | None],
            figs: Sequence[Figure | None] | None = None) -> list[float]:
    """One protocol's line, in its colour and marker; whiskers from its
    figures' min and max when ``figs`` (the figures ys are the medians of).
    Returns the values drawn, whisker ends included (for ``_scale``)."""
    colour, marker = protocol_style(proto)
    keep = [k for k, y in enumerate(ys) if y is not None]
    if not keep:
        return []
    yerr = whiskers([figs[k] for k in keep]) if figs is not None else None
    py = [ys[k] for k in keep]
    ax.errorbar([xs[k] for k in keep], py, yerr=yerr, color=colour,
                marker=marker, lw=1.6, markersize=5, capsize=3, elinewidth=1, label=proto)
    drawn = list(py)
    if yerr is not None:
        drawn += [y - d for y, d in zip(py, yerr[0])] + [y + d for y, d in zip(py, yerr[1])]
    return drawn  # type: ignore[return-value]


def _empty(ax, text: str = "no figures in the file") -> None:
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", color="grey")


def _mode_note(run: Run, mode: str) -> str:
    return f" ({mode} mode)" if len(run.modes()) > 1 else ""


# ---- the charts ----

def _ns_per_op(plt, run: Run, baseline: str, notes: list[str]):
    from matplotlib.patches import Patch

    roles = (WRITER_ALONE, WRITER_WITH_READER, READER_ALONE, READER_WITH_WRITER)
    protos, modes = run.protocols(), run.modes()

    def fig_of(role: str, p: str, mode: str):
        t = None if role == READER_ALONE else 1
        return (run.get(SIDE, role, p, 1, t, mode=mode)
                or run.get(MATRIX, role, p, 1, t, mode=mode))

    if not any(fig_of(r, p, m) for r in roles for p in protos for m in modes):
        return None, "no 1-slot, 1-writer figure (side-by-side or matrix) in the file"
    ref = analyse.reference(run)
    ref_ns = (ref["interleaved_ns"] or ref["alone_ns"]) if ref else None
    if ref_ns is None:
        notes.append("chart ns-per-op: no reference-loop figure, so no reference line")
    fig, axes = plt.subplots(2, 2, figsize=(16, 9.5), layout="constrained", squeeze=False)
    _title(fig, run, "ns per operation by protocol and mode (1 slot, 1 writer; "
           "timed in C, median of the rounds)")
    # a mode is a fill: solid for the first (emulator when both), hatched for the next
    fills = {m: dict(alpha=1.0, hatch=None) if i == 0 else dict(alpha=0.35, hatch="///")
             for i, m in enumerate(modes)}
    width = 0.8 / max(len(modes), 1)
    for ax, role in zip(axes.flat, roles):
        shown = []
        for i, mode in enumerate(modes):
            figs = [fig_of(role, p, mode) for p in protos]
            xs = [j - 0.4 + width * (i + 0.5) for j in range(len(protos))]
            colours = [protocol_style(p)[0] for p in protos]
            ax.bar(xs, [f.ns if f else 0 for f in figs], width, color=colours,
                   edgecolor=colours, linewidth=1, yerr=whiskers(figs),
                   error_kw=dict(ecolor="#333333", elinewidth=0.8, capsize=2),
                   **fills[mode])
            for x, f in zip(xs, figs):
                if f is not None:
                    shown += [f.ns, f.ns_min, f.ns_max]
                    ax.annotate(analyse.fmt(f.ns), (x, f.ns_max), xytext=(0, 2),
                                textcoords="offset points", ha="center", va="bottom",
                                fontsize=6.5, rotation=90)
        if ref_ns and role in (WRITER_ALONE, WRITER_WITH_READER):
            ax.axhline(ref_ns, color="#333333", ls="--", lw=1)
        ax.set_xticks(range(len(protos)))
        ax.set_xticklabels(protos, rotation=30, ha="right", fontsize=8)
        for lbl, p in zip(ax.get_xticklabels(), protos):
            lbl.set_color(protocol_style(p)[0] if protocol_style(p)[0] not in
                          ("#DDCC77", "#88CCEE") else "#333333")
        ax.set_title(ROLE_TITLES[role], fontsize=10)
        ax.set_ylabel("ns per operation")
        ax.set_xlim(-0.7, len(protos) - 0.3)
        _scale(ax, shown)
        lo, hi = ax.get_ylim()
        ax.set_ylim(lo, hi * (3 if ax.get_yscale() == "log" else 1.18))  # room for the labels
        ax.grid(True, axis="y", alpha=0.3)
    handles = [Patch(facecolor="#777777", edgecolor="#777777", alpha=fills[m]["alpha"],
                     hatch=fills[m]["hatch"], label=f"{m} mode") for m in modes]
    if ref_ns:
        from matplotlib.lines import Line2D

        handles.append(Line2D([], [], color="#333333", ls="--", lw=1,
                              label=f"reference loop: the patch's\nstart/stop, plainly, "
                              f"{analyse.fmt(ref_ns)} ns"))
    fig.legend(handles=handles, loc="outside right upper", fontsize=8, frameon=False,
               title="bars: colour = protocol", title_fontsize=8)
    return fig, ""


def _threads(plt, run: Run, baseline: str, notes: list[str]):
    rows = analyse.thread_scaling(run)
    if not rows:
        return None, "no writer figures at more than one thread count"
    # the slot count with the most thread counts (ties: the largest)
    counts: dict[int, set] = {}
    for r in rows:
        counts.setdefault(r["slots"], set()).update(p["threads"] for p in r["points"])
    slots = max(counts, key=lambda s: (len(counts[s]), s))
    threads = sorted(counts[slots])
    rows = [r for r in rows if r["slots"] == slots]
    modes = [m for m in run.modes() if any(r["mode"] == m for r in rows)]
    protos = [p for p in run.protocols() if any(r["protocol"] == p for r in rows)]
    groups = split_series(protos, baseline)
    panel_rows = [(m, g) for m in modes for g in groups]
    cols = ((WRITER_ALONE, "ns", "ns per pair (a writer's own time),\nalone"),
            (WRITER_WITH_READER, "ns", "ns per pair (a writer's own time),\nwith a concurrent "
             "watchdog scan"),
            (WRITER_ALONE, "mpairs", "aggregate throughput, alone"),
            (WRITER_WITH_READER, "mpairs", "aggregate throughput,\nwith a concurrent "
             "watchdog scan"))
    fig, axes = _grid(plt, len(panel_rows), len(cols), panel=(4.4, 3.4))
    _title(fig, run, f"writer start/stop pair by writer threads, {slots} slots "
           f"(each writer owns its slots)")
    for i, (mode, group) in enumerate(panel_rows):
        for j, (role, metric, what) in enumerate(cols):
            ax = axes[i][j]
            values = []
            for r in rows:
                if r["mode"] != mode or r["role"] != role or r["protocol"] not in group:
                    continue
                ts = [p["threads"] for p in r["points"]]
                if metric == "ns":
                    figs = [run.get(MATRIX, role, r["protocol"], slots, t, mode=mode) for t in ts]
                    ys = [f.ns if f is not None else None for f in figs]
                    values += _series(ax, r["protocol"], ts, ys, figs)
                else:  # no min/max for the aggregate in the file: no whiskers
                    ys = [p["mpairs_per_s"] for p in r["points"]]
                    values += _series(ax, r["protocol"], ts, ys)
            ax.set_title(what + _mode_note(run, mode), fontsize=9)
            ax.set_ylabel("ns per pair" if metric == "ns" else "million pairs/s, all writers")
            ax.set_xscale("log", base=2)
            ax.set_xticks(threads)
            ax.set_xticklabels([str(t) for t in threads])
            ax.minorticks_off()
            if i == len(panel_rows) - 1:
                ax.set_xlabel(f"writer threads (this machine: {run.machine.get('cpus') or '?'} "
                              "CPUs)")
            _scale(ax, values)
            ax.grid(True, alpha=0.3)
            if not values:
                _empty(ax)
        _row_legend(axes[i], "protocol" + _mode_note(run, mode),
                    source=next((a for a in axes[i] if a.get_legend_handles_labels()[0]),
                                axes[i][0]))
    return fig, ""


def _scan(plt, run: Run, baseline: str, notes: list[str]):
    protos = run.protocols()
    if not any(analyse.scan_points(run, p, READ, VALID, m) for p in protos
               for m in run.modes()):
        return None, "no scan figure (read, valid slots) in the file"
    modes = [m for m in run.modes() if any(analyse.scan_points(run, p, READ, VALID, m)
                                           for p in protos)]
    with_data = [p for p in protos if any(run.of(SCAN, protocol=p, series=READ, mode=m)
                                          for m in modes)]
    groups = split_series(with_data, baseline)
    panel_rows = [(m, g) for m in modes for g in groups]
    states = ((VALID, "valid slots (every slot inside an allocation)"),
              (IDLE, "idle slots (valid == 0)"))
    fig, axes = _grid(plt, len(panel_rows), len(states), panel=(5.6, 3.6))
    _title(fig, run, "the watchdog's scan of N slots: ns per slot against N")
    bw = analyse.bandwidth(run)
    if bw is None:
        notes.append("chart scan: no copy-bandwidth figure in the file, so no limit line")
    top_n = max(f.slots for f in run.of(SCAN))
    for i, (mode, group) in enumerate(panel_rows):
        for j, (state, what) in enumerate(states):
            ax = axes[i][j]
            values = []
            for p in group:
                figs = sorted(run.of(SCAN, protocol=p, series=READ, state=state, mode=mode),
                              key=lambda f: f.slots)
                values += _series(ax, p, [f.slots for f in figs], [f.ns for f in figs], figs)
            if state == VALID and bw is not None:
                slot = bw.params["slot_bytes"]
                ax.axhline(bw.ns, color="#333333", ls="--", lw=1.2,
                           label=f"copy-bandwidth limit:\n{slot} B / {slot / bw.ns:.3g} GB/s "
                           f"= {analyse.fmt(bw.ns)} ns")
                values.append(bw.ns)
                llc = bw.params.get("llc_bytes")
                if llc and llc / slot <= 2 * top_n:  # only inside the chart's range of N
                    ax.axvline(llc / slot, color="grey", ls=":", lw=1,
                               label=f"N x {slot} B = the LLC ({llc / 2**20:.0f} MiB)")
            ax.set_xscale("log")
            ax.set_title(what + _mode_note(run, mode), fontsize=9)
            ax.set_ylabel("ns per slot")
            if i == len(panel_rows) - 1:
                ax.set_xlabel("N slots")
            _scale(ax, values)
            ax.grid(True, alpha=0.3)
            if not any(run.of(SCAN, protocol=p, series=READ, state=state, mode=mode)
                       for p in group):
                _empty(ax)
        _row_legend(axes[i], "protocol" + _mode_note(run, mode))
    return fig, ""


def _duty(plt, run: Run, baseline: str, notes: list[str]):
    rows = analyse.duty(run)
    if not rows:
        return None, "no reader-vs-writer-activity figure in the file"
    levels = analyse.duty_levels(run)
    modes = [m for m in run.modes() if any(r["mode"] == m for r in rows)]
    protos = [p for p in run.protocols() if any(r["protocol"] == p for r in rows)]
    groups = split_series(protos, baseline)
    panel_rows = [(m, g) for m in modes for g in groups]
    cols = (("ns", "the reader's cost per snapshot", "ns per snapshot"),
            ("retries", "retries (waits on an odd sequence\nor a busy lock, re-reads)",
             "retries per 1,000 reads"),
            ("accepted", "snapshots accepted\n(the rest: not valid, or odd)",
             "% of snapshots accepted"))
    fig, axes = _grid(plt, len(panel_rows), len(cols), panel=(4.6, 3.3))
    _title(fig, run, "the reader against one writer inside write sections a share of "
           "its time (1 slot)")
    xs_all = list(range(len(levels)))
    for i, (mode, group) in enumerate(panel_rows):
        mine = [r for r in rows if r["mode"] == mode and r["protocol"] in group]
        for j, (metric, what, ylabel) in enumerate(cols):
            ax = axes[i][j]
            values = []
            for r in mine:
                xs = [k for k, lv in enumerate(levels) if lv in r["levels"]]
                figs = [next(iter(run.of(DUTY, protocol=r["protocol"], mode=mode,
                                         level=levels[k])), None) for k in xs]
                cells = [r["levels"][levels[k]] for k in xs]
                if metric == "ns":
                    values += _series(ax, r["protocol"], xs, [c["ns"] for c in cells], figs)
                else:
                    key, scale = (("retries_per_read", 1000) if metric == "retries"
                                  else ("accepted", 100))
                    ys = [scale * (c[key] or 0) for c in cells]
                    values += _series(ax, r["protocol"], xs, ys)
            ax.set_xticks(xs_all)
            ax.set_xticklabels([lv if lv == "idle" else f"{lv} in\nsections" for lv in levels],
                               fontsize=8)
            ax.set_title(what + _mode_note(run, mode), fontsize=9)
            ax.set_ylabel(ylabel)
            if metric == "accepted":
                ax.set_ylim(-3, 103)
            else:
                _scale(ax, values)
            ax.grid(True, alpha=0.3)
        _row_legend(axes[i], "protocol" + _mode_note(run, mode))
    return fig, ""
