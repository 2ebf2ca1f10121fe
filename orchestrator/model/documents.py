"""The playbook document: what a playbook file may say, validated by pydantic.

Every key is known (a typo such as ``retyr:`` is an error), loose input is normalised once
(durations, rates, ``retry: 3``), and a step names exactly one action. The step model is generated
from the actions' descriptions (`ActionDescription`, a protocol defined here so the model depends
on no action), so a new action is a plain addition and the JSON Schema follows it.

These models validate and describe (the JSON Schema is generated from them); a run reads the
records they convert into (`model/playbook.py`), so that a playbook validated once runs without
importing pydantic (`model/cache.py`). Each record has the same fields as its document here.
"""

from __future__ import annotations

import importlib
from functools import cache
from typing import TYPE_CHECKING, Annotated, Any, Literal, Optional, Protocol

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    GetJsonSchemaHandler,
    PrivateAttr,
    create_model,
    field_validator,
    model_validator,
)

from orchestrator.model.types import Duration, PositiveDuration, Rate, StepId
from orchestrator.model.values import AUTO_MAX, AUTO_MIN, Kind

if TYPE_CHECKING:
    from collections.abc import Sequence

    from pydantic.json_schema import JsonSchemaValue
    from pydantic_core import CoreSchema

_STRICT = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class ActionDescription(Protocol):
    """What the model needs to know of an action: the key a step names it by, the type of the
    value under that key, and a one-line summary (the schema's hover text)."""

    @property
    def name(self) -> str: ...

    @property
    def params_type(self) -> Any: ...

    @property
    def summary(self) -> str: ...


def params_type(action: ActionDescription) -> Any:
    """The type of an action's value: its `params_type`, or the one that names as "module:Name"
    (so an action module imports no validator, and a run from the cache imports neither)."""
    declared = action.params_type
    if not isinstance(declared, str):
        return declared
    module, _, name = declared.partition(":")
    return getattr(importlib.import_module(module), name)


#: The actions a playbook may use, in a fixed order (hashable, so the generated models are cached).
Actions = tuple[ActionDescription, ...]


