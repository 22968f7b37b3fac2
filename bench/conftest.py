"""pytest-benchmark suites of reader and writer costs (``make bench``).

Files here are named ``bench_*.py`` and collected by the hook below, so that
``make test`` (``pytest -q``, testpaths = tests) never runs them, and neither
does a bare ``pytest tests``.
"""

from __future__ import annotations

import os
import platform

import pytest

import harness


def pytest_addoption(parser: pytest.Parser) -> None:
    g = parser.getgroup("kmallocwd benchmarks")
    g.addoption("--kmw-scale", type=float, default=1.0, metavar="X",
                help="multiply every batch size by X (default 1; 0.01 for a smoke run)")
    g.addoption("--kmw-rounds", type=int, default=9, metavar="N",
                help="measured rounds per benchmark, after one warm-up round (default 9)")
    g.addoption("--kmw-copy-mib", type=int, default=0, metavar="MIB",
                help="buffer size of the copy-bandwidth benchmark (default: twice the "
                "last-level cache, at least 64 MiB)")
    g.addoption("--kmw-no-pin", action="store_true",
                help="do not pin the threads of multi-threaded cases to CPUs (by default "
                "they are pinned round-robin, the reader first)")


def pytest_collect_file(file_path, parent):
    if file_path.suffix == ".py" and file_path.name.startswith("bench_"):
        return pytest.Module.from_parent(parent, path=file_path)
    return None


@pytest.fixture(scope="session")
def kmw(pytestconfig: pytest.Config) -> harness.Settings:
    scale = pytestconfig.getoption("--kmw-scale")
    rounds = pytestconfig.getoption("--kmw-rounds")
    if not scale > 0:
        raise pytest.UsageError(f"--kmw-scale must be positive, got {scale}")
    if rounds < 1:
        raise pytest.UsageError(f"--kmw-rounds must be at least 1, got {rounds}")
    copy_mib = pytestconfig.getoption("--kmw-copy-mib")
    if copy_mib < 0:
        raise pytest.UsageError(f"--kmw-copy-mib must be positive, got {copy_mib}")
    return harness.Settings(scale=scale, rounds=rounds,
                            pin=not pytestconfig.getoption("--kmw-no-pin"), copy_mib=copy_mib)


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def pytest_benchmark_update_json(config, benchmarks, output_json) -> None:
    """The run's settings and the CPU, for bench-report's header."""
    from kmallocwd._core import ffi, lib

    output_json["kmallocwd"] = {
        "schema": harness.SCHEMA,
        "build": ffi.string(lib.kmw_build_name()).decode(),  # barriers.h's definitions
        "scale": config.getoption("--kmw-scale"),
        "rounds": config.getoption("--kmw-rounds"),
        "pinned": not config.getoption("--kmw-no-pin"),
        "cpu_model": _cpu_model(),
        "cpus": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
    }


class _Bar:
    """A tqdm bar on stderr over the benchmarks, when stderr is a terminal
    (kmallocwd/cli/progress.py); none in CI logs or with -q -q."""

    progress = None

    @classmethod
    def start(cls, total: int, quiet: bool) -> None:
        from kmallocwd.cli.progress import Progress

        cls.progress = Progress(total, "bench", quiet=quiet, desc="make bench")

    @classmethod
    def step(cls) -> None:
        if cls.progress is not None:
            cls.progress.update(1)

    @classmethod
    def stop(cls) -> None:
        if cls.progress is not None:
            cls.progress.__exit__(None, None, None)
            cls.progress = None


def pytest_collection_finish(session) -> None:
    _Bar.start(len(session.items), quiet=session.config.getoption("verbose") < -1)


def pytest_runtest_logfinish(nodeid, location) -> None:
    _Bar.step()


def pytest_sessionfinish(session, exitstatus) -> None:
    _Bar.stop()
