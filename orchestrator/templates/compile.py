"""Compiling one template string: telling an expression from a string template, parsing it (or not,
on the fast path), checking its filters and tests, and finding the names and ``steps.<id>``
references it reads.

A string that is exactly one ``{{ expr }}`` renders to the expression's native value (a list stays a
list); any other string with ``{{`` renders to text. Unknown names are errors, never empty strings.
References to ``steps.<id>`` are found in the syntax tree, so they become dependencies.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from orchestrator.errors import TemplateError
from orchestrator.templates.fast import Parts, Render, fast_fn, fast_parts, simple_parts
from orchestrator.templates.limits import unwrap

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

    from jinja2 import nodes

# Jinja (with its sandboxed environment, `environment.py`) is imported by the first template the
# fast path cannot read, or render: a playbook of plain lookups never pays for it.

_ONE_EXPRESSION = re.compile(r"^\s*\{\{(?P<expr>.*)\}\}\s*$", re.DOTALL)


class TemplateSyntax(Exception):
    """A template that does not compile. `message` says where inside it and why."""


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
    _parts: Parts | None = field(default=None, repr=False, compare=False)
    #: Whether it may read any step's output: it uses `steps` other than as ``steps.<id>`` or
    #: ``steps['<id>']`` (``{{ steps }}``, ``steps[name]``, a loop over it), so `refs` is not all.
    reads_all_steps: bool = False
    #: Plain lookups when the template is only text and name/attribute chains (most are), falling
    #: back to Jinja, whose errors are worded here; Jinja alone otherwise. No wrapper frame per call.
    render: Render = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        render = fast_fn(self._parts, native=self.native, slow=self._render_jinja) if self._parts else self._render_jinja
        object.__setattr__(self, "render", render)

    def _render_jinja(self, scope: Mapping[str, Any]) -> Any:
        import jinja2

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
        return unwrap(value)


@functools.cache
def global_names() -> frozenset[str]:
    """The names every template has besides its scope's: Jinja's globals (`range`, `dict`,
    `namespace`, ...) as the environment sets them."""
    from orchestrator.templates.environment import ENV

    return frozenset(ENV.globals)


def is_template(value: Any) -> bool:
    return isinstance(value, str) and ("{{" in value or "{%" in value)


def compile_template(
    source: str, where: str, *, expression: bool = False, path: tuple[str | int, ...] = ()
) -> Template:
    """Compile `source`. With `expression=True` a string without braces is one bare expression."""
    native, refs, names, jinja, parts, reads_all = _analyse(source, expression)
    return Template(source, where, path, native, refs, names, jinja, parts, reads_all)


_Analysis = tuple[bool, frozenset[str], frozenset[str], Render, Parts | None, bool]


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
    parts = simple_parts(source, expr)
    if parts is not None:
        chains = [p for p in parts if not isinstance(p, str)]
        names = frozenset(name for name, _ in chains)
        refs = frozenset(str(keys[0]) for name, keys in chains if name == "steps" and keys)
        reads_all = any(name == "steps" and not keys for name, keys in chains)
        return expr is not None, refs, names, slow, parts, reads_all
    import jinja2
    from jinja2 import meta, nodes

    from orchestrator.templates.environment import ENV

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
    return expr is not None, frozenset(step_refs), names, slow, fast_parts(ast), reads_all


def _lazy_jinja(source: str, expr: str | None) -> Render:
    compiled: list[Render] = []

    def render(scope: Mapping[str, Any]) -> Any:
        if not compiled:
            from orchestrator.templates.environment import ENV

            if expr is not None:
                compiled_expr = ENV.compile_expression(expr, undefined_to_none=False)
                compiled.append(lambda s: compiled_expr(s))
            else:
                compiled.append(ENV.from_string(source).render)
        return compiled[0](scope)

    return render


def _step_refs(ast: nodes.Node) -> Iterator[str]:
    from jinja2 import nodes

    for node in ast.find_all((nodes.Getattr, nodes.Getitem)):
        target = getattr(node, "node", None)
        if not (isinstance(target, nodes.Name) and target.name == "steps"):
            continue
        if isinstance(node, nodes.Getattr):
            yield node.attr
        elif isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
            yield node.arg.value
