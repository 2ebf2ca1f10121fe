"""The configuration document: what a configuration file may say, validated by pydantic.

A run reads the records these convert into (`orchestrator/config.py`); each has the same fields.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from orchestrator.model.types import Duration, PositiveDuration
from orchestrator.model.values import Kind

_STRICT = ConfigDict(extra="forbid", frozen=True)
ExecutorType = Literal["asyncio", "threads", "processes", "dask"]

# Which executor types can serve each kind of work.
FITS: dict[str, tuple[str, ...]] = {
    "non-blocking": ("asyncio",),
    "blocking": ("threads", "processes", "dask"),
    "cpu": ("processes", "dask", "threads"),
}


class ExecutorSpec(BaseModel):
    """One executor: the event loop, a thread pool, a process pool or a Dask cluster."""

    model_config = _STRICT
    type: ExecutorType
    workers: int | Literal["auto"] = Field(
        "auto",
        description="Pool size. `auto`: threads grow with the calls waiting for one, capped by their latency "
        "(Little's law), up to 256; processes stay at one per core.",
    )
    start_method: Literal["fork", "forkserver", "spawn"] = Field(
        "forkserver", description="How worker processes start (processes only)."
    )
    address: str | None = Field(None, description="Dask scheduler address, or `local` for a local cluster (dask only).")
    # The dask type's own keys (docs/scale-out.md).
    cluster: str | None = Field(
        None, pattern=r"^[A-Za-z_][\w.]*[.:][A-Za-z_]\w*$",
        description="A Dask cluster class to start, e.g. distributed.LocalCluster or dask_jobqueue.SLURMCluster (dask only).",
    )
    options: dict[str, Any] = Field(default_factory=dict, description="Keyword arguments of the `cluster` class.")
    adapt: dict[str, Any] | None = Field(None, description="Adaptive scaling of the `cluster`: the arguments of its adapt(), e.g. {minimum: 0, maximum: 10}.")
    connect_timeout: PositiveDuration = Field(5.0, description="How long connecting to the scheduler may take (dask only).")
    no_workers_timeout: Duration = Field(
        10.0, description="How long a call waits while the cluster has no worker before it fails (dask only).",
    )


class HttpSettings(BaseModel):
    """The pooled HTTP client shared by every `http` and `wait_until` step of a run."""

    model_config = _STRICT
    client: Literal["aiohttp", "httpx"] = Field("aiohttp", description="aiohttp measured fastest here; httpx adds HTTP/2.")
    max_connections: int = Field(200, ge=1, description="Open connections in the pool, all hosts together.")
    max_connections_per_host: int = Field(0, ge=0, description="Per host; 0 means no separate cap.")
    max_body_bytes: int = Field(16 * 1024 * 1024, ge=1, description="Larger response bodies fail the request.")
    http2: bool = Field(False, description="Negotiate HTTP/2 (httpx only).")
    verify_tls: bool = True
    trust_env: bool = Field(
        True, description="Send requests through the proxies in HTTP_PROXY and HTTPS_PROXY, except to hosts in NO_PROXY "
        "and loopback addresses.",
    )


class AwsSettings(BaseModel):
    """Defaults for the `aws` action; credentials follow boto3's standard chain."""

    model_config = _STRICT
    region: str | None = None
    endpoint_url: str | None = Field(None, description="An emulator or S3-compatible store instead of AWS.")


class SandboxSettings(BaseModel):
    """The embedded default target the CLI starts when a playbook's `api` var is not given."""

    model_config = _STRICT
    enabled: bool = Field(True, description="Start the sandbox API when a playbook's `api` is `url`, was not set with --var, and nothing answers there.")
    url: str = Field("http://127.0.0.1:8700", description="The address the sandbox serves on.")
    latency: float = Field(0.0, ge=0)
    fault_rate: float = Field(0.0, ge=0, le=1)
    lost_rate: float = Field(0.0, ge=0, le=1, description="Share of successful creates whose response is lost (the connection drops).")
    rate_limit: float | None = Field(None, gt=0)
    aws: bool = Field(True, description="Also start a local AWS emulator (moto) and point `aws` steps at it.")


class HistorySettings(BaseModel):
    """Where the CLI records its runs (`orchestrate runs` lists them)."""

    model_config = _STRICT
    enabled: bool = Field(True, description="Record every run the CLI makes (not dry runs).")
    path: str | None = Field(
        None, description="The SQLite file; null means $ORCHESTRATOR_HISTORY, else $XDG_STATE_HOME/orchestrator/runs.sqlite."
    )
    keep: int | None = Field(1000, ge=1, description="Runs kept: older ones are forgotten when a run starts; null keeps all.")


class GcSettings(BaseModel):
    """What runs ask of CPython's garbage collector (orchestrator/engine/collector.py)."""

    model_config = _STRICT
    young_threshold: int | None = Field(
        10_000, ge=1,
        description="While runs are in progress, generation 0 is collected after at least this many net allocations "
        "(CPython's default is 700); null leaves the interpreter's setting alone.",
    )


class Config(BaseModel):
    """Where each kind of work runs, and client settings."""

    model_config = _STRICT
    executors: dict[Kind, ExecutorSpec] = Field(default_factory=lambda: _default_executors())
    http: HttpSettings = Field(default_factory=HttpSettings)
    aws: AwsSettings = Field(default_factory=AwsSettings)
    sandbox: SandboxSettings = Field(default_factory=SandboxSettings)
    history: HistorySettings = Field(default_factory=HistorySettings)
    gc: GcSettings = Field(default_factory=GcSettings)

    @model_validator(mode="after")
    def _fits(self) -> Config:
        for kind in ("non-blocking", "blocking", "cpu"):
            spec = self.executors.get(kind)  # type: ignore[call-overload,unused-ignore]
            if spec is None:
                raise ValueError(f"executors: missing {kind!r}")
            if spec.type not in FITS[kind]:
                raise ValueError(f"executors.{kind}: type {spec.type!r} cannot run {kind} work; use one of {', '.join(FITS[kind])}")
            if spec.type == "dask":
                _check_dask(kind, spec)
            elif spec.model_fields_set & _DASK_ONLY:
                keys = ", ".join(sorted(spec.model_fields_set & _DASK_ONLY))
                raise ValueError(f"executors.{kind}: {keys} apply to the dask type only, not {spec.type!r}")
        return self


_DASK_ONLY = frozenset({"address", "cluster", "options", "adapt", "connect_timeout", "no_workers_timeout"})


def _check_dask(kind: str, spec: ExecutorSpec) -> None:
    if bool(spec.address) == bool(spec.cluster):
        raise ValueError(
            f"executors.{kind}: a dask executor needs either `address` (tcp://host:8786, or local) or `cluster` "
            "(a cluster class such as distributed.LocalCluster), not both"
        )
    if (spec.options or spec.adapt is not None) and not spec.cluster:
        raise ValueError(f"executors.{kind}: `options` and `adapt` go with `cluster`, not `address`")


def _default_executors() -> dict[Kind, ExecutorSpec]:
    return {
        "non-blocking": ExecutorSpec(type="asyncio"),
        "blocking": ExecutorSpec(type="threads", workers=32),
        "cpu": ExecutorSpec(type="processes"),
    }
