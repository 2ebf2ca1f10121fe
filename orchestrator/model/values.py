"""Loose scalar input normalised once: durations, rates, kinds, identifiers."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, WithJsonSchema

Kind = Literal["non-blocking", "blocking", "cpu"]
KINDS: tuple[Kind, ...] = ("non-blocking", "blocking", "cpu")

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}
_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*/\s*(s|m|h)\s*$")


def parse_duration(value: Any) -> float:
    """``"250ms"``, ``"2s"``, ``"1m"``, ``"1h"`` or a number of seconds, as seconds."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration like 250ms, 2s or 1m, got {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and (m := _DURATION.match(value)):
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


Duration = Annotated[
    float,
    BeforeValidator(parse_duration),
    WithJsonSchema({"anyOf": [{"type": "number", "minimum": 0}, {"type": "string", "pattern": _DURATION.pattern}]}),
]


def parse_positive_duration(value: Any) -> float:
    """A duration that must be more than zero (a timeout of 0 would fail every attempt)."""
    seconds = parse_duration(value)
    if seconds <= 0:
        raise ValueError(f"expected a duration greater than zero, like 250ms, 2s or 1m, got {value!r}")
    return seconds


# For the schema: a number with a digit other than 0 somewhere (so "0s", "0.0" and "0/s" fail the
# schema as they fail the model), then a duration's or a rate's unit.
_POSITIVE = r"^\s*(?:0*[1-9]\d*(?:\.\d+)?|\d+\.\d*[1-9]\d*)\s*"
_POSITIVE_DURATION = _POSITIVE + r"(ms|s|m|h)?\s*$"

PositiveDuration = Annotated[
    float,
    BeforeValidator(parse_positive_duration),
    WithJsonSchema({
        "anyOf": [{"type": "number", "exclusiveMinimum": 0}, {"type": "string", "pattern": _POSITIVE_DURATION}],
    }),
]
Rate = Annotated[
    float, BeforeValidator(parse_rate), WithJsonSchema({"type": "string", "pattern": _POSITIVE + r"/\s*(s|m|h)\s*$"})
]
StepId = Annotated[str, Field(pattern=r"^[a-z0-9_-]+$", min_length=1, max_length=128)]
