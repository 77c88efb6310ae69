"""Web sources: a list of URLs (``urls``) and paginated JSON REST APIs (``rest_api``).

Both fetch through ``http_client.Fetcher``: per-host rate limit (default 5 requests/s), retries
with exponential backoff and jitter on 429/5xx/timeouts honouring ``Retry-After``; every URL or
page that fails for good is quarantined with its reason. Secrets (API tokens) never go in the
recipe: ``headers_env`` maps a header name to the environment variable holding its value. They are
sent only to the origin of the configured URL, redirects into a more private network are refused
unless ``allow_private_redirects``, bodies are capped at ``max_body_bytes`` (see ``http_client``),
and URIs and quarantine locations are written with secret query values redacted.
"""

from __future__ import annotations

import hashlib
import posixpath
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urljoin, urlsplit

import fsspec
import orjson

from corpusforge.document import Document, make_doc_id
from corpusforge.errors import AccessError
from corpusforge.extract.base import ExtractionError
from corpusforge.extract.detect import HEAD_BYTES, Kind, sniff
from corpusforge.extract.formats import ExtractOptions, extract_document
from corpusforge.redact_urls import is_secret_name, redact_text, redact_url
from corpusforge.registry import SOURCES
from corpusforge.sources.base import (
    DEFAULT_MAX_DOCUMENT_BYTES,
    Part,
    Refresh,
    RefreshPolicy,
    Source,
    TaskInput,
    check_max_document_bytes,
)
from corpusforge.sources.http_client import (
    CREDENTIAL_HEADERS,
    MB,
    Fetcher,
    FetchError,
    HttpOptions,
    headers_from_env,
    register_rate,
    robots_refusal,
)
from corpusforge.sources.manifest import fingerprint_digest
from corpusforge.sources.readers import template_fields, text_of

if TYPE_CHECKING:
    from corpusforge.observe.stats import TaskContext

_CTYPE_FAMILY = {"text/html": "html", "application/xhtml+xml": "html", "application/pdf": "pdf",
                 "text/markdown": "markdown", "application/xml": "xml", "text/xml": "xml"}


def _static_headers(headers: dict[str, str] | None) -> dict[str, str] | None:
    """``headers`` checked: plain strings, and no credential (its value would sit in the recipe and
    in every copy of it, and go to every host a redirect reaches): those belong in ``headers_env``."""
    if not headers:
        return None
    for name, value in headers.items():
        if not isinstance(name, str) or not isinstance(value, str):
            raise ValueError(f"headers: {name!r}: names and values are strings")
        if name.lower() in CREDENTIAL_HEADERS or is_secret_name(name):
            raise ValueError(f"headers: {name!r} looks like a credential; name the environment variable that "
                             f"holds it in headers_env instead ({{{name}: MY_VAR}})")
    return dict(headers)


def _http_options(rate_limit: float, retries: int, backoff: float, timeout: float,
                  headers_env: dict[str, str] | None, max_redirects: int, max_body_bytes: int,
                  allow_private_redirects: bool, user_agent: str | None = None,
                  headers: dict[str, str] | None = None) -> HttpOptions:
    if rate_limit <= 0:
        raise ValueError("rate_limit must be > 0 requests per second per host")
    if retries < 0 or backoff < 0 or timeout <= 0:
        raise ValueError("retries and backoff must be >= 0 and timeout > 0")
    if max_redirects < 0 or max_body_bytes < 1:
        raise ValueError("max_redirects must be >= 0 and max_body_bytes >= 1")
    opts = HttpOptions(rate_limit=rate_limit, retries=retries, backoff=backoff, timeout=timeout,
                       headers_env=headers_env, max_redirects=max_redirects, max_body_bytes=max_body_bytes,
                       allow_private_redirects=allow_private_redirects, headers=_static_headers(headers))
    if user_agent:
        opts.user_agent = user_agent
    return opts


def _fetcher(source: str, opts: HttpOptions, seed: str) -> Fetcher:
    """A fetcher, or one line naming the source where its credentials cannot be read."""
    try:
        return Fetcher(opts, seed=seed)
    except FetchError as exc:
        raise AccessError(f"source {source!r}: {exc}") from None


