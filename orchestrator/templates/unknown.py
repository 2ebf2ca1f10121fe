"""Dry-run placeholders: `Unknown` stands for a step output a dry run did not produce, and
`contains_unknown` tells whether a rendered value holds one."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterator


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
