"""Validated documents into records, and records built by hand validated through their documents.

Imported only where validation happens (a playbook or configuration not in the cache, a record
constructed in a script): it imports pydantic.
"""

from __future__ import annotations

import dataclasses
import importlib
import sys
from functools import cache
from typing import Any

from pydantic import BaseModel

from orchestrator.model.records import R, Record, as_data
from orchestrator.model.validation import unwrap


def to_record(document: BaseModel) -> Any:
    """The record of a validated document (its nested documents converted too). Fields the
    document does not have (where a playbook came from) are None until the loader sets them."""
    record_type = _record_type(type(document))
    if record_type is None:
        raise TypeError(f"{type(document).__qualname__} is the document of no record")
    nested = _nested_fields(type(document))
    values = {}
    for name in _field_names(record_type):
        value = getattr(document, name, None)
        values[name] = _convert(value) if name in nested else value
    return record_type.trusted(frozenset(document.model_fields_set), **values)


def parse(record_type: type[R], data: Any) -> R:
    """The record of `data` as `record_type`'s document validates it."""
    made: R = to_record(document_type(record_type).model_validate(as_data(data, given_only=True)))
    return made


def validate_into(record: Record, values: dict[str, Any]) -> None:
    """Fill `record` (just allocated) with `values` as its document validates them; raises
    pydantic's ValidationError as the document would."""
    made = parse(type(record), values)
    for name in ("given", *_field_names(type(record))):
        object.__setattr__(record, name, getattr(made, name))


def document_type(record_type: type[Record]) -> type[BaseModel]:
    """The model that validates `record_type`."""
    module, _, name = record_type.document.partition(":")
    found: type[BaseModel] = getattr(importlib.import_module(module), name)
    return found


def _convert(value: Any) -> Any:
    if isinstance(value, BaseModel):  # a document, or a plugin's parameters kept as they are
        return to_record(value) if _record_type(type(value)) is not None else value
    if isinstance(value, dict):
        return {k: _convert(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_convert(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_convert(v) for v in value)
    return value


_FIELD_NAMES: dict[type[Record], tuple[str, ...]] = {}


def _field_names(record_type: type[Record]) -> tuple[str, ...]:
    names = _FIELD_NAMES.get(record_type)
    if names is None:
        names = _FIELD_NAMES[record_type] = tuple(f.name for f in dataclasses.fields(record_type) if f.name != "given")
    return names


@cache
def _nested_fields(document_type: type[BaseModel]) -> frozenset[str]:
    """The fields whose values hold documents (limits, steps, retry, ...): only these are walked,
    so a large `vars` or `for_each` list is not."""
    return frozenset(
        name for name, field in document_type.model_fields.items()
        if any(isinstance(t, type) and issubclass(t, BaseModel) for t in unwrap(field.annotation))
    )


@cache
def _record_type(document_type: type[BaseModel]) -> type[Record] | None:
    """The record a document converts into: a generated step or playbook model counts as its base."""
    for klass in document_type.__mro__:
        found = _record_types().get(f"{klass.__module__}:{klass.__qualname__}")
        if found is not None:
            return found
    return None


@cache
def _record_types() -> dict[str, type[Record]]:
    import orchestrator.config
    import orchestrator.model.playbook  # noqa: F401  (defines the records)

    found: dict[str, type[Record]] = {}
    pending = list(Record.__subclasses__())
    while pending:
        klass = pending.pop()
        pending.extend(klass.__subclasses__())
        # `dataclass(slots=True)` replaces the class it decorates: only the one its module holds counts.
        if "document" in vars(klass) and getattr(sys.modules[klass.__module__], klass.__qualname__, None) is klass:
            found[klass.document] = klass
    return found

