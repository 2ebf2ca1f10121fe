"""The `aws` action before the run: names and parameters checked against botocore's models."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from typing import TYPE_CHECKING

import pytest

import orchestrator
from orchestrator.actions.aws import Aws
from orchestrator.cli.main import main
from orchestrator.config import Config

if TYPE_CHECKING:
    from pathlib import Path


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "p.yml"
    path.write_text(textwrap.dedent(text))
    return path


def plan_errors(tmp_path: Path, text: str, config: Config | None = None) -> list[str]:
    """The plan's diagnostics as `FILE:LINE:COL: message` lines (empty when it plans)."""
    try:
        orchestrator.plan(orchestrator.load(write(tmp_path, text)), config=config)
    except orchestrator.PlaybookError as exc:
        return [str(d) for d in exc.diagnostics]
    return []


def one_step(aws: str, extra: str = "") -> str:
    return f"name: t\nsteps:\n  - id: s\n{extra}    aws: {aws}\n"


def test_misspelt_operation_is_a_plan_error_with_place_and_closest_names(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`put_objekt` exits 2 from a dry run, located at the value, suggesting put_object first."""
    path = write(tmp_path, """\
        name: upload
        steps:
          - id: put
            aws:
              service: s3
              operation: put_objekt
              params: {Bucket: configs, Key: web.conf}
        """)
    assert main([str(path), "--dry-run"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"{path}:6:18: steps[0].aws.operation: unknown operation 'put_objekt' for s3; "
                   "did you mean: put_object, put_object_acl, get_object?"]


def test_misspelt_service_is_a_plan_error_with_closest_names(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`s4` exits 2 from a dry run, suggesting s3."""
    path = write(tmp_path, one_step("{service: s4, operation: put_object}"))
    assert main([str(path), "--dry-run"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"{path}:4:20: steps[0].aws.service: unknown service 's4'; did you mean: s3")


def test_unknown_and_missing_parameters_are_found(tmp_path: Path) -> None:
    """A top-level parameter the operation does not take is named with the closest valid one; a missing
    required one is named too."""
    errors = plan_errors(tmp_path, one_step("{service: s3, operation: put_object, params: {Bukcet: b, Key: k}}"))
    assert any("steps[0].aws.params.Bukcet: unknown parameter 'Bukcet' for s3.put_object; did you mean: Bucket?" in e for e in errors)
    assert any("steps[0].aws.params: s3.put_object requires 'Bucket' in `params`" in e for e in errors)
    assert len(errors) == 2


def test_operation_without_params_reports_its_required_members(tmp_path: Path) -> None:
    """An operation with required parameters and no `params` at all is an error at the operation."""
    errors = plan_errors(tmp_path, one_step("{service: sqs, operation: get_queue_url}"))
    assert errors == [f"{tmp_path / 'p.yml'}:4:36: steps[0].aws.operation: sqs.get_queue_url requires 'QueueName' in `params`"]


def test_templated_parameters_are_left_to_run_time(tmp_path: Path) -> None:
    """Parameters given by one template, and templated service or operation names, are not checked."""
    assert plan_errors(tmp_path, one_step('{service: s3, operation: put_object, params: "{{ {} }}"}')) == []
    assert plan_errors(tmp_path, one_step("{service: \"{{ 's3' }}\", operation: anything}")) == []
    assert plan_errors(tmp_path, one_step("{service: s3, operation: \"{{ 'x' }}\", params: {Whatever: 1}}")) == []


def test_paginate_needs_an_operation_that_paginates(tmp_path: Path) -> None:
    """`paginate: true` on an operation without a paginator is an error listing ones that have one."""
    errors = plan_errors(tmp_path, one_step("{service: s3, operation: put_object, params: {Bucket: b, Key: k}, paginate: true}"))
    assert len(errors) == 1 and "steps[0].aws.paginate: s3.put_object does not paginate; s3 operations that do: list_" in errors[0]
    assert plan_errors(tmp_path, one_step("{service: s3, operation: list_objects_v2, params: {Bucket: b}, paginate: true}")) == []


def test_unknown_waiter_lists_the_valid_ones(tmp_path: Path) -> None:
    """An unknown waiter names the closest and every valid waiter; waiter parameters are checked too."""
    errors = plan_errors(tmp_path, one_step("{service: s3, operation: head_bucket, params: {Bucket: b}, wait: bucket_exist}"))
    assert len(errors) == 1 and errors[0].endswith(
        "steps[0].aws.wait: unknown waiter 'bucket_exist' for s3 (did you mean 'bucket_exists'?); "
        "valid waiters: bucket_exists, bucket_not_exists, object_exists, object_not_exists")
    errors = plan_errors(tmp_path, one_step(
        "{service: s3, operation: create_bucket, params: {Bucket: b}, wait: bucket_exists, wait_params: {Delay: 1}}"))
    assert len(errors) == 1 and "steps[0].aws.wait_params.Delay: unknown waiter parameter 'Delay' for bucket_exists" in errors[0]


def test_boto3_client_methods_beside_the_api_are_known(tmp_path: Path) -> None:
    """Methods boto3 adds to clients (s3 upload_file, generate_presigned_url) are valid operations."""
    assert plan_errors(tmp_path, one_step("{service: s3, operation: upload_file, params: {Filename: f, Bucket: b, Key: k}}")) == []
    assert plan_errors(tmp_path, one_step("{service: sqs, operation: generate_presigned_url}")) == []


def test_aws_steps_are_blocking_and_run_on_threads_only(tmp_path: Path) -> None:
    """The kind is inferred as blocking; non-blocking and cpu are refused, and so is a blocking executor of processes."""
    plan = orchestrator.plan(orchestrator.load(write(tmp_path, one_step("{service: sqs, operation: list_queues}"))))
    step = plan.step("s")
    assert (step.kind, step.kind_source, step.executor) == ("blocking", "inferred", "threads")
    for kind in ("non-blocking", "cpu"):
        errors = plan_errors(tmp_path, one_step("{service: sqs, operation: list_queues}", f"    kind: {kind}\n"))
        assert errors == [f"{tmp_path / 'p.yml'}:4:11: steps[0].kind: `aws` here cannot run as '{kind}'; it can run as blocking"]
    on_processes = Config(executors={"non-blocking": {"type": "asyncio"}, "blocking": {"type": "processes"}, "cpu": {"type": "processes"}})
    errors = plan_errors(tmp_path, one_step("{service: sqs, operation: list_queues}"), config=on_processes)
    assert len(errors) == 1 and "`aws` steps run on threads" in errors[0] and "'processes'" in errors[0]


@pytest.mark.parametrize(
    ("operation", "read_only"),
    [("describe_instances", True), ("list_buckets", True), ("get_object", True), ("head_bucket", True),
     ("put_object", False), ("delete_bucket", False), ("create_bucket", False), ("{{ op }}", False)],
)
def test_read_only_operations_are_the_reads(operation: str, read_only: bool) -> None:
    """describe_, list_, get_ and head_ operations are read-only (with or without a waiter); the rest change things."""
    assert Aws().is_read_only({"service": "s3", "operation": operation}) is read_only
    assert Aws().is_read_only({"service": "s3", "operation": operation, "wait": "bucket_exists"}) is read_only


def test_checking_creates_no_client_and_imports_no_boto3(tmp_path: Path) -> None:
    """Planning reads botocore's model files only: boto3 (and so any client) is never imported."""
    path = write(tmp_path, one_step("{service: s3, operation: put_object, params: {Bucket: b, Key: k}}"))
    code = (
        "import sys, json, orchestrator; orchestrator.plan(orchestrator.load(sys.argv[1])); "
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in ('boto3', 'botocore'))))"
    )
    modules = json.loads(subprocess.check_output([sys.executable, "-c", code, str(path)], text=True))
    assert "botocore" in modules and not any(m.startswith("boto3") for m in modules)


def test_pagination_config_is_a_parameter_of_paginated_calls_only(tmp_path: Path) -> None:
    """`PaginationConfig` (MaxItems, PageSize) is accepted with `paginate: true` and unknown without it."""
    params = "{Bucket: b, PaginationConfig: {MaxItems: 10}}"
    assert plan_errors(tmp_path, one_step(f"{{service: s3, operation: list_objects_v2, params: {params}, paginate: true}}")) == []
    errors = plan_errors(tmp_path, one_step(f"{{service: s3, operation: list_objects_v2, params: {params}}}"))
    assert len(errors) == 1 and "unknown parameter 'PaginationConfig' for s3.list_objects_v2" in errors[0]


def test_a_service_without_waiters_says_so(tmp_path: Path) -> None:
    """`wait:` on a service that has no waiters names that fact rather than an empty list."""
    errors = plan_errors(tmp_path, one_step("{service: sts, operation: get_caller_identity, wait: ready}"))
    assert len(errors) == 1 and errors[0].endswith("steps[0].aws.wait: unknown waiter 'ready': sts has no waiters")
