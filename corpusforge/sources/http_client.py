"""Polite, guarded HTTP fetching, shared by the ``urls`` and ``rest_api`` sources and ``llm_judge``.

Polite: a per-host rate limit on every request and redirect hop, retries with exponential backoff
and jitter on 429, 5xx and timeouts, ``Retry-After`` honoured. Guarded: redirects are followed
here, hop by hop, so credentials go only to the origin they were configured for and a redirect
into a more private network is refused (``private_network.py``); the decoded body is capped at
``max_body_bytes`` while it streams in, so a compression bomb fails its URL instead of the task."""

from __future__ import annotations

import base64
import email.utils
import fcntl
import hashlib
import io
import os
import random
import tempfile
import threading
import time
import urllib.robotparser
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import orjson

from corpusforge.extract.base import require
from corpusforge.redact_urls import redact_text, redact_url
from corpusforge.sources.private_network import refusal

RETRY_STATUS = frozenset({408, 429, 500, 502, 503, 504})
REDIRECT_STATUS = frozenset({301, 302, 303, 307, 308})
# Headers that are credentials wherever they come from; every ``headers_env`` header is one too.
CREDENTIAL_HEADERS = frozenset({"authorization", "cookie", "proxy-authorization"})
MB = 1 << 20
_DEFAULT_PORTS = {"http": 80, "https": 443}
_INFLATE_STEP = 1 * MB  # most decoded bytes produced per zlib call, however small the compressed input


class FetchError(Exception):
    """A request that failed for good; the message is the quarantine reason."""

    def __init__(self, message: str, body: str = ""):
        super().__init__(message)
        self.body = body


# How long a host keeps the strictest interval a source asked for after that source's last request.
STRICT_HOLD_S = 60.0
_HOSTS_LOCK = threading.Lock()
_FLOORS: dict[str, float] = {}  # host -> lower bound of its interval in seconds (robots.txt Crawl-delay)


def host_of(url: str) -> str:
    """What a rate limit and robots.txt apply to: ``host[:port]``, lower case."""
    return urlsplit(url).netloc.lower().rsplit("@", 1)[-1]


def set_min_interval(host: str, seconds: float) -> None:
    """Make every request to ``host`` from this process at least ``seconds`` apart: a source's
    rate limit (so the strictest one configured for a host applies to all) or a Crawl-delay."""
    with _HOSTS_LOCK:
        _FLOORS[host] = max(_FLOORS.get(host, 0.0), seconds)


def register_rate(urls: Iterable[str], rate: float) -> None:
    """Declare that a source fetches from the hosts of ``urls`` at most ``rate`` times a second."""
    if rate > 0:
        for host in {host_of(u) for u in urls}:
            set_min_interval(host, 1.0 / rate)


def _slots_dir() -> Path | None:
    path = Path(tempfile.gettempdir()) / f"corpusforge-hosts-{os.getuid()}"
    try:
        path.mkdir(mode=0o700, exist_ok=True)
    except OSError:
        return None
    return path


class HostRateLimiter:
    """At most ``rate`` request starts per second per host, shared by every fetcher, source, thread
    and process on this machine: the next free slot of each host lives in a small file under the
    temporary folder, read and advanced under an exclusive ``flock``. The strictest rate a source
    of this process declared for a host (``register_rate``) applies to every request to it; across
    processes the stricter rate applies while it is used (kept ``STRICT_HOLD_S`` after its last use)."""

    def __init__(self, rate: float):
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self._dir = _slots_dir()

    def _reserve(self, host: str, interval: float) -> float:
        """The wall-clock time this request may start at; advances the host's next free slot."""
        with _HOSTS_LOCK:
            now = time.time()
            if self._dir is None:
                return now
            name = self._dir / hashlib.sha256(host.encode()).hexdigest()[:24]
            try:
                fd = os.open(name, os.O_RDWR | os.O_CREAT, 0o600)
            except OSError:
                return now
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                try:
                    state = orjson.loads(os.pread(fd, 4096, 0) or b"{}")
                except orjson.JSONDecodeError:
                    state = {}
                now = time.time()
                strict, until = float(state.get("interval", 0.0)), float(state.get("until", 0.0))
                if interval >= strict or now > until:
                    strict, until = interval, now + STRICT_HOLD_S
                slot = max(now, float(state.get("next", 0.0)))
                data = orjson.dumps({"host": host, "next": slot + max(interval, strict),
                                     "interval": strict, "until": until})
                os.ftruncate(fd, 0)
                os.pwrite(fd, data, 0)
                return slot
            finally:
                os.close(fd)  # also releases the flock

    def wait(self, url: str) -> None:
        host = host_of(url)
        interval = max(self.interval, _FLOORS.get(host, 0.0))
        if not interval:
            return
        slot = self._reserve(host, interval)
        delay = slot - time.time()
        if delay > 0:
            time.sleep(delay)


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
    """Fetching options of a source; see docs/ingest.md, "Credentials and redirects"."""

    rate_limit: float = 5.0
    retries: int = 5
    backoff: float = 0.5
    max_backoff: float = 60.0
    timeout: float = 30.0
    headers_env: dict[str, str] | None = None
    headers: dict[str, str] | None = None  # static, non-secret headers (Accept, API version): every request
    user_agent: str = "corpusforge (+https://github.com/corpusforge)"
    max_redirects: int = 10
    # 256 MiB: far above a web page or an API page (Common Crawl truncates records at 1 MiB) and
    # above nearly every PDF, while 8 fetch threads stay within a few GiB at worst.
    max_body_bytes: int = 256 * MB
    allow_private_redirects: bool = False


