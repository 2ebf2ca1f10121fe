"""What a run leaves behind: immutable results. Failures are results, not exceptions."""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from orchestrator.errors import OrchestratorError

if TYPE_CHECKING:
    from orchestrator.engine.advisor import Advice
    from orchestrator.engine.timeline import Timeline
    from orchestrator.logs import Secrets

StepStatus = Literal["succeeded", "failed", "skipped", "cancelled", "planned"]
# `planned` steps are those a dry run did not run: they hold what they would have sent.
RunStatus = Literal["succeeded", "failed", "interrupted", "planned"]


@dataclass(frozen=True, slots=True)
class StepResult:
    """How one step ended."""

    id: str
    kind: str
    executor: str
    status: StepStatus
    attempts: int = 0
    duration_s: float = 0.0
    error: str | None = None
    # Out of the repr: asyncio.run (3.11) formats the main task's result when it restores SIGINT,
    # and a repr of 100,000 outputs (each decoded) would cost seconds.
    output: Any = field(default=None, repr=False)
    section: str = "steps"
    #: For a `for_each` step: how many items ran, and how many of them failed.
    items: int | None = None
    items_failed: int = 0
    #: Attempts beyond the first, over all items.
    retries: int = 0
    #: For a step a dry run did not run: the request(s) it would send, rendered as far as known.
    planned: Any = field(default=None, repr=False)
    #: Of a resumed run: the step succeeded before and was not run again (its result is the record's).
    resumed: bool = False
    #: Of a resumed run's `for_each` step: items that had succeeded before and were not run again.
    items_resumed: int = 0
    #: When the step started and ended (Unix time), None if it never started (skipped, not reached).
    started_at: float | None = None
    ended_at: float | None = None
    #: With `concurrency: auto`: the concurrency the step's own adaptive limit settled on.
    concurrency: int | None = None
    #: The concurrency each adaptive named limit the step takes had settled on when it ended.
    limit_concurrency: tuple[tuple[str, int | None], ...] = ()

    @property
    def ok(self) -> bool:
        return self.status in ("succeeded", "skipped", "planned")

    def masked(self, secrets: Secrets) -> StepResult:
        """This result with `secrets` masked in what it shows (its error and planned request); itself
        when they show none. The output is left as it is: it is data for later steps, never shown."""
        if not secrets or (self.error is None and self.planned is None):
            return self
        error = secrets.mask(self.error) if self.error is not None else None
        planned = secrets.mask_value(self.planned) if self.planned is not None else None
        if error == self.error and planned == self.planned:
            return self
        return replace(self, error=error, planned=planned)

    def summary(self) -> dict[str, Any]:
        """The step as the JSON contract shows it (output left out: it can be large)."""
        # Field by field: asdict() would deep-copy every output only for it to be dropped here.
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in _NOT_SUMMARISED}
        out["duration_s"] = round(self.duration_s, 4)
        out["started_at"], out["ended_at"] = iso(self.started_at), iso(self.ended_at)
        if self.resumed:
            out["resumed"] = True
        if self.items_resumed:
            out["items_resumed"] = self.items_resumed
        if self.concurrency is not None:
            out["concurrency"] = self.concurrency
        if self.limit_concurrency:
            out["limit_concurrency"] = dict(self.limit_concurrency)
        if self.status == "planned":
            out["request"] = self.planned
        return out


# Left out of a step's summary: large (output, planned), or shown only when they say something.
_NOT_SUMMARISED = ("output", "planned", "resumed", "items_resumed", "concurrency", "limit_concurrency")


def iso(ts: float | None) -> str | None:
    """Unix time as ISO 8601 in UTC (``2024-05-01T12:00:00.123456Z``); None stays None."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


class RunFailed(OrchestratorError):
    """Raised by `RunResult.raise_on_error()` for a run that did not succeed."""

    def __init__(self, result: RunResult) -> None:
        failed = [s for s in result.steps if s.status == "failed"]
        detail = "; ".join(f"{s.id}: {s.error}" for s in failed[:3])
        super().__init__(f"run {result.status}" + (f": {detail}" if detail else ""))
        self.result = result
        self.exit_code = result.exit_code


@dataclass(frozen=True)
class RunResult:
    """How a run ended, with every step's result in the order the playbook lists them."""

    run_id: str
    playbook: str
    status: RunStatus
    duration_s: float
    steps: tuple[StepResult, ...] = field(default_factory=tuple)
    path: str | None = None
    #: Of a partial run (--only, --skip): the main steps it left out, in playbook order.
    left_out: tuple[str, ...] = ()
    #: When the run started and ended (Unix time).
    started_at: float | None = None
    ended_at: float | None = None
    #: What the tag advisor found (`engine/advisor.py`); empty when all is well.
    advice: tuple[Advice, ...] = ()
    #: What the run recorded as it went (`engine/timeline.py`), for the history and exporters.
    timeline: Timeline | None = field(default=None, repr=False, compare=False)

    @property
    def ok(self) -> bool:
        return self.status in ("succeeded", "planned")

    @property
    def exit_code(self) -> int:
        """0 succeeded (or planned), 1 a step failed, 130 interrupted."""
        return {"succeeded": 0, "planned": 0, "failed": 1, "interrupted": 130}[self.status]

    def step(self, step_id: str) -> StepResult:
        for s in self.steps:
            if s.id == step_id:
                return s
        raise KeyError(step_id)

    def outputs(self) -> dict[str, Any]:
        return {s.id: s.output for s in self.steps}

    def masked(self, secrets: Secrets) -> RunResult:
        """This result with `secrets` masked in every step's error and planned request."""
        if not secrets:
            return self
        steps = tuple(s.masked(secrets) for s in self.steps)
        if all(a is b for a, b in zip(steps, self.steps, strict=True)):
            return self
        return replace(self, steps=steps)

    def raise_on_error(self) -> RunResult:
        """Return self if the run succeeded, else raise RunFailed."""
        if not self.ok:
            raise RunFailed(self)
        return self

    def summary(self) -> dict[str, Any]:
        """The run as ``--format json`` prints it."""
        return {
            "run_id": self.run_id,
            "playbook": self.playbook,
            "status": self.status,
            "duration_s": round(self.duration_s, 4),
            "steps": [s.summary() for s in self.steps],
            **({"left_out": list(self.left_out)} if self.left_out else {}),
            "started_at": iso(self.started_at),
            "ended_at": iso(self.ended_at),
            "advice": [a.summary() for a in self.advice],
        }
