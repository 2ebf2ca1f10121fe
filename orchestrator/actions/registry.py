"""The set of actions a plan can use. Registries are instances; built-ins register like plugins."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from orchestrator.actions.base import Action

ENTRY_POINT_GROUP = "orchestrator.actions"


class ActionRegistry:
    """Actions by name. Immutable once built: `with_actions` returns a new registry."""

    def __init__(self, actions: Iterable[Action] = ()) -> None:
        self._actions: dict[str, Action] = {}
        for action in actions:
            if action.name in self._actions:
                raise ValueError(f"two actions named {action.name!r}")
            self._actions[action.name] = action

    def with_actions(self, *actions: Action) -> ActionRegistry:
        return ActionRegistry([*(a for a in self._actions.values() if a.name not in {b.name for b in actions}), *actions])

    def get(self, name: str) -> Action:
        return self._actions[name]

    def __contains__(self, name: object) -> bool:
        return name in self._actions

    def __iter__(self) -> Iterator[Action]:
        return iter(self._actions.values())

    def __len__(self) -> int:
        return len(self._actions)

    def names(self) -> list[str]:
        return sorted(self._actions)


def builtin_actions() -> list[Action]:
    from orchestrator.actions import aws, basic, call, http, shell

    return [
        call.Call(),
        shell.Shell(),
        http.Http(),
        http.WaitUntil(),
        aws.Aws(),
        basic.Sleep(),
        basic.Log(),
        basic.Assert(),
        basic.Set(),
    ]


_DEFAULT: ActionRegistry | None = None


def default_registry() -> ActionRegistry:
    """Built-in actions plus those installed under the ``orchestrator.actions`` entry point group."""
    global _DEFAULT
    if _DEFAULT is None:
        # Imported on first use: finding the plugins reads every installed package's metadata.
        from importlib.metadata import entry_points

        plugins = [ep.load()() for ep in entry_points(group=ENTRY_POINT_GROUP)]
        _DEFAULT = ActionRegistry(builtin_actions()).with_actions(*plugins)
    return _DEFAULT
