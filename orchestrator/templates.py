"""Templates: Jinja2 in a sandbox, compiled once at plan time, rendered per item at run time.

A string that is exactly one ``{{ expr }}`` renders to the expression's native value (a list stays a
list); any other string with ``{{`` renders to text. Unknown names are errors, never empty strings.
References to ``steps.<id>`` are found in the syntax tree, so they become dependencies.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
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


Render = Callable[[Mapping[str, Any]], Any]


@dataclass(frozen=True)
class Template:
    """One compiled template string. ``render(scope)`` gives its value or raises TemplateError."""

    source: str
    where: str
    path: tuple[str | int, ...]
    native: bool
    refs: frozenset[str]
    names: frozenset[str]
    _jinja: Render
    _parts: _Parts | None = field(default=None, repr=False, compare=False)
    #: Whether it may read any step's output: it uses `steps` other than as ``steps.<id>`` or
    #: ``steps['<id>']`` (``{{ steps }}``, ``steps[name]``, a loop over it), so `refs` is not all.
    reads_all_steps: bool = False
    #: Plain lookups when the template is only text and name/attribute chains (most are), falling
    #: back to Jinja, whose errors are worded here; Jinja alone otherwise. No wrapper frame per call.
    render: Render = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        render = _fast_fn(self._parts, native=self.native, slow=self._render_jinja) if self._parts else self._render_jinja
        object.__setattr__(self, "render", render)

    def _render_jinja(self, scope: Mapping[str, Any]) -> Any:
        try:
            value = self._jinja(scope)
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
    native, refs, names, jinja, parts, reads_all = _analyse(source, expression)
    return Template(source, where, path, native, refs, names, jinja, parts, reads_all)


_Parts = list[str | tuple[str, tuple[str | int, ...]]]
_Analysis = tuple[bool, frozenset[str], frozenset[str], Render, _Parts | None, bool]
_NAME = r"[A-Za-z_]\w*"
_KEY = r"(?:\.\s*" + _NAME + r"|\[\s*(?:'[^'\\]*'|\"[^\"\\]*\"|-?\d+)\s*\])"
_CHAIN_TEXT = re.compile(r"\s*(" + _NAME + r"(?:\s*" + _KEY + r")*)\s*")
_PLACEHOLDER = re.compile(r"\{\{" + _CHAIN_TEXT.pattern + r"\}\}")
_KEYS = re.compile(r"\.\s*(" + _NAME + r")|\[\s*(?:'([^']*)'|\"([^\"]*)\"|(-?\d+))\s*\]")
_LITERALS = frozenset({"true", "false", "none", "True", "False", "None", "not", "and", "or", "in", "is", "if", "else"})


def _parse_chain(text: str) -> tuple[str, tuple[str | int, ...]] | None:
    m = re.match(_NAME, text)
    if m is None or m.group(0) in _LITERALS:
        return None
    keys: list[str | int] = []
    for k in _KEYS.finditer(text, m.end()):
        attr, single, double, number = k.groups()
        if number is not None:
            keys.append(int(number))
        elif attr is not None:
            keys.append(attr)
        else:
            keys.append(single if single is not None else double)
    return m.group(0), tuple(keys)


def _simple_parts(source: str, expr: str | None) -> list[str | tuple[str, tuple[str | int, ...]]] | None:
    """Text and name/attribute chains only, found without Jinja's parser (most templates), or None."""
    if expr is not None:
        m = _CHAIN_TEXT.fullmatch(expr)
        chain = _parse_chain(m.group(1)) if m else None
        return [chain] if chain else None
    if "{%" in source or "{#" in source:
        return None
    parts: list[str | tuple[str, tuple[str | int, ...]]] = []
    pos = 0
    for m in _PLACEHOLDER.finditer(source):
        text = source[pos:m.start()]
        chain = _parse_chain(m.group(1))
        if "{{" in text or "}}" in text or chain is None:
            return None
        if text:
            parts.append(text)
        parts.append(chain)
        pos = m.end()
    tail = source[pos:]
    if "{{" in tail or "}}" in tail:
        return None
    if tail:
        parts.append(tail)
    return parts


