"""The validated cache: a playbook or configuration validated once is read back as records, with
no validator and no YAML; anything changed, invalid, foreign or tampered with is validated again."""

from __future__ import annotations

import dataclasses
import json
import os
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from pydantic import ValidationError

import orchestrator
from orchestrator import loader
from orchestrator.actions.registry import BUILTINS, ActionRegistry
from orchestrator.config import Config, ExecutorSpec, HttpSettings, loads_config
from orchestrator.errors import PlaybookError
from orchestrator.model import cache
from orchestrator.model.config_document import Config as ConfigDocument
from orchestrator.model.convert import document_type
from orchestrator.model.playbook import Defaults, LimitSpec, Playbook, RetrySpec, Step

if TYPE_CHECKING:
    from orchestrator.model.records import Record

ROOT = Path(__file__).resolve().parent.parent
PLAYBOOK = """\
name: cached
vars: {n: 3}
limits: {api: {concurrency: auto, max_concurrency: 8, rate: 10/s}}
defaults: {retry: {attempts: 4, delay: 50ms}, timeout: 2s}
steps:
  - id: items
    set: "{{ range(n) | list }}"
  - id: each
    needs: [items]
    for_each: "{{ steps.items.output }}"
    retry: {jitter: false}
    log: {message: "item {{ item }}", level: debug}
finally:
  - id: done
    sleep: 1ms
"""

# A script that loads a playbook and says what it imported: run in a fresh interpreter.
_PROBE = """
import json, sys
import orchestrator
playbook = orchestrator.load(sys.argv[1])
config = orchestrator.load_config()
print(json.dumps({
    "steps": [s.id for s in playbook.steps], "retry": playbook.defaults.retry.attempts,
    "pydantic": "pydantic" in sys.modules, "yaml": "yaml" in sys.modules,
    "actions": sorted(m for m in sys.modules if m.startswith("orchestrator.actions.") and m.count(".") == 2),
}))
"""


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("ORCHESTRATOR_CACHE", str(folder))
    return folder


def _probe(path: Path, cache_folder: Path) -> dict[str, object]:
    env = {**os.environ, "ORCHESTRATOR_CACHE": str(cache_folder), "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", _PROBE, str(path)], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout)
    return result


def test_a_second_load_in_a_fresh_process_imports_neither_the_validator_nor_yaml(tmp_path: Path, cache_dir: Path) -> None:
    path = tmp_path / "cached.yml"
    path.write_text(PLAYBOOK)
    first = _probe(path, cache_dir)
    assert first["pydantic"] and first["yaml"]
    second = _probe(path, cache_dir)
    assert second == {**first, "pydantic": False, "yaml": False, "actions": ["orchestrator.actions.registry"]}
    assert second["steps"] == ["items", "each"] and second["retry"] == 4


def test_records_read_back_equal_the_records_validated(tmp_path: Path, cache_dir: Path) -> None:
    path = tmp_path / "cached.yml"
    path.write_text(PLAYBOOK)
    validated = orchestrator.load(path)
    assert list((cache_dir / "validated").iterdir())
    cached = orchestrator.load(path)
    assert cached == validated
    assert cached.path == validated.path == path and cached.digest == validated.digest
    assert cached.source.locate(("steps", 1, "for_each")) == (10, 15)
    each = cached.steps[1]
    assert (each.action, each.params) == ("log", {"message": "item {{ item }}", "level": "debug"})
    assert cached.limits["api"] == LimitSpec.parse({"concurrency": "auto", "max_concurrency": 8, "rate": "10/s"})
    assert each.retry is not None and each.retry.given == {"jitter"}


