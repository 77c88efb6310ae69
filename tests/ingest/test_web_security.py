"""Web sources against hostile servers: credentials stay on their origin, redirects into private
networks are refused, compression bombs stop at the body limit, and secrets in URLs stay out of
every file of the output. Servers are real, on loopback: host A is 127.0.0.1, host B 127.0.0.2."""

from __future__ import annotations

import gzip
import json
import re
import subprocess
import sys
import tracemalloc
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
import zstandard

from corpusforge.observe.stats import TaskContext
from corpusforge.recipe import load_recipe
from corpusforge.redact_urls import redact_secrets, redact_text, redact_url
from corpusforge.sources.http_client import Fetcher, FetchError, HttpOptions, origin
from corpusforge.sources.private_network import refusal
from corpusforge.sources.web import RestApiSource, UrlsSource

ARTICLE = ("<html><head><title>{title}</title></head><body><article><p>"
           + "This is the body of the article called {title}, long enough to be the main text. " * 6
           + "</p></article></body></html>")
CREDENTIALS = {"Authorization": "Bearer a-token", "X-Api-Key": "a-key"}
HEADERS_ENV = {"Authorization": "A_TOKEN", "X-Api-Key": "A_KEY"}

@pytest.fixture
def creds(monkeypatch):
    monkeypatch.setenv("A_TOKEN", CREDENTIALS["Authorization"])
    monkeypatch.setenv("A_KEY", CREDENTIALS["X-Api-Key"])


def _page(title: str) -> tuple[int, dict[str, str], bytes]:
    return 200, {"Content-Type": "text/html; charset=utf-8"}, ARTICLE.format(title=title).encode()


def _json(obj, headers=None) -> tuple[int, dict[str, str], bytes]:
    return 200, {"Content-Type": "application/json", **(headers or {})}, json.dumps(obj).encode()


def _redirect(to: str, status: int = 302) -> tuple[int, dict[str, str], bytes]:
    return status, {"Location": to}, b""


def _read(src, tmp_path):
    ctx = TaskContext("curate", 0, tmp_path)
    docs = [d for t in src.plan(1 << 20) for d in src.read(t, ctx)]
    return docs, ctx.quarantined


def _has_credentials(headers: dict[str, str]) -> bool:
    return "authorization" in headers or "x-api-key" in headers


# -- credentials ---------------------------------------------------------------------------------


@pytest.mark.parametrize("link_in", ["body", "header"])
def test_next_link_to_another_host_gets_no_credentials_and_both_pages_are_read(hosts, creds, tmp_path, link_in):
    a, b = hosts
    nxt = f"{b.base}/more?from=2"
    a.route(lambda h, p, q: _json({"items": [{"text": "a0"}, {"text": "a1"}], **({"next": nxt} if link_in == "body" else {})},
                                  {"Link": f'<{nxt}>; rel="next"'} if link_in == "header" else {}))
    b.route(lambda h, p, q: _json({"items": [{"text": "b2"}]}))
    src = RestApiSource(name="api", url=f"{a.base}/api", records_path="items", pagination="next_link",
                        next_path="next" if link_in == "body" else None, headers_env=HEADERS_ENV, rate_limit=50)
    docs, quarantined = _read(src, tmp_path)
    assert [d.text for d in docs] == ["a0", "a1", "b2"] and quarantined == []
    assert [h["authorization"] for h in a.headers_at("/api")] == ["Bearer a-token"]
    assert [h["x-api-key"] for h in a.headers_at("/api")] == ["a-key"]
    assert len(b.headers_at("/more")) == 1 and not _has_credentials(b.headers_at("/more")[0])


def test_next_link_back_on_the_configured_origin_gets_the_credentials_again(hosts, creds, tmp_path):
    a, b = hosts
    a.route(lambda h, p, q: _json({"items": [{"text": p}], "next": f"{b.base}/b" if p == "/api" else None}))
    b.route(lambda h, p, q: _json({"items": [{"text": p}], "next": f"{a.base}/back"}))
    src = RestApiSource(name="api", url=f"{a.base}/api", records_path="items", pagination="next_link",
                        next_path="next", headers_env=HEADERS_ENV, rate_limit=50)
    docs, _ = _read(src, tmp_path)
    assert [d.text for d in docs] == ["/api", "/b", "/back"]
    assert a.headers_at("/back")[0]["authorization"] == "Bearer a-token"
    assert not _has_credentials(b.headers_at("/b")[0])


