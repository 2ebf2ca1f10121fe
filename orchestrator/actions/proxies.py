"""Which requests go through a proxy: HTTP_PROXY, HTTPS_PROXY and NO_PROXY, read once per client.

Loopback addresses are never proxied (as in Go's HTTP client), so a local sandbox or emulator stays
reachable on a machine whose environment sets a proxy. aiohttp's own `trust_env` reads the
environment and ~/.netrc on every request, about 90 µs each, more than a request costs at zero
latency: `ProxyRoutes` reads them once and decides once per scheme and host.
"""

from __future__ import annotations

import ipaddress
from typing import Any
from urllib.parse import urlsplit
from urllib.request import proxy_bypass

#: (proxy URL, Proxy-Authorization value or None)
Route = tuple[Any, str | None]


def bypasses_proxy(host: str) -> bool:
    """True for loopback addresses and for hosts NO_PROXY lists."""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        if ipaddress.ip_address(host).is_loopback:
            return True
    except ValueError:
        pass
    return bool(proxy_bypass(host))


class ProxyRoutes:
    """The proxy, if any, for each URL; made by `from_env`, which gives None when no proxy is set."""

    def __init__(self, proxies: dict[str, Any]) -> None:
        self._proxies = proxies  # scheme -> aiohttp's ProxyInfo (URL, credentials)
        self._routes: dict[tuple[str, str], Route | None] = {}

    @classmethod
    def from_env(cls) -> ProxyRoutes | None:
        """HTTP_PROXY and HTTPS_PROXY as aiohttp reads them (credentials in the URL or ~/.netrc)."""
        from aiohttp.helpers import proxies_from_env

        proxies = {scheme: info for scheme, info in proxies_from_env().items() if scheme in ("http", "https")}
        return cls(proxies) if proxies else None

    def route(self, url: str) -> Route | None:
        """The proxy for `url`, or None to connect directly."""
        parts = urlsplit(url)
        key = (parts.scheme, parts.netloc)
        try:
            return self._routes[key]
        except KeyError:
            pass
        info = self._proxies.get(parts.scheme)
        route = None
        if info is not None and not bypasses_proxy(parts.hostname or ""):
            route = (info.proxy, info.proxy_auth.encode() if info.proxy_auth is not None else None)
        if len(self._routes) > 1024:  # hosts from templates: keep the cache bounded
            self._routes.clear()
        self._routes[key] = route
        return route
