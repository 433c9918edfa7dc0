"""argparse value validators shared by every command.

Each raises ArgumentTypeError with the allowed range, so argparse prints one
line naming the flag (`argument --clients: 0 is outside the allowed range ...`)
and exits with status 2, without a traceback.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable


def number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def float_in(lo: float, hi: float, lo_open: bool, hi_open: bool) -> Callable[[str], float]:
    rng = f"{'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"

    def parse(text: str) -> float:
        v = number(text)
        if (v <= lo if lo_open else v < lo) or (v >= hi if hi_open else v > hi):
            raise argparse.ArgumentTypeError(f"{text} is outside the allowed range {rng}")
        return v

    return parse


def positive(text: str) -> float:
    v = number(text)
    if v <= 0:
        raise argparse.ArgumentTypeError(f"{text} must be a number > 0")
    return v


def int_in(lo: int, hi: int | None = None) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if v < lo or (hi is not None and v > hi):
            allowed = f"{lo}..{hi}" if hi is not None else f">= {lo}"
            raise argparse.ArgumentTypeError(f"{text} is outside the allowed range {allowed}")
        return v

    return parse
