"""The campaign engine: the plan's cells as Dask futures, one subprocess each on
a worker, results merged as they come.

Dask does the scheduling, and reruns the cell of a worker that was lost (up to
its ``distributed.scheduler.allowed-failures``).  The engine adds: one retry of a
failed cell on another worker (not of a cell that exited 2: bad arguments or a
bad protocol file fail the same way everywhere); a checkpoint callback (the results
file) as cells finish; a progress bar; and on Ctrl-C, cancelling the futures,
killing the running cells' subprocesses on every worker (``Client.run`` of
``worker.stop_cells``) and leaving the partial results to the caller.

The embedded LocalCluster is private: Dask's TLS with temporary credentials
(``Security.temporary()``, made for this run and held only by this process and
its workers), so that no other local process can submit work to it, and no
dashboard or HTTP route.  A ``--scheduler`` is first asked, within the connect
timeout, whether it is a Dask scheduler (``probe_scheduler``): a service that is
not, or none, is one line and exit 69 (EX_UNAVAILABLE)."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Callable

from kmallocwd.campaign.plan import Cell
from kmallocwd.campaign.results import Campaign
from kmallocwd.campaign.worker import run_cell, stop_cells
from kmallocwd.errors import EXIT_USAGE, Unavailable, UsageError
from kmallocwd.escape import one_line

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
        msg = one_line(msg)  # a cell's id and error: from the plan and the worker
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


# the transports a --scheduler address may name (ucx:// needs a package of its own)
SCHEMES = ("tcp", "tls")
# the TLS settings a client of a tls:// scheduler needs (Dask's own configuration)
TLS_CONFIG = ("DASK_DISTRIBUTED__COMM__TLS__CA_FILE", "DASK_DISTRIBUTED__COMM__TLS__CLIENT__CERT",
              "DASK_DISTRIBUTED__COMM__TLS__CLIENT__KEY")


def _why(exc: BaseException) -> str:
    """An exception as a short phrase for one line."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:200]}" if text else type(exc).__name__


def client_security(address: str):
    """The Security for a client of ``address``: for tls://, Dask's configuration
    (TLS_CONFIG); UsageError if a tls:// address has no credentials configured."""
    from distributed.security import Security

    sec = Security()
    if address.startswith("tls://") and not (sec.tls_ca_file and sec.tls_client_cert):
        raise UsageError(f"--scheduler {address}: a tls:// scheduler needs this client's "
                         f"credentials (accepted: set {', '.join(TLS_CONFIG)}, or the same "
                         "keys in Dask's configuration; docs/campaigns.md, \"A cluster of "
                         "machines\")")
    return sec


