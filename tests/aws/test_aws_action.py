"""The `aws` action at run time: boto3 calls on threads against a real emulator and a scripted fake."""

from __future__ import annotations

import errno
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from typing import Any

import boto3
import psutil
import pytest

from orchestrator.actions.aws_clients import AwsClients
from orchestrator.config import TargetSettings
from orchestrator.emulator import CREDENTIALS, MotoProcess, MotoServer
from tests.aws.conftest import REGION, FakeAws, RunAws, Sleeps

SLOW_DOWN = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    "<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message><RequestId>r1</RequestId></Error>"
)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_for_each_put_object_runs_on_threads(run_aws: RunAws, s3: Any) -> None:
    """A bucket is created, then 40 objects are put by a `for_each` step, 16 at a time, on the thread pool."""
    name = f"fan-{uuid.uuid4().hex[:10]}"
    result = await run_aws("""
        name: upload
        vars: {bucket: BUCKET}
        steps:
          - id: bucket
            aws: {service: s3, operation: create_bucket, params: {Bucket: "{{ bucket }}"}}
          - id: put
            needs: [bucket]
            for_each: "{{ range(40) }}"
            concurrency: 16
            aws:
              service: s3
              operation: put_object
              params: {Bucket: "{{ bucket }}", Key: "obj-{{ item }}", Body: "body {{ item }}"}
        """.replace("BUCKET", name))
    assert result.status == "succeeded", result.steps
    put = result.step("put")
    assert (put.kind, put.executor, put.items) == ("blocking", "threads", 40)
    assert all("ETag" in out and "ResponseMetadata" not in out for out in put.output)
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=name)["Contents"]]
    assert sorted(keys) == sorted(f"obj-{i}" for i in range(40))
    assert s3.get_object(Bucket=name, Key="obj-7")["Body"].read() == b"body 7"


async def test_get_object_body_is_text_when_utf8_else_bytes(run_aws: RunAws, s3: Any, bucket: str) -> None:
    """A streaming body is read: decoded to text when it is UTF-8, kept as bytes otherwise."""
    s3.put_object(Bucket=bucket, Key="text", Body="héllo".encode())
    s3.put_object(Bucket=bucket, Key="binary", Body=b"\xff\xfe\x00")
    result = await run_aws("""
        name: read
        vars: {bucket: BUCKET}
        steps:
          - id: get
            for_each: [text, binary]
            aws: {service: s3, operation: get_object, params: {Bucket: "{{ bucket }}", Key: "{{ item }}"}}
        """.replace("BUCKET", bucket))
    text, binary = result.step("get").output
    assert text["Body"] == "héllo" and binary["Body"] == b"\xff\xfe\x00"
    assert text["ContentLength"] == 6


@pytest.mark.parametrize(
    ("service_call", "throttled", "success"),
    [
        ('{service: s3, operation: put_object, params: {Bucket: configs, Key: web.conf, Body: "x"}}',
         (503, {"Content-Type": "application/xml"}, SLOW_DOWN),
         (200, {"ETag": '"abc"'}, "")),
        ("{service: dynamodb, operation: list_tables}",
         (400, {"Content-Type": "application/x-amz-json-1.0", "Retry-After": "7"},
          '{"__type": "com.amazonaws.dynamodb.v20120810#ThrottlingException", "message": "Rate exceeded"}'),
         (200, {"Content-Type": "application/x-amz-json-1.0"}, '{"TableNames": ["orders"]}')),
    ],
    ids=["s3-503-SlowDown", "dynamodb-400-ThrottlingException"],
)
async def test_throttling_is_retried_by_the_step_policy(
    run_aws: RunAws, fake_aws: FakeAws, service_call: str, throttled: Any, success: Any
) -> None:
    """A throttling answer is retryable: the step's policy (not botocore) tries again, and the call succeeds."""
    fake_aws.script = [throttled]
    fake_aws.final = success
    sleeps = Sleeps()
    result = await run_aws(f"""
        name: throttled
        steps:
          - id: call
            retry: {{attempts: 4, delay: 1s, jitter: false}}
            aws: {service_call}
        """, endpoint=fake_aws.url, sleeps=sleeps)
    step = result.step("call")
    assert step.status == "succeeded", step.error
    assert step.attempts == 2 and len(fake_aws.seen) == 2  # one request per attempt: botocore retried nothing
    assert sleeps.waits == [max(1.0, float(throttled[1].get("Retry-After", 0)))]
    assert step.output in ({"ETag": '"abc"'}, {"TableNames": ["orders"]})


async def test_client_error_fails_at_once_with_its_code(run_aws: RunAws) -> None:
    """An error such as NoSuchBucket is not retried, whatever the policy says, and names its code."""
    result = await run_aws("""
        name: missing
        steps:
          - id: put
            retry: 5
            aws: {service: s3, operation: put_object, params: {Bucket: no-such-bucket-here, Key: k, Body: x}}
        """)
    step = result.step("put")
    assert (result.status, step.attempts) == ("failed", 1)
    assert step.error is not None and step.error.startswith("s3.put_object: NoSuchBucket: ")


