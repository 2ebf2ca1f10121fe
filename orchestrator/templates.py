"""Templates: Jinja2 in a sandbox, compiled once at plan time, rendered per item at run time.

A string that is exactly one ``{{ expr }}`` renders to the expression's native value (a list stays a
list); any other string with ``{{`` renders to text. Unknown names are errors, never empty strings.
References to ``steps.<id>`` are found in the syntax tree, so they become dependencies.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import jinja2
from jinja2 import meta, nodes
from jinja2.sandbox import SandboxedEnvironment

from orchestrator.errors import TemplateError

_ONE_EXPRESSION = re.compile(r"^\s*\{\{(?P<expr>.*)\}\}\s*$", re.DOTALL)


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


class TemplateSyntax(Exception):
    """A template that does not compile. `message` says where inside it and why."""


@dataclass(frozen=True)
class Template:
    """One compiled template string."""

    source: str
    where: str
    path: tuple[str | int, ...]
    native: bool
    refs: frozenset[str]
    names: frozenset[str]
    _fn: Callable[[Mapping[str, Any]], Any]

    def render(self, scope: Mapping[str, Any]) -> Any:
        try:
            value = self._fn(scope)
        except jinja2.UndefinedError as exc:
            raise TemplateError(f"{self.where}: {exc.message} in {self.source!r}") from None
        except TemplateError:
            raise
        except Exception as exc:  # any error inside user expressions is a failed render
            raise TemplateError(f"{self.where}: {type(exc).__name__}: {exc} in {self.source!r}") from None
        if isinstance(value, jinja2.Undefined):
            try:
                value._fail_with_undefined_error()
            except jinja2.UndefinedError as exc:
                raise TemplateError(f"{self.where}: {exc.message} in {self.source!r}") from None
        return value


def is_template(value: Any) -> bool:
    return isinstance(value, str) and ("{{" in value or "{%" in value)


def compile_template(
    source: str, where: str, *, expression: bool = False, path: tuple[str | int, ...] = ()
) -> Template:
    """Compile `source`. With `expression=True` a string without braces is one bare expression."""
    m = _ONE_EXPRESSION.match(source)
    if m and "{{" not in m.group("expr") and "}}" not in m.group("expr"):
        expr = m.group("expr")
    elif expression and not is_template(source):
        expr = source
    else:
        expr = None
    try:
        if expr is not None:
            ast = ENV.parse("{{ " + expr + " }}")
            compiled_expr = ENV.compile_expression(expr, undefined_to_none=False)
            fn: Callable[[Mapping[str, Any]], Any] = lambda scope: compiled_expr(scope)  # noqa: E731
        else:
            ast = ENV.parse(source)
            tmpl = ENV.from_string(ast)
            fn = tmpl.render
        fn = _fast_path(ast, native=expr is not None, slow=fn)
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateSyntax(f"template syntax error: {exc.message} in {source!r}") from None
    return Template(source, where, path, expr is not None, frozenset(_step_refs(ast)), frozenset(meta.find_undeclared_variables(ast)), fn)


class _Miss(Exception):
    """The fast path cannot decide this lookup; Jinja's own rendering will (and explain errors)."""


def _chain(node: nodes.Node) -> tuple[str, tuple[str | int, ...]] | None:
    """`name.a['b'].c` as ("name", ("a", "b", "c")), or None for anything else."""
    keys: list[str | int] = []
    while True:
        if isinstance(node, nodes.Name):
            return node.name, tuple(reversed(keys))
        if isinstance(node, nodes.Getattr):
            keys.append(node.attr)
        elif isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str | int):
            keys.append(node.arg.value)
        else:
            return None
        node = node.node


def _lookup(scope: Mapping[str, Any], name: str, keys: tuple[str | int, ...]) -> Any:
    try:
        value = scope[name]
    except KeyError:
        raise _Miss from None
    for key in keys:
        # Plain dict keys and list indexes, as the environment's getattr below would resolve them.
        if (isinstance(value, dict) and key in value) or (isinstance(value, list) and isinstance(key, int) and -len(value) <= key < len(value)):
            value = value[key]  # type: ignore[index]
        else:
            raise _Miss
    return value


