"""Failure is a result: fail-fast cancellation, on_error, rollback, finally, timeouts and retries."""

from __future__ import annotations

from typing import TYPE_CHECKING

import orchestrator

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

H = "tests.engine.steps_helpers"


async def test_a_failed_step_cancels_running_steps_then_rollback_then_finally(plan_of: Callable[..., orchestrator.Plan], tmp_path: Path) -> None:
    """A failure cancels what still runs, skips what has not started, then runs rollback and finally in order."""
    log = tmp_path / "log"
    plan = plan_of(f"""
        name: fail fast
        steps:
          - {{id: long, call: '{H}:slow', with: {{seconds: 30}}}}
          - {{id: broken, call: '{H}:always_fails'}}
          - {{id: after, needs: [broken], set: never}}
        rollback:
          - {{id: undo, call: '{H}:record', with: {{path: "{log}", text: "rollback saw {{{{ steps.broken.status }}}}"}}}}
        finally:
          - {{id: cleanup, call: '{H}:record', with: {{path: "{log}", text: finally}}}}
        """)
    result = await orchestrator.arun(plan)
    assert result.status == "failed" and result.exit_code == 1
    assert result.step("broken").status == "failed" and "ValueError: boom" in str(result.step("broken").error)
    assert result.step("long").status == "cancelled" and result.step("long").error == "cancelled: step 'broken' failed"
    assert result.step("after").status == "cancelled" and result.step("after").error == "not started"
    assert log.read_text() == "rollback saw failed\nfinally\n"
    assert result.duration_s < 10


async def test_on_error_continue_lets_the_run_go_on(plan_of: Callable[..., orchestrator.Plan]) -> None:
    """A step with on_error: continue fails alone; its dependents still run and the run succeeds."""
    plan = plan_of(f"""
        name: tolerant
        steps:
          - {{id: flaky, on_error: continue, call: '{H}:always_fails'}}
          - {{id: next, needs: [flaky], set: "{{{{ steps.flaky.status }}}}"}}
        rollback:
          - {{id: undo, set: x}}
        """)
    result = await orchestrator.arun(plan)
    assert result.status == "succeeded"
    assert result.step("flaky").status == "failed"
    assert result.step("next").output == "failed"
    assert result.step("undo").status == "skipped"  # rollback runs only when the run fails


async def test_when_false_skips_the_step_and_dependents_still_run(plan_of: Callable[..., orchestrator.Plan]) -> None:
    """A false `when` skips the step (output None); a bare expression works like a braced one."""
    plan = plan_of("""
        name: conditional
        vars: {replicas: 0}
        steps:
          - {id: scale, when: "{{ replicas > 0 }}", set: scaled}
          - {id: bare, when: "replicas == 0", set: bare}
          - {id: report, set: "{{ steps.scale.output }}"}
        """)
    result = await orchestrator.arun(plan)
    assert [result.step(s).status for s in ("scale", "bare", "report")] == ["skipped", "succeeded", "succeeded"]
    assert result.step("report").output is None


async def test_timeout_bounds_each_attempt(plan_of: Callable[..., orchestrator.Plan]) -> None:
    """An attempt past its timeout fails with a timeout error; each retry gets the full timeout again."""
    plan = plan_of(f"""
        name: slow
        steps:
          - {{id: hang, timeout: 100ms, retry: {{attempts: 2, delay: 0}}, call: '{H}:slow', with: {{seconds: 5}}}}
        """)
    result = await orchestrator.arun(plan)
    step = result.step("hang")
    assert step.status == "failed" and step.attempts == 2 and step.error == "attempt timed out after 0.1s"
    assert step.duration_s < 2


async def test_retry_waits_follow_the_policy_without_sleeping(plan_of: Callable[..., orchestrator.Plan], tmp_path: Path) -> None:
    """Retries use the policy's backoff; an injected sleep records the waits instead of waiting."""
    waits: list[float] = []

    async def record_sleep(seconds: float) -> None:
        waits.append(seconds)

    plan = plan_of(f"""
        name: retry
        defaults:
          retry: {{attempts: 4, backoff: exponential, delay: 1s, max_delay: 3s, jitter: false}}
        steps:
          - {{id: flaky, on_error: continue, call: '{H}:always_fails'}}  # no fail-fast: `once` must finish
          - {{id: once, retry: 2, call: '{H}:fail_once', with: {{marker: "{tmp_path}/m"}}}}
        """)
    result = await orchestrator.arun(plan, sleep=record_sleep)
    assert result.step("flaky").attempts == 4
    assert result.step("once").status == "succeeded" and result.step("once").attempts == 2
    assert result.step("once").output == "second attempt"
    assert sorted(waits) == [1.0, 1.0, 2.0, 3.0]  # flaky: 1, 2, 3 (capped); once: 1 (defaults merged)


async def test_template_errors_fail_the_step_and_name_the_field(plan_of: Callable[..., orchestrator.Plan]) -> None:
    """An unknown attribute at run time fails the step with the field and the template named."""
    plan = plan_of("""
        name: bad data
        steps:
          - {id: data, set: {a: 1}}
          - {id: use, set: "{{ steps.data.output.b.c }}"}
        """)
    result = await orchestrator.arun(plan)
    error = result.step("use").error
    assert error is not None and "steps[1].set" in error and "steps.data.output.b.c" in error


async def test_a_killed_worker_process_fails_only_its_step(plan_of: Callable[..., orchestrator.Plan]) -> None:
    """A worker process killed mid-step fails that step saying so; a later cpu step still succeeds."""
    plan = plan_of(f"""
        name: crash
        steps:
          - {{id: doomed, kind: cpu, on_error: continue, call: '{H}:die'}}
          - {{id: later, kind: cpu, needs: [doomed], call: '{H}:burn', with: {{ms: 10}}}}
        """)
    result = await orchestrator.arun(plan)
    doomed = result.step("doomed")
    assert doomed.status == "failed"
    assert doomed.error is not None and "worker process" in doomed.error and "SIGKILL" in doomed.error
    assert result.step("later").status == "succeeded"