def test_an_entry_is_found_again_once_its_actions_are_imported(tmp_path: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Planning imports the actions a playbook uses (the registry's built-ins are imported when
    first used); the entry's key does not change with that."""
    registry = ActionRegistry(lazy=BUILTINS)
    path = tmp_path / "cached.yml"
    path.write_text(PLAYBOOK)
    orchestrator.load(path, registry=registry)
    for name in ("set", "log", "sleep"):
        registry.get(name)

    def validating(*args: object) -> None:
        raise AssertionError("validated again")

    monkeypatch.setattr(loader, "_validate", validating)
    assert orchestrator.load(path, registry=registry).name == "cached"
    assert len(list((cache_dir / "validated").iterdir())) == 1


def test_a_changed_text_is_validated_again(tmp_path: Path, cache_dir: Path) -> None:
    path = tmp_path / "cached.yml"
    path.write_text(PLAYBOOK)
    orchestrator.load(path)
    path.write_text(PLAYBOOK.replace("{n: 3}", "{n: 5}"))
    assert orchestrator.load(path).vars == {"n": 5}
    path.write_text(PLAYBOOK.replace("jitter: false", "jitter: maybe"))
    with pytest.raises(PlaybookError, match=r"cached.yml:11:\d+: steps\[1\]\.retry\.jitter"):
        orchestrator.load(path)


def test_an_invalid_playbook_is_not_cached_and_fails_every_time(tmp_path: Path, cache_dir: Path) -> None:
    path = tmp_path / "bad.yml"
    path.write_text("name: bad\nsteps:\n  - id: one\n    sett: 1\n")
    for _ in range(2):
        with pytest.raises(PlaybookError, match="unknown key 'sett'"):
            orchestrator.load(path)
    assert not (cache_dir / "validated").exists()


def test_a_tampered_entry_is_refused_unrun_and_validated_again(tmp_path: Path, cache_dir: Path) -> None:
    path = tmp_path / "cached.yml"
    path.write_text(PLAYBOOK)
    orchestrator.load(path)
    [entry] = (cache_dir / "validated").iterdir()
    marker = tmp_path / "ran"

    class Exploit:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (os.system, (f"touch {marker}",))

    entry.write_bytes(pickle.dumps(Exploit()))
    assert orchestrator.load(path).steps[0].id == "items"
    assert not marker.exists()
    entry.write_bytes(b"not a pickle")
    assert orchestrator.load(path).steps[0].id == "items"
    assert isinstance(cache.get(entry.stem), Playbook)  # written again, valid


def test_without_a_home_folder_runs_validate_each_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A container's user with no HOME and no password entry: `Path.home()` raises; the cache is off."""
    monkeypatch.delenv("ORCHESTRATOR_CACHE")
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)

    def no_home() -> Path:
        raise RuntimeError("Could not determine home directory.")

    monkeypatch.setattr(Path, "home", staticmethod(no_home))
    path = tmp_path / "cached.yml"
    path.write_text(PLAYBOOK)
    assert cache.cache_folder() is None
    assert orchestrator.load(path).steps[0].id == "items"


def test_a_folder_others_may_write_to_is_not_used(tmp_path: Path, cache_dir: Path) -> None:
    """A record read back is what runs: entries in a folder another user could change are ignored
    (and none is written there)."""
    path = tmp_path / "cached.yml"
    path.write_text(PLAYBOOK)
    orchestrator.load(path)
    entries = cache_dir / "validated"
    assert entries.stat().st_mode & 0o777 == 0o700
    [entry] = entries.iterdir()
    entries.chmod(0o777)
    assert cache.get(entry.stem) is None
    entry.unlink()
    orchestrator.load(path)
    assert list(entries.iterdir()) == []
    entries.chmod(0o700)
    orchestrator.load(path)
    assert [e.name for e in entries.iterdir()] == [entry.name]


def test_the_cache_can_be_turned_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORCHESTRATOR_CACHE", "off")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    path = tmp_path / "cached.yml"
    path.write_text(PLAYBOOK)
    assert orchestrator.load(path) == orchestrator.load(path)
    assert cache.cache_folder() is None and not (tmp_path / "xdg").exists()


