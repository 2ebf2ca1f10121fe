"""Load: YAML text to a validated, frozen Playbook, or every problem in it, located.

A playbook validated once is read back from the validated cache (`model/cache.py`): the records
of an unchanged text need neither YAML parsing nor the validator.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator.actions.registry import ActionRegistry, default_registry
from orchestrator.errors import Diagnostic, PlaybookError
from orchestrator.model import cache
from orchestrator.model.input_file import YamlError, read_source
from orchestrator.model.playbook import Playbook

if TYPE_CHECKING:
    from orchestrator.model.source_map import SourceMap


def load(path: str | os.PathLike[str], *, registry: ActionRegistry | None = None) -> Playbook:
    """Load and validate the playbook at `path`. Raises PlaybookError listing every problem."""
    file = os.fspath(path)
    try:  # a regular UTF-8 file within the size limit, checked before reading (docs/playbook.md)
        text = read_source(file, "playbook")
    except YamlError as exc:
        raise PlaybookError(exc.diagnostics) from None
    return loads(text, file=file, registry=registry)


def loads(text: str, *, file: str = "<playbook>", registry: ActionRegistry | None = None) -> Playbook:
    """Load and validate playbook text; `file` names it in errors and sets its folder."""
    registry = registry or default_registry()
    playbook = cache.validated(
        "playbook", file, text, Playbook, lambda: _validate(text, file, registry), tuple(registry.sources())
    )
    return playbook.replace(
        path=Path(file) if not file.startswith("<") else None,
        digest=hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest(),
    )


def _validate(text: str, file: str, registry: ActionRegistry) -> Playbook:
    from pydantic import ValidationError

    from orchestrator.model.convert import to_record
    from orchestrator.model.documents import playbook_model
    from orchestrator.model.source import load_yaml
    from orchestrator.model.validation import diagnostics

    try:
        data, smap = load_yaml(text, file)
    except YamlError as exc:
        raise PlaybookError(exc.diagnostics) from None
    if not isinstance(data, dict):
        found = "an empty document" if data is None else f"a {type(data).__name__}"
        raise PlaybookError([Diagnostic(file, 1, 1, f"a playbook is a mapping with `name` and `steps`; got {found}")])
    model = playbook_model(tuple(registry))
    problems: list[Diagnostic] = []
    try:
        document = model.model_validate(data)
    except ValidationError as exc:
        problems.extend(diagnostics(exc, data, smap, model))
        document = None
    problems.extend(_id_problems(data, smap))
    if problems or document is None:
        raise PlaybookError(problems)
    playbook: Playbook = to_record(document)
    return playbook.replace(source_map=smap)


def _id_problems(data: dict[str, Any], smap: SourceMap) -> list[Diagnostic]:
    """Duplicate step ids anywhere in the playbook (steps, rollback and finally share one namespace)."""
    seen: dict[str, tuple[str, int]] = {}
    out: list[Diagnostic] = []
    for section in ("steps", "rollback", "finally"):
        steps = data.get(section)
        if not isinstance(steps, list):
            continue
        for i, step in enumerate(steps):
            sid = step.get("id") if isinstance(step, dict) else None
            if not isinstance(sid, str):
                continue
            if sid in seen:
                first = seen[sid]
                line, _ = smap.locate(first)
                out.append(
                    smap.diagnostic(
                        (section, i, "id"), f"{section}[{i}].id: duplicate step id {sid!r} (first used on line {line}); ids must be unique"
                    )
                )
            else:
                seen[sid] = (section, i)
    return out
