"""URL lists and paginated JSON APIs against a local HTTP server that sometimes answers 429/503."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

from corpusforge import run
from corpusforge.observe.stats import TaskContext
from corpusforge.sources.http_client import retry_after_seconds
from corpusforge.sources.web import RestApiSource, UrlsSource

ARTICLE = "<html><head><title>Page {n}</title></head><body><article><p>" + \
    "This is the body of article number {n}, long enough to be the main text of the page. " * 6 + \
    "</p></article></body></html>"
ITEMS = [{"id": i, "title": f"T{i}", "body": f"body {i}"} for i in range(7)]


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):  # keep test output quiet
        pass

    def _send(self, status: int, body: bytes, ctype: str = "text/html; charset=utf-8", headers=None):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        srv = self.server
        url = urlsplit(self.path)
        with srv.lock:
            srv.log.append((time.monotonic(), self.path))
            srv.hits[url.path] = srv.hits.get(url.path, 0) + 1
            hits = srv.hits[url.path]
        q = {k: v[0] for k, v in parse_qs(url.query).items()}
        if url.path.startswith("/page/"):
            n = int(url.path.rsplit("/", 1)[1])
            if n % 3 == 0 and hits == 1:
                return self._send(429, b"slow down", headers={"Retry-After": "1"} if n == 3 else {})
            if n % 4 == 1 and hits <= 2:
                return self._send(503, b"busy")
            return self._send(200, ARTICLE.format(n=n).encode())
        if url.path == "/broken":
            return self._send(500, b"always broken")
        if url.path == "/missing":
            return self._send(404, b"no")
        if url.path.startswith("/api"):
            if self.headers.get("Authorization") != "Bearer s3cret":
                return self._send(401, b"{}", "application/json")
            if hits == 2:  # the second request to the API fails once
                return self._send(503, b"{}", "application/json")
            size = 3
            if url.path == "/api/page":
                page = int(q.get("page", "1"))
                chunk = ITEMS[(page - 1) * size: page * size]
                body = {"data": {"items": chunk}}
            elif url.path == "/api/offset":  # caps the page at 3 records, whatever limit asks for
                start, limit = int(q.get("offset", "0")), min(int(q.get("limit", size)), size)
                body = {"data": {"items": ITEMS[start:start + limit]}}
            elif url.path == "/api/cursor":
                start = int(q.get("cursor", "0"))
                nxt = start + size if start + size < len(ITEMS) else None
                body = {"data": {"items": ITEMS[start:start + size]}, "next_cursor": nxt}
            else:
                start = int(q.get("from", "0"))
                nxt = f"/api/link?from={start + size}" if start + size < len(ITEMS) else None
                body = {"data": {"items": ITEMS[start:start + size]}, "links": {"next": nxt}}
            return self._send(200, json.dumps(body).encode(), "application/json")
        self._send(404, b"")


@pytest.fixture
def server():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.lock, srv.log, srv.hits = threading.Lock(), [], {}
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv, f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


def _read(src, tmp_path):
    ctx = TaskContext("curate", 0, tmp_path)
    docs = [d for t in src.plan(1 << 20) for d in src.read(t, ctx)]
    return docs, ctx.quarantined


def test_url_list_retries_429_and_503_and_holds_the_rate_limit(server, tmp_path):
    srv, base = server
    urls = [f"{base}/page/{n}" for n in range(1, 9)] + [f"{base}/broken", f"{base}/missing"]
    src = UrlsSource(name="web", urls=urls, rate_limit=10, concurrency=4, retries=2, backoff=0.05)
    docs, quarantined = _read(src, tmp_path)
    assert sorted(d.metadata["title"] for d in docs) == [f"Page {n}" for n in range(1, 9)]
    assert {q["location"]: q["reason"] for q in quarantined} == {
        f"{base}/broken": "HTTP 500 after 3 attempts", f"{base}/missing": "HTTP 404"}
    # 10 requests/s per host, as seen by the server: overall, and in every 1-second window
    # (+2 for arrival jitter on a loaded machine); 4 unlimited threads would run far faster.
    starts = sorted(t for t, _ in srv.log)
    assert (len(starts) - 1) / (starts[-1] - starts[0]) <= 10.5
    assert max(sum(1 for t in starts if s <= t < s + 1.0) for s in starts) <= 12
    page3 = [t for t, p in srv.log if p == "/page/3"]
    assert page3[1] - page3[0] >= 1.0  # Retry-After: 1 honoured


def test_url_source_runs_through_the_pipeline(server, tmp_path):
    _, base = server
    stats = run({"sources": [{"type": "urls", "name": "web", "urls": [f"{base}/page/2", f"{base}/page/4"],
                              "rate_limit": 20, "backoff": 0.01}],
                 "steps": [], "tokenizer": {"vocab_size": 300}, "sharding": {"sequence_length": 32}},
                output=str(tmp_path / "out"), workers=1)
    assert stats["documents"]["read"] == 2 and stats["quarantine"] == {}


@pytest.mark.parametrize(
    "path,options",
    [
        ("/api/page", {"pagination": "page"}),
        ("/api/offset", {"pagination": "offset", "page_size": 5}),
        ("/api/cursor", {"pagination": "cursor", "cursor_path": "next_cursor"}),
        ("/api/link", {"pagination": "next_link", "next_path": "links.next"}),
    ],
)
def test_rest_api_pagination_reads_every_record_with_auth_from_env(server, tmp_path, monkeypatch, path, options):
    _, base = server
    monkeypatch.setenv("API_TOKEN", "Bearer s3cret")
    src = RestApiSource(name="api", url=base + path, records_path="data.items", text_template="{title}\n{body}",
                        headers_env={"Authorization": "API_TOKEN"}, rate_limit=50, backoff=0.01, **options)
    docs, quarantined = _read(src, tmp_path)
    assert quarantined == []
    assert [d.text for d in docs] == [f"T{i}\nbody {i}" for i in range(7)]
    assert docs[0].metadata["id"] == 0 and "title" not in docs[0].metadata  # the template used title and body


def test_rest_api_without_the_token_quarantines_the_page(server, tmp_path, monkeypatch):
    _, base = server
    monkeypatch.setenv("API_TOKEN", "Bearer wrong")
    src = RestApiSource(name="api", url=base + "/api/page", records_path="data.items", pagination="page",
                        headers_env={"Authorization": "API_TOKEN"})
    docs, quarantined = _read(src, tmp_path)
    assert docs == [] and quarantined == [{"location": f"{base}/api/page page 1", "reason": "HTTP 401"}]


def test_retry_after_accepts_seconds_and_http_dates():
    assert retry_after_seconds("2") == 2.0
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
    assert retry_after_seconds(None) is None


def test_static_headers_go_with_every_request_and_a_credential_there_is_refused(server, tmp_path, monkeypatch):
    srv, base = server
    seen = []
    real = Handler.do_GET

    def recording(self):
        seen.append((self.path, self.headers.get("Accept"), self.headers.get("X-Api-Version")))
        real(self)

    monkeypatch.setattr(Handler, "do_GET", recording)
    monkeypatch.setenv("API_TOKEN", "Bearer s3cret")
    src = RestApiSource(name="api", url=base + "/api/offset", records_path="data.items", text_field="body",
                        pagination="offset", limit_param=None, headers_env={"Authorization": "API_TOKEN"},
                        headers={"Accept": "application/json", "X-Api-Version": "7"}, rate_limit=50, backoff=0.01)
    docs, quarantined = _read(src, tmp_path)
    assert [d.text for d in docs] == [f"body {i}" for i in range(7)] and quarantined == []
    assert {(a, v) for p, a, v in seen if p.startswith("/api")} == {("application/json", "7")}
    # With no limit sent the API's own page size (3) is used; pagination stops at the first empty page.
    assert [p for p, _, _ in seen if p.startswith("/api")][-1].endswith("offset=7")  # 3 + 3 + 1 records, then none
    for name in ("Authorization", "X-Api-Key", "Cookie", "refresh_token"):
        with pytest.raises(ValueError, match="looks like a credential"):
            RestApiSource(name="api", url=base, headers={name: "x"})
