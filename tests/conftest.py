"""Shared fixtures: playbooks written to a temporary folder, and a way to run them."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

import orchestrator

HERE = Path(__file__).parent


@pytest.fixture
def write_playbook(tmp_path: Path) -> Callable[..., Path]:
    """Write a playbook (dedented YAML) and optional helper modules beside it; return its path."""

    def write(text: str, name: str = "playbook.yml", **modules: str) -> Path:
        for module, source in modules.items():
            (tmp_path / f"{module}.py").write_text(textwrap.dedent(source))
        path = tmp_path / name
        path.write_text(textwrap.dedent(text))
        return path

    return write


@pytest.fixture
def plan_of(write_playbook: Callable[..., Path]) -> Callable[..., orchestrator.Plan]:
    """Plan playbook text (with helper modules) in one call."""

    def make(text: str, vars: dict[str, object] | None = None, config: orchestrator.Config | None = None, **modules: str) -> orchestrator.Plan:
        return orchestrator.plan(write_playbook(text, **modules), vars=vars, config=config)

    return make
