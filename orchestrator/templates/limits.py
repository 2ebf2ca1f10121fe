"""What one template may cost: templates read and compute, but cannot mutate or run away.

Templates render on the event loop thread, so one that computes for long stops every other step,
timeouts and Ctrl-C included (a loop over ``range(10**10)`` or a ``'%1999999999d'`` format took 38 s
and 3.9 GB). Jinja's sandbox refuses unsafe attributes, not unbounded work; these caps bound the
work a template can ask for with little code:

- ``range()`` is lazy, as Python's, but iterating more than `MAX_ITEMS` of one inside a template is
  an error. A template whose value *is* a range hands on Python's own range, so a `for_each` over
  ``range(10**12)`` is the engine's to pull item by item (it yields and stops on time).
- ``*`` on a string, bytes or list may not build more than `MAX_SIZE` characters or items; ``**``
  on integers may not build a number of more than `MAX_INT_BITS` bits.
- A format width or precision (``%``, ``format``, ``str.format``) may not exceed `MAX_WIDTH`.

Mutation is the sandbox's: the environment is Jinja's ImmutableSandboxedEnvironment, so
``steps.x.output.clear()`` or ``vars.x.update(...)`` is refused and rollback sees what was created.
"""

from __future__ import annotations

import re
import string
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

MAX_ITEMS = 1_000_000
MAX_SIZE = 10_000_000
MAX_INT_BITS = 100_000
MAX_WIDTH = 10_000

_PERCENT_SPEC = re.compile(r"%(?:\([^)]*\))?[-+ #0]*(\*|\d+)?(?:\.(\*|\d+))?")
_SPEC_NUMBERS = re.compile(r"\d+")


class TooCostly(Exception):
    """A template asked for more work than a template may do."""


class TemplateRange:
    """``range()`` as templates see it: lazy, indexable, sized; at most `MAX_ITEMS` iterated."""

    __slots__ = ("range",)

    def __init__(self, *args: int) -> None:
        self.range = range(*args)

    def __iter__(self) -> Iterator[int]:
        if len(self.range) > MAX_ITEMS:
            raise TooCostly(
                f"a template may iterate at most {MAX_ITEMS:,} items; range() here has {len(self.range):,} "
                "(a for_each over a large range is fine: give the range itself as its value)"
            )
        return iter(self.range)

    def __len__(self) -> int:
        return len(self.range)

    def __getitem__(self, index: Any) -> Any:
        return self.range[index]

    def __contains__(self, value: object) -> bool:
        return value in self.range

    def __reversed__(self) -> Iterator[int]:
        return reversed(self.range) if len(self.range) <= MAX_ITEMS else iter(self)

    def __repr__(self) -> str:
        return repr(self.range)

    def __reduce__(self) -> tuple[Any, ...]:
        return (range, (self.range.start, self.range.stop, self.range.step))


def unwrap(value: Any) -> Any:
    """A template's value as the engine and actions should see it: a TemplateRange is Python's range."""
    return value.range if type(value) is TemplateRange else value


def _times(left: Any, right: Any) -> Any:
    for seq, count in ((left, right), (right, left)):
        if isinstance(seq, str | bytes | list | tuple) and isinstance(count, int) and len(seq) * count > MAX_SIZE:
            raise TooCostly(f"a template may build at most {MAX_SIZE:,} characters or items; this `*` builds {len(seq) * count:,}")
    return left * right


def _power(left: Any, right: Any) -> Any:
    if isinstance(left, int) and isinstance(right, int) and right > 0 and abs(left) > 1:
        bits = abs(left).bit_length() * right
        if bits > MAX_INT_BITS:
            raise TooCostly(f"a template may build numbers of at most {MAX_INT_BITS:,} bits; this `**` builds about {bits:,}")
    return left**right


def check_percent_format(text: Any) -> None:
    if isinstance(text, str) and "%" in text:
        for match in _PERCENT_SPEC.finditer(text):
            for number in match.groups():
                if number is not None and number != "*" and int(number) > MAX_WIDTH:
                    raise TooCostly(f"a template's format width or precision may be at most {MAX_WIDTH:,}; got {number}")


def check_format_spec(text: str) -> None:
    """Widths in a ``str.format`` string, nested specs included."""
    for _literal, _field, spec, _conversion in string.Formatter().parse(text):
        if spec:
            for number in _SPEC_NUMBERS.findall(spec):
                if int(number) > MAX_WIDTH:
                    raise TooCostly(f"a template's format width or precision may be at most {MAX_WIDTH:,}; got {number}")
            check_format_spec(spec)


def _modulo(left: Any, right: Any) -> Any:
    check_percent_format(left)
    return left % right


BINOPS: dict[str, Callable[[Any, Any], Any]] = {"*": _times, "**": _power, "%": _modulo}
