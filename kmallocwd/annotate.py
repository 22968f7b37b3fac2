"""GitHub Actions annotations: ``::error file=F,line=N::message`` lines that
point at the protocol file's line involved (the operations of a
counterexample, the barrier whose removal breaks the protocol, the outcome a
run saw).  On when GITHUB_ACTIONS=true or with ``--annotate github``."""

from __future__ import annotations

import os
import sys
from typing import Iterable, TextIO

from kmallocwd.escape import github_data, github_property

STYLES = ("github", "none")


def wanted(option: str | None) -> bool:
    if option is not None:
        return option == "github"
    return os.environ.get("GITHUB_ACTIONS") == "true"


def _escape(text: str, prop: bool = False) -> str:
    """GitHub's workflow-command escaping (% CR LF, and : , in properties),
    and no other control character (kmallocwd/escape.py)."""
    return github_property(text) if prop else github_data(text)


def line(path: str, lineno: int, message: str, level: str = "error",
         title: str | None = None) -> str:
    props = f"file={_escape(path, True)}"
    if lineno:
        props += f",line={lineno}"
    if title:
        props += f",title={_escape(title, True)}"
    return f"::{level} {props}::{_escape(message)}"


def emit(items: Iterable[tuple[str, int, str]], out: TextIO | None = None,
         level: str = "error") -> int:
    """Print one annotation per (file, line, message) on stdout; how many."""
    out = out or sys.stdout
    n = 0
    for path, lineno, message in items:
        out.write(line(path, lineno, message, level) + "\n")
        n += 1
    out.flush()
    return n
