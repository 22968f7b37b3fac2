"""The PNG charts: one file per chart, ``BASE-<chart>.png``.

- ns-per-op: ns per operation by protocol and mode, 1 slot, 1 writer, the
  four roles, with the reference loop beside the writer's;
- threads:   the writer pair by writer threads (ns per pair, and aggregate
  throughput), alone and with a concurrent watchdog scan;
- scan:      scan ns per slot against N, with the copy-bandwidth limit;
- duty:      the reader's ns per snapshot and retries against the share of
  time the writer spends inside write sections.

A chart whose data the file does not have is skipped, with a note.
"""

from __future__ import annotations

from pathlib import Path

from . import analyse
from .model import (
    BASELINE, MATRIX, READ, READER_ALONE, READER_WITH_WRITER, ROLE_TITLES, SCAN, SIDE, VALID,
    WRITER_ALONE, WRITER_WITH_READER, PlotUnavailable, Run,
)

CHARTS = ("ns-per-op", "threads", "scan", "duty")


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
        outpath.write_file(target, lambda tmp: fig.savefig(tmp, dpi=90))
    except (UsageError, WriteFailed) as exc:
        raise OSError(errno.EIO, str(exc).split(": ", 1)[-1], str(path)) from None


def plot_all(run: Run, base: str | Path, baseline: str = BASELINE) -> tuple[list[Path], list[str]]:
    """Write every chart the run has data for; (paths written, notes on the
    charts skipped or incomplete).  PlotUnavailable without matplotlib;
    OSError if a file cannot be written."""
    plt = _pyplot()
    paths = chart_paths(base)
    for p in paths.values():
        check_target(p)
    written, notes = [], []
    for name, fn in (("ns-per-op", _ns_per_op), ("threads", _threads), ("scan", _scan),
                     ("duty", _duty)):
        fig, why = fn(plt, run, baseline, notes)
        if fig is None:
            notes.append(f"chart {name} skipped: {why}")
            continue
        try:
            _save(fig, paths[name])
        finally:
            plt.close(fig)
        written.append(paths[name])
    return written, notes


def _colors(plt, run: Run) -> dict[str, object]:
    cmap = plt.get_cmap("tab20")  # 20 colours: one per protocol, up to 20
    return {p: cmap(i % 20) for i, p in enumerate(run.protocols())}


def _title(fig, run: Run, what: str) -> None:
    m = run.machine
    fig.suptitle(f"kmallocwd: {what}\n{run.datetime[:19]}, {m['cpu']} x {m['cpus'] or '?'}",
                 fontsize=11)


def _ns_per_op(plt, run: Run, baseline: str, notes: list[str]):
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
    fig, axes = plt.subplots(2, 2, figsize=(14, 9))
    _title(fig, run, "ns per operation by protocol and mode (1 slot, 1 writer; "
           "timed in C, median of the rounds)")
    width = 0.8 / max(len(modes), 1)
    for ax, role in zip(axes.flat, roles):
        for i, mode in enumerate(modes):
            vals = [fig_of(role, p, mode) for p in protos]
            xs = [j - 0.4 + width * (i + 0.5) for j in range(len(protos))]
            bars = ax.bar(xs, [f.ns if f else 0 for f in vals], width, label=f"{mode} mode")
            for b, f in zip(bars, vals):
                if f is not None:
                    ax.annotate(analyse.fmt(f.ns), (b.get_x() + b.get_width() / 2, f.ns),
                                ha="center", va="bottom", fontsize=7)
        if ref_ns and role in (WRITER_ALONE, WRITER_WITH_READER):
            ax.axhline(ref_ns, color="black", ls="--", lw=1,
                       label=f"reference loop (the seed's start/stop plainly): "
                       f"{analyse.fmt(ref_ns)} ns")
        ax.set_xticks(range(len(protos)))
        ax.set_xticklabels(protos, rotation=30, ha="right", fontsize=8)
        ax.set_title(ROLE_TITLES[role], fontsize=10)
        ax.set_ylabel("ns per operation")
        vals = [f.ns for m in modes for p in protos if (f := fig_of(role, p, m)) and f.ns > 0]
        if vals and max(vals) / min(vals) > 15:  # one outlier would flatten the rest
            from matplotlib.ticker import FuncFormatter

            ax.set_yscale("log")
            ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
            ax.set_ylabel("ns per operation (log scale)")
            lo, hi = ax.get_ylim()
            ax.set_ylim(lo, hi * 3)
        else:
            ax.set_ylim(bottom=0, top=ax.get_ylim()[1] * 1.15)
        ax.grid(True, axis="y", alpha=0.3)
        ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout(rect=(0, 0, 1, 0.94))
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
    colors = _colors(plt, run)
    styles = {m: ls for m, ls in zip(run.modes(), ("-", "--", ":", "-."))}
    fig, axes = plt.subplots(2, 2, figsize=(14, 9), sharex=True)
    _title(fig, run, f"writer start/stop pair by writer threads, {slots} slots "
           f"(each writer owns its slots)")
    for col, (role, what) in enumerate(((WRITER_ALONE, "alone"),
                                        (WRITER_WITH_READER, "with a concurrent watchdog scan"))):
        mine = [r for r in rows if r["role"] == role and r["slots"] == slots]
        for r in mine:
            ts = [p["threads"] for p in r["points"]]
            label = r["protocol"] + (f" ({r['mode']})" if len(run.modes()) > 1 else "")
            kw = dict(color=colors[r["protocol"]], ls=styles[r["mode"]], marker="o",
                      markersize=4, label=label)
            axes[0][col].plot(ts, [p["ns_per_pair"] for p in r["points"]], **kw)
            axes[1][col].plot(ts, [p["mpairs_per_s"] for p in r["points"]], **kw)
        axes[0][col].set_title(f"ns per pair (a writer's own time), {what}", fontsize=10)
        axes[1][col].set_title(f"aggregate throughput, {what}", fontsize=10)
        axes[0][col].set_ylabel("ns per pair")
        axes[1][col].set_ylabel("million pairs per second, all writers")
        axes[1][col].set_xlabel("writer threads (this machine: "
                                f"{run.machine.get('cpus') or '?'} CPUs)")
        for ax in (axes[0][col], axes[1][col]):
            ax.set_xscale("log", base=2)
            ax.set_xticks(sorted(counts[slots]))
            ax.set_xticklabels([str(t) for t in sorted(counts[slots])])
            ax.set_ylim(bottom=0)
            ax.grid(True, alpha=0.3)
            if ax.get_legend_handles_labels()[0]:
                ax.legend(fontsize=7, ncol=2)
        if not mine:
            for ax in (axes[0][col], axes[1][col]):
                ax.text(0.5, 0.5, "no figures in the file", transform=ax.transAxes,
                        ha="center")
    fig.tight_layout(rect=(0, 0, 1, 0.94))
    return fig, ""


