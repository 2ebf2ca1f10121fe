"""Pydantic errors turned into located, readable diagnostics.

Pydantic reports a path through the *model* (union branches included); the source map knows paths
through the *document*. We keep the part of each error path that exists in the document, fold the
several errors a union produces for one value into one, and say what was expected, what was found
and, for names, the closest valid choices.
"""

from __future__ import annotations

import difflib
import types
import typing
from typing import Any

if typing.TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from pydantic import BaseModel, ValidationError

    from orchestrator.errors import Diagnostic
    from orchestrator.model.source_map import SourceMap

Path = tuple[str | int, ...]


def pretty_path(path: Sequence[str | int]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "playbook"


def closest(word: str, choices: Iterable[str]) -> str:
    """' (did you mean x?)' when a choice is close to `word`, else ''."""
    match = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {match[0]!r}?)" if match else ""


def _document_path(data: Any, loc: Sequence[str | int]) -> Path:
    """The longest prefix of `loc` that exists in `data`, dropping union branch labels."""
    path: list[str | int] = []
    node = data
    for part in loc:
        if (isinstance(node, dict) and part in node) or (isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)):
            path.append(part)
            node = node[part]  # type: ignore[index]
        elif isinstance(node, dict) and part == "finally_" and "finally" in node:
            path.append("finally")
            node = node["finally"]
    return tuple(path)


def unwrap(annotation: Any) -> list[Any]:
    """The types an annotation is made of: through unions, `Annotated` and containers."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType, typing.Annotated):
        return [t for arg in typing.get_args(annotation) for t in unwrap(arg)]
    if origin in (list, tuple, dict):
        return [t for arg in typing.get_args(annotation) for t in unwrap(arg)]
    return [annotation]


def model_at(model: type[BaseModel], path: Sequence[str | int]) -> type[BaseModel] | None:
    """The model that validates the mapping at document `path`, if any."""
    current = model
    i = 0
    while i < len(path):
        part = path[i]
        i += 1
        if isinstance(part, int):
            continue
        field = next((f for n, f in current.model_fields.items() if part in (n, f.alias)), None)
        if field is None:
            return None
        found = [t for t in unwrap(field.annotation) if _is_model(t)]
        if not found:
            return None
        current = found[0]
        if is_typeddict(current):  # action parameters: one level of keys, no nested models
            return current if i == len(path) else None
        if any(typing.get_origin(t) is dict for t in _unwrap_top(field.annotation)):
            i += 1  # `limits: {name: LimitSpec}`: the next part is a user's key, not a field
    return current


def _unwrap_top(annotation: Any) -> list[Any]:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return list(typing.get_args(annotation))
    return [annotation]


def is_typeddict(t: Any) -> bool:
    from typing_extensions import is_typeddict as check  # imported to explain an error, not to plan

    return check(t)


def _is_model(t: Any) -> bool:
    from pydantic import BaseModel

    return (isinstance(t, type) and issubclass(t, BaseModel)) or is_typeddict(t)


def keys_of(model: Any) -> list[str]:
    if is_typeddict(model):
        return sorted(typing.get_type_hints(model))
    return sorted((f.alias or n) for n, f in model.model_fields.items())


_PATTERNS = {r"^[a-z0-9_-]+$": "expected an id of a-z, 0-9, '_' and '-'"}


def _expected_of(err: dict[str, Any]) -> str:
    if err["type"] == "string_pattern_mismatch":
        pattern = err.get("ctx", {}).get("pattern", "")
        return _PATTERNS.get(pattern, f"expected text matching {pattern}")
    return _expected(err["msg"])


def _expected(msg: str) -> str:
    msg = msg.removeprefix("Value error, ").removeprefix("Assertion failed, ")
    if msg.startswith("Input should be "):
        msg = "expected " + msg.removeprefix("Input should be ")
    return msg


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def diagnostics(exc: ValidationError, data: Any, smap: SourceMap, model: type[BaseModel]) -> list[Diagnostic]:
    """One located diagnostic per offending value."""
    grouped: dict[tuple[Path, str], list[Any]] = {}
    for err in exc.errors():
        path = _document_path(data, err["loc"])
        if err["type"] == "extra_forbidden":
            key = err["loc"][-1]
            grouped.setdefault(((*path, key) if key not in path[-1:] else path, "extra"), []).append(err)
        elif err["type"] == "missing":
            grouped.setdefault(((*path, err["loc"][-1]), "missing"), []).append(err)
        else:
            grouped.setdefault((path, "value"), []).append(err)
    # A union's other branches add "expected a string" next to the real problem inside a mapping.
    deeper = {p[:-1] for (p, kind) in grouped if kind != "value"}
    for group in [g for g in grouped if g[1] == "value" and g[0] in deeper]:
        if all(e["type"].endswith("_type") for e in grouped[group]):
            del grouped[group]
    out: list[Diagnostic] = []
    for (path, what), errs in grouped.items():
        if what == "extra":
            key = path[-1]
            parent = model_at(model, path[:-1])
            valid = keys_of(parent) if parent is not None else []
            hint = closest(str(key), valid) or (f"; valid keys: {', '.join(valid)}" if valid else "")
            out.append(smap.diagnostic(path, f"{pretty_path(path[:-1])}: unknown key {key!r}{hint}", key=True))
        elif what == "missing":
            out.append(smap.diagnostic(path[:-1], f"{pretty_path(path[:-1])}: missing required key {path[-1]!r}"))
        else:
            out.append(smap.diagnostic(path, f"{pretty_path(path)}: {_value_message(errs)}"))
    return out


def _value_message(errs: list[dict[str, Any]]) -> str:
    # custom validators speak for themselves; prefer them over the union's type mismatches
    custom = [e for e in errs if e["type"] in ("value_error", "assertion_error")]
    chosen = custom or errs
    messages = list(dict.fromkeys(_expected_of(e) for e in chosen))
    found = chosen[0].get("input")
    if len(messages) == 1:
        message = messages[0]
    else:
        message = "expected " + " or ".join(m.removeprefix("expected ") for m in messages)
    if "got " not in message and not isinstance(found, dict | list):
        message += f", got {_shown(found)}"
    if chosen[0]["type"] == "literal_error" and isinstance(found, str):
        choices = [c.strip(" '") for c in chosen[0].get("ctx", {}).get("expected", "").replace(" or ", ",").split(",")]
        message += closest(found, [c for c in choices if c])
    return message
