"""Safe YAML with a line and column kept for every node, and bounded refusal of hostile input.

`load_yaml` turns text into plain Python values and a `SourceMap` that locates each value (and each
mapping key) by its path, e.g. ``("steps", 2, "retry", "attempts")``. Later stages report errors by
path; the source map turns a path into ``FILE:LINE:COL``. `read_source` (`model/input_file.py`)
reads an input file.

Every input file (playbook, ``--config``, ``--var @FILE``) passes the same limits, each refused
cheaply with a located error (``docs/playbook.md``, "Limits on input"):

- a regular file (not a directory, FIFO or device) of at most `MAX_FILE_BYTES`, checked before
  reading it, and UTF-8;
- no value nested deeper than `MAX_DEPTH`, at most `MAX_NODES` values in all;
- aliases standing for at most `MAX_ALIAS_NODES` values in all, and none that contains itself.
  Composition shares an anchored node between its uses, so the composed graph stays small however
  far it would expand; its weight (1 + its children's weights) is computed once per node before
  any value is built ("billion laughs" costs microseconds, not gigabytes);
- only the standard tags of plain values: ``!!str``, ``!!int``, ``!!float``, ``!!bool``,
  ``!!null``, ``!!timestamp``, ``!!binary`` on scalars, ``!!seq`` and ``!!map`` on collections.
  ``<<`` merge keys are refused with what to write instead.
"""

from __future__ import annotations

from itertools import chain
from typing import TYPE_CHECKING, Any

import yaml

from orchestrator.errors import Diagnostic
from orchestrator.model.input_file import LIMIT, MAX_FILE_BYTES, YamlError
from orchestrator.model.source_map import Path, SourceMap

__all__ = ["MAX_ALIAS_NODES", "MAX_DEPTH", "MAX_FILE_BYTES", "MAX_NODES", "SourceMap", "YamlError", "load_yaml"]

if TYPE_CHECKING:
    from collections.abc import Iterator

try:  # the C composer keeps marks too and is ~10x faster on large playbooks
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover - PyYAML built without libyaml
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]


#: Most values (scalars, lists and mappings, aliases expanded) in one document.
MAX_NODES = 1_000_000
#: Most values all the aliases of one document may stand for together ("billion laughs").
MAX_ALIAS_NODES = 100_000
#: Deepest nesting of lists and mappings (aliases expanded); libyaml stops at 1,000 on its own.
MAX_DEPTH = 100

_STD = "tag:yaml.org,2002:"
_SEQ = _STD + "seq"
_MAP = _STD + "map"
_MERGE = _STD + "merge"
_VALUE = _STD + "value"
_SCALAR_TAGS = frozenset(_STD + t for t in ("str", "int", "float", "bool", "null", "timestamp", "binary"))
_NO_TAGS = (
    "tag not allowed: remove it (only plain YAML values are read: strings, numbers, booleans, null, lists and mappings)"
)
_NO_MERGE = (
    "merge keys (`<<`) are not supported: write the keys out, reuse a whole value with an alias "
    "(`retry: *standard_retry`), or put what every step shares under `defaults:`"
)
def load_yaml(text: str, file: str) -> tuple[Any, SourceMap]:
    """Parse one YAML document safely. Raises YamlError with every problem located."""
    if len(text) > MAX_FILE_BYTES:
        raise YamlError([Diagnostic(file, 1, 1, f"document over the {LIMIT} limit on input")])
    try:
        node = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        if exc.context_mark is not None and "end of stream" in (exc.problem or ""):
            mark = exc.context_mark  # an unclosed quote or bracket: point where it opened
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        what = " ".join(p for p in (exc.context, exc.problem) if p)
        raise YamlError([Diagnostic(file, line, col, f"YAML syntax error: {what}; fix the YAML syntax")], syntax=True) from None
    except yaml.YAMLError as exc:
        raise YamlError([Diagnostic(file, 1, 1, f"YAML error: {exc}")], syntax=True) from None
    except RecursionError:  # pragma: no cover - only the pure-Python composer recurses without a limit
        raise YamlError([Diagnostic(file, 1, 1, f"nested more than {MAX_DEPTH} levels deep")]) from None
    smap = SourceMap(file)
    if node is None:
        return None, smap
    if _may_hold(text, "*") and _may_hold(text, "&"):  # an alias, and so an anchor
        _check_aliases(node, text, file)
    builder = _Builder(smap)
    value = builder.build(node, ())
    if builder.problems:
        raise YamlError(builder.problems)
    return value, smap


