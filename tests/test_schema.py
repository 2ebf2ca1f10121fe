"""`orchestrate schema`: a JSON Schema that editors and CI can check playbooks against."""

from __future__ import annotations

import contextlib
import io
import json
from typing import TYPE_CHECKING, Any

import jsonschema
import pytest
import yaml

from orchestrator.cli.main import main
from tests.corpus import INVALID, shipped_playbooks, valid_playbooks

if TYPE_CHECKING:
    from pathlib import Path

# The invalid playbooks whose fault is structural (an unknown key, a wrong type, a missing required
# key, a value outside its enumeration or range, a step with no action or two, `with` beside an
# action other than `call`), so a schema alone catches it. The rest need the loader or the planner:
# YAML syntax, duplicate keys and ids, references, cycles, templates, imports, kinds that do not fit
# the callable, AWS models, URLs. The list is exact: a test checks the schema passes every other one.
CAUGHT_BY_SCHEMA = [
    "assert_missing_that", "bad_id_spaces", "bad_id_uppercase", "call_bad_target", "concurrency_negative",
    "concurrency_word", "concurrency_zero", "defaults_concurrency_zero", "defaults_timeout_zero", "empty_document",
    "empty_name", "empty_steps", "for_each_number", "http_bad_method", "http_missing_url", "http_unknown_key",
    "kind_uppercase", "limit_concurrency_zero", "limit_number", "log_bad_level", "log_unknown_key", "missing_id",
    "missing_name", "missing_steps", "misspelt_kind", "name_is_list", "needs_bad_id", "needs_mapping",
    "needs_not_list", "no_action", "on_error_bad", "rate_fast", "rate_zero", "read_only_word",
    "retry_attempts_word", "retry_attempts_zero", "retry_backoff_typo", "retry_delay_bad",
    "retry_max_delay_negative", "retry_on_status_word", "retry_string", "rollback_unknown_key",
    "shell_argv_number", "shell_unknown_key", "shell_unknown_key_hint", "sleep_list", "step_not_mapping",
    "steps_mapping", "steps_null", "timeout_negative", "timeout_parsecs", "timeout_zero", "top_level_list",
    "top_level_scalar", "two_actions", "unknown_defaults_key", "unknown_limit_spec_key", "unknown_retry_key",
    "unknown_step_key", "unknown_top_key", "vars_not_mapping", "wait_until_missing_until", "when_list",
    "when_number", "with_on_log",
]


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    """The schema `orchestrate schema` prints, checked to be a valid draft 2020-12 schema."""
    buffer = io.StringIO()  # capsys is per test; this fixture is per module
    with contextlib.redirect_stdout(buffer):
        code = main(["schema"])
    assert code == 0
    schema = json.loads(buffer.getvalue())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def _document(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def test_schema_command_prints_a_draft_2020_12_schema(capsys: pytest.CaptureFixture[str]) -> None:
    """`orchestrate schema` prints one JSON object declaring draft 2020-12, and exits 0."""
    assert main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["type"] == "object"
    assert {"name", "steps"} <= set(schema["required"])


@pytest.mark.parametrize("path", [*shipped_playbooks(), *valid_playbooks()], ids=lambda p: f"{p.parent.name}/{p.name}")
def test_valid_playbooks_validate(path: Path, validator: jsonschema.Draft202012Validator) -> None:
    """Every shipped playbook and every valid corpus playbook satisfies the schema."""
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(_document(path))]
    assert errors == []


@pytest.mark.parametrize("name", CAUGHT_BY_SCHEMA)
def test_structurally_invalid_playbooks_do_not_validate(name: str, validator: jsonschema.Draft202012Validator) -> None:
    """A playbook with an unknown key, a wrong type, a missing key or a bad enum value fails the schema."""
    assert not validator.is_valid(_document(INVALID / f"{name}.yml"))


def test_the_schema_subset_names_real_corpus_files() -> None:
    """Every name in the schema subset is a corpus file, listed once."""
    assert len(set(CAUGHT_BY_SCHEMA)) == len(CAUGHT_BY_SCHEMA)
    assert all((INVALID / f"{name}.yml").is_file() for name in CAUGHT_BY_SCHEMA)


def _loads_as_yaml(path: Path) -> bool:
    try:
        yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError:
        return False
    return True


def test_the_schema_subset_is_exact(validator: jsonschema.Draft202012Validator) -> None:
    """Every other invalid corpus playbook passes the schema: its fault is one only `check` can find."""
    others = [p for p in sorted(INVALID.glob("*.yml")) if p.stem not in CAUGHT_BY_SCHEMA and _loads_as_yaml(p)]
    assert others
    assert [p.stem for p in others if not validator.is_valid(_document(p))] == []


