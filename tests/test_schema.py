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
# key, a value outside its enumeration or range), so a schema alone catches it. The rest need the
# loader or the planner: YAML syntax, duplicate keys and ids, references, cycles, templates,
# one-action-per-step, imports, kinds that do not fit the callable.
CAUGHT_BY_SCHEMA = [
    "assert_missing_that", "bad_id_spaces", "bad_id_uppercase", "call_bad_target", "concurrency_negative",
    "concurrency_word", "concurrency_zero", "defaults_concurrency_zero", "empty_document", "empty_name",
    "empty_steps", "for_each_number", "http_missing_url", "http_unknown_key", "kind_uppercase",
    "limit_concurrency_zero", "limit_number", "log_bad_level", "log_unknown_key", "missing_id", "missing_name",
    "missing_steps", "misspelt_kind", "name_is_list", "needs_bad_id", "needs_mapping", "needs_not_list",
    "on_error_bad", "rate_fast", "read_only_word", "retry_attempts_word", "retry_attempts_zero",
    "retry_backoff_typo", "retry_delay_bad", "retry_max_delay_negative", "retry_on_status_word", "retry_string",
    "rollback_unknown_key", "shell_argv_number", "shell_unknown_key", "sleep_list", "step_not_mapping",
    "steps_mapping", "steps_null", "timeout_negative", "timeout_parsecs", "top_level_list", "top_level_scalar",
    "unknown_defaults_key", "unknown_limit_spec_key", "unknown_retry_key", "unknown_step_key", "unknown_top_key",
    "vars_not_mapping", "wait_until_missing_until", "when_list", "when_number",
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
