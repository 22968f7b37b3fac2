"""argparse value checkers whose errors name the value and the accepted range."""

from __future__ import annotations

import argparse
from typing import Callable


def int_range(lo: int, hi: int | None = None) -> Callable[[str], int]:
    span = f"{lo} to {hi}" if hi is not None else f"{lo} or more"

    def check(text: str) -> int:
        try:
            value = int(text, 0)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number (accepted: {span})")
        if value < lo or (hi is not None and value > hi):
            raise argparse.ArgumentTypeError(f"{value} is out of range (accepted: {span})")
        return value

    return check


def float_range(lo: float, hi: float | None = None, lo_open: bool = False) -> Callable[[str], float]:
    lo_txt = f"more than {lo:g}" if lo_open else f"{lo:g}"
    span = f"{lo_txt} to {hi:g}" if hi is not None else (lo_txt if lo_open else f"{lo:g} or more")

    def check(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number (accepted: {span})")
        if value != value or value < lo or (lo_open and value == lo) or (hi is not None and value > hi):
            raise argparse.ArgumentTypeError(f"{value:g} is out of range (accepted: {span})")
        return value

    return check


def choice(names: tuple[str, ...], what: str) -> Callable[[str], str]:
    def check(text: str) -> str:
        if text not in names:
            raise argparse.ArgumentTypeError(
                f"unknown {what} {text!r} (accepted: {', '.join(names)})")
        return text

    return check