async def test_server_errors_are_retryable(run_aws: RunAws, fake_aws: FakeAws) -> None:
    """A 5xx answer (InternalError) is transient on AWS: it is retried like throttling."""
    fake_aws.final = (500, {}, "<Error><Code>InternalError</Code><Message>We encountered an internal error.</Message></Error>")
    result = await run_aws("""
        name: broken
        steps:
          - id: list
            retry: {attempts: 3, delay: 0}
            aws: {service: s3, operation: list_buckets}
        """, endpoint=fake_aws.url)
    step = result.step("list")
    assert (step.status, step.attempts, len(fake_aws.seen)) == ("failed", 3, 3)
    assert step.error == "s3.list_buckets: InternalError: We encountered an internal error."


async def test_unreachable_endpoint_is_retryable(run_aws: RunAws) -> None:
    """A connection failure is retried, and the error says which endpoint could not be reached."""
    port = closed_port()
    result = await run_aws("""
        name: down
        steps:
          - id: list
            retry: {attempts: 3, delay: 0}
            aws: {service: s3, operation: list_buckets}
        """, endpoint=f"http://127.0.0.1:{port}")
    step = result.step("list")
    assert (step.status, step.attempts) == ("failed", 3)
    assert step.error is not None and f"127.0.0.1:{port}" in step.error


@pytest.mark.parametrize("params", ['{Bucket: "{{ bucket }}", Key: "{{ 42 }}"}', '{Bucket: "{{ 42 }}", Key: k}'],
                         ids=["validated-by-botocore", "rejected-by-a-botocore-handler"])
async def test_invalid_parameters_fail_at_once(run_aws: RunAws, bucket: str, params: str) -> None:
    """A parameter of the wrong type (known only once rendered) fails the step without a retry."""
    result = await run_aws(f"""
        name: bad
        vars: {{bucket: {bucket}}}
        steps:
          - id: put
            retry: 3
            aws: {{service: s3, operation: put_object, params: {params}}}
        """)
    step = result.step("put")
    assert (step.status, step.attempts) == ("failed", 1)
    assert step.error is not None and step.error.startswith("s3.put_object: invalid parameters: ")


async def test_templated_names_that_do_not_exist_fail_at_once(run_aws: RunAws) -> None:
    """A service, operation or waiter that a template names and botocore does not know fails without a retry."""
    result = await run_aws("""
        name: names
        vars: {service: s4, operation: put_objekt, waiter: bucket_exist}
        defaults: {retry: 3, on_error: continue}
        steps:
          - id: service
            aws: {service: "{{ service }}", operation: list_buckets}
          - id: operation
            aws: {service: s3, operation: "{{ operation }}"}
          - id: waiter
            aws: {service: s3, operation: list_buckets, wait: "{{ waiter }}"}
        """)
    errors = {s.id: (s.attempts, s.error) for s in result.steps}
    assert errors == {
        "service": (1, "s4.list_buckets: unknown service 's4'"),
        "operation": (1, "s3.put_objekt: no such operation"),
        "waiter": (1, "s3.list_buckets: Waiter does not exist: bucket_exist"),
    }


async def test_paginate_merges_every_page(run_aws: RunAws, s3: Any, bucket: str) -> None:
    """With `paginate: true` the pages are merged: 5 objects listed 2 per page give 5 Contents."""
    for i in range(5):
        s3.put_object(Bucket=bucket, Key=f"k{i}", Body=b"x")
    result = await run_aws("""
        name: list
        vars: {bucket: BUCKET}
        steps:
          - id: page
            aws: {service: s3, operation: list_objects_v2, params: {Bucket: "{{ bucket }}", MaxKeys: 2}}
          - id: all
            aws: {service: s3, operation: list_objects_v2, params: {Bucket: "{{ bucket }}", MaxKeys: 2}, paginate: true}
        """.replace("BUCKET", bucket))
    assert len(result.step("page").output["Contents"]) == 2 and result.step("page").output["IsTruncated"]
    assert [o["Key"] for o in result.step("all").output["Contents"]] == [f"k{i}" for i in range(5)]


async def test_waiters_wait_for_reads_and_after_changes(run_aws: RunAws, bucket: str) -> None:
    """`wait:` works for a read (head_bucket + bucket_exists) and after a change (create_bucket + bucket_exists)."""
    new = f"wait-{uuid.uuid4().hex[:10]}"
    result = await run_aws("""
        name: wait
        vars: {bucket: BUCKET, new: NEW}
        steps:
          - id: head
            aws: {service: s3, operation: head_bucket, params: {Bucket: "{{ bucket }}"}, wait: bucket_exists}
          - id: create
            aws: {service: s3, operation: create_bucket, params: {Bucket: "{{ new }}"}, wait: bucket_exists}
        """.replace("BUCKET", bucket).replace("NEW", new))
    assert result.status == "succeeded", result.steps
    assert result.step("head").output["BucketRegion"] == REGION
    assert result.step("create").output["Location"] == f"/{new}"


