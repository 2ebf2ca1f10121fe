"""The playbook JSON Schema, generated from the models (never kept by hand).

`orchestrate schema` prints it and `docs/playbook.schema.json` is that output, committed for editors
to point at (a test keeps the two identical). The models say what each key holds and why (every
key's `description` is an editor's hover text); this module turns pydantic's schema into one that
standard clients read as the loader does:

- an optional key takes its value or is left out: pydantic's `null` branches are dropped, so an
  editor says `Expected "number"`, not `Expected "number | null"` (the loader still reads an
  explicit null as "not given");
- a step names exactly one action (`oneOf` of one `required` action each), and `with:` only
  beside `call:` (`dependentRequired`), the two structural rules the model checks in code;
- only standard draft 2020-12 keywords (a test walks the schema for them): a client ignores a
  keyword it does not know, such as pydantic's `gt`, and would pass what `check` refuses.
"""

from __future__ import annotations

from typing import Any

from orchestrator.actions.registry import ActionRegistry, default_registry
from orchestrator.model.documents import playbook_model

DRAFT = "https://json-schema.org/draft/2020-12/schema"


def playbook_schema(registry: ActionRegistry | None = None) -> dict[str, Any]:
    """A JSON Schema (draft 2020-12) for playbooks using the actions in `registry`."""
    actions = tuple(registry or default_registry())
    model = playbook_model(actions)
    schema = model.model_json_schema(by_alias=True, mode="validation")
    _standardise(schema)
    for prop in schema["properties"].values():
        # A key whose schema is only a reference shows the referenced definition's text on hover.
        if "$ref" in prop and "description" not in prop:
            prop["description"] = schema["$defs"][prop["$ref"].rsplit("/", 1)[1]].get("description")
    step = schema["$defs"]["Step"]
    step["oneOf"] = [{"required": [a.name]} for a in actions]
    step["dependentRequired"] = {"with": ["call"]}
    step["description"] = "One step: an `id`, exactly one action (" + ", ".join(a.name for a in actions) + ") and its options."
    return {"$schema": DRAFT, "title": "orchestrator playbook", **schema}


def _standardise(node: Any) -> None:
    """Rewrite `node` in place: no `null` for an optional key."""
    if isinstance(node, list):
        for item in node:
            _standardise(item)
        return
    if not isinstance(node, dict):
        return
    properties = node.get("properties")
    if isinstance(properties, dict):
        required = set(node.get("required", ()))
        for key, prop in properties.items():
            if key not in required and isinstance(prop, dict):
                _drop_null(prop)
    for value in node.values():
        _standardise(value)


def _drop_null(prop: dict[str, Any]) -> None:
    branches = prop.get("anyOf")
    if not isinstance(branches, list) or {"type": "null"} not in branches:
        return
    if prop.get("default", ...) is None:
        del prop["default"]
    rest = [b for b in branches if b != {"type": "null"}]
    del prop["anyOf"]
    if len(rest) == 1:
        only = rest[0]
        # The branch's own words give way to the key's (the hover text is about the key).
        prop.update({k: v for k, v in only.items() if k not in prop})
    else:
        prop["anyOf"] = rest
    if "type" not in prop and "$ref" not in prop and "anyOf" not in prop and "enum" not in prop:
        # A key that takes any value (`set:`) still does not take null: the model reads null as absent.
        prop["not"] = {"type": "null"}