def _may_hold(text: str, mark: str) -> bool:
    """Whether `text` may hold an alias (`mark` "*") or an anchor ("&"): the mark where a token can
    start (the start of the text, after blank space or a flow indicator) and before a name
    character. libyaml's names are [0-9A-Za-z_-]; `isalnum` is wider, which only costs a check.
    A text without both skips the alias check; most have neither mark, and pay one `find` each."""
    at = text.find(mark)
    while at >= 0:
        before = text[at - 1] if at else " "
        after = text[at + 1 : at + 2]
        if (before.isspace() or before in "[{,:?\ufeff") and after and (after.isalnum() or after in "_-"):
            return True
        at = text.find(mark, at + 1)
    return False


def _check_aliases(root: yaml.Node, text: str, file: str) -> None:
    """Refuse a recursive alias, aliases standing for more than MAX_ALIAS_NODES values together, or
    an alias nesting values deeper than MAX_DEPTH, at the alias that does it, before any value is built.

    One walk of the composed graph in document order, each node entered once: a node met again is
    an alias use (composition hands every use the anchored node itself), and costs the weight of
    that node, 1 + its children's weights, known since the node was left, as is its height."""
    done: dict[int, tuple[int, int]] = {}  # weight and height of the nodes left, by id (all stay alive)
    inside: set[int] = set()  # nodes entered and not yet left: an alias to one is recursive
    stack: list[tuple[yaml.Node, Iterator[yaml.Node], list[int]]] = []  # [weight, tallest child]
    uses = expanded = 0

    def enter(node: yaml.Node) -> None:
        children = chain.from_iterable(node.value) if isinstance(node, yaml.MappingNode) else iter(node.value)
        inside.add(id(node))
        stack.append((node, children, [1, 0]))

    def refuse(node: yaml.Node, message: str) -> YamlError:
        line, col, name = _alias_use(text, uses, node)
        return YamlError([Diagnostic(file, line, col, message.replace("NAME", name))])

    enter(root)
    while stack:
        node, children, acc = stack[-1]
        child = next(children, None)
        if child is None:
            stack.pop()
            inside.discard(id(node))
            done[id(node)] = (acc[0], acc[1] + 1)
            if stack:
                parent = stack[-1][2]
                parent[0] += acc[0]
                parent[1] = max(parent[1], acc[1] + 1)
            continue
        key = id(child)
        if key in done:
            w, h = done[key]
            expanded += w
            if expanded > MAX_ALIAS_NODES:
                raise refuse(child, (
                    f"alias *NAME stands for {w:,} values, taking this document's aliases over the limit of "
                    f"{MAX_ALIAS_NODES:,} values (an alias bomb?); write the values out, or use fewer aliases"
                ))
            if len(stack) + h > MAX_DEPTH:
                raise refuse(child, f"alias *NAME nests values more than {MAX_DEPTH} levels deep")
            uses += 1
            acc[0] += w
            acc[1] = max(acc[1], h)
        elif key in inside:
            raise refuse(child, (
                "recursive alias *NAME: it is used inside the value it names, which would contain itself "
                "without end; use the alias outside that value"
            ))
        elif isinstance(child, yaml.ScalarNode):
            done[key] = (1, 0)
            acc[0] += 1
        else:
            enter(child)


