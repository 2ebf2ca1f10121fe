"""Parameter trees: compiled once, rendered per item to plain values."""

from __future__ import annotations

import pytest

from orchestrator.errors import TemplateError
from orchestrator.templates import Deferred, compile_tree

SCOPE = {"api": "http://127.0.0.1:8080", "item": {"name": "vm-1", "cpus": 2}, "index": 3}


def test_a_lone_expression_keeps_its_type_and_text_is_joined() -> None:
    tree = compile_tree({"cpus": "{{ item.cpus }}", "url": "{{ api }}/v1/vms/{{ item.name }}"}, "step")
    assert tree.render(SCOPE) == {"cpus": 2, "url": "http://127.0.0.1:8080/v1/vms/vm-1"}


def test_keys_keep_their_order_whichever_are_templated() -> None:
    tree = compile_tree({"a": 1, "b": "{{ index }}", "c": "static", "d": ["{{ item.name }}", 5]}, "step")
    rendered = tree.render(SCOPE)
    assert list(rendered) == ["a", "b", "c", "d"]
    assert rendered == {"a": 1, "b": 3, "c": "static", "d": ["vm-1", 5]}


def test_each_render_hands_out_its_own_containers() -> None:
    tree = compile_tree({"url": "{{ api }}", "headers": {"Accept": "application/json"}, "tags": ["a"]}, "step")
    first, second = tree.render(SCOPE), tree.render(SCOPE)
    first["headers"]["Accept"] = "text/plain"
    first["tags"].append("b")
    assert second == {"url": SCOPE["api"], "headers": {"Accept": "application/json"}, "tags": ["a"]}
    assert tree.render(SCOPE)["headers"] == {"Accept": "application/json"}


def test_a_tree_without_templates_renders_as_the_value_itself() -> None:
    value = {"url": "http://127.0.0.1/health", "expect": [200, 204]}
    tree = compile_tree(value, "step")
    assert tree.is_static
    assert tree.render(SCOPE) is value


def test_a_deferred_expression_is_left_for_the_action_with_the_items_scope() -> None:
    tree = compile_tree({"until": "response.status == 200 and index == 3"}, "step", deferred=frozenset({"until"}))
    until = tree.render(SCOPE)["until"]
    assert isinstance(until, Deferred)
    assert until(response={"status": 200}) is True
    assert until(response={"status": 202}) is False


def test_an_unknown_name_fails_the_render_naming_where_it_is() -> None:
    tree = compile_tree({"url": "{{ api }}/v1/{{ missing }}"}, "steps[0].http")
    with pytest.raises(TemplateError, match=r"steps\[0\]\.http\.url: 'missing' is undefined"):
        tree.render(SCOPE)


def test_a_lone_name_missing_from_the_scope_fails_the_same_way() -> None:
    tree = compile_tree({"count": "{{ missing }}"}, "step")
    with pytest.raises(TemplateError, match=r"step\.count: 'missing' is undefined"):
        tree.render(SCOPE)