def test_without_a_setting_the_cache_is_under_xdg_cache_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ORCHESTRATOR_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache.cache_folder() == tmp_path / "xdg" / "orchestrator"


def test_the_oldest_entries_and_a_killed_writers_leftovers_go(cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cache, "MAX_ENTRIES", 3)
    loads_config("gc: {young_threshold: 999}\n", "first.yml")
    entries = cache_dir / "validated"
    old, recent = entries / ".old.tmp", entries / ".recent.tmp"
    for leftover in (old, recent):
        leftover.write_bytes(b"half an entry")
    os.utime(old, (0, 0))
    for n in range(5):
        loads_config(f"gc: {{young_threshold: {1000 + n}}}\n", f"c{n}.yml")
    assert sorted(e.suffix for e in entries.iterdir()) == [".pickle"] * 3 + [".tmp"]
    assert recent.exists()


def test_entries_beyond_the_size_limit_go_least_recently_used_first(cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    loads_config("gc: {young_threshold: 999}\n", "first.yml")
    entries = cache_dir / "validated"
    [first] = entries.iterdir()
    monkeypatch.setattr(cache, "MAX_BYTES", first.stat().st_size * 2)
    loads_config("gc: {young_threshold: 1000}\n", "second.yml")
    os.utime(first, (0, 0))  # not used for long
    loads_config("gc: {young_threshold: 1001}\n", "third.yml")
    assert len(list(entries.iterdir())) == 2 and not first.exists()


def test_a_configuration_is_cached_too(cache_dir: Path) -> None:
    text = "http: {client: httpx, max_connections: 5}\n"
    first = loads_config(text, "c.yml")
    assert len(list((cache_dir / "validated").iterdir())) == 1
    assert loads_config(text, "c.yml") == first and first.http.max_connections == 5


# --- records --------------------------------------------------------------------------------------


@pytest.mark.parametrize("record", [RetrySpec, LimitSpec, Defaults, Config, ExecutorSpec, HttpSettings])
def test_each_record_has_the_fields_of_its_document(record: type[Record]) -> None:
    fields = {f.name for f in dataclasses.fields(record)} - {"given"}
    assert fields == set(document_type(record).model_fields)


def test_a_step_record_has_the_step_document_fields_and_its_action() -> None:
    from orchestrator.model.documents import StepBase

    fields = {f.name for f in dataclasses.fields(Step)} - {"given"}
    assert fields == {*StepBase.model_fields, "action", "params"}


def test_a_record_built_by_hand_is_validated_as_its_document_would() -> None:
    assert LimitSpec(rate="2/s").rate == 2.0
    assert RetrySpec.parse(3) == RetrySpec(attempts=3)
    assert Config(http={"client": "httpx"}).http == HttpSettings(client="httpx")
    assert Config(executors={**Config().executors, "cpu": ExecutorSpec(type="threads")}).executors["cpu"].type == "threads"
    with pytest.raises(ValidationError, match="rate"):
        LimitSpec(rate="often")
    with pytest.raises(ValidationError, match="cannot run cpu work"):
        Config(executors={"non-blocking": {"type": "asyncio"}, "blocking": {"type": "threads"}, "cpu": {"type": "asyncio"}})
    with pytest.raises(TypeError, match=r"orchestrator\.load"):
        Playbook(name="x")


def test_a_configuration_as_data_validates_back_to_an_equal_one() -> None:
    config = loads_config(textwrap.dedent("""\
        executors:
          non-blocking: {type: asyncio}
          blocking: {type: threads, workers: 4}
          cpu: {type: processes, start_method: spawn}
        history: {keep: 10}
    """))
    given = config.to_data(given_only=True)
    assert given["executors"]["blocking"] == {"type": "threads", "workers": 4}
    assert "http" not in given
    assert Config.parse(given) == config
    assert json.loads(ConfigDocument.model_validate(given).model_dump_json()) == config.to_data()
