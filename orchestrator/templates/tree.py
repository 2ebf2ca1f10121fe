"""The compiled parameter tree: a parameter value with its templates compiled (`compile_tree`), and
the render function built once from its shape (`Tree`), plus `Deferred` expressions left to the
action."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from orchestrator.templates.compile import Template, TemplateSyntax, compile_template, is_template

if TYPE_CHECKING:
    from collections.abc import Mapping

    from orchestrator.templates.fast import Render


# A compiled tree mirrors a parameter value: templates replaced by Template objects.
class Tree:
    """A parameter value with its templates compiled. ``render(scope)`` gives a plain value.

    `render` is a function built once from the value's shape (not a walk of the value per call): a
    fan-out renders the same tree once per item, thousands of times.
    """

    __slots__ = ("render", "templates", "value")

    def __init__(self, value: Any, templates: list[Template]) -> None:
        self.value = value
        self.templates = templates
        self.render: Render = _renderer(value) or (lambda scope: value)

    @property
    def is_static(self) -> bool:
        return not self.templates

    @property
    def refs(self) -> frozenset[str]:
        return frozenset().union(*(t.refs for t in self.templates))


class Deferred:
    """An expression the action evaluates itself, later, with extra names (e.g. `response`)."""

    __slots__ = ("scope", "template")

    def __init__(self, template: Template, scope: Mapping[str, Any] | None = None) -> None:
        self.template = template
        self.scope = scope

    def __call__(self, **extra: Any) -> Any:
        return self.template.render({**(self.scope or {}), **extra})


def _renderer(value: Any) -> Render | None:
    """The function that renders `value`, or None when it holds no template."""
    if isinstance(value, Template):
        return value.render
    if isinstance(value, Deferred):
        template = value.template
        return lambda scope: Deferred(template, scope)
    if not isinstance(value, dict | list):
        return None
    # A copy of the value with its static parts in place, and (key, renderer) for the others.
    # Containers inside are fresh per render, so no two items share one.
    base = value.copy()
    dynamic: list[tuple[Any, Render]] = []
    templated = False
    for key, child in (value.items() if isinstance(value, dict) else enumerate(value)):
        fn = _renderer(child)
        templated = templated or fn is not None
        if fn is None and isinstance(child, dict | list):
            fn = functools.partial(_fresh, child)
        if fn is not None:
            dynamic.append((key, fn))
    if not templated:
        return None  # static through and through: the tree renders as the value itself
    parts = tuple(dynamic)

    def render(scope: Mapping[str, Any]) -> Any:
        out = base.copy()  # keeps the keys' order: each assignment below replaces a value in place
        for key, fn in parts:
            out[key] = fn(scope)
        return out

    return render


def _fresh(value: Any, scope: Mapping[str, Any]) -> Any:
    """A copy of a static container, as each render hands out."""
    if isinstance(value, dict):
        return {k: _fresh(v, scope) for k, v in value.items()}
    if isinstance(value, list):
        return [_fresh(v, scope) for v in value]
    return value


def compile_tree(
    value: Any,
    where: str,
    *,
    expressions: frozenset[str] = frozenset(),
    deferred: frozenset[str] = frozenset(),
    errors: list[tuple[tuple[str | int, ...], str]] | None = None,
    path: tuple[str | int, ...] = (),
) -> Tree:
    """Compile every template in `value`. Top-level keys in `expressions` hold bare expressions;
    those in `deferred` are compiled but left for the action to evaluate. Syntax errors are
    appended to `errors` as (path, message) when given, else raised."""
    found: list[Template] = []

    def walk(v: Any, p: tuple[str | int, ...]) -> Any:
        top = p[0] if p else None
        is_expr = top in expressions or top in deferred
        if isinstance(v, str) and (is_expr or is_template(v)):
            label = where + "".join(f"[{x}]" if isinstance(x, int) else f".{x}" for x in p)
            try:
                t = compile_template(v, label, expression=is_expr, path=path + p)
            except TemplateSyntax as exc:
                if errors is None:
                    raise
                errors.append((path + p, str(exc)))
                return v
            found.append(t)
            return Deferred(t) if top in deferred else t
        if isinstance(v, dict):
            return {k: walk(x, (*p, k)) for k, x in v.items()}
        if isinstance(v, list | tuple):
            return [walk(x, (*p, i)) for i, x in enumerate(v)]
        return v

    compiled = walk(value, ())
    return Tree(compiled if found else value, found)