class FetchedStore:
    """Each URL's last response, kept under the source's ``_work`` folder once it is complete:
    ``<key>.body`` then ``<key>.json`` (URL, final URL, content type, validators, SHA-256 of the
    body, time of the check), both written under a temporary name and renamed. A failed fetch
    keeps only its reason. A killed run then fetches only the URLs it had not finished."""

    def __init__(self, root: Path):
        self.root = root

    def _path(self, url: str, ext: str) -> Path:
        return self.root / (hashlib.sha256(url.encode()).hexdigest()[:32] + ext)

    def meta(self, url: str) -> dict[str, Any] | None:
        try:
            meta = orjson.loads(self._path(url, ".json").read_bytes())
        except (OSError, orjson.JSONDecodeError):
            return None
        return meta if meta.get("url_sha256") == hashlib.sha256(url.encode()).hexdigest() else None

    def body(self, url: str) -> bytes:
        return self._path(url, ".body").read_bytes()

    def put(self, url: str, meta: dict[str, Any], body: bytes | None = None) -> dict[str, Any]:
        from corpusforge.state import atomic_write_bytes

        self.root.mkdir(parents=True, exist_ok=True)
        # URLs and reasons as written everywhere in an output: with secret query values redacted.
        meta = {**meta, "url": redact_url(url), "url_sha256": hashlib.sha256(url.encode()).hexdigest(),
                "checked": time.time()}
        if "error" in meta:
            meta["error"] = redact_text(meta["error"])
        if "final_url" in meta:
            meta["final_url"] = redact_url(meta["final_url"])
        if body is not None:
            atomic_write_bytes(self._path(url, ".body"), body)
        atomic_write_bytes(self._path(url, ".json"), orjson.dumps(meta))
        return meta


def _fingerprint_of(meta: dict[str, Any]) -> dict[str, Any]:
    """What a fetched URL's task identity depends on: its content, not its validators."""
    if "error" in meta:
        return {"error": meta["error"]}
    return {"sha256": meta["sha256"], "final_url": redact_url(meta["final_url"]), "type": meta["content_type"]}


def _check_headers_env(source: str, headers_env: dict[str, str] | None) -> None:
    """Refuse, before anything is fetched, a ``headers_env`` variable that is not set: every request
    would go without its credential and be quarantined one by one."""
    try:
        headers_from_env(headers_env, "headers_env")
    except FetchError as exc:
        raise AccessError(f"source {source!r}: {exc}") from None


