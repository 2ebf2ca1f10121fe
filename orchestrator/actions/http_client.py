"""The pooled HTTP client behind `http` and `wait_until`: one interface, two implementations.

    HttpClient (protocol)      send(method, url, headers, params, content, timeout) -> response dict
    ├── AiohttpClient          the default: measured fastest here (bench/http_client.py)
    └── HttpxClient            adds HTTP/2

A run has one client, created on first use on the event loop by `client_for` and kept in the run's
resources (closed when the run ends); `config.http` sets its pool. aiohttp and httpx are imported
there, so importing orchestrator or planning a playbook never imports them.

An HTTP status is never an error at this layer: the response dict is ``{status, headers, json,
text}`` whatever the status. What fails below HTTP raises ClientFailure, which says whether another
attempt may succeed: refused or dropped connections and timeouts may; a malformed URL, a TLS
certificate problem or a body over ``max_body_bytes`` will not.
"""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Awaitable, Mapping
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any, Protocol

from orchestrator.actions.http_response import Response
from orchestrator.actions.proxies import ProxyRoutes

if TYPE_CHECKING:
    from orchestrator.actions.base import StepContext
    from orchestrator.config import HttpSettings

Headers = Mapping[str, str] | None
Query = list[tuple[str, str]] | None


class ClientFailure(Exception):
    """A request that got no usable HTTP response. The message never contains the URL."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


class HttpClient(Protocol):
    """One pooled client, shared by every HTTP step of a run."""

    async def send(
        self, method: str, url: str, headers: Headers, params: Query, content: bytes | None, timeout: float | None
    ) -> Response:
        """Send one request; return ``{status, headers, json, text}`` or raise ClientFailure."""
        ...

    async def aclose(self) -> None: ...


def client_for(ctx: StepContext) -> HttpClient:
    """The run's client of the configured type, created on first use."""
    settings = ctx.env.config.http
    return ctx.resources.get(_KEYS[settings.client], open_client, settings, close=_close)  # type: ignore[no-any-return]


_KEYS = {"aiohttp": "http:aiohttp", "httpx": "http:httpx"}


def open_client(settings: HttpSettings) -> HttpClient:
    """A new client as `settings` describe it. Call on the event loop (aiohttp binds to it)."""
    return HttpxClient(settings) if settings.client == "httpx" else AiohttpClient(settings)


def _close(client: HttpClient) -> Awaitable[None]:
    return client.aclose()


def retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds a Retry-After header asks for: integer (or decimal) seconds, or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    return max(0.0, seconds) if seconds == seconds else None  # NaN is no answer


def _too_large(limit: int) -> ClientFailure:
    return ClientFailure(f"response body larger than max_body_bytes ({limit} bytes)", retryable=False)


class AiohttpClient:
    """aiohttp.ClientSession on a TCPConnector sized by `config.http`."""

    def __init__(self, settings: HttpSettings) -> None:
        import aiohttp

        self.limit = settings.max_body_bytes
        connector = aiohttp.TCPConnector(
            limit=settings.max_connections,
            limit_per_host=settings.max_connections_per_host,
            ssl=settings.verify_tls,
        )
        self.session = aiohttp.ClientSession(connector=connector)
        self._proxies = ProxyRoutes.from_env() if settings.trust_env else None  # None: no proxy set
        self._timeouts: dict[float, aiohttp.ClientTimeout] = {}
        self._timeout_type = aiohttp.ClientTimeout
        # Classified once: most specific first, as the except clauses below test them in order.
        self._fatal: tuple[type[BaseException], ...] = (
            aiohttp.InvalidURL, aiohttp.NonHttpUrlClientError, aiohttp.TooManyRedirects,
            aiohttp.ClientConnectorCertificateError, aiohttp.ClientSSLError,
        )
        self._transient: tuple[type[BaseException], ...] = (aiohttp.ClientError,)

    async def send(
        self, method: str, url: str, headers: Headers, params: Query, content: bytes | None, timeout: float | None
    ) -> Response:
        try:
            if self._proxies is not None and (route := self._proxies.route(url)) is not None:
                proxy, auth = route
                options: dict[str, Any] = {"proxy": proxy}
                if auth is not None:  # a tunnel's CONNECT carries it; a plain request, itself
                    if url.startswith("https:"):
                        options["proxy_headers"] = {"Proxy-Authorization": auth}
                    else:
                        headers = {**(headers or {}), "Proxy-Authorization": auth}
                if timeout is not None:
                    options["timeout"] = self._timeout(timeout)
                request = self.session.request(method, url, headers=headers, params=params, data=content, **options)
            elif timeout is not None:  # passing timeout=None to aiohttp would mean "no timeout at all"
                request = self.session.request(
                    method, url, headers=headers, params=params, data=content, timeout=self._timeout(timeout)
                )
            elif headers is None and params is None and content is None:
                request = self.session.request(method, url)  # most GETs: no keywords for aiohttp to bind
            else:
                request = self.session.request(method, url, headers=headers, params=params, data=content)
            # Awaited, not `async with`: the context manager costs five coroutines per request, and
            # its release() a microsecond more. A body read to the end has released the connection
            # already (aiohttp's end-of-payload handling); any other exit releases it here.
            resp = await request
            try:
                if method == "HEAD":
                    body = b""
                else:
                    length = resp.content_length
                    if length is not None:
                        if length > self.limit:
                            raise _too_large(self.limit)
                        body = await resp.read()
                        if len(body) > self.limit:  # decompressed beyond the limit
                            raise _too_large(self.limit)
                    else:
                        body = await self._stream(resp)
            except BaseException:
                resp.release()
                raise
            if not resp.closed:
                resp.release()
            return Response.from_raw(resp.status, resp.headers, body)
        except ClientFailure:
            raise
        except TimeoutError:
            raise ClientFailure(f"timed out{_after(timeout)}", retryable=True) from None
        except self._fatal as exc:
            raise ClientFailure(_describe(exc), retryable=False) from None
        except self._transient as exc:
            raise ClientFailure(_describe(exc), retryable=True) from None
        except (ValueError, TypeError) as exc:  # a request aiohttp refuses to build
            raise ClientFailure(_describe(exc), retryable=False) from None

    async def _stream(self, resp: Any) -> bytes:
        chunks: list[bytes] = []
        size = 0
        async for chunk in resp.content.iter_any():
            size += len(chunk)
            if size > self.limit:
                raise _too_large(self.limit)
            chunks.append(chunk)
        return b"".join(chunks)

    def _timeout(self, seconds: float) -> Any:
        timeout = self._timeouts.get(seconds)
        if timeout is None:
            if len(self._timeouts) > 256:  # per-item timeouts from templates: keep the cache bounded
                self._timeouts.clear()
            timeout = self._timeouts[seconds] = self._timeout_type(total=seconds)
        return timeout

    async def aclose(self) -> None:
        await self.session.close()