def _fast_path(ast: nodes.Template, *, native: bool, slow: Callable[[Mapping[str, Any]], Any]) -> Callable[[Mapping[str, Any]], Any]:
    """Templates made only of text and name/attribute chains (``{{ api }}/v1/vms/{{ item.json.id }}``,
    most of a playbook's) render by plain lookups, ~10x faster than a Jinja render; anything else,
    and any lookup the fast path cannot decide, goes to Jinja."""
    if len(ast.body) != 1 or not isinstance(ast.body[0], nodes.Output):
        return slow
    parts: list[str | tuple[str, tuple[str | int, ...]]] = []
    for node in ast.body[0].nodes:
        if isinstance(node, nodes.TemplateData):
            parts.append(node.data)
        elif (chain := _chain(node)) is not None:
            parts.append(chain)
        else:
            return slow
    if native:
        if len(parts) != 1 or isinstance(parts[0], str):
            return slow
        name, keys = parts[0]

        def native_fn(scope: Mapping[str, Any]) -> Any:
            try:
                return _lookup(scope, name, keys)
            except _Miss:
                return slow(scope)

        return native_fn

    def text_fn(scope: Mapping[str, Any]) -> Any:
        try:
            out = []
            for part in parts:
                if isinstance(part, str):
                    out.append(part)
                else:
                    value = _lookup(scope, *part)
                    if not isinstance(value, str | int | float) or isinstance(value, bool):
                        raise _Miss  # None, booleans and containers: Jinja's own formatting
                    out.append(str(value))
            return "".join(out)
        except _Miss:
            return slow(scope)

    return text_fn


def _step_refs(ast: nodes.Node) -> Iterator[str]:
    for node in ast.find_all((nodes.Getattr, nodes.Getitem)):
        target = getattr(node, "node", None)
        if not (isinstance(target, nodes.Name) and target.name == "steps"):
            continue
        if isinstance(node, nodes.Getattr):
            yield node.attr
        elif isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
            yield node.arg.value


class Unknown:
    """A value a dry run cannot know: the output of a step it did not run. Any attribute or item of
    it is unknown too; it renders as ``<steps.network.output.json.id>``."""

    __slots__ = ("path",)

    def __init__(self, path: str) -> None:
        self.path = path

    def __getattr__(self, name: str) -> Unknown:
        if name.startswith("__"):
            raise AttributeError(name)
        return Unknown(f"{self.path}.{name}")

    def __getitem__(self, key: Any) -> Unknown:
        return Unknown(f"{self.path}[{key!r}]")

    def __iter__(self) -> Iterator[Any]:
        # Without this, Python would iterate through __getitem__(0), (1), ... forever.
        raise TypeError(f"{self} is not known in a dry run")

    def __len__(self) -> int:
        raise TypeError(f"{self} is not known in a dry run")

    def __str__(self) -> str:
        return f"<{self.path}>"

    __repr__ = __str__

    def __bool__(self) -> bool:
        return True


def contains_unknown(value: Any) -> bool:
    if isinstance(value, Unknown):
        return True
    if isinstance(value, str):
        return "<steps." in value and ".output" in value
    if isinstance(value, dict):
        return any(contains_unknown(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(contains_unknown(v) for v in value)
    return False


# A compiled tree mirrors a parameter value: templates replaced by Template objects.
class Tree:
    """A parameter value with its templates compiled. Renders to a plain value."""

    __slots__ = ("templates", "value")

    def __init__(self, value: Any, templates: list[Template]) -> None:
        self.value = value
        self.templates = templates

    @property
    def is_static(self) -> bool:
        return not self.templates

    def render(self, scope: Mapping[str, Any]) -> Any:
        if not self.templates:
            return self.value
        return _render(self.value, scope)

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


def _render(value: Any, scope: Mapping[str, Any]) -> Any:
    if isinstance(value, Template):
        return value.render(scope)
    if isinstance(value, Deferred):
        return Deferred(value.template, scope)
    if isinstance(value, dict):
        return {k: _render(v, scope) for k, v in value.items()}
    if isinstance(value, list):
        return [_render(v, scope) for v in value]
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