def _alias_use(text: str, index: int, node: yaml.Node) -> tuple[int, int, str]:
    """Line, column and anchor name of the `index`-th alias use of `text` (from 0), in document order.

    Composition keeps no mark of an alias (each use is the anchored node itself), so the events
    are read again, up to that alias: only ever on the way to refusing."""
    seen = 0
    for event in yaml.parse(text, Loader=_Loader):
        if isinstance(event, yaml.AliasEvent):
            if seen == index and event.start_mark is not None:
                return event.start_mark.line + 1, event.start_mark.column + 1, str(event.anchor)
            seen += 1
    return node.start_mark.line + 1, node.start_mark.column + 1, "?"  # pragma: no cover - every use is an event


def _problem(exc: yaml.YAMLError) -> str:
    """The one-line reason of a YAML error, without PyYAML's multi-line location text."""
    text = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    return str(text)


def _tag(tag: str) -> str:
    """A tag as it is written: ``!!python/object`` for ``tag:yaml.org,2002:python/object``."""
    return "!!" + tag[len(_STD):] if tag.startswith(_STD) else tag


def _scalar_problem(node: yaml.ScalarNode, exc: yaml.YAMLError, what: str) -> str:
    """Why a scalar (a mapping key when `what` is "key") could not be read."""
    if node.tag == _MERGE and what == "key":
        return _NO_MERGE
    if node.tag in (_MERGE, _VALUE) and not node.style and node.value in ("<<", "="):
        return f"bad {what}: a plain {node.value} has a meaning of its own in YAML; quote it ('{node.value}') to mean the text"
    if node.tag not in _SCALAR_TAGS:
        return f"bad {what}: could not determine a constructor for the tag {_tag(node.tag)!r}; {_NO_TAGS}"
    return f"bad {what}: {_problem(exc)}"


class _Builder:
    def __init__(self, smap: SourceMap) -> None:
        self.smap = smap
        self.problems: list[Diagnostic] = []
        self.count = 0
        self.scalars = yaml.constructor.SafeConstructor()

    def _here(self, node: yaml.Node) -> tuple[int, int]:
        return node.start_mark.line + 1, node.start_mark.column + 1

    def build(self, node: yaml.Node, path: Path) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            raise YamlError([Diagnostic(self.smap.file, *self._here(node), f"more than {MAX_NODES:,} values in one document")])
        self.smap.values.setdefault(path, self._here(node))
        if isinstance(node, yaml.ScalarNode):
            try:
                return self.scalars.construct_object(node)
            except yaml.YAMLError as exc:
                self.problems.append(Diagnostic(self.smap.file, *self._here(node), _scalar_problem(node, exc, "value")))
                return None
        if len(path) >= MAX_DEPTH:
            raise YamlError([Diagnostic(self.smap.file, *self._here(node), f"nested more than {MAX_DEPTH} levels deep")])
        if isinstance(node, yaml.SequenceNode):
            if node.tag != _SEQ:
                return self._tagged(node)
            return [self.build(child, (*path, i)) for i, child in enumerate(node.value)]
        if isinstance(node, yaml.MappingNode):
            if node.tag != _MAP:
                return self._tagged(node)
            return self._mapping(node, path)
        return None  # pragma: no cover - compose yields only the three node kinds

    def _tagged(self, node: yaml.Node) -> None:
        message = f"bad value: could not determine a constructor for the tag {_tag(node.tag)!r}; {_NO_TAGS}"
        self.problems.append(Diagnostic(self.smap.file, *self._here(node), message))

    def _mapping(self, node: yaml.MappingNode, path: Path) -> dict[Any, Any]:
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                self.problems.append(
                    Diagnostic(self.smap.file, *self._here(key_node), "mapping keys must be plain scalars")
                )
                continue
            try:
                key = self.scalars.construct_object(key_node)
            except yaml.YAMLError as exc:
                self.problems.append(Diagnostic(self.smap.file, *self._here(key_node), _scalar_problem(key_node, exc, "key")))
                continue
            if not isinstance(key, str | int) or isinstance(key, bool):
                key = str(key)
            if key in out:
                self.problems.append(
                    Diagnostic(self.smap.file, *self._here(key_node), f"duplicate key {key!r}; remove one of them")
                )
                continue
            self.smap.keys[(*path, key)] = self._here(key_node)
            out[key] = self.build(value_node, (*path, key))
        return out