ROBOTS_DISALLOWED = "disallowed by robots.txt"


def robots_refusal(fetcher: Fetcher, url: str) -> str | None:
    """Why robots.txt forbids ``url`` for the fetcher's user agent, or None. Each host's file is
    fetched once per fetcher (RFC 9309: a 4xx, a redirect loop or an oversized file allows
    everything; a 5xx, 429 or an unreachable host, after the retries, forbids everything); its Crawl-delay becomes a floor of the host's interval."""
    host = host_of(url)
    with fetcher.robots_lock:  # held while fetching: concurrent threads wait for one request
        rules = fetcher.robots.get(host)
        if rules is None:
            rules = fetcher.robots[host] = _fetch_robots(fetcher, url)
    if isinstance(rules, str):
        # A host that cannot be reached at all: the URL would fail the same way, so say that.
        return rules if rules.startswith(("connection error", "timeout")) else f"{ROBOTS_DISALLOWED} ({rules})"
    return None if rules.can_fetch(fetcher.opts.user_agent, url) else ROBOTS_DISALLOWED


def _fetch_robots(fetcher: Fetcher, url: str) -> urllib.robotparser.RobotFileParser | str:
    parts = urlsplit(url)
    parser = urllib.robotparser.RobotFileParser(f"{parts.scheme}://{parts.netloc.rsplit('@', 1)[-1]}/robots.txt")
    try:
        resp = fetcher.get(parser.url)
    except FetchError as exc:
        why = str(exc)
        if why.startswith(("connection error", "timeout")):
            return redact_text(why)
        if why.endswith(" attempts"):  # 5xx or 429 after the retries
            return f"robots.txt unreachable: {redact_text(why)}"
        parser.allow_all = True
        return parser
    parser.parse(resp.content.decode("utf-8", "replace").splitlines())
    delay = parser.crawl_delay(fetcher.opts.user_agent)
    if delay:
        set_min_interval(host_of(url), float(delay))
    return parser


def headers_from_env(headers_env: dict[str, str] | None, where: str) -> dict[str, str]:
    """Header values read from environment variables (``{"Authorization": "API_TOKEN"}``)."""
    out = {}
    for header, var in (headers_env or {}).items():
        value = os.environ.get(var)
        if value is None:
            raise FetchError(f"{where}: environment variable {var!r} (for header {header}) is not set")
        out[header] = value
    return out


