"""What the `http` and `wait_until` actions output: ``{status, headers, json, text}``, decoded lazily.

A `Response` is a dict to every reader (templates, the JSON output, ``json.dumps``, pickling to a
worker process, ``==``), but its `headers`, `text` and `json` are decoded from the raw response on
the first read of any of them. A fan-out of thousands of requests whose bodies nothing reads (the
common case for creates and deletes) pays nothing for decoding them; one that reads them pays the
same as before, once.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

_JSON_START = re.compile(r"\s*[\[{]")
_new = dict.__new__  # from_raw skips __init__: one response per request, at thousands a second
_set = dict.__setitem__


class RawHeaders(Protocol):
    """Headers as a client library keeps them: aiohttp's multidict proxy, httpx's Headers, a dict."""

    def items(self) -> Iterable[tuple[str, str]]: ...


def lower_headers(items: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Header names lowercased (as HTTP/2 has them), repeated headers joined with ", "."""
    out: dict[str, str] = {}
    for name, value in items:
        key = name.lower()
        out[key] = f"{out[key]}, {value}" if key in out else value
    return out


def decode(headers: dict[str, str], body: bytes) -> dict[str, Any]:
    """`headers`, `text` (decoded by the declared charset) and `json` (parsed when the body is JSON)."""
    content_type = headers.get("content-type", "")
    charset = "utf-8"
    if "charset=" in content_type:
        charset = content_type.partition("charset=")[2].split(";")[0].strip().strip('"') or "utf-8"
    try:
        text = body.decode(charset, "replace")
    except LookupError:  # an unknown charset name
        text = body.decode("utf-8", "replace")
    data = None
    if text and ("json" in content_type or _JSON_START.match(text)):
        try:
            data = json.loads(text)
        except ValueError:
            data = None
    return {"headers": headers, "json": data, "text": text}


class Response(dict[str, Any]):
    """An HTTP response as a dict ``{status, headers, json, text}``; see the module's docstring.

    Constructed as a dict is (``dataclasses.asdict`` and others rebuild dicts by their type);
    `from_raw` makes one that decodes later.
    """

    # Two slots, not a tuple of the raw parts: every object a kept output holds on to brings the next
    # garbage collection closer, and a fan-out keeps thousands of outputs (bench/http_client.py).
    __slots__ = ("_body", "_headers")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        dict.__init__(self, *args, **kwargs)
        self._headers: RawHeaders | None = None
        self._body = b""

    @classmethod
    def from_raw(cls, status: int, headers: RawHeaders, body: bytes) -> Response:
        """`headers` is the client library's own headers object, read only when the response is
        decoded: no copy is made for a response nothing reads."""
        response = _new(cls)
        _set(response, "status", status)
        response._headers = headers
        response._body = body
        return response

    def _decode(self) -> None:
        headers = self._headers
        if headers is not None:
            self._headers = None
            dict.update(self, decode(lower_headers(headers.items()), self._body))
            self._body = b""

    def __missing__(self, key: str) -> Any:
        if self._headers is None:
            raise KeyError(key)
        self._decode()
        return dict.__getitem__(self, key)

    def __reduce__(self) -> tuple[Callable[..., dict[str, Any]], tuple[dict[str, Any]]]:
        # A plain dict on the other side (a worker process, a deep copy): the raw parts stay here.
        self._decode()
        return dict, (dict(self.items()),)

    def __repr__(self) -> str:
        self._decode()
        return dict.__repr__(self)


def _decoding_first(name: str) -> Callable[..., Any]:
    method = getattr(dict, name)

    def wrapper(self: Response, *args: Any, **kwargs: Any) -> Any:
        if self._headers is not None:
            self._decode()
        return method(self, *args, **kwargs)

    wrapper.__name__ = wrapper.__qualname__ = name
    wrapper.__doc__ = method.__doc__
    return wrapper


# Every dict method that reads more than `status`, or writes, decodes first. C code that copies a
# dict (dict(r), {**r}, f(**r)) goes through keys() and __getitem__ because __iter__ is overridden;
# json.dumps goes through items().
for _name in (
    "__contains__", "__iter__", "__len__", "__eq__", "__ne__", "__or__", "__ror__", "__ior__", "__reversed__",
    "__setitem__", "__delitem__", "get", "keys", "items", "values", "copy", "pop", "popitem", "setdefault",
    "update", "clear",
):
    setattr(Response, _name, _decoding_first(_name))
del _name
