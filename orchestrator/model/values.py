"""Loose scalar input normalised once: durations, rates, kinds. Plain Python, no validator: a run
parses durations at run time (rendered templates) with the same functions the documents use."""

from __future__ import annotations

import re
from typing import Any, Literal

Kind = Literal["non-blocking", "blocking", "cpu"]
KINDS: tuple[Kind, ...] = ("non-blocking", "blocking", "cpu")

#: The bounds of `concurrency: auto` when `min_concurrency` / `max_concurrency` are not given.
AUTO_MIN, AUTO_MAX = 1, 256

DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}
_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*/\s*(s|m|h)\s*$")


def parse_duration(value: Any) -> float:
    """``"250ms"``, ``"2s"``, ``"1m"``, ``"1h"`` or a number of seconds, as seconds."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration like 250ms, 2s or 1m, got {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and (m := DURATION.match(value)):
        seconds = float(m.group(1)) * _UNITS[m.group(2)]
    else:
        raise ValueError(f"expected a duration like 250ms, 2s, 1m or a number of seconds, got {value!r}")
    if not seconds >= 0 or seconds == float("inf"):  # also rejects NaN
        raise ValueError(f"expected a finite duration of zero or more, got {value!r}")
    return seconds


def parse_rate(value: Any) -> float:
    """``"50/s"``, ``"600/m"`` or ``"10/h"``, as events per second."""
    if isinstance(value, str) and (m := _RATE.match(value)):
        per_second = float(m.group(1)) / {"s": 1.0, "m": 60.0, "h": 3600.0}[m.group(2)]
        if per_second > 0:
            return per_second
    raise ValueError(f"expected a rate like 50/s or 600/m, got {value!r}")


def parse_positive_duration(value: Any) -> float:
    """A duration that must be more than zero (a timeout of 0 would fail every attempt)."""
    seconds = parse_duration(value)
    if seconds <= 0:
        raise ValueError(f"expected a duration greater than zero, like 250ms, 2s or 1m, got {value!r}")
    return seconds
