"""The fast render path: templates made only of text and name/attribute chains (most are) render by
plain lookups, ~10x faster than a Jinja render, falling back to Jinja for anything it cannot decide.

`simple_parts` reads such a template with regular expressions, without Jinja: a playbook whose
templates are all this simple does not import Jinja at all (about 45 ms of start-up here)."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jinja2 import nodes

#: A compiled render function: scope in, value out.
Render = Callable[[Mapping[str, Any]], Any]
#: A template as text and (name, keys) chains.
Parts = list[str | tuple[str, tuple[str | int, ...]]]

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


def simple_parts(source: str, expr: str | None) -> list[str | tuple[str, tuple[str | int, ...]]] | None:
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


class _Miss(Exception):
    """The fast path cannot decide this lookup; Jinja's own rendering will (and explain errors)."""


def _chain(node: nodes.Node) -> tuple[str, tuple[str | int, ...]] | None:
    """`name.a['b'].c` as ("name", ("a", "b", "c")), or None for anything else."""
    from jinja2 import nodes  # a parsed template's syntax tree: Jinja is imported already
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
        # Plain dict keys and list indexes, as the environment's getattr would resolve them.
        if (isinstance(value, dict) and key in value) or (isinstance(value, list) and isinstance(key, int) and -len(value) <= key < len(value)):
            value = value[key]  # type: ignore[index]
        else:
            raise _Miss
    return value


def fast_parts(ast: nodes.Template) -> Parts | None:
    """Templates made only of text and name/attribute chains render by plain lookups, ~10x faster
    than a Jinja render: their parts, or None for anything else."""
    from jinja2 import nodes
    if len(ast.body) != 1 or not isinstance(ast.body[0], nodes.Output):
        return None
    parts: Parts = []
    for node in ast.body[0].nodes:
        if isinstance(node, nodes.TemplateData):
            parts.append(node.data)
        elif (chain := _chain(node)) is not None:
            parts.append(chain)
        else:
            return None
    return parts


def fast_fn(parts: Parts, *, native: bool, slow: Render) -> Render:
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
