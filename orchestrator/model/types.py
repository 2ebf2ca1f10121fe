"""The validator's types of loose scalars: each parses as `model/values.py` does and describes
itself in the JSON Schema. Imported by the documents only (it imports pydantic)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BeforeValidator, Field, WithJsonSchema

from orchestrator.model.values import DURATION, parse_duration, parse_positive_duration, parse_rate

Duration = Annotated[
    float,
    BeforeValidator(parse_duration),
    WithJsonSchema({"anyOf": [{"type": "number", "minimum": 0}, {"type": "string", "pattern": DURATION.pattern}]}),
]

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