@functools.lru_cache(maxsize=8192)
def _analyse(source: str, expression: bool) -> _Analysis:
    """Names, step references, Jinja's render function and the parts a plain-lookup render needs
    (None if it cannot) for one template source. Playbooks repeat templates (``{{ api }}/v1/vms``),
    and Jinja's code generation costs ~1 ms, so results are cached and Jinja compiles a template
    only the first time the fast path cannot render it."""
    m = _ONE_EXPRESSION.match(source)
    if m and "{{" not in m.group("expr") and "}}" not in m.group("expr"):
        expr: str | None = m.group("expr")
    elif expression and not is_template(source):
        expr = source
    else:
        expr = None
    slow = _lazy_jinja(source, expr)
    parts = _simple_parts(source, expr)
    if parts is not None:
        chains = [p for p in parts if not isinstance(p, str)]
        names = frozenset(name for name, _ in chains)
        refs = frozenset(str(keys[0]) for name, keys in chains if name == "steps" and keys)
        reads_all = any(name == "steps" and not keys for name, keys in chains)
        return expr is not None, refs, names, slow, parts, reads_all
    try:
        ast = ENV.parse("{{ " + expr + " }}" if expr is not None else source)
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateSyntax(f"template syntax error: {exc.message} in {source!r}") from None
    for node in ast.find_all((nodes.Filter, nodes.Test)):
        known = ENV.filters if isinstance(node, nodes.Filter) else ENV.tests
        if node.name not in known:
            what = "filter" if isinstance(node, nodes.Filter) else "test"
            raise TemplateSyntax(f"template syntax error: no {what} named {node.name!r} in {source!r}")
    if "{%" in source:
        names = frozenset(meta.find_undeclared_variables(ast))
    else:  # expressions alone bind no names: every loaded name comes from the scope
        names = frozenset(n.name for n in ast.find_all(nodes.Name) if n.ctx == "load")
    step_refs = list(_step_refs(ast))
    reads_all = sum(1 for n in ast.find_all(nodes.Name) if n.name == "steps") > len(step_refs)
    return expr is not None, frozenset(step_refs), names, slow, _fast_parts(ast), reads_all


def _lazy_jinja(source: str, expr: str | None) -> Render:
    compiled: list[Render] = []

    def render(scope: Mapping[str, Any]) -> Any:
        if not compiled:
            if expr is not None:
                compiled_expr = ENV.compile_expression(expr, undefined_to_none=False)
                compiled.append(lambda s: compiled_expr(s))
            else:
                compiled.append(ENV.from_string(source).render)
        return compiled[0](scope)

    return render


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


def _fast_parts(ast: nodes.Template) -> _Parts | None:
    """Templates made only of text and name/attribute chains render by plain lookups, ~10x faster
    than a Jinja render: their parts, or None for anything else."""
    if len(ast.body) != 1 or not isinstance(ast.body[0], nodes.Output):
        return None
    parts: _Parts = []
    for node in ast.body[0].nodes:
        if isinstance(node, nodes.TemplateData):
            parts.append(node.data)
        elif (chain := _chain(node)) is not None:
            parts.append(chain)
        else:
            return None
    return parts


def _fast_fn(parts: _Parts, *, native: bool, slow: Render) -> Render:
    """Render `parts` by lookups; any lookup the fast path cannot decide goes to Jinja (`slow`),
    which also words the errors."""
    if native:
        if len(parts) != 1 or isinstance(parts[0], str):
            return slow
        name, keys = parts[0]
        if not keys:

            def name_fn(scope: Mapping[str, Any]) -> Any:
                try:
                    return scope[name]
                except KeyError:
                    return slow(scope)

            return name_fn

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
