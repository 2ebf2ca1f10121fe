"""The playbook as a run reads it: frozen records, converted from the validated document.

`model/documents.py` says what a playbook file may hold and validates it; these records hold the
result (the same fields, defaults filled in, loose input normalised) without the validator, so a
playbook validated once runs from the cache with no pydantic import. A step holds its action's
name and value (`action`, `params`) rather than one optional field per action.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from orchestrator.model.records import Record
from orchestrator.model.source_map import SourceMap
from orchestrator.model.values import AUTO_MAX, AUTO_MIN, Kind

__all__ = ["AUTO_MAX", "AUTO_MIN", "Defaults", "LimitSpec", "Playbook", "RetrySpec", "Step"]

_DOCUMENTS = "orchestrator.model.documents"


@dataclass(frozen=True, slots=True, init=False)
class RetrySpec(Record):
    """How a failed attempt is tried again. Maps onto tenacity's stop and wait strategies."""

    document = f"{_DOCUMENTS}:RetrySpec"
    attempts: int
    backoff: Literal["exponential", "fixed"]
    delay: float
    max_delay: float
    max_retry_after: float
    jitter: bool
    retry_on_status: tuple[int, ...]


@dataclass(frozen=True, slots=True, init=False)
class LimitSpec(Record):
    """A named cap shared by every step and item that names it."""

    document = f"{_DOCUMENTS}:LimitSpec"
    concurrency: int | Literal["auto"] | None
    min_concurrency: int | None
    max_concurrency: int | None
    rate: float | None


@dataclass(frozen=True, slots=True, init=False)
class Defaults(Record):
    """Values every step gets unless it says otherwise."""

    document = f"{_DOCUMENTS}:Defaults"
    #: A step's own `retry` overrides the keys it gives.
    retry: RetrySpec
    timeout: float | None
    concurrency: int
    on_error: Literal["fail", "continue"]


@dataclass(frozen=True, slots=True, init=False)
class Step(Record):
    """One step: its options, and its action's name and value."""

    document = f"{_DOCUMENTS}:StepBase"
    id: str
    name: str | None
    kind: Kind | None
    needs: tuple[str, ...]
    when: str | bool | None
    for_each: str | list[Any] | None
    concurrency: int | Literal["auto"] | None
    min_concurrency: int | None
    max_concurrency: int | None
    limit: str | tuple[str, ...] | None
    retry: RetrySpec | None
    timeout: float | None
    on_error: Literal["fail", "continue"] | None
    read_only: bool
    with_: dict[str, Any] | None
    #: The name of the step's action.
    action: str
    #: The value under the step's action key.
    params: Any

    def __init__(self, **values: Any) -> None:
        raise TypeError("a Step is made by loading its playbook (orchestrator.load or loads), which validates it")

    @property
    def limits(self) -> tuple[str, ...]:
        if self.limit is None:
            return ()
        return (self.limit,) if isinstance(self.limit, str) else self.limit


@dataclass(frozen=True, slots=True, init=False)
class Playbook(Record):
    """A validated playbook, and where it came from."""

    document = f"{_DOCUMENTS}:PlaybookBase"
    name: str
    description: str | None
    vars: dict[str, Any]
    secrets: tuple[str, ...]
    limits: dict[str, LimitSpec]
    defaults: Defaults
    timeout: float | None
    steps: list[Step]
    rollback: list[Step]
    finally_: list[Step]
    #: The file the playbook was loaded from, if any.
    path: Path | None
    #: Where each value came from (line and column), for located errors after loading.
    source_map: SourceMap | None
    #: SHA-256 of the text the playbook was loaded from (how a resume knows it is unchanged).
    digest: str | None

    def __init__(self, **values: Any) -> None:
        raise TypeError("a Playbook is made by orchestrator.load(path) or loads(text), which validate it")

    @property
    def source(self) -> SourceMap:
        return self.source_map or SourceMap(str(self.path or "<playbook>"))

    @property
    def base_dir(self) -> Path:
        """The folder whose modules `call:` can import."""
        return self.path.parent if self.path else Path.cwd()

    def all_steps(self) -> list[tuple[str, int, Step]]:
        """(section, position, step) for steps, rollback and finally, in that order."""
        out: list[tuple[str, int, Step]] = []
        for section in ("steps", "rollback", "finally"):
            out.extend((section, i, s) for i, s in enumerate(self.section(section)))
        return out

    def section(self, name: str) -> list[Step]:
        return list(getattr(self, "finally_" if name == "finally" else name))
