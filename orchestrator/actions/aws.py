"""`aws`: one boto3 client call, on a thread. Checked before the run against botocore's models.

boto3 is synchronous, so an `aws` step is blocking work: it runs on the thread pool, never on the
event loop (it would stall every other step), and never on the process pool. On a Dask cluster each
worker process makes its own clients (`AwsClients` pickles to its credentials), so there the
endpoint and the credentials must be reachable from the workers. The check reads botocore's service, paginator and waiter models from disk, without
creating a client or touching the network, and says which names were meant.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from orchestrator.actions.aws_clients import AwsClients, AwsRequest, call_aws, is_read_operation
from orchestrator.actions.base import Action, PlanContext, Problem, RunEnvironment, StepContext
from orchestrator.errors import ActionError
from orchestrator.executors.base import Invocation
from orchestrator.templates import is_template

if TYPE_CHECKING:
    from orchestrator.model.values import Kind

CLIENTS_KEY = "aws:clients"

# Client methods boto3 and botocore add beside the API's operations (not in the service model).
_EXTRA_METHODS: dict[str, frozenset[str]] = {
    "s3": frozenset({"upload_file", "download_file", "upload_fileobj", "download_fileobj", "copy", "generate_presigned_post"}),
}
_EVERY_CLIENT = frozenset({"generate_presigned_url"})


def _close_matches(word: str, choices: Iterable[str], n: int = 3) -> list[str]:
    # 0.5, not difflib's 0.6: service names are short ("s4" is 0.5 from "s3").
    return difflib.get_close_matches(word, sorted(choices), n=n, cutoff=0.5)


def _suggest(word: str, choices: Iterable[str]) -> str:
    found = _close_matches(word, choices)
    return f"; did you mean: {', '.join(found)}?" if found else ""


class Catalog:
    """botocore's models, loaded once per service and kept: what exists, by boto3's snake_case names."""

    def __init__(self) -> None:
        self._session: Any = None
        self._services: frozenset[str] | None = None
        self._models: dict[str, Any] = {}
        self._operations: dict[str, dict[str, str]] = {}
        self._pageable: dict[str, frozenset[str]] = {}
        self._waiters: dict[str, dict[str, str]] = {}

    def _botocore(self) -> Any:
        if self._session is None:
            import botocore.session

            self._session = botocore.session.get_session()
        return self._session

    def services(self) -> frozenset[str]:
        if self._services is None:
            self._services = frozenset(self._botocore().get_available_services())
        return self._services

    def model(self, service: str) -> Any:
        """botocore's ServiceModel (kept: it caches the shapes it builds)."""
        if service not in self._models:
            self._models[service] = self._botocore().get_service_model(service)
        return self._models[service]

    def operations(self, service: str) -> dict[str, str]:
        """snake_case name -> API name (PutObject), for every operation of `service`."""
        if service not in self._operations:
            from botocore import xform_name

            self._operations[service] = {xform_name(op): op for op in self.model(service).operation_names}
        return self._operations[service]

    def input_shape(self, service: str, api_name: str) -> Any:
        return self.model(service).operation_model(api_name).input_shape

    def pageable(self, service: str) -> frozenset[str]:
        """snake_case names of the operations that have a paginator."""
        if service not in self._pageable:
            from botocore.exceptions import DataNotFoundError

            try:
                api = set(self._botocore().get_paginator_model(service)._paginator_config)
            except DataNotFoundError:  # the service has no paginators
                api = set()
            self._pageable[service] = frozenset(snake for snake, name in self.operations(service).items() if name in api)
        return self._pageable[service]

    def waiters(self, service: str) -> dict[str, str]:
        """snake_case waiter name -> the API operation it polls."""
        if service not in self._waiters:
            from botocore import xform_name
            from botocore.exceptions import DataNotFoundError

            try:
                model = self._botocore().get_waiter_model(service)
                self._waiters[service] = {xform_name(n): model.get_waiter(n).operation for n in model.waiter_names}
            except DataNotFoundError:  # the service has no waiters
                self._waiters[service] = {}
        return self._waiters[service]


