"""Shared fixtures: playbooks written to a temporary folder, and a way to run them."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import pytest

import orchestrator
from orchestrator.emulator import CREDENTIALS, MotoServer

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

HERE = Path(__file__).parent

# CLI runs started by the tests record no history in the user's state folder; the history tests
# point ORCHESTRATOR_HISTORY at a file of their own.
os.environ["ORCHESTRATOR_HISTORY"] = "off"
# Nor do they write validated playbooks to the user's cache folder: one of the session's own, so
# that loading a playbook twice (in the tests and in the CLI runs they start) uses the cache as
# users' runs do.
os.environ["ORCHESTRATOR_CACHE"] = tempfile.mkdtemp(prefix="orchestrator-cache-")
atexit.register(shutil.rmtree, os.environ["ORCHESTRATOR_CACHE"], ignore_errors=True)


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


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
    """One moto server (ThreadedMotoServer, in this process, on 127.0.0.1) for the whole session."""
    with MotoServer("127.0.0.1", 0) as server:
        assert server.url is not None
        yield server.url


@pytest.fixture
def s3(moto_url: str) -> Any:
    """A plain boto3 S3 client on the emulator, to prepare and inspect state independently of the action."""
    return boto3.session.Session(**CREDENTIALS).client("s3", region_name="us-east-1", endpoint_url=moto_url)
