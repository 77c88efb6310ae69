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

import os
import posixpath
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urljoin, urlsplit

import fsspec

from corpusforge.document import Document, make_doc_id
from corpusforge.errors import AccessError
from corpusforge.extract.base import ExtractionError
from corpusforge.extract.detect import HEAD_BYTES, Kind, sniff
from corpusforge.extract.formats import ExtractOptions, extract_document
from corpusforge.redact_urls import redact_text, redact_url
from corpusforge.registry import SOURCES
from corpusforge.sources.base import Part, Source, TaskInput
from corpusforge.sources.http_client import MB, Fetcher, FetchError, HttpOptions
from corpusforge.sources.readers import text_of

if TYPE_CHECKING:
    from corpusforge.observe.stats import TaskContext

_CTYPE_FAMILY = {"text/html": "html", "application/xhtml+xml": "html", "application/pdf": "pdf",
                 "text/markdown": "markdown", "application/xml": "xml", "text/xml": "xml"}


def _http_options(rate_limit: float, retries: int, backoff: float, timeout: float,
                  headers_env: dict[str, str] | None, max_redirects: int, max_body_bytes: int,
                  allow_private_redirects: bool) -> HttpOptions:
    if rate_limit <= 0:
        raise ValueError("rate_limit must be > 0 requests per second per host")
    if retries < 0 or backoff < 0 or timeout <= 0:
        raise ValueError("retries and backoff must be >= 0 and timeout > 0")
    if max_redirects < 0 or max_body_bytes < 1:
        raise ValueError("max_redirects must be >= 0 and max_body_bytes >= 1")
    return HttpOptions(rate_limit=rate_limit, retries=retries, backoff=backoff, timeout=timeout,
                       headers_env=headers_env, max_redirects=max_redirects, max_body_bytes=max_body_bytes,
                       allow_private_redirects=allow_private_redirects)


def _check_headers_env(source: str, headers_env: dict[str, str] | None) -> None:
    """Refuse, before anything is fetched, a ``headers_env`` variable that is not set: every request
    would go without its credential and be quarantined one by one."""
    for header, var in (headers_env or {}).items():
        if var not in os.environ:
            raise AccessError(f"source {source!r}: headers_env: environment variable {var!r} (for header "
                              f"{header}) is not set")