def origin(url: str) -> tuple[str, str, int | None]:
    """``(scheme, host, port)`` of ``url``, the port filled in for http and https: what a
    credential is bound to (so an https -> http downgrade is another origin)."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        port = None
    return scheme, (parts.hostname or "").lower(), port or _DEFAULT_PORTS.get(scheme)


def _redirect_method(status: int, method: str) -> str:
    """The method of the request a redirect asks for (RFC 9110 15.4, as browsers do it)."""
    if status == 303 and method != "HEAD":
        return "GET"
    if status in (301, 302) and method == "POST":
        return "GET"
    return method


def _too_big(limit: int, what: str) -> FetchError:
    return FetchError(f"response body over max_body_bytes ({limit:,} bytes): {what}")


def _inflate(raw: Iterable[bytes], coding: str) -> Iterator[bytes]:
    """The decoded bytes of a gzip or deflate body, at most ``_INFLATE_STEP`` bytes at a time
    (a 64 KB read of a compression bomb would otherwise expand to ~64 MB in one call)."""
    d = None
    for chunk in raw:
        if d is None:
            if coding == "deflate":  # zlib-wrapped as the RFC says, or raw deflate as some servers send
                wrapped = len(chunk) >= 2 and chunk[0] & 0x0F == 8 and (chunk[0] << 8 | chunk[1]) % 31 == 0
                d = zlib.decompressobj(zlib.MAX_WBITS if wrapped else -zlib.MAX_WBITS)
            else:
                d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        data = chunk
        while not d.eof:
            out = d.decompress(data, _INFLATE_STEP)
            data = d.unconsumed_tail
            if out:
                yield out
            elif not data:
                break
    if d is not None and not d.eof:
        yield d.flush()


def _decoded_chunks(resp: Any) -> Iterator[bytes]:
    """The body of a streamed response as its content coding decodes it, a bounded piece at a time."""
    codings = [c.strip().lower() for c in resp.headers.get("Content-Encoding", "").split(",")]
    codings = [c for c in codings if c and c != "identity"]
    if not codings:
        yield from resp.iter_raw()
    elif len(codings) == 1 and codings[0] in ("gzip", "x-gzip", "deflate"):
        try:
            yield from _inflate(resp.iter_raw(), codings[0])
        except zlib.error as exc:
            raise FetchError(f"response body is not valid {codings[0]} ({exc})") from None
    else:  # codings we did not ask for (Accept-Encoding: gzip, deflate): httpx decodes one read at a time
        yield from resp.iter_bytes()


class Fetcher:
    """One httpx client, one rate limiter, the retry policy, and the redirect and body guards."""

    def __init__(self, opts: HttpOptions, seed: str = ""):
        httpx = require("httpx", "remote")
        self.httpx, self.opts = httpx, opts
        self.limiter = HostRateLimiter(opts.rate_limit)
        self.rng = random.Random(seed)
        self.credentials = headers_from_env(opts.headers_env, "headers_env")
        # Redirects are followed in request() so each hop is rate limited and checked; only the
        # codings _decoded_chunks bounds are asked for.
        self.client = httpx.Client(headers={"User-Agent": opts.user_agent, "Accept-Encoding": "gzip, deflate",
                                            **(opts.headers or {})},
                                   timeout=opts.timeout, follow_redirects=False)
        self.retried = 0  # requests sent again after a retryable failure, over every thread
        # robots.txt rules by host, or why the host forbids everything (see robots_refusal)
        self.robots: dict[str, urllib.robotparser.RobotFileParser | str] = {}
        self.robots_lock = threading.Lock()
        self._count_lock = threading.Lock()

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        backoff = min(self.opts.max_backoff, self.opts.backoff * 2**attempt) * (0.5 + self.rng.random())
        return max(backoff, retry_after) if retry_after is not None else backoff

    def get(self, url: str, params: dict[str, Any] | None = None, configured: str | None = None) -> Any:
        """The response (status 2xx) or FetchError after the retries are spent."""
        return self.request("GET", url, params=params, configured=configured)

    def request(self, method: str, url: str, params: dict[str, Any] | None = None, json: Any = None,
                headers: dict[str, str] | None = None, configured: str | None = None) -> Any:
        """``method`` on ``url`` with the retry policy, following redirects; the response (status
        < 400, body read) or FetchError.

        ``configured`` is the URL the caller was configured with (default: ``url``; a ``rest_api``
        next link passes the API's URL). Credentials (``headers_env`` headers, and Authorization,
        Cookie, Proxy-Authorization in ``headers`` or as URL userinfo) are sent only to its origin,
        and neither ``url`` nor a redirect may lead to a more private network than its host. A
        status that retrying cannot fix (400, 401, 404, ...) raises at once; the error's ``body``
        holds the start of the response text (an API's explanation)."""
        httpx = self.httpx
        configured = configured or url
        credentials = dict(self.credentials)
        plain: dict[str, str] = {}
        for k, v in (headers or {}).items():
            (credentials if k.lower() in CREDENTIAL_HEADERS else plain)[k] = v
        parsed = httpx.URL(url)
        if params:  # merged into the URL's own query (httpx would replace it: an api_key there was lost)
            parsed, params = parsed.copy_merge_params(params), None
        if parsed.userinfo:  # sent as Basic auth, so it too stays with its origin on redirects
            pair = base64.b64encode(f"{parsed.username}:{parsed.password}".encode()).decode()
            credentials.setdefault("Authorization", f"Basic {pair}")
            parsed = parsed.copy_with(username=None, password=None)
        url = str(parsed)
        home = origin(configured)
        if origin(url) != home:  # a next link elsewhere: checked like a redirect
            why = refusal(url, configured, self.opts.allow_private_redirects)
            if why:
                raise FetchError(f"{redact_url(url)} refused: {why}")
        for _ in range(self.opts.max_redirects + 1):
            sent = {**plain, **credentials} if origin(url) == home else plain
            resp = self._send(method, url, params, json, sent)
            location = resp.headers.get("Location")
            if resp.status_code not in REDIRECT_STATUS or not location:
                return resp
            target = urljoin(str(resp.url), location)
            why = None if origin(target) == home else refusal(target, configured, self.opts.allow_private_redirects)
            if why:
                raise FetchError(f"redirect to {redact_url(target)} refused: {why}")
            new_method = _redirect_method(resp.status_code, method)
            if new_method != method:
                json = None
            method, url, params = new_method, target, None  # the Location carries its own query
        raise FetchError(f"more than max_redirects ({self.opts.max_redirects}) redirects")

    def _send(self, method: str, url: str, params: dict[str, Any] | None, json: Any,
              headers: dict[str, str]) -> Any:
        """One hop with retries: a redirect response (body unread) or a response with its body."""
        httpx = self.httpx
        last = ""
        for attempt in range(self.opts.retries + 1):
            self.limiter.wait(url)
            try:
                with self.client.stream(method, url, params=params, json=json, headers=headers) as resp:
                    if resp.status_code in REDIRECT_STATUS and resp.headers.get("Location"):
                        return resp
                    if resp.status_code < 400:
                        return self._with_body(resp, self._read_body(resp))
                    if resp.status_code not in RETRY_STATUS:
                        raise FetchError(f"HTTP {resp.status_code}", body=self._error_text(resp))
                    last = f"HTTP {resp.status_code}"
                    wait = retry_after_seconds(resp.headers.get("Retry-After"))
            except httpx.TimeoutException as exc:
                last, wait = f"timeout ({type(exc).__name__})", None
            except (httpx.TransportError, httpx.DecodingError) as exc:
                last, wait = redact_text(f"connection error ({type(exc).__name__}: {exc})"), None
            if attempt < self.opts.retries:
                with self._count_lock:
                    self.retried += 1
                time.sleep(self._delay(attempt, wait))
        raise FetchError(f"{last} after {self.opts.retries + 1} attempts")

    def _read_body(self, resp: Any) -> bytes:
        """The decoded body, or FetchError as soon as it (or its Content-Length) passes the limit."""
        limit = self.opts.max_body_bytes
        declared = resp.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > limit:
            raise _too_big(limit, f"Content-Length is {int(declared):,}")
        body, size = io.BytesIO(), 0  # getvalue() hands over its buffer: no second copy of the body
        for chunk in _decoded_chunks(resp):
            size += len(chunk)
            if size > limit:
                raise _too_big(limit, "stopped reading")
            body.write(chunk)
        return body.getvalue()

    def _error_text(self, resp: Any) -> str:
        """The start of an error response's text (an API's explanation), reading at most 64 KB."""
        head = bytearray()
        try:
            for chunk in _decoded_chunks(resp):
                head += chunk
                if len(head) >= 1 << 16:
                    break
        except (FetchError, self.httpx.HTTPError):  # the status is the error, not an unreadable explanation
            pass
        return bytes(head).decode(resp.encoding or "utf-8", "replace")[:500]

    def _with_body(self, resp: Any, body: bytes) -> Any:
        """An ``httpx.Response`` holding the decoded ``body`` (its coding headers dropped), so
        callers use ``.content``, ``.json()``, ``.links`` and ``.url`` as before."""
        headers = [(k, v) for k, v in resp.headers.multi_items()
                   if k.lower() not in ("content-encoding", "content-length", "transfer-encoding")]
        return self.httpx.Response(resp.status_code, headers=headers, content=body, request=resp.request)

    def close(self) -> None:
        self.client.close()
