"""argparse value checkers whose errors name the value and the accepted range."""

from __future__ import annotations

import argparse
import re
from typing import Callable

_PREFIXED = re.compile(r"[+-]?0[xXoObB]")


def parse_int(text: str) -> int:
    """A whole number: decimal (leading zeros allowed: ``010`` is 10), or
    with a 0x / 0o / 0b prefix; ``_`` between digits as in Python.
    ValueError otherwise."""
    t = text.strip()
    return int(t, 0) if _PREFIXED.match(t) else int(t, 10)


def int_range(lo: int, hi: int | None = None) -> Callable[[str], int]:
    span = f"{lo} to {hi}" if hi is not None else f"{lo} or more"

    def check(text: str) -> int:
        try:
            value = parse_int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{_short(text)} is not a whole number (accepted: {span}; decimal, or 0x hex)")
        if value < lo or (hi is not None and value > hi):
            raise argparse.ArgumentTypeError(f"{_short(text)} is out of range (accepted: {span})")
        return value

    return check


def float_range(lo: float, hi: float | None = None, lo_open: bool = False) -> Callable[[str], float]:
    lo_txt = f"more than {lo:g}" if lo_open else f"{lo:g}"
    span = f"{lo_txt} to {hi:g}" if hi is not None else (lo_txt if lo_open else f"{lo:g} or more")

    def check(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{_short(text)} is not a number (accepted: {span})")
        if value != value or value < lo or (lo_open and value == lo) or (hi is not None and value > hi):
            raise argparse.ArgumentTypeError(f"{_short(text)} is out of range (accepted: {span})")
        return value

    return check


def choice(names: tuple[str, ...], what: str) -> Callable[[str], str]:
    def check(text: str) -> str:
        if text not in names:
            raise argparse.ArgumentTypeError(
                f"unknown {what} {_short(text)} (accepted: {', '.join(names)})")
        return text

    return check


def _short(text: str, limit: int = 60) -> str:
    """The value as given, quoted, and cut if it is long (one line)."""
    shown = repr(text)
    return shown if len(shown) <= limit else shown[: limit - 4] + "...'"