# Every keyword of JSON Schema draft 2020-12 (core, applicator, validation, metadata, format,
# unevaluated, content): anything else in the schema is a keyword clients silently ignore.
_STANDARD_KEYWORDS = {
    "$schema", "$id", "$ref", "$defs", "$anchor", "$dynamicRef", "$dynamicAnchor", "$vocabulary", "$comment",
    "allOf", "anyOf", "oneOf", "not", "if", "then", "else", "dependentSchemas", "prefixItems", "items",
    "contains", "properties", "patternProperties", "additionalProperties", "propertyNames",
    "type", "enum", "const", "multipleOf", "maximum", "exclusiveMaximum", "minimum", "exclusiveMinimum",
    "maxLength", "minLength", "pattern", "maxItems", "minItems", "uniqueItems", "maxContains", "minContains",
    "maxProperties", "minProperties", "required", "dependentRequired",
    "title", "description", "default", "deprecated", "readOnly", "writeOnly", "examples", "format",
    "unevaluatedItems", "unevaluatedProperties", "contentEncoding", "contentMediaType", "contentSchema",
}


def _subschemas(node: Any, where: str = "#") -> list[tuple[str, dict[str, Any]]]:
    """Every schema object inside `node` with its JSON pointer (maps of names to schemas walked as such)."""
    if isinstance(node, list):
        return [found for i, item in enumerate(node) for found in _subschemas(item, f"{where}/{i}")]
    if not isinstance(node, dict):
        return []
    out = [(where, node)]
    for key, value in node.items():
        if key in ("properties", "$defs", "patternProperties", "dependentSchemas"):
            for name, sub in value.items():
                out.extend(_subschemas(sub, f"{where}/{key}/{name}"))
        elif key in ("default", "enum", "const", "examples", "required", "dependentRequired"):
            continue  # values, not schemas
        elif isinstance(value, dict | list):
            out.extend(_subschemas(value, f"{where}/{key}"))
    return out


def _printed_schema() -> dict[str, Any]:
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        assert main(["schema"]) == 0
    schema: dict[str, Any] = json.loads(buffer.getvalue())
    return schema


def test_the_schema_uses_standard_keywords_only() -> None:
    """No pydantic-only keyword (such as `gt`) that a standard client would ignore."""
    odd = [f"{where}: {key}" for where, node in _subschemas(_printed_schema()) for key in node if key not in _STANDARD_KEYWORDS]
    assert odd == []


def test_every_key_has_hover_text() -> None:
    """Every key a playbook can write has a `description`, the text an editor shows on hover."""
    bare = [
        f"{where}/properties/{name}"
        for where, node in _subschemas(_printed_schema())
        for name, prop in node.get("properties", {}).items()
        if not prop.get("description")
    ]
    assert bare == []


def test_optional_keys_do_not_offer_null() -> None:
    """An optional key takes its value or is left out: no `null` branch, so editors name the real type."""
    nulls = [
        where
        for where, node in _subschemas(_printed_schema())
        if (node.get("type") == "null" and not where.endswith("/not")) or node.get("default", 0) is None
    ]
    assert nulls == []


@pytest.mark.parametrize(
    ("step", "valid"),
    [
        ({"id": "a"}, False),
        ({"id": "a", "log": "x", "sleep": 1}, False),
        ({"id": "a", "log": "x"}, True),
        ({"id": "a", "set": None}, False),
        ({"id": "a", "log": "x", "with": {"k": 1}}, False),
        ({"id": "a", "call": "m:f", "with": {"k": 1}}, True),
        ({"id": "a", "log": "x", "timeout": 0}, False),
        ({"id": "a", "log": "x", "timeout": "0.0s"}, False),
        ({"id": "a", "log": "x", "timeout": "0.5s"}, True),
        ({"id": "a", "http": {"url": "http://h/", "method": "FETCH"}}, False),
        ({"id": "a", "http": {"url": "http://h/", "method": "delete"}}, True),
        ({"id": "a", "http": {"url": "http://h/", "method": "{{ verb }}"}}, True),
        ({"id": "a", "log": "x", "retry": 1001}, False),
    ],
)
def test_step_rules(step: dict[str, Any], valid: bool, validator: jsonschema.Draft202012Validator) -> None:
    """One action per step, `with` only for `call`, positive timeouts, HTTP methods by name or template."""
    assert validator.is_valid({"name": "x", "steps": [step]}) is valid
