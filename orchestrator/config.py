"""Configuration: where each kind of work runs, and the defaults of the shared clients.

The playbook says what kind of work a step is; configuration says where that kind runs. The
project's ``config/default.yml`` is the default; ``--config FILE`` replaces it.

These are the records a run reads; `model/config_document.py` validates a file into them (and
holds each key's default and description). A file validated once is read back from the validated
cache (`model/cache.py`) without the validator.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from orchestrator.errors import ConfigError, Diagnostic
from orchestrator.model.records import Record

if TYPE_CHECKING:
    from collections.abc import Mapping

    from orchestrator.model.values import Kind

_DOCUMENT = "orchestrator.model.config_document"
ExecutorType = Literal["asyncio", "threads", "processes", "dask"]


@dataclass(frozen=True, slots=True, init=False)
class ExecutorSpec(Record):
    """One executor: the event loop, a thread pool, a process pool or a Dask cluster."""

    document = f"{_DOCUMENT}:ExecutorSpec"
    type: ExecutorType
    workers: int | Literal["auto"]
    start_method: Literal["fork", "forkserver", "spawn"]
    address: str | None
    cluster: str | None
    options: dict[str, Any]
    adapt: dict[str, Any] | None
    connect_timeout: float
    no_workers_timeout: float

    @property
    def crosses_processes(self) -> bool:
        """Whether calls leave this process (so what they need, log context included, is sent along)."""
        return self.type in ("processes", "dask")

    def worker_count(self) -> int:
        if self.workers != "auto":
            return self.workers
        return 32 if self.type == "threads" else (os.cpu_count() or 1)


@dataclass(frozen=True, slots=True, init=False)
class HttpSettings(Record):
    """The pooled HTTP client shared by every `http` and `wait_until` step of a run."""

    document = f"{_DOCUMENT}:HttpSettings"
    client: Literal["aiohttp", "httpx"]
    max_connections: int
    max_connections_per_host: int
    max_body_bytes: int
    http2: bool
    verify_tls: bool
    trust_env: bool


@dataclass(frozen=True, slots=True, init=False)
class AwsSettings(Record):
    """Defaults for the `aws` action; credentials follow boto3's standard chain."""

    document = f"{_DOCUMENT}:AwsSettings"
    region: str | None
    endpoint_url: str | None


@dataclass(frozen=True, slots=True, init=False)
class SandboxSettings(Record):
    """The embedded default target the CLI starts when a playbook's `api` var is not given."""

    document = f"{_DOCUMENT}:SandboxSettings"
    enabled: bool
    url: str
    latency: float
    fault_rate: float
    lost_rate: float
    rate_limit: float | None
    aws: bool


@dataclass(frozen=True, slots=True, init=False)
class HistorySettings(Record):
    """Where the CLI records its runs (`orchestrate runs` lists them)."""

    document = f"{_DOCUMENT}:HistorySettings"
    enabled: bool
    path: str | None
    keep: int | None


@dataclass(frozen=True, slots=True, init=False)
class GcSettings(Record):
    """What runs ask of CPython's garbage collector (orchestrator/engine/collector.py)."""

    document = f"{_DOCUMENT}:GcSettings"
    young_threshold: int | None


@dataclass(frozen=True, slots=True, init=False)
class Config(Record):
    """Where each kind of work runs, and client settings."""

    document = f"{_DOCUMENT}:Config"
    executors: dict[Kind, ExecutorSpec]
    http: HttpSettings
    aws: AwsSettings
    sandbox: SandboxSettings
    history: HistorySettings
    gc: GcSettings

    def executor_for(self, kind: Kind) -> ExecutorSpec:
        return self.executors[kind]


@dataclass(frozen=True)
class TargetSettings:
    """Where one run's target answers, when it is not where the configuration says: what
    `embedded_target` started (the sandbox API, the AWS emulator and its dummy credentials)."""

    sandbox_url: str | None = None
    #: Wins over `aws.endpoint_url` of the configuration.
    aws_endpoint_url: str | None = None
    #: Handed to the boto3 Session instead of its standard credential chain.
    aws_credentials: Mapping[str, str] | None = None


def default_config_path() -> Path | None:
    """The shipped ``config/default.yml``: inside the wheel, or beside the package in a checkout."""
    package = Path(__file__).resolve().parent
    for file in (package / "_config" / "default.yml", package.parent / "config" / "default.yml"):
        if file.is_file():
            return file
    return None


def load_config(path: str | os.PathLike[str] | None = None) -> Config:
    """Read a configuration file (the shipped default when `path` is None)."""
    file = Path(path) if path is not None else default_config_path()
    if file is None:
        return Config()
    from orchestrator.model.input_file import YamlError, read_source

    try:  # a regular UTF-8 file within the size limit, checked before reading (docs/playbook.md)
        text = read_source(file, "configuration")
    except YamlError as exc:
        raise ConfigError(exc.diagnostics) from None
    return loads_config(text, str(file))


def loads_config(text: str, file: str = "<config>") -> Config:
    """Validate configuration text (`file` names it in errors), or read it back from the validated cache."""
    from orchestrator.model import cache

    return cache.validated("config", file, text, Config, lambda: _validate(text, file))


def _validate(text: str, file: str) -> Config:
    from pydantic import ValidationError

    from orchestrator.model.config_document import Config as ConfigDocument
    from orchestrator.model.convert import to_record
    from orchestrator.model.source import YamlError, load_yaml
    from orchestrator.model.validation import diagnostics

    try:
        data, smap = load_yaml(text, file)
    except YamlError as exc:
        raise ConfigError(exc.diagnostics) from None
    data = {} if data is None else data
    if not isinstance(data, dict):
        raise ConfigError([Diagnostic(file, 1, 1, "a configuration file is a mapping")])
    try:
        config: Config = to_record(ConfigDocument.model_validate(data))
    except ValidationError as exc:
        raise ConfigError(diagnostics(exc, data, smap, ConfigDocument)) from None
    return config