@SOURCES.register("urls")
class UrlsSource(Source):
    """Fetch each URL (from ``urls`` and/or a text file ``url_file``, one per line) and extract
    it like a file: HTML main text, PDF, Office, ... by content type and magic bytes.

    One task per host; ``concurrency`` threads fetch inside a task. The rate limit is per host
    for all sources and processes on the machine (see ``HostRateLimiter``). With
    ``respect_robots`` (default) each host's robots.txt is honoured for ``user_agent``: a
    disallowed URL is quarantined and Crawl-delay slows the host further.

    Re-runs (``refresh``, default ``always``): each URL is checked again with a conditional GET
    (``If-None-Match``/``If-Modified-Since`` from its last response; 304 keeps the stored body)
    and its fingerprint is the SHA-256 of the body. Every response is stored under ``_work`` as
    soon as it arrives, so only a changed or new URL is fetched again, and a killed run resumes
    with the URLs it had not finished.
    """

    part_noun = "URLs"

    def __init__(
        self,
        name: str,
        urls: list[str] | None = None,
        url_file: str | None = None,
        rate_limit: float = 5.0,
        concurrency: int = 8,
        retries: int = 5,
        backoff: float = 0.5,
        timeout: float = 30.0,
        headers_env: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        max_redirects: int = 10,
        max_body_bytes: int = 256 * MB,
        allow_private_redirects: bool = False,
        favor_precision: bool = True,
        metadata: dict[str, Any] | None = None,
        respect_robots: bool = True,
        user_agent: str | None = None,
        refresh: Refresh = "always",
        refresh_ttl: str | float | None = None,
        max_document_bytes: int | None = DEFAULT_MAX_DOCUMENT_BYTES,
    ):
        if not urls and not url_file:
            raise ValueError("give urls (a list) or url_file (a file with one URL per line)")
        if concurrency < 1:
            raise ValueError("concurrency must be >= 1")
        self.source_name = name
        self.max_document_bytes = check_max_document_bytes(max_document_bytes)
        self.urls, self.url_file = list(urls or []), url_file
        self.http = _http_options(rate_limit, retries, backoff, timeout, headers_env, max_redirects,
                                  max_body_bytes, allow_private_redirects, user_agent, headers)
        self.concurrency, self.favor_precision = concurrency, favor_precision
        self.extra_metadata = metadata or {}
        self.respect_robots = respect_robots
        self.refresh = RefreshPolicy.of(refresh, refresh_ttl)
        register_rate(self.urls, rate_limit)  # hosts of url_file are declared when it is read

    def _all_urls(self) -> list[str]:
        urls = list(self.urls)
        if self.url_file:
            try:
                with fsspec.open(self.url_file, "rt", encoding="utf-8") as fh:
                    urls += [line.strip() for line in fh if line.strip() and not line.startswith("#")]
            except (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError) as exc:
                why = {FileNotFoundError: "does not exist", IsADirectoryError: "is a folder, not a file",
                       NotADirectoryError: "does not exist"}.get(type(exc), exc.strerror or str(exc))
                raise AccessError(f"source {self.source_name!r}: url_file {redact_url(self.url_file)} {why}") from None
            except UnicodeDecodeError as exc:
                raise AccessError(f"source {self.source_name!r}: url_file {redact_url(self.url_file)} is not "
                                  f"UTF-8 text (byte {exc.start})") from None
            register_rate(urls, self.http.rate_limit)
        return list(dict.fromkeys(urls))

    def plan(self, task_bytes: int) -> list[TaskInput]:
        _check_headers_env(self.source_name, self.http.headers_env)
        by_host: dict[str, list[Part]] = {}
        for url in self._all_urls():
            by_host.setdefault(urlsplit(url).netloc, []).append(Part(url, key=url))
        return [TaskInput(self.source_name, tuple(parts)) for _, parts in sorted(by_host.items())]

    def _fetch(self, fetcher: Fetcher, store: FetchedStore, url: str, since: float | None,
               reuse_errors: bool = False) -> dict[str, Any]:
        """The stored response of ``url`` after checking it: reused as it is when it was fetched
        after ``since`` (the last finished check; None: reuse any), else fetched again, conditionally
        when it has validators. Returns its meta, ``{"robots": why}`` where robots.txt forbids it."""
        old = store.meta(url)
        if old is not None and ("error" not in old or reuse_errors) and (since is None or old["checked"] > since):
            return old
        if self.respect_robots:
            why = robots_refusal(fetcher, url)
            if why:
                return {"url": url, "robots": why}
        headers = {}
        if old is not None and "error" not in old:
            if old.get("etag"):
                headers["If-None-Match"] = old["etag"]
            if old.get("last_modified"):
                headers["If-Modified-Since"] = old["last_modified"]
        try:
            resp = fetcher.request("GET", url, headers=headers or None)
        except FetchError as exc:
            return store.put(url, {"error": str(exc)})
        if resp.status_code == 304 and old is not None and headers:
            return store.put(url, {k: v for k, v in old.items() if k not in ("url", "url_sha256", "checked")})
        body = resp.content
        return store.put(url, {"final_url": str(resp.url), "content_type": resp.headers.get("Content-Type", ""),
                               "etag": resp.headers.get("ETag", ""), "last_modified": resp.headers.get("Last-Modified", ""),
                               "sha256": hashlib.sha256(body).hexdigest(), "status": resp.status_code}, body)

    def fingerprints(self, parts: list[Part], work: Path, since: float | None = None) -> list[dict[str, Any]]:
        """Fetch or re-check every URL now (into the store the tasks read), ``concurrency`` at a time."""
        store = FetchedStore(work / "fetched")
        fetcher = _fetcher(self.source_name, self.http, f"plan:{self.source_name}")
        try:
            with ThreadPoolExecutor(self.concurrency) as pool:
                metas = list(pool.map(lambda p: self._fetch(fetcher, store, p.path, since), parts))
        finally:
            fetcher.close()
        return [{"robots": "disallowed"} if "robots" in m else _fingerprint_of(m) for m in metas]

    def describe_change(self, old: dict[str, Any], new: dict[str, Any]) -> str:
        if "error" in new:
            return f"now failing ({new['error']})"
        if "robots" in new:
            return "now disallowed by robots.txt"
        if not old:
            return "added"
        if "sha256" not in old:
            return "now fetched"
        return f"content changed (sha256 {old['sha256'][:8]} → {new['sha256'][:8]})"

    def _stored(self, fetcher: Fetcher, store: FetchedStore, part: Part) -> tuple[dict[str, Any], bytes | None]:
        """``(meta, body)`` of the part's URL from the store, fetched now where it is missing or
        damaged; body None where the URL failed or robots.txt forbids it (the meta says why). A
        stored failure is final only where the plan's check recorded it (the part's digest)."""
        url = part.path
        if self.respect_robots and part.digest == fingerprint_digest({"robots": "disallowed"}):
            why = robots_refusal(fetcher, url)  # the plan found it disallowed: a stored response is stale
            if why:
                return {"robots": why}, None
        old = store.meta(url)
        planned = old is not None and part.digest == fingerprint_digest(_fingerprint_of(old))
        for attempt in range(2):
            meta = self._fetch(fetcher, store, url, None if attempt == 0 else float("inf"),
                               reuse_errors=planned and attempt == 0)
            if "robots" in meta or "error" in meta:
                return meta, None
            try:
                body = store.body(url)
            except OSError:
                continue
            if hashlib.sha256(body).hexdigest() == meta["sha256"]:
                return meta, body
        return {"error": "stored response is damaged and could not be fetched again"}, None

    def read(self, task: TaskInput, ctx: TaskContext) -> Iterator[Document]:
        fetcher = _fetcher(self.source_name, self.http, f"{ctx.seed}:{task.parts[0].key}")
        store = FetchedStore(ctx.layout.source_work(self.source_name) / "fetched")
        opts = ExtractOptions(favor_precision=self.favor_precision)
        try:
            with ThreadPoolExecutor(self.concurrency) as pool:
                # A response stored by the plan's check (or by a killed run) is used without a request.
                metas = pool.map(lambda p: self._stored(fetcher, store, p), task.parts)
                for part, (meta, body) in zip(task.parts, metas, strict=True):
                    where = redact_url(part.path)
                    if body is None:
                        ctx.quarantine(where, meta.get("robots") or meta.get("error") or "", None)
                        continue
                    final_url = meta["final_url"]
                    try:
                        text, meta = _extract_response(body, meta["content_type"], final_url, opts)
                    except ExtractionError as exc:
                        ctx.quarantine(where, str(exc), None)
                        continue
                    meta = {**self.extra_metadata, **meta, "url": redact_url(str(meta.get("url") or final_url))}
                    yield Document(text, make_doc_id(f"{self.source_name}/{part.key}", 0, text), where, 0, meta)
        finally:
            fetcher.close()


