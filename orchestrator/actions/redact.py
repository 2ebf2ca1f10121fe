"""Credential redaction for what HTTP actions show: URLs, header mappings and error text.

A URL loses its userinfo (``https://***@host/``) and the values of query parameters whose names look
like credentials (``?token=***``). Header mappings lose the values of such headers. `scrub` removes
the secret values found in a request from any text (a server's error body, an exception message),
so a credential that reached a message by another way is hidden too. Redaction errs on the side of
hiding: ``monkey=1`` becomes ``monkey=***``, a cost we accept.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_plus, urlsplit, urlunsplit

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

MASK = "***"

# Names that carry credentials in the wild: api_key, X-Api-Key, access_token, client_secret, password,
# X-Amz-Signature / X-Amz-Credential / X-Amz-Security-Token, Azure's `sig`, Authorization, Cookie.
_SENSITIVE = re.compile(
    r"token|key|secret|passw|pwd|signature|authori[sz]ation|credential|cookie|session|(?:^|[-_.])(?:sig|auth)(?:$|[-_.])",
    re.IGNORECASE,
)


def is_sensitive(name: str) -> bool:
    """Whether a query parameter or header called `name` probably carries a credential."""
    return _SENSITIVE.search(name) is not None


def redact_url(url: str) -> str:
    """`url` without userinfo and with the values of credential-like query parameters masked."""
    try:
        parts = urlsplit(url)
    except ValueError:  # not parseable as a URL: show nothing that might be a secret
        return MASK
    netloc = parts.netloc
    if "@" in netloc:
        netloc = MASK + "@" + netloc.rpartition("@")[2]
    query = "&".join(_redact_pair(pair) for pair in parts.query.split("&")) if parts.query else ""
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def _redact_pair(pair: str) -> str:
    name, eq, _ = pair.partition("=")
    return f"{name}={MASK}" if eq and is_sensitive(unquote_plus(name)) else pair


def redact_headers(headers: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of `headers` with the values of credential-like headers masked."""
    return {name: (MASK if is_sensitive(name) else value) for name, value in headers.items()}


def secrets_in(url: str, headers: Mapping[str, Any] | None = None, params: Mapping[str, Any] | None = None) -> list[str]:
    """The secret values a request carries: userinfo, credential-like query parameters and headers."""
    found: list[str] = []
    try:
        parts = urlsplit(url)
    except ValueError:
        return [url]
    if parts.username:
        found.append(parts.username)
    if parts.password:
        found.append(parts.password)
    for pair in parts.query.split("&") if parts.query else ():
        name, eq, value = pair.partition("=")
        if eq and value and is_sensitive(unquote_plus(name)):
            found += [value, unquote_plus(value)]
    for mapping in (headers or {}, params or {}):
        for name, value in mapping.items():
            if is_sensitive(str(name)):
                for v in value if isinstance(value, list) else [value]:
                    text = str(v)
                    # "Bearer abc": the credential may show up without its scheme.
                    found += [text, text.rpartition(" ")[2]] if v not in (None, "") else []
    # Longest first, so a secret that contains another is replaced whole.
    return sorted({s for s in found if len(s) >= 3}, key=len, reverse=True)


def scrub(text: str, secrets: Iterable[str]) -> str:
    """`text` with every occurrence of each secret replaced by the mask."""
    for secret in secrets:
        text = text.replace(secret, MASK)
    return text
