"""The playbook JSON Schema, generated from the models (never kept by hand)."""

from __future__ import annotations

from typing import Any

from orchestrator.actions.registry import ActionRegistry, default_registry
from orchestrator.model.playbook import playbook_model


def playbook_schema(registry: ActionRegistry | None = None) -> dict[str, Any]:
    """A JSON Schema (draft 2020-12) for playbooks using the actions in `registry`."""
    model = playbook_model(tuple(registry or default_registry()))
    schema = model.model_json_schema(by_alias=True, mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "orchestrator playbook"
    return schema
