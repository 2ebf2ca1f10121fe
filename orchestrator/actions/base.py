"""What an action is: a small, typed, registered unit that turns rendered parameters into a call.

An action never schedules anything itself. It says which kinds of work it can be (``kinds``), which
one it is when the playbook does not say (``infer_kind``), what it can check before a run
(``check``), and, at run time, which callable to run with which arguments (``invocation``). The
scheduler sends that callable to the executor the step's kind is configured to use.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from orchestrator.logs import Secrets

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
    from pathlib import Path

    from orchestrator.config import Config, TargetSettings
    from orchestrator.executors.base import Invocation
    from orchestrator.model.values import Kind


@dataclass(frozen=True)
class Problem:
    """A static problem in a step, at a path relative to the step (e.g. ``("http", "url")``)."""

    path: tuple[str | int, ...]
    message: str
    key: bool = False


@dataclass(frozen=True)
class PlanContext:
    """What an action may consult when checking a step before the run."""

    base_dir: Path
    step_id: str
    declared_kind: Kind | None
    has_templates: bool = False
    #: The executor type the step's kind is configured to use ("asyncio", "threads", ...).
    executor: str = ""


@dataclass(frozen=True, slots=True)
class RunEnvironment:
    """What every step of one run may consult: the configuration, where the target answers, and
    the run's clock and sleep (injected by tests, so polling and backoff take no real time)."""

    config: Config
    target: TargetSettings
    sleep: Callable[[float], Awaitable[Any]]
    clock: Callable[[], float]
    #: The run's secret values, masked in everything it emits: an action adds the credentials it
    #: sees (``ctx.env.secrets.add(value)``) and may mask with them (``.mask(text)``).
    secrets: Secrets = field(default_factory=Secrets)
    #: How many times the run's work was undone by `rollback` and started again by a resume: part
    #: of every Idempotency-Key, so a server does not replay the undone work for the new.
    generation: int = 0


@dataclass(slots=True)
class StepContext:
    """What an action may use at run time. One per item attempt; cheap to create."""

    run_id: str
    step_id: str
    index: int | None
    attempt: int
    resources: Resources
    env: RunEnvironment
    #: HTTP statuses the step's retry policy counts as transient failures.
    retry_on_status: tuple[int, ...]
    #: The step's parameters as written, before templates were rendered.
    raw: Any = None


@dataclass
class Resources:
    """Objects shared by every step of one run (HTTP sessions, SDK clients), closed when it ends."""

    objects: dict[str, Any] = field(default_factory=dict)
    closers: list[Callable[[], Any]] = field(default_factory=list)

    def get(self, key: str, create: Callable[..., Any], *args: Any, close: Callable[[Any], Any] | None = None) -> Any:
        """The shared object under `key`, made by ``create(*args)`` on first use (on the event loop
        thread). The arguments, not a closure over them, so a hit allocates nothing."""
        try:
            return self.objects[key]
        except KeyError:
            obj = create(*args)
            self.objects[key] = obj
            if close is not None:
                self.closers.append(lambda: close(obj))
            return obj

    async def aclose(self) -> None:
        closers, self.closers = self.closers[::-1], []
        self.objects.clear()
        for closer in closers:
            result = closer()
            if hasattr(result, "__await__"):
                await result


class Action:
    """Base of every action. Subclasses set the class attributes and implement `invocation`."""

    name: ClassVar[str]
    #: The type of the value under the action's key, validated with pydantic (shorthands included);
    #: or "module:Name" naming it, imported only when a playbook is validated, so that a run from
    #: the validated cache imports no validator (the built-ins' are in `actions/params.py`).
    params_type: ClassVar[Any]
    kinds: ClassVar[frozenset[Kind]] = frozenset({"non-blocking"})
    default_kind: ClassVar[Kind] = "non-blocking"
    accepts_with: ClassVar[bool] = False

    @property
    def summary(self) -> str:
        """The first line of the action's docstring: the JSON Schema's description of its key."""
        return (type(self).__doc__ or "").strip().split("\n")[0]

    def infer_kind(self, params: Any, ctx: PlanContext) -> Kind:
        """The kind when the step declares none. Must not raise: `check` reports problems."""
        return self.default_kind

    def allowed_kinds(self, params: Any, ctx: PlanContext) -> frozenset[Kind]:
        return self.kinds

    def check(self, params: Any, ctx: PlanContext) -> Sequence[Problem]:
        """Problems that can be found without side effects. The default finds none."""
        return ()

    def is_read_only(self, params: Any) -> bool:
        """Whether running the step changes nothing anywhere (used by ``--dry-run=reads``)."""
        return False

    def secrets(self, params: Any) -> Iterable[str]:
        """The credentials the step's parameters carry (a header, a URL's userinfo, a variable of a
        program's environment), to be masked in everything the run emits. Called with the
        parameters as written (template sources included) before the run, and rendered in a dry
        run; the action adds what it sees at run time itself. The default: none."""
        return ()

    def invocation(self, params: Any, with_: Mapping[str, Any] | None, ctx: StepContext) -> Invocation:
        raise NotImplementedError
