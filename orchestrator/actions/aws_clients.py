"""The `aws` action at run time: boto3 clients shared by a run's threads, and one call made with them.

boto3 sessions are not thread-safe; clients are. So each run has one `AwsClients`: one Session, used
only under a lock to create a client per (service, region, endpoint_url), and those clients shared
by every thread of the run. botocore's own retries are off (one attempt per call): the step's retry
policy decides, from the `retryable` flag each failure is mapped to here.

boto3 and botocore are imported on first use, never when this module is imported.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from orchestrator.errors import ActionError

if TYPE_CHECKING:
    from collections.abc import Mapping

#: Error codes AWS services use for "slow down": worth another attempt after a wait.
THROTTLING_CODES = frozenset({
    "Throttling", "ThrottlingException", "ThrottledException", "RequestLimitExceeded", "SlowDown",
    "TooManyRequestsException", "RequestThrottled", "RequestThrottledException",
    "ProvisionedThroughputExceededException", "BandwidthLimitExceeded", "EC2ThrottledException",
})
#: Keys of `TargetSettings.aws_credentials` that are handed to the boto3 Session.
CREDENTIAL_KEYS = ("aws_access_key_id", "aws_secret_access_key", "aws_session_token", "profile_name")
READ_PREFIXES = ("describe_", "list_", "get_", "head_")

ClientKey = tuple[str, str | None, str | None]


def is_read_operation(operation: str) -> bool:
    """Whether a boto3 operation name only reads (describe_, list_, get_, head_)."""
    return operation.startswith(READ_PREFIXES)


@dataclass(frozen=True, slots=True)
class AwsRequest:
    """One rendered `aws` step item: everything `call_aws` needs, nothing it must look up."""

    service: str
    operation: str
    params: Mapping[str, Any] = field(default_factory=dict)
    region: str | None = None
    endpoint_url: str | None = None
    paginate: bool = False
    wait: str | None = None
    wait_params: Mapping[str, Any] | None = None

    @property
    def where(self) -> str:
        return f"{self.service}.{self.operation}"


def _never_proxied(url: str) -> bool:
    """A loopback endpoint (a local emulator): botocore would send it through HTTP_PROXY unless
    NO_PROXY names it."""
    from orchestrator.actions.proxies import bypasses_proxy

    host = urlsplit(url).hostname
    return host is not None and bypasses_proxy(host)


class AwsClients:
    """boto3 clients of one run, one per (service, region, endpoint_url), created on first use."""

    def __init__(self, credentials: Mapping[str, str] | None = None, max_pool_connections: int = 10) -> None:
        self.credentials = {k: v for k, v in (credentials or {}).items() if k in CREDENTIAL_KEYS and v}
        self.max_pool_connections = max_pool_connections
        self._lock = threading.Lock()
        self._session: Any = None
        self._clients: dict[ClientKey, Any] = {}
        self._closed = False

    def client(self, service: str, region: str | None, endpoint_url: str | None) -> Any:
        """The shared client for `service` (thread-safe; creating one takes ~0.15 s, reusing it nothing)."""
        key = (service, region, endpoint_url)
        client = self._clients.get(key)  # the common case takes no lock
        if client is None:
            with self._lock:
                if self._closed:
                    raise ActionError(f"{service}: the run has ended; no new AWS client", retryable=False)
                client = self._clients.get(key)
                if client is None:
                    client = self._clients[key] = self._create(service, region, endpoint_url)
        return client

    def _create(self, service: str, region: str | None, endpoint_url: str | None) -> Any:
        import boto3.session
        from botocore.config import Config

        if self._session is None:
            self._session = boto3.session.Session(**self.credentials)
        options: dict[str, Any] = {}
        if endpoint_url is not None and _never_proxied(endpoint_url):
            options["proxies"] = {}  # direct, as the http action connects to loopback and NO_PROXY hosts
        config = Config(
            # One attempt per call: `total_max_attempts` counts the first (`max_attempts` would not).
            retries={"total_max_attempts": 1, "mode": "standard"},
            max_pool_connections=self.max_pool_connections,
            **options,
        )
        return self._session.client(service, region_name=region, endpoint_url=endpoint_url, config=config)

    def __reduce__(self) -> tuple[Any, ...]:
        # Sent to a Dask worker with a call: there it becomes that process's own clients for the
        # same credentials, created on first use and kept for the worker's life.
        return (worker_clients, (tuple(sorted(self.credentials.items())), self.max_pool_connections))

    def close(self) -> None:
        """Close every client's connection pool. Calls still running on threads fail or finish."""
        with self._lock:
            self._closed = True
            clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            client.close()


_WORKER_CLIENTS: dict[tuple[tuple[tuple[str, str], ...], int], AwsClients] = {}
_WORKER_LOCK = threading.Lock()


