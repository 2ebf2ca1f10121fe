"""The types of the built-in actions' values, as the validator reads them (they import pydantic).

An action names its type as "orchestrator.actions.params:Name" (`Action.params_type`), so that the
action modules, which a run imports, import no validator: these are imported only when a playbook
is validated (a change to it, or no entry in the validated cache) and for the JSON Schema.
Each key's description is the schema's hover text.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, NotRequired

from pydantic import ConfigDict, Field, WithJsonSchema
from typing_extensions import TypedDict

from orchestrator.actions.http import METHODS
from orchestrator.model.types import Duration

_FORBID = ConfigDict(extra="forbid")

# --- call, sleep, set ----------------------------------------------------------------------------

CallTarget = Annotated[str, Field(pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$", description="module:function")]
SleepDuration = Duration | str
AnyValue = Annotated[Any, Field(description="Any value; templates are rendered.")]


# --- log, assert ---------------------------------------------------------------------------------


class LogParams(TypedDict):
    __pydantic_config__ = _FORBID  # type: ignore[misc]
    message: Annotated[Any, Field(description="What to log: any value, templates rendered.")]
    level: NotRequired[
        Annotated[Literal["debug", "info", "warning", "error"], Field(description="The log level (default info).")]
    ]


LogValue = str | LogParams


class AssertParams(TypedDict):
    __pydantic_config__ = _FORBID  # type: ignore[misc]
    that: Annotated[str | bool | list[str | bool], Field(description="Expression(s) that must all be true; braces optional.")]
    message: NotRequired[Annotated[str, Field(description="The step's error when an expression is false.")]]


# --- shell ---------------------------------------------------------------------------------------


class ShellParams(TypedDict):
    __pydantic_config__ = _FORBID  # type: ignore[misc]
    argv: Annotated[list[Any] | str, Field(description="The program and its arguments, as a list (or a template giving one).")]
    env: NotRequired[Annotated[dict[str, Any], Field(description="Extra environment variables.")]]
    cwd: NotRequired[Annotated[str, Field(description="The folder the program runs in (default: the current one).")]]
    stdin: NotRequired[Annotated[str, Field(description="Text written to the program's standard input.")]]
    check: NotRequired[Annotated[bool, Field(description="Fail the step on a non-zero exit status (default true).")]]


# --- aws -----------------------------------------------------------------------------------------


class AwsParams(TypedDict):
    __pydantic_config__ = _FORBID  # type: ignore[misc]
    service: Annotated[str, Field(description="The botocore service name: s3, ec2, sqs, dynamodb, ...")]
    operation: Annotated[str, Field(description="boto3's snake_case method name, e.g. put_object.")]
    params: NotRequired[Annotated[dict[str, Any] | str, Field(description="The operation's parameters (a template may give the whole mapping).")]]
    region: NotRequired[Annotated[str, Field(description="Overrides `aws.region` of the configuration.")]]
    paginate: NotRequired[Annotated[bool, Field(description="Fetch every page and merge them (lists concatenated).")]]
    wait: NotRequired[Annotated[str, Field(description="A boto3 waiter name, e.g. bucket_exists: reads wait before the call, changes after it.")]]
    wait_params: NotRequired[Annotated[dict[str, Any], Field(description="Extra waiter arguments (e.g. WaiterConfig); the call's own parameters that the waiter accepts are passed anyway.")]]


# --- http, wait_until ----------------------------------------------------------------------------

_FlexDuration = Annotated[Duration | str, Field(union_mode="left_to_right")]
# The schema offers the methods by name (editors complete them) and, as the planner does, accepts
# them in any case and a template that gives one at run time.
_METHOD_SCHEMA = {
    "anyOf": [
        {"enum": list(METHODS)},
        {"type": "string", "pattern": "^(?:" + "|".join("".join(f"[{c}{c.lower()}]" for c in m) for m in METHODS) + ")$"},
        {"type": "string", "pattern": r"\{[{%]"},
    ]
}


class _RequestParams(TypedDict):
    __pydantic_config__ = _FORBID  # type: ignore[misc]
    method: NotRequired[
        Annotated[
            str,
            WithJsonSchema(_METHOD_SCHEMA),
            Field(description="GET (default), HEAD, POST, PUT, PATCH, DELETE or OPTIONS, or a template giving one."),
        ]
    ]
    url: Annotated[str, Field(description="Absolute http(s) URL.")]
    headers: NotRequired[Annotated[dict[str, Any] | str, Field(description="Request headers.")]]
    params: NotRequired[Annotated[dict[str, Any] | str, Field(description="Query parameters, added to the URL's own.")]]
    json: NotRequired[Annotated[Any, Field(description="A body sent as JSON.")]]
    data: NotRequired[Annotated[str | dict[str, Any], Field(description="A body sent as text, or a mapping sent as a form.")]]


class HttpParams(_RequestParams):
    __pydantic_config__ = _FORBID  # type: ignore[misc]
    expect: NotRequired[Annotated[int | list[int] | str, Field(description="Expected status(es); default any 2xx.")]]
    timeout: NotRequired[Annotated[_FlexDuration, Field(description="Bound on the request (the step's timeout bounds the attempt).")]]


class WaitUntilParams(_RequestParams):
    __pydantic_config__ = _FORBID  # type: ignore[misc]
    expect: NotRequired[Annotated[int | list[int] | str, Field(description="Statuses `until` is evaluated on; default any 2xx.")]]
    until: Annotated[str | bool, Field(description="Expression over `response` that ends the wait; braces optional.")]
    interval: NotRequired[Annotated[_FlexDuration, Field(description="Wait between requests (default 1s).")]]
    timeout: NotRequired[Annotated[_FlexDuration, Field(description="Give up after this long (default 60s).")]]