def test_cross_origin_redirect_drops_credentials_but_follows(hosts, creds, tmp_path):
    a, b = hosts
    a.route(lambda h, p, q: _redirect(f"{b.base}/landing"))
    b.route(lambda h, p, q: _page("Landing"))
    src = UrlsSource(name="web", urls=[f"{a.base}/go"], headers_env=HEADERS_ENV, rate_limit=50)
    docs, quarantined = _read(src, tmp_path)
    assert [d.metadata["title"] for d in docs] == ["Landing"] and quarantined == []
    assert docs[0].metadata["url"] == f"{b.base}/landing"
    assert a.headers_at("/go")[0]["x-api-key"] == "a-key"
    assert not _has_credentials(b.headers_at("/landing")[0])


def test_rest_api_page_redirected_to_another_host_gets_no_credentials(hosts, creds, tmp_path):
    a, b = hosts
    a.route(lambda h, p, q: _redirect(f"{b.base}/v2/api?page={q['page']}", 307))
    b.route(lambda h, p, q: _json({"items": [{"text": f"p{q['page']}"}] if q["page"] == "1" else []}))
    src = RestApiSource(name="api", url=f"{a.base}/api", records_path="items", pagination="page",
                        headers_env=HEADERS_ENV, rate_limit=50)
    docs, _ = _read(src, tmp_path)
    assert [d.text for d in docs] == ["p1"]
    assert [_has_credentials(h) for h in b.headers_at("/v2/api")] == [False, False]


def test_params_are_added_to_the_query_of_the_configured_url(hosts, tmp_path):
    a, _ = hosts
    a.route(lambda h, p, q: _json({"items": [{"text": q.get("key", "")}] if q["page"] == "1" else []}))
    src = RestApiSource(name="api", url=f"{a.base}/api?key=k1&lang=en", records_path="items", pagination="page",
                        params={"per_page": 2}, rate_limit=50)
    docs, _ = _read(src, tmp_path)
    assert [d.text for d in docs] == ["k1"]
    assert [q for _, _, _, q in a.httpd.seen] == ["key=k1&lang=en&per_page=2&page=1", "key=k1&lang=en&per_page=2&page=2"]


def test_same_origin_redirect_keeps_the_credentials(hosts, creds, tmp_path):
    a, _ = hosts
    a.route(lambda h, p, q: _redirect("/final") if p == "/go" else _page("Final"))
    src = UrlsSource(name="web", urls=[f"{a.base}/go"], headers_env=HEADERS_ENV, rate_limit=50)
    docs, _ = _read(src, tmp_path)
    assert [d.metadata["title"] for d in docs] == ["Final"]
    final = a.headers_at("/final")[0]
    assert (final["authorization"], final["x-api-key"]) == ("Bearer a-token", "a-key")


def test_userinfo_becomes_basic_auth_for_its_origin_only(hosts, tmp_path):
    a, b = hosts
    a.route(lambda h, p, q: _redirect(f"{b.base}/elsewhere") if p == "/go" else _page("A"))
    b.route(lambda h, p, q: _page("B"))
    host_a = a.base.removeprefix("http://")
    src = UrlsSource(name="web", urls=[f"http://user:pw@{host_a}/page", f"http://user:pw@{host_a}/go"], rate_limit=50)
    docs, _ = _read(src, tmp_path)
    assert sorted(d.metadata["title"] for d in docs) == ["A", "B"]
    assert a.headers_at("/page")[0]["authorization"] == "Basic dXNlcjpwdw=="  # user:pw
    assert "authorization" not in b.headers_at("/elsewhere")[0]
    assert {d.source for d in docs} == {f"http://user:REDACTED@{host_a}/page", f"http://user:REDACTED@{host_a}/go"}


def test_origin_is_scheme_host_and_port_so_a_downgrade_is_another_origin():
    assert origin("https://api.example.com/v1") == ("https", "api.example.com", 443)
    assert origin("https://API.example.com:443/x") == origin("https://api.example.com/y")
    assert origin("http://api.example.com/v1") != origin("https://api.example.com/v1")
    assert origin("https://api.example.com:8443/") != origin("https://api.example.com/")


# -- where redirects may go ----------------------------------------------------------------------