@SOURCES.register("urls")
class UrlsSource(Source):
    """Fetch each URL (from ``urls`` and/or a text file ``url_file``, one per line) and extract
    it like a file: HTML main text, PDF, Office, ... by content type and magic bytes.

    One task per host, so the per-host rate limit holds whatever the number of workers;
    ``concurrency`` threads fetch inside a task.
    """

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
        max_redirects: int = 10,
        max_body_bytes: int = 256 * MB,
        allow_private_redirects: bool = False,
        favor_precision: bool = True,
        metadata: dict[str, Any] | None = None,
    ):
        if not urls and not url_file:
            raise ValueError("give urls (a list) or url_file (a file with one URL per line)")
        if concurrency < 1:
            raise ValueError("concurrency must be >= 1")
        self.source_name = name
        self.urls, self.url_file = list(urls or []), url_file
        self.http = _http_options(rate_limit, retries, backoff, timeout, headers_env, max_redirects,
                                  max_body_bytes, allow_private_redirects)
        self.concurrency, self.favor_precision = concurrency, favor_precision
        self.extra_metadata = metadata or {}

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
        return list(dict.fromkeys(urls))

    def plan(self, task_bytes: int) -> list[TaskInput]:
        _check_headers_env(self.source_name, self.http.headers_env)
        by_host: dict[str, list[Part]] = {}
        for url in self._all_urls():
            by_host.setdefault(urlsplit(url).netloc, []).append(Part(url, key=url))
        return [TaskInput(self.source_name, tuple(parts)) for _, parts in sorted(by_host.items())]

    @staticmethod
    def _fetch_one(fetcher: Fetcher, url: str) -> tuple[str, bytes | None, str]:
        """``(final url, body, content type)``, or ``(url, None, failure reason)``."""
        try:
            resp = fetcher.get(url)
        except FetchError as exc:
            return url, None, str(exc)
        return str(resp.url), resp.content, resp.headers.get("Content-Type", "")

    def read(self, task: TaskInput, ctx: TaskContext) -> Iterator[Document]:
        fetcher = Fetcher(self.http, seed=f"{ctx.seed}:{task.parts[0].key}")
        opts = ExtractOptions(favor_precision=self.favor_precision)
        try:
            with ThreadPoolExecutor(self.concurrency) as pool:
                results = pool.map(lambda p: self._fetch_one(fetcher, p.path), task.parts)
                for part, (final_url, body, info) in zip(task.parts, results, strict=True):
                    where = redact_url(part.path)
                    if body is None:
                        ctx.quarantine(where, redact_text(info), None)
                        continue
                    try:
                        text, meta = _extract_response(body, info, final_url, opts)
                    except ExtractionError as exc:
                        ctx.quarantine(where, redact_text(str(exc)), None)
                        continue
                    meta = {**self.extra_metadata, **meta, "url": redact_url(str(meta.get("url") or final_url)),
                            "source_name": self.source_name}
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
    from ``start_page`` until a page has no records), ``cursor`` (the next cursor is read at
    ``cursor_path`` and sent as ``cursor_param``), ``next_link`` (the next URL at
    ``next_path``, or the ``Link: <...>; rel="next"`` header), or ``none``. Pages are fetched in
    order in one task (a cursor is only known from the previous page).
    """

    def __init__(
        self,
        name: str,
        url: str,
        records_path: str = "",
        text_field: str = "text",
        text_template: str | None = None,
        id_field: str | None = None,
        pagination: Literal["none", "page", "cursor", "next_link"] = "none",
        page_param: str = "page",
        start_page: int = 1,
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
        max_redirects: int = 10,
        max_body_bytes: int = 256 * MB,
        allow_private_redirects: bool = False,
        metadata: dict[str, Any] | None = None,
    ):
        self.source_name = name
        self.url, self.records_path = url, records_path
        self.text_field, self.text_template, self.id_field = text_field, text_template, id_field
        self.pagination, self.page_param, self.start_page = pagination, page_param, start_page
        self.cursor_param, self.cursor_path, self.next_path = cursor_param, cursor_path, next_path
        self.params = dict(params or {})
        self.max_pages, self.max_records = max_pages, max_records
        self.http = _http_options(rate_limit, retries, backoff, timeout, headers_env, max_redirects,
                                  max_body_bytes, allow_private_redirects)
        self.extra_metadata = metadata or {}

    def plan(self, task_bytes: int) -> list[TaskInput]:
        _check_headers_env(self.source_name, self.http.headers_env)
        return [TaskInput(self.source_name, (Part(self.url, key=self.url),))]

    def _pages(self, fetcher: Fetcher, ctx: TaskContext) -> Iterator[tuple[int, list[Any]]]:
        url: str | None = self.url
        params = dict(self.params)
        page = self.start_page
        n = 0
        while url is not None and (self.max_pages is None or n < self.max_pages):
            if self.pagination == "page":
                params[self.page_param] = page
            where = f"{redact_url(url)} page {n + 1}"
            try:
                # A next link is checked like a redirect, and gets the credentials only on the API's origin.
                resp = fetcher.get(url, params=params or None, configured=self.url)
                body = resp.json()
            except FetchError as exc:
                ctx.quarantine(where, redact_text(str(exc)), None)
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
        fetcher = Fetcher(self.http, seed=f"{ctx.seed}:{self.url}")
        count = 0
        uri = redact_url(self.url)
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
                    offset = page * 1_000_000 + i
                    meta = {**self.extra_metadata, **fields, "source_name": self.source_name}
                    yield Document(text, str(doc_id) if doc_id is not None else
                                   make_doc_id(f"{self.source_name}/{self.url}", offset, text), uri, offset, meta)
                    count += 1
        finally:
            fetcher.close()
