"""The sandboxed Jinja2 environment every template compiles and renders in, and its global names.

Jinja's immutable sandbox, with the cost caps of `limits.py` on ranges, repetition, powers and
format widths: a template reads and computes, but can neither change shared state nor run away.
"""

from __future__ import annotations

import functools
import types
from collections.abc import Mapping
from typing import Any

import jinja2
from jinja2.filters import do_format
from jinja2.sandbox import ImmutableSandboxedEnvironment, SandboxedFormatter

from orchestrator.templates.limits import BINOPS, TemplateRange, check_format_spec, check_percent_format


class _Environment(ImmutableSandboxedEnvironment):
    """Jinja's immutable sandbox, where `x.items` on a mapping with an "items" key is that key: API
    responses often have keys named like dict methods (items, keys, values, get)."""

    intercepted_binops = frozenset(BINOPS)

    def getattr(self, obj: Any, attribute: str) -> Any:
        if isinstance(obj, Mapping) and attribute in obj:
            return obj[attribute]
        return super().getattr(obj, attribute)

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        return BINOPS[operator](left, right)

    def wrap_str_format(self, value: Any) -> Any:
        """``str.format`` and ``format_map`` as the sandbox has them, each field's width checked
        once resolved (``'{:{w}}'.format(1, w=...)`` too)."""
        if not (
            isinstance(value, types.MethodType | types.BuiltinMethodType)
            and value.__name__ in ("format", "format_map")
            and type(value.__self__) is str
        ):
            return super().wrap_str_format(value)
        text: str = value.__self__
        formatter = _CappedFormatter(self)
        is_format_map = value.__name__ == "format_map"

        def wrapper(*args: Any, **kwargs: Any) -> str:
            if is_format_map:
                if kwargs or len(args) != 1:
                    raise TypeError("format_map() takes exactly one positional argument")
                return formatter.vformat(text, (), args[0])
            return formatter.vformat(text, args, kwargs)

        return functools.update_wrapper(wrapper, value)


class _CappedFormatter(SandboxedFormatter):
    def format_field(self, value: Any, format_spec: str) -> Any:
        check_format_spec("{:" + format_spec + "}")
        return super().format_field(value, format_spec)


def _format(value: Any, *args: Any, **kwargs: Any) -> str:
    check_percent_format(value)
    return do_format(value, *args, **kwargs)


def _environment() -> ImmutableSandboxedEnvironment:
    env = _Environment(undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=True)
    # The sandbox caps range() at 100k items because Python 2's range built a list; ours is lazy,
    # and capped only where a template iterates it (limits.py).
    env.globals["range"] = TemplateRange
    env.filters["to_json"] = _to_json
    env.filters["format"] = _format
    return env


def _to_json(value: Any) -> str:
    import json

    return json.dumps(value, default=str)


ENV = _environment()
