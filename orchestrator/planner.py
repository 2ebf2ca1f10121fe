"""Plan: decide everything once, before any side effect.

Resolves each step's action, kind (declared or inferred) and executor, compiles its templates, finds
its dependencies (``needs`` and ``steps.<id>`` references), orders the graph (cycles are errors),
builds each step's retry policy from the merged defaults, puts its limits in the playbook's one
global order, and lets each action check itself. Every problem is collected and raised together as
a PlaybookError; a dry run is this stage rendered.

The Plan is the run's only input: the engine reads what is decided here, never the Playbook.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from graphlib import CycleError, TopologicalSorter
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from orchestrator.actions.base import Action, PlanContext, Problem
from orchestrator.actions.registry import ActionRegistry, default_registry
from orchestrator.config import Config, load_config
from orchestrator.errors import Diagnostic, PlaybookError
from orchestrator.executors.dask.shipping import importable_modules
from orchestrator.logs import Secrets, get_logger
from orchestrator.model.playbook import AUTO_MAX, LimitSpec, Playbook, RetrySpec, Step
from orchestrator.model.validation import closest, pretty_path
from orchestrator.retry import RetryPolicy
from orchestrator.templates import (
    Template,
    TemplateSyntax,
    Tree,
    compile_template,
    compile_tree,
    global_names,
)

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

    from orchestrator.model.values import Kind

Section = Literal["steps", "rollback", "finally"]
_BASE_NAMES = frozenset({"vars", "env", "steps"})


@dataclass(frozen=True)
class PlannedStep:
    """A step with everything decided: what runs, where, after what, and how it is retried."""

    id: str
    section: Section
    position: int
    #: The step as the playbook wrote it: for showing it, not for running it.
    step: Step
    action: Action
    kind: Kind
    kind_source: Literal["declared", "inferred"]
    executor: str
    needs: tuple[str, ...]
    wave: int | None
    params: Tree
    #: The action's parameters as written, before templates (actions may show or check them).
    raw_params: Any
    with_: Tree | None
    when: Template | bool | None
    for_each: Tree | None
    retry: RetryPolicy
    timeout: float | None
    #: The named limits the step takes, in the playbook's one order for every step (declaration
    #: order of `limits:`), so two steps never wait on each other's limits.
    limits: tuple[str, ...]
    concurrency: int
    on_error: Literal["fail", "continue"]
    #: Whether running the step changes nothing anywhere (`--dry-run=reads` runs such steps).
    read_only: bool
    #: Whether the step's calls leave this process (processes, dask), so its log context is sent along.
    ships_log_context: bool
    #: With `concurrency: auto`: the step's (min_concurrency, max_concurrency) as written (None: the
    #: default); `concurrency` is then the most items in flight, the number of its fan-out's workers.
    auto_concurrency: tuple[int | None, int | None] | None = None

    @property
    def where(self) -> str:
        return f"{self.section}[{self.position}]"


@dataclass(frozen=True)
class Plan:
    """What would run, where, in what order. Immutable; `run` executes it and reads nothing else."""

    #: The playbook as loaded: for showing it, not for running it.
    playbook: Playbook
    config: Config
    vars: Mapping[str, Any]
    steps: tuple[PlannedStep, ...]
    rollback: tuple[PlannedStep, ...] = ()
    finally_: tuple[PlannedStep, ...] = ()
    name: str = ""
    #: The playbook's file, if it was loaded from one.
    path: Path | None = None
    #: The playbook's folder, whose modules `call:` steps import.
    base_dir: Path = field(default_factory=Path.cwd)
    #: The folder to put on `sys.path` while the plan runs (and in worker processes): `base_dir`
    #: when some step is a `call:`, else None, so a stray module there shadows nothing.
    import_path: Path | None = None
    limits: Mapping[str, LimitSpec] = field(default_factory=dict)
    #: Bound on the main steps, in seconds (the playbook's `timeout:`).
    timeout: float | None = None
    #: The ids of the steps whose output some template reads (any section, `when` and `for_each`
    #: included); None when a template may read any step's (``{{ steps }}``).
    outputs_read: frozenset[str] | None = frozenset()
    #: The variables the playbook marks secret (`secrets:`): their values are masked in all it shows.
    secret_vars: tuple[str, ...] = ()
    #: The variables given when planning (`--var`), over the playbook's own: what a resume gives again.
    overrides: Mapping[str, Any] = field(default_factory=dict)
    #: A partial run (`selection.select`): the steps asked for with --only and --skip, and the main
    #: steps left out as a result (they end skipped).
    only: tuple[str, ...] = ()
    skip: tuple[str, ...] = ()
    left_out: frozenset[str] = frozenset()
    _by_id: dict[str, PlannedStep] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        for s in self.all_steps():
            self._by_id[s.id] = s

    def all_steps(self) -> Iterator[PlannedStep]:
        yield from self.steps
        yield from self.rollback
        yield from self.finally_

    def step(self, step_id: str) -> PlannedStep:
        return self._by_id[step_id]

    def secrets(self) -> Secrets:
        """A new set of the secret values known before the run: the values of the `secrets:`
        variables (after overrides) and the credentials steps carry as written (a literal header,
        a URL's userinfo, a program's environment). A run adds what its steps send."""
        found = Secrets(self.vars[name] for name in self.secret_vars if name in self.vars)
        for s in self.all_steps():
            try:
                written = s.action.secrets(s.raw_params)
                for value in written:
                    if "{{" not in value and "{%" not in value:  # a template's source is not its value
                        found.add(value)
            except Exception:  # an action's guess about parameters it could not read
                continue
        return found

    @property
    def waves(self) -> list[list[str]]:
        """Main steps grouped by depth in the dependency graph."""
        out: list[list[str]] = []
        for s in self.steps:
            assert s.wave is not None
            while len(out) <= s.wave:
                out.append([])
            out[s.wave].append(s.id)
        return out


def build_plan(
    playbook: Playbook,
    *,
    vars: Mapping[str, Any] | None = None,
    config: Config | None = None,
    registry: ActionRegistry | None = None,
) -> Plan:
    """Decide how `playbook` runs. Raises PlaybookError listing every static problem."""
    return _Planner(playbook, dict(vars or {}), config or load_config(), registry or default_registry()).build()


class _Planner:
    def __init__(self, playbook: Playbook, overrides: dict[str, Any], config: Config, registry: ActionRegistry) -> None:
        self.pb = playbook
        self.config = config
        self.registry = registry
        self.overrides = overrides
        self.vars = {**playbook.vars, **overrides}
        self.problems: list[Diagnostic] = []
        self.ids = {s.id: section for section, _, s in playbook.all_steps()}

    def problem(self, path: tuple[str | int, ...], message: str, *, key: bool = False) -> None:
        self.problems.append(self.pb.source.diagnostic(path, message, key=key))

    def build(self) -> Plan:
        planned: dict[Section, list[PlannedStep]] = {"steps": [], "rollback": [], "finally": []}
        deps: dict[str, tuple[str, ...]] = {}
        for section, i, step in self.pb.all_steps():
            result = self.step(section, i, step)  # type: ignore[arg-type]
            if result is not None:
                planned[section].append(result)  # type: ignore[index]
                deps[step.id] = result.needs
        waves = self.order(deps, [s.id for s in self.pb.section("steps")])
        for i, name in enumerate(self.pb.secrets):
            if name not in self.vars:
                known = ", ".join(sorted(self.vars)) or "none defined"
                self.problem(("secrets", i), f"secrets[{i}]: {name!r} is not a variable{closest(name, self.vars)}; "
                             f"name a variable of `vars:` or one given with --var (variables: {known})")
        if self.problems:
            raise PlaybookError(self.problems)
        main = tuple(_with_wave(s, waves[s.id]) for s in planned["steps"])
        rollback, finally_ = tuple(planned["rollback"]), tuple(planned["finally"])
        pb = self.pb
        _say_what_ships(pb.base_dir, [s for s in (*main, *rollback, *finally_) if s.executor == "dask"])
        return Plan(
            pb, self.config, self.vars, main, rollback, finally_, name=pb.name, path=pb.path, base_dir=pb.base_dir,
            import_path=pb.base_dir if any(s.action.accepts_with for s in (*main, *rollback, *finally_)) else None,
            limits=dict(pb.limits), timeout=pb.timeout, outputs_read=_outputs_read((*main, *rollback, *finally_)),
            secret_vars=tuple(pb.secrets), overrides=self.overrides,
        )

    def step(self, section: Section, i: int, step: Step) -> PlannedStep | None:
        at: tuple[str | int, ...] = (section, i)
        before = len(self.problems)
        # Read once: each read of these goes through pydantic's private attributes, slow per step.
        name, raw = step.action, step.params
        action = self.registry.get(name)
        syntax: list[tuple[tuple[str | int, ...], str]] = []
        expressions: frozenset[str] = getattr(action, "expressions", frozenset())
        deferred: frozenset[str] = getattr(action, "deferred", frozenset())
        params = compile_tree(
            raw, f"{section}[{i}].{name}", expressions=expressions, deferred=deferred,
            errors=syntax, path=(*at, name),
        )
        with_ = None
        if step.with_ is not None:
            if not action.accepts_with:
                self.problem((*at, "with"), f"{section}[{i}].with: only `call` takes `with`; put {step.action}'s arguments under `{step.action}:`", key=True)
            with_ = compile_tree(step.with_, f"{section}[{i}].with", errors=syntax, path=(*at, "with"))
        when = self.single(step.when, (*at, "when"), f"{section}[{i}].when", syntax)
        for_each = None
        if step.for_each is not None:
            if isinstance(step.for_each, str):
                for_each = compile_tree(step.for_each, f"{section}[{i}].for_each", errors=syntax, path=(*at, "for_each"))
                if for_each.is_static:
                    self.problem((*at, "for_each"), f"{section}[{i}].for_each: expected a list or a template such as \"{{{{ range(3) }}}}\", got {step.for_each!r}")
            else:
                for_each = compile_tree(step.for_each, f"{section}[{i}].for_each", errors=syntax, path=(*at, "for_each"))
        for path, message in syntax:
            self.problem(path, f"{_pretty(path)}: {message}")

        templates = [*params.templates, *(with_.templates if with_ else ()), *(for_each.templates if for_each else ())]
        if isinstance(when, Template):
            templates.append(when)
        self.check_names(step, templates, deferred_names=getattr(action, "deferred_names", frozenset()))
        needs = self.dependencies(section, i, step, templates)

        ctx = PlanContext(self.pb.base_dir, step.id, step.kind, has_templates=bool(templates))
        kind, source = self.kind(action, step, raw, ctx, at)
        spec = self.config.executor_for(kind)
        for p in action.check(raw, replace(ctx, executor=spec.type)):
            self.add(at, step, p)
        for name in step.limits:
            if name not in self.pb.limits:
                known = ", ".join(sorted(self.pb.limits)) or "none defined"
                self.problem((*at, "limit"), f"{section}[{i}].limit: unknown limit {name!r}{closest(name, self.pb.limits)}; limits: {known}")
        if len(self.problems) > before:
            return None
        defaults = self.pb.defaults
        order = list(self.pb.limits)
        return PlannedStep(
            id=step.id, section=section, position=i, step=step, action=action, kind=kind, kind_source=source,
            executor=spec.type, needs=needs, wave=None, params=params, raw_params=raw, with_=with_, when=when,
            for_each=for_each, retry=_retry_policy(defaults.retry, step.retry),
            timeout=step.timeout if step.timeout is not None else defaults.timeout,
            # One global order: a step naming [b, a] takes a before b, as one naming [a, b] does.
            limits=tuple(sorted(set(step.limits), key=order.index)),
            concurrency=_concurrency(step.concurrency, step.max_concurrency, defaults.concurrency),
            on_error=step.on_error or defaults.on_error,
            read_only=step.read_only or action.is_read_only(raw), ships_log_context=spec.crosses_processes,
            auto_concurrency=(step.min_concurrency, step.max_concurrency) if step.concurrency == "auto" else None,
        )

    def add(self, at: tuple[str | int, ...], step: Step, p: Problem) -> None:
        path = (*at, *p.path)
        self.problem(path, f"{_pretty(path)}: {p.message}", key=p.key)

    def single(self, value: Any, path: tuple[str | int, ...], where: str, syntax: list[Any]) -> Template | bool | None:
        if not isinstance(value, str):
            return value  # type: ignore[no-any-return]
        try:
            return compile_template(value, where, expression=True, path=path)
        except TemplateSyntax as exc:
            syntax.append((path, str(exc)))
            return None

    def kind(
        self, action: Action, step: Step, raw: Any, ctx: PlanContext, at: tuple[str | int, ...]
    ) -> tuple[Kind, Literal["declared", "inferred"]]:
        inferred = action.infer_kind(raw, ctx)
        allowed = action.allowed_kinds(raw, ctx)
        if step.kind is None:
            return inferred, "inferred"
        if step.kind not in allowed:
            fits = ", ".join(k for k in ("non-blocking", "blocking", "cpu") if k in allowed)
            self.problem((*at, "kind"), f"{_pretty((*at, 'kind'))}: `{step.action}` here cannot run as {step.kind!r}; it can run as {fits}")
        return step.kind, "declared"

    def check_names(self, step: Step, templates: list[Template], deferred_names: frozenset[str]) -> None:
        if not templates:
            return
        known = _BASE_NAMES | set(self.vars)
        action = step.action
        if step.for_each is not None:
            known |= {"item", "index"}
        for t in templates:
            extra = deferred_names if t.path and len(t.path) > 2 and t.path[2] == action else frozenset()
            in_when = t.path[2:] == ("when",)
            unknown = t.names - (known - {"item", "index"} if in_when else known) - extra
            if unknown:  # Jinja's globals last: a playbook of plain lookups need not import Jinja
                unknown -= global_names()
            for name in sorted(unknown):
                if name in ("item", "index") and in_when:
                    hint = "; `when` is decided once for the whole step, before its items (filter items in `for_each` instead)"
                elif name in ("item", "index"):
                    hint = "; `item` and `index` exist only in a step with `for_each`"
                else:
                    names = set(self.vars) | {"vars", "env", "steps"} | extra
                    hint = closest(name, known | extra) + f"; known names: {', '.join(sorted(names))}"
                self.problem(t.path, f"{_pretty(t.path)}: unknown name {name!r} in {t.source!r}{hint}")

    def dependencies(self, section: Section, i: int, step: Step, templates: list[Template]) -> tuple[str, ...]:
        needs: dict[str, None] = {}
        refs: list[tuple[str, tuple[str | int, ...], str | None]] = [
            (ref, t.path, t.source) for t in templates for ref in sorted(t.refs)
        ]
        refs += [(ref, (section, i, "needs", j), None) for j, ref in enumerate(step.needs)]
        for ref, path, source in refs:
            where = _pretty(path)
            if ref == step.id:
                self.problem(path, f"{where}: step {step.id!r} cannot depend on itself")
            elif ref not in self.ids:
                self.problem(path, f"{where}: unknown step {ref!r}{closest(ref, self.ids)}" + (f" in {source!r}" if source else ""))
            elif section == "steps" and self.ids[ref] != "steps":
                self.problem(path, f"{where}: {ref!r} is a {self.ids[ref]} step; main steps cannot depend on it")
            elif section == "steps":
                needs[ref] = None
        return tuple(needs)

    def order(self, deps: dict[str, tuple[str, ...]], main: list[str]) -> dict[str, int]:
        sorter: TopologicalSorter[str] = TopologicalSorter({k: deps.get(k, ()) for k in main})
        try:
            order = list(sorter.static_order())
        except CycleError as exc:
            cycle: list[str] = exc.args[1]
            first = next(j for j, s in enumerate(self.pb.section("steps")) if s.id == cycle[0])
            self.problem(("steps", first, "id"), f"steps[{first}]: dependency cycle: {' -> '.join(cycle)}; remove one of these references")
            return {}
        waves: dict[str, int] = {}
        for sid in order:
            waves[sid] = 1 + max((waves[d] for d in deps.get(sid, ()) if d in waves), default=-1)
        return waves


def _say_what_ships(folder: Path, on_dask: list[PlannedStep]) -> None:
    """Log which of the playbook's modules a run ships to the Dask workers (docs/scale-out.md)."""
    calls = sorted({str(s.raw_params).partition(":")[0].partition(".")[0] for s in on_dask if s.action.accepts_with})
    if not calls:
        return
    shipped = importable_modules(folder)
    get_logger().info("plan.dask_ships", folder=str(folder), modules=list(shipped),
                      installed=[m for m in calls if m not in shipped],
                      steps=[s.id for s in on_dask if s.action.accepts_with])


def _with_wave(s: PlannedStep, wave: int) -> PlannedStep:
    return replace(s, wave=wave)


def _concurrency(own: int | str | None, most: int | None, default: int) -> int:
    """The most items of a step in flight: its own number, or with `auto` the top of its range."""
    if own == "auto":
        return most or AUTO_MAX
    return own if isinstance(own, int) else default


def _retry_policy(default: RetrySpec, own: RetrySpec | None) -> RetryPolicy:
    spec = default if own is None else default.replace(**{k: getattr(own, k) for k in own.given})
    return RetryPolicy(spec)


def _outputs_read(steps: tuple[PlannedStep, ...]) -> frozenset[str] | None:
    read: set[str] = set()
    for s in steps:
        templates = [*s.params.templates, *(s.with_.templates if s.with_ else ()), *(s.for_each.templates if s.for_each else ())]
        if isinstance(s.when, Template):
            templates.append(s.when)
        for t in templates:
            if t.reads_all_steps:
                return None
            read |= t.refs
    return frozenset(read)


def _pretty(path: tuple[str | int, ...]) -> str:
    return pretty_path(path)
