"""Retry policies: a playbook's `retry:` mapped onto tenacity, built once per step by the planner.

The first attempt runs outside tenacity (the caller awaits it), so a call that succeeds pays nothing
for the policy; `after` enters the retry machinery only on a failure `retries` accepts, replaying that
first error as its attempt 1. The policy holds no I/O: the run passes its sleep to `after`, so tests
never wait. A server's Retry-After is a floor under the computed wait, up to what the step waits
for: a Retry-After longer than the larger of `max_retry_after` and `max_delay`, or longer than the
run has left before its timeout, fails the attempt at once, not retried, saying so (`refusal`).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt
from tenacity.wait import wait_base, wait_exponential, wait_fixed, wait_random

from orchestrator.errors import ActionError, StepError

if TYPE_CHECKING:
    from orchestrator.model.playbook import RetrySpec

T = TypeVar("T")
Sleep = Callable[[float], Awaitable[Any]]
OnRetry = Callable[[int, float, BaseException], None]


def is_retryable(exc: BaseException) -> bool:
    if not isinstance(exc, Exception):
        return False  # cancellation, KeyboardInterrupt, SystemExit
    if isinstance(exc, StepError):
        return exc.retryable
    return True


@dataclass(frozen=True, slots=True)
class RunDeadline:
    """When the run's timeout passes (on the `time.monotonic` clock), and that timeout."""

    at: float
    seconds: float

    def left(self) -> float:
        return self.at - time.monotonic()


def _secs(seconds: float) -> str:
    return f"{round(seconds, 1):g}s"


class _AtLeastRetryAfter(wait_base):
    """The policy's wait, but never less than the server's Retry-After."""

    def __init__(self, inner: wait_base) -> None:
        self.inner = inner

    def __call__(self, retry_state: RetryCallState) -> float:
        wait = float(self.inner(retry_state))
        outcome = retry_state.outcome
        exc = outcome.exception() if outcome is not None and outcome.failed else None
        retry_after = getattr(exc, "retry_after", None)
        return max(wait, float(retry_after)) if retry_after else wait


@functools.lru_cache(maxsize=256)
def wait_strategy(spec: RetrySpec) -> wait_base:
    """The wait between attempts; stateless, so one per distinct spec serves every step using it."""
    base: wait_base = (
        wait_exponential(multiplier=spec.delay, max=spec.max_delay) if spec.backoff == "exponential" else wait_fixed(spec.delay)
    )
    if spec.jitter and spec.delay > 0:
        base = base + wait_random(0, min(spec.delay, spec.max_delay))
    return _AtLeastRetryAfter(base)


class RetryPolicy:
    """How one step's attempts are retried. Immutable and stateless: one serves every item."""

    __slots__ = ("attempts", "retry_on_status", "spec", "wait")

    def __init__(self, spec: RetrySpec) -> None:
        self.spec = spec
        self.attempts = spec.attempts
        self.retry_on_status = spec.retry_on_status
        self.wait = wait_strategy(spec)

    def __repr__(self) -> str:
        return f"RetryPolicy({self.spec!r})"

    def retries(self, exc: BaseException) -> bool:
        """Whether a first attempt that raised `exc` is tried again."""
        return self.attempts > 1 and is_retryable(exc)

    def refusal(self, exc: BaseException, attempt: int, deadline: RunDeadline | None = None) -> ActionError | None:
        """The error to fail with instead of `exc`, raised by attempt number `attempt`, when the
        server asked for a wait (Retry-After) longer than this step waits: longer than the larger
        of `max_retry_after` and `max_delay`, or than the run has left before its timeout. None
        when the wait is acceptable, or when no attempt would follow anyway."""
        retry_after = getattr(exc, "retry_after", None)
        if not retry_after or attempt >= self.attempts or not is_retryable(exc):
            return None
        spec = self.spec
        bound, name = (spec.max_retry_after, "max_retry_after") if spec.max_retry_after >= spec.max_delay else (spec.max_delay, "max_delay")
        if retry_after > bound:
            why = f"more than this step waits ({name} {_secs(bound)})"
        elif deadline is not None and retry_after > (left := deadline.left()):
            why = f"more than the run has left ({_secs(max(left, 0.0))} of its {_secs(deadline.seconds)} timeout)"
        else:
            return None
        return ActionError(f"{exc}; the server asked to retry after {_secs(retry_after)}, {why}; not retried", retryable=False)

    async def after(
        self, first: BaseException, attempt: Callable[[int], Awaitable[T]], sleep: Sleep, on_retry: OnRetry | None = None,
        deadline: RunDeadline | None = None,
    ) -> tuple[T, int]:
        """Attempts 2 and on, after a first attempt that raised `first` (one `retries` accepts);
        `sleep` waits between them. A failure whose Retry-After is longer than the step waits (see
        `refusal`; `deadline` is the run's) ends them at once."""

        def before_sleep(state: RetryCallState) -> None:
            if on_retry is not None and state.outcome is not None:
                wait = state.next_action.sleep if state.next_action else 0.0
                on_retry(state.attempt_number, wait, state.outcome.exception())  # type: ignore[arg-type]

        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.attempts),
            wait=self.wait,
            retry=retry_if_exception(is_retryable),
            sleep=sleep,
            reraise=True,
            before_sleep=before_sleep,
        )
        async for state in retrying:
            with state:
                n = state.retry_state.attempt_number
                if n == 1:  # replay the failure that brought us here
                    refused = self.refusal(first, 1, deadline)
                    if refused is not None:
                        raise refused from first
                    raise first
                try:
                    return await attempt(n), n
                except Exception as exc:
                    refused = self.refusal(exc, n, deadline)
                    if refused is None:
                        raise
                    raise refused from exc
        raise AssertionError("unreachable: tenacity either returns or re-raises")  # pragma: no cover