def probe_scheduler(address: str, timeout_s: float, security=None) -> None:
    """Unavailable (one line) unless a Dask scheduler answers at ``address``
    within ``timeout_s``: Dask's handshake, then its ``identity`` call.  The
    probe runs on its own thread and event loop and is abandoned at the
    deadline, so that a service that accepts and stays silent (or answers
    HTTP, or sends a banner Dask would read as a frame length) cannot hang
    or crash the campaign.  All of it, imports included, within ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    from distributed.comm import connect
    from distributed.comm.addressing import parse_address, parse_host_port

    where = f"--scheduler {address}"
    try:
        scheme, loc = parse_address(address)
        if scheme not in SCHEMES:
            raise ValueError(f"the {scheme}:// transport is not supported here")
        parse_host_port(loc, default_port=8786)
    except (ValueError, TypeError) as exc:
        raise UsageError(f"{where}: not a Dask scheduler address ({_why(exc)}) (accepted: "
                         f"{', '.join(s + '://HOST:PORT' for s in SCHEMES)})") from None

    async def ask(left: float) -> object:
        args = security.get_connection_args("client") if security is not None else {}
        comm = await asyncio.wait_for(connect(address, timeout=left, **args), left)
        try:
            await comm.write({"op": "identity", "reply": True})
            return await comm.read()
        finally:
            comm.abort()

    result: list = []

    def run() -> None:
        try:
            left = max(0.01, deadline - time.monotonic())
            result.append(asyncio.run(asyncio.wait_for(ask(left), left)))
        except BaseException as exc:  # noqa: BLE001 - any failure is the answer
            result.append(exc)

    t = threading.Thread(target=run, name="kmallocwd-probe", daemon=True)
    t.start()
    t.join(max(0.0, deadline - time.monotonic()) + 0.2)
    if not result:
        raise Unavailable(f"{where}: no answer as a Dask scheduler within {timeout_s:g} s "
                          "(accepted: the address of a running Dask scheduler)")
    answer = result[0]
    if isinstance(answer, (asyncio.TimeoutError, TimeoutError)):
        raise Unavailable(f"{where}: no answer as a Dask scheduler within {timeout_s:g} s "
                          "(accepted: the address of a running Dask scheduler)")
    if isinstance(answer, BaseException):
        if isinstance(answer, KeyboardInterrupt):
            raise answer
        if isinstance(answer, MemoryError):  # a banner's bytes read as a frame length
            raise Unavailable(f"{where}: not a Dask scheduler (what it sent is not Dask's "
                              "protocol) (accepted: the address of a running Dask scheduler)")
        raise Unavailable(f"{where}: not a Dask scheduler, or unreachable ({_why(answer)}) "
                          "(accepted: the address of a running Dask scheduler)")
    if not isinstance(answer, dict) or answer.get("type") != "Scheduler":
        kind = answer.get("type") if isinstance(answer, dict) else type(answer).__name__
        raise Unavailable(f"{where}: a Dask service that is not a scheduler ({str(kind)[:60]!r}) "
                          "(accepted: the address of a running Dask scheduler)")


def private_cluster(n: int):
    """A LocalCluster of ``n`` worker processes that only this process can use:
    TLS with temporary credentials, the HTTP servers (which Dask starts even
    with no dashboard) on a random loopback port with no route at all."""
    import dask
    from distributed import LocalCluster

    try:
        from distributed.security import Security
        security = Security.temporary()
    except ImportError as exc:  # cryptography, for the temporary credentials
        raise UsageError(f"{INSTALL_HINT} ({exc})") from None
    with dask.config.set({"distributed.scheduler.http.routes": [],
                          "distributed.worker.http.routes": []}):
        return LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                            security=security, protocol="tls://", host="127.0.0.1",
                            dashboard_address=None, silence_logs=logging.ERROR,
                            scheduler_kwargs={"dashboard": False,
                                              "dashboard_address": "127.0.0.1:0"},
                            preload=["kmallocwd.campaign.worker"])


def _connect(opts: Options):
    from distributed import Client

    if opts.scheduler:
        security = client_security(opts.scheduler)
        probe_scheduler(opts.scheduler, opts.connect_timeout_s, security)
        try:
            return None, Client(opts.scheduler, timeout=opts.connect_timeout_s,
                                security=security, set_as_default=False)
        except Exception as exc:  # noqa: BLE001 - it answered the probe, then failed
            raise Unavailable(f"--scheduler {opts.scheduler}: cannot connect ({_why(exc)})"
                              ) from None
    n = opts.workers or os.cpu_count() or 1
    cluster = private_cluster(n)
    try:
        return cluster, Client(cluster, set_as_default=False)
    except BaseException:
        cluster.close()
        raise


def run_campaign(campaign: Campaign, opts: Options | None = None) -> Campaign:
    """Run the cells of ``campaign`` not done yet; return it with their records.

    KeyboardInterrupt (Ctrl-C, or SIGTERM as kmallocwd.interrupt.Terminated) stops the
    cells, marks the campaign interrupted and propagates, the finished cells recorded;
    the process's Dask, Tornado and asyncio loggers are silenced from then on."""
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
        # the user asked to stop: what Dask, Tornado and asyncio log while the
        # cluster is torn down under them (a callback that finds its loop
        # closing) is not the user's business
        _quiet_shutdown()
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


def _quiet_shutdown() -> None:
    """From now on, Dask's, Tornado's and asyncio's loggers and the
    unraisable-exception hook say nothing: the run was interrupted, and the
    tear-down's complaints (a callback that finds its loop closing) are its
    own, not the user's."""
    for name in ("distributed", "tornado", "asyncio"):
        logging.getLogger(name).setLevel(logging.CRITICAL + 1)
    sys.unraisablehook = lambda unraisable: None
