"""Shared helpers for the tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def pytest_configure(config):
    # Under pytest-xdist (make test runs the suite on every core), a child
    # process a test starts is not a worker: it must not inherit the
    # worker's variables (pytest-benchmark, for one, reads them as "xdist on").
    for k in [k for k in os.environ if k.startswith("PYTEST_XDIST_")]:
        del os.environ[k]


def run_cli(*args: str, timeout: float = 120, **kw) -> subprocess.CompletedProcess:
    """Run ``python -m kmallocwd ARGS`` in a child process."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "kmallocwd", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout, **kw)


def run_json(*args: str) -> list[dict]:
    """``kmallocwd run --json ARGS`` in this process: its JSON Lines, parsed
    (exit 0 asserted)."""
    import contextlib
    import io
    import json

    from kmallocwd.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        rc = main(["run", "-q", "--json", *args])
    assert rc == 0
    return [json.loads(x) for x in out.getvalue().splitlines()]


@pytest.fixture
def cli():
    return run_cli


pytest_plugins = ["pytester"]


def watchdog_machine(scenario_toml: str):
    """A System built from a scenario's TOML text, its tasks made, printk
    captured: (system, {pid: task}, the printed texts)."""
    from kmallocwd.watchdog import workload as W
    from kmallocwd.watchdog.system import System
    from kmallocwd.watchdog.tasks import make_tasks

    scen = W.loads(scenario_toml, "m.toml", "m")
    system = System("v3", 1000, scen.tasks, scen.memory)
    system.tasks = make_tasks(system, scen, 1)
    printed: list[str] = []
    system.set_printk(lambda text: printed.append(text) or 0)
    return system, {t.pid: t for t in system.tasks}, printed
