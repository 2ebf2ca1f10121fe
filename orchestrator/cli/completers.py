"""What a word on an `orchestrate` command line completes to: playbook files, step ids, variable
names, run ids.

Plain functions of what is on disk; completion.py hands them to argcomplete. Each returns nothing
rather than raise: a completion that fails must not print a traceback over the shell's prompt, and
a half-written playbook is the usual state of one while its command line is typed.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

#: What the playbook argument, `check` and `--config` complete to, besides folders.
YAML_SUFFIXES = (".yml", ".yaml")


def paths(prefix: str, suffixes: tuple[str, ...] = YAML_SUFFIXES) -> list[str]:
    """Folders (with a trailing `/`, to go on into them) and files ending in `suffixes` whose path
    starts with `prefix`, spelled as it is typed (`~/`, `./` kept). Hidden ones only for a `.` typed."""
    head, name = prefix[: prefix.rfind("/") + 1], prefix[prefix.rfind("/") + 1 :]
    try:
        entries = list(os.scandir(os.path.expanduser(head) or "."))
    except OSError:
        return []
    out: list[str] = []
    for entry in entries:
        if not entry.name.startswith(name) or (entry.name.startswith(".") and not name.startswith(".")):
            continue
        try:
            if entry.is_dir():
                out.append(f"{head}{entry.name}/")
            elif entry.name.endswith(suffixes):
                out.append(head + entry.name)
        except OSError:  # a dangling link, a folder we may not read
            continue
    return sorted(out)


def main_step_ids(playbook: str | None) -> list[str]:
    """The ids of the main steps (`--only` and `--skip` take no others) of the playbook file, in its order."""
    steps = _document(playbook).get("steps")
    if not isinstance(steps, list):
        return []
    return [s["id"] for s in steps if isinstance(s, dict) and isinstance(s.get("id"), str)]


def variable_names(playbook: str | None) -> list[str]:
    """The names the playbook file's `vars:` declares, for `--var NAME=`."""
    declared = _document(playbook).get("vars")
    return sorted(k for k in declared if isinstance(k, str)) if isinstance(declared, dict) else []


def _document(playbook: str | None) -> dict[str, Any]:
    """The playbook file's YAML as plain data, unvalidated (a playbook with a mistake still has its
    step ids); empty for standard input (`-`: nothing to read while completing) or unreadable text."""
    if not playbook or playbook == "-":
        return {}
    from orchestrator.model.input_file import YamlError, read_source
    from orchestrator.model.source import load_yaml

    try:  # the limits every input file passes: no FIFO waited on, no 4 GB file read
        data = load_yaml(read_source(playbook, "playbook"), playbook)[0]
    except (YamlError, OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def history_file(history: str | None, config: str | None) -> Path | None:
    """The history file `orchestrate runs` and `orchestrate resume` read with these `--history` and
    `--config` values; None when history is off, has no folder, or the configuration does not load."""
    if history:
        return Path(history).expanduser()
    from orchestrator.config import load_config
    from orchestrator.errors import InvalidInput
    from orchestrator.history.store import HistoryUnavailable, history_path

    try:
        settings = load_config(config).history
        return history_path(settings.path, settings.enabled)
    except (InvalidInput, HistoryUnavailable):
        return None


def run_ids(history: Path | None, *, resumable: bool, limit: int = 200) -> dict[str, str]:
    """The ids of the newest `limit` recorded runs (only those `orchestrate resume` accepts, with
    `resumable`), each with what it was: playbook, status, start."""
    if history is None:
        return {}
    import sqlite3

    from orchestrator.history.records import list_runs

    try:
        records = list_runs(history, limit)
    except (sqlite3.Error, OSError):  # a corrupt or foreign file: `orchestrate runs` says so, not a TAB
        return {}
    return {
        r.run_id: f"{r.playbook} ({r.status}, started {r.summary()['started_at']})"
        for r in records if r.resumable or not resumable
    }
