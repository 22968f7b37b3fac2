"""What runs on a Dask worker: one cell, in a subprocess (``python -m kmallocwd
ARGV --json -``), with a timeout.  Standard library only, so that it is cheap
to import on any worker.

A crash or hang in C kills only the subprocess: its exit status, signal or
timeout becomes the cell's error.  The subprocess dies with its worker
(PR_SET_PDEATHSIG on Linux) and is killed when the campaign is stopped: on
Ctrl-C the client calls ``stop_cells(token)`` on every worker (``Client.run``)."""

from __future__ import annotations

import datetime
import functools
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

from kmallocwd.verdicts import Result

# exit statuses that carry a verdict (the others are a failed cell)
VERDICTS = {r.status: r.cell for r in Result}
STDERR_TAIL = 2000


@functools.lru_cache(maxsize=1)
def machine_info() -> dict:
    """hostname, CPU model, architecture and cores of the machine this runs on."""
    cpu = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() in ("model name", "Hardware", "cpu model", "cpu", "Model") \
                        and value.strip():
                    cpu = value.strip()
                    break
    except OSError:
        pass
    if not cpu:
        cpu = platform.processor() or "unknown"
    try:
        from kmallocwd import __version__ as version
    except Exception:  # pragma: no cover - a worker without kmallocwd
        version = None
    return {"hostname": socket.gethostname(), "cpu": cpu, "arch": platform.machine(),
            "cores": os.cpu_count(), "python": platform.python_version(),
            "kmallocwd": version}


def dask_setup(worker=None) -> None:
    """Preload of the embedded LocalCluster's workers: Ctrl-C at the terminal reaches
    the whole process group, but only the campaign's own process acts on it (it stops
    the cells and closes the cluster); the workers ignore it."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def _worker_identity() -> dict:
    address = None
    try:
        from distributed import get_worker
        address = get_worker().address
    except Exception:
        pass
    return {"address": address, "pid": os.getpid()}


def _die_with_parent() -> None:  # runs in the child, before exec
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:
        pass


# the cells running in this worker process, by campaign token, so that a stopped
# campaign can kill them; and the tokens stopped (a cell starting later aborts)
_LOCK = threading.Lock()
_RUNNING: dict[str, set] = {}
_STOPPED: set[str] = set()


def stop_cells(token: str) -> int:
    """Kill the subprocesses of the campaign ``token`` running here; returns how many.
    Runs on each worker through ``Client.run`` when the campaign is interrupted."""
    with _LOCK:
        _STOPPED.add(token)
        procs = list(_RUNNING.get(token, ()))
    for proc in procs:
        _kill(proc)
    return len(procs)


def _kill(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except OSError:
        try:
            proc.kill()
        except OSError:
            pass


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[-1][:300] if lines else ""


def run_cell(cell: dict, token: str | None = None, python: str | None = None) -> dict:
    """Run one cell; never raises for the cell's own failures (they are in the result).

    ``cell`` is ``Cell.to_wire()``: ``id``, ``argv`` (after ``kmallocwd``), ``timeout_s``,
    ``files`` (``@file:NAME`` placeholders in argv -> file text)."""
    started = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    t0 = time.monotonic()
    result = {"id": cell["id"], "status": "failed", "exit_status": None, "error": None,
              "report": None, "machine": machine_info(), "worker": _worker_identity(),
              "started_at": started, "elapsed_s": None}
    with tempfile.TemporaryDirectory(prefix="kmallocwd-cell-") as tmp:
        argv = []
        for a in cell["argv"]:
            if a.startswith("@file:") and a[6:] in cell.get("files", {}):
                path = os.path.join(tmp, f"{len(argv)}.toml")
                with open(path, "w", encoding="utf-8") as f:
                    f.write(cell["files"][a[6:]])
                a = path
            argv.append(a)
        # the coordinator annotates the campaign; a cell's own annotations would be lost
        cmd = [python or sys.executable, "-m", "kmallocwd", *argv, "--json", "-",
               "--annotate", "none"]
        with _LOCK:
            if token in _STOPPED:
                result["error"] = "stopped: the campaign was interrupted"
                result["elapsed_s"] = time.monotonic() - t0
                return result
            try:
                proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, start_new_session=True,
                                        preexec_fn=_die_with_parent, cwd=tmp)
            except OSError as exc:
                result["error"] = f"cannot start {cmd[0]}: {exc.strerror or exc}"
                result["elapsed_s"] = time.monotonic() - t0
                return result
            _RUNNING.setdefault(token, set()).add(proc)
        timed_out = False
        try:
            out, err = proc.communicate(timeout=max(0.01, t0 + float(cell["timeout_s"])
                                                    - time.monotonic()))
        except subprocess.TimeoutExpired:
            timed_out = True
            _kill(proc)
            out, err = proc.communicate()
        finally:
            with _LOCK:
                _RUNNING.get(token, set()).discard(proc)
                stopped = token in _STOPPED
    result["elapsed_s"] = round(time.monotonic() - t0, 6)
    rc = proc.returncode
    result["exit_status"] = rc
    err_text = err.decode("utf-8", "replace")
    try:
        report = json.loads(out.decode("utf-8", "replace")) if out.strip() else None
    except ValueError:
        report = None
    result["report"] = report
    if timed_out:
        result["error"] = f"timed out after {cell['timeout_s']:g} s (killed)"
    elif stopped and rc not in VERDICTS:
        result["error"] = "stopped: the campaign was interrupted"
    elif rc is not None and rc < 0:
        sig = -rc
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = str(sig)
        last = _last_line(err_text)
        result["error"] = f"killed by {name}" + (f": {last}" if last else "")
    elif rc in VERDICTS and report is not None:
        result["status"] = "done"
    elif rc in VERDICTS:
        result["error"] = f"exit status {rc} without a JSON report" + (
            f": {_last_line(err_text)}" if _last_line(err_text) else "")
    else:
        last = _last_line(err_text)
        result["error"] = f"exit status {rc}" + (f": {last}" if last else "")
    if result["status"] != "done":
        result["stderr_tail"] = err_text[-STDERR_TAIL:]
    return result