@pytest.mark.parametrize("target,reason", [
    ("http://169.254.169.254/latest/meta-data/",
     "host '169.254.169.254' is a link-local or reserved address; allow_private_redirects: true follows it"),
    ("http://[fe80::1]/", "host 'fe80::1' is a link-local or reserved address; allow_private_redirects: true follows it"),
    ("file:///etc/passwd", "scheme 'file' is not followed (only http and https)"),
    ("gopher://127.0.0.1:70/", "scheme 'gopher' is not followed (only http and https)"),
])
def test_redirect_to_link_local_or_other_schemes_is_refused_and_quarantined(hosts, tmp_path, target, reason):
    a, _ = hosts
    a.route(lambda h, p, q: _redirect(target))
    src = UrlsSource(name="web", urls=[f"{a.base}/go"], rate_limit=50)
    docs, quarantined = _read(src, tmp_path)
    assert docs == []
    assert quarantined == [{"location": f"{a.base}/go", "reason": f"redirect to {target} refused: {reason}"}]


def test_unspecified_address_is_refused_by_default_and_followed_when_allowed(hosts, tmp_path):
    a, _ = hosts
    port = a.base.rsplit(":", 1)[1]
    a.route(lambda h, p, q: _redirect(f"http://0.0.0.0:{port}/inside") if p == "/go" else _page("Inside"))
    docs, quarantined = _read(UrlsSource(name="web", urls=[f"{a.base}/go"], rate_limit=50), tmp_path)
    assert docs == [] and quarantined[0]["reason"].startswith(f"redirect to http://0.0.0.0:{port}/inside refused")
    allowed = UrlsSource(name="web", urls=[f"{a.base}/go"], rate_limit=50, allow_private_redirects=True)
    docs, quarantined = _read(allowed, tmp_path)
    assert [d.metadata["title"] for d in docs] == ["Inside"] and quarantined == []


def test_file_scheme_is_refused_even_when_private_redirects_are_allowed(hosts, tmp_path):
    a, _ = hosts
    a.route(lambda h, p, q: _redirect("file:///etc/passwd"))
    src = UrlsSource(name="web", urls=[f"{a.base}/go"], rate_limit=50, allow_private_redirects=True)
    _, quarantined = _read(src, tmp_path)
    assert quarantined[0]["reason"] == "redirect to file:///etc/passwd refused: scheme 'file' is not followed (only http and https)"


def test_next_link_to_link_local_is_refused_and_the_pages_before_it_are_kept(hosts, tmp_path):
    a, _ = hosts
    a.route(lambda h, p, q: _json({"items": [{"text": "first"}], "next": "http://169.254.169.254/latest/"}))
    src = RestApiSource(name="api", url=f"{a.base}/api", records_path="items", pagination="next_link",
                        next_path="next", rate_limit=50)
    docs, quarantined = _read(src, tmp_path)
    assert [d.text for d in docs] == ["first"]
    assert quarantined == [{"location": "http://169.254.169.254/latest/ page 2", "reason":
                            "http://169.254.169.254/latest/ refused: host '169.254.169.254' is a link-local or "
                            "reserved address; allow_private_redirects: true follows it"}]


@pytest.mark.parametrize("target", ["http://127.0.0.1/", "http://10.1.2.3/", "http://100.64.0.1/", "http://[fd00::1]/",
                                    "http://[::ffff:127.0.0.1]/", "http://2130706433/", "http://0x7f.1/",
                                    "http://0177.0.0.1/"])
def test_a_public_origin_may_not_lead_into_private_or_loopback_addresses(target):
    assert "more private than the configured host" in refusal(target, "https://93.184.216.34/api")
    assert refusal(target, "https://93.184.216.34/api", allow_private=True) is None


def test_private_origins_may_lead_to_public_or_equally_private_hosts():
    assert refusal("http://93.184.216.34/", "http://10.0.0.1/") is None
    assert refusal("http://10.9.9.9/", "http://192.168.0.1/") is None
    assert refusal("http://127.0.0.2/", "http://127.0.0.1/") is None
    assert refusal("http://10.0.0.1/", "http://127.0.0.1/") is None
    assert "more private" in refusal("http://127.0.0.1/", "http://10.0.0.1/")