class RetrySpec(BaseModel):
    """How a failed attempt is tried again. Maps onto tenacity's stop and wait strategies."""

    model_config = _STRICT
    attempts: int = Field(1, ge=1, le=1000, description="Total attempts, the first included.")
    backoff: Literal["exponential", "fixed"] = Field(
        "exponential", description="`exponential` doubles the wait after each attempt; `fixed` waits `delay` each time."
    )
    delay: Duration = Field(0.2, description="Wait before the second attempt (the base of the backoff).")
    max_delay: Duration = Field(30.0, description="No wait is longer than this, unless the server's Retry-After says so.")
    max_retry_after: Duration = Field(
        300.0,
        description="The longest server's Retry-After a retry waits for (or max_delay, if longer); "
        "a longer one, or one past the run's timeout, fails the attempt at once, not retried.",
    )
    jitter: bool = Field(True, description="Add up to `delay` of random wait, so clients do not retry in step.")
    retry_on_status: tuple[int, ...] = Field(
        (429, 502, 503, 504), description="HTTP statuses that count as a failed attempt worth retrying."
    )

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            return {"attempts": value}
        return value

    @classmethod
    def __get_pydantic_json_schema__(cls, core: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        # `retry: 3` is shorthand for `retry: {attempts: 3}`: the schema must accept both.
        full = handler(core)
        shorthand = {"type": "integer", "minimum": 1, "maximum": 1000, "description": "Attempts, the first included."}
        return {"anyOf": [shorthand, full]}


#: A number of calls in flight, or `auto`: adapted to the target's latency and overload signals.
Concurrency = Annotated[int, Field(ge=1)] | Literal["auto"]
_MIN_CONCURRENCY = f"With `concurrency: auto`: never fewer than this many in flight (default {AUTO_MIN})."
_MAX_CONCURRENCY = f"With `concurrency: auto`: never more than this many in flight (default {AUTO_MAX})."


def _auto_bounds(owner: Any) -> Any:
    """`min_concurrency` / `max_concurrency` belong to `concurrency: auto`, the smaller first."""
    low, high = owner.min_concurrency, owner.max_concurrency
    if (low is not None or high is not None) and owner.concurrency != "auto":
        raise ValueError("min_concurrency and max_concurrency need `concurrency: auto`")
    if low is not None and high is not None and low > high:
        raise ValueError(f"min_concurrency ({low}) is more than max_concurrency ({high})")
    return owner


class LimitSpec(BaseModel):
    """A named cap shared by every step and item that names it."""

    model_config = _STRICT
    concurrency: Concurrency | None = Field(
        None, description="At most this many calls in flight; `auto` adapts it to the target's latency and overload."
    )
    min_concurrency: int | None = Field(None, ge=1, description=_MIN_CONCURRENCY)
    max_concurrency: int | None = Field(None, ge=1, description=_MAX_CONCURRENCY)
    rate: Rate | None = Field(None, description="At most this many calls started per second or minute (token bucket).")

    _bounds = model_validator(mode="after")(_auto_bounds)


class Defaults(BaseModel):
    """Values every step gets unless it says otherwise."""

    model_config = _STRICT
    retry: RetrySpec = Field(
        default_factory=RetrySpec, description="How failed attempts are retried: `retry: 3` or a mapping (default: one attempt)."
    )
    timeout: PositiveDuration | None = Field(None, description="Bound on each attempt of each step.")
    concurrency: int = Field(10, ge=1, description="`for_each` items in flight when a step does not say.")
    on_error: Literal["fail", "continue"] = Field(
        "fail", description="`continue` lets the run go on when a step fails; `fail` (the default) fails the run."
    )


class StepBase(BaseModel):
    """Fields every step has; the action fields are added per registry."""

    model_config = _STRICT
    id: StepId = Field(description="Unique identifier, [a-z0-9_-]+; other steps refer to `steps.<id>.output`.")
    name: str | None = Field(None, description="A human-readable title.")
    kind: Kind | None = Field(None, description="non-blocking, blocking or cpu; inferred from the action if absent.")
    needs: tuple[StepId, ...] = Field((), description="Steps that must finish before this one starts.")
    when: str | bool | None = Field(None, description="Run only if this expression is true.")
    for_each: str | list[Any] | None = Field(None, description="Run once per item; `item` and `index` in scope.")
    concurrency: Concurrency | None = Field(
        None, description="At most this many `for_each` items in flight; `auto` adapts it to the target's latency and overload."
    )
    min_concurrency: int | None = Field(None, ge=1, description=_MIN_CONCURRENCY)
    max_concurrency: int | None = Field(None, ge=1, description=_MAX_CONCURRENCY)
    limit: str | tuple[str, ...] | None = Field(None, description="Named limit(s) from `limits:` to respect.")
    retry: RetrySpec | None = Field(None, description="How failed attempts are retried: `retry: 3` or a mapping.")
    timeout: PositiveDuration | None = Field(None, description="Bound on each attempt.")
    on_error: Literal["fail", "continue"] | None = Field(None, description="`continue` lets the run go on if this step fails.")
    read_only: bool = Field(False, description="The step changes nothing; `--dry-run=reads` may run it.")
    with_: dict[str, Any] | None = Field(None, alias="with", description="Keyword arguments for `call`.")

    _action: str = PrivateAttr("")
    _bounds = model_validator(mode="after")(_auto_bounds)

    @property
    def action(self) -> str:
        """The name of the step's action."""
        return self._action

    @property
    def params(self) -> Any:
        """The value under the step's action key."""
        return getattr(self, self._action)


def _one_action(names: tuple[str, ...]) -> Any:
    def check(self: StepBase) -> StepBase:
        present = [n for n in names if getattr(self, n) is not None]
        if len(present) != 1:
            found = ", ".join(present) if present else "none"
            raise ValueError(f"a step needs exactly one action ({', '.join(names)}); found {found}")
        self._action = present[0]
        return self

    return model_validator(mode="after")(check)


@cache
def step_model(actions: Actions) -> type[StepBase]:
    """The pydantic model of a step that names one of `actions`."""
    fields: dict[str, Any] = {
        a.name: (Optional[params_type(a)], Field(None, description=a.summary))  # noqa: UP045
        for a in actions
    }
    names = tuple(a.name for a in actions)
    return create_model(
        "Step", __base__=StepBase, __validators__={"_one_action": _one_action(names)}, **fields
    )


class PlaybookBase(BaseModel):
    model_config = _STRICT
    name: str = Field(min_length=1, description="What the playbook does.")
    description: str | None = Field(None, description="Longer text about the playbook, for people.")
    vars: dict[str, Any] = Field(default_factory=dict, description="Defaults; `--var k=v` overrides.")
    secrets: tuple[str, ...] = Field(
        (), description="Names of variables whose values (after `--var`) are secret: masked as *** in every output, log and record."
    )
    limits: dict[str, LimitSpec] = Field(
        default_factory=dict, description="Named concurrency and rate caps, shared by the steps that name them in `limit:`."
    )
    defaults: Defaults = Field(default_factory=Defaults, description="Values every step gets unless it says otherwise.")
    timeout: PositiveDuration | None = Field(
        None,
        description="Bound on the main steps: when it passes, the steps still running are cancelled and the run fails; "
        "rollback and finally still run.",
    )

    @field_validator("vars")
    @classmethod
    def _var_names(cls, value: dict[str, Any]) -> dict[str, Any]:
        for key in value:
            if not isinstance(key, str) or not key.isidentifier():
                raise ValueError(f"variable names must be identifiers, got {key!r}")
        return value

    @field_validator("secrets")
    @classmethod
    def _secret_names(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for name in value:
            if not name.isidentifier():
                raise ValueError(f"`secrets` lists variable names, which are identifiers; got {name!r}")
        if len(set(value)) != len(value):
            raise ValueError(f"a variable is listed twice: {sorted({n for n in value if value.count(n) > 1})}")
        return value


@cache
def playbook_model(actions: Sequence[ActionDescription]) -> type[PlaybookBase]:
    """The pydantic model of a whole playbook whose steps name `actions`."""
    return _playbook_model(tuple(actions))


@cache
def _playbook_model(actions: Actions) -> type[PlaybookBase]:
    step = step_model(actions)
    return create_model(
        "Playbook",
        __base__=PlaybookBase,
        steps=(list[step], Field(min_length=1, description="The steps to run, as a dependency graph.")),  # type: ignore[valid-type]
        rollback=(list[step], Field(default_factory=list, description="Run in order when the run fails.")),  # type: ignore[valid-type]
        finally_=(list[step], Field(default_factory=list, alias="finally", description="Run in order at the end, always.")),  # type: ignore[valid-type]
    )


