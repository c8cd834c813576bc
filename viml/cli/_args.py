"""Argument types shared by the commands: nonsense (NaN, inf, 0 or negative counts, fractions outside
0..1, an output file in a folder that does not exist) stops at parse time as one argparse line (exit 2),
before anything slow is opened."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from pathlib import Path


def whole(low: int = 1, high: int | None = None) -> Callable[[str], int]:
    """A whole number in [low, high]."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < low or (high is not None and value > high):
            limit = f"between {low} and {high}" if high is not None else f"{low} or more"
            raise argparse.ArgumentTypeError(f"must be {limit}, got {value}")
        return value

    return parse


def number(
    low: float | None = None, high: float | None = None, *, above: float | None = None
) -> Callable[[str], float]:
    """A finite number, at least `low` (and at most `high`), or more than `above`."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"must be a finite number, got {text}")
        if above is not None and value <= above:
            raise argparse.ArgumentTypeError(f"must be more than {above:g}, got {text}")
        if low is not None and high is not None and not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be between {low:g} and {high:g}, got {text}")
        if low is not None and value < low:
            raise argparse.ArgumentTypeError(f"must be {low:g} or more, got {text}")
        if high is not None and value > high:
            raise argparse.ArgumentTypeError(f"must be {high:g} or less, got {text}")
        return value

    return parse


positive_count = whole(1)
seed = whole(0, 2**32 - 1)
fraction = number(0.0, 1.0)
positive = number(above=0.0)


def output_file(text: str) -> str:
    """A file to write: its folder must exist (nothing is created on a typo), and it is no folder."""
    path = Path(text)
    folder = path.parent
    if not folder.is_dir():
        raise argparse.ArgumentTypeError(f"cannot write {text}: no such folder {folder}")
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a folder; give a file name")
    return text


def output_path(text: str) -> Path:
    return Path(output_file(text))
