"""The `http` output is a dict to every reader, decoded only when something reads past `status`."""

from __future__ import annotations

import copy
import dataclasses
import json
import pickle
from typing import TYPE_CHECKING

from orchestrator.actions.http_response import Response
from orchestrator.templates import compile_template

if TYPE_CHECKING:
    from collections.abc import Iterator

BODY = b'{"id": "vm-1", "tags": ["a"]}'
DECODED = {
    "status": 201,
    "headers": {"content-type": "application/json", "x-request-id": "r-1, r-2"},
    "json": {"id": "vm-1", "tags": ["a"]},
    "text": '{"id": "vm-1", "tags": ["a"]}',
}


class RawHeaders:
    """Headers as a client library keeps them, counting how often they are read."""

    def __init__(self) -> None:
        self.reads = 0

    def items(self) -> Iterator[tuple[str, str]]:
        self.reads += 1
        return iter([("Content-Type", "application/json"), ("X-Request-Id", "r-1"), ("x-request-id", "r-2")])


def response() -> tuple[Response, RawHeaders]:
    raw = RawHeaders()
    return Response.from_raw(201, raw, BODY), raw


def test_status_is_read_without_decoding_anything() -> None:
    r, raw = response()
    assert r["status"] == 201
    assert raw.reads == 0


def test_reading_any_other_key_decodes_once() -> None:
    r, raw = response()
    assert r["json"]["id"] == "vm-1"
    assert r["headers"]["x-request-id"] == "r-1, r-2"
    assert r["text"] == BODY.decode()
    assert raw.reads == 1


def test_it_equals_the_decoded_dict_from_either_side() -> None:
    left, _ = response()
    right, _ = response()
    assert left == DECODED
    assert DECODED == right  # noqa: SIM300 - the plain dict on the left is the point
    assert (response()[0] != DECODED) is False
    assert response()[0] != {**DECODED, "status": 500}


def test_every_dict_view_and_copy_shows_all_four_keys() -> None:
    for read in (dict, lambda r: {**r}, lambda r: dict(r.items()), copy.copy, copy.deepcopy, lambda r: r.copy()):
        r, _ = response()
        assert read(r) == DECODED
    r, _ = response()
    assert len(r) == 4 and sorted(r) == ["headers", "json", "status", "text"] and "json" in r
    r, _ = response()
    assert r.get("text") == DECODED["text"]
    r, _ = response()
    assert list(r.values())[2:] == [DECODED["json"], DECODED["text"]]


def test_it_is_rebuilt_by_its_type_as_any_dict_is() -> None:
    @dataclasses.dataclass
    class Holder:
        output: dict[str, object]

    r, _ = response()
    assert type(r)(r.items()) == DECODED
    assert dataclasses.asdict(Holder(response()[0])) == {"output": DECODED}


def test_json_dumps_writes_the_decoded_response() -> None:
    r, _ = response()
    assert json.loads(json.dumps(r)) == DECODED
    r, _ = response()
    assert json.loads(json.dumps({"output": [r]}, indent=2)) == {"output": [DECODED]}


def test_it_pickles_to_a_plain_dict_for_worker_processes() -> None:
    r, _ = response()
    back = pickle.loads(pickle.dumps(r))
    assert type(back) is dict
    assert back == DECODED


def test_templates_read_it_as_a_mapping() -> None:
    fast = compile_template("{{ r.json.id }}", "test")  # the plain-lookup fast path
    jinja = compile_template("{{ r.json.tags | join(',') }}-{{ r.headers['x-request-id'] }}", "test")
    assert fast.render({"r": response()[0]}) == "vm-1"
    assert jinja.render({"r": response()[0]}) == "a-r-1, r-2"


def test_writes_keep_the_decoded_keys() -> None:
    r, _ = response()
    r["note"] = "kept"
    assert r == {**DECODED, "note": "kept"}


def test_a_body_in_a_declared_charset_is_decoded_by_it() -> None:
    r = Response.from_raw(200, {"Content-Type": "text/plain; charset=latin-1"}, "café".encode("latin-1"))
    assert r["text"] == "café"
    assert r["json"] is None


def test_a_step_results_repr_neither_shows_nor_decodes_its_outputs() -> None:
    """asyncio.run formats the main task's result on the way out (Python 3.11): a repr of every output
    of a large fan-out would decode them all."""
    from orchestrator.engine.results import RunResult, StepResult

    r, raw = response()
    step = StepResult(id="get", kind="non-blocking", executor="asyncio", status="succeeded", output=[r] * 3)
    text = repr(RunResult(run_id="r", playbook="p", status="succeeded", duration_s=0.1, steps=(step,)))
    assert "get" in text and "vm-1" not in text
    assert raw.reads == 0