def worker_clients(credentials: tuple[tuple[str, str], ...], max_pool_connections: int) -> AwsClients:
    """The clients of this (worker) process for `credentials`, shared by the calls it runs."""
    key = (credentials, max_pool_connections)
    with _WORKER_LOCK:
        clients = _WORKER_CLIENTS.get(key)
        if clients is None:
            clients = _WORKER_CLIENTS[key] = AwsClients(dict(credentials), max_pool_connections)
        return clients


def call_aws(clients: AwsClients, request: AwsRequest) -> Any:
    """Make one boto3 call on this thread. Returns the response without `ResponseMetadata`, streaming
    bodies read; raises ActionError, retryable for throttling, 5xx and connection failures."""
    from botocore import exceptions as bx

    try:
        client = clients.client(request.service, request.region, request.endpoint_url)
        return _perform(client, request)
    except bx.ClientError as exc:
        raise client_error(request.where, exc) from exc
    except (bx.ConnectionError, bx.HTTPClientError) as exc:
        raise ActionError(f"{request.where}: {exc}", retryable=True) from exc
    except bx.WaiterError as exc:
        raise ActionError(f"{request.where}: waiter {request.wait} failed: {exc.kwargs.get('reason', exc)}", retryable=False) from exc
    except bx.ParamValidationError as exc:
        raise ActionError(f"{request.where}: invalid parameters: {str(exc).strip()}", retryable=False) from exc
    except TypeError as exc:  # a value of the wrong type reaching one of botocore's handlers (Bucket: 1)
        raise ActionError(f"{request.where}: invalid parameters: {exc}", retryable=False) from exc
    except bx.NoCredentialsError:
        raise ActionError(
            f"{request.where}: no AWS credentials found (environment, ~/.aws, instance role); set them "
            "(an emulator at `aws.endpoint_url` accepts any), or from Python pass `settings=TargetSettings(aws_credentials=...)`",
            retryable=False,
        ) from None
    except bx.NoRegionError:
        raise ActionError(f"{request.where}: no region; set `region:` on the step or `aws.region` in the configuration", retryable=False) from None
    except bx.UnknownServiceError:  # its message lists all ~400 services
        raise ActionError(f"{request.where}: unknown service {request.service!r}", retryable=False) from None
    except (bx.BotoCoreError, ValueError) as exc:  # unknown service, operation or waiter from a template, ...
        raise ActionError(f"{request.where}: {exc}", retryable=False) from exc


def _perform(client: Any, request: AwsRequest) -> Any:
    method = getattr(client, request.operation, None)
    if method is None or request.operation.startswith("_"):
        raise ActionError(f"{request.where}: no such operation", retryable=False)
    # A read waits for the state it reads (head_bucket + bucket_exists); a change is made, then waited for.
    reads = is_read_operation(request.operation)
    if request.wait and reads:
        _wait(client, request)
    if request.paginate:
        result = client.get_paginator(request.operation).paginate(**request.params).build_full_result()
    else:
        result = method(**request.params)
    if request.wait and not reads:
        _wait(client, request)
    return output(result)


def _wait(client: Any, request: AwsRequest) -> None:
    """Run the waiter with the call's parameters that its operation accepts, then `wait_params`."""
    assert request.wait is not None
    waiter = client.get_waiter(request.wait)
    shape = client.meta.service_model.operation_model(waiter.config.operation).input_shape
    accepted = set(shape.members) if shape is not None else set()
    kwargs = {k: v for k, v in request.params.items() if k in accepted}
    waiter.wait(**{**kwargs, **(request.wait_params or {})})


def output(result: Any) -> Any:
    """The response as a step's output: no ResponseMetadata, streaming bodies read (text when UTF-8)."""
    if not isinstance(result, dict):
        return result
    return {k: _read(v) for k, v in result.items() if k != "ResponseMetadata"}


def _read(value: Any) -> Any:
    from botocore.response import StreamingBody

    if not isinstance(value, StreamingBody):
        return value
    with value:
        data: bytes = value.read()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data


def client_error(where: str, exc: Any) -> ActionError:
    """An ActionError for a botocore ClientError: retryable for throttling and server-side (5xx) errors."""
    response: Mapping[str, Any] = exc.response or {}
    error = response.get("Error") or {}
    meta = response.get("ResponseMetadata") or {}
    code = str(error.get("Code") or "Unknown")
    message = str(error.get("Message") or "").strip()
    status = int(meta.get("HTTPStatusCode") or 0)
    retryable = code in THROTTLING_CODES or status >= 500
    text = f"{where}: {code}: {message}" if message else f"{where}: {code}"
    return ActionError(text, retryable=retryable, retry_after=_retry_after(meta.get("HTTPHeaders") or {}))


def _retry_after(headers: Mapping[str, str]) -> float | None:
    value = headers.get("retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None  # an HTTP date: rare from AWS, and the policy's own wait still applies
