"""argparse value checkers whose errors name the value and the accepted range.

The ranges and messages are kmallocwd/limits.py's validators: ``limit(L)``
makes one an argparse type, so that the CLI, the Python API and campaign
plans refuse the same values with the same message."""

from __future__ import annotations

import argparse
from typing import Callable

from kmallocwd.limits import Choice, FloatLimit, IntLimit, parse_int, shown  # noqa: F401


def limit(validator: IntLimit | FloatLimit | Choice) -> Callable[[str], object]:
    """An argparse ``type=`` that parses and checks with ``validator``."""

    def check(text: str):
        try:
            return validator.parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return check


def int_range(lo: int, hi: int | None = None) -> Callable[[str], int]:
    return limit(IntLimit(lo, hi))  # type: ignore[return-value]


def float_range(lo: float, hi: float | None = None, lo_open: bool = False) -> Callable[[str], float]:
    return limit(FloatLimit(lo, hi, lo_open))  # type: ignore[return-value]


def choice(names: tuple[str, ...], what: str) -> Callable[[str], str]:
    return limit(Choice(tuple(names), what))  # type: ignore[return-value]

