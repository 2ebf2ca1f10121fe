"""The sandboxed Jinja2 environment every template compiles and renders in, and its global names."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jinja2
from jinja2.sandbox import SandboxedEnvironment


class _Environment(SandboxedEnvironment):
    """Jinja's sandbox, where `x.items` on a mapping with an "items" key is that key: API responses
    often have keys named like dict methods (items, keys, values, get)."""

    def getattr(self, obj: Any, attribute: str) -> Any:
        if isinstance(obj, Mapping) and attribute in obj:
            return obj[attribute]
        return super().getattr(obj, attribute)


def _environment() -> SandboxedEnvironment:
    env = _Environment(undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=True)
    # The sandbox caps range() at 100k items because Python 2's range built a list; ours is lazy.
    env.globals["range"] = range
    env.filters["to_json"] = _to_json
    return env


def _to_json(value: Any) -> str:
    import json

    return json.dumps(value, default=str)


ENV = _environment()
GLOBAL_NAMES = frozenset(ENV.globals)
