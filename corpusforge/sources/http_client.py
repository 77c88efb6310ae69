"""Polite HTTP fetching: a per-host rate limit, retries with exponential backoff and jitter on
429, 5xx and timeouts, and ``Retry-After`` honoured. Shared by the ``urls`` and ``rest_api`` sources."""

from __future__ import annotations

import email.utils
import os
import random
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from corpusforge.extract.base import require

RETRY_STATUS = frozenset({408, 429, 500, 502, 503, 504})


class FetchError(Exception):
    """A request that failed for good; the message is the quarantine reason."""

    def __init__(self, message: str, body: str = ""):
        super().__init__(message)
        self.body = body


class HostRateLimiter:
    """At most ``rate`` request starts per second per host, shared by every thread of a task."""

    def __init__(self, rate: float):
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self._next: dict[str, float] = {}
        self._lock = threading.Lock()

    def wait(self, url: str) -> None:
        if not self.interval:
            return
        host = urlsplit(url).netloc
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next.get(host, now))
            self._next[host] = slot + self.interval
        if slot > now:
            time.sleep(slot - now)


def retry_after_seconds(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


@dataclass
class HttpOptions:
    rate_limit: float = 5.0
    retries: int = 5
    backoff: float = 0.5
    max_backoff: float = 60.0
    timeout: float = 30.0
    headers_env: dict[str, str] | None = None
    user_agent: str = "corpusforge (+https://github.com/corpusforge)"


def headers_from_env(headers_env: dict[str, str] | None, where: str) -> dict[str, str]:
    """Header values read from environment variables (``{"Authorization": "API_TOKEN"}``)."""
    out = {}
    for header, var in (headers_env or {}).items():
        value = os.environ.get(var)
        if value is None:
            raise FetchError(f"{where}: environment variable {var!r} (for header {header}) is not set")
        out[header] = value
    return out


class Fetcher:
    """One httpx client, one rate limiter, and the retry policy."""

    def __init__(self, opts: HttpOptions, seed: str = ""):
        httpx = require("httpx", "remote")
        self.httpx, self.opts = httpx, opts
        self.limiter = HostRateLimiter(opts.rate_limit)
        self.rng = random.Random(seed)
        headers = {"User-Agent": opts.user_agent, **headers_from_env(opts.headers_env, "headers_env")}
        self.client = httpx.Client(headers=headers, timeout=opts.timeout, follow_redirects=True)
        self.retried = 0  # requests sent again after a retryable failure, over every thread
        self._count_lock = threading.Lock()

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        backoff = min(self.opts.max_backoff, self.opts.backoff * 2**attempt) * (0.5 + self.rng.random())
        return max(backoff, retry_after) if retry_after is not None else backoff

    def get(self, url: str, params: dict[str, Any] | None = None) -> Any:
        """The response (status 2xx) or FetchError after the retries are spent."""
        return self.request("GET", url, params=params)

    def request(self, method: str, url: str, params: dict[str, Any] | None = None, json: Any = None,
                headers: dict[str, str] | None = None) -> Any:
        """``method`` on ``url`` with the retry policy; the response (status < 400) or FetchError.

        A status that retrying cannot fix (400, 401, 404, ...) raises at once; the error's ``body``
        holds the start of the response text (an API's explanation)."""
        httpx = self.httpx
        last = ""
        for attempt in range(self.opts.retries + 1):
            self.limiter.wait(url)
            try:
                resp = self.client.request(method, url, params=params, json=json, headers=headers)
            except httpx.TimeoutException as exc:
                last, wait = f"timeout ({type(exc).__name__})", None
            except httpx.TransportError as exc:
                last, wait = f"connection error ({type(exc).__name__}: {exc})", None
            else:
                if resp.status_code < 400:
                    return resp
                if resp.status_code not in RETRY_STATUS:
                    raise FetchError(f"HTTP {resp.status_code}", body=resp.text[:500])
                last = f"HTTP {resp.status_code}"
                wait = retry_after_seconds(resp.headers.get("Retry-After"))
            if attempt < self.opts.retries:
                with self._count_lock:
                    self.retried += 1
                time.sleep(self._delay(attempt, wait))
        raise FetchError(f"{last} after {self.opts.retries + 1} attempts")

    def close(self) -> None:
        self.client.close()