class HttpxClient:
    """httpx.AsyncClient with a connection pool sized by `config.http`; HTTP/2 when asked."""

    def __init__(self, settings: HttpSettings) -> None:
        import httpx

        if settings.http2 and importlib.util.find_spec("h2") is None:
            raise ClientFailure("config http.http2 needs the h2 package: pip install 'httpx[http2]'", retryable=False)
        self.limit = settings.max_body_bytes
        self.client = httpx.AsyncClient(
            limits=httpx.Limits(max_connections=settings.max_connections, max_keepalive_connections=settings.max_connections),
            http2=settings.http2,
            verify=settings.verify_tls,
            # The same defaults as aiohttp's, so switching clients changes no behaviour.
            timeout=httpx.Timeout(300.0, connect=30.0),
            follow_redirects=True,
            trust_env=settings.trust_env,
            # Loopback is never proxied, as with the aiohttp client.
            mounts={"all://localhost": None, "all://127.0.0.1": None, "all://[::1]": None} if settings.trust_env else None,
        )
        self._default = httpx.USE_CLIENT_DEFAULT
        self._timeout_error = httpx.TimeoutException
        self._fatal: tuple[type[BaseException], ...] = (httpx.InvalidURL, httpx.UnsupportedProtocol, httpx.TooManyRedirects)
        self._transient: tuple[type[BaseException], ...] = (httpx.HTTPError,)

    async def send(
        self, method: str, url: str, headers: Headers, params: Query, content: bytes | None, timeout: float | None
    ) -> Response:
        try:
            request = self.client.build_request(
                method, url, headers=headers, params=params, content=content,  # type: ignore[arg-type]
                timeout=self._default if timeout is None else timeout,
            )
            response = await self.client.send(request, stream=True)
            try:
                body = await self._read(response)  # a HEAD's empty one too: h11 must see it end to reuse the connection
            finally:
                await response.aclose()
            return Response.from_raw(response.status_code, response.headers, body)
        except ClientFailure:
            raise
        except self._timeout_error:
            raise ClientFailure(f"timed out{_after(timeout)}", retryable=True) from None
        except self._fatal as exc:
            raise ClientFailure(_describe(exc), retryable=False) from None
        except self._transient as exc:
            raise ClientFailure(_describe(exc), retryable=True) from None
        except (ValueError, TypeError) as exc:
            raise ClientFailure(_describe(exc), retryable=False) from None

    async def _read(self, response: Any) -> bytes:
        length = response.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > self.limit:
            raise _too_large(self.limit)
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > self.limit:
                raise _too_large(self.limit)
            chunks.append(chunk)
        return b"".join(chunks)

    async def aclose(self) -> None:
        await self.client.aclose()


def _after(timeout: float | None) -> str:
    return f" after {timeout:g}s" if timeout is not None else ""


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