class Aws(Action):
    """Call an AWS API through boto3 (`service`, `operation`, `params`, `region`, `paginate`, `wait`)."""

    name = "aws"
    params_type: ClassVar[Any] = "orchestrator.actions.params:AwsParams"
    kinds: ClassVar[frozenset[Kind]] = frozenset({"blocking"})
    default_kind: ClassVar[Kind] = "blocking"

    def __init__(self) -> None:
        self.catalog = Catalog()

    def is_read_only(self, params: Any) -> bool:
        operation = params.get("operation") if isinstance(params, Mapping) else None
        return isinstance(operation, str) and not is_template(operation) and is_read_operation(operation)

    def check(self, params: Any, ctx: PlanContext) -> Sequence[Problem]:
        """Names (service, operation, waiter, top-level parameters) against botocore's models; the
        first unknown name stops the checks that depend on it. Templated names are left to run time."""
        problems: list[Problem] = []
        # A declared non-blocking or cpu kind is refused by the planner already; here: blocking sent elsewhere.
        if ctx.declared_kind in (None, "blocking") and ctx.executor == "processes":
            problems.append(Problem(("kind",), "`aws` steps run on threads or on a Dask cluster, not on the process pool; "
                                               "the configuration runs blocking work on 'processes'"))
        service, operation = params["service"], params["operation"]
        if is_template(service):
            return problems
        services = self.catalog.services()
        if service not in services:
            hint = _suggest(service, services) or f"; no service has a similar name ({len(services)} services, e.g. ec2, s3, sqs)"
            return [*problems, Problem(("aws", "service"), f"unknown service {service!r}{hint}")]
        if "wait" in params and not is_template(params["wait"]):
            problems.extend(self._check_waiter(service, params["wait"], params.get("wait_params")))
        if is_template(operation):
            return problems
        operations = self.catalog.operations(service)
        extra = _EXTRA_METHODS.get(service, frozenset()) | _EVERY_CLIENT
        if operation not in operations and operation not in extra:
            hint = _suggest(operation, [*operations, *extra]) or f"; no operation of {service} has a similar name"
            return [*problems, Problem(("aws", "operation"), f"unknown operation {operation!r} for {service}{hint}")]
        if params.get("paginate"):
            problems.extend(self._check_paginate(service, operation))
        if operation in operations:
            extra_params = ("PaginationConfig",) if params.get("paginate") else ()
            problems.extend(self._check_params(service, operation, operations[operation], params.get("params", {}), extra_params))
        return problems

    def _check_paginate(self, service: str, operation: str) -> list[Problem]:
        pageable = self.catalog.pageable(service)
        if operation in pageable:
            return []
        if not pageable:
            return [Problem(("aws", "paginate"), f"{service}.{operation} does not paginate; no {service} operation does")]
        shown = _close_matches(operation, pageable, n=5) or sorted(pageable)[:5]
        more = ", ..." if len(pageable) > len(shown) else ""
        return [Problem(("aws", "paginate"), f"{service}.{operation} does not paginate; {service} operations that do: {', '.join(shown)}{more}")]

    def _check_params(self, service: str, operation: str, api_name: str, given: Any, extra: tuple[str, ...]) -> list[Problem]:
        """Top-level parameter names against the operation's input shape (values are boto3's to check)."""
        if not isinstance(given, Mapping):
            return []  # a template giving the whole mapping: known only at run time
        shape = self.catalog.input_shape(service, api_name)
        members = [*(shape.members if shape is not None else ()), *extra]
        problems = [
            Problem(("aws", "params", key), f"unknown parameter {key!r} for {service}.{operation}"
                    + (_suggest(key, members) or (f"; valid: {', '.join(members)}" if members else "; it takes none")), key=True)
            for key in given if not is_template(str(key)) and key not in members
        ]
        if shape is not None and not any(is_template(str(k)) for k in given):
            missing = [m for m in shape.required_members if m not in given]
            if missing:
                where = ("aws", "params") if given else ("aws", "operation")
                problems.append(Problem(where, f"{service}.{operation} requires {', '.join(map(repr, missing))} in `params`"))
        return problems

    def _check_waiter(self, service: str, wait: str, wait_params: Any) -> list[Problem]:
        waiters = self.catalog.waiters(service)
        if wait not in waiters:
            if not waiters:
                return [Problem(("aws", "wait"), f"unknown waiter {wait!r}: {service} has no waiters")]
            near = _close_matches(wait, waiters, n=1)
            hint = f" (did you mean {near[0]!r}?)" if near else ""
            return [Problem(("aws", "wait"), f"unknown waiter {wait!r} for {service}{hint}; valid waiters: {', '.join(sorted(waiters))}")]
        if not isinstance(wait_params, Mapping):
            return []
        shape = self.catalog.input_shape(service, waiters[wait])
        valid = [*(shape.members if shape is not None else []), "WaiterConfig"]
        return [
            Problem(("aws", "wait_params", key), f"unknown waiter parameter {key!r} for {wait}{_suggest(key, valid)}; valid: {', '.join(valid)}", key=True)
            for key in wait_params if key not in valid
        ]

    def invocation(self, params: Any, with_: Mapping[str, Any] | None, ctx: StepContext) -> Invocation:
        clients: AwsClients = ctx.resources.get(CLIENTS_KEY, _clients, ctx.env, close=AwsClients.close)
        service, operation, call_params = params["service"], params["operation"], params.get("params", {})
        if not isinstance(service, str) or not isinstance(operation, str):
            raise ActionError(f"aws: service and operation must be names, got {service!r} and {operation!r}", retryable=False)
        if not isinstance(call_params, Mapping):
            raise ActionError(f"{service}.{operation}: params must be a mapping, got {type(call_params).__name__}", retryable=False)
        settings = ctx.env.config.aws
        request = AwsRequest(
            service=service, operation=operation, params=call_params, region=params.get("region") or settings.region,
            endpoint_url=ctx.env.target.aws_endpoint_url or settings.endpoint_url, paginate=bool(params.get("paginate")),
            wait=params.get("wait"), wait_params=params.get("wait_params"),
        )
        return Invocation(call_aws, (clients, request))


def _clients(env: RunEnvironment) -> AwsClients:
    threads = env.config.executor_for("blocking").worker_count()
    return AwsClients(env.target.aws_credentials, max_pool_connections=threads)