def test_a_redirect_loop_stops_at_max_redirects(hosts, tmp_path):
    a, _ = hosts
    a.route(lambda h, p, q: _redirect(f"/hop/{int(p.rsplit('/', 1)[1]) + 1}"))
    src = UrlsSource(name="web", urls=[f"{a.base}/hop/0"], rate_limit=100, max_redirects=3, respect_robots=False)
    _, quarantined = _read(src, tmp_path)
    assert quarantined == [{"location": f"{a.base}/hop/0", "reason": "more than max_redirects (3) redirects"}]
    assert [p for _, p, _, _ in a.httpd.seen] == ["/hop/0", "/hop/1", "/hop/2", "/hop/3"]


def test_redirect_hops_are_rate_limited(hosts, tmp_path):
    a, _ = hosts
    a.route(lambda h, p, q: _redirect(p.replace("/r/", "/page/")) if p.startswith("/r/") else _page(p))
    src = UrlsSource(name="web", urls=[f"{a.base}/r/{i}" for i in range(6)], rate_limit=5, concurrency=4,
                     respect_robots=False)
    docs, _ = _read(src, tmp_path)
    assert len(docs) == 6
    starts = sorted(t for t, _, _, _ in a.httpd.seen)
    assert len(starts) == 12
    assert (len(starts) - 1) / (starts[-1] - starts[0]) <= 5.5  # 12 requests at 5/s: >= 2.2 s


# -- body size -----------------------------------------------------------------------------------


def _gzip_stream(mb: int) -> Iterator[bytes]:
    """``mb`` MiB of zeros, gzip-compressed as they are sent (~1 KB on the wire per MiB)."""
    z = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = bytes(1 << 20)
    for _ in range(mb):
        yield z.compress(block)
    yield z.flush()


