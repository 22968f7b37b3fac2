"""The layers: no library module imports the CLI, and no import cycle runs
when the modules load (tools/import_layers.py reads the graph)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _graph(*flags: str) -> str:
    return subprocess.run([sys.executable, str(ROOT / "tools" / "import_layers.py"), str(ROOT),
                           *flags], capture_output=True, text=True, check=True).stdout


def test_no_library_module_imports_the_cli():
    out = _graph()  # every import, in functions and under TYPE_CHECKING too
    assert "library -> CLI edges: 0" in out, out


def test_no_import_cycle_when_the_modules_load():
    out = _graph("--runtime", "--toplevel")
    assert "cycles (SCCs > 1 module): 0" in out, out


def test_the_graph_sees_a_planted_edge(tmp_path):
    """The check can fail: a library module that imports the CLI is found."""
    (tmp_path / "kmallocwd" / "cli").mkdir(parents=True)
    (tmp_path / "kmallocwd" / "__init__.py").write_text("")
    (tmp_path / "kmallocwd" / "cli" / "__init__.py").write_text("from kmallocwd import lib\n")
    (tmp_path / "kmallocwd" / "lib.py").write_text("from kmallocwd.cli import main\n")
    out = subprocess.run([sys.executable, str(ROOT / "tools" / "import_layers.py"),
                          str(tmp_path), "--runtime", "--toplevel"], capture_output=True,
                         text=True, check=True).stdout
    assert "library -> CLI edges: 1" in out and "cycles (SCCs > 1 module): 1" in out