def _extract_response(body: bytes, content_type: str, url: str, opts: ExtractOptions) -> tuple[str, dict[str, Any]]:
    mime = content_type.split(";")[0].strip().lower()
    family = _CTYPE_FAMILY.get(mime)
    if family == "html":
        from corpusforge.extract.html import extract_html

        charset = next((p.split("=", 1)[1].strip("\"' ") for p in content_type.split(";")[1:]
                        if p.strip().lower().startswith("charset=")), None)
        out = extract_html(body, url, charset, opts.favor_precision)
        return out.text, {"format": "html", **out.metadata}
    name = posixpath.basename(urlsplit(url).path) or "index"
    kind = sniff(body[:HEAD_BYTES], name, body)
    if kind.is_media:
        raise ExtractionError(f"media file: enable the multimodal stage ({kind.mime})")
    if kind.family in ("text", "jsonl", "json", "csv", "tsv"):
        kind = Kind("text")
        try:
            return body.decode("utf-8"), {"format": "text", "content_type": mime}
        except UnicodeDecodeError as exc:
            raise ExtractionError(f"invalid UTF-8 at byte {exc.start}") from None
    out = extract_document(body, kind, name, opts)
    return out.text, {"format": kind.family, "content_type": mime, **out.metadata}


def json_path(obj: Any, path: str) -> Any:
    """``obj`` at a dotted path (``data.items``, ``results.0.id``); ``""`` is the object itself."""
    for piece in [p for p in path.split(".") if p]:
        if isinstance(obj, list):
            try:
                obj = obj[int(piece)]
            except (ValueError, IndexError):
                return None
        elif isinstance(obj, dict):
            obj = obj.get(piece)
        else:
            return None
    return obj


