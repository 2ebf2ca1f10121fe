"""The set of actions a plan can use. Registries are instances; built-ins register like plugins.

A run imports only the actions its playbook uses: the built-ins are registered by name
(`BUILTINS`, "module:Class") and imported on first `get`. Validating a playbook, or writing the
schema, iterates the registry, which imports them all. Plugins are found under the
``orchestrator.actions`` entry point group; what was found is kept in the validated cache,
keyed by every folder of ``sys.path`` and its modification time (installing or removing a
package changes its folder's), since reading every installed package's metadata costs a
small run a tenth of its time.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Mapping

    from orchestrator.actions.base import Action

ENTRY_POINT_GROUP = "orchestrator.actions"

#: The built-in actions by name, in the order of a step's keys in the schema.
BUILTINS: dict[str, str] = {
    "call": "orchestrator.actions.call:Call",
    "shell": "orchestrator.actions.shell:Shell",
    "http": "orchestrator.actions.http:Http",
    "wait_until": "orchestrator.actions.http:WaitUntil",
    "aws": "orchestrator.actions.aws:Aws",
    "sleep": "orchestrator.actions.basic:Sleep",
    "log": "orchestrator.actions.basic:Log",
    "assert": "orchestrator.actions.basic:Assert",
    "set": "orchestrator.actions.basic:Set",
}


class ActionRegistry:
    """Actions by name. Immutable once built: `with_actions` returns a new registry. `lazy` maps
    names to "module:Class" of actions imported when first used."""

    def __init__(self, actions: Iterable[Action] = (), *, lazy: Mapping[str, str] | None = None) -> None:
        self._actions: dict[str, Action | str] = dict(lazy or {})
        #: "module:Class" of the actions registered by name, kept once they are imported.
        self._specs: dict[str, str] = dict(lazy or {})
        for action in actions:
            if action.name in self._actions:
                raise ValueError(f"two actions named {action.name!r}")
            self._actions[action.name] = action

    def with_actions(self, *actions: Action) -> ActionRegistry:
        replaced = {a.name for a in actions}
        registry = ActionRegistry(actions)
        registry._actions = {**{n: a for n, a in self._actions.items() if n not in replaced}, **registry._actions}
        registry._specs = {n: spec for n, spec in self._specs.items() if n not in replaced}
        return registry

    def get(self, name: str) -> Action:
        entry = self._actions[name]
        if isinstance(entry, str):
            entry = self._actions[name] = _instantiate(name, entry)
        return entry

    def __contains__(self, name: object) -> bool:
        return name in self._actions

    def __iter__(self) -> Iterator[Action]:
        return iter([self.get(name) for name in self._actions])

    def __len__(self) -> int:
        return len(self._actions)

    def names(self) -> list[str]:
        return sorted(self._actions)

    def sources(self) -> list[str]:
        """Where each action (and the type of its value) is defined, without importing a lazy one:
        "name=module:Class", then the files of an imported action's modules. The validated
        cache's key holds them, so a changed plugin validates again."""
        out: list[str] = []
        for name, entry in self._actions.items():
            spec = self._specs.get(name)
            if spec is not None:  # the same before and after the action is imported
                out.append(f"{name}={spec}")
                if not spec.startswith("orchestrator."):  # the package's own files are in the key already
                    found = importlib.util.find_spec(spec.partition(":")[0])
                    out.extend([found.origin] if found is not None and found.origin else [])
                continue
            assert not isinstance(entry, str)
            out.append(f"{name}={type(entry).__module__}:{type(entry).__qualname__}")
            declared = entry.params_type
            for module in (type(entry).__module__, declared.partition(":")[0] if isinstance(declared, str) else ""):
                file = getattr(sys.modules.get(module), "__file__", None)
                if file:
                    out.append(file)
        return out


def _instantiate(name: str, spec: str) -> Action:
    module, _, attr = spec.partition(":")
    action: Action = getattr(importlib.import_module(module), attr)()
    if action.name != name:
        raise ValueError(f"{spec} is registered as {name!r} but names itself {action.name!r}")
    return action


def builtin_actions() -> list[Action]:
    return [_instantiate(name, spec) for name, spec in BUILTINS.items()]


_DEFAULT: ActionRegistry | None = None


def default_registry() -> ActionRegistry:
    """Built-in actions plus those installed under the ``orchestrator.actions`` entry point group."""
    global _DEFAULT
    if _DEFAULT is None:
        plugins = [_load(value)() for value in plugin_entry_points()]
        _DEFAULT = ActionRegistry(lazy=BUILTINS).with_actions(*plugins)
    return _DEFAULT


def plugin_entry_points() -> list[str]:
    """The "module:attr" of each entry point in the group, as importlib.metadata lists them,
    from the validated cache while no folder of ``sys.path`` changed."""
    from orchestrator.model import cache

    stamps = []
    for folder in sys.path:
        try:
            stamps.append(f"{folder}:{os.stat(folder or '.').st_mtime_ns}")
        except OSError:
            stamps.append(f"{folder}:-")
    entry = cache.key("entry-points", ENTRY_POINT_GROUP, "\n".join(stamps))
    found = cache.get(entry)
    if isinstance(found, list) and all(isinstance(v, str) for v in found):
        return found
    from importlib.metadata import entry_points

    values = [ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)]
    cache.put(entry, values)
    return values


def _load(value: str) -> type[Action]:
    """What an entry point's value ("module:attr.sub [extra]") names, as EntryPoint.load does."""
    module, _, attrs = value.partition(":")
    obj = importlib.import_module(module.strip())
    for attr in attrs.split("[")[0].strip().split(".") if attrs.strip() else ():
        obj = getattr(obj, attr)
    return obj  # type: ignore[return-value]
