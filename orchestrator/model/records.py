"""Records: the frozen values a run reads (playbook, steps, configuration), free of the validator.

A playbook or configuration is validated by its *document* model (pydantic, `model/documents.py`,
`model/config_document.py`) and converted into records. Records are plain slotted dataclasses:
they import nothing heavy, pickle small, and are what the validated cache (`model/cache.py`)
stores, so a run of an unchanged playbook neither imports nor runs the validator.

Constructing a record by hand validates its arguments through its document, as the document
would (``LimitSpec(rate="2/s")``, ``Config(http={"client": "httpx"})``); the loader and the cache
build records from values validated already (`trusted`), which costs a few attribute stores.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, TypeVar

R = TypeVar("R", bound="Record")


@dataclasses.dataclass(frozen=True, slots=True, init=False)
class Record:
    """Base of the records. Subclasses are ``@dataclass(frozen=True, slots=True, init=False)``
    (built by `Record.__init__` or `trusted`) and name their document (`document`: "module:Class", imported only to validate)."""

    #: The pydantic model that validates this record's fields, as "module:Class".
    document: ClassVar[str]
    #: The keys given explicitly (not defaulted): a step's `retry` overrides only what it gives.
    given: frozenset[str] = dataclasses.field(compare=False, repr=False)

    def __init__(self, **values: Any) -> None:
        from orchestrator.model.convert import validate_into

        validate_into(self, values)

    @classmethod
    def parse(cls: type[R], data: Any) -> R:
        """A record of `data` as its document validates it: a mapping, or a shorthand the document
        accepts (``RetrySpec.parse(3)``). Raises pydantic's ValidationError."""
        from orchestrator.model.convert import parse

        return parse(cls, data)

    @classmethod
    def trusted(cls: type[R], given: frozenset[str], **values: Any) -> R:
        """A record of values already validated: every field given, nothing checked."""
        record = cls.__new__(cls)
        setter = object.__setattr__
        setter(record, "given", given)
        for name, value in values.items():
            setter(record, name, value)
        return record

    def replace(self: R, **changes: Any) -> R:
        """A copy with `changes` (values as the record holds them: not validated), which count as given."""
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                  if f.name != "given"}
        values.update(changes)
        return type(self).trusted(self.given.union(changes), **values)

    def to_data(self, *, given_only: bool = False) -> dict[str, Any]:
        """Plain JSON-able data: every field, as the document's `model_dump` has them; with
        `given_only`, the keys given (as a file says them), which validate back into an equal record."""
        return {
            _key(f.name): as_data(getattr(self, f.name), given_only)
            for f in dataclasses.fields(self)
            if f.name != "given" and (not given_only or f.name in self.given)
        }


def _key(name: str) -> str:
    return name.removesuffix("_") if name in ("finally_", "with_") else name


def as_data(value: Any, given_only: bool = False) -> Any:
    """`value` with the records in it (in mappings and sequences too) as their `to_data`."""
    if isinstance(value, Record):
        return value.to_data(given_only=given_only)
    if isinstance(value, dict):
        return {k: as_data(v, given_only) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [as_data(v, given_only) for v in value]
    return value
