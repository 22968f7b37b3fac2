"""Ctrl-C and SIGTERM end ``kmallocwd run`` cleanly: threads stopped, the
summary printed, exit 130 / 143.  Run in a child process."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _default_sigint() -> None:
    # A child of a background shell inherits SIGINT ignored; Python would
    # then not raise KeyboardInterrupt.  Give it the default, as a terminal does.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.parametrize("sig,rc,name", [(signal.SIGINT, 130, "SIGINT"),
                                         (signal.SIGTERM, 143, "SIGTERM")])
@pytest.mark.slow
def test_signal_ends_the_run_with_the_summary(sig, rc, name):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    p = subprocess.Popen([sys.executable, "-m", "kmallocwd", "run", "-q", "--timeout", "0.3"],
                         cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, preexec_fn=_default_sigint)
    try:
        seen = []
        deadline = time.monotonic() + 60
        for line in p.stdout:  # wait for the first report, however long it takes
            seen.append(line)
            if "MemAlloc-Info:" in line or time.monotonic() > deadline:
                break
        p.send_signal(sig)
        out, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    text = "".join(seen) + out
    assert p.returncode == rc, err
    assert "Traceback" not in err
    assert "MemAlloc-Info:" in text
    assert re.search(rf"==== kmallocwd run summary ====\n.*interrupted by {name}", text)
