"""What a name can be, as reading its source tells: a `Value` (a function, a class, a lambda, a
literal, a module, an instance, an object read from a module imported already, or unknown, with
why), and the phrases that describe one ("an async def at tasks.py:3")."""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import ast

    from orchestrator.actions.source_check.locate import Module
    from orchestrator.actions.source_check.scope import Source


def is_async(fn: Any) -> bool:
    """Whether calling `fn` gives a coroutine to await: a coroutine function, or an instance whose
    ``__call__`` is one."""
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(type(fn).__call__)


@dataclass(frozen=True)
class Value:
    kind: str  # function | class | lambda | value | module | instance | live | unknown
    what: str = ""
    unverified: str = ""
    callable: bool | None = None
    is_async: bool = False
    picklable: bool | None = None
    type_name: str = ""
    module: Module | None = None
    cls: tuple[Source, ast.ClassDef] | None = None
    obj: Any = None


def unknown(reason: str) -> Value:
    return Value("unknown", "a name made at import time", unverified=reason)


def live_value(obj: Any, where: str) -> Value:
    type_name = type(obj).__name__
    return Value(
        "live", f"{article(type_name)} {type_name} {where}", callable=callable(obj), is_async=is_async(obj),
        type_name=type_name, obj=obj,
    )


def short(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def article(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"