async def test_a_waiter_that_gives_up_fails_at_once_with_its_reason(run_aws: RunAws) -> None:
    """A waiter that runs out of attempts fails the step without a retry, with the waiter's reason."""
    result = await run_aws("""
        name: wait
        steps:
          - id: head
            retry: 3
            aws:
              service: s3
              operation: head_bucket
              params: {Bucket: never-created-bucket}
              wait: bucket_exists
              wait_params: {WaiterConfig: {Delay: 1, MaxAttempts: 1}}
        """)
    step = result.step("head")
    assert (step.status, step.attempts) == ("failed", 1)
    assert step.error is not None
    assert step.error.startswith("s3.head_bucket: waiter bucket_exists failed: Max attempts exceeded")
    assert "404" in step.error


async def test_endpoint_in_run_settings_overrides_the_configuration(run_aws: RunAws, moto_url: str) -> None:
    """`aws_endpoint_url` in the run settings (set by the CLI's embedded emulator) wins over `aws.endpoint_url`."""
    result = await run_aws("""
        name: override
        steps:
          - id: list
            aws: {service: s3, operation: list_buckets}
        """, endpoint=f"http://127.0.0.1:{closed_port()}",
        settings=TargetSettings(aws_endpoint_url=moto_url, aws_credentials=dict(CREDENTIALS)))
    assert result.status == "succeeded", result.steps
    assert "Buckets" in result.step("list").output


async def test_a_loopback_emulator_is_reached_directly_when_a_proxy_is_set(
    run_aws: RunAws, moto_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With HTTP_PROXY pointing at nothing and no NO_PROXY, botocore would send calls for the local
    emulator to the proxy and fail; they go straight to it, as the http action's do."""
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy"):
        monkeypatch.setenv(name, f"http://127.0.0.1:{closed_port()}")
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    result = await run_aws("""
        name: proxied
        steps:
          - id: list
            aws: {service: s3, operation: list_buckets}
        """, settings=TargetSettings(aws_endpoint_url=moto_url, aws_credentials=dict(CREDENTIALS)))
    assert result.status == "succeeded", result.step("list").error


async def test_missing_credentials_fail_at_once_and_say_what_to_do(run_aws: RunAws, monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    """Without credentials anywhere in boto3's chain, the step fails once and explains where they come from."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    result = await run_aws("""
        name: anonymous
        steps:
          - id: list
            retry: 3
            aws: {service: s3, operation: list_buckets}
        """, settings=TargetSettings())
    step = result.step("list")
    assert (step.status, step.attempts) == ("failed", 1)
    assert step.error is not None and "no AWS credentials found" in step.error


def test_clients_are_created_once_per_service_region_and_endpoint_and_shared_by_threads() -> None:
    """Sixteen threads asking at once get one client; another region or endpoint gets another."""
    clients = AwsClients(CREDENTIALS, max_pool_connections=16)
    got: list[Any] = []
    start = threading.Barrier(16)

    def ask() -> None:
        start.wait()
        got.append(clients.client("sqs", REGION, "http://127.0.0.1:1"))

    threads = [threading.Thread(target=ask) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({id(c) for c in got}) == 1
    assert got[0].meta.config.max_pool_connections == 16
    assert clients.client("sqs", "eu-west-1", "http://127.0.0.1:1") is not got[0]
    assert clients.client("sqs", REGION, "http://127.0.0.1:2") is not got[0]
    clients.close()


def test_moto_process_serves_from_a_child_and_stops() -> None:
    """MotoProcess runs the emulator in another process, answers boto3 at its URL and is reaped on stop."""
    with MotoProcess() as moto:
        assert moto.url is not None and moto.process is not None
        process = moto.process
        credentials = moto.run_settings().aws_credentials
        assert credentials is not None
        s3 = boto3.session.Session(**credentials).client(
            "s3", region_name=REGION, endpoint_url=moto.url)
        s3.create_bucket(Bucket="in-a-child")
        assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == ["in-a-child"]
    assert process.returncode is not None and moto.url is None


def test_moto_server_refuses_a_port_in_use_instead_of_hanging() -> None:
    """A MotoServer asked for a port already taken raises OSError (moto alone would wait forever)."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(OSError, match=re.escape(os.strerror(errno.EADDRINUSE))):
            MotoServer("127.0.0.1", taken.getsockname()[1]).start()


def test_moto_process_exits_when_its_parent_dies() -> None:
    """A MotoProcess child whose parent dies without stopping it exits by itself (it watches its stdin)."""
    code = "import os; from orchestrator.emulator import MotoProcess; m = MotoProcess(); m.start(); print(m.pid, flush=True); os._exit(0)"
    pid = int(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
    assert exits_within(pid, 10.0), f"moto child {pid} outlived its parent"


def exits_within(pid: int, seconds: float) -> bool:
    """Whether process `pid` (not our child) is gone, or a zombie awaiting its reaper, within `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    return False