def test_gzip_bomb_fails_its_url_at_the_body_limit_in_bounded_memory(hosts, tmp_path):
    a, _ = hosts
    a.route(lambda h, p, q: (200, {"Content-Type": "text/plain", "Content-Encoding": "gzip"}, _gzip_stream(400))
            if p == "/bomb" else _page("Fine"))
    src = UrlsSource(name="web", urls=[f"{a.base}/bomb", f"{a.base}/fine"], rate_limit=50, max_body_bytes=4 << 20)
    tracemalloc.start()
    try:
        docs, quarantined = _read(src, tmp_path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert [d.metadata["title"] for d in docs] == ["Fine"]
    assert quarantined == [{"location": f"{a.base}/bomb",
                            "reason": "response body over max_body_bytes (4,194,304 bytes): stopped reading"}]
    assert peak < 32 << 20  # 400 MiB decoded if read on; the limit plus a few 1 MiB steps here
    assert a.httpd.sent < 400 * 1100  # the rest of the compressed stream was never read


def test_declared_content_length_over_the_limit_fails_before_reading(hosts, tmp_path):
    a, _ = hosts
    a.route(lambda h, p, q: (200, {"Content-Type": "text/plain", "Content-Length": str(10 << 20)}, iter([])))
    src = UrlsSource(name="web", urls=[f"{a.base}/big"], rate_limit=50, max_body_bytes=1 << 20)
    _, quarantined = _read(src, tmp_path)
    assert quarantined[0]["reason"] == "response body over max_body_bytes (1,048,576 bytes): Content-Length is 10,485,760"


def test_gzip_body_under_the_limit_is_decoded(hosts, tmp_path):
    a, _ = hosts
    body = gzip.compress(ARTICLE.format(title="Zipped").encode())
    a.route(lambda h, p, q: (200, {"Content-Type": "text/html", "Content-Encoding": "gzip"}, body))
    docs, _ = _read(UrlsSource(name="web", urls=[f"{a.base}/z"], rate_limit=50), tmp_path)
    assert [d.metadata["title"] for d in docs] == ["Zipped"]


@pytest.mark.parametrize("wrap", [zlib.compress, lambda b: zlib.compress(b)[2:-4]], ids=["zlib", "raw"])
def test_deflate_body_is_decoded_whether_zlib_wrapped_or_raw(hosts, wrap):
    a, _ = hosts
    a.route(lambda h, p, q: (200, {"Content-Type": "text/plain", "Content-Encoding": "deflate"}, wrap(b"deflated " * 1000)))
    fetcher = Fetcher(HttpOptions(rate_limit=50))
    try:
        assert fetcher.get(f"{a.base}/d").content == b"deflated " * 1000
    finally:
        fetcher.close()


def test_corrupt_gzip_is_a_clear_failure(hosts):
    a, _ = hosts
    a.route(lambda h, p, q: (200, {"Content-Encoding": "gzip"}, b"\x1f\x8bnot gzip at all"))
    fetcher = Fetcher(HttpOptions(rate_limit=50))
    try:
        with pytest.raises(FetchError, match="^response body is not valid gzip"):
            fetcher.get(f"{a.base}/x")
    finally:
        fetcher.close()


# -- secrets in URLs -----------------------------------------------------------------------------


@pytest.mark.parametrize("url,redacted", [
    ("https://api.example.com/v1?api_key=S3&page=2", "https://api.example.com/v1?api_key=REDACTED&page=2"),
    ("https://h/p?token=S3;key=S3&q=x", "https://h/p?token=REDACTED;key=REDACTED&q=x"),
    ("https://h/p?access_token=S3&sig=S3&signature=S3", "https://h/p?access_token=REDACTED&sig=REDACTED&signature=REDACTED"),
    ("https://b.s3.amazonaws.com/k?X-Amz-Credential=AK%2F1&X-Amz-Signature=ab&X-Amz-Date=1",
     "https://b.s3.amazonaws.com/k?X-Amz-Credential=REDACTED&X-Amz-Signature=REDACTED&X-Amz-Date=1"),
    ("https://user:S3@h:8080/p", "https://user:REDACTED@h:8080/p"),
    ("https://ghp_S3@github.com/o/r.git", "https://REDACTED@github.com/o/r.git"),
    ("ssh://git@github.com/o/r.git", "ssh://git@github.com/o/r.git"),
    ("https://h/cb#access_token=S3&state=1", "https://h/cb#access_token=REDACTED&state=1"),
    ("https://h/search?q=token&page=1", "https://h/search?q=token&page=1"),
    ("data/local.jsonl", "data/local.jsonl"),
])
def test_redact_url_replaces_secret_values_and_keeps_the_rest(url, redacted):
    assert redact_url(url) == redacted


def test_redact_text_covers_urls_inside_text_and_queries_of_relative_keys():
    assert redact_text("http://h/api?access_token=S3 page 2: HTTP 401") == "http://h/api?access_token=REDACTED page 2: HTTP 401"
    assert redact_text("data.jsonl?api_key=S3&x=1") == "data.jsonl?api_key=REDACTED&x=1"
    assert redact_text("why? no query here") == "why? no query here"


def test_redact_secrets_covers_urls_in_text_and_secret_named_params():
    recipe = {"sources": [{"type": "rest_api", "url": "https://h/x?api_key=S3", "params": {"apikey": "S3", "per_page": 100}},
                          {"path": "s3://bucket/data", "note": "see https://u:S3@h/ and more"}]}
    assert redact_secrets(recipe) == {"sources": [
        {"type": "rest_api", "url": "https://h/x?api_key=REDACTED", "params": {"apikey": "REDACTED", "per_page": 100}},
        {"path": "s3://bucket/data", "note": "see https://u:REDACTED@h/ and more"}]}


def _every_file_text(root: Path) -> Iterator[tuple[Path, bytes]]:
    """Every file under ``root`` as bytes, zstd and gzip files decompressed."""
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        data = path.read_bytes()
        if path.suffix == ".zst":
            data = zstandard.ZstdDecompressor().stream_reader(data).read()
        elif path.suffix == ".gz":
            data = gzip.decompress(data)
        yield path, data


def test_secrets_in_recipe_urls_are_in_no_file_of_the_output(hosts, tmp_path):
    pytest.importorskip("mlflow")
    a, _ = hosts
    a.route(lambda h, p, q: _json({"items": [{"text": "An API record with enough words to pass along."}]})
            if p == "/api" else (404, {}, b"") if p == "/missing" else _page("Secret page"))
    host_a = a.base.removeprefix("http://")
    recipe = {
        "name": "secrets", "seed": 1,
        "sources": [
            {"type": "urls", "name": "web", "rate_limit": 50, "retries": 0,
             "urls": [f"{a.base}/page?api_key=SECRET1", f"{a.base}/missing?token=SECRET2",
                      f"http://user:SECRET3@{host_a}/other"]},
            {"type": "rest_api", "name": "api", "url": f"{a.base}/api?access_token=SECRET4", "records_path": "items",
             "params": {"api_key": "SECRET5"}, "rate_limit": 50}],
        "steps": [{"type": "normalize"}],
        "tokenizer": {"vocab_size": 300}, "sharding": {"sequence_length": 32},
        "output": {"documents": "jsonl", "audit": True},
        "tracking": {"mlflow": {"enabled": True}},
    }
    (tmp_path / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "corpusforge.cli", "run", str(tmp_path / "recipe.yaml"),
                           "--output", str(out), "--workers", "1"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "SECRET" not in proc.stdout + proc.stderr
    files = dict(_every_file_text(out))
    assert out / "mlflow.db" in files and out / "recipe.yaml" in files
    assert [str(p.relative_to(out)) for p, data in files.items() if b"SECRET" in data] == []
    # The requests were sent as configured, and the redacted recipe.yaml says where they went (the
    # API's first page twice: once for its change fingerprint; robots.txt once for the urls source).
    assert sorted((p, q) for _, p, _, q in a.httpd.seen) == [
        ("/api", "access_token=SECRET4&api_key=SECRET5"), ("/api", "access_token=SECRET4&api_key=SECRET5"),
        ("/missing", "token=SECRET2"), ("/other", ""), ("/page", "api_key=SECRET1"), ("/robots.txt", "")]
    assert a.headers_at("/other")[0]["authorization"] == "Basic dXNlcjpTRUNSRVQz"  # user:SECRET3
    written = yaml.safe_load((out / "recipe.yaml").read_text())
    assert written["sources"][1]["url"] == f"{a.base}/api?access_token=REDACTED"
    assert written["sources"][1]["params"] == {"api_key": "REDACTED"}
    stats = json.loads((out / "stats.json").read_text())
    assert stats["recipe_sha256"] == load_recipe(recipe).fingerprint()
    assert stats["documents"]["read"] == 3 and stats["quarantine"] == {"HTTP 404": 1}


def test_the_documented_credentials_and_redirects_example_sets_the_options():
    doc = (Path(__file__).resolve().parents[2] / "docs" / "ingest.md").read_text()
    block = re.search(r"### Credentials and redirects.*?```yaml\n(.*?)```", doc, re.S).group(1)
    [src] = load_recipe(yaml.safe_load(block)).build_sources()
    assert (src.http.max_redirects, src.http.max_body_bytes, src.http.allow_private_redirects) == (10, 256 << 20, True)
    assert src.http.headers_env == {"Authorization": "TICKETS_TOKEN", "X-Api-Key": "TICKETS_KEY"}


def test_secret_in_a_files_source_url_is_in_no_file_of_the_output_and_a_rerun_does_no_work(hosts, tmp_path):
    a, _ = hosts
    records = b"".join(json.dumps({"text": f"Record {i} of a file served over HTTP, with words."}).encode() + b"\n"
                       for i in range(5))
    a.route(lambda h, p, q: (200, {"Content-Type": "application/json"}, records) if p == "/data.jsonl"
            else (404, {}, b""))
    recipe = {
        "name": "files-url", "seed": 1,
        "sources": [{"name": "web", "path": [f"{a.base}/data.jsonl?api_key=SECRET6"]}],
        "steps": [{"type": "normalize"}],
        "tokenizer": {"vocab_size": 300}, "sharding": {"sequence_length": 32},
        "output": {"documents": "jsonl", "audit": True},
    }
    (tmp_path / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "corpusforge.cli", "run", str(tmp_path / "recipe.yaml"), "--output", str(out),
           "--workers", "1", "--quiet"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert json.loads((out / "stats.json").read_text())["documents"]["read"] == 5
    files = dict(_every_file_text(out))
    assert sorted(str(p.relative_to(out)) for p, data in files.items() if b"SECRET6" in data) == []
    manifest = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert [m["uri"] for m in manifest] == [f"{a.base}/data.jsonl?api_key=REDACTED"]
    # The redacted manifest and plan still match the real input: a re-run neither hashes the file
    # again (fsspec's info and the format sniff are the only requests) nor curates it again.
    staged = out / "_work" / "curate" / "task_000000.parquet"
    staged_mtime, before = staged.stat().st_mtime_ns, len(a.httpd.seen)
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert len(a.httpd.seen) - before <= 2
    assert staged.stat().st_mtime_ns == staged_mtime
