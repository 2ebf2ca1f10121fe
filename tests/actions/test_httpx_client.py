"""The httpx client layer alone: how each transport failure is classified, with respx in place of
the network. A unit test of one layer (the end-to-end behaviour runs against a real aiohttp server
in test_http.py); respx is the tool here because some failures (a read timeout mid-response, a
redirect loop) are awkward to provoke from a real server on demand."""

from __future__ import annotations

import httpx
import pytest
import respx

from orchestrator.actions.http_client import ClientFailure, HttpxClient
from orchestrator.config import HttpSettings

URL = "http://api.test/v1/things"


async def send(settings: HttpSettings | None = None, timeout: float | None = None) -> dict[str, object]:
    client = HttpxClient(settings or HttpSettings(client="httpx"))
    try:
        return dict(await client.send("GET", URL, None, None, None, timeout))
    finally:
        await client.aclose()


@respx.mock
async def test_a_response_of_any_status_is_returned_not_raised() -> None:
    """HTTP statuses are not failures at this layer: a 503 comes back as a response."""
    respx.get(URL).mock(return_value=httpx.Response(503, json={"error": "busy"}))
    response = await send()
    assert response["status"] == 503 and response["json"] == {"error": "busy"}


@pytest.mark.parametrize(
    ("error", "retryable", "says"),
    [
        (httpx.ConnectError("connection refused"), True, "ConnectError: connection refused"),
        (httpx.RemoteProtocolError("peer closed connection"), True, "RemoteProtocolError"),
        (httpx.ReadTimeout("read timed out"), True, "timed out after 2s"),
        (httpx.TooManyRedirects("redirect loop"), False, "TooManyRedirects: redirect loop"),
        (httpx.UnsupportedProtocol("gopher"), False, "UnsupportedProtocol"),
    ],
    ids=["refused", "dropped", "timeout", "redirect-loop", "bad-scheme"],
)
@respx.mock
async def test_transport_failures_say_whether_another_attempt_may_succeed(
    error: Exception, retryable: bool, says: str
) -> None:
    """Refused or dropped connections and timeouts may succeed on another attempt; a redirect loop
    or an unsupported scheme will not. The message names the failure, never the URL."""
    respx.get(URL).mock(side_effect=error)
    with pytest.raises(ClientFailure) as caught:
        await send(timeout=2)
    assert caught.value.retryable is retryable
    assert says in str(caught.value) and URL not in str(caught.value)


@respx.mock
async def test_a_body_larger_than_the_limit_fails_for_good() -> None:
    """A response over `max_body_bytes` fails without being kept, and is not worth retrying."""
    respx.get(URL).mock(return_value=httpx.Response(200, content=b"x" * 2048))
    with pytest.raises(ClientFailure, match=r"larger than max_body_bytes \(1024 bytes\)") as caught:
        await send(HttpSettings(client="httpx", max_body_bytes=1024))
    assert caught.value.retryable is False
