"""The campaign engine: the plan's cells as Dask futures, one subprocess each on
a worker, results merged as they come.

Dask does the scheduling, and reruns the cell of a worker that was lost (up to
its ``distributed.scheduler.allowed-failures``).  The engine adds: one retry of a
failed cell on another worker (not of a cell that exited 2: bad arguments or a
bad protocol file fail the same way everywhere); a checkpoint callback (the results
file) as cells finish; a progress bar; and on Ctrl-C, cancelling the futures,
killing the running cells' subprocesses on every worker (``Client.run`` of
``worker.stop_cells``) and leaving the partial results to the caller."""

from __future__ import annotations

import logging
import os
import sys
import time
import uuid
from dataclasses import dataclass
from typing import Callable

from kmallocwd.campaign.plan import Cell
from kmallocwd.campaign.results import Campaign
from kmallocwd.campaign.worker import run_cell, stop_cells
from kmallocwd.errors import EXIT_USAGE, UsageError

INSTALL_HINT = ("kmallocwd campaign needs Dask distributed, which is not installed: "
                "pip install 'kmallocwd[campaign]'")


def require_dask() -> None:
    """UsageError (exit 2) saying how to install Dask, if it is missing."""
    try:
        import distributed  # noqa: F401
    except ImportError as exc:
        raise UsageError(f"{INSTALL_HINT} ({exc})") from None


@dataclass
class Options:
    scheduler: str | None = None        # address of a Dask scheduler; None: a LocalCluster
    workers: int | None = None          # LocalCluster worker processes (default: one per core)
    retries: int = 1                    # a failed cell runs again this many times
    progress: bool = False              # a progress bar on stderr
    checkpoint: Callable[[Campaign], None] | None = None   # called as cells finish
    checkpoint_share: float = 0.1       # at most this share of the time spent checkpointing
    connect_timeout_s: float = 20.0
    log: Callable[[str], None] | None = None
    python: str | None = None           # the workers' Python (default: theirs, sys.executable)


class _Progress:
    def __init__(self, total: int, enabled: bool):
        self.bar = None
        if enabled:
            try:
                from tqdm import tqdm
                self.bar = tqdm(total=total, unit="cell", desc="campaign", file=sys.stderr,
                                dynamic_ncols=True, leave=True)
            except ImportError:
                self.bar = None
        self.bad = 0
        self.failed = 0

    def write(self, msg: str, log: Callable[[str], None]) -> None:
        if self.bar is not None:
            self.bar.write(msg, file=sys.stderr)
        else:
            log(msg)

    def update(self, rec: dict) -> None:
        if self.bar is None:
            return
        if rec["verdict"] == "forbidden":
            self.bad += 1
        elif rec["status"] != "done":
            self.failed += 1
        self.bar.set_postfix_str(f"forbidden {self.bad}, failed {self.failed}", refresh=False)
        self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _lost(cell: Cell, exc: BaseException) -> dict:
    return {"id": cell.id, "status": "failed", "exit_status": None,
            "error": f"{type(exc).__name__}: {exc}".splitlines()[0][:300],
            "report": None, "machine": None, "worker": None, "started_at": None,
            "elapsed_s": None}


def _connect(opts: Options):
    from distributed import Client, LocalCluster

    if opts.scheduler:
        try:
            return None, Client(opts.scheduler, timeout=opts.connect_timeout_s,
                                set_as_default=False)
        except (OSError, TimeoutError, ValueError) as exc:
            raise UsageError(f"--scheduler {opts.scheduler}: cannot connect "
                             f"({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})"
                             ) from None
    n = opts.workers or os.cpu_count() or 1
    cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                           dashboard_address=None, silence_logs=logging.ERROR,
                           preload=["kmallocwd.campaign.worker"])
    try:
        return cluster, Client(cluster, set_as_default=False)
    except BaseException:
        cluster.close()
        raise


def run_campaign(campaign: Campaign, opts: Options | None = None) -> Campaign:
    """Run the cells of ``campaign`` not done yet; return it with their records.

    KeyboardInterrupt (Ctrl-C, or SIGTERM as kmallocwd.interrupt.Terminated) stops the
    cells, marks the campaign interrupted and propagates, the finished cells recorded."""
    opts = opts or Options()
    todo = campaign.todo()
    if not todo:
        return campaign
    require_dask()
    from distributed import as_completed

    log = opts.log or (lambda msg: None)
    cluster = client = None
    pending: dict = {}
    token = f"kmallocwd-campaign-{uuid.uuid4().hex}"
    progress = _Progress(0, False)
    next_checkpoint = 0.0
    try:
        cluster, client = _connect(opts)
        campaign.scheduler = client.scheduler.address
        campaign.workers = len(client.scheduler_info().get("workers", {}))
        log(f"kmallocwd campaign: {len(todo)} cells to run ({len(campaign.resumed)} done "
            f"before), {campaign.workers} worker(s) at {campaign.scheduler}")
        progress = _Progress(len(todo), opts.progress)
        ac = as_completed(loop=client.loop)

        def submit(cell: Cell, attempts: list[dict], avoid: str | None = None) -> None:
            kw = {}
            if avoid:
                # strictly another worker (a loose restriction lets a busy
                # scheduler pick the failed one again); with none, any
                others = [w for w in client.scheduler_info().get("workers", {}) if w != avoid]
                if others:
                    kw = {"workers": others, "allow_other_workers": False}
            fut = client.submit(run_cell, cell.to_wire(), token, opts.python,
                                key=f"kmallocwd-cell-{uuid.uuid4().hex}", pure=False,
                                retries=0, **kw)
            pending[fut] = (cell, attempts)
            ac.add(fut)

        for cell in todo:
            submit(cell, [])
        for fut in ac:
            cell, attempts = pending.pop(fut)
            try:
                res = fut.result()
            except Exception as exc:          # KilledWorker, a lost connection, ...
                res = _lost(cell, exc)
            attempts.append(res)
            certain = res.get("exit_status") == EXIT_USAGE   # would fail anywhere
            if res.get("status") != "done" and len(attempts) <= opts.retries and not certain:
                progress.write(f"kmallocwd campaign: {cell.id} failed ({res.get('error')}); "
                               "retrying it on another worker", log)
                submit(cell, attempts, avoid=(res.get("worker") or {}).get("address"))
                continue
            rec = campaign.add(cell, attempts)
            progress.update(rec)
            if rec["status"] != "done":
                progress.write(f"kmallocwd campaign: {cell.id} failed: {rec['error']}", log)
            # after every cell, unless writing the results costs more than
            # checkpoint_share of the time (a large file and quick cells)
            if opts.checkpoint and time.monotonic() >= next_checkpoint:
                t0 = time.monotonic()
                opts.checkpoint(campaign)
                cost = time.monotonic() - t0
                next_checkpoint = t0 + cost + cost / opts.checkpoint_share
    except KeyboardInterrupt:
        campaign.interrupted = True
        if client is not None:
            try:
                client.cancel(list(pending), force=True)
            except Exception:
                pass
            try:   # kill the cells' subprocesses, wherever they run
                client.run(stop_cells, token, on_error="ignore")
            except Exception:
                pass
        raise
    finally:
        progress.close()
        if client is not None:
            try:
                client.close(timeout=10)
            except Exception:
                pass
        if cluster is not None:
            try:
                cluster.close(timeout=20)
            except Exception:
                pass
    return campaign
