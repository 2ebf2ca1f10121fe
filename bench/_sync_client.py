"""A synchronous HTTP client for bench/blocking_sdk.py: what a blocking SDK call looks like."""

from __future__ import annotations

import urllib.request


def fetch(url: str, timeout: float = 30.0) -> int:
    """GET `url` with the standard library (one connection per call, as simple SDKs do); its status."""
    with urllib.request.urlopen(url, timeout=timeout) as response:
        response.read()
        return int(response.status)