def _scan(plt, run: Run, baseline: str, notes: list[str]):
    protos = run.protocols()
    if not any(analyse.scan_points(run, p, READ, VALID, m) for p in protos
               for m in run.modes()):
        return None, "no scan figure (read, valid slots) in the file"
    colors = _colors(plt, run)
    fig, ax = plt.subplots(figsize=(11, 7))
    _title(fig, run, "the watchdog's scan: ns per slot against N (valid slots; "
           "dotted: idle slots)")
    for mode, ls in zip(run.modes(), ("-", "--", "-.")):
        for p in protos:
            for state, style in ((VALID, ls), ("idle", ":")):
                pts = analyse.scan_points(run, p, READ, state, mode)
                if pts:
                    label = None if state != VALID else (
                        p + (f" ({mode})" if len(run.modes()) > 1 else ""))
                    ax.plot([n for n, _ in pts], [v for _, v in pts], style, marker="o",
                            markersize=4, color=colors[p], label=label)
    bw = analyse.bandwidth(run)
    if bw is not None:
        slot = bw.params["slot_bytes"]
        ax.axhline(bw.ns, color="black", ls="--", lw=1.5,
                   label=f"copy-bandwidth limit: {slot} B / {slot / bw.ns:.3g} GB/s = "
                   f"{analyse.fmt(bw.ns)} ns per slot")
        llc = bw.params.get("llc_bytes")
        top_n = max(f.slots for f in run.of(SCAN))
        if llc and llc / slot <= 2 * top_n:  # only inside the chart's range of N
            ax.axvline(llc / slot, color="grey", ls=":", lw=1)
            ax.annotate(f"N x {slot} B = LLC ({llc / 2**20:.0f} MiB)", (llc / slot, 0),
                        xytext=(4, 8), textcoords="offset points", fontsize=8, color="grey",
                        rotation=90)
        elif llc:
            ax.plot([], [], " ", label=f"(the LLC, {llc / 2**20:.0f} MiB, holds "
                    f"{llc // slot:,} slots: every N here fits)")
    else:
        notes.append("chart scan: no copy-bandwidth figure in the file, so no limit line")
    ax.set_xscale("log")
    ax.set_xlabel("N slots")
    ax.set_ylabel("ns per slot")
    ax.set_ylim(bottom=0)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, ncol=2, loc="best")
    fig.tight_layout(rect=(0, 0, 1, 0.93))
    return fig, ""


def _duty(plt, run: Run, baseline: str, notes: list[str]):
    rows = analyse.duty(run)
    if not rows:
        return None, "no reader-vs-writer-activity figure in the file"
    levels = analyse.duty_levels(run)
    colors = _colors(plt, run)
    fig, (a1, a2, a3) = plt.subplots(1, 3, figsize=(17, 6))
    _title(fig, run, "the reader against one writer inside write sections a share of "
           "its time (1 slot)")
    for r in rows:
        xs = [i for i, lv in enumerate(levels) if lv in r["levels"]]
        cells = [r["levels"][levels[i]] for i in xs]
        kw = dict(marker="o", color=colors[r["protocol"]],
                  label=r["protocol"] + (f" ({r['mode']})" if len(run.modes()) > 1 else ""))
        a1.plot(xs, [c["ns"] for c in cells], **kw)
        a2.plot(xs, [1000 * (c["retries_per_read"] or 0) for c in cells], **kw)
        a3.plot(xs, [100 * (c["accepted"] or 0) for c in cells], **kw)
    for ax in (a1, a2, a3):
        ax.set_xticks(range(len(levels)))
        ax.set_xticklabels([lv if lv == "idle" else f"{lv} in sections" for lv in levels],
                           fontsize=8)
        ax.set_ylim(bottom=0)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7, ncol=2)
    a1.set_ylabel("ns per snapshot")
    a1.set_title("the reader's cost per snapshot", fontsize=10)
    a2.set_ylabel("retries per 1,000 reads")
    a2.set_title("retries (waits on an odd sequence or busy lock, re-reads)", fontsize=10)
    a3.set_ylabel("% of snapshots accepted")
    a3.set_title("snapshots accepted (the rest: not valid, or odd)", fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.92))
    return fig, ""
