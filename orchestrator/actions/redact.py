"""Credential redaction for what HTTP actions show: URLs, header mappings and error text.

A URL loses its userinfo (``https://***@host/``) and the values of query parameters whose names look
like credentials (``?token=***``). Header mappings lose the values of such headers. `scrub` removes
the secret values found in a request from any text (a server's error body, an exception message),
so a credential that reached a message by another way is hidden too. Redaction errs on the side of
hiding: ``monkey=1`` becomes ``monkey=***``, a cost we accept.

`request_secrets` and `env_secrets` find the values a run must mask everywhere from then on (its
`Secrets`, `orchestrator.logs`): credential headers with their derived forms (for ``Basic``, the
base64 of ``user:pass``, ``user:pass`` and the password), URL userinfo (``user:pass``, the password
and the ``Basic`` header a client derives from them), credential-like query parameters, and the
values of environment variables whose names look like credentials.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, unquote_plus, urlsplit, urlunsplit

from orchestrator.logs import MASK
from orchestrator.templates import contains_unknown

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from orchestrator.logs import Secrets

__all__ = [
    "MASK", "env_secrets", "header_secrets", "is_sensitive", "redact_headers", "redact_url", "remember_request", "request_secrets",
    "scrub", "secrets_in", "sensitive_name", "url_secrets",
]

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


# --- the values a run masks everywhere ----------------------------------------------------------------

# Names that look like credentials but carry none: the Idempotency-Key is derived from the run id.
_NOT_SECRET = frozenset({"idempotency-key"})
_SENSITIVE_NAMES: dict[str, bool] = {}


def sensitive_name(name: str) -> bool:
    """`is_sensitive`, remembered per name: asked for every header of every request."""
    try:
        return _SENSITIVE_NAMES[name]
    except KeyError:
        found = is_sensitive(name) and name.lower() not in _NOT_SECRET
        if len(_SENSITIVE_NAMES) < 4096:
            _SENSITIVE_NAMES[name] = found
        return found


def _shown(value: Any) -> str | None:
    """`value` as it is sent, if it is a value at all (not a placeholder of a dry run)."""
    if isinstance(value, str):
        return None if contains_unknown(value) else value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


def _basic(user: str, password: str) -> Iterator[str]:
    """What a `Basic` credential looks like on the wire, with its parts."""
    pair = f"{user}:{password}"
    yield pair
    yield password
    for encoding in ("utf-8", "latin-1"):
        try:
            token = base64.b64encode(pair.encode(encoding)).decode("ascii")
        except UnicodeEncodeError:
            continue
        yield token
        yield "Basic " + token


def header_secrets(name: str, value: Any) -> list[str]:
    """The secrets a credential header's value carries: the value, the credential without its
    scheme (``Bearer abc``: ``abc``), a ``Basic`` credential decoded (``user:pass`` and the
    password), and each cookie's value."""
    text = _shown(value)
    if text is None:
        return []
    found = [text]
    scheme, _, credential = text.strip().partition(" ")
    credential = credential.strip()
    if credential:
        found.append(credential)
        if scheme.lower() == "basic":
            try:
                user, colon, password = base64.b64decode(credential, validate=True).decode("utf-8").partition(":")
            except (binascii.Error, UnicodeDecodeError):
                pass
            else:
                found += [f"{user}:{password}", password] if colon else []
    if name.lower() in ("cookie", "set-cookie"):
        for part in text.split(";"):
            cookie = part.partition("=")[2].strip()
            if cookie:
                found.append(cookie)
    return found


def url_secrets(url: str) -> list[str]:
    """The secrets a URL carries: userinfo (``user:pass``, the password, and the ``Basic``
    credential a client sends for them) and the values of credential-like query parameters."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return []
    found: list[str] = []
    if password is not None:
        user = parts.username or ""
        found.append(parts.netloc.rpartition("@")[0])
        found += _basic(user, password)
        if "%" in user or "%" in password:  # clients send the decoded form
            found += _basic(unquote(user), unquote(password))
    for pair in parts.query.split("&") if parts.query else ():
        name, eq, value = pair.partition("=")
        if eq and value and sensitive_name(unquote_plus(name)):
            found += [value, unquote_plus(value)]
    return found


def remember_request(secrets: Secrets, url: str, headers: Mapping[str, str] | None, query: Iterable[tuple[str, str]] | None) -> None:
    """Add the credentials a request about to be sent carries to the run's `secrets`: its
    userinfo, its credential headers and parameters (see `request_secrets`). Per request, so a
    credential already known costs a set lookup, and a request with none costs a few tests."""
    if "@" in url:
        userinfo = url.partition("://")[2].partition("/")[0].rpartition("@")[0]
        if userinfo and userinfo not in secrets:
            for value in url_secrets(url):
                secrets.add(value)
    if headers:
        for name, value in headers.items():
            if sensitive_name(name) and value not in secrets:
                for one in header_secrets(name, value):
                    secrets.add(one)
    if query:
        for name, value in query:
            if sensitive_name(name):
                secrets.add(value)


def request_secrets(url: str, headers: Mapping[str, Any] | None = None, query: Iterable[tuple[str, Any]] | None = None) -> list[str]:
    """The secrets a request carries (see `header_secrets` and `url_secrets`), with the query
    parameters given apart from the URL."""
    found: list[str] = []
    if "@" in url or "?" in url:
        found += url_secrets(url)
    if isinstance(headers, Mapping):
        for name, value in headers.items():
            if sensitive_name(str(name)):
                for one in value if isinstance(value, list) else (value,):
                    found += header_secrets(str(name), one)
    for name, value in query or ():
        if sensitive_name(str(name)) and (text := _shown(value)) is not None:
            found.append(text)
    return found


def env_secrets(env: Any) -> list[str]:
    """The values of the environment variables (a mapping) whose names look like credentials."""
    if not isinstance(env, Mapping):
        return []
    return [text for name, value in env.items() if sensitive_name(str(name)) and (text := _shown(value)) is not None]