@SOURCES.register("rest_api")
class RestApiSource(Source):
    """Records of a paginated JSON API.

    ``records_path`` is the dotted path to the list of records in each response; each record's
    text is ``text_field`` or ``text_template``. Pagination: ``page`` (``page_param`` counts up
    from ``start_page`` until a page has no records), ``offset`` (``offset_param`` starts at
    ``start_offset`` and grows by the records each page held, ``limit_param`` asks for
    ``page_size`` records, until a page has no records), ``cursor`` (the next cursor is read at
    ``cursor_path`` and sent as ``cursor_param``), ``next_link`` (the next URL at
    ``next_path``, or the ``Link: <...>; rel="next"`` header), or ``none``. Pages are fetched in
    order in one task (a cursor is only known from the previous page).

    Re-runs (``refresh``, default ``always``): the fingerprint is the SHA-256 of the first page,
    so an API listing newest first (or giving a total or the next cursor on its first page) is
    re-read when records arrive; see docs/ingest.md, "Re-runs and refresh".
    """

    def __init__(
        self,
        name: str,
        url: str,
        records_path: str = "",
        text_field: str = "text",
        text_template: str | None = None,
        id_field: str | None = None,
        pagination: Literal["none", "page", "offset", "cursor", "next_link"] = "none",
        page_param: str = "page",
        start_page: int = 1,
        offset_param: str = "offset",
        limit_param: str | None = "limit",
        page_size: int = 100,
        start_offset: int = 0,
        cursor_param: str = "cursor",
        cursor_path: str = "next_cursor",
        next_path: str | None = None,
        params: dict[str, Any] | None = None,
        max_pages: int | None = None,
        max_records: int | None = None,
        rate_limit: float = 5.0,
        retries: int = 5,
        backoff: float = 0.5,
        timeout: float = 30.0,
        headers_env: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        max_redirects: int = 10,
        max_body_bytes: int = 256 * MB,
        allow_private_redirects: bool = False,
        metadata: dict[str, Any] | None = None,
        user_agent: str | None = None,
        refresh: Refresh = "always",
        refresh_ttl: str | float | None = None,
        max_document_bytes: int | None = DEFAULT_MAX_DOCUMENT_BYTES,
    ):
        self.source_name = name
        self.max_document_bytes = check_max_document_bytes(max_document_bytes)
        self.url, self.records_path = url, records_path
        self.text_field, self.text_template, self.id_field = text_field, text_template, id_field
        self.pagination, self.page_param, self.start_page = pagination, page_param, start_page
        if page_size < 1 or start_offset < 0:
            raise ValueError("page_size must be >= 1 and start_offset >= 0")
        self.offset_param, self.limit_param = offset_param, limit_param
        self.page_size, self.start_offset = page_size, start_offset
        self.cursor_param, self.cursor_path, self.next_path = cursor_param, cursor_path, next_path
        self.params = dict(params or {})
        self.max_pages, self.max_records = max_pages, max_records
        self.http = _http_options(rate_limit, retries, backoff, timeout, headers_env, max_redirects,
                                  max_body_bytes, allow_private_redirects, user_agent, headers)
        self.extra_metadata = metadata or {}
        self.refresh = RefreshPolicy.of(refresh, refresh_ttl)
        register_rate([url], rate_limit)

    def plan(self, task_bytes: int) -> list[TaskInput]:
        _check_headers_env(self.source_name, self.http.headers_env)
        return [TaskInput(self.source_name, (Part(self.url, key=self.url),))]

    def fingerprints(self, parts: list[Part], work: Path, since: float | None = None) -> list[dict[str, Any]]:
        """``{"first_page_sha256": ...}``, or ``{"error": why}`` when the first page fails."""
        params = self._first_page_params()
        fetcher = _fetcher(self.source_name, self.http, f"plan:{self.source_name}")
        try:
            fp = {"first_page_sha256": hashlib.sha256(fetcher.get(self.url, params=params or None).content).hexdigest()}
        except FetchError as exc:
            fp = {"error": redact_text(str(exc))}
        finally:
            fetcher.close()
        return [fp for _ in parts]

    def describe_change(self, old: dict[str, Any], new: dict[str, Any]) -> str:
        if "error" in new:
            return f"first page now failing ({new['error']})"
        return "first page changed"

    def _first_page_params(self) -> dict[str, Any]:
        """The query of the first page: the source's ``params`` and the pagination's own."""
        params = dict(self.params)
        if self.pagination == "page":
            params[self.page_param] = self.start_page
        elif self.pagination == "offset":
            params[self.offset_param] = self.start_offset
            if self.limit_param:
                params[self.limit_param] = self.page_size
        return params

    def _pages(self, fetcher: Fetcher, ctx: TaskContext) -> Iterator[tuple[int, list[Any]]]:
        url: str | None = self.url
        params = self._first_page_params()
        page, offset = self.start_page, self.start_offset
        n = 0
        while url is not None and (self.max_pages is None or n < self.max_pages):
            if self.pagination == "page":
                params[self.page_param] = page
            elif self.pagination == "offset":
                params[self.offset_param] = offset
            where = f"{redact_url(url)} page {n + 1}"
            try:
                # A next link is checked like a redirect, and gets the credentials only on the API's origin.
                resp = fetcher.get(url, params=params or None, configured=self.url)
                body = resp.json()
            except FetchError as exc:
                ctx.quarantine(where, str(exc), None)
                return
            except ValueError as exc:
                ctx.quarantine(where, f"response is not JSON ({exc})", None)
                return
            records = json_path(body, self.records_path)
            if not isinstance(records, list):
                ctx.quarantine(where, f"no list of records at {self.records_path!r}", None)
                return
            n += 1
            yield n, records
            if self.pagination == "none" or not records:
                return
            if self.pagination == "page":
                page += 1
            elif self.pagination == "offset":
                # On to an empty page, not only to a short one: an API may cap the page below page_size.
                offset += len(records)
            elif self.pagination == "cursor":
                cursor = json_path(body, self.cursor_path)
                if cursor in (None, ""):
                    return
                params[self.cursor_param] = cursor
            else:
                nxt = json_path(body, self.next_path) if self.next_path else resp.links.get("next", {}).get("url")
                url = urljoin(str(resp.url), nxt) if nxt else None
                params = {}  # a next link carries its own query

    def read(self, task: TaskInput, ctx: TaskContext) -> Iterator[Document]:
        fetcher = _fetcher(self.source_name, self.http, f"{ctx.seed}:{self.url}")
        count = 0
        uri = redact_url(self.url)
        used = template_fields(self.text_template) if self.text_template else frozenset()
        try:
            for page, records in self._pages(fetcher, ctx):
                for i, rec in enumerate(records):
                    if self.max_records is not None and count >= self.max_records:
                        return
                    where = f"{uri} page {page} record {i}"
                    if not isinstance(rec, dict):
                        ctx.quarantine(where, f"expected a JSON object, got {type(rec).__name__}", None)
                        continue
                    fields = dict(rec)
                    text, why = text_of(fields, self.text_field, self.text_template)
                    if text is None:
                        ctx.quarantine(where, why, None)
                        continue
                    doc_id = fields.get(self.id_field) if self.id_field else None
                    for name in used:  # already in the text
                        fields.pop(name, None)
                    offset = page * 1_000_000 + i
                    meta = {**self.extra_metadata, **fields}
                    yield Document(text, str(doc_id) if doc_id is not None else
                                   make_doc_id(f"{self.source_name}/{self.url}", offset, text), uri, offset, meta)
                    count += 1
        finally:
            fetcher.close()
